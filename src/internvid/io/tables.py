"""Parquet schemas of `clips.parquet` and `videos.parquet`, and conversions from the records."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from internvid.io.atomic import temp_name
from internvid.records import CAPTION_PRIORITY, Clip, Video, meta_json, pick_caption

# One row per clip, flat: a string column per caption, a float64 column per score (no MAP
# columns, so `datasets`, pandas, polars and DuckDB load it as it is). Documented column by
# column in docs/schema.md; keep the two in step.
_HEAD = [
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("start", pa.float64(), nullable=False),
    pa.field("end", pa.float64(), nullable=False),
    pa.field("duration", pa.float64(), nullable=False),
    pa.field("caption", pa.string()),  # the caption the clip is known by: Clip.best_caption()
]
_TAIL = [
    pa.field("frame_captions", pa.list_(pa.string())),
    pa.field("source", pa.string()),
    pa.field("fps", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("meta", pa.string()),  # JSON object
    pa.field("status", pa.string()),
    pa.field("shard", pa.int32()),
]
CAPTION_SUFFIX = "_caption"  # captions["fused"] is the column fused_caption
# scores no scorer of the registry writes: the motion filter's, and the release metadata's
BUILTIN_SCORES = ("motion", "frozen", "aesthetic", "umt")
BASE_COLUMNS = frozenset(f.name for f in _HEAD + _TAIL)


def caption_column(name: str) -> str:
    """The column of caption `name`: "fused" -> "fused_caption"."""
    return f"{name}{CAPTION_SUFFIX}"


def known_scores() -> tuple[str, ...]:
    """Every score column a clips table has: the built-in ones, then the registered scorers'."""
    from internvid.scores.base import score_columns

    return tuple(dict.fromkeys((*BUILTIN_SCORES, *score_columns())))


def _check_score_name(name: str) -> str:
    if name in BASE_COLUMNS or name.endswith(CAPTION_SUFFIX) or not name:
        raise ValueError(f"score name {name!r} would clash with a column of clips.parquet")
    return name


def clip_schema(extra_scores: Iterable[str] = (), extra_captions: Iterable[str] = ()) -> pa.Schema:
    """The schema of `clips.parquet` and the shard sidecars: the fixed columns, one string
    column per caption (CAPTION_PRIORITY, then `extra_captions`), one float64 column per score
    (known_scores(), then `extra_scores` not among them, sorted)."""
    captions = list(dict.fromkeys((*CAPTION_PRIORITY, *sorted(extra_captions))))
    known = known_scores()
    scores = [*known, *sorted(set(extra_scores) - set(known))]
    return pa.schema(
        [
            *_HEAD,
            *(pa.field(caption_column(c), pa.string()) for c in captions),
            *(pa.field(_check_score_name(s), pa.float64()) for s in scores),
            *_TAIL,
        ]
    )


def __getattr__(name: str) -> Any:
    if name == "CLIP_SCHEMA":  # the default schema, with the scorers registered by now
        return clip_schema()
    raise AttributeError(name)


def caption_names(schema: pa.Schema) -> list[str]:
    """The caption names of a clips schema ("fused", "release", ...)."""
    return [
        f.name[: -len(CAPTION_SUFFIX)]
        for f in schema
        if f.name.endswith(CAPTION_SUFFIX) and f.name not in BASE_COLUMNS
    ]


def score_names_of(schema: pa.Schema) -> list[str]:
    """The score columns of a clips schema (every float column that is not a fixed one)."""
    return [
        f.name
        for f in schema
        if f.name not in BASE_COLUMNS
        and not f.name.endswith(CAPTION_SUFFIX)
        and pa.types.is_floating(f.type)
    ]


def is_legacy(schema: pa.Schema) -> bool:
    """True for a clips table of internvid before 0.2 (MAP columns `captions` and `scores`)."""
    return "captions" in schema.names and pa.types.is_map(schema.field("captions").type)


# One row per input video, whatever became of it (probe columns null when never probed).
VIDEO_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("status", pa.string()),  # ok (kept clips) / dropped (by a rule) / failed
        pa.field("reason", pa.string()),  # null when ok: the rule or failure slug
        pa.field("clips", pa.int32()),  # clips kept in clips.parquet
        pa.field("path", pa.string()),
        pa.field("duration", pa.float64()),
        pa.field("fps", pa.float64()),
        pa.field("num_frames", pa.int64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("has_audio", pa.bool_()),
        pa.field("rotation", pa.int32()),
        pa.field("size_bytes", pa.int64()),
        pa.field("meta", pa.string()),  # JSON object
    ]
)


_json = meta_json


def clip_to_row(clip: Clip) -> dict[str, Any]:
    """A Clip as a flat `clips.parquet` row (captions and scores as columns, meta as JSON)."""
    row: dict[str, Any] = {
        "clip_id": clip.clip_id,
        "video_id": clip.video_id,
        "start": float(clip.start),
        "end": float(clip.end),
        "duration": float(clip.end - clip.start),
        "caption": clip.best_caption() if pick_caption(clip.captions) is not None else None,
    }
    for name, text in clip.captions.items():
        row[caption_column(name)] = text
    for name, value in clip.scores.items():
        row[_check_score_name(name)] = None if value is None else float(value)
    row.update(
        frame_captions=list(clip.frame_captions),
        source=clip.source,
        fps=clip.fps,
        width=clip.width,
        height=clip.height,
        meta=_json(clip.meta),
        status=clip.status,
        shard=clip.shard,
    )
    return row


def row_to_clip(row: dict[str, Any]) -> Clip:
    """Inverse of `clip_to_row`; also reads a legacy row (MAP columns, as pairs or dicts)."""
    if "captions" in row or "scores" in row:  # before 0.2
        captions = dict(row.get("captions") or {})
        scores = dict(row.get("scores") or {})
    else:
        captions, scores = {}, {}
        for key, value in row.items():
            if value is None or key in BASE_COLUMNS:
                continue
            if key.endswith(CAPTION_SUFFIX):
                captions[key[: -len(CAPTION_SUFFIX)]] = value
            elif isinstance(value, float | int) and not isinstance(value, bool):
                scores[key] = float(value)
    return Clip(
        clip_id=row["clip_id"],
        video_id=row["video_id"],
        start=row["start"],
        end=row["end"],
        source=row.get("source") or "",
        fps=row.get("fps"),
        width=row.get("width"),
        height=row.get("height"),
        captions=captions,
        scores=scores,
        frame_captions=list(row.get("frame_captions") or []),
        meta=json.loads(row["meta"]) if row.get("meta") else {},
        status=row.get("status") or "",
        shard=row.get("shard"),
    )


def video_to_row(video: Video) -> dict[str, Any]:
    """A Video as a `videos.parquet` row."""
    return video.to_row()


def clips_table(clips: Iterable[Clip]) -> pa.Table:
    """Clips as a flat table: clip_schema() plus a column for every other score or caption."""
    rows = [clip_to_row(c) for c in clips]
    extra = {k for r in rows for k in r} - BASE_COLUMNS
    captions = {k[: -len(CAPTION_SUFFIX)] for k in extra if k.endswith(CAPTION_SUFFIX)}
    scores = {k for k in extra if not k.endswith(CAPTION_SUFFIX)}
    return pa.Table.from_pylist(rows, schema=clip_schema(scores, captions))


def upgrade_table(table: pa.Table) -> pa.Table:
    """A legacy clips table (MAP columns) as the flat one; a flat table as it is."""
    if not is_legacy(table.schema):
        return table
    return clips_table(row_to_clip(r) for r in table.to_pylist())


def concat_clip_tables(tables: list[pa.Table]) -> pa.Table:
    """Clips tables (shard sidecars) as one, with the union of their caption and score columns
    in schema order (a column a table lacks is null there)."""
    tables = [upgrade_table(t) for t in tables]
    if not tables:
        return clip_schema().empty_table()
    scores = {s for t in tables for s in score_names_of(t.schema)}
    captions = {c for t in tables for c in caption_names(t.schema)}
    schema = clip_schema(scores, captions)
    out = []
    for t in tables:
        columns = [
            t.column(f.name).cast(f.type) if f.name in t.schema.names else pa.nulls(len(t), f.type)
            for f in schema
        ]
        out.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(out)


def read_clips_table(path: str | Path) -> pa.Table:
    """A `clips.parquet` (or shard sidecar) as a flat table (a legacy file is converted)."""
    return upgrade_table(pq.read_table(path))


def read_clips(path: str | Path) -> list[Clip]:
    """All clips of a `clips.parquet` (or a shard sidecar) as records."""
    return [row_to_clip(r) for r in pq.read_table(path).to_pylist()]


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """Write a parquet file under a temporary name, then rename it onto `path`."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def arrow_reader(rel: Any, rows: int) -> pa.RecordBatchReader:
    """A streaming reader of a DuckDB relation's result (DuckDB 1.x and 2.x spellings)."""
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(rows)
    return rel.fetch_record_batch(rows)
