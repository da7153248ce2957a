"""Downloads with yt-dlp: the release clips of `internvid download` and the run's URL stage."""

from internvid.download.clips import (
    DownloadLockedError,
    DownloadSetupError,
    DownloadSummary,
    download_release,
)
from internvid.download.errors import FetchError, classify_exception
from internvid.download.ytdlp import format_selector, is_url

__all__ = [
    "DownloadLockedError",
    "DownloadSetupError",
    "DownloadSummary",
    "FetchError",
    "classify_exception",
    "download_release",
    "format_selector",
    "is_url",
]
