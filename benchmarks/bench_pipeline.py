"""`internvid run` throughput on synthetic videos: 1 worker (baseline) vs N workers, same input.

Usage: python benchmarks/bench_pipeline.py [--videos 8] [--workers 2]
Prints videos/s, seconds of video per second, per-stage seconds and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from internvid.config import RunConfig
from internvid.media.synth import DEMO_VIDEOS, make_video
from internvid.run import run

log = logging.getLogger("bench_pipeline")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        inp = tmp / "in"
        inp.mkdir()
        for i in range(args.videos):
            spec = DEMO_VIDEOS[i % len(DEMO_VIDEOS)]
            make_video(spec, inp / f"{spec.name}_{i}.mp4")
        results = {}
        for workers in (1, args.workers):
            cfg = RunConfig()
            cfg.workers = workers
            cfg.output.videos_per_shard = 1
            s = run([str(inp)], tmp / f"out{workers}", cfg, progress=False)
            results[workers] = s
            stages = ", ".join(f"{st['name']} {st['seconds']:.1f}" for st in s.stages)
            log.info(
                "workers=%d: %d videos, %d clips in %.2f s -> %.2f videos/s, %.1f s video/s (stage seconds: %s)",
                workers, s.videos, s.clips, s.wall_seconds, s.videos / s.wall_seconds,
                s.video_seconds / s.wall_seconds, stages,
            )  # fmt: skip
        ratio = results[1].wall_seconds / results[args.workers].wall_seconds
        log.info("speed-up (1 worker / %d workers): %.2fx", args.workers, ratio)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
