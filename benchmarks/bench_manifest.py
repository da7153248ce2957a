"""Benchmark: release metadata -> shard manifests (io/manifest.py), peak RSS at N and N/100 lines.

    python benchmarks/bench_manifest.py [--lines 10000000] [--per-shard 8]

Generates N release-like rows (about 33 clips a video, a video's rows spread over the file, as
bench_subsets.py) and the first N/100 of them as a second file, then builds the manifests of
each in a fresh child process (`build_manifest`, URL template: no file checks) and reads every
shard of the small one and a sample of the large one's back. Reports each child's peak RSS
(ru_maxrss), its rows/s and the ratio of the two peaks (bounded memory: close to 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = [
    "a",
    "man",
    "woman",
    "child",
    "dog",
    "cat",
    "playing",
    "guitar",
    "piano",
    "in",
    "on",
    "the",
    "with",
    "and",
    "of",
    "near",
    "park",
    "city",
    "street",
    "river",
    "beach",
    "kitchen",
    "cooking",
    "talking",
    "about",
    "walking",
    "running",
    "car",
    "road",
    "mountain",
    "snow",
    "water",
]
ID_ALPHABET = string.ascii_letters + string.digits + "_-"


def _timecode(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def generate(big: Path, small: Path, lines: int, seed: int = 0) -> int:
    """`lines` rows to `big` (the first lines/100 to `small` too); returns the videos made.
    Videos come in windows of 64: a video's rows interleave with 63 others'."""
    rng = random.Random(seed)
    written, videos = 0, 0
    with big.open("w", encoding="utf-8") as fb, small.open("w", encoding="utf-8") as fs:
        while written < lines:
            window = []
            for _ in range(64):
                vid = "".join(rng.choices(ID_ALPHABET, k=11))
                window += [vid] * max(1, int(rng.expovariate(1 / 33)))
                videos += 1
            rng.shuffle(window)
            for vid in window[: lines - written]:
                start = rng.randrange(0, 3_600_000)
                obj = {
                    "YoutubeID": vid,
                    "Start_timestamp": _timecode(start),
                    "End_timestamp": _timecode(start + rng.randrange(500, 60_000)),
                    "Caption": " ".join(rng.choices(WORDS, k=rng.randint(10, 20))),
                    "Aesthetic_Score": round(rng.uniform(3.0, 6.5), 6),
                    "UMT_Score": round(rng.uniform(0.2, 0.55), 6),
                }
                line = json.dumps(obj) + "\n"
                fb.write(line)
                if written < lines // 100:
                    fs.write(line)
                written += 1
    return videos


def child(src: str, folder: str, per_shard: int) -> None:
    """The hidden mode: build the manifest of `src`, read shards back, print JSON facts."""
    sys.path.insert(0, str(REPO / "src"))
    from internvid.io.manifest import build_manifest

    def source_of(vid: str):
        return f"https://www.youtube.com/watch?v={vid}", None, True

    t0 = time.perf_counter()
    m = build_manifest(
        [src],
        folder,
        source_of,
        per_shard=per_shard,
        settings={"template": "url"},
        max_line_bytes=1 << 20,
        max_caption_chars=16384,
    )
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    step = max(1, m.shards // 200)  # 200 shards spread over the file
    clips = sum(len(s.clips) for k in range(0, m.shards, step) for s in m.shard(k))
    read = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "rows": m.rows,
                "videos": m.videos,
                "shards": m.shards,
                "build_s": build,
                "read_shards": len(range(0, m.shards, step)),
                "read_clips": clips,
                "read_s": read,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def run_child(src: Path, folder: Path, per_shard: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(src),
        str(folder),
        "--per-shard",
        str(per_shard),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--per-shard", type=int, default=8)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.per_shard)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_manifest_"))
    try:
        big, small = tmp / "big.jsonl", tmp / "small.jsonl"
        t0 = time.perf_counter()
        videos = generate(big, small, args.lines)
        print(
            f"generated {args.lines:,} lines, ~{videos:,} videos in {time.perf_counter() - t0:.0f} s"
        )
        res = {}
        for label, src in (("N/100", small), ("N", big)):
            res[label] = run_child(src, tmp / f"m_{label.replace('/', '_')}", args.per_shard)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        "| run | rows | videos | shards | build s | rows/s | shards read | read s | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in res.items():
        print(
            f"| {label} | {r['rows']:,} | {r['videos']:,} | {r['shards']:,} | {r['build_s']:.1f} | "
            f"{r['rows'] / r['build_s']:,.0f} | {r['read_shards']} | {r['read_s']:.2f} | "
            f"{r['maxrss_kb'] / 1024:.0f} |"
        )
    ratio = res["N"]["maxrss_kb"] / res["N/100"]["maxrss_kb"]
    print(f"peak RSS ratio (N / N/100): {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
