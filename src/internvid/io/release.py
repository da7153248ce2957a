"""Stream the InternVid release metadata (JSON lines, one clip a line) in and out, row by row."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from internvid.io.atomic import atomic_open, temp_name
from internvid.records import (
    Clip,
    format_timecode,
    is_safe_id,
    parse_timecode,
    pick_caption,
    seconds_to_ms,
)

__all__ = [
    "MAX_CAPTION_CHARS",
    "MAX_LINE_BYTES",
    "UMT_KEYS",
    "MalformedRow",
    "ReleaseRow",
    "ReleaseWriter",
    "bounded_lines",
    "clip_from_row",
    "iter_numbered_release_rows",
    "iter_release_rows",
    "row_from_clip",
    "write_release_rows",
]

logger = logging.getLogger(__name__)

UMT_KEYS = ("UMT_Score", "UMT-SIM")  # the names the release uses for the UMT similarity score
_REQUIRED = ("YoutubeID", "Start_timestamp", "End_timestamp")
_FIXED_KEYS = frozenset((*_REQUIRED, "Caption", "Aesthetic_Score"))
MAX_LINE_BYTES = 1 << 20  # longest metadata line read (bytes, its line ending not counted)
MAX_CAPTION_CHARS = 16 * 1024  # longest Caption of a row read; a longer one fails the row
_SKIP_CHUNK = 1 << 16  # bytes read at a time while skipping past an overlong line

# The `reason` slugs of MalformedRow, for reference:
#   invalid_json      the line is not JSON (or not UTF-8, or uses NaN/Infinity)
#   not_an_object     the line is JSON but not an object
#   missing_field     YoutubeID, Start_timestamp or End_timestamp is absent
#   bad_timestamp     a timestamp is not a "HH:MM:SS.mmm" string
#   bad_type          YoutubeID not a string, Caption not a string, a score not a finite number
#   unsafe_id         YoutubeID could not be used as a file name (records.is_safe_id)
#   end_before_start  End_timestamp is earlier than Start_timestamp
#   line_too_long     the line is longer than max_line_bytes (skipped unread, in bounded chunks)
#   caption_too_long  Caption is longer than max_caption_chars (the row fails, never truncated)


class MalformedRow(ValueError):
    """A release row that cannot be read; `reason` is a short slug, `line_no` set by the reader."""

    def __init__(self, reason: str, message: str, *, line_no: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.line_no = line_no

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only arguments: tell pickle how to rebuild it, so it can cross process pools
        return (_rebuild_malformed, (self.reason, self.message, self.line_no))


def _rebuild_malformed(reason: str, message: str, line_no: int | None) -> MalformedRow:
    return MalformedRow(reason, message, line_no=line_no)


def _safe_id(value: str) -> bool:
    # records.is_safe_id anchors with `$`, which also matches before a final "\n": refuse that here
    return is_safe_id(value) and not value.endswith("\n")


def _timestamp(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    try:
        return parse_timecode(value)
    except ValueError:
        raise MalformedRow("bad_timestamp", f"{key} is not HH:MM:SS.mmm: {value!r}") from None


def _score(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedRow("bad_type", f"{key} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedRow("bad_type", f"{key} must be a finite number, got {value!r}")
    return value


@dataclass
class ReleaseRow:
    """One row of the release metadata: a clip of a YouTube video, its caption and scores."""

    youtube_id: str  # YoutubeID: the YouTube video id (a safe id, it names files later)
    start_ms: int  # Start_timestamp in whole milliseconds from the start of the video
    end_ms: int  # End_timestamp in whole milliseconds (not before start_ms)
    caption: str | None = None  # Caption; None when the row has none (absent or null)
    aesthetic_score: float | None = None  # Aesthetic_Score; None when absent or null
    umt_score: float | None = None  # UMT_Score (or UMT-SIM); None when absent or null
    umt_key: str = "UMT_Score"  # the key the row named its UMT score with, written back the same
    extra: dict[str, Any] = field(default_factory=dict)  # other keys, in their order in the row

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ReleaseRow:
        """A row from a decoded JSON object; raises MalformedRow (with a `reason`) when invalid.

        Null scores and a null caption read as absent. When both UMT_Score and UMT-SIM are present,
        the first one is the score and the other stays in `extra`.
        """
        if not isinstance(obj, dict):
            raise MalformedRow("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
        for key in _REQUIRED:
            if key not in obj:
                raise MalformedRow("missing_field", f"missing {key}")
        youtube_id = obj["YoutubeID"]
        if not isinstance(youtube_id, str):
            raise MalformedRow("bad_type", f"YoutubeID must be a string, got {youtube_id!r}")
        if not _safe_id(youtube_id):
            raise MalformedRow("unsafe_id", f"unsafe YoutubeID {youtube_id!r}")
        start_ms = _timestamp(obj, "Start_timestamp")
        end_ms = _timestamp(obj, "End_timestamp")
        if end_ms < start_ms:
            raise MalformedRow(
                "end_before_start",
                f"End_timestamp {obj['End_timestamp']} is before "
                f"Start_timestamp {obj['Start_timestamp']}",
            )
        caption = obj.get("Caption")
        if caption is not None and not isinstance(caption, str):
            raise MalformedRow(
                "bad_type", f"Caption must be a string, got {type(caption).__name__}"
            )
        aesthetic = _score(obj.get("Aesthetic_Score"), "Aesthetic_Score")

        umt_key, umt_score, umt_seen = "UMT_Score", None, False
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            if key in _FIXED_KEYS:
                continue
            if key in UMT_KEYS and not umt_seen:
                umt_key, umt_score, umt_seen = key, _score(value, key), True
            else:
                extra[key] = value
        return cls(youtube_id, start_ms, end_ms, caption, aesthetic, umt_score, umt_key, extra)

    def to_json(self) -> dict[str, Any]:
        """The row as a release JSON object: fixed key order, absent fields left out, then extras.

        Extras always come after the fixed keys, in their own order.
        """
        if not _safe_id(self.youtube_id):
            raise MalformedRow("unsafe_id", f"unsafe YoutubeID {self.youtube_id!r}")
        if self.end_ms < self.start_ms:
            raise MalformedRow(
                "end_before_start", f"end {self.end_ms} ms < start {self.start_ms} ms"
            )
        if self.umt_key not in UMT_KEYS:
            raise ValueError(f"umt_key must be one of {UMT_KEYS}, got {self.umt_key!r}")
        obj: dict[str, Any] = {
            "YoutubeID": self.youtube_id,
            "Start_timestamp": format_timecode(self.start_ms),
            "End_timestamp": format_timecode(self.end_ms),
        }
        if self.caption is not None:
            obj["Caption"] = self.caption
        if self.aesthetic_score is not None:
            obj["Aesthetic_Score"] = self.aesthetic_score
        if self.umt_score is not None:
            obj[self.umt_key] = self.umt_score
        for key, value in self.extra.items():
            if key in _FIXED_KEYS or key == self.umt_key:
                raise ValueError(f"extra key {key!r} clashes with a release field")
            obj[key] = value
        return obj


def _parse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_parse_constant)
_encoder = json.JSONEncoder(ensure_ascii=False)  # = json.dumps(obj, ensure_ascii=False), reused


def _parse_line(line: str, max_caption_chars: int | None = None) -> ReleaseRow:
    try:
        obj = _decoder.decode(line)
    except ValueError as e:  # JSONDecodeError and NaN/Infinity
        raise MalformedRow("invalid_json", f"invalid JSON: {e}") from None
    row = ReleaseRow.from_json(obj)
    if max_caption_chars is not None and row.caption and len(row.caption) > max_caption_chars:
        raise MalformedRow(
            "caption_too_long",
            f"Caption of {len(row.caption)} characters is longer than {max_caption_chars}",
        )
    return row


def bounded_lines(f: IO[bytes] | IO[str], max_bytes: int = MAX_LINE_BYTES) -> Iterator[Any]:
    """The lines of an open file (with their endings), each read with `readline(max_bytes + 1)`;
    a line longer than `max_bytes` is read past in small chunks, never held whole, and yields
    None in its place. Memory stays under `max_bytes` whatever the file holds (for a text
    stream the limit counts characters; a "\\r" before the newline counts as content)."""
    while True:
        line = f.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and line[-1:] not in ("\n", b"\n"):
            line = None
            while True:  # the rest of the overlong line, chunk by chunk, up to its newline
                chunk = f.readline(_SKIP_CHUNK)
                if not chunk or chunk[-1:] in ("\n", b"\n"):
                    break
        yield line


def _is_gzip(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(".gz")


def iter_release_rows(
    path: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    on_error: Callable[[int, MalformedRow, str], Any] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_caption_chars: int | None = MAX_CAPTION_CHARS,
) -> Iterator[ReleaseRow]:
    """Stream the rows of a `.jsonl` / `.jsonl.gz` file or an open file object, line by line.

    Blank lines are skipped; line numbers count every line from 1. A malformed line calls
    `on_error(line_no, error, raw_line)` (`raw_line` without its line ending) and is skipped; with
    no `on_error` it raises MalformedRow whose message names the line. Memory stays flat whatever
    the size of the file: a line over `max_line_bytes` is skipped in bounded chunks (reason
    `line_too_long`, `raw_line` ""), never read whole, when `path` is a file name or an object
    with `readline` (other iterables of lines are checked after the fact; an item None stands
    for an overlong line, as `bounded_lines` yields). A Caption over `max_caption_chars` (None:
    no limit) fails its row (`caption_too_long`).
    """
    for _, row in iter_numbered_release_rows(
        path,
        on_error=on_error,
        max_line_bytes=max_line_bytes,
        max_caption_chars=max_caption_chars,
    ):
        yield row


def iter_numbered_release_rows(
    path: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    on_error: Callable[[int, MalformedRow, str], Any] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_caption_chars: int | None = MAX_CAPTION_CHARS,
) -> Iterator[tuple[int, ReleaseRow]]:
    """`iter_release_rows`, each row with its line number (counting every line from 1)."""
    if isinstance(path, str | os.PathLike):
        name = os.fspath(path)
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            lines = bounded_lines(f, max_line_bytes)
            yield from _iter_lines(lines, name, on_error, max_line_bytes, max_caption_chars)
    else:
        name = getattr(path, "name", None) or "<stream>"
        lines = bounded_lines(path, max_line_bytes) if hasattr(path, "readline") else path
        yield from _iter_lines(lines, str(name), on_error, max_line_bytes, max_caption_chars)


def _iter_lines(
    lines: Iterable[str | bytes | None],
    name: str,
    on_error: Callable[[int, MalformedRow, str], Any] | None,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_caption_chars: int | None = MAX_CAPTION_CHARS,
) -> Iterator[tuple[int, ReleaseRow]]:
    rows = skipped = 0
    for line_no, raw in enumerate(lines, 1):
        if raw is None or len(raw.rstrip(b"\r\n" if isinstance(raw, bytes) else "\r\n")) > (
            max_line_bytes
        ):
            error = MalformedRow(
                "line_too_long", f"line longer than {max_line_bytes} bytes: skipped unread"
            )
            if on_error is None:
                raise _at_line(error, name, line_no) from None
            on_error(line_no, _at_line(error, name, line_no), "")
            skipped += 1
            continue
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                line = raw.decode("utf-8", errors="replace")
                error = MalformedRow("invalid_json", f"not UTF-8: {e}")
                if on_error is None:
                    raise _at_line(error, name, line_no) from None
                on_error(line_no, _at_line(error, name, line_no), line.rstrip("\r\n"))
                skipped += 1
                continue
        else:
            line = raw
        if line_no == 1 and line.startswith("\ufeff"):
            line = line[1:]  # a UTF-8 byte order mark
        if not line or line.isspace():
            continue
        try:
            row = _parse_line(line, max_caption_chars)
        except MalformedRow as e:
            error = _at_line(e, name, line_no)
            if on_error is None:
                raise error from None
            on_error(line_no, error, line.rstrip("\r\n"))
            skipped += 1
            continue
        rows += 1
        yield line_no, row
    logger.debug("read %d rows from %s, skipped %d malformed lines", rows, name, skipped)


def _at_line(error: MalformedRow, name: str, line_no: int) -> MalformedRow:
    return MalformedRow(error.reason, f"{name}:{line_no}: {error.message}", line_no=line_no)


class ReleaseWriter:
    """Write release rows as JSON lines, atomically: the final file appears only on success.

    Rows go to a temporary name in the same folder (`io.atomic.atomic_open`), which is fsynced
    and renamed onto `path` when the `with` block ends without an exception; on an exception it
    is deleted and `path` is left as it was. A `.gz` suffix writes gzip. Dict rows are checked
    through ReleaseRow first.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)  # the final file name
        self.tmp_path = temp_name(self.path)  # where rows go until the rename
        self.count = 0  # rows written so far
        self._atomic: contextlib.AbstractContextManager[IO[bytes]] | None = None  # the temp file
        self._stream: IO[bytes] | None = None  # where lines go: the file or a gzip layer over it

    def __enter__(self) -> ReleaseWriter:
        if self._atomic is not None:
            raise ValueError(f"{self.path} is already open")
        self._atomic = atomic_open(self.path, "wb")
        f = self._atomic.__enter__()
        if _is_gzip(self.path):
            self._stream = gzip.GzipFile(filename=self.path.name, mode="wb", fileobj=f, mtime=0)
        else:
            self._stream = f
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stream, atomic = self._stream, self._atomic
        self._stream = self._atomic = None
        try:
            if isinstance(stream, gzip.GzipFile):
                stream.close()  # writes the gzip trailer; the file itself stays open
        except BaseException as e:
            atomic.__exit__(type(e), e, e.__traceback__)  # deletes the temp file
            raise
        atomic.__exit__(exc_type, exc, tb)
        if exc_type is None:
            logger.debug("wrote %d release rows to %s", self.count, self.path)

    def write(self, row: ReleaseRow | dict[str, Any]) -> None:
        """Append one row (a ReleaseRow, or a release dict which is validated first)."""
        if self._stream is None:
            raise ValueError(f"{self.path} is not open: use `with ReleaseWriter(path) as w`")
        if isinstance(row, ReleaseRow):
            obj = row.to_json()
        elif isinstance(row, dict):
            obj = ReleaseRow.from_json(row).to_json()
        else:
            raise TypeError(f"expected a ReleaseRow or a dict, got {type(row).__name__}")
        self._stream.write((_encoder.encode(obj) + "\n").encode("utf-8"))
        self.count += 1

    def write_all(self, rows: Iterable[ReleaseRow | dict[str, Any]]) -> int:
        """Append every row of `rows`; returns how many."""
        before = self.count
        for row in rows:
            self.write(row)
        return self.count - before


def write_release_rows(
    rows: Iterable[ReleaseRow | dict[str, Any]], path: str | os.PathLike[str]
) -> int:
    """Write `rows` to `path` atomically (see ReleaseWriter); returns the number of rows."""
    with ReleaseWriter(path) as writer:
        return writer.write_all(rows)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedRow("bad_type", f"{what} must be a number, got a bool")
    if isinstance(value, int | float):
        return value
    return float(value)  # numpy scalars and the like (json cannot write them)


def row_from_clip(clip: Clip) -> ReleaseRow:
    """The release row of a clip: caption fused > release > coarse, scores aesthetic and umt."""
    caption = pick_caption(clip.captions)
    umt = clip.scores.get("umt")
    if umt is None:
        umt = clip.scores.get("viclip_sim")
    return ReleaseRow(
        youtube_id=clip.video_id,
        start_ms=seconds_to_ms(clip.start),
        end_ms=seconds_to_ms(clip.end),
        caption=caption,
        aesthetic_score=_number(clip.scores.get("aesthetic"), "aesthetic score"),
        umt_score=_number(umt, "umt score"),
        umt_key=clip.meta.get("release_umt_key", "UMT_Score"),
        extra=dict(clip.meta.get("release_extra") or {}),
    )


def clip_from_row(row: ReleaseRow, source: str = "") -> Clip:
    """A pipeline Clip from a release row; `row_from_clip(clip_from_row(row)) == row`."""
    captions = {} if row.caption is None else {"release": row.caption}
    scores: dict[str, float] = {}
    if row.aesthetic_score is not None:
        scores["aesthetic"] = row.aesthetic_score
    if row.umt_score is not None:
        scores["umt"] = row.umt_score
    meta: dict[str, Any] = {"release_umt_key": row.umt_key}
    if row.extra:
        meta["release_extra"] = dict(row.extra)
    return Clip.new(
        row.youtube_id,
        row.start_ms / 1000,
        row.end_ms / 1000,
        source=source,
        captions=captions,
        scores=scores,
        meta=meta,
    )
