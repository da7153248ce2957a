"""Local executor (baseline) vs the Ray executor on the same input, and a 1,000-GPU estimate.

Usage: python benchmarks/bench_ray.py [--copies 2] [--shard 1] [--noop-shards 200]

1. `internvid run` on the demo videos (`--copies` copies of each) with tiny models and the
   viclip_sim score, cut copy, one video per shard, each run in a fresh process: the local
   executor (1 worker; torch's default threads, then OMP_NUM_THREADS=1, which Ray gives its
   1-CPU actors), then the Ray executor on a Ray started in that process with 2 CPUs, without
   and with one logical GPU (4 pools instead of 2). Prints run time (Ray's start not included,
   shown apart), videos/s, the ratio to the baseline and whether the clip rows are equal.
2. Ray's own cost per shard: no-op stages over `--noop-shards` shards, 1 pool against 3 pools.
3. The 1,000-GPU estimate from measured per-stage costs (constants below, with their sources).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from internvid.config import RunConfig
from internvid.engine import Context, Pipeline, Resources, Sample, Stage
from internvid.engine.ray_executor import RayExecutor
from internvid.media.synth import DEMO_VIDEOS, make_video
from internvid.records import Video
from internvid.run import run
from internvid.tiny.captioners import build_tiny_models

log = logging.getLogger("bench_ray")


def config(cache: Path, executor: str) -> RunConfig:
    cfg = RunConfig(executor=executor)
    cfg.caption.models = "tiny"
    cfg.caption.cache_dir = str(cache)
    cfg.score.scores = ["viclip_sim"]
    cfg.cut.mode = "copy"
    return cfg


def rows(out: Path) -> list[dict]:
    return sorted(pq.read_table(out / "clips.parquet").to_pylist(), key=lambda r: r["clip_id"])


class Noop(Stage):
    """Passes samples on: what is left is the executor's own cost."""

    needs = frozenset({"video"})

    def __init__(self, name: str, gpus: float = 0.0):
        self.name = name
        self.resources = Resources(cpus=1.0, gpus=gpus)

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        return sample


class NullSink:
    def clear_shard(self, index, samples) -> None:
        pass

    def write_shard(self, index, samples) -> dict:
        return {"clips": 0}


RUNS = {  # label, executor, OMP_NUM_THREADS, logical GPUs of the Ray started for the run
    "local": ("local, 1 worker (torch: 2 threads)", "local", None, 0),
    "local1": ("local, 1 worker, OMP_NUM_THREADS=1", "local", "1", 0),
    "ray0": ("ray, 2 CPUs (2 pools)", "ray", None, 0),
    "ray1": ("ray, 2 CPUs + 1 logical GPU (4 pools)", "ray", None, 1),
}


def child(kind: str, inp: Path, cache: Path, out: Path, per_shard: int) -> None:
    """One run in a fresh process (its own torch threads, its own Ray); prints a JSON line."""
    _, executor, _, gpus = RUNS[kind]
    start = 0.0
    if executor == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, num_gpus=gpus, include_dashboard=False)
        start = time.perf_counter() - t0
    cfg = config(cache, executor)
    cfg.output.videos_per_shard = per_shard
    s = run([str(inp)], out, cfg, progress=False)
    stages = {st["name"]: st["seconds"] for st in s.stages}
    print(json.dumps({"kind": kind, "summary": s.to_json(), "start": start, "stages": stages}))


def bench_runs(tmp: Path, copies: int, per_shard: int) -> None:
    inp, cache = tmp / "in", tmp / "cache"
    inp.mkdir()
    for i in range(copies):
        for spec in DEMO_VIDEOS:
            make_video(spec, inp / f"{spec.name}_{i}.mp4")
    build_tiny_models(cache / "tiny-models")
    found = {}
    for kind, (_, _, threads, _) in RUNS.items():
        env = dict(os.environ)
        env.pop("OMP_NUM_THREADS", None)
        if threads:
            env["OMP_NUM_THREADS"] = threads
        cmd = [sys.executable, __file__, "--child", kind, "--inp", str(inp), "--cache", str(cache)]
        cmd += ["--out", str(tmp / kind), "--shard", str(per_shard)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process"] = time.perf_counter() - t0
        found[kind] = result
    ref = rows(tmp / "local")
    base = found["local"]["summary"]["wall_seconds"]
    log.info("| run | videos | clips | run s | videos/s | vs local | Ray start s | same rows |")
    log.info("|---|---:|---:|---:|---:|---:|---:|---|")
    for kind, r in found.items():
        s = r["summary"]
        log.info(
            "| %s | %d | %d | %.1f | %.3f | %.2fx | %s | %s |",
            RUNS[kind][0], s["videos"], s["clips"], s["wall_seconds"],
            s["videos"] / s["wall_seconds"], base / s["wall_seconds"],
            f"{r['start']:.1f}" if r["start"] else "-",
            "yes" if rows(tmp / kind) == ref else "NO",
        )  # fmt: skip
    names = list(found["local"]["stages"])
    log.info("stage seconds, summed over shards: | stage | %s |", " | ".join(found))
    for name in names:
        log.info(
            "| %s | %s |", name, " | ".join(f"{r['stages'][name]:.2f}" for r in found.values())
        )


def bench_overhead(n: int) -> None:
    import ray

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    shards = [[Sample(Video(id=f"v{i}", source=f"/x/{i}.mp4"))] for i in range(n)]
    for label, stages in (
        ("1 pool", [Noop("a")]),
        ("3 pools (CPU, GPU, CPU)", [Noop("a"), Noop("b", gpus=1), Noop("c")]),
    ):
        with tempfile.TemporaryDirectory() as work:
            ex = RayExecutor()
            t0, c0 = time.perf_counter(), time.process_time()
            ex.run(Pipeline(stages), NullSink(), shards, work)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        log.info(
            "no-op, %d shards, %s: %.1f s (actor start included), %.1f ms a shard; "
            "driver CPU %.1f ms a shard",
            n, label, wall, 1000 * wall / n, 1000 * cpu / n,
        )  # fmt: skip
    ray.shutdown()


# --- the 1,000-GPU estimate ---------------------------------------------------------------------
# Measured per-stage costs (benchmarks/RESULTS.md sections named), in core- or GPU-seconds:
SPLIT_CORE_S_PER_VIDEO_S = 2 * 9.25 / 122.6  # one decode pass + every frame, 1080p, 2 cores
CUT_EXACT_CORE_S_PER_VIDEO_S = 2 * (33.03 - 9.25) / 122.6  # x264 veryfast re-encode to 720p
CUT_COPY_CORE_S_PER_VIDEO_S = 2 * (10.35 - 9.25) / 122.6  # stream copy
CAPTION_GPU_S_PER_FRAME = 1 / 64.65  # lite captioner (BLIP base), bf16, H200, batch 32
FUSE_GPU_S_PER_CLIP = 1 / 26.73  # Qwen2.5-0.5B-sized fusion, fp32, H200, 32 prompts a call
VICLIP_GPU_S_PER_CLIP = 0.062 / 16  # ViCLIP-L/14 video tower, bf16, H200, batch 16
# The corpus (SPEC.md: InternVid): 7.1M videos, 760K hours, 234M clips of 11.7 s on average
VIDEOS, VIDEO_S, CLIPS, CLIP_S = 7.1e6, 760e3 * 3600, 234e6, 11.7


def estimate(gpus: int, cores_per_gpu: int, cut: str, caption_slowdown: float) -> dict:
    """Hours each resource needs for the whole corpus, when every pool is sized to its resource."""
    cut_rate = CUT_EXACT_CORE_S_PER_VIDEO_S if cut == "exact" else CUT_COPY_CORE_S_PER_VIDEO_S
    cpu = VIDEO_S * (SPLIT_CORE_S_PER_VIDEO_S + cut_rate)  # core-seconds
    frames = CLIPS * CLIP_S  # one caption frame a second (caption.fine_fps 1)
    gpu = frames * CAPTION_GPU_S_PER_FRAME * caption_slowdown + CLIPS * (
        FUSE_GPU_S_PER_CLIP + VICLIP_GPU_S_PER_CLIP
    )
    cpu_h = cpu / (gpus * cores_per_gpu) / 3600
    gpu_h = gpu / gpus / 3600
    return {"cpu_h": cpu_h, "gpu_h": gpu_h, "bottleneck": "CPU" if cpu_h > gpu_h else "GPU"}


def print_estimate() -> None:
    log.info("1,000 GPUs, the whole corpus (7.1M videos, 760K h, 234M clips):")
    log.info("| cores per GPU | cut | captioner cost | CPU pools h | GPU pools h | bottleneck |")
    log.info("|---:|---|---|---:|---:|---|")
    for cores in (8, 16, 32):
        for cut in ("exact", "copy"):
            for slow, label in ((1.0, "lite, measured"), (4.0, "4x lite, assumed")):
                e = estimate(1000, cores, cut, slow)
                log.info(
                    "| %d | %s | %s | %.1f | %.1f | %s |",
                    cores, cut, label, e["cpu_h"], e["gpu_h"], e["bottleneck"],
                )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=2, help="copies of the 4 demo videos")
    ap.add_argument("--shard", type=int, default=1, help="videos per shard")
    ap.add_argument("--noop-shards", type=int, default=200)
    ap.add_argument("--estimate-only", action="store_true")
    ap.add_argument("--overhead-only", action="store_true")
    ap.add_argument("--child", choices=list(RUNS), help=argparse.SUPPRESS)
    ap.add_argument("--inp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        logging.basicConfig(level=logging.ERROR)
        child(args.child, args.inp, args.cache, args.out, args.shard)
        return
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    if args.overhead_only:
        bench_overhead(args.noop_shards)
    elif not args.estimate_only:
        tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
        try:
            bench_runs(tmp, args.copies, args.shard)
            bench_overhead(args.noop_shards)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print_estimate()


if __name__ == "__main__":
    main()
