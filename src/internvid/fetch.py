"""`internvid download`: fetch the clips behind InternVid release rows into WebDataset shards."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import heapq
import json
import logging
import os
import random
import shutil
import tarfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, cast

import typer

from internvid.fetch_errors import FetchError, classify_exception
from internvid.io.atomic import (
    remove_temp_files,
    temp_name,
    write_json_atomic,
    write_jsonl_atomic,
)
from internvid.io.release import MalformedRow, ReleaseRow, clip_from_row, iter_release_rows
from internvid.log import CountingProgress
from internvid.records import is_safe_id, make_clip_id, parse_clip_id
from internvid.timecode import format_timecode

__all__ = [
    "DEFAULT_URL_TEMPLATE",
    "DownloadSummary",
    "FetchOptions",
    "FetchSetupError",
    "RateLimiter",
    "backoff_delay",
    "check_video_id",
    "download_release",
    "register",
    "render_url",
]

log = logging.getLogger(__name__)

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={YoutubeID}"  # where a row's video lives
ID_FIELD = "{YoutubeID}"  # the placeholder of --url-template
MIN_BYTES = 1024  # a "completed" clip smaller than this is an error page, not a video
MAX_SHORTFALL = 0.5  # seconds a clip may fall short of its range before it counts as cut off
INFO_TTL = 3 * 3600.0  # seconds a fetched video info is reused (YouTube's stream URLs expire)
INFO_CACHE_MIN = 64  # video infos kept in memory at least (rows of one video are adjacent)
MAX_REASON_MESSAGE = 500  # characters of an error message kept in failures.jsonl
RW_TIMEOUT_US = 60_000_000  # ffmpeg's read/write timeout on a stalled connection (microseconds)
WORK = "_download"  # folder of the unit markers and the clips of unfinished units
LOCK_FILE = ".download.lock"  # one `internvid download` at a time per output folder
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


class FetchSetupError(RuntimeError):
    """The download cannot start (bad options, a folder of another run, a run already going)."""


@dataclass
class FetchOptions:
    """Settings of `internvid download` (the CLI options, one for one)."""

    url_template: str = DEFAULT_URL_TEMPLATE  # video URL of a row; {YoutubeID} is replaced
    workers: int = 4  # clips downloaded at the same time (threads; ffmpeg does the work)
    rate: float = 2.0  # yt-dlp requests per second across all workers (0: no limit)
    burst: int = 1  # requests that may go at once after an idle spell
    retries: int = 3  # extra tries of a transient failure (429, 5xx, network) in one run
    backoff: float = 2.0  # seconds before the first retry; doubles each time, with jitter
    max_backoff: float = 120.0  # longest wait between two tries
    max_height: int = 720  # format cap in pixels (0: no cap)
    format: str = ""  # a yt-dlp format selector instead of the max_height one
    rows_per_shard: int = 500  # valid metadata rows per unit of work and WebDataset shard
    limit: int | None = None  # only the first N valid rows
    socket_timeout: float = 30.0  # seconds yt-dlp waits on a silent connection
    allow_leading_dash: bool = False  # accept YoutubeIDs that start with "-" (real YouTube ids can)
    seed: int | None = None  # seed of the backoff jitter (tests)

    def validate(self) -> None:
        if self.url_template.count(ID_FIELD) != 1:
            raise FetchSetupError(f"--url-template must hold {ID_FIELD} exactly once")
        if not self.url_template.startswith(("http://", "https://")):
            raise FetchSetupError("--url-template must be an http(s) URL")
        if self.workers < 1:
            raise FetchSetupError("--workers must be at least 1")
        if self.rate < 0 or self.burst < 1:
            raise FetchSetupError("--rate must be >= 0 and --burst >= 1")
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise FetchSetupError("--retries, --backoff and --max-backoff must be >= 0")
        if self.rows_per_shard < 1:
            raise FetchSetupError("--rows-per-shard must be at least 1")
        if self.max_height < 0:
            raise FetchSetupError("--max-height must be >= 0")

    def format_selector(self) -> str:
        if self.format:
            return self.format
        if not self.max_height:
            return "bv*+ba/b"
        h = self.max_height
        # best video up to h (unknown heights pass) + best audio; else the best single file up to
        # h; else the smallest there is (nothing at or under the cap)
        return f"bv*[height<=?{h}]+ba/b[height<=?{h}]/wv*+ba/w"


# ---------------------------------------------------------------------------------------------
# Safety, URLs, rate limit, backoff


def check_video_id(video_id: object, allow_leading_dash: bool = False) -> str | None:
    """Why `video_id` may not be used (None when it may): it names files and goes into URLs.

    Only A-Z a-z 0-9 _ - (1-128 characters) pass, so no "..", "/", absolute path, NUL or newline
    ever reaches a path. A leading "-" is refused too unless allowed: it would read as an option
    if the id were ever handed to a command line (this module never does; real YouTube ids can
    start with "-").
    """
    if not isinstance(video_id, str):
        return f"YoutubeID must be a string, got {type(video_id).__name__}"
    if not is_safe_id(video_id) or video_id.endswith("\n"):
        return f"unsafe YoutubeID {video_id!r}: only A-Z a-z 0-9 _ - (1-128 chars) allowed"
    if video_id.startswith("-") and not allow_leading_dash:
        return f"YoutubeID {video_id!r} starts with '-' (pass --allow-leading-dash to accept it)"
    return None


def render_url(template: str, video_id: str) -> str:
    """The video URL of a (checked) id: plain replacement, no str.format on user text."""
    if check_video_id(video_id, allow_leading_dash=True) is not None:
        raise ValueError(f"unsafe video id {video_id!r}")
    return template.replace(ID_FIELD, video_id)


class RateLimiter:
    """A token bucket shared by all workers (GCRA form): `rate` requests/s, `burst` at once.

    `acquire()` reserves the next slot under a lock and sleeps outside it, so waiting workers
    queue fairly. `pause(s)` holds every request back for `s` seconds (after a 429).
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate  # requests per second; 0 or less: unlimited
        self.interval = 1.0 / rate if rate > 0 else 0.0  # seconds between two requests
        self.tolerance = (max(1, burst) - 1) * self.interval  # how far ahead a burst may run
        self._clock, self._sleep = clock, sleep
        self._tat = clock()  # theoretical arrival time of the next request
        self._lock = threading.Lock()
        self.requests = 0  # requests let through so far
        self.waited = 0.0  # seconds spent waiting, all workers together

    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        with self._lock:
            self.requests += 1
            now = self._clock()
            self._tat = max(self._tat, now)
            delay = max(0.0, self._tat - self.tolerance - now)
            self._tat += self.interval
            self.waited += delay
        if delay > 0:
            self._sleep(delay)
        return delay

    def pause(self, seconds: float) -> None:
        """Let no request through for `seconds` from now (all workers)."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + self.tolerance)


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed try number `attempt` (1, 2...): exponential, jittered.

    Equal jitter: half of min(cap, base * 2**(attempt-1)) plus a random part up to the other
    half, so workers that failed together do not retry together. A server's Retry-After wins
    when longer (still capped).
    """
    rng = rng or random
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    delay = delay / 2 + rng.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


# ---------------------------------------------------------------------------------------------
# Rows and units


@dataclass(frozen=True)
class _Row:
    """A valid metadata row and where it came from."""

    line: int  # line number in the metadata file (from 1)
    row: ReleaseRow
    clip_id: str  # VIDEOID_HHMMSSmmm_HHMMSSmmm


@dataclass
class _Unit:
    """`rows_per_shard` consecutive valid rows: downloaded together, one shard, one marker."""

    index: int
    rows: list[_Row]

    @property
    def digest(self) -> str:
        h = hashlib.sha256("\n".join(r.clip_id for r in self.rows).encode())
        return h.hexdigest()[:16]


class _LineCounter:
    """Iterates the lines of a file and remembers the number of the last one handed out."""

    def __init__(self, f: IO[bytes], name: str) -> None:
        self.f, self.name, self.line = f, name, 0

    def __iter__(self) -> Iterator[bytes]:
        for raw in self.f:
            self.line += 1
            yield raw


def _open_metadata(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb"))


def _input_failure(line: int, reason: str, message: str, raw: dict[str, Any] | None) -> dict:
    raw = raw or {}
    vid = raw.get("YoutubeID")
    return {
        "item": f"line-{line}",
        "stage": "input",
        "reason": reason,
        "message": message[:MAX_REASON_MESSAGE],
        "source": "",
        "transient": False,
        "attempts": 0,
        "line": line,
        "YoutubeID": vid if isinstance(vid, str) else None,
        "Start_timestamp": raw.get("Start_timestamp"),
        "End_timestamp": raw.get("End_timestamp"),
    }


def _iter_units(
    meta: Path, opts: FetchOptions, input_failures: list[dict[str, Any]]
) -> Iterator[_Unit]:
    """Units of valid rows, in file order; rejected rows go to `input_failures` (no request)."""

    def on_error(line: int, error: MalformedRow, raw: str) -> None:
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        input_failures.append(
            _input_failure(
                line, error.reason, error.message, obj if isinstance(obj, dict) else None
            )
        )

    n_valid, index = 0, 0
    buf: list[_Row] = []
    seen: set[str] = set()
    with _open_metadata(meta) as f:
        lines = _LineCounter(f, str(meta))
        for row in iter_release_rows(cast(IO[bytes], lines), on_error=on_error):
            if opts.limit is not None and n_valid >= opts.limit:
                break
            line = lines.line
            why = check_video_id(row.youtube_id, opts.allow_leading_dash)
            if why is not None:
                input_failures.append(_input_failure(line, "unsafe_id", why, row.to_json()))
                continue
            clip_id = make_clip_id(row.youtube_id, row.start_ms, row.end_ms)
            if clip_id in seen:
                message = f"{clip_id} is already in this shard"
                input_failures.append(_input_failure(line, "duplicate", message, row.to_json()))
                continue
            n_valid += 1
            seen.add(clip_id)
            buf.append(_Row(line, row, clip_id))
            if len(buf) == opts.rows_per_shard:
                yield _Unit(index, buf)
                index, buf, seen = index + 1, [], set()
    if buf:
        yield _Unit(index, buf)


# ---------------------------------------------------------------------------------------------
# yt-dlp


def _prune_info(info: dict[str, Any]) -> dict[str, Any]:
    """Keep what a clip download needs: the chosen formats, not every format and thumbnail."""
    info = {k: v for k, v in info.items() if k not in _HEAVY_INFO_KEYS}
    chosen = info.get("requested_formats")
    if chosen:
        info["formats"] = list(chosen)
    elif info.get("formats") and info.get("format_id"):
        info["formats"] = [f for f in info["formats"] if f.get("format_id") == info["format_id"]]
    return info


class _InfoCache:
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
class _Counters:
    """What this invocation did over the network (thread-safe through `add`)."""

    info_fetches: int = 0  # video infos extracted (attempts)
    downloads: int = 0  # clips downloaded and validated
    download_attempts: int = 0  # clip download tries
    retries: int = 0  # tries repeated after a transient failure
    probes: int = 0  # diagnostic requests after ffmpeg failed
    bytes: int = 0  # bytes of the clips downloaded
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class _Fetcher:
    """Fetches video infos and clips through yt-dlp's Python API (no shell, no command line)."""

    def __init__(self, opts: FetchOptions, limiter: RateLimiter, counters: _Counters) -> None:
        from internvid.media.ffmpeg import ffmpeg_exe

        self.opts = opts
        self.limiter = limiter
        self.counters = counters
        self.ffmpeg = ffmpeg_exe()
        self.rng = random.Random(opts.seed)
        self.infos = _InfoCache(self._fetch_info, max(INFO_CACHE_MIN, 4 * opts.workers), INFO_TTL)

    def _ydl_opts(self) -> dict[str, Any]:
        from internvid.stages.download import YtdlpLogger

        return {
            "format": self.opts.format_selector(),
            "merge_output_format": "mp4",
            "ffmpeg_location": self.ffmpeg,
            "noplaylist": True,
            "quiet": True,  # also makes yt-dlp run ffmpeg with -loglevel quiet
            "no_warnings": True,
            "noprogress": True,
            "logger": YtdlpLogger(log, warning_level=logging.DEBUG),  # one per clip: quiet
            "retries": 0,  # our retry loop decides (with the global rate limit and backoff)
            "extractor_retries": 0,
            "fragment_retries": 0,
            "socket_timeout": self.opts.socket_timeout,
            "overwrites": True,
        }

    def _ffmpeg_ready(self) -> None:
        # yt-dlp checks for ffmpeg (before a partial download) through a context variable that
        # its command line sets from --ffmpeg-location; threads start with an empty context
        from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

        location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
        if location is not None:
            location.set(self.ffmpeg)

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
                if not e.transient or attempt > self.opts.retries:
                    raise
                delay = backoff_delay(
                    attempt, self.opts.backoff, self.opts.max_backoff, e.retry_after, self.rng
                )
                if e.reason == "rate_limited":
                    self.limiter.pause(delay)  # every worker backs off, not only this one
                log.info(
                    "%s: %s (%s); try %d of %d in %.1f s",
                    what,
                    e.reason,
                    e.message[:200],
                    attempt + 1,
                    self.opts.retries + 1,
                    delay,
                )
                self.counters.add(retries=1)
                time.sleep(delay)

    def info(self, video_id: str) -> dict[str, Any]:
        return self.infos.get(video_id)

    def _fetch_info(self, video_id: str) -> dict[str, Any]:
        url = render_url(self.opts.url_template, video_id)
        return self.retrying(f"{video_id} info", lambda: self._extract(url))

    def _extract(self, url: str) -> dict[str, Any]:
        import yt_dlp

        self._ffmpeg_ready()
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

    def clip(self, r: _Row, work: Path) -> dict[str, Any]:
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

    def _download(self, info: dict[str, Any], r: _Row, work: Path) -> dict[str, Any]:
        import yt_dlp
        from yt_dlp.utils import download_range_func

        from internvid.engine.stage import StageError
        from internvid.media.probe import probe

        self._ffmpeg_ready()
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
            or render_url(self.opts.url_template, r.row.youtube_id),
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
        for d in (result or {}).get("requested_downloads") or []:
            p = d.get("filepath")
            if p and Path(p).is_file():
                return Path(p)
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


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class DownloadSummary:
    """What `internvid download` did; also written as stats.json."""

    out_dir: str  # output folder
    metadata: str  # the metadata file
    rows: int  # valid rows taken (after --limit)
    input_failures: int  # rows rejected before any request (malformed, unsafe_id, duplicate)
    clips: int  # clips in the shards of these rows
    downloaded: int  # clips this invocation downloaded
    reused: int  # clips an earlier (interrupted) invocation had downloaded
    failures: int  # rows in failures.jsonl
    failures_by_reason: dict[str, int]  # reason -> rows
    transient_failures: int  # failures a rerun retries
    shards: int  # shard tars holding these clips
    units: int  # units of rows (one shard each, when any clip succeeded)
    units_done_before: int  # units an earlier invocation had finished for good
    requests: int  # yt-dlp requests (info fetches, clip downloads, probes) this invocation
    info_fetches: int  # video info fetches (tries) this invocation
    retries: int  # tries repeated after transient failures
    bytes_downloaded: int  # bytes of the clips downloaded this invocation
    clip_seconds: float  # total length of the clips in the shards
    wall_seconds: float  # this invocation's wall time
    clips_per_second: float  # downloaded / wall_seconds
    megabytes_per_second: float  # bytes_downloaded / wall_seconds / 1e6

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _UnitState:
    """A unit being downloaded: the records of its rows, and the rows still to do."""

    unit: _Unit
    work: Path  # _download/NNNNN: clips and records until the unit commits
    records: dict[str, dict[str, Any]]  # clip id -> record (ok or failed)
    todo: list[_Row]
    remaining: int = 0  # downloads still running
    reused: int = 0  # ok clips from an earlier invocation


class _Download:
    """One invocation over a metadata file: units in order, clips in parallel, resumable."""

    def __init__(self, meta: Path, out: Path, opts: FetchOptions, progress: bool) -> None:
        self.meta, self.out, self.opts, self.progress = meta, out, opts, progress
        self.shards_dir = out / "shards"
        self.work_dir = out / WORK
        self.counters = _Counters()
        self.limiter = RateLimiter(opts.rate, opts.burst)
        self.fetcher = _Fetcher(opts, self.limiter, self.counters)
        self.input_failures: list[dict[str, Any]] = []
        self.units: list[int] = []  # indices of this invocation's units, in order
        self.done_before = 0  # units finished for good by an earlier invocation
        self.reused = 0
        self.n_rows = 0
        self.bar: CountingProgress | None = None
        self._inputs_counted = 0  # input failures the progress bar has counted

    # -- units ------------------------------------------------------------------------------

    def _marker(self, index: int) -> Path:
        return self.work_dir / f"{index:05d}.done.json"

    def _open(self, unit: _Unit) -> _UnitState | None:
        """Resume a unit: None when an earlier invocation finished it for good."""
        marker_path = self._marker(unit.index)
        marker = json.loads(marker_path.read_text()) if marker_path.is_file() else None
        work = self.work_dir / f"{unit.index:05d}"
        records: dict[str, dict[str, Any]] = {}
        wanted = {r.clip_id for r in unit.rows}
        if marker is not None:
            records = {r["clip_id"]: r for r in marker["records"] if r["clip_id"] in wanted}
            same = marker.get("digest") == unit.digest
            if same and not any(_retry(r) for r in records.values()):
                shutil.rmtree(work, ignore_errors=True)  # left by a kill after the marker
                self.done_before += 1
                self.reused += sum(1 for r in records.values() if r["status"] == "ok")
                self._advance(list(records.values()))
                return None
            if not same:
                log.info("shard %d: its rows changed since the last run; updating it", unit.index)
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob(".*"):  # partial downloads and temp files of a killed run
            if stale.is_file():
                stale.unlink(missing_ok=True)
        for p in sorted(work.glob("*.json")):  # records of this unit's unfinished invocation
            with contextlib.suppress(ValueError, OSError):
                rec = json.loads(p.read_text())
                if rec.get("clip_id") in wanted:
                    records[rec["clip_id"]] = rec
        restore = [
            cid
            for cid, rec in records.items()
            if rec["status"] == "ok" and not (work / f"{cid}.mp4").is_file()
        ]
        if restore:
            self._restore(unit.index, set(restore), work)
        state = _UnitState(unit, work, {}, [])
        for r in unit.rows:
            rec = records.get(r.clip_id)
            if rec is not None and rec["status"] == "ok":
                if (work / f"{r.clip_id}.mp4").is_file():
                    state.records[r.clip_id] = rec
                    state.reused += 1
                    continue
            elif rec is not None and not _retry(rec):
                state.records[r.clip_id] = rec
                continue
            state.todo.append(r)
        self.reused += state.reused
        return state

    def _restore(self, index: int, clip_ids: set[str], work: Path) -> None:
        """Take clips a committed unit already holds back out of its tar (no download)."""
        tar_path = self.shards_dir / f"{index:05d}.tar"
        if not tar_path.is_file():
            return
        with tarfile.open(tar_path) as tar:
            for member in tar:
                name = member.name
                if not name.endswith(".mp4") or name[:-4] not in clip_ids or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                dst = work / name  # name is CLIP_ID.mp4 with a clip id from our own rows
                tmp = temp_name(dst)
                with src, open(tmp, "wb") as f:
                    shutil.copyfileobj(src, f)
                os.replace(tmp, dst)

    def _commit(self, st: _UnitState) -> None:
        """Write the unit's shard, then its marker (the commit point), then drop its folder."""
        from internvid.io.shards import write_shard

        index = st.unit.index
        clips, files, records = [], {}, []
        for r in st.unit.rows:
            rec = st.records[r.clip_id]
            records.append({**rec, "line": r.line})
            if rec["status"] != "ok":
                continue
            clip = clip_from_row(r.row, source=rec.get("source", ""))
            clip.status = "cut"
            clip.shard = index
            clip.fps, clip.width, clip.height = rec.get("fps"), rec.get("width"), rec.get("height")
            clip.meta.update(
                {
                    "clip_duration": rec.get("duration"),
                    "size_bytes": rec.get("size_bytes"),
                    "format_id": rec.get("format_id"),
                    "line": r.line,
                    "video": rec.get("video") or {},
                }
            )
            clips.append(clip)
            files[clip.clip_id] = str(st.work / f"{clip.clip_id}.mp4")
        if clips:
            write_shard(self.shards_dir, index, clips, files)
        else:
            for ext in (".tar", ".parquet"):
                (self.shards_dir / f"{index:05d}{ext}").unlink(missing_ok=True)
        marker = {
            "index": index,
            "digest": st.unit.digest,
            "rows": len(st.unit.rows),
            "first_line": st.unit.rows[0].line,
            "last_line": st.unit.rows[-1].line,
            "clips": len(clips),
            "records": records,
        }
        write_json_atomic(self._marker(index), marker)
        shutil.rmtree(st.work, ignore_errors=True)

    # -- clips ------------------------------------------------------------------------------

    def _task(self, st: _UnitState, r: _Row) -> dict[str, Any]:
        url = render_url(self.opts.url_template, r.row.youtube_id)
        try:
            return self.fetcher.clip(r, st.work)
        except FetchError as e:
            rec = _failure_record(r, url, e.reason, e.message, e.transient, e.attempts)
        except Exception as e:  # a library surprise: recorded for this row, the run goes on
            log.warning("%s: unexpected error", r.clip_id, exc_info=True)
            rec = _failure_record(r, url, "other", f"{type(e).__name__}: {e}", False, 1)
        log.info("%s: %s (%s)", r.clip_id, rec["reason"], rec["message"][:200])
        write_json_atomic(st.work / f"{r.clip_id}.json", rec)
        return rec

    def run(self) -> DownloadSummary:
        t0 = time.perf_counter()
        total = _count_rows(self.meta, self.opts.limit) if self.progress else None
        in_flight: dict[Future[dict[str, Any]], tuple[_UnitState, _Row]] = {}
        window = 2 * self.opts.workers  # downloads queued ahead: keeps every worker busy

        def settle(block: bool) -> None:
            done, _ = wait(
                list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED
            )
            for fut in done:
                st, r = in_flight.pop(fut)
                st.records[r.clip_id] = fut.result()
                st.remaining -= 1
                self._advance([st.records[r.clip_id]])
                if st.remaining == 0:
                    self._commit(st)

        with (
            CountingProgress("rows", total, enabled=self.progress, eta=True) as self.bar,
            ThreadPoolExecutor(self.opts.workers, thread_name_prefix="fetch") as pool,
        ):
            try:
                for unit in _iter_units(self.meta, self.opts, self.input_failures):
                    self._advance_inputs()
                    self.units.append(unit.index)
                    self.n_rows += len(unit.rows)
                    st = self._open(unit)
                    if st is None:
                        continue
                    self._advance(list(st.records.values()))  # resolved by an earlier run
                    if not st.todo:
                        self._commit(st)
                        continue
                    st.remaining = len(st.todo)
                    for r in st.todo:
                        while len(in_flight) >= window:
                            settle(block=True)
                        in_flight[pool.submit(self._task, st, r)] = (st, r)
                    settle(block=False)
                while in_flight:
                    settle(block=True)
                self._advance_inputs()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return self._finalize(time.perf_counter() - t0)

    def _advance(self, records: list[dict[str, Any]]) -> None:
        if self.bar is not None:
            ok = sum(1 for rec in records if rec.get("status") == "ok")
            self.bar.advance(len(records), ok, len(records) - ok)

    def _advance_inputs(self) -> None:
        """Count the rows rejected on reading since the last call as done (and failed)."""
        new = len(self.input_failures) - self._inputs_counted
        if new and self.bar is not None:
            self.bar.advance(new, 0, new)
        self._inputs_counted += new

    # -- outputs ----------------------------------------------------------------------------

    def _finalize(self, wall: float) -> DownloadSummary:
        """clips.parquet, internvid.jsonl, failures.jsonl and stats.json of these units."""
        import pyarrow.parquet as pq

        from internvid.io.release import ReleaseWriter, row_from_clip
        from internvid.io.tables import CLIP_SCHEMA, row_to_clip

        unit_failures: list[dict[str, Any]] = []
        shards = 0
        clips = 0
        clip_seconds = 0.0
        parquet_path = self.out / "clips.parquet"
        tmp = temp_name(parquet_path)
        try:
            with (
                pq.ParquetWriter(tmp, CLIP_SCHEMA) as pw,
                ReleaseWriter(self.out / "internvid.jsonl") as rw,
            ):
                for index in self.units:
                    marker = json.loads(self._marker(index).read_text())
                    unit_failures.extend(
                        rec for rec in marker["records"] if rec.get("status") != "ok"
                    )
                    if not marker.get("clips"):
                        continue
                    table = pq.read_table(
                        self.shards_dir / f"{index:05d}.parquet", schema=CLIP_SCHEMA
                    )
                    shards += 1
                    clips += table.num_rows
                    pw.write_table(table)
                    for row in table.to_pylist():
                        clip = row_to_clip(row)
                        clip_seconds += clip.duration
                        rw.write(row_from_clip(clip))
            os.replace(tmp, parquet_path)
        finally:
            tmp.unlink(missing_ok=True)

        failures = list(
            heapq.merge(
                sorted(self.input_failures, key=_by_line),
                (_failure_row(rec) for rec in unit_failures),
                key=_by_line,
            )
        )
        write_jsonl_atomic(self.out / "failures.jsonl", failures)
        c = self.counters
        summary = DownloadSummary(
            out_dir=str(self.out),
            metadata=str(self.meta),
            rows=self.n_rows,
            input_failures=len(self.input_failures),
            clips=clips,
            downloaded=c.downloads,
            reused=self.reused,
            failures=len(failures),
            failures_by_reason=dict(sorted(Counter(f["reason"] for f in failures).items())),
            transient_failures=sum(1 for f in failures if f["transient"]),
            shards=shards,
            units=len(self.units),
            units_done_before=self.done_before,
            requests=self.limiter.requests,
            info_fetches=c.info_fetches,
            retries=c.retries,
            bytes_downloaded=c.bytes,
            clip_seconds=round(clip_seconds, 3),
            wall_seconds=round(wall, 3),
            clips_per_second=round(c.downloads / max(wall, 1e-9), 3),
            megabytes_per_second=round(c.bytes / max(wall, 1e-9) / 1e6, 3),
        )
        write_json_atomic(self.out / "stats.json", summary.to_json())
        return summary


def _retry(rec: dict[str, Any]) -> bool:
    """A record a rerun downloads again: a transient failure."""
    return rec.get("status") != "ok" and bool(rec.get("transient"))


def _failure_record(
    r: _Row, url: str, reason: str, message: str, transient: bool, attempts: int
) -> dict[str, Any]:
    return {
        "clip_id": r.clip_id,
        "status": "failed",
        "source": url,
        "reason": reason,
        "message": " ".join(message.split())[:MAX_REASON_MESSAGE],
        "transient": transient,
        "attempts": attempts,
    }


def _failure_row(rec: dict[str, Any]) -> dict[str, Any]:
    """A unit's failure record as a failures.jsonl row (the same keys as input failures)."""
    video_id, start_ms, end_ms = parse_clip_id(rec["clip_id"])
    return {
        "item": rec["clip_id"],
        "stage": "download",
        "reason": rec["reason"],
        "message": rec["message"],
        "source": rec.get("source", ""),
        "transient": rec["transient"],
        "attempts": rec.get("attempts", 1),
        "line": rec.get("line"),
        "YoutubeID": video_id,
        "Start_timestamp": format_timecode(start_ms),
        "End_timestamp": format_timecode(end_ms),
    }


def _by_line(f: dict[str, Any]) -> int:
    return f.get("line") or 0


def _count_rows(meta: Path, limit: int | None) -> int:
    """Non-blank lines of the metadata (an upper bound of the rows: the progress bar's total)."""
    n = 0
    with _open_metadata(meta) as f:
        for raw in f:
            if raw.strip():
                n += 1
    return n if limit is None else min(n, limit)


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder (released by the OS even on SIGKILL)."""
    import fcntl

    f = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchSetupError(f"another `internvid download` is writing to {out}") from None
        yield
    finally:
        f.close()


def _check_settings(out: Path, opts: FetchOptions) -> None:
    """Refuse to mix unit sizes in one folder (shard N would mean other rows); remember ours."""
    path = out / WORK / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("rows_per_shard") != opts.rows_per_shard:
            raise FetchSetupError(
                f"{out} was started with --rows-per-shard {old.get('rows_per_shard')}: use the "
                "same value to resume, or another --out"
            )
    write_json_atomic(
        path,
        {
            "rows_per_shard": opts.rows_per_shard,
            "url_template": opts.url_template,
            "format": opts.format_selector(),
        },
    )


def download_release(
    meta: str | Path, out: str | Path, opts: FetchOptions | None = None, progress: bool = False
) -> DownloadSummary:
    """Download the clips of the release rows in `meta` into `out` (see `internvid download`).

    Resumable: run it again on the same folder after an interruption (even SIGKILL) and it
    downloads only what is missing, plus the rows whose failure was transient.
    """
    opts = opts or FetchOptions()
    opts.validate()
    meta, out = Path(meta), Path(out)
    if not meta.is_file():
        raise FetchSetupError(f"no such metadata file: {meta}")
    out.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out):
        (out / WORK).mkdir(exist_ok=True)
        _check_settings(out, opts)
        stale = remove_temp_files(out)  # .NAME.tmp-PID files of a killed run (never final names)
        if stale:
            log.info("removed %d partial file(s) left by an interrupted run", stale)
        return _Download(meta, out, opts, progress).run()


def print_download_summary(s: DownloadSummary) -> None:
    from internvid.log import console

    reasons = ", ".join(f"{k}: {v}" for k, v in s.failures_by_reason.items()) or "none"
    console.print(
        f"[bold]{s.clips}[/] clips ({s.clip_seconds:.1f} s) in {s.shards} shard(s) from "
        f"{s.rows} rows -> {s.out_dir}/shards"
    )
    console.print(
        f"this run: {s.downloaded} downloaded, {s.reused} kept from earlier runs, "
        f"{s.units_done_before}/{s.units} shards already finished; {s.requests} requests "
        f"({s.info_fetches} info, {s.retries} retries)"
    )
    console.print(
        f"failures: {s.failures} ({reasons}); {s.transient_failures} transient "
        "(a rerun retries them)"
    )
    console.print(
        f"wall {s.wall_seconds:.1f} s: {s.clips_per_second:.2f} clips/s, "
        f"{s.megabytes_per_second:.2f} MB/s"
    )


# ---------------------------------------------------------------------------------------------
# CLI


def register(app: typer.Typer) -> None:
    """Add `internvid download` to the command line."""

    @app.command("download")
    def download(
        metadata: Annotated[
            Path, typer.Argument(help="InternVid release metadata: .jsonl or .jsonl.gz.")
        ],
        out: Annotated[
            Path,
            typer.Option("--out", "-o", help="Output folder (an interrupted download resumes)."),
        ],
        url_template: Annotated[
            str, typer.Option(help="Video URL of a row; {YoutubeID} is replaced by its id.")
        ] = DEFAULT_URL_TEMPLATE,
        workers: Annotated[
            int, typer.Option("--workers", "-w", help="Clips downloaded at the same time.")
        ] = 4,
        rate: Annotated[
            float,
            typer.Option(help="Requests per second across all workers (0: no limit)."),
        ] = 2.0,
        burst: Annotated[int, typer.Option(help="Requests that may go at once.")] = 1,
        retries: Annotated[
            int, typer.Option(help="Extra tries of a transient failure (429, 5xx, network).")
        ] = 3,
        backoff: Annotated[
            float, typer.Option(help="Seconds before the first retry (doubles, jittered).")
        ] = 2.0,
        max_backoff: Annotated[float, typer.Option(help="Longest wait between tries.")] = 120.0,
        max_height: Annotated[
            int, typer.Option(help="Pick formats up to this height (0: no cap).")
        ] = 720,
        fmt: Annotated[
            str, typer.Option("--format", help="A yt-dlp format selector (overrides the cap).")
        ] = "",
        rows_per_shard: Annotated[
            int, typer.Option(help="Metadata rows per unit of work and WebDataset shard.")
        ] = 500,
        limit: Annotated[int | None, typer.Option(help="Only the first N valid rows.")] = None,
        socket_timeout: Annotated[
            float, typer.Option(help="Seconds to wait on a silent connection.")
        ] = 30.0,
        allow_leading_dash: Annotated[
            bool,
            typer.Option(help="Accept YoutubeIDs starting with '-' (refused by default)."),
        ] = False,
        no_progress: Annotated[
            bool, typer.Option("--no-progress", help="No progress bar.")
        ] = False,
    ) -> None:
        """Download the clips of InternVid metadata rows (only their time ranges) into shards."""
        opts = FetchOptions(
            url_template=url_template,
            workers=workers,
            rate=rate,
            burst=burst,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_height=max_height,
            format=fmt,
            rows_per_shard=rows_per_shard,
            limit=limit,
            socket_timeout=socket_timeout,
            allow_leading_dash=allow_leading_dash,
        )
        try:
            summary = download_release(metadata, out, opts, progress=not no_progress)
        except FetchSetupError as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
        print_download_summary(summary)
