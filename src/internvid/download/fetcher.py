"""Video infos and clip ranges through yt-dlp's Python API, each request limited and retried."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from internvid.config import DownloadCommandConfig
from internvid.download.errors import FetchError, classify_exception
from internvid.download.limiter import RateLimiter, backoff_delay
from internvid.download.units import Row, render_url
from internvid.download.ytdlp import (
    MIN_BYTES,
    YtdlpLogger,
    base_options,
    format_selector,
    set_ffmpeg_location,
    written_file,
)
from internvid.io.atomic import write_json_atomic

__all__ = ["Counters", "Fetcher"]

log = logging.getLogger(__name__)

MAX_SHORTFALL = 0.5  # seconds a clip may fall short of its range before it counts as cut off
INFO_TTL = 3 * 3600.0  # seconds a fetched video info is reused (YouTube's stream URLs expire)
INFO_CACHE_MIN = 64  # video infos kept in memory at least (rows of one video are adjacent)
RW_TIMEOUT_US = 60_000_000  # ffmpeg's read/write timeout on a stalled connection (microseconds)
INFO_KEYS = (  # video facts kept in each clip's meta["video"]
    "title",
    "uploader",
    "channel",
    "upload_date",
    "duration",
    "webpage_url",
    "extractor",
)
_HEAVY_INFO_KEYS = (  # parts of a YouTube info dict a clip download never needs (they are large)
    "thumbnails",
    "automatic_captions",
    "subtitles",
    "heatmap",
    "requested_subtitles",
)


def _prune_info(info: dict[str, Any]) -> dict[str, Any]:
    """Keep what a clip download needs: the chosen formats, not every format and thumbnail."""
    info = {k: v for k, v in info.items() if k not in _HEAVY_INFO_KEYS}
    chosen = info.get("requested_formats")
    if chosen:
        info["formats"] = list(chosen)
    elif info.get("formats") and info.get("format_id"):
        info["formats"] = [f for f in info["formats"] if f.get("format_id") == info["format_id"]]
    return info


class InfoCache:
    """Video infos of this run by video id: fetched once (concurrent askers wait for it).

    Failures are cached too, so the other rows of a missing video cost no request. Entries
    older than `ttl` are fetched again; the oldest finished entries go beyond `size`.
    """

    def __init__(self, fetch: Callable[[str], dict[str, Any]], size: int, ttl: float) -> None:
        self._fetch, self._size, self._ttl = fetch, size, ttl
        self._entries: OrderedDict[str, tuple[float, Future[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, video_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(video_id)
            if entry is not None and entry[1].done() and now - entry[0] > self._ttl:
                entry = None
            owner = entry is None
            if entry is None:
                entry = (now, Future())
                self._entries[video_id] = entry
                self._evict()
            else:
                self._entries.move_to_end(video_id)
        fut = entry[1]
        if owner:
            try:
                fut.set_result(self._fetch(video_id))
            except FetchError as e:
                fut.set_exception(e)
            except BaseException as e:  # waiting askers must not hang
                fut.set_exception(e)
                raise
        return fut.result()

    def forget(self, video_id: str) -> None:
        """Drop a finished entry (its stream URLs may have expired)."""
        with self._lock:
            entry = self._entries.get(video_id)
            if entry is not None and entry[1].done():
                del self._entries[video_id]

    def _evict(self) -> None:
        while len(self._entries) > self._size:
            for key, (_, fut) in self._entries.items():
                if fut.done():
                    del self._entries[key]
                    break
            else:
                return


@dataclass
class Counters:
    """What this invocation did over the network (thread-safe through `add`)."""

    info_fetches: int = 0  # video infos extracted (attempts)
    downloads: int = 0  # clips downloaded and validated
    download_attempts: int = 0  # clip download tries
    retries: int = 0  # tries repeated after a transient failure
    probes: int = 0  # diagnostic requests after ffmpeg failed
    bytes: int = 0  # bytes of the clips downloaded
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards `add`

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class Fetcher:
    """Fetches video infos and clips through yt-dlp's Python API (no shell, no command line)."""

    def __init__(
        self, cfg: DownloadCommandConfig, limiter: RateLimiter, counters: Counters
    ) -> None:
        from internvid.media.ffmpeg import ffmpeg_exe

        self.cfg = cfg
        self.limiter = limiter
        self.counters = counters
        self.ffmpeg = ffmpeg_exe()
        self.rng = random.Random(cfg.seed)
        self.infos = InfoCache(self._fetch_info, max(INFO_CACHE_MIN, 4 * cfg.workers), INFO_TTL)

    def _ydl_opts(self) -> dict[str, Any]:
        return {
            **base_options(
                fmt=format_selector(self.cfg.max_height, self.cfg.format),
                ffmpeg=self.ffmpeg,
                socket_timeout=self.cfg.socket_timeout,
                retries=0,  # our retry loop decides (with the global rate limit and backoff)
                logger=YtdlpLogger(log, warning_level=logging.DEBUG),  # one per clip: quiet
            ),
            "extractor_retries": 0,
            "fragment_retries": 0,
        }

    def retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """Call `fn` (one request) until it succeeds, fails for good, or retries run out."""
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            try:
                return fn()
            except FetchError as e:
                e.attempts = attempt
                if not e.transient or attempt > self.cfg.retries:
                    raise
                delay = backoff_delay(
                    attempt, self.cfg.backoff, self.cfg.max_backoff, e.retry_after, self.rng
                )
                if e.reason == "rate_limited":
                    self.limiter.pause(delay)  # every worker backs off, not only this one
                log.info(
                    "%s: %s (%s); try %d of %d in %.1f s",
                    what,
                    e.reason,
                    e.message[:200],
                    attempt + 1,
                    self.cfg.retries + 1,
                    delay,
                )
                self.counters.add(retries=1)
                time.sleep(delay)

    def info(self, video_id: str) -> dict[str, Any]:
        return self.infos.get(video_id)

    def _fetch_info(self, video_id: str) -> dict[str, Any]:
        url = render_url(self.cfg.url_template, video_id)
        return self.retrying(f"{video_id} info", lambda: self._extract(url))

    def _extract(self, url: str) -> dict[str, Any]:
        import yt_dlp

        set_ffmpeg_location(self.ffmpeg)
        self.counters.add(info_fetches=1)
        try:
            with yt_dlp.YoutubeDL(self._ydl_opts()) as ydl:
                info = ydl.extract_info(url, download=False)
        except yt_dlp.utils.DownloadError as e:
            raise classify_exception(e) from e
        if not info:
            raise FetchError("other", f"yt-dlp found nothing at {url}")
        if info.get("_type") in ("playlist", "multi_video"):
            raise FetchError("other", f"{url} is a playlist, not a video")
        live = info.get("live_status")
        if live == "is_upcoming":
            raise FetchError("unavailable", f"{url} is an upcoming live event or premiere")
        if live == "is_live":
            raise FetchError("other", f"{url} is a live stream: no fixed time ranges to cut")
        return _prune_info(info)

    def clip(self, r: Row, work: Path) -> dict[str, Any]:
        """Download one row's time range into `work/CLIP_ID.mp4`; returns its ok record."""
        video_id = r.row.youtube_id
        self.info(video_id)  # a video that cannot be had fails here, its retries already spent

        def attempt() -> dict[str, Any]:
            try:
                return self._download(self.info(video_id), r, work)
            except FetchError as e:
                if e.transient and e.reason == "other":  # e.g. HTTP 403: a stream URL expired
                    self.infos.forget(video_id)  # the next try fetches the info again
                raise

        return self.retrying(r.clip_id, attempt)

    def _download(self, info: dict[str, Any], r: Row, work: Path) -> dict[str, Any]:
        import yt_dlp
        from yt_dlp.utils import download_range_func

        from internvid.engine.stage import StageError
        from internvid.media.probe import probe

        set_ffmpeg_location(self.ffmpeg)
        self.counters.add(download_attempts=1)
        start, end = r.row.start_ms / 1000, r.row.end_ms / 1000
        base = work / f".{r.clip_id}.dl"  # a dot name: cleared when a killed unit reopens
        for stale in work.glob(f".{r.clip_id}.dl*"):
            stale.unlink(missing_ok=True)
        opts = {
            **self._ydl_opts(),
            "outtmpl": {"default": str(base).replace("%", "%%") + ".%(ext)s"},
            "download_ranges": download_range_func(None, [(start, end)]),
            "force_keyframes_at_cuts": True,  # re-encode: the clip starts and ends where asked
            "external_downloader_args": {
                "ffmpeg_i": ["-rw_timeout", str(RW_TIMEOUT_US)],
                "ffmpeg_o": ["-movflags", "+faststart"],
            },
            # a single non-mp4 format (a .webm link) is cut into its own container: make it mp4
            "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        }
        with yt_dlp.YoutubeDL(opts) as ydl:
            try:
                result = ydl.process_ie_result(ydl.sanitize_info(info), download=True)
            except yt_dlp.utils.DownloadError as e:
                err = classify_exception(e)
                if err.reason == "other" and "ffmpeg exited" in err.message:
                    err = self._diagnose(ydl, info, err)
                raise err from e
        path = self._output(result, base)
        if path is None:
            raise FetchError("other", "yt-dlp reported success but wrote no file")
        size = path.stat().st_size
        if size < MIN_BYTES:
            path.unlink(missing_ok=True)
            raise FetchError("other", f"downloaded only {size} bytes: not a video")
        try:
            facts = probe(path)
        except StageError as e:
            path.unlink(missing_ok=True)
            raise FetchError("other", f"the clip does not decode ({e.reason}): {e.message}") from e
        want = end - start
        if isinstance(info.get("duration"), int | float):
            want = max(0.0, min(end, float(info["duration"])) - start)
            if facts.duration < want - MAX_SHORTFALL:
                path.unlink(missing_ok=True)
                raise FetchError(
                    "network", f"the clip is {facts.duration:.2f} s, expected {want:.2f} s"
                )
        record = {
            "clip_id": r.clip_id,
            "status": "ok",
            "source": info.get("webpage_url")
            or render_url(self.cfg.url_template, r.row.youtube_id),
            "fps": round(facts.fps, 6),
            "width": facts.width,
            "height": facts.height,
            "duration": round(facts.duration, 6),
            "size_bytes": size,
            "format_id": (result or {}).get("format_id") or info.get("format_id"),
            "video": {k: info[k] for k in INFO_KEYS if info.get(k) is not None},
        }
        # the record first, then the file under its final name: a record without its file is
        # downloaded again, a file without its record cannot happen
        write_json_atomic(work / f"{r.clip_id}.json", record)
        os.replace(path, work / f"{r.clip_id}.mp4")
        self.counters.add(downloads=1, bytes=size)
        return record

    @staticmethod
    def _output(result: dict[str, Any] | None, base: Path) -> Path | None:
        written = written_file(result)
        if written is not None:
            return written
        for p in sorted(base.parent.glob(f"{base.name}.*")):
            if p.suffix not in (".part", ".ytdl") and p.is_file():
                return p
        return None

    def _diagnose(self, ydl: Any, info: dict[str, Any], err: FetchError) -> FetchError:
        """ffmpeg ran quiet and said only its exit code: ask the server for one byte to see why."""
        from yt_dlp.networking import Request

        formats = info.get("requested_formats") or [info]
        for fmt in formats:
            url = fmt.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                continue
            headers = {**(fmt.get("http_headers") or info.get("http_headers") or {})}
            headers["Range"] = "bytes=0-0"
            self.limiter.acquire()
            self.counters.add(probes=1)
            try:
                with ydl.urlopen(Request(url, headers=headers)) as resp:
                    resp.read()
            except Exception as e:  # any failure here is the diagnosis
                got = classify_exception(e)
                if got.reason != "other" or got.transient:
                    return FetchError(
                        got.reason,
                        f"{err.message}; the server says: {got.message}",
                        transient=got.transient,
                        retry_after=got.retry_after,
                    )
        return FetchError(
            "network",
            f"{err.message} (the server answers: the stream broke off or did not decode)",
        )
