"""`make_subset`: a subset of a run's clips.parquet or of release metadata, streamed to disk."""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from internvid.config import SubsetConfig
from internvid.subsets import rules
from internvid.subsets.errors import SubsetError
from internvid.subsets.rules import Draw, Rule, check_config, fmt_number
from internvid.subsets.sampling import div_choice, uniform_choice
from internvid.subsets.source import (
    CANONICAL_ORDER,
    SCORE_ALIASES,
    Source,
    create_macros,
    create_source,
    output_columns,
    resolve_input,
    sql_str,
)

# numpy, pyarrow and duckdb are imported where they are used: `internvid --help` stays fast
if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

logger = logging.getLogger(__name__)

BATCH_ROWS = 1 << 15  # rows per Arrow batch (and parquet row group) streamed into the outputs
KEEP_BATCH = 1 << 16  # --keep-list ids read and inserted at a time


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


def _draw(con: duckdb.DuckDBPyConnection, cfg: SubsetConfig, n_cand: int, weighted: bool) -> Step:
    """Sample table `cand` (canonical order = rowid) into table `picked` (column _row)."""
    import numpy as np
    import pyarrow as pa

    size = int(cfg.size or 0)
    if size > n_cand:
        raise SubsetError(
            f"asked for {size:,} clips but only {n_cand:,} are left after the filters"
        )
    if weighted:
        counts = con.execute(
            "SELECT count(*) AS n FROM cand GROUP BY video_id ORDER BY min(rowid)"
        ).fetchnumpy()["n"]
        idx = div_choice(np.asarray(counts, dtype=np.int64), size, cfg.seed, cfg.rng)
    else:
        idx = uniform_choice(n_cand, size, cfg.seed, cfg.rng)
    con.register("_sel", pa.table({"i": idx}))
    con.execute(
        "CREATE TABLE picked AS SELECT cand._row FROM cand SEMI JOIN _sel ON cand.rowid = _sel.i"
    )
    con.unregister("_sel")
    return Step("DIV" if weighted else "random", n_cand, size)


def _write_outputs(
    con: duckdb.DuckDBPyConnection, query: str, jsonl: Path, parquet: Path, schema: pa.Schema
) -> int:
    """Stream `query` into PREFIX.jsonl and PREFIX.parquet (`schema`) under temp names, then
    rename both."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from internvid.io.atomic import temp_name
    from internvid.io.tables import arrow_reader

    tmp_jsonl, tmp_parquet = temp_name(jsonl), temp_name(parquet)
    rows = 0
    try:
        with (
            open(tmp_jsonl, "wb") as f,
            pq.ParquetWriter(tmp_parquet, schema, compression="zstd") as writer,
        ):
            for batch in arrow_reader(con.sql(query), BATCH_ROWS):
                if batch.num_rows == 0:
                    continue
                _write_lines(f, batch.column(batch.num_columns - 1))
                table = pa.Table.from_batches([batch]).select(schema.names)
                writer.write_table(table.cast(schema))
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


def _work_folder(root: Path, prefix: Path, pid: int) -> Path:
    """The work folder of the subset into `prefix` made by process `pid` (DuckDB's database,
    its spill files, a converted legacy table)."""
    return root / f".{prefix.name}.subset-tmp-{pid}"


def _gone(pid: int) -> bool:
    """True when no process `pid` runs (this process counts as gone: its own leftovers are
    from an earlier call)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_leftovers(prefix: Path, work_root: Path) -> int:
    """Delete what killed subsets into `prefix` left behind: the temp files of PREFIX.jsonl and
    PREFIX.parquet (io.atomic.temp_name) and work folders, of processes that no longer run
    (a subset running now into the same prefix keeps its own). Returns how many were removed."""
    from internvid.io.atomic import temp_name

    patterns = []
    for suffix in (".jsonl", ".parquet"):
        target = prefix.with_name(prefix.name + suffix)
        stem = temp_name(target).name.rsplit("-", 1)[0]  # ".NAME.tmp"
        patterns.append(glob.escape(str(target.parent / stem)) + "-*")
    patterns.append(glob.escape(str(_work_folder(work_root, prefix, 0)))[:-1] + "*")
    removed, size = 0, 0
    for pattern in patterns:
        for name in glob.glob(pattern):
            path = Path(name)
            pid = path.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not _gone(int(pid)):
                continue
            if path.is_dir() and not path.is_symlink():
                size += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path, ignore_errors=True)
            else:
                size += path.lstat().st_size
                path.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.info(
            "removed %d leftover(s) of an interrupted subset into %s (%s bytes)",
            removed,
            prefix,
            f"{size:,}",
        )
    return removed


def _load_keep_list(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Table rules.KEEP_TABLE (column id): the clip ids of `path`, one a line (blank lines and
    lines starting with # skipped), inserted as Arrow data batch by batch: no id is ever part
    of the SQL text. Returns the ids read."""
    import pyarrow as pa

    con.execute(f"CREATE TABLE {rules.KEEP_TABLE} (id VARCHAR)")
    n = 0

    def insert(ids: list[str]) -> None:
        con.register("_keep_batch", pa.table({"id": pa.array(ids, pa.string())}))
        con.execute(f"INSERT INTO {rules.KEEP_TABLE} SELECT id FROM _keep_batch")
        con.unregister("_keep_batch")

    batch: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            batch.append(text)
            if len(batch) >= KEEP_BATCH:
                insert(batch)
                n += len(batch)
                batch = []
    if batch:
        insert(batch)
        n += len(batch)
    return n


def _lock(con: duckdb.DuckDBPyConnection, files: tuple[str, ...]) -> None:
    """From now on DuckDB reads only `files` (the input the view scans), writes no file but its
    own database and spill, loads no extension, and no setting can change: user text (--where)
    runs only after this."""
    if files:
        con.execute(f"SET allowed_paths = [{', '.join(sql_str(f) for f in files)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def make_subset(
    input_path: str | os.PathLike[str],
    out_prefix: str | os.PathLike[str],
    cfg: SubsetConfig,
) -> SubsetResult:
    """Select a subset of a run's clips.parquet or of release metadata; write PREFIX.jsonl/.parquet.

    DuckDB does the scans, sorts and joins under `cfg.memory_limit`, spilling to a work folder
    (in `cfg.temp_dir`, else beside the output; deleted at the end). Samplers draw over the
    candidates in canonical order (video_id, start, end, clip_id, then input row) with
    `choice_runs`, so a draw equals NumPy's own draw over the same ordered rows (by default the
    release's legacy `np.random.seed(seed); np.random.choice(...)`; `cfg.rng`). Output
    rows are in canonical order. Raises SubsetError on bad options or input (a --where that
    is not one safe expression: subsets.where.check_where); DuckDB errors (a --where that does
    not bind, malformed JSON) propagate as duckdb.Error. DuckDB runs locked (no file access but
    the input, no extensions, no settings) before any user text reaches it. Leftovers of a
    killed subset into the same prefix are removed first.
    """
    import duckdb

    from internvid.io import remote
    from internvid.io.storage import is_remote

    if cfg.keep_list and is_remote(cfg.keep_list):  # a remote --keep-list: fetched here
        with remote.input_path(cfg.keep_list) as local_keep:
            return make_subset(input_path, out_prefix, replace(cfg, keep_list=str(local_keep)))
    if is_remote(input_path) or is_remote(out_prefix):  # fetched here, published there
        with (
            remote.input_path(input_path, remote.tables_only) as local_in,
            remote.output_prefix(out_prefix) as local_out,
        ):
            return make_subset(local_in, local_out, cfg)
    rule = check_config(cfg)
    if cfg.keep_list and not Path(cfg.keep_list).is_file():
        raise SubsetError(f"--keep-list {cfg.keep_list}: no such file")
    kind, path = resolve_input(Path(input_path))
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    jsonl = prefix.with_name(prefix.name + ".jsonl")
    parquet = prefix.with_name(prefix.name + ".parquet")
    rules.filters(cfg, kind)  # checks the options (and --where) against the input, first
    work_root = Path(cfg.temp_dir or prefix.parent)
    remove_leftovers(prefix, work_root)
    work = _work_folder(work_root, prefix, os.getpid())
    work.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "memory_limit": cfg.memory_limit,
        "temp_directory": str(work / "spill"),
        "preserve_insertion_order": True,  # CREATE TABLE ... ORDER BY: rowid = position
        "autoinstall_known_extensions": False,  # nothing is fetched or loaded on demand
        "autoload_known_extensions": False,
    }
    if cfg.threads:
        config["threads"] = cfg.threads
    try:
        con = duckdb.connect(str(work / "work.duckdb"), config=config)
        try:
            con.execute("SET enable_progress_bar = false")  # the log says what runs; clean stdout
            return _run(con, kind, path, work, cfg, rule, jsonl, parquet)
        finally:
            con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_score(cfg: SubsetConfig, source: Source) -> None:
    """A --score that is no column of a clips.parquet: SubsetError naming the score columns."""
    if cfg.score is None or source.kind != "parquet":
        return
    from internvid.io.tables import score_names_of

    key = SCORE_ALIASES.get(cfg.score, cfg.score)
    if key.lower() not in {c.lower() for c in source.columns}:
        scores = [*score_names_of(source.schema)]
        scores += [c for c in source.columns if c not in source.schema.names and c[-3:] != "_ms"]
        raise SubsetError(
            f"--score {cfg.score!r}: no such column; the score columns are {', '.join(scores)}"
        )


def _run(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    path: Path,
    work: Path,
    cfg: SubsetConfig,
    rule: Rule,
    jsonl: Path,
    parquet: Path,
) -> SubsetResult:
    create_macros(con)
    logger.info("reading %s (%s)", path, "clips.parquet" if kind == "parquet" else "release jsonl")
    source = create_source(con, kind, path, cfg.ignore_errors, work)
    _check_score(cfg, source)
    if cfg.keep_list:
        n_keep = _load_keep_list(con, Path(cfg.keep_list))
        logger.info("keep list %s: %s clip ids", cfg.keep_list, f"{n_keep:,}")
    filters = rules.filters(cfg, kind, source.columns)  # --where: checked against the columns
    _lock(con, source.files)
    if cfg.where:  # fail early, with DuckDB's message, on an expression that does not bind
        pred = next(p for label, p in filters if label == f"where {cfg.where}")
        con.execute(f"SELECT count(*) FROM (SELECT * FROM src LIMIT 0) WHERE {pred}").fetchall()
    rows_in, steps = _count_steps(con, filters)
    logger.info("%s rows", f"{rows_in:,}")
    for step in steps:
        _log_step(step)
    where = " AND ".join(pred for _, pred in filters) or "true"
    n_left = steps[-1].after if steps else rows_in
    top = rule.top(cfg, kind) if rule.top is not None else None
    if top is not None:  # the best ceil(fraction * n) rows by the score, in canonical order
        k = math.ceil(Fraction(repr(top.fraction)) * n_left)
        con.execute(
            f"""CREATE TABLE ranked AS SELECT _row, video_id, "start", "end", clip_id FROM src
            WHERE {where} ORDER BY {top.expr} DESC, {CANONICAL_ORDER}"""
        )
        con.execute(
            f"CREATE TABLE cand AS SELECT * FROM ranked WHERE rowid < {k} ORDER BY {CANONICAL_ORDER}"
        )
        con.execute("DROP TABLE ranked")
        steps.append(Step(f"top {fmt_number(top.fraction * 100)}% by {top.name}", n_left, k))
        _log_step(steps[-1])
        n_left = k
        where = "_row IN (SELECT _row FROM cand)"
    elif cfg.size is not None:
        con.execute(
            f"""CREATE TABLE cand AS SELECT _row, video_id, "start", "end", clip_id FROM src
            WHERE {where} ORDER BY {CANONICAL_ORDER}"""
        )
    if cfg.size is not None:
        steps.append(_draw(con, cfg, n_left, weighted=rule.draw is Draw.weighted))
        _log_step(steps[-1])
        con.execute("DROP TABLE cand")
        where = "_row IN (SELECT _row FROM picked)"
    query = f"SELECT {output_columns(source)} FROM src WHERE {where} ORDER BY {CANONICAL_ORDER}"
    logger.info("writing %s and %s", jsonl, parquet)
    rows = _write_outputs(con, query, jsonl, parquet, source.schema)
    result = SubsetResult(jsonl, parquet, rows_in, rows, steps)
    logger.info(
        "subset %s: %s -> %s, %s (%s rows)",
        rule.name,
        result.summary(),
        jsonl,
        parquet,
        f"{rows:,}",
    )
    return result
