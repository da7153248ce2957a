"""`internvid download` as a library: units of release rows -> clips in parallel -> shards."""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import shutil
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from internvid.config import DownloadCommandConfig
from internvid.download.errors import MAX_REASON_MESSAGE, FetchError
from internvid.download.fetcher import Counters, Fetcher
from internvid.download.limiter import RateLimiter
from internvid.download.units import Row, Unit, count_rows, iter_units, render_url
from internvid.download.ytdlp import format_selector
from internvid.engine.shard import marker_path
from internvid.io.atomic import (
    remove_temp_files,
    temp_name,
    write_json_atomic,
    write_jsonl_atomic,
)
from internvid.io.release import clip_from_row
from internvid.io.shards import shard_name
from internvid.log import CountingProgress
from internvid.records import format_timecode, parse_clip_id

__all__ = ["DownloadLockedError", "DownloadSetupError", "DownloadSummary", "download_release"]

log = logging.getLogger(__name__)

WORK = "_download"  # folder of the unit markers and the clips of unfinished units
SOURCES = "sources"  # _download/sources: whole files of servers without ranges (during a run)


class DownloadSetupError(RuntimeError):
    """The download cannot start (bad options, a folder of another run, a run already going)."""


class DownloadLockedError(DownloadSetupError):
    """Another `internvid download` holds the output folder's lock."""


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
    probes: int  # GETs that probed a source (duration, range support, an ffmpeg failure)
    whole_files: int  # videos downloaded whole (their server ignores ranges), clips cut locally
    retries: int  # tries repeated after transient failures
    bytes_downloaded: int  # bytes of the clips downloaded this invocation
    clip_seconds: float  # total length of the clips in the shards
    wall_seconds: float  # this invocation's wall time
    clips_per_second: float  # downloaded / wall_seconds
    megabytes_per_second: float  # bytes_downloaded / wall_seconds / 1e6

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UnitState:
    """A unit being downloaded: the records of its rows, and the rows still to do."""

    unit: Unit  # its rows and index
    work: Path  # _download/NNNNN: clips and records until the unit commits
    records: dict[str, dict[str, Any]]  # clip id -> record (ok or failed)
    todo: list[Row]  # rows this invocation downloads (missing or transiently failed)
    remaining: int = 0  # downloads still running
    reused: int = 0  # ok clips from an earlier invocation


class _Download:
    """One invocation over a metadata file: units in order, clips in parallel, resumable."""

    def __init__(self, meta: Path, out: Path, cfg: DownloadCommandConfig, progress: bool) -> None:
        self.meta, self.out, self.cfg, self.progress = meta, out, cfg, progress
        self.shards_dir = out / "shards"
        self.work_dir = out / WORK
        self.counters = Counters()
        self.limiter = RateLimiter(cfg.rate, cfg.burst)
        self.fetcher = Fetcher(cfg, self.limiter, self.counters, self.work_dir / SOURCES)
        self.input_failures: list[dict[str, Any]] = []
        self.units: list[int] = []  # indices of this invocation's units, in order
        self.done_before = 0  # units finished for good by an earlier invocation
        self.reused = 0  # ok clips kept from earlier invocations
        self.n_rows = 0  # valid rows taken
        self.bar: CountingProgress | None = None
        self._inputs_counted = 0  # input failures the progress bar has counted

    # -- units ------------------------------------------------------------------------------

    def _marker(self, index: int) -> Path:
        return marker_path(self.work_dir, index)  # the engine's name: _download/NNNNN.done.json

    def _open(self, unit: Unit) -> UnitState | None:
        """Resume a unit: None when an earlier invocation finished it for good."""
        path = self._marker(unit.index)
        marker = json.loads(path.read_text()) if path.is_file() else None
        work = self.work_dir / shard_name(unit.index)
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
        state = UnitState(unit, work, {}, [])
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
        tar_path = self.shards_dir / f"{shard_name(index)}.tar"
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

    def _commit(self, st: UnitState) -> None:
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
                (self.shards_dir / f"{shard_name(index)}{ext}").unlink(missing_ok=True)
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

    def _task(self, st: UnitState, r: Row) -> dict[str, Any]:
        url = render_url(self.cfg.url_template, r.row.youtube_id)
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
        total = count_rows(self.meta, self.cfg.limit) if self.progress else None
        in_flight: dict[Future[dict[str, Any]], tuple[UnitState, Row]] = {}
        window = 2 * self.cfg.workers  # downloads queued ahead: keeps every worker busy

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
            ThreadPoolExecutor(self.cfg.workers, thread_name_prefix="fetch") as pool,
        ):
            try:
                for unit in iter_units(self.meta, self.cfg, self.input_failures):
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
            finally:
                self.fetcher.close()
        shutil.rmtree(self.work_dir / SOURCES, ignore_errors=True)
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
                        self.shards_dir / f"{shard_name(index)}.parquet", schema=CLIP_SCHEMA
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
            probes=c.probes,
            whole_files=c.whole_files,
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
    r: Row, url: str, reason: str, message: str, transient: bool, attempts: int
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


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock (io/lock.py, shared with run, score and train-frames: one
    writer per folder, released by the kernel even on SIGKILL)."""
    from internvid.io.lock import FolderLocked, hold_lock

    try:
        with hold_lock(out, "download"):
            yield
    except FolderLocked as e:
        raise DownloadLockedError(str(e)) from None


def _check_settings(out: Path, cfg: DownloadCommandConfig) -> None:
    """Refuse to mix unit sizes in one folder (shard N would mean other rows); remember ours."""
    path = out / WORK / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("rows_per_shard") != cfg.rows_per_shard:
            raise DownloadSetupError(
                f"{out} was started with --rows-per-shard {old.get('rows_per_shard')}: use the "
                "same value to resume, or another --out"
            )
    write_json_atomic(
        path,
        {
            "rows_per_shard": cfg.rows_per_shard,
            "url_template": cfg.url_template,
            "format": format_selector(cfg.max_height, cfg.format),
        },
    )


def download_release(
    meta: str | Path,
    out: str | Path,
    cfg: DownloadCommandConfig | None = None,
    progress: bool = False,
) -> DownloadSummary:
    """Download the clips of the release rows in `meta` into `out` (see `internvid download`).

    Resumable: run it again on the same folder after an interruption (even SIGKILL) and it
    downloads only what is missing, plus the rows whose failure was transient.
    """
    from internvid.io import remote
    from internvid.io.storage import is_remote

    if is_remote(meta) or is_remote(out):  # fetched here, published there as a whole
        try:
            with remote.input_path(meta) as local_meta, remote.staged(out, "download") as local:
                return download_release(local_meta, local, cfg, progress)
        except FileNotFoundError as e:
            raise DownloadSetupError(str(e)) from e
    cfg = cfg or DownloadCommandConfig()
    try:
        cfg.validate()
    except ValueError as e:
        raise DownloadSetupError(str(e)) from e
    meta, out = Path(meta), Path(out)
    if not meta.is_file():
        raise DownloadSetupError(f"no such metadata file: {meta}")
    out.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out):
        (out / WORK).mkdir(exist_ok=True)
        _check_settings(out, cfg)
        shutil.rmtree(out / WORK / SOURCES, ignore_errors=True)  # whole files of a killed run
        stale = remove_temp_files(out)  # .NAME.tmp-PID files of a killed run (never final names)
        if stale:
            log.info("removed %d partial file(s) left by an interrupted run", stale)
        return _Download(meta, out, cfg, progress).run()
