"""Benchmark: `internvid subset` div / flt / aes on 10M synthetic release rows, time and peak RSS.

    PYTHONPATH=src python benchmarks/bench_subsets.py --rows 10000000 --memory-limits 1GB,512MB
    PYTHONPATH=src python benchmarks/bench_subsets.py --sampler-only \\
        --sampler-rows 10000000,20000000,234000000 --numpy-max-rows 20000000

Generates release-like rows (11-character YouTube ids, about 33 clips a video with a skewed
spread, HH:MM:SS.mmm timestamps, 10-20 word captions, Aesthetic_Score and UMT_Score) with
vectorised NumPy -> pyarrow into a temporary folder: a release .jsonl (written by DuckDB) and a
clips.parquet of the same rows (`--formats`). Runs each rule in a fresh child process
(`python -m internvid subset RULE INPUT ...`) at each DuckDB memory limit and reports its wall
time and peak RSS (`getrusage(RUSAGE_CHILDREN).ru_maxrss` of a small launcher process). Each DIV
selection is checked against the release's draw as Data/InternVid/div_sampling.py writes it
(`np.random.seed(42); np.random.choice(n, N, replace=False, p=w / w.sum())` over the canonical
order). Then two children run only the sampler on the same video counts, that NumPy call on the
expanded weights and `div_choice`, to compare their time and memory and check they draw the same
indices. `--sampler-rows` repeats the sampler comparison at other sizes (clips per video and N
in the release's proportions: 33 clips a video, N = rows x 10,647,458 / 234M; the full release is
234000000), NumPy's call only up to `--numpy-max-rows` (it holds ~40 bytes a row);
`--release-scale` is `--sampler-rows 234000000`; `--sampler-only` skips the subset runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

logger = logging.getLogger("bench_subsets")

REPO = Path(__file__).resolve().parents[1]  # the repository root (src/ goes on PYTHONPATH)
CLIPS_PER_VIDEO = 33  # the release: 234M clips of 7.1M videos
RELEASE_ROWS, RELEASE_VIDEOS = 234_000_000, 7_100_000  # the release's candidates for DIV
RELEASE_DIV = 10_647_458  # clips the release's DIV drew
GEN_CHUNK = 1_000_000  # rows generated (and written as one row group) at a time
_WORDS_TEXT = (
    "a man woman child dog cat playing guitar piano in on the with and of near park city street "
    "river beach kitchen cooking talking about walking running car road mountain snow water "
    "people group two three young old red blue white black small large room table computer "
    "using holding showing video game football field stage dancing singing music crowd"
)  # caption vocabulary
WORDS = _WORDS_TEXT.split()  # the words captions are drawn from
ID_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # YouTube ids


@dataclass
class Truth:
    """What the generator drew, to rebuild NumPy's reference DIV draw."""

    ids: np.ndarray  # video ids, sorted: lexicographic order = index order
    video: np.ndarray  # video index of every row, in file order
    start_ms: np.ndarray  # Start_timestamp of every row
    end_ms: np.ndarray  # End_timestamp of every row


def _timecodes(ms: np.ndarray) -> pa.Array:
    """HH:MM:SS.mmm strings, vectorised."""
    parts = [ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60]
    text = [pc.utf8_lpad(pa.array(p).cast(pa.string()), 2, "0") for p in parts]
    milli = pc.utf8_lpad(pa.array(ms % 1000).cast(pa.string()), 3, "0")
    return pc.binary_join_element_wise(pc.binary_join_element_wise(*text, ":"), milli, ".")


def generate(folder: Path, rows: int, formats: list[str], seed: int = 0) -> tuple[Truth, dict]:
    """Write the synthetic rows; returns the truth and {format: input path}."""
    rng = np.random.default_rng(seed)
    n_videos = max(rows // CLIPS_PER_VIDEO, 1)
    raw = np.frombuffer(ID_ALPHABET, "S1")[rng.integers(0, 64, (n_videos * 2, 11))]
    ids = np.unique(raw.view("S11").ravel())[:n_videos]
    ids = np.sort(rng.permutation(ids)[:n_videos]).astype(str)
    popularity = rng.lognormal(0.0, 1.0, n_videos)
    video = rng.choice(n_videos, size=rows, p=popularity / popularity.sum()).astype(np.int32)
    start_ms = rng.integers(0, 1_800_000, rows)
    dur_ms = np.clip(np.exp(rng.normal(np.log(4.0), 0.9, rows)) * 1000, 200, 600_000)
    end_ms = start_ms + dur_ms.astype(np.int64)
    words = pa.array(WORDS)
    base = folder / "release.parquet"
    with pq.ParquetWriter(base, _release_schema()) as writer:
        for lo in range(0, rows, GEN_CHUNK):
            hi = min(lo + GEN_CHUNK, rows)
            m = hi - lo
            n_words = rng.integers(10, 21, m)
            offsets = np.concatenate([[0], np.cumsum(n_words)]).astype(np.int32)
            picks = words.take(pa.array(rng.integers(0, len(WORDS), offsets[-1])))
            captions = pc.binary_join(pa.ListArray.from_arrays(offsets, picks), " ")
            table = pa.table(
                {
                    "YoutubeID": pa.array(ids).take(pa.array(video[lo:hi])),
                    "Start_timestamp": _timecodes(start_ms[lo:hi]),
                    "End_timestamp": _timecodes(end_ms[lo:hi]),
                    "Caption": captions,
                    "Aesthetic_Score": rng.normal(4.5, 0.8, m).round(6),
                    "UMT_Score": rng.normal(0.35, 0.05, m).round(6),
                },
                schema=_release_schema(),
            )
            writer.write_table(table)
    import duckdb

    inputs = {}
    con = duckdb.connect(config={"preserve_insertion_order": True})
    con.execute("SET enable_progress_bar = false")
    if "jsonl" in formats:
        inputs["jsonl"] = folder / "release.jsonl"
        con.execute(f"COPY (SELECT * FROM '{base}') TO '{inputs['jsonl']}' (FORMAT json)")
    if "parquet" in formats:
        inputs["parquet"] = folder / "run" / "clips.parquet"
        inputs["parquet"].parent.mkdir()
        con.execute(_clips_parquet_sql(base, inputs["parquet"]))
    con.close()
    base.unlink()
    return Truth(ids, video, start_ms, end_ms), inputs


def _release_schema() -> pa.Schema:
    return pa.schema(
        [
            ("YoutubeID", pa.string()),
            ("Start_timestamp", pa.string()),
            ("End_timestamp", pa.string()),
            ("Caption", pa.string()),
            ("Aesthetic_Score", pa.float64()),
            ("UMT_Score", pa.float64()),
        ]
    )


def _clips_parquet_sql(base: Path, out: Path) -> str:
    """The same rows in the clips.parquet layout (ViCLIP score = the UMT score)."""

    def ms(col: str) -> str:
        return (
            f"((CAST(split_part({col}, ':', 1) AS BIGINT) * 3600 + "
            f"CAST(split_part({col}, ':', 2) AS BIGINT) * 60) * 1000 + "
            f"CAST(replace(split_part({col}, ':', 3), '.', '') AS BIGINT))"
        )

    return f"""COPY (
        SELECT YoutubeID || '_' || replace(replace(Start_timestamp, ':', ''), '.', '') || '_'
                   || replace(replace(End_timestamp, ':', ''), '.', '') AS clip_id,
               YoutubeID AS video_id, {ms("Start_timestamp")} / 1000 AS "start",
               {ms("End_timestamp")} / 1000 AS "end",
               ({ms("End_timestamp")} - {ms("Start_timestamp")}) / 1000 AS duration,
               '/videos/' || YoutubeID || '.mp4' AS source, 30.0 AS fps,
               640::INTEGER AS width, 360::INTEGER AS height,
               MAP {{'coarse': Caption, 'fused': Caption}} AS captions,
               MAP {{'aesthetic': Aesthetic_Score, 'text_overlay': 0.1::DOUBLE,
                     'viclip_sim': UMT_Score}} AS scores,
               []::VARCHAR[] AS frame_captions, '{{}}' AS meta, 'cut' AS status,
               0::INTEGER AS shard
        FROM '{base}') TO '{out}' (FORMAT parquet, COMPRESSION zstd)"""


# Runs the command given as its arguments and prints getrusage(RUSAGE_CHILDREN).ru_maxrss (KiB).
# The benchmark holds hundreds of MB (the generated truth); Linux counts a parent's RSS at fork /
# vfork time into the child's ru_maxrss, so every command is started from this small launcher.
LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one child process, started from a small launcher."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, env=env, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    maxrss_kib = int(proc.stderr.strip().splitlines()[-1])
    return wall, maxrss_kib / 1024, proc.stdout.strip()


def release_draw(weights: np.ndarray, size: int, seed: int) -> np.ndarray:
    """div_sampling.py's draw as written there: NumPy's global legacy generator."""
    np.random.seed(seed)
    return np.random.choice(len(weights), size, replace=False, p=weights / weights.sum())


def verify_div(truth: Truth, out_parquet: Path, size: int, seed: int) -> bool:
    """Does the DIV output hold exactly the rows the release's draw picks?"""
    rows = np.arange(truth.video.size)
    order = np.lexsort((rows, truth.end_ms, truth.start_ms, truth.video))
    counts = np.bincount(truth.video[order])
    counts = counts[counts > 0]
    picked = order[release_draw(np.repeat(1.0 / counts, counts), size, seed)]
    expected = sorted(
        f"{truth.ids[truth.video[i]]}_{_hms(truth.start_ms[i])}_{_hms(truth.end_ms[i])}"
        for i in picked
    )
    got = sorted(pq.read_table(out_parquet, columns=["clip_id"])["clip_id"].to_pylist())
    return got == expected


def _hms(ms: int) -> str:
    return f"{ms // 3_600_000:02d}{ms // 60_000 % 60:02d}{ms // 1000 % 60:02d}{ms % 1000:03d}"


SAMPLER_CHILD = """
import sys, numpy as np
counts = np.load(sys.argv[2]); size = int(sys.argv[3])
if sys.argv[1] == "numpy":  # Data/InternVid/div_sampling.py's lines on the same weights
    w = np.repeat(1.0 / counts, counts)
    np.random.seed(42)
    w = w / w.sum()
    idx = np.random.choice(len(w), size, replace=False, p=w)
else:
    from internvid.subsets.sampling import div_choice
    idx = div_choice(counts, size, 42)  # default rng: legacy
np.save(sys.argv[4], idx)
"""  # a child that runs one sampler on the video counts and saves the drawn indices


def release_scale_counts(rows: int, videos: int, seed: int = 1) -> np.ndarray:
    """Clips per video at the release's scale: `videos` videos, `rows` clips, skewed."""
    rng = np.random.default_rng(seed)
    popularity = rng.lognormal(0.0, 1.0, videos)
    return rng.multinomial(rows - videos, popularity / popularity.sum()) + 1


def compare_samplers(
    counts: np.ndarray, size: int, folder: Path, with_numpy: bool = True
) -> list[tuple]:
    """NumPy's call vs div_choice on the same counts: (name, wall, RSS, same draw)."""
    np.save(folder / "counts.npy", counts)
    rows = []
    for name in ("numpy", "div_choice") if with_numpy else ("div_choice",):
        (folder / f"idx_{name}.npy").unlink(missing_ok=True)
        cmd = [sys.executable, "-c", SAMPLER_CHILD, name, str(folder / "counts.npy"), str(size)]
        wall, rss, _ = run_child([*cmd, str(folder / f"idx_{name}.npy")])
        rows.append(
            (f"{name}: {int(counts.sum()):,} rows, {counts.size:,} videos, N {size:,}", wall, rss)
        )
        logger.info("sampler %s: %.1f s, %.0f MB", rows[-1][0], wall, rss)
    if not with_numpy:
        return [(*r, "(NumPy not run)") for r in rows]
    same = np.array_equal(np.load(folder / "idx_numpy.npy"), np.load(folder / "idx_div_choice.npy"))
    return [(*r, "yes" if same else "NO") for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="synthetic release rows")
    ap.add_argument("--size", type=int, default=None, help="N for div/flt (default rows/20)")
    ap.add_argument("--formats", default="jsonl,parquet", help="inputs: jsonl, parquet")
    ap.add_argument("--rules", default="div,flt,aes", help="rules to run")
    ap.add_argument("--memory-limits", default="1GB,512MB", help="DuckDB limits, each run")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    ap.add_argument(
        "--release-scale",
        action="store_true",
        help="also compare the samplers at 234M rows / 7.1M videos (needs ~9 GB for NumPy's)",
    )
    ap.add_argument(
        "--sampler-rows",
        default="",
        help="comma-separated row counts to compare the samplers at (release proportions)",
    )
    ap.add_argument(
        "--numpy-max-rows",
        type=int,
        default=None,
        help="run NumPy's call only up to this many rows (default: always)",
    )
    ap.add_argument("--sampler-only", action="store_true", help="no generated rows, no subset runs")
    ap.add_argument("--keep", type=Path, default=None, help="generate into this folder, keep it")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = args.size or args.rows // 20
    formats = args.formats.split(",")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_subsets_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results, samplers, sizes, gen_s = [], [], {}, 0.0
        runs, inputs = [], {}
        if not args.sampler_only:
            t0 = time.perf_counter()
            truth, inputs = generate(folder, args.rows, formats)
            gen_s = time.perf_counter() - t0
            sizes = {k: v.stat().st_size / 1e6 for k, v in inputs.items()}
            logger.info("generated %s rows in %.1f s: %s", f"{args.rows:,}", gen_s, sizes)
            runs = [
                (limit, fmt, rule)
                for limit in args.memory_limits.split(",")
                for fmt in inputs
                for rule in args.rules.split(",")
                if rule
            ]
        for limit, fmt, rule in runs:
            out = folder / f"out_{fmt}_{rule}"
            cmd = [sys.executable, "-m", "internvid", "-q", "subset", rule, str(inputs[fmt])]
            cmd += ["-o", str(out), "--memory-limit", limit]
            if rule in ("div", "flt"):
                cmd += ["-n", str(size)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            wall, rss, summary = run_child(cmd)
            ok = ""
            if rule == "div":
                ok = "yes" if verify_div(truth, Path(f"{out}.parquet"), size, 42) else "NO"
            logger.info(
                "%s %s %s: %.0f s, %.0f MB, %s %s", limit, fmt, rule, wall, rss, summary, ok
            )
            results.append((limit, fmt, rule, wall, rss, summary.split(" -> ")[0], ok))
            for suffix in (".jsonl", ".parquet"):
                Path(f"{out}{suffix}").unlink(missing_ok=True)
        if not args.sampler_only:
            counts = np.bincount(truth.video)
            samplers = compare_samplers(counts[counts > 0], size, folder)
        scales = [int(r) for r in args.sampler_rows.split(",") if r]
        if args.release_scale:  # the full release: 234M clips of 7.1M videos, DIV of 10,647,458
            scales.append(RELEASE_ROWS)
        for rows in scales:  # the release's proportions at `rows` rows
            videos = round(rows * RELEASE_VIDEOS / RELEASE_ROWS)
            n_div = round(rows * RELEASE_DIV / RELEASE_ROWS)
            counts = release_scale_counts(rows, videos)
            with_numpy = args.numpy_max_rows is None or rows <= args.numpy_max_rows
            samplers += compare_samplers(counts, n_div, folder, with_numpy)
        print_report(args, size, gen_s, sizes, results, samplers)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def print_report(
    args: argparse.Namespace,
    size: int,
    gen_s: float,
    sizes: dict[str, float],
    results: list[tuple[str, str, str, float, float, str, str]],
    samplers: list[tuple[str, float, float, str]],
) -> None:
    """The markdown table for benchmarks/RESULTS.md, on stdout."""
    lines = [
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        f", NumPy {np.__version__}",
    ]
    if not args.sampler_only:
        lines += [
            f"- Rows: {args.rows:,} ({args.rows // CLIPS_PER_VIDEO:,} videos), N = {size:,}; "
            f"generation {gen_s:.0f} s (not counted); "
            + ", ".join(f"{k} {v:,.0f} MB" for k, v in sizes.items()),
            "",
            "| memory_limit | input | rule | wall s | peak RSS MB | rows removed / drawn "
            "| = NumPy's draw |",
            "|---|---|---|---:|---:|---|---|",
        ]
        for limit, fmt, rule, wall, rss, summary, ok in results:
            lines.append(
                f"| {limit} | {fmt} | {rule} | {wall:.1f} | {rss:,.0f} | {summary} | {ok} |"
            )
    lines += [
        "",
        "| sampler only (DIV draw, seed 42) | wall s | peak RSS MB | same indices |",
        "|---|---:|---:|---|",
    ]
    for name, wall, rss, same in samplers:
        lines.append(f"| {name} | {wall:.1f} | {rss:,.0f} | {same} |")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
