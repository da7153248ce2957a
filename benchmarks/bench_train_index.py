"""Benchmark: the training index (train/index.py) at N and N/100 clips, peak RSS of each.

    python benchmarks/bench_train_index.py [--clips 10000000] [--per-shard 1000] [--real 200]

Two parts, each in fresh child processes:
1. Index at scale: N clips in N/per-shard shards. The tars are empty files (their size and
   mtime name the index file) and each shard's index file is written as `build_index_file`
   writes it (the same schema and footer), with release-like captions, so no 10 GB of tars
   are needed. The child opens `ShardClips` over all shards (reads every footer), then reads
   20,000 clips at random positions and the 50% subset's first 20,000 (the official draw).
2. Index from real tars: --real tars of per-shard clips (KEY.mp4 + KEY.txt + KEY.json) indexed
   from scratch, against 1/10 of them: building reads one tar at a time.
Reports each child's peak RSS (ru_maxrss), timings and the ratio of the peaks.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench_manifest import WORDS  # the same caption vocabulary

REPO = Path(__file__).resolve().parents[1]


def _caption(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 16)))


def fabricate(folder: Path, cache: Path, clips: int, per_shard: int) -> int:
    """Empty tars + their index files (the layout build_index_file writes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(REPO / "src"))
    from internvid.train import index as idx

    rng = random.Random(0)
    folder.mkdir(parents=True)
    shards = -(-clips // per_shard)
    skipped = json.dumps({"no_video": 0, "no_caption": 0, "bad_json": 0, "short_caption": 0})
    schema = idx._schema().with_metadata({"skipped": skipped})
    for s in range(shards):
        n = min(per_shard, clips - s * per_shard)
        tar = folder / f"{s:06d}.tar"
        tar.touch()
        offsets = [512 + 4096 * i for i in range(n)]
        table = pa.table(
            [
                [f"vid{s:06d}_{i:04d}_000001000_000004000" for i in range(n)],
                offsets,
                [3000] * n,
                [_caption(rng) for _ in range(n)],
                [1.0] * n,
                [3.0] * n,
                [[]] * n,
                [[]] * n,
            ],
            schema=schema,
        )
        dest = idx.index_file_for(tar, True, 2, cache)
        dest.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, dest)
    return shards


def real_tars(folder: Path, tars: int, per_shard: int) -> None:
    rng = random.Random(1)
    folder.mkdir(parents=True)
    for s in range(tars):
        with tarfile.open(folder / f"{s:06d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(per_shard):
                key = f"vid{s:06d}_{i:04d}_000001000_000004000"
                row = {"duration": 3.0, "meta": json.dumps({"start_shift": 1.0})}
                members = (
                    ("mp4", b"\x00" * 256),
                    ("txt", _caption(rng).encode()),
                    ("json", json.dumps(row).encode()),
                )
                for ext, data in members:
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def child(folder: str, cache: str, reads: int) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from internvid.train.data import ShardClips

    shards = sorted(str(p) for p in Path(folder).glob("*.tar"))
    t0 = time.perf_counter()
    data = ShardClips(shards, cache_dir=cache)
    opened = time.perf_counter() - t0
    rng = random.Random(2)
    t0 = time.perf_counter()
    for _ in range(reads):
        data.clips[rng.randrange(len(data))]
    random_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sub = ShardClips(shards, cache_dir=cache, subset=0.5, subset_seed=42)
    for i in range(min(reads, len(sub))):
        sub.clips[i]
    subset_s = time.perf_counter() - t0
    facts = {
        "clips": len(data),
        "shards": len(shards),
        "open_s": opened,
        "reads": reads,
        "random_s": random_s,
        "subset_s": subset_s,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(facts))


def run_child(folder: Path, cache: Path, reads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), str(cache), "--reads", str(reads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(title: str, res: dict[str, dict]) -> None:
    print(f"\n{title}")
    print("| run | clips | shards | open s | random reads | read s | subset s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in res.items():
        print(
            f"| {label} | {r['clips']:,} | {r['shards']:,} | {r['open_s']:.1f} | {r['reads']:,} |"
            f" {r['random_s']:.2f} | {r['subset_s']:.2f} | {r['maxrss_kb'] / 1024:.0f} |"
        )
    a, b = (r["maxrss_kb"] for r in res.values())
    print(f"peak RSS ratio: {b / a:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--clips", type=int, default=10_000_000)
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--real", type=int, default=200, help="real tars to index (0: skip)")
    ap.add_argument("--reads", type=int, default=20_000)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.reads)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_index_"))
    try:
        res: dict[str, dict] = {}
        for label, n in (("N/100", args.clips // 100), ("N", args.clips)):
            t0 = time.perf_counter()
            fabricate(tmp / label.replace("/", "_"), tmp / f"cache_{n}", n, args.per_shard)
            print(f"fabricated {n:,} clips in {time.perf_counter() - t0:.0f} s", flush=True)
            res[label] = run_child(tmp / label.replace("/", "_"), tmp / f"cache_{n}", args.reads)
        print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
        _table("Index files at scale (fabricated tars and index files):", res)
        if args.real:
            real: dict[str, dict] = {}
            for label, n in (("1/10", max(1, args.real // 10)), ("all", args.real)):
                folder = tmp / f"real_{n}"
                real_tars(folder, n, args.per_shard)
                real[label] = run_child(folder, tmp / f"real_cache_{n}", args.reads)
            _table("Indexed from real tars (built from scratch, one tar at a time):", real)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
