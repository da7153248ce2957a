"""The records that flow through the pipeline (`Video`, `Clip`), clip ids, caption priority, timecodes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def is_safe_id(value: str) -> bool:
    """True when `value` can be used as a file name and a WebDataset key as it is."""
    return isinstance(value, str) and bool(_SAFE_ID.fullmatch(value))


def check_id(value: str, what: str = "video id") -> str:
    """Return `value` if it is a safe id, else raise ValueError (ids name files in the output)."""
    if not is_safe_id(value):
        raise ValueError(f"unsafe {what} {value!r}: only A-Z a-z 0-9 _ - (1-128 chars) allowed")
    return value


def make_video_id(name: str, salt: str | None = None) -> str:
    """A safe id from a free name (file stem, URL path); `salt` adds a short hash to disambiguate."""
    base = _UNSAFE_CHARS.sub("_", name).strip("_")[:100] or "video"
    if salt is not None:
        base = f"{base}-{hashlib.sha1(salt.encode()).hexdigest()[:8]}"
    return base


def _hhmmssmmm(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}{m:02d}{s:02d}{ms:03d}"


def make_clip_id(video_id: str, start_ms: int, end_ms: int) -> str:
    """Deterministic clip id that carries its timestamps: `pDq9UzfCtGw_000814520_000837120`.

    Reads as video id, start `00:08:14.520`, end `00:08:37.120`. No dots, so it is a valid
    WebDataset key; one video id maps to many clips, and the id tells them apart.
    """
    return f"{check_id(video_id)}_{_hhmmssmmm(start_ms)}_{_hhmmssmmm(end_ms)}"


def parse_clip_id(clip_id: str) -> tuple[str, int, int]:
    """Inverse of `make_clip_id`: (video id, start ms, end ms)."""
    video_id, start, end = clip_id.rsplit("_", 2)

    def ms(t: str) -> int:
        if len(t) < 9 or not t.isdigit():
            raise ValueError(f"not a clip id: {clip_id!r}")
        h, m, s, milli = int(t[:-7]), int(t[-7:-5]), int(t[-5:-3]), int(t[-3:])
        return ((h * 60 + m) * 60 + s) * 1000 + milli

    return video_id, ms(start), ms(end)


@dataclass
class Video:
    """A source video: where it comes from and what probing found out about it."""

    id: str  # safe id: file stem, YouTube id or given by the input list
    source: str  # what the user gave: a local path or an http(s) URL
    path: str | None = None  # local file to decode (the source itself, or the downloaded copy)
    duration: float | None = None  # seconds, from the container (or the video stream)
    fps: float | None = None  # average frame rate of the video stream
    num_frames: int | None = None  # frames in the video stream when the container says so
    width: int | None = None  # coded width in pixels (before rotation)
    height: int | None = None  # coded height in pixels (before rotation)
    codec: str | None = None  # video codec name, e.g. "h264"
    has_audio: bool | None = None  # True when an audio stream exists
    rotation: int = 0  # display rotation in degrees (0, 90, 180, 270) from side data
    size_bytes: int | None = None  # file size on disk
    meta: dict[str, Any] = field(default_factory=dict)  # free metadata (title, query, list columns)

    def to_row(self) -> dict[str, Any]:
        """The video's facts as a `videos.parquet` row (meta as a JSON object string)."""
        row = dataclasses.asdict(self)
        row["meta"] = meta_json(self.meta)
        return row


def meta_json(meta: dict[str, Any]) -> str:
    """A meta mapping as the JSON text the tables hold (sorted keys, UTF-8 kept)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)


# the caption a clip is known by (KEY.txt, the release row, subsets, the report): the first
# of these that is present and not blank
CAPTION_PRIORITY = ("fused", "release", "coarse")


def pick_caption(captions: dict[str, str | None]) -> str | None:
    """The first caption of CAPTION_PRIORITY that is not blank; else the first present one
    (blank: a release row's empty caption round-trips as ""); None when there is none."""
    present = [captions[k] for k in CAPTION_PRIORITY if captions.get(k) is not None]
    return next((t for t in present if t.strip()), present[0] if present else None)


@dataclass
class Clip:
    """One clip of a video: the unit of the dataset, one row in `clips.parquet`."""

    clip_id: str  # make_clip_id(video_id, start_ms, end_ms)
    video_id: str  # the Video this clip was cut from
    start: float  # seconds from the start of the video (first frame of the clip)
    end: float  # seconds, exclusive (first frame after the clip)
    source: str = ""  # the source video as given by the user (path or URL)
    fps: float | None = None  # frame rate of the clip
    width: int | None = None  # clip width in pixels (after any rescale when cut)
    height: int | None = None  # clip height in pixels (after any rescale when cut)
    captions: dict[str, str] = field(
        default_factory=dict
    )  # name -> caption ("release", "fused"...)
    scores: dict[str, float] = field(default_factory=dict)  # name -> score ("aesthetic", "umt"...)
    # captions of the frames at caption.fine_fps, in temporal order (the fine scale)
    frame_captions: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # free metadata (frames, requested times...)
    status: str = "split"  # lifecycle: "split" (times known) -> "cut" (clip file in a shard)
    shard: int | None = None  # number of the WebDataset shard holding the clip file

    @property
    def duration(self) -> float:
        return self.end - self.start

    def best_caption(self) -> str:
        """The caption the clip is known by: fused > release > coarse (not blank), else ""."""
        text = pick_caption(self.captions) or ""
        return text if text.strip() else ""

    def frame_range(self, fps: float) -> tuple[int, int]:
        """Frames [start, end) of the clip: the splitter's, else its times rounded to frames."""
        if "start_frame" in self.meta and "end_frame" in self.meta:
            return int(self.meta["start_frame"]), int(self.meta["end_frame"])
        a = round(self.start * fps)
        return a, max(round(self.end * fps), a + 1)

    @classmethod
    def new(cls, video_id: str, start: float, end: float, **kw: Any) -> Clip:
        """A clip whose id is derived from its times (rounded to whole milliseconds)."""
        clip_id = make_clip_id(video_id, round(start * 1000), round(end * 1000))
        return cls(clip_id=clip_id, video_id=video_id, start=start, end=end, **kw)


# --- timestamps in the InternVid release format (`HH:MM:SS.mmm`) and whole milliseconds
_TIMECODE = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$")


def parse_timecode(text: str) -> int:
    """`"00:08:14.520"` -> 494520 milliseconds; raises ValueError on anything else."""
    m = _TIMECODE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not a HH:MM:SS.mmm timestamp: {text!r}")
    h, mi, s, ms = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def format_timecode(ms: int) -> str:
    """494520 milliseconds -> `"00:08:14.520"`."""
    if ms < 0:
        raise ValueError(f"negative timestamp: {ms} ms")
    s, ms = divmod(int(ms), 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def seconds_to_ms(seconds: float) -> int:
    """Seconds -> the nearest whole millisecond."""
    return round(seconds * 1000.0)
