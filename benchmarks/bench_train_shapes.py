"""Does training learn? ViCLIP vs an image-only baseline on the synthetic moving-shapes task.

Trains configs/shapes.yaml (4 frames) and the same with 1 frame (image-only) for a few seeds on
CPU and prints held-out text-to-video R@1 and direction accuracy, against chance (2.1% / 25%)
and against the image-only model. Usage: python benchmarks/bench_train_shapes.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from internvid.train import main

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "shapes.yaml"
CHANCE = {"t2v_r1": 100 / 48, "direction_acc": 25.0}


def train(frames: int, seed: int, folder: Path) -> tuple[dict[str, float], float]:
    t0 = time.perf_counter()
    out = folder / f"f{frames}_s{seed}"
    args = ["--config", str(CONFIG), "--frames", str(frames), "--seed", str(seed)]
    result = main([*args, "--out", str(out), "--log-every", "0"])
    return result["heldout"], time.perf_counter() - t0


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows: dict[str, list[tuple[dict[str, float], float]]] = {"video": [], "image": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, frames in (("video", 4), ("image", 1)):
                scores, secs = train(frames, seed, Path(tmp))
                rows[name].append((scores, secs))
                print(
                    f"seed {seed} {name:5s}: t2v R@1 {scores['t2v_r1']:5.1f}%  "
                    f"direction {scores['direction_acc']:5.1f}%  ({secs:.0f} s)",
                    flush=True,
                )
    print(f"\n| model | t2v R@1 % (x chance) | direction acc % | train s | ({args.seeds} seeds)")
    print("|---|---|---|---|")
    mean = {
        name: {k: statistics.mean(s[k] for s, _ in r) for k in CHANCE} for name, r in rows.items()
    }
    for name, r in rows.items():
        m = mean[name]
        lo = {k: min(s[k] for s, _ in r) for k in CHANCE}
        secs = statistics.mean(t for _, t in r)
        print(
            f"| {name} ViCLIP | {m['t2v_r1']:.1f} (min {lo['t2v_r1']:.1f}; "
            f"{m['t2v_r1'] / CHANCE['t2v_r1']:.1f}x) | {m['direction_acc']:.1f} "
            f"(min {lo['direction_acc']:.1f}) | {secs:.0f} |"
        )
    ratio = mean["video"]["direction_acc"] / mean["image"]["direction_acc"]
    print(f"\nvideo / image-only direction accuracy: {ratio:.2f}x; chance is 25%")


if __name__ == "__main__":
    run()
