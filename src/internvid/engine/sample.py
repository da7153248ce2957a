"""What flows between stages: one source video, its clips, in-memory payloads; the trail of
failures, drops and probes stages leave behind."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from internvid.records import Clip, Video


@dataclass
class Sample:
    """One source video on its way through the pipeline.

    `video` and `clips` are what gets written out; `files` and `payload` live in memory only
    (clip files being cut, decoded frames) and are never written into the metadata.
    """

    video: Video  # the source video and its probe facts
    clips: list[Clip] = field(
        default_factory=list
    )  # clips so far (empty until split, or given by metadata)
    files: dict[str, str] = field(default_factory=dict)  # clip_id -> local clip file, once cut
    payload: dict[str, Any] = field(
        default_factory=dict
    )  # in-memory extras (frames...), never written

    @property
    def id(self) -> str:
        return self.video.id


@dataclass
class Failure:
    """One row of `failures.jsonl`: an item that could not be processed, and why."""

    item: str  # video id (or clip id for a clip-level failure)
    stage: str  # name of the stage where it failed ("input" for unreadable input lines)
    reason: (
        str  # short slug: corrupt, empty_file, not_a_video, no_video_stream, download_failed, ...
    )
    message: str  # human-readable detail (an exception message, ffmpeg's stderr tail)
    source: str = ""  # the path or URL the item came from

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Dropped:
    """One row of `dropped.jsonl`: a clip or video a rule removed on purpose, and the values
    the rule looked at."""

    item: str  # clip id (kind "clip") or video id (kind "video")
    kind: str  # "clip" or "video"
    video_id: str  # the source video
    stage: str  # name of the stage whose rule removed it
    rule: str  # short slug: still, chaotic, clip_too_short, no_clips, too_short, too_long...
    values: dict[str, Any] = field(default_factory=dict)  # measured values and thresholds
    start: float | None = None  # clip start in seconds (None for a video)
    end: float | None = None  # clip end in seconds, exclusive (None for a video)
    source: str = ""  # the path or URL the video came from

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Probed:
    """A video's probe facts, noted when probing succeeds: every probed video gets its row in
    `videos.parquet`, whatever happens to it later."""

    row: dict[str, Any]  # io.tables.video_to_row of the probed Video


Trail = list  # of Failure | Dropped | Probed, in the order stages recorded them
