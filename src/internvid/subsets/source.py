"""The input of a subset as one DuckDB view `src`: a run's clips.parquet or release metadata."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from internvid.subsets.errors import SubsetError

# duckdb is imported where it is used: `internvid --help` stays fast
if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

# release spellings of the score names -> our column names
SCORE_ALIASES = {"UMT_Score": "umt", "UMT-SIM": "umt", "Aesthetic_Score": "aesthetic"}
RELEASE_SCORES = ("aesthetic", "umt")  # the only scores release metadata carries
RELEASE_ONLY_SCORES = ("umt",)  # score columns no scorer writes: the release's UMT similarity
# the first score columns of the view, in the order they have always had; every other column
# the registered scorers write follows, in the registry's order
_FIRST_SCORES = ("viclip_sim", "aesthetic", "clipscore", "text_overlay", "umt")
# the view's other columns (either input): a score cannot take one of these names
BASE_COLUMNS = (
    "_row", "clip_id", "video_id", "start", "end", "duration", "source", "fps", "width",
    "height", "captions", "scores", "frame_captions", "meta", "status", "shard", "caption",
    "start_ms", "end_ms", "_valid", "umt_key",
)  # fmt: skip
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
    """The scores a clips.parquet view has as plain DOUBLE columns (NULL when a clip lacks one):
    every column the registered scorers write, plus the release's umt; others: scores['key']."""
    from internvid.scores.base import score_columns

    names = []
    for name in (*score_columns(), *RELEASE_ONLY_SCORES):
        if name.lower() in BASE_COLUMNS:  # DuckDB names are case-insensitive
            logger.warning("score %r shares its name with a column: use scores['%s']", name, name)
        else:
            names.append(name)
    first = [c for c in _FIRST_SCORES if c in names]
    return tuple(dict.fromkeys([*first, *names]))


def caption_sql(captions: str = "captions") -> str:
    """SQL of `records.pick_caption` over a captions map: the first caption of CAPTION_PRIORITY
    that is not blank (Python's strip() leaves something), else the first present one."""
    from internvid.records import CAPTION_PRIORITY

    each = [f"map_extract({captions}, {sql_str(k)})[1]" for k in CAPTION_PRIORITY]
    blank = sql_str(WHITESPACE)
    kept = [f"CASE WHEN trim({c}, {blank}) <> '' THEN {c} END" for c in each]
    return f"coalesce({', '.join(kept + each)})"


def score_expr(name: str | None, kind: str) -> tuple[str, str]:
    """(SQL expression, display name) of a score by name (FLT's --score; None: the default)."""
    if name is None:
        name = "umt" if kind == "release" else "viclip_sim"
    key = SCORE_ALIASES.get(name, name)
    if kind == "release":
        if key not in RELEASE_SCORES:
            raise SubsetError(
                f"release metadata has no {name!r} score: use umt (UMT_Score / UMT-SIM) or "
                "aesthetic (Aesthetic_Score)"
            )
        return sql_name(key), name
    if key in view_score_columns():
        return sql_name(key), name
    return f"map_extract(scores, {sql_str(key)})[1]", name


def where_help() -> str:
    """The columns an expression of --where can use (the CLI's help)."""
    from internvid.records import CAPTION_PRIORITY

    scores = view_score_columns()
    absent = [c for c in scores if c not in RELEASE_SCORES]
    missing = ", ".join(absent[:-1]) + f" or {absent[-1]}" if len(absent) > 1 else "".join(absent)
    return (
        "DuckDB expression, applied first with any rule. Columns: clip_id, video_id, start, "
        f'"end" (quoted), duration (s), start_ms, end_ms, caption ({" > ".join(CAPTION_PRIORITY)}), '
        f"{', '.join(scores)} (NULL when absent); from a clips.parquet also source, fps, width, "
        "height, status, shard, meta, captions, scores (maps: scores['key']), frame_captions. "
        f"Release input has no {missing}, and adds umt_key (UMT_Score or UMT-SIM)."
    )


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


def create_source(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, ignore_errors: bool
) -> None:
    """View `src`: one row per clip with the columns `where_help` lists."""
    if kind == "parquet":
        scores = ", ".join(
            f"map_extract(scores, {sql_str(k)})[1] AS {sql_name(k)}" for k in view_score_columns()
        )
        con.execute(
            f"""CREATE VIEW src AS SELECT
                file_row_number AS _row, clip_id, video_id, "start", "end", duration, source, fps,
                width, height, captions, scores, frame_captions, meta, status, shard,
                {caption_sql()} AS caption, {scores},
                CAST(round_even("start" * 1000, 0) AS BIGINT) AS start_ms,
                CAST(round_even("end" * 1000, 0) AS BIGINT) AS end_ms,
                true AS _valid
            FROM read_parquet({sql_str(str(path))}, file_row_number = true)"""
        )
        return

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


def output_columns(kind: str) -> str:
    """SQL select list: the clips.parquet columns, then `_line`, the release JSON line."""
    if kind == "parquet":
        clip_cols = (
            'clip_id, video_id, "start", "end", duration, source, fps, width, height, captions, '
            "scores, frame_captions, meta, status, shard"
        )
        # io.release.row_from_clip: umt, else viclip_sim (read from the map: the view's
        # score columns follow the registry, the release format does not)
        aesthetic = "map_extract(scores, 'aesthetic')[1]"
        umt = "coalesce(map_extract(scores, 'umt')[1], map_extract(scores, 'viclip_sim')[1])"
        umt_key = (
            "CASE WHEN json_extract_string(meta, '$.release_umt_key') = 'UMT-SIM' "
            "THEN 'UMT-SIM' ELSE 'UMT_Score' END"
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
        aesthetic, umt, umt_key = "aesthetic", "umt", "umt_key"
    line = (
        "'{\"YoutubeID\": ' || to_json(video_id) "
        f'|| \', "Start_timestamp": "\' || {ms_to_text("start_ms", "%02d:%02d:%02d.%03d")} '
        f'|| \'", "End_timestamp": "\' || {ms_to_text("end_ms", "%02d:%02d:%02d.%03d")} || \'"\' '
        "|| coalesce(', \"Caption\": ' || _py_json(caption), '') "
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
