"""yt-dlp for both downloaders: the format policy, the shared options, the log adapter."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_BYTES",
    "YtdlpLogger",
    "base_options",
    "format_selector",
    "is_url",
    "set_ffmpeg_location",
    "written_file",
]

log = logging.getLogger(__name__)

MIN_BYTES = 1024  # a "completed" download smaller than this is an error page, not a video


def is_url(source: str) -> bool:
    """Whether a source is fetched with yt-dlp (http or https) rather than read from disk."""
    return source.startswith(("http://", "https://"))


def format_selector(max_height: int | None, fmt: str | None = None) -> str:
    """The yt-dlp format selector: `fmt` when given, else the height-capped fallback chain.

    Best video up to the cap (unknown heights pass) + best audio; else the best single file up
    to the cap; else, when nothing is at or under the cap, the smallest there is (the closest to
    it). No cap (0 or None): the best video + audio, else the best single file.
    """
    if fmt:
        return fmt
    if not max_height:
        return "bv*+ba/b"
    h = max_height
    return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/wv*+ba/w"


class YtdlpLogger:
    """Routes yt-dlp's messages into `logger` (it prints to the terminal otherwise); its errors
    come back as exceptions, so they are logged at debug level only."""

    def __init__(self, logger: logging.Logger = log, warning_level: int = logging.INFO):
        self.logger = logger  # where the messages go
        self.warning_level = warning_level  # level of yt-dlp's warnings

    def debug(self, msg: str) -> None:
        self.logger.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        self.logger.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        self.logger.log(self.warning_level, "yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        self.logger.debug("yt-dlp error: %s", msg)


def base_options(
    *, fmt: str, ffmpeg: str, socket_timeout: float, retries: int, logger: YtdlpLogger
) -> dict[str, Any]:
    """The YoutubeDL options both downloaders start from: mp4 out, quiet, no playlists."""
    return {
        "format": fmt,
        "merge_output_format": "mp4",
        "ffmpeg_location": ffmpeg,
        "noplaylist": True,
        "quiet": True,  # also makes yt-dlp run ffmpeg with -loglevel quiet
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "retries": retries,
        "socket_timeout": socket_timeout,
        "overwrites": True,
    }


def set_ffmpeg_location(ffmpeg: str) -> None:
    """Tell yt-dlp's ffmpeg check where ffmpeg is, in this thread.

    yt-dlp checks for ffmpeg (before a partial download) through a context variable that its
    command line sets from --ffmpeg-location; threads start with an empty context.
    """
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
    if location is not None:
        location.set(ffmpeg)


def written_file(result: dict[str, Any] | None) -> Path | None:
    """The file yt-dlp says it wrote for `result` (an info dict after download), if it exists."""
    for d in (result or {}).get("requested_downloads") or []:
        p = d.get("filepath")
        if p and Path(p).is_file():
            return Path(p)
    return None
