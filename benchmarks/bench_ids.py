"""Benchmark: the video-id database (internvid.ids), peak RSS of imports at N and N/100 ids.

    python benchmarks/bench_ids.py [--rows 10000000] [--memory-limit 24MB] [--threads 1]
                                   [--no-jsonl] [--keep DIR]

Writes N random valid YouTube ids as a CSV (youtube_id, a second column), as Parquet and, unless
--no-jsonl, as InternVid release rows (jsonl: YoutubeID, timestamps, a caption); the first N/100
ids as a small CSV. Each step runs in a fresh child process: each import into a fresh database,
then a re-import of the big CSV into its database (adds nothing: every id is held), the small CSV
into that database as a second dataset, the overlap of the two (N/100 exactly), its export to
Parquet and a contains() of 100,000 ids; then the big CSV into the Parquet import's database
as a second dataset and the overlap of those two (N ids each, all shared). Reports each child's peak RSS (ru_maxrss), rows/s and the
ratio of the N and N/100 import peaks (bounded memory: close to 1).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHUNK = 1_000_000


def _ids(n: int, seed: int) -> list[str]:
    """n random ids (11 base64url characters of 9 random bytes)."""
    import random

    rng = random.Random(seed)
    raw = base64.urlsafe_b64encode(rng.randbytes(9 * n)).decode()
    return [raw[i : i + 11] for i in range(0, 12 * n, 12)]


def generate(tmp: Path, rows: int, jsonl: bool) -> dict[str, Path]:
    """The files: big.csv (rows ids), small.csv (its first rows/100), big.jsonl (release rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = {"big.csv": tmp / "big.csv", "small.csv": tmp / "small.csv"}
    if jsonl:
        files["big.jsonl"] = tmp / "big.jsonl"
    small_n = rows // 100
    handles = {k: p.open("w", encoding="utf-8") for k, p in files.items()}
    schema = pa.schema([("youtube_id", pa.string()), ("views", pa.int64())])
    parquet = pq.ParquetWriter(tmp / "big.parquet", schema)
    try:
        handles["big.csv"].write("youtube_id,views\n")
        handles["small.csv"].write("youtube_id,views\n")
        written = 0
        for k in range(0, rows, CHUNK):
            ids = _ids(min(CHUNK, rows - k), seed=k)
            handles["big.csv"].write("".join(f"{v},{i % 977}\n" for i, v in enumerate(ids)))
            views = pa.array([i % 977 for i in range(len(ids))], pa.int64())
            parquet.write_table(pa.table([pa.array(ids), views], schema=schema))
            if written < small_n:
                handles["small.csv"].write(
                    "".join(f"{v},{i % 977}\n" for i, v in enumerate(ids[: small_n - written]))
                )
            if jsonl:
                handles["big.jsonl"].write(
                    "".join(
                        f'{{"YoutubeID": "{v}", "Start_timestamp": "00:00:{i % 60:02d}.000", '
                        f'"End_timestamp": "00:01:{i % 60:02d}.000", "Caption": "a man '
                        f'playing guitar in the park {i % 97}", "UMT_Score": 0.4}}\n'
                        for i, v in enumerate(ids)
                    )
                )
            written += len(ids)
    finally:
        for h in handles.values():
            h.close()
        parquet.close()
    return files


def child(args: argparse.Namespace) -> None:
    """The hidden mode: one step on a database, print JSON facts (with ru_maxrss)."""
    sys.path.insert(0, str(REPO / "src"))
    from internvid.config import IdsConfig
    from internvid.ids.database import IdDatabase

    db_path, step, *rest = args.child
    cfg = IdsConfig(memory_limit=args.memory_limit, threads=args.threads)
    out: dict = {}
    t0 = time.perf_counter()
    with IdDatabase.open(db_path, cfg) as db:
        if step == "import":
            src, dataset = rest
            s = db.import_file(src, dataset)
            out = {"rows": s.rows, "added": s.added, "malformed": s.malformed}
        elif step == "overlap":
            a, b = rest
            o = db.overlap(a, b)
            out = {"in_a": o.in_a, "in_b": o.in_b, "rows": o.in_both}
        elif step == "export":
            a, b, parquet = rest
            out = {"rows": db.export_overlap(a, b, parquet)}
        elif step == "contains":
            (parquet,) = rest
            probe = [f"{i:011d}" for i in range(50_000)]  # ids no one holds
            sql = "SELECT id FROM read_parquet(?) LIMIT 50000"
            probe += [r[0] for r in db.con.execute(sql, [str(parquet)]).fetchall()]
            t0 = time.perf_counter()  # the probe read is not the query
            out = {"rows": len(probe), "held": len(db.contains(probe))}
    out["seconds"] = time.perf_counter() - t0
    out["db_mb"] = os.path.getsize(db_path) / 1e6
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out))


def run_child(args: argparse.Namespace, *child_args: str | Path) -> dict:
    cmd = [sys.executable, __file__, "--memory-limit", args.memory_limit]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    cmd += ["--child", *map(str, child_args)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    sys.path.insert(0, str(REPO / "src"))
    from internvid.config import IdsConfig

    defaults = IdsConfig()  # the parent stays small: a child's ru_maxrss starts at its peak
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--memory-limit", default=defaults.memory_limit)
    ap.add_argument("--threads", type=int, default=defaults.threads)
    ap.add_argument("--no-jsonl", action="store_true", help="Skip the release-jsonl import.")
    ap.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args.generate, args.rows, not args.no_jsonl)
        return 0
    if args.child:
        child(args)
        return 0
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench_ids_"))
    tmp.mkdir(parents=True, exist_ok=True)
    n = args.rows
    res: dict[str, dict] = {}
    try:
        t0 = time.perf_counter()
        # in a child: a child's ru_maxrss starts at its parent's peak (Linux keeps it over exec)
        cmd = [sys.executable, __file__, "--rows", str(n), "--generate", str(tmp)]
        subprocess.run(cmd + (["--no-jsonl"] if args.no_jsonl else []), check=True)
        files = {
            p.name: p for p in sorted(tmp.iterdir()) if p.suffix in (".csv", ".jsonl", ".parquet")
        }
        sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:,.0f} MB" for k, p in files.items())
        print(f"generated {n:,} ids in {time.perf_counter() - t0:.0f} s: {sizes}", flush=True)
        shared = tmp / "shared.parquet"
        steps = [
            ("import N/100 csv", "small.duckdb", "import", files["small.csv"], "small"),
            ("import N csv", "big.duckdb", "import", files["big.csv"], "big"),
            ("import N parquet", "parquet.duckdb", "import", files["big.parquet"], "big"),
        ]
        if "big.jsonl" in files:
            steps.append(("import N jsonl", "jsonl.duckdb", "import", files["big.jsonl"], "big"))
        steps += [
            ("import N csv again", "big.duckdb", "import", files["big.csv"], "big"),
            (
                "import N/100 csv as 2nd dataset",
                "big.duckdb",
                "import",
                files["small.csv"],
                "small",
            ),
            ("overlap N, N/100", "big.duckdb", "overlap", "big", "small"),
            ("import N csv as 2nd dataset", "parquet.duckdb", "import", files["big.csv"], "csv"),
            ("overlap N, N (2 datasets)", "parquet.duckdb", "overlap", "big", "csv"),
            ("export_overlap N, N/100", "big.duckdb", "export", "big", "small", shared),
            ("contains 100,000 ids", "big.duckdb", "contains", shared),
        ]
        for label, db, *rest in steps:
            res[label] = run_child(args, tmp / db, *rest)
            print(label, json.dumps(res[label]), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"memory_limit {args.memory_limit}, threads {args.threads}")
    print("| step | rows | ids added | seconds | rows/s | DB MB | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in res.items():
        print(
            f"| {label} | {r['rows']:,} | {r.get('added', '')} | {r['seconds']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['db_mb']:.0f} | {r['maxrss_kb'] / 1024:.0f} |"
        )
    o = res["overlap N, N/100"]
    print(f"overlap: {o['rows']:,} shared of {o['in_a']:,} and {o['in_b']:,}")
    print(f"contains: {res['contains 100,000 ids']['held']:,} of 100,000 held")
    small = res["import N/100 csv"]["maxrss_kb"]
    for label in ("import N csv", "import N parquet", "import N jsonl"):
        if label in res:
            ratio = res[label]["maxrss_kb"] / small
            print(f"peak RSS ratio ({label} / import N/100 csv): {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
