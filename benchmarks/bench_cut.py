"""Cutting clips: one ffmpeg pass per video (ours) vs one ffmpeg call per clip (the usual way).

Usage: python benchmarks/bench_cut.py [--video PATH] [--repeat N]
Prints seconds for each way on the same clips and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from internvid.media.cut import CutSpec, cut_exact
from internvid.media.ffmpeg import run_ffmpeg
from internvid.media.onepass import OnePass
from internvid.media.scenes import detector_factory
from internvid.media.synth import Segment, SynthVideo, make_video

log = logging.getLogger("bench_cut")


def per_clip_baseline(
    src: Path, ranges: list[tuple[int, int]], fps: float, out: Path, spec: CutSpec
) -> None:
    """One accurate-seek re-encode per clip: what most pipelines do (video2dataset, scripts)."""
    out.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(ranges):
        args = ["-ss", f"{max(0.0, (a - 0.5) / fps):.6f}", "-i", str(src), "-frames:v", str(b - a)]
        args += [
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-c:a",
            "aac",
            "-c:v",
            spec.codec,
            "-pix_fmt",
            "yuv420p",
        ]
        args += ["-crf", str(spec.crf), "-preset", spec.preset, str(out / f"{i:05d}.mp4")]
        run_ffmpeg(args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--video", type=Path, help="a real video (default: a 60 s synthetic one, 640x360)"
    )
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="bench_cut_"))
    try:
        if args.video:
            src = args.video
        else:
            sources = ["testsrc2", "mandelbrot", "smptehdbars", "color=c=0x3050a0"]
            segs = tuple(Segment(sources[i % 4], 3.0) for i in range(20))
            src = make_video(
                SynthVideo("bench", segs, fps=25, width=640, height=360), tmp / "bench.mp4"
            )
        scenes = OnePass(detector_factory("content"), 1, None).run(src)
        ranges = [(c.start, c.end) for c in scenes.clips]
        spec = CutSpec()
        timings = {"one pass (ours)": [], "per clip (baseline)": []}
        for r in range(args.repeat):
            t0 = time.perf_counter()
            cut_exact(src, ranges, scenes.fps, tmp / f"ours{r}", spec)
            timings["one pass (ours)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            per_clip_baseline(Path(src), ranges, scenes.fps, tmp / f"base{r}", spec)
            timings["per clip (baseline)"].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in timings.items()}
        log.info(
            "video: %s, %d clips, %.1f s of video",
            src,
            len(ranges),
            scenes.frames_read / scenes.fps,
        )
        log.info("| method | best of %d, s |", args.repeat)
        log.info("|---|---:|")
        for k, v in best.items():
            log.info("| %s | %.2f |", k, v)
        log.info(
            "speed-up (baseline / ours): %.2fx",
            best["per clip (baseline)"] / best["one pass (ours)"],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
