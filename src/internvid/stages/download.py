"""Download stage: fetch http(s) URLs with yt-dlp (its generic extractor covers direct files)."""

from __future__ import annotations

import logging
from pathlib import Path

from internvid.config import DownloadConfig
from internvid.engine import Context, Resources, Sample, Stage, StageError
from internvid.media.ffmpeg import ffmpeg_exe

log = logging.getLogger(__name__)

MIN_BYTES = 1024  # a "completed" download smaller than this is an error page, not a video
INFO_KEYS = (
    "title",
    "description",
    "tags",
    "categories",
    "uploader",
    "channel",
    "upload_date",
    "language",
    "webpage_url",
    "extractor",
)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


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


def classify_error(message: str) -> str:
    """A failure reason from yt-dlp's error text."""
    m = message.lower()
    for needle, reason in (
        ("private video", "private"),
        ("available in your country", "region_locked"),  # also "has not made this video available"
        ("geo restriction", "region_locked"),  # "not available from your location due to geo ..."
        ("confirm your age", "age_restricted"),
        ("removed", "removed"),
        ("http error 429", "rate_limited"),  # not a bare "429": ports and video ids hold digits
        ("too many requests", "rate_limited"),
        ("http error 404", "unavailable"),
        ("unavailable", "unavailable"),
    ):
        if needle in m:
            return reason
    return "download_failed"


class DownloadStage(Stage):
    """Fetches samples whose source is a URL into `folder/VIDEO_ID.EXT`; local files pass through.

    The file name comes from our sanitised video id, never from the remote side. An existing
    complete download is reused (a resumed run does not fetch it again).
    """

    name = "download"
    needs = frozenset({"video"})
    provides = frozenset({"local_file"})
    resources = Resources(cpus=0.5)  # mostly waiting on the network

    def __init__(self, cfg: DownloadConfig, folder: str | Path):
        self.cfg = cfg
        self.folder = Path(folder)

    def _format(self) -> str:
        if self.cfg.format:
            return self.cfg.format
        h = self.cfg.max_height
        # best video up to h (unknown heights pass) + best audio; else best single file up to h;
        # else whatever is best (the cut scales it down)
        return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/bv*+ba/b"

    def _existing(self, video_id: str) -> Path | None:
        for p in sorted(self.folder.glob(f"{video_id}.*")):
            if (
                p.suffix not in (".part", ".ytdl", ".json")
                and not p.name.startswith(".")
                and p.stat().st_size >= MIN_BYTES
            ):
                return p
        return None

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        v = sample.video
        if not is_url(v.source):
            return sample
        self.folder.mkdir(parents=True, exist_ok=True)
        done = self._existing(v.id)
        if done is None:
            done = self._fetch(v.source, v.id, sample)
        v.path = str(done)
        return sample

    def _fetch(self, url: str, video_id: str, sample: Sample) -> Path:
        import yt_dlp

        opts = {
            "outtmpl": {"default": str(self.folder / f"{video_id}.%(ext)s")},
            "format": self._format(),
            "merge_output_format": "mp4",
            "ffmpeg_location": ffmpeg_exe(),
            "noplaylist": True,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "retries": self.cfg.retries,
            "socket_timeout": self.cfg.socket_timeout,
            "logger": YtdlpLogger(),
            "overwrites": True,
        }
        try:
            with yt_dlp.YoutubeDL(opts) as ydl:
                info = ydl.extract_info(url, download=True)
        except Exception as e:
            msg = str(e).replace("\n", " ")[:500]
            raise StageError(classify_error(msg), msg) from e
        info = info or {}
        for key in INFO_KEYS:
            if info.get(key):
                sample.video.meta.setdefault(key, info[key])
        path = None
        for d in info.get("requested_downloads") or []:
            if d.get("filepath"):
                path = Path(d["filepath"])
        path = path if path and path.is_file() else self._existing(video_id)
        if path is None or not path.is_file():
            raise StageError(
                "download_failed", f"yt-dlp reported success but wrote no file for {url}"
            )
        if path.stat().st_size < MIN_BYTES:
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            raise StageError("download_failed", f"downloaded only {size} bytes from {url}")
        return path
