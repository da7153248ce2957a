"""Release rows -> units of work: checked ids, URLs, duplicates, rows rejected on reading."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from internvid.config import URL_ID_FIELD, DownloadCommandConfig
from internvid.download.errors import MAX_REASON_MESSAGE
from internvid.io.release import (
    MAX_LINE_BYTES,
    MalformedRow,
    ReleaseRow,
    bounded_lines,
    iter_release_rows,
)
from internvid.records import is_safe_id, make_clip_id

__all__ = ["Row", "Unit", "check_video_id", "count_rows", "iter_units", "render_url"]


def check_video_id(video_id: object, allow_leading_dash: bool = False) -> str | None:
    """Why `video_id` may not be used (None when it may): it names files and goes into URLs.

    Only A-Z a-z 0-9 _ - (1-128 characters) pass, so no "..", "/", absolute path, NUL or newline
    ever reaches a path. A leading "-" is refused too unless allowed: it would read as an option
    if the id were ever handed to a command line (this module never does; real YouTube ids can
    start with "-").
    """
    if not isinstance(video_id, str):
        return f"YoutubeID must be a string, got {type(video_id).__name__}"
    if not is_safe_id(video_id) or video_id.endswith("\n"):
        return f"unsafe YoutubeID {video_id!r}: only A-Z a-z 0-9 _ - (1-128 chars) allowed"
    if video_id.startswith("-") and not allow_leading_dash:
        return f"YoutubeID {video_id!r} starts with '-' (pass --allow-leading-dash to accept it)"
    return None


def render_url(template: str, video_id: str) -> str:
    """The video URL of a (checked) id: plain replacement, no str.format on user text."""
    if check_video_id(video_id, allow_leading_dash=True) is not None:
        raise ValueError(f"unsafe video id {video_id!r}")
    return template.replace(URL_ID_FIELD, video_id)


@dataclass(frozen=True)
class Row:
    """A valid metadata row and where it came from."""

    line: int  # line number in the metadata file (from 1)
    row: ReleaseRow  # the parsed row (id, times, caption, scores)
    clip_id: str  # VIDEOID_HHMMSSmmm_HHMMSSmmm


@dataclass
class Unit:
    """`rows_per_shard` consecutive valid rows: downloaded together, one shard, one marker."""

    index: int  # unit number = shard number (NNNNN)
    rows: list[Row]  # its valid rows, in file order

    @property
    def digest(self) -> str:
        """What the unit holds (its clip ids): a marker of other rows is not this unit's."""
        h = hashlib.sha256("\n".join(r.clip_id for r in self.rows).encode())
        return h.hexdigest()[:16]


class LineCounter:
    """Iterates the lines of a file and remembers the number of the last one handed out; a
    line over `max_bytes` is read past in chunks and handed out as None (`line_too_long`)."""

    def __init__(self, f: IO[bytes], name: str, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.f, self.name, self.line, self.max_bytes = f, name, 0, max_bytes

    def __iter__(self) -> Iterator[bytes | None]:
        for raw in bounded_lines(self.f, self.max_bytes):
            self.line += 1
            yield raw


def open_metadata(path: Path) -> IO[bytes]:
    """The metadata file as bytes (.gz read through gzip)."""
    return cast(IO[bytes], gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb"))


def input_failure(line: int, reason: str, message: str, raw: dict[str, Any] | None) -> dict:
    """A failures.jsonl row for a metadata line rejected before any request."""
    raw = raw or {}
    vid = raw.get("YoutubeID")
    return {
        "item": f"line-{line}",
        "stage": "input",
        "reason": reason,
        "message": message[:MAX_REASON_MESSAGE],
        "source": "",
        "transient": False,
        "attempts": 0,
        "line": line,
        "YoutubeID": vid if isinstance(vid, str) else None,
        "Start_timestamp": raw.get("Start_timestamp"),
        "End_timestamp": raw.get("End_timestamp"),
    }


def iter_units(
    meta: Path, cfg: DownloadCommandConfig, input_failures: list[dict[str, Any]]
) -> Iterator[Unit]:
    """Units of valid rows, in file order; rejected rows go to `input_failures` (no request)."""

    def on_error(line: int, error: MalformedRow, raw: str) -> None:
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        input_failures.append(
            input_failure(line, error.reason, error.message, obj if isinstance(obj, dict) else None)
        )

    n_valid, index = 0, 0
    buf: list[Row] = []
    seen: set[str] = set()
    with open_metadata(meta) as f:
        lines = LineCounter(f, str(meta))
        for row in iter_release_rows(cast(IO[bytes], lines), on_error=on_error):
            if cfg.limit is not None and n_valid >= cfg.limit:
                break
            line = lines.line
            why = check_video_id(row.youtube_id, cfg.allow_leading_dash)
            if why is not None:
                input_failures.append(input_failure(line, "unsafe_id", why, row.to_json()))
                continue
            clip_id = make_clip_id(row.youtube_id, row.start_ms, row.end_ms)
            if clip_id in seen:
                message = f"{clip_id} is already in this shard"
                input_failures.append(input_failure(line, "duplicate", message, row.to_json()))
                continue
            n_valid += 1
            seen.add(clip_id)
            buf.append(Row(line, row, clip_id))
            if len(buf) == cfg.rows_per_shard:
                yield Unit(index, buf)
                index, buf, seen = index + 1, [], set()
    if buf:
        yield Unit(index, buf)


def count_rows(meta: Path, limit: int | None) -> int:
    """Non-blank lines of the metadata (an upper bound of the rows: the progress bar's total)."""
    n = 0
    with open_metadata(meta) as f:
        for raw in f:
            if raw.strip():
                n += 1
    return n if limit is None else min(n, limit)
