"""GPU machine check: a gpus=1 stage lands on a GPU actor, and CPU pools keep working beside it.

    python benchmarks/ray_gpu_check.py [--shards 12] [--fake-gpu] [--json OUT.json]

The pipeline is the engine's own (Stage, Pipeline, RayExecutor) with three small stages: a CPU
"decode" stage (0.4 s of CPU per video), a model stage declared with
`Resources.for_device("auto")` (gpus=1) that loads a torch layer in `setup()` and runs it on
the device it picked, and a CPU "pack" stage. It needs no video libraries, so it runs on a bare
GPU machine with only Ray and torch. `--fake-gpu` starts Ray with one logical GPU on a
GPU-less machine (placement is checked, CUDA is not).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from internvid.engine import Context, Pipeline, Resources, Sample, Stage
from internvid.engine.ray_executor import RayExecutor, import_ray, overlap_seconds
from internvid.records import Clip, Video

log = logging.getLogger("ray_gpu_check")


class Decode(Stage):
    """CPU work standing in for decoding: 0.4 s of arithmetic, then 4 clips per video."""

    name = "decode"
    needs = frozenset({"video"})
    provides = frozenset({"clips"})

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        t_end = time.process_time() + 0.4
        x = 0
        while time.process_time() < t_end:
            x += 1
        sample.clips = [Clip.new(sample.id, i, i + 1.0) for i in range(4)]
        return sample


class Embed(Stage):
    """A model stage: one GPU when there is one (device auto), a torch layer loaded once."""

    name = "embed"
    unit = "clip"
    needs = frozenset({"clips"})
    provides = frozenset({"scores"})
    resources = Resources.for_device("auto")
    batch_size = 64

    def setup(self) -> None:
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.layer = torch.nn.Linear(1024, 1024).to(self.device)

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        import torch

        clips = [c for s in batch for c in s.clips]
        with torch.inference_mode():
            x = torch.randn(len(clips), 1024, device=self.device)
            for _ in range(200):
                x = torch.tanh(self.layer(x))
            y = x.float().mean(dim=1).cpu().tolist()
        for c, v in zip(clips, y, strict=True):
            c.scores["embed"] = round(v, 6)
            c.meta["embed_device"] = self.device
        return batch


class Pack(Stage):
    """CPU work after the model: 0.1 s per video."""

    name = "pack"
    needs = frozenset({"scores"})
    provides = frozenset({"packed"})

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        time.sleep(0.1)
        return sample


class ListSink:
    """Writes nothing but a count: the check looks at where the stages ran."""

    def clear_shard(self, index, samples) -> None:
        pass

    def write_shard(self, index, samples) -> dict:
        clips = [c for s in samples for c in s.clips]
        return {"clips": len(clips), "devices": sorted({c.meta["embed_device"] for c in clips})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=12)
    ap.add_argument("--fake-gpu", action="store_true", help="one logical GPU (no CUDA check)")
    ap.add_argument("--json", type=Path, help="write the findings here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    ray = import_ray()
    ray.init(include_dashboard=False, **({"num_cpus": 2, "num_gpus": 1} if args.fake_gpu else {}))
    cluster = ray.cluster_resources()
    shards = [
        [Sample(Video(id=f"s{i}v{j}", source=f"/x/{i}/{j}.mp4")) for j in range(2)]
        for i in range(args.shards)
    ]
    executor = RayExecutor()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        results = executor.run(Pipeline([Decode(), Embed(), Pack()]), ListSink(), shards, work)
    wall = time.perf_counter() - t0
    trace = executor.trace
    pools = {}
    for t in trace:
        p = pools.setdefault(t["pool"], {"actors": set(), "gpu_ids": set(), "cuda": set()})
        p["actors"].add(t["pid"])
        p["gpu_ids"].add(",".join(t["gpu_ids"]))
        p["cuda"].add(t["cuda"])
    findings = {
        "cluster": {k: v for k, v in cluster.items() if k in ("CPU", "GPU")},
        "plan": [
            {"pool": g.name, "cpus": g.cpus, "gpus": g.gpus, "actors": g.actors}
            for g in executor.groups
        ],
        "pools": {k: {kk: sorted(vv) for kk, vv in v.items()} for k, v in pools.items()},
        "model_devices": sorted({d for r in results for d in r.summary["devices"]}),
        "clips": sum(r.summary["clips"] for r in results),
        "embed_overlaps_cpu_pools_s": round(overlap_seconds(trace, "embed"), 2),
        "embed_busy_s": round(sum(t["end"] - t["start"] for t in trace if t["pool"] == "embed"), 2),
        "wall_s": round(wall, 2),
    }
    ray.shutdown()
    log.info("%s", json.dumps(findings, indent=1))
    if args.json:
        args.json.write_text(json.dumps(findings, indent=1))
    ok = (
        findings["pools"]["embed"]["gpu_ids"] != [""]
        and findings["pools"]["decode"]["gpu_ids"] == [""]
        and findings["clips"] == 8 * args.shards
        and findings["embed_overlaps_cpu_pools_s"] > 0
        and (args.fake_gpu or findings["model_devices"] == ["cuda"])
    )
    log.info("GPU placement check: %s", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
