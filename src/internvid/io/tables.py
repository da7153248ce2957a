"""Parquet schemas of `clips.parquet` and `videos.parquet`, and conversions from the records."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from internvid.io.atomic import temp_name
from internvid.records import Clip, Video

# One row per clip. Documented field by field in docs/schema.md; keep the two in step.
CLIP_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("end", pa.float64(), nullable=False),
        pa.field("duration", pa.float64(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("captions", pa.map_(pa.string(), pa.string())),
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field("frame_captions", pa.list_(pa.string())),
        pa.field("meta", pa.string()),  # JSON object
        pa.field("status", pa.string()),
        pa.field("shard", pa.int32()),
    ]
)

# One row per source video that passed probing.
VIDEO_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
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


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


def clip_to_row(clip: Clip) -> dict[str, Any]:
    """A Clip as a `clips.parquet` row (maps as sorted key/value pairs, meta as JSON)."""
    return {
        "clip_id": clip.clip_id,
        "video_id": clip.video_id,
        "start": float(clip.start),
        "end": float(clip.end),
        "duration": float(clip.end - clip.start),
        "source": clip.source,
        "fps": clip.fps,
        "width": clip.width,
        "height": clip.height,
        "captions": sorted(clip.captions.items()),
        "scores": sorted((k, float(v)) for k, v in clip.scores.items()),
        "frame_captions": list(clip.frame_captions),
        "meta": _json(clip.meta),
        "status": clip.status,
        "shard": clip.shard,
    }


def row_to_clip(row: dict[str, Any]) -> Clip:
    """Inverse of `clip_to_row` (accepts maps as lists of pairs or as dicts)."""

    def as_dict(v: Any) -> dict:
        return dict(v) if v is not None else {}

    return Clip(
        clip_id=row["clip_id"],
        video_id=row["video_id"],
        start=row["start"],
        end=row["end"],
        source=row.get("source") or "",
        fps=row.get("fps"),
        width=row.get("width"),
        height=row.get("height"),
        captions=as_dict(row.get("captions")),
        scores=as_dict(row.get("scores")),
        frame_captions=list(row.get("frame_captions") or []),
        meta=json.loads(row["meta"]) if row.get("meta") else {},
        status=row.get("status") or "",
        shard=row.get("shard"),
    )


def video_to_row(video: Video) -> dict[str, Any]:
    """A Video as a `videos.parquet` row."""
    row = dataclasses.asdict(video)
    row["meta"] = _json(video.meta)
    return row


def clips_table(clips: Iterable[Clip]) -> pa.Table:
    return pa.Table.from_pylist([clip_to_row(c) for c in clips], schema=CLIP_SCHEMA)


def read_clips(path: str | Path) -> list[Clip]:
    """All clips of a `clips.parquet` (or a shard sidecar) as records."""
    return [row_to_clip(r) for r in pq.read_table(path, schema=CLIP_SCHEMA).to_pylist()]


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """Write a parquet file under a temporary name, then rename it onto `path`."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
