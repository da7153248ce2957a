"""Peak memory of one split pass (detection + every frame need) against video length.

Usage: python benchmarks/split/bench_memory.py [--video V] [--hours 1.0]
Concatenates V (stream copy) into videos of growing length up to `--hours`, runs the split pass
with the standard frame needs on each in a fresh child process, and prints the child's peak RSS.
Flat memory: the ratio of the longest to the shortest stays near 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench_memory")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT.parent / "shared/data/videos/cosmos_clip_10s.mp4"


def child(path: str) -> None:
    """Run the pass and print its result and this process's peak RSS as JSON."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "split"))
    from bench_split import NEEDS

    from internvid.media.onepass import OnePass
    from internvid.media.probe import probe
    from internvid.media.scenes import detector_factory

    fps = probe(path).fps
    t0 = time.perf_counter()
    served = 0

    def consume(clip) -> None:  # a downstream stage taking each clip's frames as it closes
        nonlocal served
        served += sum(len(v) for v in clip.frames.values())

    r = OnePass(detector_factory("content"), round(fps), round(10 * fps), NEEDS).run(
        path, on_clip=consume
    )
    print(json.dumps({
        "frames": r.frames_read, "clips": len(r.clips), "served": served, "peak_buffered": r.peak_buffered,
        "seconds": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from internvid.media.ffmpeg import run_ffmpeg
    from internvid.media.probe import probe

    base = probe(args.video).duration
    target = int(args.hours * 3600 / base)
    counts = sorted({1, max(1, target // 6), target})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            path = args.video
            if n > 1:
                lst = Path(tmp) / f"x{n}.txt"
                lst.write_text(f"file '{args.video.resolve()}'\n" * n)
                path = Path(tmp) / f"x{n}.mp4"
                run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(path)])
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["minutes"] = n * base / 60
            rows.append(r)
            path.unlink() if n > 1 else None
    log.info(
        "video: %s concatenated; frame needs: middle, 1 fps, 4 uniform, 8 segments", args.video.name
    )
    log.info(
        "| video length, min | frames | clips | frames served | most frames held | seconds | peak RSS, MB |"
    )
    log.info("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        log.info(
            "| %.1f | %d | %d | %d | %d | %.1f | %.0f |",
            r["minutes"],
            r["frames"],
            r["clips"],
            r["served"],
            r["peak_buffered"],
            r["seconds"],
            r["rss_mb"],
        )
    log.info("peak RSS ratio (longest / shortest): %.2f", rows[-1]["rss_mb"] / rows[0]["rss_mb"])


if __name__ == "__main__":
    main()
