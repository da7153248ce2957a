"""Download stage: http(s) URLs with yt-dlp, objects (s3://...) with fsspec; local files pass."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from internvid.config import DownloadConfig
from internvid.download.errors import MAX_REASON_MESSAGE, classify_exception
from internvid.download.ytdlp import (
    MIN_BYTES,
    YtdlpLogger,
    base_options,
    format_selector,
    is_url,
    written_file,
)
from internvid.engine import Context, Resources, Sample, Stage, StageError
from internvid.io.storage import (
    StorageError,
    StorageUnavailable,
    backend_errors,
    filesystem,
    is_remote,
)
from internvid.media.ffmpeg import ffmpeg_exe

__all__ = ["VIDEO_META_KEYS", "DownloadStage", "is_url"]

log = logging.getLogger(__name__)

VIDEO_META_KEYS = (  # facts of yt-dlp's info kept in the video's meta
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


class DownloadStage(Stage):
    """Fetches samples whose source is a URL or an object into `folder/VIDEO_ID.EXT`; local files
    pass through.

    The file name comes from our sanitised video id, never from the remote side. An existing
    complete download is reused (a resumed run does not fetch it again). Failures carry the
    reasons of `internvid.download.errors`.
    """

    name = "download"
    needs = frozenset({"video"})
    provides = frozenset({"local_file"})
    resources = Resources(cpus=0.5)  # mostly waiting on the network

    def __init__(self, cfg: DownloadConfig, folder: str | Path):
        self.cfg = cfg
        self.folder = Path(folder)

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
        remote = is_remote(v.source)
        if not (is_url(v.source) or remote):
            return sample
        self.folder.mkdir(parents=True, exist_ok=True)
        done = self._existing(v.id)
        if done is None:
            done = self._copy(v.source, v.id) if remote else self._fetch(v.source, v.id, sample)
        v.path = str(done)
        return sample

    def _copy(self, url: str, video_id: str) -> Path:
        """An object-storage source (s3://...) copied whole, through a temp name."""
        ext = Path(url.rsplit("/", 1)[-1]).suffix.lower() or ".mp4"
        target = self.folder / f"{video_id}{ext}"
        tmp = self.folder / f".{video_id}{ext}.tmp-{os.getpid()}"
        try:
            fs, path = filesystem(url)
            with backend_errors(url):
                fs.get_file(path, str(tmp))
            os.replace(tmp, target)
        except FileNotFoundError as e:
            raise StageError("not_found", f"no such object: {url}") from e
        except StorageError as e:
            raise StageError("unsupported_scheme", str(e)[:MAX_REASON_MESSAGE]) from e
        except StorageUnavailable as e:  # credentials, endpoint: the store's, not the video's
            raise StageError("storage_error", str(e)[:MAX_REASON_MESSAGE]) from e
        except OSError as e:
            msg = f"{type(e).__name__}: {e}".replace("\n", " ")[:MAX_REASON_MESSAGE]
            raise StageError("network", msg) from e
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def ydl_options(self, video_id: str) -> dict[str, Any]:
        """yt-dlp's options for one video: the shared ones, its retries, our file name."""
        return {
            **base_options(
                fmt=format_selector(self.cfg.max_height, self.cfg.format),
                ffmpeg=ffmpeg_exe(),
                socket_timeout=self.cfg.socket_timeout,
                retries=self.cfg.retries,
                logger=YtdlpLogger(log),
            ),
            "outtmpl": {"default": str(self.folder / f"{video_id}.%(ext)s")},
        }

    def _fetch(self, url: str, video_id: str, sample: Sample) -> Path:
        import yt_dlp

        try:
            with yt_dlp.YoutubeDL(self.ydl_options(video_id)) as ydl:
                info = ydl.extract_info(url, download=True)
        except Exception as e:
            msg = str(e).replace("\n", " ")[:MAX_REASON_MESSAGE]
            raise StageError(classify_exception(e).reason, msg) from e
        info = info or {}
        for key in VIDEO_META_KEYS:
            if info.get(key):
                sample.video.meta.setdefault(key, info[key])
        path = written_file(info) or self._existing(video_id)
        if path is None:
            raise StageError("other", f"yt-dlp reported success but wrote no file for {url}")
        if path.stat().st_size < MIN_BYTES:
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            raise StageError("other", f"downloaded only {size} bytes from {url}")
        return path
