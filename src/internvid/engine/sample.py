"""What flows between stages: one source video, its clips, and in-memory payloads; and failures."""

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
