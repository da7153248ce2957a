"""Search providers: where `internvid collect` finds videos (yt-dlp for real use; any extractor set)."""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from internvid.download.ytdlp import YtdlpLogger

log = logging.getLogger(__name__)

# keys of a video's full info kept in collect's table (the rest is dropped)
DETAIL_KEYS = (
    "id", "title", "description", "tags", "categories", "channel", "channel_id", "uploader",
    "upload_date", "language", "duration", "webpage_url", "extractor_key", "live_status",
    "availability", "width", "height",
)  # fmt: skip


class SearchProvider(Protocol):
    """What collect asks a platform: searches and listings (flat: no media, few requests) and
    the full facts of one video. Errors are raised as they come (yt-dlp's, the network's)."""

    def search(self, query: str, n: int) -> list[dict[str, Any]]: ...

    def listing(self, url: str, n: int) -> list[dict[str, Any]]: ...

    def details(self, entry: dict[str, Any]) -> dict[str, Any]: ...


def load_extractor(spec: str) -> type:
    """A yt-dlp extractor class from "module:Class" (plugins, test platforms)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"extractor {spec!r}: give it as module:Class")
    return getattr(importlib.import_module(module), name)


class YtdlpProvider:
    """yt-dlp as the provider: `{prefix}{n}:{query}` searches (`ytsearch` by default) and
    channel / playlist listings with `extract_flat` (entries only, no media, no per-video
    requests), then one info request per video that passed the cheap checks. `extractors`
    ("module:Class") are registered ahead of yt-dlp's own, so a plugin or a test platform
    answers its URLs first."""

    def __init__(
        self,
        search_prefix: str = "ytsearch",
        extractors: tuple[str, ...] = (),
        socket_timeout: float = 30.0,
    ):
        self.search_prefix = search_prefix  # yt-dlp search key, e.g. ytsearch
        self.extractors = tuple(extractors)  # extra extractor classes, "module:Class"
        self.socket_timeout = socket_timeout  # seconds a connection may stall

    def _ydl(self, flat: bool, playlistend: int | None = None) -> Any:
        import yt_dlp

        opts: dict[str, Any] = {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "skip_download": True,
            "logger": YtdlpLogger(log),
            "socket_timeout": self.socket_timeout,
            "extract_flat": "in_playlist" if flat else False,
        }
        if playlistend:
            opts["playlistend"] = playlistend
        ydl = yt_dlp.YoutubeDL(opts, auto_init=False)
        for spec in self.extractors:
            ydl.add_info_extractor(load_extractor(spec)())
        ydl.add_default_info_extractors()
        return ydl

    def _extract(self, url: str, flat: bool, n: int | None = None, ie_key: str | None = None):
        """yt-dlp's info for `url` as plain JSON data; its errors pass up as they are (the
        caller classifies them: download/errors.py)."""
        with self._ydl(flat, n) as ydl:
            return ydl.sanitize_info(ydl.extract_info(url, download=False, ie_key=ie_key))

    def search(self, query: str, n: int) -> list[dict[str, Any]]:
        info = self._extract(f"{self.search_prefix}{n}:{query}", flat=True)
        return list((info or {}).get("entries") or [])[:n]

    def listing(self, url: str, n: int) -> list[dict[str, Any]]:
        info = self._extract(url, flat=True, n=n)
        return list((info or {}).get("entries") or [])[:n]

    def details(self, entry: dict[str, Any]) -> dict[str, Any]:
        url = entry.get("url") or entry.get("webpage_url") or entry["id"]
        info = self._extract(url, flat=False, ie_key=entry.get("ie_key")) or {}
        out = {k: info.get(k) for k in DETAIL_KEYS if info.get(k) is not None}
        formats = info.get("formats") or []
        heights = [f.get("height") for f in formats if f.get("height")]
        out["max_height"] = max(heights) if heights else info.get("height")
        out["has_audio"] = any((f.get("acodec") or "none") != "none" for f in formats) or bool(
            info.get("acodec") not in (None, "none")
        )
        return out
