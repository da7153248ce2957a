"""Benchmark: stream a synthetic InternVid release file through iter_release_rows + ReleaseWriter.

    python benchmarks/bench_metadata_stream.py [--lines N]

Generates N realistic release lines (and a prefix of N/100 lines) in a temporary folder, then in a
fresh child process for each file reads every row and writes it back. Reports each child's peak RSS
(ru_maxrss), its rows/s, the ratio of the peak RSS of the N-line run to the N/100-line run (flat
memory: close to 1.0), and checks that each output file is byte-identical to its input (sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
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

logger = logging.getLogger("bench_metadata_stream")

REPO = Path(__file__).resolve().parents[1]
_WORDS_TEXT = (
    "a man woman child dog cat playing guitar piano in on the with and of near park city street "
    "river beach kitchen cooking talking about walking running car road mountain snow water "
    "people group two three young old red blue white black small large room table computer "
    "using holding showing video game football field stage dancing singing music crowd"
)
WORDS = _WORDS_TEXT.split()
ID_ALPHABET = string.ascii_letters + string.digits + "_-"


def _timecode(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def generate(big: Path, small: Path, lines: int, small_lines: int, seed: int = 0) -> None:
    """Write `lines` synthetic release rows to `big`, and the first `small_lines` also to `small`."""
    rng = random.Random(seed)
    with big.open("w", encoding="utf-8") as f_big, small.open("w", encoding="utf-8") as f_small:
        for i in range(lines):
            start = rng.randrange(0, 4 * 3_600_000)  # up to four hours into the video
            obj = {
                "YoutubeID": "".join(rng.choices(ID_ALPHABET, k=11)),
                "Start_timestamp": _timecode(start),
                "End_timestamp": _timecode(start + rng.randrange(500, 60_000)),
                "Caption": " ".join(rng.choices(WORDS, k=rng.randint(10, 20))),
                "Aesthetic_Score": round(rng.uniform(3.0, 6.5), 6),
                "UMT_Score": round(rng.uniform(0.2, 0.55), 6),
            }
            line = json.dumps(obj, ensure_ascii=False) + "\n"
            f_big.write(line)
            if i < small_lines:
                f_small.write(line)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def child(src: str, dst: str) -> None:
    """The hidden mode: stream `src` into `dst`, print rows, seconds and peak RSS as JSON."""
    try:
        from internvid.io.release import ReleaseWriter, iter_release_rows
    except ImportError:  # run from a checkout without the package installed
        sys.path.insert(0, str(REPO / "src"))
        from internvid.io.release import ReleaseWriter, iter_release_rows

    t0 = time.perf_counter()
    with ReleaseWriter(dst) as writer:
        for row in iter_release_rows(src):
            writer.write(row)
    seconds = time.perf_counter() - t0
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"rows": writer.count, "seconds": seconds, "maxrss_kb": maxrss_kb}))


def run_child(src: Path, dst: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(src), str(dst)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the large file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows")
    parser.add_argument("--child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.lines < 100:
        parser.error("--lines must be at least 100")

    small_lines = args.lines // 100
    tmp = Path(tempfile.mkdtemp(prefix="bench_release_"))
    try:
        big, small = tmp / "big.jsonl", tmp / "small.jsonl"
        t0 = time.perf_counter()
        generate(big, small, args.lines, small_lines, args.seed)
        logger.info(
            "generated %d lines (%.1f MB) in %.1f s",
            args.lines,
            big.stat().st_size / 1e6,
            time.perf_counter() - t0,
        )
        results = []
        for label, src, n in (("N/100", small, small_lines), ("N", big, args.lines)):
            dst = tmp / f"{src.stem}.out.jsonl"
            res = run_child(src, dst)
            same = sha256(src) == sha256(dst)
            if res["rows"] != n:
                raise SystemExit(f"{label}: child wrote {res['rows']} rows, expected {n}")
            results.append((label, n, src.stat().st_size, res, same))
            dst.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    header = f"{'run':<6} {'lines':>10} {'file MB':>9} {'seconds':>8} {'rows/s':>9} {'MB/s':>6} {'peak RSS MB':>12} {'sha256':>7}"
    print(header)
    print("-" * len(header))
    for label, n, size, res, same in results:
        print(
            f"{label:<6} {n:>10,} {size / 1e6:>9.1f} {res['seconds']:>8.2f} "
            f"{n / res['seconds']:>9,.0f} {size / 1e6 / res['seconds']:>6.1f} "
            f"{res['maxrss_kb'] / 1024:>12.1f} {'same' if same else 'DIFF':>7}"
        )
    ratio = results[1][3]["maxrss_kb"] / results[0][3]["maxrss_kb"]
    print(f"peak RSS ratio (N / N/100 lines): {ratio:.3f}")
    return 0 if all(r[4] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
