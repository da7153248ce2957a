"""`internvid collect`: queries -> searches -> the paper's rules with reasons -> metadata -> downloads."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from internvid.config import CrawlConfig
from internvid.crawl.journal import Journal
from internvid.crawl.provider import SearchProvider, YtdlpProvider
from internvid.download.errors import FetchError, classify_exception
from internvid.download.limiter import RateLimiter, backoff_delay
from internvid.download.units import check_video_id
from internvid.io.atomic import atomic_open, write_json_atomic
from internvid.io.lock import hold_lock

log = logging.getLogger(__name__)

COLLECTED = "collected"  # the id database's dataset of what collect accepted
# One row per video found: why it was kept or not, and what the platform said of it
CANDIDATE_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string()),  # the platform's id (YouTube: 11 characters); a
        # video found by several queries has one row per find, the later ones duplicate_id
        pa.field("status", pa.string()),  # accepted, dropped or failed
        pa.field("reason", pa.string()),  # the rule that dropped it / why it failed ("" kept)
        pa.field("values", pa.string()),  # JSON: what the rule looked at
        pa.field("query", pa.string()),  # the query (or channel URL) that found it first
        pa.field("found_by", pa.string()),  # search or channel
        pa.field("url", pa.string()),  # the page to download (webpage_url)
        pa.field("title", pa.string()),
        pa.field("description", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("channel", pa.string()),
        pa.field("upload_date", pa.string()),  # YYYYMMDD
        pa.field("language", pa.string()),
        pa.field("duration", pa.float64()),  # seconds
        pa.field("height", pa.int64()),  # short side of the best format, pixels
        pa.field("has_audio", pa.bool_()),
        pa.field("file", pa.string()),  # the download under OUT/videos ("" none)
    ]
)


class Blocked(RuntimeError):
    """The platform refuses us (a bot check, 429 after the retries): collect stops and keeps
    its journal, and the same command resumes later."""


class CollectError(ValueError):
    """collect cannot start (no queries, an unreadable query file)."""


@dataclass
class CollectSummary:
    """What a collect run did; also written as OUT/collect.json."""

    out_dir: str  # output folder
    queries: int  # queries (and channels) searched or listed
    found: int  # distinct videos found
    accepted: int  # kept by every rule
    dropped: dict[str, int]  # rule -> videos it dropped
    failed: dict[str, int]  # reason -> videos or requests that failed
    downloaded: int  # accepted videos on disk under OUT/videos
    requests: int  # platform requests made by this run (a resume makes none twice)
    reused: int  # answers taken from the journal instead of asked again
    blocked: str = ""  # the platform's refusal that stopped the run ("" none)
    seconds: float = 0.0  # wall time


def read_queries(path: str | Path, limit: int | None = None) -> list[str]:
    """Queries from InternVid's queries.jsonl (`search_word_id`), `internvid queries build`
    output (.jsonl / .parquet with `phrase`) or a text file, one a line; blanks skipped, order
    kept, repeats once."""
    path = Path(path)
    if not path.is_file():
        raise CollectError(f"no query file at {path}")
    out: list[str] = []
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        col = next(
            (c for c in ("phrase", "query", "search_word_id") if c in table.column_names), ""
        )
        if not col:
            raise CollectError(f"{path}: no phrase, query or search_word_id column")
        out = [str(x) for x in table.column(col).to_pylist() if x]
    elif path.suffix == ".jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise CollectError(f"{path}:{n}: not JSON ({e})") from e
            q = next((row.get(k) for k in ("search_word_id", "phrase", "query") if row.get(k)), "")
            if q:
                out.append(str(q))
    else:
        out = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    out = list(dict.fromkeys(" ".join(q.split()) for q in out))
    return out[:limit] if limit is not None else out


def _short_side(details: dict[str, Any]) -> int | None:
    h, w = details.get("max_height") or details.get("height"), details.get("width")
    if h and w:
        return int(min(h, w))
    return int(h) if h else None


def check_rules(details: dict[str, Any], cfg: CrawlConfig) -> tuple[str, dict[str, Any]] | None:
    """The paper's rules on a video's facts: (reason, values) when one drops it, else None."""
    r = cfg.rules
    live = details.get("live_status")
    if live in ("is_live", "is_upcoming", "post_live"):
        return "live", {"live_status": live}
    duration = details.get("duration")
    if duration is None:
        return "no_duration", {}
    if duration < r.min_duration:
        return "too_short", {"duration": duration, "min_duration": r.min_duration}
    if duration > r.max_duration:
        return "too_long", {"duration": duration, "max_duration": r.max_duration}
    side = _short_side(details)
    if side is None or side < r.min_height:
        return "low_resolution", {"height": side, "min_height": r.min_height}
    if cfg.require_audio and details.get("has_audio") is False:
        return "no_audio", {"has_audio": False}
    return None


class _Requests:
    """Every platform request through one place: the journal first (a finished request is
    never made again), the rate limit, then retries with backoff for network failures."""

    def __init__(self, cfg: CrawlConfig, journal: Journal, sleep: Callable = time.sleep):
        self.cfg = cfg
        self.journal = journal
        self.limiter = RateLimiter(cfg.rate)
        self.sleep = sleep
        self.made = 0  # requests made by this run
        self.reused = 0  # answers the journal already had

    def ask(self, kind: str, key: str, fn: Callable[[], Any]) -> Any:
        """The journaled answer of request (kind, key), asking the platform only when the
        journal has none. A permanent failure is journaled too (its FetchError's reason);
        a transient one after the retries is raised and not journaled (a rerun asks again)."""
        if (kind, key) in self.journal:
            self.reused += 1
            result = self.journal.get(kind, key)
            if isinstance(result, dict) and "_failed" in result:
                raise FetchError(result["_failed"], result.get("message", ""), transient=False)
            return result
        for attempt in range(1, self.cfg.retries + 2):
            self.limiter.acquire()
            self.made += 1
            try:
                result = fn()
            except Exception as e:
                err = classify_exception(e)
                if err.reason == "rate_limited":
                    raise Blocked(err.message) from e
                if err.transient and attempt <= self.cfg.retries:
                    wait = backoff_delay(attempt, self.cfg.backoff, self.cfg.backoff_max)
                    log.info("%s %r: %s; retrying in %.1f s", kind, key, err.reason, wait)
                    self.sleep(wait)
                    continue
                if not err.transient:
                    self.journal.put(kind, key, {"_failed": err.reason, "message": err.message})
                raise err from e
            self.journal.put(kind, key, result)
            return result
        raise AssertionError("unreachable")


@dataclass
class _Found:
    """A video as the search saw it, and what became of it."""

    entry: dict[str, Any]  # the flat search entry
    query: str  # first query / channel that found it
    found_by: str  # search or channel
    status: str = ""  # accepted, dropped, failed
    reason: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    also_found_by: list[tuple[str, str]] = field(default_factory=list)  # later (query, kind)


def _earlier_ids(cfg: CrawlConfig, ids: Iterable[str]) -> set[str]:
    """Which of `ids` the id database holds in an earlier dataset (empty without one)."""
    if not cfg.ids:
        return set()
    from internvid.ids.database import IdDatabase

    with IdDatabase.open(cfg.ids) as db:
        names = cfg.earlier_datasets or [d for d in db.datasets() if d != COLLECTED]
        return db.contains(list(ids), names) if names else set()


def _record_collected(cfg: CrawlConfig, ids: list[str]) -> None:
    if cfg.ids and ids:
        from internvid.ids.database import IdDatabase

        with IdDatabase.open(cfg.ids) as db:
            db.add(ids, COLLECTED)


def collect(
    cfg: CrawlConfig,
    out_dir: str | Path,
    provider: SearchProvider | None = None,
    progress: bool = False,
) -> CollectSummary:
    """Search every query (and list every channel), apply the rules with reasons, record each
    video's metadata, download the accepted ones; resumable from OUT/journal.jsonl."""
    cfg.validate()
    out = Path(out_dir)
    t0 = time.perf_counter()
    queries = read_queries(cfg.queries, cfg.limit) if cfg.queries else []
    if cfg.ids:  # a wrong database or dataset name stops here, before any request
        from internvid.ids.database import IdDatabase, IdsError

        try:
            with IdDatabase.open(cfg.ids) as db:
                unknown = sorted(set(cfg.earlier_datasets) - set(db.datasets()))
        except (IdsError, OSError) as e:
            raise CollectError(f"id database {cfg.ids}: {e}") from e
        if unknown:
            raise CollectError(f"id database {cfg.ids} holds no dataset {', '.join(unknown)}")
    if provider is None:
        provider = YtdlpProvider(cfg.search_prefix, tuple(cfg.extractors), cfg.fetch.socket_timeout)
    with hold_lock(out, "collect"):
        out.mkdir(parents=True, exist_ok=True)
        journal = Journal(out / "journal.jsonl")
        state = _State(cfg, out, _Requests(cfg, journal))
        try:
            blocked = _crawl(state, queries, provider, progress)
        finally:
            journal.close()
        summary = _write_outputs(state, len(queries), blocked, t0)
    return summary


@dataclass
class _State:
    """One collect run's working state."""

    cfg: CrawlConfig
    out: Path  # output folder
    req: _Requests  # every platform request goes through it
    found: dict[str, _Found] = field(default_factory=dict)  # video id -> what became of it
    failures: list[dict[str, Any]] = field(default_factory=list)  # failures.jsonl rows


def _crawl(state: _State, queries: list[str], provider: SearchProvider, progress: bool) -> str:
    """The requests, in order; returns the platform's refusal when it blocked us ("" none)."""
    cfg, req, found, failures = state.cfg, state.req, state.found, state.failures
    from rich.progress import Progress

    sources = [("search", q) for q in queries] + [("channel", c) for c in cfg.channels]
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("searching", total=len(sources))
            for kind, key in sources:
                try:
                    if kind == "search":
                        entries = req.ask(
                            "search", key, lambda k=key: provider.search(k, cfg.per_query)
                        )
                    else:
                        entries = req.ask(
                            "channel", key, lambda k=key: provider.listing(k, cfg.per_channel)
                        )
                except FetchError as e:
                    failures.append(
                        {"item": key, "stage": kind, "reason": e.reason, "message": e.message}
                    )
                    bar.advance(task)
                    continue
                for entry in entries or []:
                    _note(entry, key, kind, found, failures)
                bar.advance(task)
            _screen(cfg, found)
            todo = [f for f in found.values() if not f.status]
            task = bar.add_task("video facts", total=len(todo))
            for f in todo:
                vid = f.entry["id"]
                try:
                    f.details = req.ask("details", vid, lambda e=f.entry: provider.details(e))
                except FetchError as e:
                    f.status, f.reason, f.values = "failed", e.reason, {"message": e.message}
                    bar.advance(task)
                    continue
                rule = check_rules(f.details, cfg)
                if rule:
                    f.status, (f.reason, f.values) = "dropped", rule
                else:
                    f.status = "accepted"
                bar.advance(task)
            if cfg.download:
                accepted = [f for f in found.values() if f.status == "accepted"]
                _download(cfg, accepted, req, state.out, bar)
    except Blocked as e:
        log.error(
            "the platform blocked us (%s); nothing is lost: wait (hours, or another network), "
            "then run the same command again to resume",
            e,
        )
        return str(e)
    return ""


def _note(
    entry: dict[str, Any], key: str, kind: str, found: dict[str, _Found], failures: list
) -> None:
    """One search entry: a new video, or the same one found again (kept once, first finder)."""
    vid = entry.get("id")
    why = check_video_id(vid, allow_leading_dash=True)  # YouTube ids may start with "-"
    if why is not None:
        failures.append({"item": str(vid)[:100], "stage": kind, "reason": "bad_id",
                         "message": f"found by {key!r}: {why}"})  # fmt: skip
        return
    if vid in found:
        found[vid].also_found_by.append((key, kind))
        return
    found[vid] = _Found(dict(entry, id=vid), key, kind)


def _screen(cfg: CrawlConfig, found: dict[str, _Found]) -> None:
    """The checks that need no request: an earlier dataset holds the id; the search already
    says the duration breaks a rule."""
    earlier = _earlier_ids(cfg, found)
    for vid, f in found.items():
        if f.status:
            continue
        if vid in earlier:
            f.status, f.reason, f.values = "dropped", "in_earlier_dataset", {"video_id": vid}
            continue
        d = f.entry.get("duration")
        if d is not None and not cfg.rules.min_duration <= d <= cfg.rules.max_duration:
            reason = "too_short" if d < cfg.rules.min_duration else "too_long"
            limit = "min_duration" if reason == "too_short" else "max_duration"
            f.status, f.reason = "dropped", reason
            f.values = {"duration": d, limit: getattr(cfg.rules, limit), "from": "search"}


def _download(cfg: CrawlConfig, accepted: list[_Found], req: _Requests, out: Path, bar) -> None:
    from internvid.engine import Context, Sample, StageError, StageStats
    from internvid.records import Video
    from internvid.stages.download import DownloadStage

    stage = DownloadStage(cfg.fetch, out / "videos")
    ctx = Context(stage, StageStats("download"), [])
    task = bar.add_task("downloads", total=len(accepted))
    for f in accepted:
        vid = f.entry["id"]
        url = f.details.get("webpage_url") or f.entry.get("url") or ""
        existing = stage._existing(vid) if stage.folder.is_dir() else None
        if existing is not None:  # a finished download is never fetched again
            f.file = existing.name
            bar.advance(task)
            continue

        def fetch(u: str = url, v: str = vid) -> str:
            sample = Sample(Video(id=v, source=u))
            try:
                stage.process_one(sample, ctx)
            except StageError as e:
                raise FetchError(e.reason, str(e)) from e
            return Path(sample.video.path or "").name

        try:
            f.file = req.ask("download", vid, fetch)
        except FetchError as e:
            f.status, f.reason, f.values = "failed", f"download_{e.reason}", {"message": e.message}
        bar.advance(task)


def _row(vid: str, f: _Found) -> dict[str, Any]:
    d, e = f.details, f.entry
    return {
        "video_id": vid,
        "status": f.status,
        "reason": f.reason,
        "values": json.dumps(
            {
                **f.values,
                **({"also_found_by": [k for k, _ in f.also_found_by]} if f.also_found_by else {}),
            },
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        ),
        "query": f.query,
        "found_by": f.found_by,
        "url": d.get("webpage_url") or e.get("url") or "",
        "title": d.get("title") or e.get("title"),
        "description": d.get("description") or e.get("description"),
        "tags": [str(t) for t in (d.get("tags") or [])],
        "categories": [str(c) for c in (d.get("categories") or [])],
        "channel": d.get("channel") or e.get("channel"),
        "upload_date": d.get("upload_date"),
        "language": d.get("language"),
        "duration": float(d.get("duration") or e.get("duration") or 0) or None,
        "height": _short_side(d),
        "has_audio": d.get("has_audio"),
        "file": f.file,
    }


def _write_outputs(state: _State, n_queries: int, blocked: str, t0: float) -> CollectSummary:
    """candidates.parquet (every video found), accepted.txt (URLs for `internvid run`),
    failures.jsonl, collect.json; each written to a temp name, then renamed."""
    cfg, out, found, failures, req = state.cfg, state.out, state.found, state.failures, state.req
    for vid, f in found.items():
        if not f.status:  # the run stopped before its facts were asked (blocked)
            f.status, f.reason = "failed", "not_reached"
        if f.status == "failed":
            failures.append({"item": vid, "stage": "collect", "reason": f.reason,
                             "message": str(f.values.get("message", ""))})  # fmt: skip
    rows = [_row(vid, f) for vid, f in found.items()]
    for vid, f in found.items():  # each later find of a video: its own row, kept out
        for key, kind in f.also_found_by:
            again = _Found(
                f.entry, key, kind, "dropped", "duplicate_id", {"first_found_by": f.query}
            )
            rows.append(_row(vid, dataclasses.replace(again, details=f.details)))
    with atomic_open(out / "candidates.parquet", "wb") as fh:
        pq.write_table(pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA), fh)
    accepted = [r for r in rows if r["status"] == "accepted"]
    with atomic_open(out / "accepted.txt") as fh:
        fh.writelines(f"{r['url']}\n" for r in accepted)
    with atomic_open(out / "failures.jsonl") as fh:
        fh.writelines(json.dumps(x, ensure_ascii=False) + "\n" for x in failures)
    _record_collected(cfg, [r["video_id"] for r in accepted])
    dropped = Counter(r["reason"] for r in rows if r["status"] == "dropped")
    failed = Counter(x["reason"] for x in failures)
    summary = CollectSummary(
        out_dir=str(out),
        queries=n_queries + len(cfg.channels),
        found=len(rows),
        accepted=len(accepted),
        dropped=dict(sorted(dropped.items())),
        failed=dict(sorted(failed.items())),
        downloaded=sum(1 for r in accepted if r["file"]),
        requests=req.made,
        reused=req.reused,
        blocked=blocked,
        seconds=round(time.perf_counter() - t0, 2),
    )
    write_json_atomic(out / "collect.json", summary.__dict__)
    return summary
