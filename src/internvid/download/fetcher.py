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
from urllib.parse import urlsplit

from internvid.config import DownloadCommandConfig
from internvid.download.errors import FetchError, classify_exception
from internvid.download.limiter import RateLimiter, backoff_delay
from internvid.download.probe import RemoteProbe, probe_remote
from internvid.download.units import Row, render_url
from internvid.download.whole import SourceCache, cut_local
from internvid.download.ytdlp import (
    MIN_BYTES,
    YtdlpLogger,
    base_options,
    format_selector,
    set_ffmpeg_location,
    written_file,
)
from internvid.io.atomic import write_json_atomic
from internvid.records import format_timecode

__all__ = ["Counters", "Fetcher", "check_span"]

log = logging.getLogger(__name__)

MAX_SHORTFALL = 0.5  # seconds a clip may fall short of its range before it counts as cut off
INFO_TTL = 3 * 3600.0  # seconds a fetched video info is reused (YouTube's stream URLs expire)
INFO_CACHE_MIN = 64  # video infos kept in memory at least (rows of one video are adjacent)
END_SLACK = 1.0  # seconds a row may end past the video's end (its clip then ends at the end)
MIN_LEFT = 0.1  # seconds of video a row must start before the end
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
    probes: int = 0  # GETs that probed a source (its duration, range support, why ffmpeg failed)
    probe_bytes: int = 0  # body bytes those probes read
    whole_files: int = 0  # whole files fetched from servers that ignore ranges
    whole_bytes: int = 0  # bytes of those files
    bytes: int = 0  # bytes of the clips downloaded
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # guards `add`

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class _NoRanges(Exception):
    """The server answered a ranged request with the whole file: cut from a local copy."""


def _direct(info: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The URL and headers of the chosen format when it is one plain http(s) file."""
    formats = info.get("requested_formats") or [info]
    if len(formats) != 1:
        return None
    fmt = formats[0]
    url = fmt.get("url")
    if fmt.get("protocol") not in ("http", "https") or not isinstance(url, str):
        return None
    if not url.startswith(("http://", "https://")):
        return None
    headers = {**(fmt.get("http_headers") or info.get("http_headers") or {})}
    return url, headers


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _duration(info: dict[str, Any]) -> float | None:
    d = info.get("duration")
    return float(d) if isinstance(d, int | float) and not isinstance(d, bool) and d > 0 else None


def check_span(r: Row, duration: float | None) -> None:
    """Refuse a row whose range does not fit the video (`clip_out_of_range`), before any cut.

    A row may end up to END_SLACK past the end (copies of a video differ by a few frames); its
    clip then ends at the video's end.
    """
    if duration is None:
        return
    start, end = r.row.start_ms / 1000, r.row.end_ms / 1000
    if start > duration - MIN_LEFT:
        raise FetchError(
            "clip_out_of_range",
            f"the row starts at {start:.3f} s; the video is {duration:.3f} s long",
        )
    if end > duration + END_SLACK:
        raise FetchError(
            "clip_out_of_range",
            f"the row ends at {end:.3f} s, past the end of the {duration:.3f} s video",
        )


class Fetcher:
    """Fetches video infos and clips through yt-dlp's Python API (no shell, no command line).

    A direct file whose info gives no duration is probed first (a few bounded ranged GETs):
    rows past its end fail without a media byte fetched, and a server that answers the probe
    with the whole file (no `Range:` support) gets its videos downloaded whole once, into
    `scratch`, with each clip cut from that copy.
    """

    def __init__(
        self,
        cfg: DownloadCommandConfig,
        limiter: RateLimiter,
        counters: Counters,
        scratch: Path | None = None,
    ) -> None:
        from internvid.media.ffmpeg import ffmpeg_exe

        self.cfg = cfg
        self.limiter = limiter
        self.counters = counters
        self.ffmpeg = ffmpeg_exe()
        self.rng = random.Random(cfg.seed)
        self.infos = InfoCache(self._fetch_info, max(INFO_CACHE_MIN, 4 * cfg.workers), INFO_TTL)
        self.scratch = scratch  # folder of the whole files (None: a temporary folder)
        self.sources = SourceCache(self._fetch_whole)
        self._no_ranges: set[str] = set()  # hosts seen answering a ranged GET with 200
        self._lock = threading.Lock()

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

    def close(self) -> None:
        """Delete the whole files kept for local cuts."""
        self.sources.clear()

    # -- infos and probes -------------------------------------------------------------------

    def info(self, video_id: str) -> dict[str, Any]:
        return self.infos.get(video_id)

    def _fetch_info(self, video_id: str) -> dict[str, Any]:
        url = render_url(self.cfg.url_template, video_id)
        info = self.retrying(f"{video_id} info", lambda: self._extract(url))
        target = _direct(info)
        if target is not None and _duration(info) is None:
            found = self.retrying(f"{video_id} probe", lambda: self._probe(*target))
            if found.duration is not None:
                info["duration"] = round(found.duration, 6)
            if not found.ranges:
                self._mark_no_ranges(target[0])
        return info

    def _probe(self, url: str, headers: dict[str, str]) -> RemoteProbe:
        import yt_dlp

        with yt_dlp.YoutubeDL(self._ydl_opts()) as ydl:
            try:
                found = probe_remote(ydl.urlopen, url, headers)
            except FetchError as e:
                self.counters.add(probes=1)
                raise e
        self.counters.add(probes=found.requests, probe_bytes=found.bytes_read)
        return found

    def _mark_no_ranges(self, url: str) -> None:
        host = _host(url)
        with self._lock:
            new = host not in self._no_ranges
            self._no_ranges.add(host)
        if new:
            log.info(
                "%s ignores Range requests (it answers 200 with the whole file): its videos "
                "are downloaded whole and their clips cut locally",
                host,
            )

    def _ranged(self, info: dict[str, Any]) -> bool:
        """Whether clips of this video can be fetched by range (its host is not known not to)."""
        target = _direct(info)
        with self._lock:
            return target is None or _host(target[0]) not in self._no_ranges

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

    # -- clips ------------------------------------------------------------------------------

    def clip(self, r: Row, work: Path) -> dict[str, Any]:
        """Download one row's time range into `work/CLIP_ID.mp4`; returns its ok record."""
        if r.row.end_ms <= r.row.start_ms:  # yt-dlp would read "*S-S" as no range: all of it
            raise FetchError(
                "empty_range",
                f"the row starts and ends at {format_timecode(r.row.start_ms)}: no clip to cut",
            )
        video_id = r.row.youtube_id
        info = self.info(video_id)  # a video that cannot be had fails here, its retries spent
        check_span(r, _duration(info))
        if not self._ranged(info):
            return self._from_whole(r, work)

        def attempt() -> dict[str, Any]:
            try:
                return self._download(self.info(video_id), r, work)
            except FetchError as e:
                if e.transient and e.reason == "other":  # e.g. HTTP 403: a stream URL expired
                    self.infos.forget(video_id)  # the next try fetches the info again
                raise

        try:
            return self.retrying(r.clip_id, attempt)
        except _NoRanges:
            return self._from_whole(r, work)

    def _download(self, info: dict[str, Any], r: Row, work: Path) -> dict[str, Any]:
        import yt_dlp
        from yt_dlp.utils import download_range_func

        set_ffmpeg_location(self.ffmpeg)
        self.counters.add(download_attempts=1)
        start, end = r.row.start_ms / 1000, r.row.end_ms / 1000
        base = work / f".{r.clip_id}.dl"  # a dot name: cleared when a killed unit reopens
        _remove_partial(base)
        rw_timeout = max(1.0, self.cfg.socket_timeout)
        opts = {
            **self._ydl_opts(),
            "outtmpl": {"default": str(base).replace("%", "%%") + ".%(ext)s"},
            "download_ranges": download_range_func(None, [(start, end)]),
            "force_keyframes_at_cuts": True,  # re-encode: the clip starts and ends where asked
            "external_downloader_args": {
                "ffmpeg_i": ["-rw_timeout", str(int(rw_timeout * 1e6))],
                "ffmpeg_o": ["-movflags", "+faststart"],
            },
            # a single non-mp4 format (a .webm link) is cut into its own container: make it mp4
            "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        }
        try:
            with yt_dlp.YoutubeDL(opts) as ydl:
                t0 = time.monotonic()
                try:
                    result = ydl.process_ie_result(ydl.sanitize_info(info), download=True)
                except yt_dlp.utils.DownloadError as e:
                    err = classify_exception(e)
                    if err.reason == "other" and "ffmpeg exited" in err.message:
                        took = time.monotonic() - t0
                        err = self._diagnose(ydl, info, err, took >= 0.95 * rw_timeout)
                    raise err from e
            path = self._output(result, base)
            if path is None:
                raise FetchError("other", "yt-dlp reported success but wrote no file")
            fmt = (result or {}).get("format_id") or info.get("format_id")
            return self._finish(path, info, r, work, _duration(info), fmt)
        except BaseException:
            _remove_partial(base)  # a failed try leaves no .part, no half-written clip
            raise

    def _finish(
        self,
        path: Path,
        info: dict[str, Any],
        r: Row,
        work: Path,
        duration: float | None,
        format_id: str | None,
    ) -> dict[str, Any]:
        """Check a cut clip (size, decodes, not short), record it, give it its final name."""
        from internvid.engine.stage import StageError
        from internvid.media.probe import probe

        start, end = r.row.start_ms / 1000, r.row.end_ms / 1000
        size = path.stat().st_size
        if size < MIN_BYTES:
            path.unlink(missing_ok=True)
            raise FetchError("other", f"downloaded only {size} bytes: not a video")
        try:
            facts = probe(path)
        except StageError as e:
            path.unlink(missing_ok=True)
            raise FetchError("other", f"the clip does not decode ({e.reason}): {e.message}") from e
        if duration is not None:
            want = max(0.0, min(end, duration) - start)
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
            "format_id": format_id,
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

    def _diagnose(
        self, ydl: Any, info: dict[str, Any], err: FetchError, timed_out: bool
    ) -> FetchError:
        """ffmpeg ran quiet and said only its exit code: ask the server for one byte to see why.

        A failing answer is the reason; a 200 (the whole file for a ranged GET) means the
        server ignores ranges (raises _NoRanges); a good 206 leaves ffmpeg's own trouble: a
        `timeout` when it ran for its whole read timeout, else `cut_failed`.
        """
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
                    status = getattr(resp, "status", 206)
                    resp.read(1)  # a 200 would send the whole file: one byte, then hang up
            except Exception as e:  # any failure here is the diagnosis
                got = classify_exception(e)
                if got.reason != "other" or got.transient:
                    return FetchError(
                        got.reason,
                        f"{err.message}; the server says: {got.message}",
                        transient=got.transient,
                        retry_after=got.retry_after,
                    )
                continue
            if status == 200 and len(formats) == 1:
                self._mark_no_ranges(url)
                raise _NoRanges(url)
        if timed_out:
            return FetchError(
                "timeout",
                f"{err.message} after its read timeout: the server stopped sending the stream",
            )
        return FetchError(
            "cut_failed",
            f"{err.message} (the server answers ranged requests: the stream broke off or did "
            "not decode)",
            transient=True,
        )

    # -- servers without ranges -------------------------------------------------------------

    def _from_whole(self, r: Row, work: Path) -> dict[str, Any]:
        """Cut a row's clip from the video's whole file (fetched once for all its rows)."""
        video_id = r.row.youtube_id
        source, duration = self.sources.acquire(video_id)
        try:
            check_span(r, duration)
            self.counters.add(download_attempts=1)
            start, end = r.row.start_ms / 1000, r.row.end_ms / 1000
            tmp = work / f".{r.clip_id}.dl.mp4"
            try:
                cut_local(self.ffmpeg, source, start, end, tmp)
                info = self.info(video_id)
                return self._finish(tmp, info, r, work, duration, info.get("format_id"))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        finally:
            self.sources.release(video_id)

    def _fetch_whole(self, video_id: str) -> tuple[Path, float]:
        """Download a video's whole file into the scratch folder with yt-dlp; its duration."""
        from internvid.engine.stage import StageError
        from internvid.media.probe import probe

        info = self.info(video_id)
        if self.scratch is None:
            import tempfile

            self.scratch = Path(tempfile.mkdtemp(prefix="internvid-whole-"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        base = self.scratch / f".{video_id}.src"
        path = self.retrying(f"{video_id} whole file", lambda: self._whole(info, base))
        try:
            facts = probe(path)
        except StageError as e:
            path.unlink(missing_ok=True)
            raise FetchError("other", f"the video does not decode ({e.reason}): {e.message}") from e
        self.counters.add(whole_files=1, whole_bytes=path.stat().st_size)
        return path, _duration(info) or facts.duration

    def _whole(self, info: dict[str, Any], base: Path) -> Path:
        import yt_dlp

        set_ffmpeg_location(self.ffmpeg)
        _remove_partial(base)
        opts = {
            **self._ydl_opts(),
            "outtmpl": {"default": str(base).replace("%", "%%") + ".%(ext)s"},
            "continuedl": False,  # never resume a .part of another run
        }
        try:
            with yt_dlp.YoutubeDL(opts) as ydl:
                try:
                    result = ydl.process_ie_result(ydl.sanitize_info(info), download=True)
                except yt_dlp.utils.DownloadError as e:
                    raise classify_exception(e) from e
            path = self._output(result, base)
            if path is None:
                raise FetchError("other", "yt-dlp reported success but wrote no file")
            if path.stat().st_size < MIN_BYTES:
                raise FetchError("other", f"downloaded only {path.stat().st_size} bytes")
            return path
        except BaseException:
            _remove_partial(base)
            raise


def _remove_partial(base: Path) -> None:
    """Delete `base.*`: a download's .part, .ytdl, and unchecked output files."""
    for stale in base.parent.glob(f"{base.name}*"):
        stale.unlink(missing_ok=True)
