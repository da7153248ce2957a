"""Worker threads: a CPU model stage per item with 1 worker, 2 workers on torch's default threads, 2 on their share.

Usage: PYTHONPATH=src python benchmarks/bench_threads.py [--models vit conv] [--items 48]
       [--per-shard 4] [--repeats 3]

A small random torch model runs as a stage of the local executor over `--items` items in
shards of `--per-shard`: `vit`, a ViT-S-sized transformer encoder (6 layers, width 384) over
2 x 197 tokens per item (ViCLIP and CLIP are ViTs), or `conv`, a 4-layer conv net over one
3x224x224 image per item; each ~0.05-0.1 s on 2 CPU cores. Each model runs three ways:

1. 1 worker (in this process, torch's default threads: all cores);
2. 2 workers with `threads_per_worker` = the cores: what every worker did before the share
   (torch, OpenCV and OpenMP default to all cores), so 2 x cores threads on the cores;
3. 2 workers on their share (`threads_per_worker=0`: the cores divided by the workers).

Per run: seconds per item of wall time while the stage works (first item's start to the last
one's end, divided by the items: worker start-up is left out); steady seconds per item (one
over the sum of the workers' own rates: workers that start a moment apart are not charged for
the gap); and seconds per item inside a worker (latency). Best of `--repeats`. Ratios are to the 1-worker run.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from internvid.engine import Context, Pipeline, Sample, Stage
from internvid.engine.local import LocalExecutor
from internvid.engine.threads import available_cores
from internvid.records import Video

log = logging.getLogger("bench_threads")


class ModelStage(Stage):
    """A random torch model over one input per item; notes when each item started and ended."""

    name = "model"
    needs = frozenset({"video"})

    def __init__(self, kind: str):
        self.kind = kind  # vit or conv
        self.model = None
        self.input = None

    def setup(self) -> None:
        import torch

        torch.manual_seed(0)
        if self.kind == "vit":
            layer = torch.nn.TransformerEncoderLayer(384, 6, 1536, batch_first=True)
            self.model = torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False).eval()
            self.input = torch.randn(2, 197, 384)
        else:
            self.model = self._conv(64)
            self.input = torch.randn(1, 3, 224, 224)
        self._forward()  # warm-up: first-call costs stay out of the items' times

    @staticmethod
    def _conv(w: int):
        import torch

        return torch.nn.Sequential(
            torch.nn.Conv2d(3, w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(w, w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(w, 2 * w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
        ).eval()

    def _forward(self) -> float:
        import torch

        with torch.inference_mode():
            return float(self.model(self.input).sum())

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        t0 = time.time()
        self._forward()
        sample.payload["span"] = (os.getpid(), t0, time.time())
        return sample


class SpanSink:
    """Keeps nothing but each item's (pid, start, end), returned in the shard's summary."""

    def clear_shard(self, index, samples) -> None:
        pass

    def write_shard(self, index, samples) -> dict:
        return {"spans": [s.payload["span"] for s in samples]}

    def committed(self, index, marker) -> None:
        pass


def measure(
    kind: str, workers: int, threads: int, items: int, per_shard: int
) -> tuple[float, float, float]:
    """(wall seconds per item while the stage works, the same while every worker works: one
    over the sum of the workers' rates, each worker's items over its first start to last end,
    so workers that start apart are not charged for it; seconds per item inside a worker)."""
    samples = [Sample(Video(id=f"v{i}", source=f"/x/{i}.mp4")) for i in range(items)]
    shards = [samples[i : i + per_shard] for i in range(0, items, per_shard)]
    with tempfile.TemporaryDirectory() as work:
        results = LocalExecutor(workers, threads).run(
            Pipeline([ModelStage(kind)]), SpanSink(), shards, Path(work)
        )
    spans = [tuple(s) for r in results for s in r.summary["spans"]]
    wall = max(s[2] for s in spans) - min(s[1] for s in spans)
    inside = sum(s[2] - s[1] for s in spans)
    rate = 0.0
    for pid in {s[0] for s in spans}:
        mine = [s for s in spans if s[0] == pid]
        rate += len(mine) / (max(s[2] for s in mine) - min(s[1] for s in mine))
    return wall / len(spans), 1 / rate, inside / len(spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vit", "conv"], choices=["vit", "conv"])
    ap.add_argument("--items", type=int, default=48, help="items (one image each)")
    ap.add_argument("--per-shard", type=int, default=4, help="items per shard")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each setting; best kept")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cores = available_cores()
    runs = [
        ("1 worker, torch's default threads", 1, 0),
        (f"2 workers, {cores} threads each (the old default)", 2, cores),
        (f"2 workers, their share ({max(1, cores // 2)} thread(s) each)", 2, 0),
    ]
    best: dict[tuple[str, str], tuple[float, float, float]] = {}
    for _ in range(args.repeats):  # settings interleaved: a busy spell hits each alike
        for kind in args.models:
            for label, workers, threads in runs:
                got = measure(kind, workers, threads, args.items, args.per_shard)
                old = best.get((kind, label))
                best[kind, label] = got if old is None or got[0] < old[0] else old
    print(f"{cores} cores, {args.items} items, {args.per_shard} per shard, best of {args.repeats}")
    print(
        f"{'model':<6} {'run':<48} {'wall s/item':>11} {'vs 1':>6} "
        f"{'steady s/item':>13} {'vs 1':>6} {'in-worker':>10}"
    )
    for kind in args.models:
        base, steady_base, _ = best[kind, runs[0][0]]
        for label, _, _ in runs:
            wall, steady, inside = best[kind, label]
            print(
                f"{kind:<6} {label:<48} {wall:>11.4f} {wall / base:>5.2f}x "
                f"{steady:>13.4f} {steady / steady_base:>5.2f}x {inside:>10.4f}"
            )


if __name__ == "__main__":
    main()
