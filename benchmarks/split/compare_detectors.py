"""Shot detectors side by side: ContentDetector, AdaptiveDetector and TransNetV2 on real videos.

Usage: python benchmarks/split/compare_detectors.py [--videos DIR] [--device DEVICE]

Each video in DIR (default ../shared/data/videos beside the repository) goes through one OnePass
decode per detector: PySceneDetect ContentDetector(27, 15) (the paper's), AdaptiveDetector()
(defaults) and TransNetV2Detector (threshold 0.5). Prints a markdown table with the cut frames
(first frame of each new scene) each detector finds and the seconds each pass took, next to a
pass with no detector (decode and downscale only). TransNetV2's weights load before the timing.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

from scenedetect import AdaptiveDetector, ContentDetector

from internvid.media.onepass import OnePass
from internvid.media.transnet import TransNetV2Detector, load_model, resolve_device

log = logging.getLogger("compare_detectors")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "videos"
MAX_LISTED = 8  # cut frames shown per cell before "... (N in all)"


def fmt_cuts(cuts: list[int]) -> str:
    """Cut frames for a table cell, truncated when long."""
    if not cuts:
        return "-"
    shown = ", ".join(map(str, cuts[:MAX_LISTED]))
    return shown if len(cuts) <= MAX_LISTED else f"{shown} ... ({len(cuts)} in all)"


def run_one(path: Path, factory: Callable[[], object] | None) -> tuple[float, int, list[int]]:
    """(seconds, frames, cut frames) of one OnePass over `path` with a detector from `factory`."""
    t0 = time.perf_counter()
    result = OnePass(factory, 1, None).run(path)
    seconds = time.perf_counter() - t0
    return seconds, result.frames_read, [a for a, _ in result.scenes[1:]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of .mp4 files")
    ap.add_argument("--device", default=None, help="TransNetV2 device (default: cuda if any)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyscenedetect").setLevel(logging.WARNING)
    videos = sorted(args.videos.glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no .mp4 files in {args.videos}")
    device = resolve_device(args.device)
    load_model(device)  # weights load once, outside the timings
    detectors: dict[str, Callable[[], object] | None] = {
        "decode only": None,
        "content": lambda: ContentDetector(threshold=27.0, min_scene_len=15),
        "adaptive": lambda: AdaptiveDetector(),
        "transnetv2": lambda: TransNetV2Detector(device=device),
    }
    rows = []
    for path in videos:
        runs = {name: run_one(path, factory) for name, factory in detectors.items()}
        frames = runs["decode only"][1]
        log.info(
            "%s: %d frames, %s", path.name, frames, {k: round(v[0], 2) for k, v in runs.items()}
        )
        rows.append((path.name, frames, runs))
    names = [n for n in detectors if n != "decode only"]
    print(f"\nTransNetV2 on {device}; seconds are whole passes (decode + detector)\n")
    head = [
        "video",
        "frames",
        *(f"{n} cuts" for n in names),
        "decode only s",
        *(f"{n} s" for n in names),
    ]
    print("| " + " | ".join(head) + " |")
    print("|---|---:|" + "---|" * len(names) + "---:|" * (len(names) + 1))
    for video, frames, runs in rows:
        cells = [video, str(frames), *(fmt_cuts(runs[n][2]) for n in names)]
        cells += [f"{runs[n][0]:.2f}" for n in ("decode only", *names)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
