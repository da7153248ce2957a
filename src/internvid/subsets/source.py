"""The input of a subset as one DuckDB view `src`: a run's clips.parquet or release metadata."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from internvid.subsets.errors import SubsetError

# duckdb is imported where it is used: `internvid --help` stays fast
if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

logger = logging.getLogger(__name__)

# release spellings of the score names -> our column names
SCORE_ALIASES = {"UMT_Score": "umt", "UMT-SIM": "umt", "Aesthetic_Score": "aesthetic"}
RELEASE_SCORES = ("aesthetic", "umt")  # the only scores release metadata carries
# the columns of the view over release metadata (a --where over it can use these)
RELEASE_COLUMNS = (
    "clip_id", "video_id", "start", "end", "duration", "caption", "aesthetic", "umt", "umt_key",
    "start_ms", "end_ms",
)  # fmt: skip
# columns every view adds to a clips.parquet's own: times in whole milliseconds
MS_COLUMNS = ("start_ms", "end_ms")
# the canonical row order: DIV and random draw over the candidates in this order, outputs use it
CANONICAL_ORDER = 'video_id, "start", "end", clip_id, _row'
_TIMECODE_RE = r"\d{2,}:[0-5]\d:[0-5]\d\.\d{3}"  # HH:MM:SS.mmm, as records.parse_timecode
_SAFE_ID_RE = r"[A-Za-z0-9_-]{1,128}"  # records.is_safe_id
_RELEASE_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")
# what Python's str.strip() removes (str.isspace): a caption of only these is blank, as in
# records.pick_caption; DuckDB's trim(x, chars) strips exactly these code points
WHITESPACE = "".join(
    map(chr, (
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
        *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
    ))
)  # fmt: skip
LEGACY_BATCH_ROWS = 1 << 15  # rows per batch when a legacy (MAP) clips.parquet is converted


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_name(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def ms_to_text(ms: str, fmt: str) -> str:
    """SQL: milliseconds -> `HH:MM:SS.mmm` (fmt with ':' and '.') or `HHMMSSmmm` (clip ids)."""
    return (
        f"printf({sql_str(fmt)}, ({ms}) // 3600000, (({ms}) // 60000) % 60, "
        f"(({ms}) // 1000) % 60, ({ms}) % 1000)"
    )


def view_score_columns() -> tuple[str, ...]:
    """The score columns every clips.parquet view has (NULL where the table lacks one):
    io.tables.known_scores(), the built-in ones then the registered scorers'. A table's other
    float columns (a plugin's scores) are columns of its view too."""
    from internvid.io.tables import known_scores

    return known_scores()


def caption_sql(columns: list[str]) -> str:
    """SQL of `records.pick_caption` over caption columns in CAPTION_PRIORITY order: the first
    that is not blank (Python's strip() leaves something), else the first present one."""
    if not columns:
        return "NULL::VARCHAR"
    blank = sql_str(WHITESPACE)
    each = [sql_name(c) for c in columns]
    kept = [f"CASE WHEN trim({c}, {blank}) <> '' THEN {c} END" for c in each]
    return f"coalesce({', '.join(kept + each)})"


def best_caption_sql(picked: str) -> str:
    """SQL of `Clip.best_caption` (the `caption` column) from pick_caption's SQL: NULL when
    there is no caption, "" when every one is blank."""
    return (
        f"CASE WHEN ({picked}) IS NULL THEN NULL "
        f"WHEN trim({picked}, {sql_str(WHITESPACE)}) = '' THEN '' ELSE {picked} END"
    )


def score_expr(name: str | None, kind: str) -> tuple[str, str]:
    """(SQL expression, display name) of a score by name (FLT's --score; None: the default)."""
    if name is None:
        name = "umt" if kind == "release" else "viclip_sim"
    key = SCORE_ALIASES.get(name, name)
    if kind == "release" and key not in RELEASE_SCORES:
        raise SubsetError(
            f"release metadata has no {name!r} score: use umt (UMT_Score / UMT-SIM) or "
            "aesthetic (Aesthetic_Score)"
        )
    return sql_name(key), name


def where_help() -> str:
    """The columns an expression of --where can use (the CLI's help)."""
    from internvid.io.tables import caption_column
    from internvid.records import CAPTION_PRIORITY

    scores = view_score_columns()
    absent = [c for c in scores if c not in RELEASE_SCORES]
    missing = ", ".join(absent[:-1]) + f" or {absent[-1]}" if len(absent) > 1 else "".join(absent)
    caption_cols = ", ".join(caption_column(c) for c in CAPTION_PRIORITY)
    return (
        "A DuckDB expression (one, checked: no statements, subqueries or file functions), "
        "applied first with any rule. Columns of a run's clips.parquet: clip_id, video_id, "
        f'start, "end" (quoted), duration (s), start_ms, end_ms, caption (the best: '
        f"{' > '.join(CAPTION_PRIORITY)}), {caption_cols}, {', '.join(scores)} and the "
        "run's other score columns (NULL when absent), frame_captions (a list), source, fps, "
        "width, height, meta (JSON: json_extract), status, shard. Release input has only "
        f"clip_id, video_id, start, end, duration, start_ms, end_ms, caption, aesthetic, umt "
        f"(no {missing}) and umt_key (UMT_Score or UMT-SIM)."
    )


@dataclass(frozen=True)
class Source:
    """The view `src` of a subset's input, and what the output parquet keeps of it."""

    kind: str  # "parquet" | "release"
    columns: tuple[str, ...]  # the view's columns a --where can name
    schema: pa.Schema  # of PREFIX.parquet: the run's own columns (clip_schema() for release)
    files: tuple[str, ...]  # files the view reads at query time (allowed once DuckDB is locked)


def resolve_input(path: Path) -> tuple[str, Path]:
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


def _convert_legacy(path: Path, work: Path) -> Path:
    """A legacy clips.parquet (MAP columns) as a flat one in `work`: io.tables.upgrade_table
    batch by batch, conformed to the union of the caption and score keys."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from internvid.io.tables import clip_schema, upgrade_table

    f = pq.ParquetFile(path)
    captions: set[str] = set()
    scores: set[str] = set()
    for batch in f.iter_batches(LEGACY_BATCH_ROWS, columns=["captions", "scores"]):
        for col, keys in (("captions", captions), ("scores", scores)):
            keys.update(k for k in pc.unique(batch.column(col).keys).to_pylist() if k is not None)
    try:
        schema = clip_schema(scores, captions)
    except ValueError as e:
        raise SubsetError(f"{path}: {e}") from None
    out = work / "clips-flat.parquet"
    with pq.ParquetWriter(out, schema) as writer:
        for batch in f.iter_batches(LEGACY_BATCH_ROWS):
            t = upgrade_table(pa.Table.from_batches([batch]))
            columns = [
                t.column(c.name).cast(c.type)
                if c.name in t.schema.names
                else pa.nulls(len(t), c.type)
                for c in schema
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return out


def create_source(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, ignore_errors: bool, work: Path
) -> Source:
    """View `src`: one row per clip with the columns `where_help` lists, plus `_row` (input
    order) and `_valid`. A legacy clips.parquet (MAP columns `captions` and `scores`, before
    0.2) is converted into a flat one in `work` first."""
    if kind == "parquet":
        return _parquet_source(con, path, work)
    return _release_source(con, path, ignore_errors)


def _parquet_source(con: duckdb.DuckDBPyConnection, path: Path, work: Path) -> Source:
    import pyarrow.parquet as pq

    from internvid.io.tables import BASE_COLUMNS, is_legacy

    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several kinds on a bad file
        raise SubsetError(f"{path}: not a parquet file ({e})") from None
    if is_legacy(schema):
        logger.info("%s has MAP columns (before internvid 0.2): converting it", path)
        path = _convert_legacy(path, work)
        schema = pq.read_schema(path)
    schema = schema.remove_metadata()
    missing = sorted(BASE_COLUMNS - set(schema.names))
    if missing:
        raise SubsetError(f"{path}: not a clips.parquet (no column {', '.join(missing)})")
    names = [n.lower() for n in schema.names]
    clash = sorted({n for n in names if names.count(n) > 1 or n in (*MS_COLUMNS, "_row", "_valid")})
    if clash:  # DuckDB names are case-insensitive; the view adds start_ms, end_ms, _row, _valid
        raise SubsetError(f"{path}: column names DuckDB cannot tell apart: {clash}")
    absent = [s for s in view_score_columns() if s.lower() not in names]
    path = path.resolve()
    cols = ", ".join(sql_name(n) for n in schema.names)
    nulls = "".join(f", NULL::DOUBLE AS {sql_name(s)}" for s in absent)
    con.execute(
        f"""CREATE VIEW src AS SELECT
            file_row_number AS _row, {cols}{nulls},
            CAST(round_even("start" * 1000, 0) AS BIGINT) AS start_ms,
            CAST(round_even("end" * 1000, 0) AS BIGINT) AS end_ms,
            true AS _valid
        FROM read_parquet({sql_str(str(path))}, file_row_number = true)"""
    )
    return Source("parquet", (*schema.names, *absent, *MS_COLUMNS), schema, (str(path),))


def _release_source(con: duckdb.DuckDBPyConnection, path: Path, ignore_errors: bool) -> Source:
    from internvid.io.tables import clip_schema

    def ms(col: str) -> str:
        return (
            f"CASE WHEN regexp_full_match({col}, {sql_str(_TIMECODE_RE)}) THEN "
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
    struct = "{" + ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in columns.items()) + "}"
    # parsed once into a table of the work database (it spills to disk), read by every query
    con.execute(
        f"""CREATE TABLE release AS SELECT
            YoutubeID AS video_id, Caption AS caption, Aesthetic_Score AS aesthetic,
            coalesce(UMT_Score, "UMT-SIM") AS umt,
            CASE WHEN UMT_Score IS NULL AND "UMT-SIM" IS NOT NULL THEN 'UMT-SIM'
                 ELSE 'UMT_Score' END AS umt_key,
            {ms("Start_timestamp")} AS start_ms, {ms("End_timestamp")} AS end_ms
        FROM read_json({sql_str(str(path))}, format = 'newline_delimited', columns = {struct},
                       ignore_errors = {str(ignore_errors).lower()})"""
    )
    clip_id = (
        f"video_id || '_' || {ms_to_text('start_ms', '%02d%02d%02d%03d')} || '_' || "
        f"{ms_to_text('end_ms', '%02d%02d%02d%03d')}"
    )
    con.execute(
        f"""CREATE VIEW src AS SELECT
            rowid AS _row, {clip_id} AS clip_id, video_id,
            start_ms / 1000 AS "start", end_ms / 1000 AS "end",
            (end_ms - start_ms) / 1000 AS duration,
            caption, aesthetic, umt, umt_key, start_ms, end_ms,
            coalesce(regexp_full_match(video_id, {sql_str(_SAFE_ID_RE)})
                     AND end_ms >= start_ms, false) AS _valid
        FROM release"""
    )
    return Source("release", RELEASE_COLUMNS, clip_schema(), ())


def output_columns(source: Source) -> str:
    """SQL select list: the output parquet's columns (`source.schema`), then `_line`, the
    release JSON line (io.release.row_from_clip of the clip, written as ReleaseWriter does)."""
    from internvid.io.tables import caption_column
    from internvid.records import CAPTION_PRIORITY

    if source.kind == "parquet":
        clip_cols = ", ".join(sql_name(n) for n in source.schema.names)
        have = {c.lower() for c in source.columns}

        def col(name: str) -> str:
            return sql_name(name) if name in have else "NULL::DOUBLE"

        # row_from_clip: pick_caption of the captions; umt, else viclip_sim
        names = [caption_column(c) for c in CAPTION_PRIORITY]
        caption = caption_sql([n for n in names if n in have])
        aesthetic, umt = col("aesthetic"), f"coalesce({col('umt')}, {col('viclip_sim')})"
        umt_key = (
            "CASE WHEN json_extract_string(meta, '$.release_umt_key') = 'UMT-SIM' "
            "THEN 'UMT-SIM' ELSE 'UMT_Score' END"
        )
    else:  # io.release.clip_from_row's clip, as io.tables.clip_to_row writes it
        given = {
            "clip_id": "clip_id",
            "video_id": "video_id",
            "start": '"start"',
            "end": '"end"',
            "duration": '"end" - "start"',  # as clip_to_row: end - start of the clip's floats
            "caption": best_caption_sql("caption"),
            "release_caption": "caption",
            "aesthetic": "aesthetic",
            "umt": "umt",
            "frame_captions": "[]::VARCHAR[]",
            "source": "''",
            "meta": "'{\"release_umt_key\": \"' || umt_key || '\"}'",
            "status": "'split'",
        }
        clip_cols = ", ".join(
            f"{given.get(f.name, 'NULL')} AS {sql_name(f.name)}" for f in source.schema
        )
        caption, aesthetic, umt, umt_key = "caption", "aesthetic", "umt", "umt_key"
    line = (
        "'{\"YoutubeID\": ' || to_json(video_id) "
        f'|| \', "Start_timestamp": "\' || {ms_to_text("start_ms", "%02d:%02d:%02d.%03d")} '
        f'|| \'", "End_timestamp": "\' || {ms_to_text("end_ms", "%02d:%02d:%02d.%03d")} || \'"\' '
        f"|| coalesce(', \"Caption\": ' || _py_json({caption}), '') "
        f"|| CASE WHEN isfinite({aesthetic}) "
        f"THEN ', \"Aesthetic_Score\": ' || CAST({aesthetic} AS VARCHAR) ELSE '' END "
        f"|| CASE WHEN isfinite({umt}) "
        f"THEN ', \"' || {umt_key} || '\": ' || CAST({umt} AS VARCHAR) ELSE '' END "
        "|| '}' || chr(10)"
    )
    return f"{clip_cols}, {line} AS _line"


# DuckDB's to_json escapes control characters as \u001F; Python's json.dumps writes \u001f. The
# only escapes with hex letters are these (the rest are digits or \b \t \n \f \r).
_UPPER_ESCAPES = ("000B", "000E", "000F", "001A", "001B", "001C", "001D", "001E", "001F")


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    """`_py_json(s)`: a string as Python's json.dumps writes it (the release lines' Caption)."""
    fixed = "to_json(s)"
    for esc in _UPPER_ESCAPES:
        fixed = f"replace({fixed}, '\\u{esc}', '\\u{esc.lower()}')"
    # a string as json.dumps(s, ensure_ascii=False) writes it (DOUBLE -> VARCHAR casts already
    # give Python's repr: shortest round-trip digits, 1e-05, 1e+16)
    con.execute(
        f"CREATE MACRO _py_json(s) AS CASE WHEN contains(to_json(s), '\\u00') THEN {fixed} "
        "ELSE to_json(s) END"
    )
