"""Release metadata as shard manifests: rows streamed to Parquet, grouped by video under a DuckDB
memory limit, read back one shard at a time (memory does not grow with the metadata)."""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from internvid.engine.sample import Failure, Sample
from internvid.io.atomic import write_json_atomic
from internvid.io.release import (
    MalformedRow,
    ReleaseRow,
    clip_from_row,
    iter_numbered_release_rows,
)
from internvid.records import Video

log = logging.getLogger(__name__)

VERSION = 1  # of the manifest folder's layout; another version is rebuilt, never read
BATCH_ROWS = 32_768  # rows held in memory at a time while streaming (rows in, videos, shards)
ROW_GROUP_ROWS = 8_192  # rows per Parquet row group of the manifest: what a shard read touches


class ManifestError(ValueError):
    """The metadata cannot become manifests (no template, a template without the id)."""


@dataclass
class Manifest:
    """Shard manifests of release metadata in `folder`: `part-NNNNN.parquet` (one row per
    clip, sorted by shard, video and input position; each file a run of shards, so a reader
    decodes one small footer, not one of every row group), `failures.jsonl` (rows that could
    not be read, videos without a file) and `manifest.json` (counts, the files' shard ranges
    and a digest; written last)."""

    folder: str  # where the files are
    videos: int  # distinct videos with a source, in first-appearance order
    shards: int  # ceil(videos / per_shard)
    rows: int  # clip rows in the manifest (before per-video duplicates are merged)
    failures: int  # rows of failures.jsonl
    per_shard: int  # videos per shard
    digest: str  # sha256 of the part files in order: the inputs' identity for resuming
    parts: list[list[int]]  # [first shard, last shard] of each part-NNNNN.parquet, in order
    inputs: list[list[Any]]  # [path, size, mtime_ns] of each metadata file, with the settings
    settings: dict[str, Any]  # template, limits, per_shard: what the manifest was built with
    version: int = VERSION

    def __post_init__(self) -> None:
        self._reader: _ShardReader | None = None

    @property
    def paths(self) -> list[Path]:
        return [Path(self.folder) / part_name(i) for i in range(len(self.parts))]

    def __len__(self) -> int:
        return self.shards

    def shard(self, k: int) -> list[Sample]:
        """The samples of shard `k` (0-based), clips in input order, duplicates merged."""
        if not 0 <= k < self.shards:
            raise IndexError(f"shard {k} of {self.shards}")
        if self._reader is None:
            self._reader = _ShardReader(self.paths, self.parts)
        return self._reader.samples(k)

    def __getitem__(self, k: int) -> list[Sample]:
        return self.shard(k)

    def __iter__(self) -> Iterator[list[Sample]]:
        for k in range(self.shards):
            yield self.shard(k)

    def iter_videos(self) -> Iterator[Video]:
        """The manifest's videos in order (their input facts only), a row group at a time."""
        import pyarrow.parquet as pq

        last = None
        for path in self.paths:
            pf = pq.ParquetFile(path)
            for i in range(pf.num_row_groups):
                cols = pf.read_row_group(i, columns=["youtube_id", "source", "remote"])
                d = cols.to_pydict()
                for vid, source, remote in zip(
                    d["youtube_id"], d["source"], d["remote"], strict=True
                ):
                    if vid != last:
                        last = vid
                        yield _video(vid, source, remote)

    def iter_failures(self) -> Iterator[Failure]:
        with open(Path(self.folder) / "failures.jsonl", encoding="utf-8") as f:
            for line in f:
                yield Failure(**json.loads(line))

    def ids_among(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are videos of this manifest (for the other inputs' id clashes)."""
        if not ids:
            return set()
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        wanted = pa.array(sorted(set(ids)), pa.string())
        found: set[str] = set()
        for path in self.paths:
            pf = pq.ParquetFile(path)
            for i in range(pf.num_row_groups):  # one row group's ids at a time
                col = pf.read_row_group(i, columns=["youtube_id"]).column(0)
                found.update(pc.filter(col, pc.is_in(col, value_set=wanted)).to_pylist())
        return found

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    @classmethod
    def load(cls, folder: str | Path) -> Manifest | None:
        """The manifest in `folder` when it is complete and of this version, else None."""
        try:
            with open(Path(folder) / "manifest.json", encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        if d.get("version") != VERSION:
            return None
        d["folder"] = str(folder)
        try:
            m = cls(**d)
        except TypeError:  # another layout
            return None
        return m if all(p.is_file() for p in m.paths) else None


def part_name(i: int) -> str:
    return f"part-{i:05d}.parquet"


class _ShardReader:
    """Reads one shard's rows: the part files that hold it (from their shard ranges), then
    their row groups that do (from the footer's statistics); the last file stays open."""

    def __init__(self, paths: list[Path], parts: list[list[int]]) -> None:
        self.paths, self.parts = paths, parts
        self.firsts = [first for first, _ in parts]
        self.lock = threading.Lock()  # a pyarrow ParquetFile is not shared across threads
        self.open: tuple[int, Any, list[tuple[int, int]]] | None = None  # file, reader, ranges
        self.cached: tuple[tuple[int, tuple[int, ...]], Any] | None = None  # last groups read

    def _file(self, i: int) -> tuple[Any, list[tuple[int, int]]]:
        import pyarrow.parquet as pq

        if self.open is None or self.open[0] != i:
            pf = pq.ParquetFile(self.paths[i])
            col = pf.schema_arrow.get_field_index("shard")
            ranges = []  # (first shard, last shard) of each row group
            for g in range(pf.num_row_groups):
                st = pf.metadata.row_group(g).column(col).statistics
                ranges.append((st.min, st.max))
            self.open = (i, pf, ranges)
        return self.open[1], self.open[2]

    def _rows(self, i: int, k: int) -> list[dict[str, Any]]:
        import numpy as np

        pf, ranges = self._file(i)
        groups = tuple(g for g, (a, b) in enumerate(ranges) if a <= k <= b)
        if self.cached is None or self.cached[0] != (i, groups):
            table = pf.read_row_groups(list(groups), use_threads=False)
            shard = table.column("shard").to_numpy()  # sorted: the manifest's order
            self.cached = ((i, groups), (table, shard))
        table, shard = self.cached[1]
        a, b = np.searchsorted(shard, [k, k + 1])
        return table.slice(a, b - a).to_pylist()

    def samples(self, k: int) -> list[Sample]:
        i = bisect.bisect_right(self.firsts, k) - 1  # the last file starting at or before k
        holding = []  # a shard's videos may span files (ranges are contiguous, in order)
        while i >= 0 and self.parts[i][1] >= k:
            holding.append(i)
            i -= 1
        rows: list[dict[str, Any]] = []
        with self.lock:
            for i in reversed(holding):
                rows += self._rows(i, k)
        return _samples(rows)


def _video(vid: str, source: str, remote: bool) -> Video:
    return Video(
        id=vid, source=source, path=None if remote else source, meta={"origin": "metadata"}
    )


def _samples(rows: list[dict[str, Any]]) -> list[Sample]:
    """Manifest rows (sorted by video, then input position) -> one sample per video."""
    out: list[Sample] = []
    seen: set[str] = set()
    for r in rows:
        if not out or out[-1].video.id != r["youtube_id"]:
            out.append(Sample(video=_video(r["youtube_id"], r["source"], r["remote"])))
            seen = set()
        row = ReleaseRow(
            r["youtube_id"],
            r["start_ms"],
            r["end_ms"],
            r["caption"],
            r["aesthetic"],
            r["umt"],
            r["umt_key"],
            json.loads(r["extra"]) if r["extra"] is not None else {},
        )
        clip = clip_from_row(row, out[-1].video.source)
        if clip.clip_id not in seen:  # the same clip twice: the first row wins
            seen.add(clip.clip_id)
            out[-1].clips.append(clip)
    return out


# --- building ------------------------------------------------------------------------------
#
# Rows stream from the metadata into partitions by a stable hash of the video id (Arrow IPC
# files, at most MAX_FANOUT at a time, each buffering PENDING_ROWS rows); a partition larger
# than PARTITION_BYTES is split again with another hash seed. Each partition, small enough to
# hold, is then grouped by video (videos in the order of their first row), its videos given a
# source and a number, and appended to manifest.parquet sorted by video and input position.
# One partition (every input under PARTITION_BYTES): the videos' order is their first row's.


def input_facts(files: Sequence[str | Path]) -> list[list[Any]]:
    """[absolute path, size, mtime_ns] of each file: a changed file rebuilds the manifest."""
    facts = []
    for p in files:
        st = os.stat(p)
        facts.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return facts


def build_manifest(
    files: Sequence[str | Path],
    folder: str | Path,
    source_of: Callable[[str], tuple[str | None, Failure | None, bool]],
    *,
    per_shard: int,
    settings: dict[str, Any],
    limit: int | None = None,
    max_line_bytes: int,
    max_caption_chars: int,
) -> Manifest:
    """Stream the release rows of `files` into shard manifests in `folder` (reused when the
    same files and settings built it before).

    `source_of(video_id)` -> (source, failure, remote): where the video is read from, or the
    failure row of a video that has none (a missing local file). The first `limit` videos
    with a source are kept (None: all). Memory stays bounded whatever the size of the input:
    a batch of rows, a partition's buffers, one partition of at most PARTITION_BYTES.
    """
    import pyarrow as pa

    folder = Path(folder)
    facts = input_facts(files)
    settings = {**settings, "per_shard": per_shard, "limit": limit}
    old = Manifest.load(folder)
    if old is not None and old.inputs == facts and old.settings == settings:
        log.info("manifest: reusing %s (%d videos, %d shards)", folder, old.videos, old.shards)
        return old
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "parts").mkdir(parents=True)
    failures = _FailureLog(folder / "failures.jsonl")
    numbering = _Numbering(per_shard, limit, source_of, failures)
    out = _Parts(folder, per_shard)
    size = sum(f[1] * (5 if str(f[0]).endswith(".gz") else 1) for f in facts)
    pool = pa.default_memory_pool()
    # the system allocator returns each partition's buffers: mimalloc's retained pages made the
    # peak grow with the input (222 MB against 163 MB on 1M rows)
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        batches = _row_batches(files, failures, max_line_bytes, max_caption_chars)
        parts = _partition(batches, folder / "parts", "p", _fanout(size), seed=0)
        for part in parts:
            _process(part, out, numbering, level=1)
            _trim()
    finally:
        pa.set_memory_pool(pool)
        failures.close()
    shutil.rmtree(folder / "parts", ignore_errors=True)
    h = hashlib.sha256()
    for i in range(len(out.ranges)):
        with open(folder / part_name(i), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    manifest = Manifest(
        folder=str(folder),
        videos=numbering.videos,
        shards=-(-numbering.videos // per_shard),
        rows=numbering.rows,
        failures=failures.count,
        per_shard=per_shard,
        digest=h.hexdigest(),
        parts=out.ranges,
        inputs=facts,
        settings=settings,
    )
    write_json_atomic(folder / "manifest.json", manifest.to_json())  # last: the commit point
    log.info(
        "manifest: %d rows read, %d clip rows of %d videos in %d shards, %d failure rows",
        numbering.rows_read,
        manifest.rows,
        manifest.videos,
        manifest.shards,
        manifest.failures,
    )
    return manifest


PARTITION_BYTES = 8 << 20  # largest partition grouped in memory (its Arrow IPC file size)
MAX_FANOUT = 256  # partitions written at once
PENDING_ROWS = 256  # rows a partition buffers before they go to its file
SPLIT_LEVELS = 4  # a partition still too large after this many splits is one video's rows


class _Parts:
    """The manifest's part files: each processed partition's rows become the next one."""

    def __init__(self, folder: Path, per_shard: int) -> None:
        self.folder, self.per_shard = folder, per_shard
        self.ranges: list[list[int]] = []  # [first shard, last shard] of each file

    def write(self, tables: Iterator[Any], first_video: int, last_video: int) -> None:
        import pyarrow.parquet as pq

        path = self.folder / part_name(len(self.ranges))
        with pq.ParquetWriter(path, _manifest_schema(), compression="zstd") as writer:
            for table in tables:
                writer.write_table(table)
        self.ranges.append([first_video // self.per_shard, last_video // self.per_shard])


def _trim() -> None:
    """Give the C heap's free pages back to the system (glibc; elsewhere nothing): what the
    freed buffers of one partition left would otherwise add to the next one's peak."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def _fanout(nbytes: int) -> int:
    # JSON text is about the size of its rows in Arrow IPC
    return max(1, min(MAX_FANOUT, -(-int(nbytes) // PARTITION_BYTES)))


class _FailureLog:
    """failures.jsonl, written as failures come (never held in memory)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.count = 0

    def add(self, failure: Failure) -> None:
        self.f.write(json.dumps(failure.to_json(), ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        self.f.close()


@dataclass
class _Numbering:
    """Videos in manifest order get their number (0, 1, ...) once they have a source."""

    per_shard: int
    limit: int | None
    source_of: Callable[[str], tuple[str | None, Failure | None, bool]]
    failures: _FailureLog
    videos: int = 0  # numbered so far
    rows: int = 0  # clip rows written to the manifest
    rows_read: int = 0  # rows read from the metadata

    @property
    def full(self) -> bool:
        return self.limit is not None and self.videos >= self.limit


def _row_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("youtube_id", pa.string()),  # YoutubeID
            ("start_ms", pa.int64()),  # Start_timestamp in milliseconds
            ("end_ms", pa.int64()),  # End_timestamp in milliseconds
            ("caption", pa.string()),  # Caption, null when absent
            ("aesthetic", pa.float64()),  # Aesthetic_Score, null when absent
            ("umt", pa.float64()),  # UMT_Score / UMT-SIM, null when absent
            ("umt_key", pa.string()),  # the key the row named its UMT score with
            ("extra", pa.string()),  # the row's other keys as a JSON object, null when none
            ("file", pa.int32()),  # which input file (0-based, in the order given)
            ("line", pa.int64()),  # line number in that file (1-based)
            ("pos", pa.int64()),  # file << 40 | line: the row's place in the input
        ]
    )


def _manifest_schema():
    import pyarrow as pa

    head = [
        ("shard", pa.int64()),  # work shard: video // per_shard
        ("video", pa.int64()),  # the video's number in the run (manifest order)
        ("source", pa.string()),  # where the video is read from (path or URL)
        ("remote", pa.bool_()),  # True: a URL (downloaded), False: a local file
    ]
    return pa.schema(head + [f for f in _row_schema() if f.name != "pos"])


def _row_batches(
    files: Sequence[str | Path], failures: _FailureLog, max_line_bytes: int, max_caption_chars: int
) -> Iterator[Any]:
    """Every readable row of `files` as Arrow record batches; bad rows -> failures."""
    import pyarrow as pa

    schema = _row_schema()
    cols: dict[str, list] = {f.name: [] for f in schema}

    def batch():
        out = pa.record_batch([cols[f.name] for f in schema], schema=schema)
        for v in cols.values():
            v.clear()
        return out

    for fi, p in enumerate(files):
        name = Path(p).name

        def on_error(line_no: int, error: MalformedRow, raw: str, name=name, p=p) -> None:
            failures.add(Failure(f"{name}:{line_no}", "input", error.reason, str(error), str(p)))

        rows = iter_numbered_release_rows(
            p, on_error=on_error, max_line_bytes=max_line_bytes, max_caption_chars=max_caption_chars
        )
        for line_no, row in rows:
            cols["youtube_id"].append(row.youtube_id)
            cols["start_ms"].append(row.start_ms)
            cols["end_ms"].append(row.end_ms)
            cols["caption"].append(row.caption)
            cols["aesthetic"].append(row.aesthetic_score)
            cols["umt"].append(row.umt_score)
            cols["umt_key"].append(row.umt_key)
            cols["extra"].append(json.dumps(row.extra, ensure_ascii=False) if row.extra else None)
            cols["file"].append(fi)
            cols["line"].append(line_no)
            cols["pos"].append(fi << 40 | line_no)
            if len(cols["pos"]) >= BATCH_ROWS // 8:
                yield batch()
    if cols["pos"]:
        yield batch()


def _partition(
    batches: Iterator[Any], folder: Path, prefix: str, fanout: int, seed: int
) -> list[Path]:
    """Rows -> `fanout` Arrow IPC files by crc32(video id, seed) % fanout; the non-empty ones,
    in partition order. A video's rows all go to one partition, in the order they came."""
    import zlib

    import numpy as np
    import pyarrow as pa

    schema = _row_schema()
    paths = [folder / f"{prefix}{k:03d}.arrow" for k in range(fanout)]
    sinks: dict[int, Any] = {}
    writers: dict[int, Any] = {}
    pending: list[list[Any]] = [[] for _ in range(fanout)]
    counts = [0] * fanout

    def flush(k: int) -> None:
        if not pending[k]:
            return
        if k not in writers:
            sinks[k] = pa.OSFile(str(paths[k]), "wb")
            writers[k] = pa.ipc.new_stream(sinks[k], schema)
        writers[k].write_table(pa.Table.from_batches(pending[k], schema).combine_chunks())
        pending[k].clear()
        counts[k] = 0

    try:
        for batch in batches:
            if fanout == 1:
                pending[0].append(batch)
                counts[0] += batch.num_rows
                if counts[0] >= PENDING_ROWS:
                    flush(0)
                continue
            ids = batch.column(0).to_pylist()
            keys = np.fromiter(
                (zlib.crc32(i.encode(), seed) % fanout for i in ids), np.int64, len(ids)
            )
            order = np.argsort(keys, kind="stable")
            bounds = np.searchsorted(keys[order], np.arange(fanout + 1))
            for k in range(fanout):
                a, b = bounds[k], bounds[k + 1]
                if a == b:
                    continue
                pending[k].append(batch.take(pa.array(order[a:b])))
                counts[k] += b - a
                if counts[k] >= PENDING_ROWS:
                    flush(k)
        for k in range(fanout):
            flush(k)
    finally:
        for w in writers.values():
            w.close()
        for f in sinks.values():
            f.close()
    return [paths[k] for k in range(fanout) if k in writers]


def _read_batches(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    with pa.OSFile(str(path), "rb") as f:
        yield from pa.ipc.open_stream(f)


def _process(part: Path, out: _Parts, numbering: _Numbering, level: int) -> None:
    """One partition -> its videos numbered and its rows appended to the manifest (sorted by
    video, then input position); a partition too large to hold is split again first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if numbering.full:
        part.unlink()
        return
    size = part.stat().st_size
    if size > PARTITION_BYTES and level <= SPLIT_LEVELS:
        fanout = min(MAX_FANOUT, -(-size // PARTITION_BYTES) + 1)
        subs = _partition(_read_batches(part), part.parent, f"{part.stem}_", fanout, seed=level)
        part.unlink()
        for sub in subs:
            _process(sub, out, numbering, level + 1)
        return
    with pa.OSFile(str(part), "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    part.unlink()
    numbering.rows_read += table.num_rows
    # a partition's rows are in input order, and unique() keeps the order of first occurrence
    ids, numbers, sources, remotes = [], [], [], []
    for vid in pc.unique(table.column("youtube_id")).to_pylist():
        if numbering.full:
            break
        source, failure, remote = numbering.source_of(vid)
        if failure is not None:
            numbering.failures.add(failure)
            continue
        ids.append(vid)
        numbers.append(numbering.videos)
        sources.append(source)
        remotes.append(remote)
        numbering.videos += 1
    if not ids:
        return
    # each row's video number (null: a video left out), then the rows in (video, pos) order,
    # taken a row group at a time
    which = pc.index_in(table.column("youtube_id"), value_set=pa.array(ids, pa.string()))
    video = pc.take(pa.array(numbers, pa.int64()), which)
    keep = video.length() - video.null_count
    order = pc.sort_indices(  # nulls (rows of videos left out) sort last
        pa.table({"video": video, "pos": table.column("pos")}),
        sort_keys=[("video", "ascending"), ("pos", "ascending")],
    ).slice(0, keep)
    sources_by = pa.array(sources, pa.string())
    remotes_by = pa.array(remotes, pa.bool_())
    schema = _manifest_schema()

    def tables() -> Iterator[Any]:
        for a in range(0, keep, ROW_GROUP_ROWS):
            take = order.slice(a, ROW_GROUP_ROWS)
            rows = table.take(take)
            nums = pc.take(video, take)
            at = pc.take(which, take)
            extra = {
                "shard": pa.array(nums.to_numpy() // numbering.per_shard, pa.int64()),
                "video": nums,
                "source": pc.take(sources_by, at),
                "remote": pc.take(remotes_by, at),
            }
            cols = [extra[n] if n in extra else rows.column(n) for n in schema.names]
            yield pa.table(cols, schema=schema)

    out.write(tables(), numbers[0], numbers[-1])
    numbering.rows += keep
