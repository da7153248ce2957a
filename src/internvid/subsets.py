"""The paper's subsets (DIV, FLT, Aes, random, SQL filter) from clips.parquet or release metadata."""

from __future__ import annotations

import enum
import functools
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# numpy, pyarrow and duckdb are imported where they are used: `internvid --help` stays fast
if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa

__all__ = [
    "DEFAULT_RNG",
    "DEFAULT_SEED",
    "Rng",
    "Rule",
    "Step",
    "SubsetError",
    "SubsetResult",
    "SubsetSpec",
    "choice_runs",
    "div_choice",
    "make_subset",
    "reference_choice",
    "register",
    "uniform_choice",
]

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42  # the seed the release drew InternVid-10M-DIV with
CHUNK_ROWS = 1 << 22  # rows of the weight vector the sampler expands at a time (32 MiB of float64)
BATCH_ROWS = 1 << 15  # rows per Arrow batch (and parquet row group) streamed into the outputs
DEFAULT_MEMORY_LIMIT = "4GB"  # DuckDB's memory_limit; past it, sorts and tables spill to disk
# scores exposed as plain DOUBLE columns (NULL when a clip lacks one); others: scores['key']
SCORE_COLUMNS = ("viclip_sim", "aesthetic", "clipscore", "text_overlay", "umt")
# release spellings of the score names -> our column names
SCORE_ALIASES = {"UMT_Score": "umt", "UMT-SIM": "umt", "Aesthetic_Score": "aesthetic"}
RELEASE_SCORES = ("aesthetic", "umt")  # the only scores release metadata carries
# the canonical row order: DIV and random draw over the candidates in this order, outputs use it
CANONICAL_ORDER = 'video_id, "start", "end", clip_id, _row'
_TIMECODE_RE = r"\d{2,}:[0-5]\d:[0-5]\d\.\d{3}"  # HH:MM:SS.mmm, as records.parse_timecode
_SAFE_ID_RE = r"[A-Za-z0-9_-]{1,128}"  # records.is_safe_id
_RELEASE_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")


class Rule(enum.StrEnum):
    """Which subset to build."""

    div = "div"  # InternVid-10M-DIV: N clips, each weighted 1 / (clips of its video)
    flt = "flt"  # InternVid-10M-FLT: duration 1-120 s, top 30% by a score, then DIV N
    aes = "aes"  # InternVid-Aes-18M: aesthetic >= 4 (optionally text_overlay <= a cap)
    random = "random"  # N clips uniformly (the 10M / 50M / 200M sets)
    where = "where"  # only the --where filter (plus a uniform sample when N is given)


class Rng(enum.StrEnum):
    """Which NumPy random stream the DIV and random draws use."""

    # np.random.seed(seed); np.random.choice(...): the legacy global RandomState (MT19937,
    # random_sample), what the release's Data/InternVid/div_sampling.py drew DIV with
    legacy = "legacy"
    generator = "generator"  # np.random.default_rng(seed).choice(...): PCG64's Generator.random


DEFAULT_RNG = Rng.legacy  # the release's DIV draw (np.random.seed(42); np.random.choice)
LEGACY_SEED_MAX = 2**32 - 1  # RandomState / np.random.seed take seeds 0 .. 2**32 - 1


class SubsetError(ValueError):
    """Bad input or options for a subset (the CLI logs it and exits with status 2)."""


@dataclass
class SubsetSpec:
    """What to select; the defaults are the paper's."""

    rule: Rule = Rule.div  # which subset
    size: int | None = None  # N: clips to draw (div, flt, random; optional for aes and where)
    seed: int = DEFAULT_SEED  # seed of the DIV and random draws (the release: 42)
    # random stream: legacy = np.random.seed(seed) + np.random.choice, as the release's
    # div_sampling.py; generator = np.random.default_rng(seed).choice
    rng: Rng = DEFAULT_RNG
    where: str | None = None  # DuckDB boolean expression applied first, for any rule
    score: str | None = None  # FLT's score: None = viclip_sim (umt for release input)
    top_fraction: float = 0.3  # FLT keeps floor(top_fraction * n) clips by the score
    min_duration: float = 1.0  # FLT drops clips shorter than this (seconds)
    max_duration: float = 120.0  # FLT drops clips longer than this (seconds)
    min_aesthetic: float = 4.0  # Aes keeps aesthetic >= this
    max_text_overlay: float | None = None  # Aes also keeps text_overlay <= this when set


@dataclass
class Step:
    """One rule of a subset and what it did."""

    label: str  # e.g. "duration 1-120 s", "top 30% by viclip_sim", "DIV"
    before: int  # rows in
    after: int  # rows out

    @property
    def removed(self) -> int:
        return self.before - self.after

    def describe(self) -> str:
        if self.label in ("DIV", "random"):
            return f"{self.label} {self.after:,} of {self.before:,}"
        return f"{self.label}: -{self.removed:,}"


@dataclass
class SubsetResult:
    """What `make_subset` wrote."""

    jsonl: Path  # PREFIX.jsonl, release format
    parquet: Path  # PREFIX.parquet, clips.parquet schema
    rows_in: int  # rows of the input
    rows: int  # rows written
    steps: list[Step] = field(default_factory=list)  # every rule, in order

    def summary(self) -> str:
        """`duration 1-120 s: -1,234; top 30% by viclip_sim: -5,678; DIV 10,000 of 45,678`."""
        return "; ".join(s.describe() for s in self.steps) or f"all {self.rows:,} rows"


# --- sampling: NumPy's weighted choice without replacement, without the weight vector -------------


def reference_choice(
    weights: np.ndarray, size: int, seed: int = DEFAULT_SEED, rng: Rng | str = DEFAULT_RNG
) -> np.ndarray:
    """NumPy's own draw: `choice(n, size, replace=False, p=w / w.sum())` of a fresh stream.

    rng "legacy": `np.random.RandomState(seed).choice`, the same stream as the release's
    `np.random.seed(seed); np.random.choice(...)` (without touching NumPy's global state);
    "generator": `np.random.default_rng(seed).choice`. Holds four n-row float64 arrays at its
    peak (the weights, p, NumPy's copy of p, its cdf); `choice_runs` returns the same indices,
    in the same order, in bounded memory.
    """
    import numpy as np

    w = np.asarray(weights, dtype=np.float64)
    chooser = np.random.RandomState(seed) if Rng(rng) is Rng.legacy else np.random.default_rng(seed)
    return chooser.choice(w.size, size=size, replace=False, p=w / w.sum())


def _uniforms(rng: Rng | str, seed: int) -> Any:
    """`k -> k uniforms in [0, 1)`: the draws NumPy's weighted choice makes each round.

    Legacy `RandomState.choice` calls `self.rand(k)` (= `random_sample(k)`: MT19937, 53-bit
    doubles) and `Generator.choice` calls `self.random(k)`; the rest of the two algorithms is
    the same (numpy/random/mtrand.pyx and _generator.pyx).
    """
    import numpy as np

    if Rng(rng) is Rng.legacy:
        if not 0 <= int(seed) <= LEGACY_SEED_MAX:
            raise ValueError(f"the legacy stream takes seeds 0 .. {LEGACY_SEED_MAX}, got {seed}")
        return np.random.RandomState(int(seed)).random_sample
    return np.random.default_rng(seed).random


def div_choice(
    video_counts: Any,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """DIV: rows grouped by video (counts in row order), each row weighted 1 / its video's count.

    Equals `reference_choice(np.repeat(1.0 / counts, counts), size, seed, rng)`: with the
    default legacy stream, the release's `np.random.seed(42); np.random.choice(len(data), N,
    replace=False, p=w / w.sum())` over the same rows in the same order.
    """
    import numpy as np

    counts = np.asarray(video_counts, dtype=np.int64)
    if counts.size and counts.min() <= 0:
        raise ValueError("video counts must be positive")
    return choice_runs(counts, 1.0 / counts, size, seed, rng, chunk_rows=chunk_rows)


def uniform_choice(
    n: int,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """`size` of `n` rows uniformly: `reference_choice(np.ones(n), size, seed, rng)`.

    That is the weighted algorithm with equal weights (NumPy's `choice(n, size, replace=False)`
    without p would take `permutation(n)[:size]` instead: n int64s, a different sample).
    """
    return choice_runs([n], [1.0], size, seed, rng, chunk_rows=chunk_rows)


def choice_runs(
    lengths: Any,
    values: Any,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """`reference_choice(np.repeat(values, lengths), size, seed, rng)`, bit for bit, in bounded
    memory.

    NumPy's `choice(n, size, replace=False, p=p)` — legacy `RandomState.choice`
    (numpy/random/mtrand.pyx) and `Generator.choice` (_generator.pyx) alike — is not a one-pass
    algorithm: it copies p, then repeats rounds until it has `size` distinct indices: draw
    `k = size - found` uniforms (`rand(k)`, MT19937's `random_sample`, for the legacy stream;
    `random(k)` for the Generator), zero p at the indices found so far,
    `cdf = cumsum(p); cdf /= cdf[-1]`, map each uniform to `cdf.searchsorted(x, 'right')`, and
    keep the new indices in order of first occurrence (`np.unique(return_index=True)`). The two
    differ only in where the uniforms come from (`_uniforms`).

    This function makes the same random draws and the same floating-point operations, but
    never holds the n-row weight vector: weights are runs (a value repeated `lengths[i]`
    times: one run per video for DIV), expanded `chunk_rows` at a time. Exactness rests on:
    - `w.sum()`: NumPy sums a contiguous float64 array pairwise (halves rounded down to a
      multiple of 8 until 128 elements or fewer). We recurse the same way and let `np.sum`
      do the blocks, so the total is the same double. A self-test checks this NumPy's sum
      splits that way; if not, the weights are expanded once to sum them (8 bytes a row).
    - `p = w / total` per run: the same division as elementwise.
    - the cumsum is sequential, so a chunk continues it exactly when the running total is
      added to its first element; one pass finds `cdf[-1]`, a second maps the sorted uniforms.
    Memory: O(runs) for the run arrays (4 x 8 bytes a run: lengths, ends, weights, p) +
    O(chunk_rows) + O(size) for the draws (x, its sort order, the hits, `found`, np.unique's
    temporaries: about 10 x 8 bytes a drawn row in the first round), never O(n); the stream
    (MT19937's 2.5 KB state or PCG64's) adds nothing. For the full release (234M clips of 7.1M
    videos, DIV of 10,647,458) it peaked at 905 MB RSS (benchmarks/RESULTS.md); NumPy's own
    call holds the weights, p, its copy of p and the cdf, 1.9 GB each: ~7.9 GB for the legacy
    call (extrapolated from 10M and 20M rows), 9.3 GB measured for the Generator's. Time: two passes over n rows a round, a handful of rounds (each round redraws only
    the repeats of the one before: p is zeroed at the rows found, so only a round's own
    duplicates are redrawn).
    """
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if lengths.shape != values.shape:
        raise ValueError("lengths and values must have the same size")
    if (lengths < 0).any():
        raise ValueError("run lengths must be non-negative")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("weights must be finite and non-negative")
    keep = lengths > 0  # empty runs add no rows
    lengths, values = lengths[keep], values[keep]
    n = int(lengths.sum())
    if size < 0:
        raise ValueError("negative sample size")
    if size > n:
        raise ValueError(f"cannot take {size:,} of {n:,} rows without replacement")
    if n == 0 or size == 0:
        return np.zeros(0, dtype=np.int64)
    chunk_rows = max(int(chunk_rows), 1)
    ends = np.cumsum(lengths)
    total = _pairwise_total(_Runs(ends, lengths, values), n, chunk_rows)
    p_runs = values / total  # (w / w.sum())[i] for every row i of the run
    if not np.isfinite(p_runs).all():
        raise ValueError("weights sum to zero")
    if int(lengths[p_runs > 0].sum()) < size:  # NumPy's own check
        raise ValueError("Fewer non-zero entries in p than size")
    p = _Runs(ends, lengths, p_runs)
    uniforms = _uniforms(rng, seed)
    found = np.zeros(size, dtype=np.int64)
    n_uniq = rounds = 0
    while n_uniq < size:
        x = uniforms(size - n_uniq)
        new = _search_round(p, n, np.sort(found[:n_uniq]), x, chunk_rows)
        _, first = np.unique(new, return_index=True)
        first.sort()
        new = new.take(first)
        found[n_uniq : n_uniq + new.size] = new
        n_uniq += new.size
        rounds += 1
    logger.debug("drew %d of %d rows in %d rounds", size, n, rounds)
    return found


class _Runs:
    """A float64 vector stored as runs: `values[i]` repeated `lengths[i]` times."""

    def __init__(self, ends: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> None:
        self.ends = (
            ends  # cumulative run lengths: run i covers rows [ends[i] - lengths[i], ends[i])
        )
        self.lengths = lengths  # rows per run (all > 0)
        self.values = values  # the value of every row of the run

    def expand(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) as a new contiguous float64 array."""
        import numpy as np

        r0 = int(np.searchsorted(self.ends, lo, side="right"))
        r1 = int(np.searchsorted(self.ends, hi - 1, side="right")) + 1
        ends = self.ends[r0:r1]
        reps = np.minimum(ends, hi) - np.maximum(ends - self.lengths[r0:r1], lo)
        return np.repeat(self.values[r0:r1], reps)


@functools.cache
def _numpy_sum_is_pairwise() -> bool:
    """True when np.sum of a contiguous float64 array splits the way `_split_sum` does."""
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (129, 1000, 5003, 40_000):
        a = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)
        runs = _Runs(np.arange(1, n + 1), np.ones(n, np.int64), a)
        if np.sum(a) != _split_sum(runs, 0, n, 128):
            return False
    return True


def _split_sum(runs: _Runs, lo: int, m: int, leaf: int) -> Any:
    """NumPy's pairwise sum of rows [lo, lo + m): its own halving, np.sum on blocks <= leaf rows."""
    import numpy as np

    if m <= max(leaf, 128):  # numpy sums blocks of <= 128 rows with 8 accumulators, not halving
        return np.sum(runs.expand(lo, lo + m))
    half = m // 2
    half -= half % 8  # numpy: "divide by two but avoid non-multiples of unroll factor"
    return _split_sum(runs, lo, half, leaf) + _split_sum(runs, lo + half, m - half, leaf)


def _pairwise_total(runs: _Runs, n: int, chunk_rows: int) -> Any:
    """`np.sum(runs expanded)`, bit for bit, expanding at most max(chunk_rows, 128) rows at once."""
    import numpy as np

    if n <= max(chunk_rows, 128) or _numpy_sum_is_pairwise():
        return _split_sum(runs, 0, n, chunk_rows)
    logger.warning("this NumPy does not sum pairwise as expected: expanding %d weights once", n)
    return np.sum(runs.expand(0, n))


def _search_round(
    p: _Runs, n: int, zeroed: np.ndarray, x: np.ndarray, chunk_rows: int
) -> np.ndarray:
    """One round of NumPy's loop: `cdf.searchsorted(x, 'right')` with p zeroed at `zeroed`."""
    import numpy as np

    def cdf_chunks() -> Any:  # yields (lo, cumsum(p)[lo:hi]) with the same doubles as NumPy
        carry = 0.0
        for lo in range(0, n, chunk_rows):
            hi = min(lo + chunk_rows, n)
            c = p.expand(lo, hi)
            a, b = np.searchsorted(zeroed, (lo, hi))
            c[zeroed[a:b] - lo] = 0.0
            c[0] += carry
            np.cumsum(c, out=c)
            carry = c[-1]
            yield lo, c

    for _, c in cdf_chunks():
        last = c[-1]  # cdf[-1]: what NumPy divides by
    order = np.argsort(x, kind="stable")
    xs = x[order]
    hits = np.empty(x.size, dtype=np.int64)
    prev = -np.inf
    for lo, c in cdf_chunks():
        c /= last
        a, b = np.searchsorted(xs, (prev, c[-1]), side="left")  # the x in [prev, c[-1])
        if b > a:
            hits[a:b] = lo + np.searchsorted(c, xs[a:b], side="right")
        prev = c[-1]
    new = np.empty_like(hits)
    new[order] = hits
    return new


# --- the input as one SQL view --------------------------------------------------------------------


def _sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ms_to_text(ms: str, fmt: str) -> str:
    """SQL: milliseconds -> `HH:MM:SS.mmm` (fmt with ':' and '.') or `HHMMSSmmm` (clip ids)."""
    return (
        f"printf({_sql_str(fmt)}, ({ms}) // 3600000, (({ms}) // 60000) % 60, "
        f"(({ms}) // 1000) % 60, ({ms}) % 1000)"
    )


def _resolve_input(path: Path) -> tuple[str, Path]:
    """("parquet" | "release", the file) for a run folder, a clips.parquet or a release .jsonl."""
    if path.is_dir():
        path = path / "clips.parquet"
        if not path.is_file():
            raise SubsetError(f"{path.parent} has no clips.parquet: not a run folder")
    if not path.is_file():
        raise SubsetError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet", path
    if name.endswith(_RELEASE_SUFFIXES):
        return "release", path
    raise SubsetError(f"{path}: expected a run folder, a .parquet or a release .jsonl[.gz]")


def _create_source(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, ignore_errors: bool
) -> None:
    """View `src`: one row per clip with the columns documented in `register`'s help."""
    scores = ", ".join(f"map_extract(scores, {_sql_str(k)})[1] AS {k}" for k in SCORE_COLUMNS)
    if kind == "parquet":
        caption = ", ".join(
            f"map_extract(captions, {_sql_str(k)})[1]" for k in ("fused", "release", "coarse")
        )
        con.execute(
            f"""CREATE VIEW src AS SELECT
                file_row_number AS _row, clip_id, video_id, "start", "end", duration, source, fps,
                width, height, captions, scores, frame_captions, meta, status, shard,
                coalesce({caption}) AS caption, {scores},
                CAST(round_even("start" * 1000, 0) AS BIGINT) AS start_ms,
                CAST(round_even("end" * 1000, 0) AS BIGINT) AS end_ms,
                true AS _valid
            FROM read_parquet({_sql_str(str(path))}, file_row_number = true)"""
        )
        return

    def ms(col: str) -> str:
        return (
            f"CASE WHEN regexp_full_match({col}, {_sql_str(_TIMECODE_RE)}) THEN "
            f"(TRY_CAST(split_part({col}, ':', 1) AS BIGINT) * 3600 "
            f"+ TRY_CAST(split_part({col}, ':', 2) AS BIGINT) * 60) * 1000 "
            f"+ TRY_CAST(replace(split_part({col}, ':', 3), '.', '') AS BIGINT) END"
        )

    columns = {
        "YoutubeID": "VARCHAR",
        "Start_timestamp": "VARCHAR",
        "End_timestamp": "VARCHAR",
        "Caption": "VARCHAR",
        "Aesthetic_Score": "DOUBLE",
        "UMT_Score": "DOUBLE",
        "UMT-SIM": "DOUBLE",
    }
    struct = "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in columns.items()) + "}"
    # parsed once into a table of the work database (it spills to disk), read by every query
    con.execute(
        f"""CREATE TABLE release AS SELECT
            YoutubeID AS video_id, Caption AS caption, Aesthetic_Score AS aesthetic,
            coalesce(UMT_Score, "UMT-SIM") AS umt,
            CASE WHEN UMT_Score IS NULL AND "UMT-SIM" IS NOT NULL THEN 'UMT-SIM'
                 ELSE 'UMT_Score' END AS umt_key,
            {ms("Start_timestamp")} AS start_ms, {ms("End_timestamp")} AS end_ms
        FROM read_json({_sql_str(str(path))}, format = 'newline_delimited', columns = {struct},
                       ignore_errors = {str(ignore_errors).lower()})"""
    )
    clip_id = (
        f"video_id || '_' || {_ms_to_text('start_ms', '%02d%02d%02d%03d')} || '_' || "
        f"{_ms_to_text('end_ms', '%02d%02d%02d%03d')}"
    )
    con.execute(
        f"""CREATE VIEW src AS SELECT
            rowid AS _row, {clip_id} AS clip_id, video_id,
            start_ms / 1000 AS "start", end_ms / 1000 AS "end",
            (end_ms - start_ms) / 1000 AS duration,
            caption, aesthetic, umt, umt_key, start_ms, end_ms,
            coalesce(regexp_full_match(video_id, {_sql_str(_SAFE_ID_RE)})
                     AND end_ms >= start_ms, false) AS _valid
        FROM release"""
    )


def _output_columns(kind: str) -> str:
    """SQL select list: the clips.parquet columns, then `_line`, the release JSON line."""
    if kind == "parquet":
        clip_cols = (
            'clip_id, video_id, "start", "end", duration, source, fps, width, height, captions, '
            "scores, frame_captions, meta, status, shard"
        )
        umt, umt_key = (
            "coalesce(umt, viclip_sim)",
            (
                "CASE WHEN json_extract_string(meta, '$.release_umt_key') = 'UMT-SIM' "
                "THEN 'UMT-SIM' ELSE 'UMT_Score' END"
            ),
        )
    else:
        scores = (
            "CASE WHEN aesthetic IS NULL AND umt IS NULL THEN MAP {}::MAP(VARCHAR, DOUBLE) "
            "WHEN umt IS NULL THEN MAP {'aesthetic': aesthetic} "
            "WHEN aesthetic IS NULL THEN MAP {'umt': umt} "
            "ELSE MAP {'aesthetic': aesthetic, 'umt': umt} END"
        )
        clip_cols = (
            'clip_id, video_id, "start", "end", duration, \'\' AS source, NULL::DOUBLE AS fps, '
            "NULL::INTEGER AS width, NULL::INTEGER AS height, "
            "CASE WHEN caption IS NULL THEN MAP {}::MAP(VARCHAR, VARCHAR) "
            "ELSE MAP {'release': caption} END AS captions, "
            f"{scores} AS scores, []::VARCHAR[] AS frame_captions, "
            "'{\"release_umt_key\": \"' || umt_key || '\"}' AS meta, "
            "'split' AS status, NULL::INTEGER AS shard"
        )
        umt, umt_key = "umt", "umt_key"
    line = (
        "'{\"YoutubeID\": ' || to_json(video_id) "
        f'|| \', "Start_timestamp": "\' || {_ms_to_text("start_ms", "%02d:%02d:%02d.%03d")} '
        f'|| \'", "End_timestamp": "\' || {_ms_to_text("end_ms", "%02d:%02d:%02d.%03d")} || \'"\' '
        "|| coalesce(', \"Caption\": ' || _py_json(caption), '') "
        "|| CASE WHEN isfinite(aesthetic) "
        "THEN ', \"Aesthetic_Score\": ' || CAST(aesthetic AS VARCHAR) ELSE '' END "
        f"|| CASE WHEN isfinite({umt}) "
        f"THEN ', \"' || {umt_key} || '\": ' || CAST({umt} AS VARCHAR) ELSE '' END "
        "|| '}' || chr(10)"
    )
    return f"{clip_cols}, {line} AS _line"


# DuckDB's to_json escapes control characters as \u001F; Python's json.dumps writes \u001f. The
# only escapes with hex letters are these (the rest are digits or \b \t \n \f \r).
_UPPER_ESCAPES = ("000B", "000E", "000F", "001A", "001B", "001C", "001D", "001E", "001F")


def _create_macros(con: duckdb.DuckDBPyConnection) -> None:
    fixed = "to_json(s)"
    for esc in _UPPER_ESCAPES:
        fixed = f"replace({fixed}, '\\u{esc}', '\\u{esc.lower()}')"
    # a string as json.dumps(s, ensure_ascii=False) writes it (DOUBLE -> VARCHAR casts already
    # give Python's repr: shortest round-trip digits, 1e-05, 1e+16)
    con.execute(
        f"CREATE MACRO _py_json(s) AS CASE WHEN contains(to_json(s), '\\u00') THEN {fixed} "
        "ELSE to_json(s) END"
    )


# --- the rules ------------------------------------------------------------------------------------


def _score_column(name: str | None, kind: str) -> tuple[str, str]:
    """(SQL expression, display name) of FLT's score."""
    if name is None:
        name = "umt" if kind == "release" else "viclip_sim"
    key = SCORE_ALIASES.get(name, name)
    if kind == "release":
        if key not in RELEASE_SCORES:
            raise SubsetError(
                f"release metadata has no {name!r} score: use umt (UMT_Score / UMT-SIM) or "
                "aesthetic (Aesthetic_Score)"
            )
        return key, name
    if key in SCORE_COLUMNS:
        return key, name
    return f"map_extract(scores, {_sql_str(key)})[1]", name


def _fmt(x: float) -> str:
    return f"{x:g}"


def _filters(spec: SubsetSpec, kind: str) -> list[tuple[str, str]]:
    """(label, SQL predicate) of each filter the rule applies, in order."""
    steps: list[tuple[str, str]] = []
    if kind == "release":
        steps.append(("malformed rows", "_valid"))
    if spec.where:
        steps.append((f"where {spec.where}", f"({spec.where})"))
    if spec.rule is Rule.flt:
        lo, hi = spec.min_duration, spec.max_duration
        steps.append(
            (f"duration {_fmt(lo)}-{_fmt(hi)} s", f"duration >= {lo!r} AND duration <= {hi!r}")
        )
        expr, name = _score_column(spec.score, kind)
        steps.append((f"no {name}", f"isfinite({expr})"))
    elif spec.rule is Rule.aes:
        steps.append(
            (f"aesthetic >= {_fmt(spec.min_aesthetic)}", f"aesthetic >= {spec.min_aesthetic!r}")
        )
        if spec.max_text_overlay is not None:
            if kind == "release":
                raise SubsetError("--max-text-overlay: release metadata has no text_overlay score")
            cap = spec.max_text_overlay
            steps.append((f"text_overlay <= {_fmt(cap)}", f"text_overlay <= {cap!r}"))
    return steps


def _check_spec(spec: SubsetSpec) -> None:
    try:
        spec.rule = Rule(spec.rule)
    except ValueError:
        raise SubsetError(f"unknown rule {spec.rule!r}: one of {[r.value for r in Rule]}") from None
    if spec.rule in (Rule.div, Rule.flt, Rule.random) and spec.size is None:
        raise SubsetError(f"{spec.rule.value} needs the number of clips to draw (-n)")
    if spec.size is not None and spec.size < 0:
        raise SubsetError("-n must be >= 0")
    try:
        spec.rng = Rng(spec.rng)
    except ValueError:
        raise SubsetError(f"unknown --rng {spec.rng!r}: one of {[r.value for r in Rng]}") from None
    if spec.rng is Rng.legacy and not 0 <= spec.seed <= LEGACY_SEED_MAX:
        raise SubsetError(f"--rng legacy takes seeds 0 .. {LEGACY_SEED_MAX} (np.random.seed)")
    if spec.seed < 0:
        raise SubsetError("--seed must be >= 0")
    if spec.rule is Rule.where and not spec.where:
        raise SubsetError("the where rule needs --where")
    if not 0.0 < spec.top_fraction <= 1.0:
        raise SubsetError("--top-fraction must be in (0, 1]")
    if spec.min_duration > spec.max_duration:
        raise SubsetError("--min-duration is above --max-duration")


def _count_steps(
    con: duckdb.DuckDBPyConnection, filters: list[tuple[str, str]]
) -> tuple[int, list[Step]]:
    """Rows in, and a Step per filter, from one scan of the input."""
    cumulative, exprs = [], ["count(*)"]
    for _, pred in filters:
        cumulative.append(pred)
        exprs.append(f"count(*) FILTER (WHERE {' AND '.join(cumulative)})")
    counts = [int(c) for c in con.execute(f"SELECT {', '.join(exprs)} FROM src").fetchall()[0]]
    steps = [Step(label, counts[i], counts[i + 1]) for i, (label, _) in enumerate(filters)]
    return counts[0], steps


def _log_step(step: Step) -> None:
    logger.info("%s (%s left)", step.describe(), f"{step.after:,}")


def _arrow_reader(rel: duckdb.DuckDBPyRelation, rows: int) -> pa.RecordBatchReader:
    """A streaming reader of a relation's result (DuckDB 1.x and 2.x spellings)."""
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(rows)
    return rel.fetch_record_batch(rows)


def _draw(con: duckdb.DuckDBPyConnection, spec: SubsetSpec, n_cand: int, weighted: bool) -> Step:
    """Sample table `cand` (canonical order = rowid) into table `picked` (column _row)."""
    import numpy as np
    import pyarrow as pa

    size = int(spec.size or 0)
    if size > n_cand:
        raise SubsetError(
            f"asked for {size:,} clips but only {n_cand:,} are left after the filters"
        )
    if weighted:
        counts = con.execute(
            "SELECT count(*) AS n FROM cand GROUP BY video_id ORDER BY min(rowid)"
        ).fetchnumpy()["n"]
        idx = div_choice(np.asarray(counts, dtype=np.int64), size, spec.seed, spec.rng)
    else:
        idx = uniform_choice(n_cand, size, spec.seed, spec.rng)
    con.register("_sel", pa.table({"i": idx}))
    con.execute(
        "CREATE TABLE picked AS SELECT cand._row FROM cand SEMI JOIN _sel ON cand.rowid = _sel.i"
    )
    con.unregister("_sel")
    return Step("DIV" if weighted else "random", n_cand, size)


def _write_outputs(con: duckdb.DuckDBPyConnection, query: str, jsonl: Path, parquet: Path) -> int:
    """Stream `query` into PREFIX.jsonl and PREFIX.parquet under temp names, then rename both."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from internvid.io.atomic import temp_name
    from internvid.io.tables import CLIP_SCHEMA

    tmp_jsonl, tmp_parquet = temp_name(jsonl), temp_name(parquet)
    rows = 0
    try:
        with (
            open(tmp_jsonl, "wb") as f,
            pq.ParquetWriter(tmp_parquet, CLIP_SCHEMA, compression="zstd") as writer,
        ):
            for batch in _arrow_reader(con.sql(query), BATCH_ROWS):
                if batch.num_rows == 0:
                    continue
                _write_lines(f, batch.column(batch.num_columns - 1))
                table = pa.Table.from_batches([batch]).select(CLIP_SCHEMA.names)
                writer.write_table(table.cast(CLIP_SCHEMA))
                rows += batch.num_rows
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_parquet, parquet)
        os.replace(tmp_jsonl, jsonl)
    finally:
        tmp_jsonl.unlink(missing_ok=True)
        tmp_parquet.unlink(missing_ok=True)
    return rows


def _write_lines(f: Any, lines: pa.Array) -> None:
    """Write a string column whose values end in a newline: its data buffer, without copies."""
    import numpy as np
    import pyarrow as pa

    if lines.null_count:
        raise ValueError("a release line is NULL")
    if not (pa.types.is_string(lines.type) or pa.types.is_large_string(lines.type)):
        lines = lines.cast(pa.large_string())
    width = np.int32 if pa.types.is_string(lines.type) else np.int64
    offsets = np.frombuffer(lines.buffers()[1], dtype=width)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    data = lines.buffers()[2]
    if data is not None:
        f.write(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def make_subset(
    input_path: str | os.PathLike[str],
    out_prefix: str | os.PathLike[str],
    spec: SubsetSpec,
    *,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    temp_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    ignore_errors: bool = False,
) -> SubsetResult:
    """Select a subset of a run's clips.parquet or of release metadata; write PREFIX.jsonl/.parquet.

    DuckDB does the scans, sorts and joins under `memory_limit`, spilling to a work folder
    (in `temp_dir`, else beside the output; deleted at the end). Samplers draw over the
    candidates in canonical order (video_id, start, end, clip_id, then input row) with
    `choice_runs`, so a draw equals NumPy's own draw over the same ordered rows (by default the
    release's legacy `np.random.seed(seed); np.random.choice(...)`; `spec.rng`). Output
    rows are in canonical order. Raises SubsetError on bad options or input; DuckDB errors
    (a bad --where, malformed JSON) propagate as duckdb.Error.
    """
    import duckdb

    _check_spec(spec)
    kind, path = _resolve_input(Path(input_path))
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    jsonl = prefix.with_name(prefix.name + ".jsonl")
    parquet = prefix.with_name(prefix.name + ".parquet")
    filters = _filters(spec, kind)  # before any work: it validates the options against the input
    work = Path(temp_dir or prefix.parent) / f".{prefix.name}.subset-tmp-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "memory_limit": memory_limit,
        "temp_directory": str(work / "spill"),
        "preserve_insertion_order": True,  # CREATE TABLE ... ORDER BY: rowid = position
    }
    if threads:
        config["threads"] = threads
    try:
        con = duckdb.connect(str(work / "work.duckdb"), config=config)
        try:
            con.execute("SET enable_progress_bar = false")  # the log says what runs; clean stdout
            return _run(con, kind, path, spec, filters, jsonl, parquet, ignore_errors)
        finally:
            con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    path: Path,
    spec: SubsetSpec,
    filters: list[tuple[str, str]],
    jsonl: Path,
    parquet: Path,
    ignore_errors: bool,
) -> SubsetResult:
    _create_macros(con)
    logger.info("reading %s (%s)", path, "clips.parquet" if kind == "parquet" else "release jsonl")
    _create_source(con, kind, path, ignore_errors)
    if spec.where:  # fail early, with DuckDB's message, on an expression that does not bind
        con.execute(
            f"SELECT count(*) FROM (SELECT * FROM src LIMIT 0) WHERE ({spec.where})"
        ).fetchall()
    rows_in, steps = _count_steps(con, filters)
    logger.info("%s rows", f"{rows_in:,}")
    for step in steps:
        _log_step(step)
    where = " AND ".join(pred for _, pred in filters) or "true"
    n_left = steps[-1].after if steps else rows_in
    if spec.rule is Rule.flt:
        expr, name = _score_column(spec.score, kind)
        k = math.floor(Fraction(repr(spec.top_fraction)) * n_left)
        con.execute(
            f"""CREATE TABLE ranked AS SELECT _row, video_id, "start", "end", clip_id FROM src
            WHERE {where} ORDER BY {expr} DESC, {CANONICAL_ORDER}"""
        )
        con.execute(
            f"CREATE TABLE cand AS SELECT * FROM ranked WHERE rowid < {k} ORDER BY {CANONICAL_ORDER}"
        )
        con.execute("DROP TABLE ranked")
        steps.append(Step(f"top {_fmt(spec.top_fraction * 100)}% by {name}", n_left, k))
        _log_step(steps[-1])
        n_left = k
    elif spec.size is not None:
        con.execute(
            f"""CREATE TABLE cand AS SELECT _row, video_id, "start", "end", clip_id FROM src
            WHERE {where} ORDER BY {CANONICAL_ORDER}"""
        )
    if spec.size is not None:
        steps.append(_draw(con, spec, n_left, weighted=spec.rule in (Rule.div, Rule.flt)))
        _log_step(steps[-1])
        con.execute("DROP TABLE cand")
        where = "_row IN (SELECT _row FROM picked)"
    query = f"SELECT {_output_columns(kind)} FROM src WHERE {where} ORDER BY {CANONICAL_ORDER}"
    logger.info("writing %s and %s", jsonl, parquet)
    rows = _write_outputs(con, query, jsonl, parquet)
    result = SubsetResult(jsonl, parquet, rows_in, rows, steps)
    logger.info(
        "subset %s: %s -> %s, %s (%s rows)",
        spec.rule.value,
        result.summary(),
        jsonl,
        parquet,
        f"{rows:,}",
    )
    return result


# --- the command ----------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add `internvid subset` to the CLI."""

    @app.command("subset")
    def subset(
        rule: Annotated[
            Rule,
            typer.Argument(
                help="div: N clips weighted 1/(clips of the video). flt: duration 1-120 s, top "
                "30% by --score, then div. aes: aesthetic >= 4. random: N uniformly. where: "
                "only --where."
            ),
        ],
        input_path: Annotated[
            Path,
            typer.Argument(
                metavar="INPUT",
                help="A run folder (its clips.parquet), a clips.parquet, or InternVid release "
                "metadata (.jsonl / .jsonl.gz; UMT_Score or UMT-SIM).",
            ),
        ],
        out: Annotated[
            Path,
            typer.Option(
                "--out",
                "-o",
                help="Output prefix: writes PREFIX.jsonl (release format) and PREFIX.parquet "
                "(clips.parquet schema), each under a temp name then renamed.",
            ),
        ],
        size: Annotated[
            int | None,
            typer.Option(
                "-n", "--size", help="Clips to draw (div, flt, random; aes/where: sample N)."
            ),
        ] = None,
        seed: Annotated[
            int, typer.Option(help="Seed of the div/flt/random draw (the release: 42).")
        ] = DEFAULT_SEED,
        rng: Annotated[
            Rng,
            typer.Option(
                help="Random stream of div/flt/random: legacy = np.random.seed(SEED) + "
                "np.random.choice, as the release's div_sampling.py; generator = "
                "np.random.default_rng(SEED).choice."
            ),
        ] = DEFAULT_RNG,
        where: Annotated[
            str | None,
            typer.Option(
                help="DuckDB expression, applied first with any rule. Columns: clip_id, video_id, "
                'start, "end" (quoted), duration (s), start_ms, end_ms, caption, viclip_sim, '
                "aesthetic, clipscore, text_overlay, umt (NULL when absent); from a "
                "clips.parquet also source, fps, width, height, status, shard, meta, captions, "
                "scores (maps: scores['key']), frame_captions. Release input has no viclip_sim, "
                "clipscore or text_overlay, and adds umt_key (UMT_Score or UMT-SIM)."
            ),
        ] = None,
        score: Annotated[
            str | None,
            typer.Option(
                help="flt: rank by this score: viclip_sim (default), clipscore, umt / UMT_Score / "
                "UMT-SIM (default for release input), aesthetic, or any key of scores."
            ),
        ] = None,
        top_fraction: Annotated[float, typer.Option(help="flt: fraction kept by score.")] = 0.3,
        min_duration: Annotated[float, typer.Option(help="flt: shortest clip, seconds.")] = 1.0,
        max_duration: Annotated[float, typer.Option(help="flt: longest clip, seconds.")] = 120.0,
        min_aesthetic: Annotated[float, typer.Option(help="aes: lowest aesthetic score.")] = 4.0,
        max_text_overlay: Annotated[
            float | None, typer.Option(help="aes: also drop text_overlay above this.")
        ] = None,
        memory_limit: Annotated[
            str, typer.Option(help="DuckDB memory limit; beyond it, work spills to disk.")
        ] = DEFAULT_MEMORY_LIMIT,
        temp_dir: Annotated[
            Path | None,
            typer.Option(help="Where DuckDB spills (default: beside the output; removed after)."),
        ] = None,
        threads: Annotated[
            int | None, typer.Option(help="DuckDB threads (default: all cores).")
        ] = None,
        ignore_errors: Annotated[
            bool, typer.Option(help="Release input: skip lines DuckDB cannot parse.")
        ] = False,
    ) -> None:
        """Rebuild a paper subset (DIV / FLT / Aes / random) or filter clips with SQL."""
        try:
            import duckdb
        except ImportError as e:
            logger.error("internvid subset needs DuckDB: pip install 'internvid[query]'")
            raise typer.Exit(2) from e

        spec = SubsetSpec(
            rule=rule,
            size=size,
            seed=seed,
            rng=rng,
            where=where,
            score=score,
            top_fraction=top_fraction,
            min_duration=min_duration,
            max_duration=max_duration,
            min_aesthetic=min_aesthetic,
            max_text_overlay=max_text_overlay,
        )
        try:
            result = make_subset(
                input_path,
                out,
                spec,
                memory_limit=memory_limit,
                temp_dir=temp_dir,
                threads=threads,
                ignore_errors=ignore_errors,
            )
        except SubsetError as e:
            logger.error("%s", e)
            raise typer.Exit(2) from e
        except duckdb.Error as e:
            logger.error("%s", str(e).strip())
            raise typer.Exit(2) from e
        typer.echo(f"{result.summary()} -> {result.jsonl}, {result.parquet} ({result.rows:,} rows)")
