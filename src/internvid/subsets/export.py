"""A subset as training data: WebDataset shards or a Hugging Face parquet folder, resumable."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from internvid.io.atomic import (
    atomic_open,
    remove_temp_files,
    temp_name,
    write_json_atomic,
    write_jsonl_atomic,
)
from internvid.subsets.errors import SubsetError

# pyarrow, the tables and the shards are imported where they are used: `internvid --help`
# (cli/subset.py imports this module for its defaults) stays fast
if TYPE_CHECKING:
    import pyarrow as pa

    from internvid.engine.sample import Failure
    from internvid.records import Clip

log = logging.getLogger(__name__)

FORMATS = ("wds", "hf")  # wds: shards/NNNNN.tar + sidecars; hf: data/NNNNN.parquet + README.md
DEFAULT_CLIPS_PER_SHARD = 1000  # clips per tar (wds) or per parquet file (hf)
STATE_DIR = ".export"  # markers and the export's identity (hidden: `datasets` skips it)
VIDEO_COLUMN = "mp4"  # hf: the clip file's bytes
HF_ROW_GROUP_BYTES = 64 << 20  # hf: a row group is flushed past this many mp4 bytes
HF_ROW_GROUP_ROWS = 256  # ... or this many rows
HF_README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.parquet
---
# internvid subset

Clips of an `internvid subset`, one row each: the columns of `clips.parquet`
(docs/schema.md){video}. Load with `datasets.load_dataset("{{this folder}}", split="train")`.
"""


class ExportError(SubsetError):
    """An export that cannot start: no run folder, a target that is not an export, bad options."""


@dataclass
class ExportResult:
    """What `export_subset` wrote."""

    target: Path  # the export folder
    fmt: str  # wds or hf
    inputs: int  # rows of the subset
    clips: int  # clips written
    shards: int  # shard files written (wds tars / hf parquet files)
    resumed: int  # shards finished by an earlier, interrupted export and kept
    failures: int  # subset rows left out (failures.jsonl)
    clip_files: bool  # whether the run has clip files (cut.mode copy / exact)
    notes: list[str] = field(default_factory=list)  # things a reader must know

    def summary(self) -> str:
        kind = "tars" if self.fmt == "wds" else "parquet files"
        files = "" if self.clip_files else ", metadata only (the run has no clip files)"
        return (
            f"{self.clips:,} clips in {self.shards} {kind}{files}"
            + (f", {self.failures:,} left out" if self.failures else "")
            + (f" ({self.resumed} kept from an earlier export)" if self.resumed else "")
        )


def run_folder_of(input_path: str | os.PathLike[str]) -> Path:
    """The run folder a subset was made from: INPUT itself, or the folder of its clips.parquet."""
    path = Path(input_path)
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / "clips.parquet").is_file() or not (run_dir / "shards").is_dir():
        raise ExportError(
            f"{input_path} is not a run folder (clips.parquet + shards/): only a run's subset "
            "can be exported (release metadata has no clip files)"
        )
    return run_dir


def _cut_mode(run_dir: Path) -> str | None:
    """cut.mode of the run's config.yaml (None when it has none)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    cut = data.get("cut") if isinstance(data, dict) else None
    mode = cut.get("mode") if isinstance(cut, dict) else None
    return str(mode) if mode is not None else None


def _shard_name(index: int) -> str:
    from internvid.io.shards import shard_name

    return shard_name(index)


def _tar_has_mp4(path: Path) -> bool:
    with tarfile.open(path, "r:") as tar:
        return any(m.name.endswith(".mp4") for m in tar)


def _source_tar(run_dir: Path, shard: int) -> Path:
    return run_dir / "shards" / f"{_shard_name(shard)}.tar"


@dataclass
class _Plan:
    """Which subset rows go into which target shard, in the run's order."""

    rows: pa.Table  # the subset's rows (flat)
    shards: list[list[tuple[int, int | None]]]  # per target shard: (subset row, source shard)
    failures: list[Failure]  # subset rows that cannot be exported at all


def _plan(run_dir: Path, rows: pa.Table, clips_per_shard: int) -> _Plan:
    """Order the subset's clips as the run holds them (by source shard, then position), so each
    source tar is read once, front to back; cut that order into target shards."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from internvid.engine.sample import Failure

    ids = rows.column("clip_id")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise ExportError("the subset lists a clip more than once")
    run = pq.read_table(run_dir / "clips.parquet", columns=["clip_id", "shard"])
    run = run.append_column("_pos", pa.array(np.arange(len(run), dtype=np.int64)))
    sub = pa.table({"clip_id": ids, "_row": pa.array(np.arange(len(ids), dtype=np.int64))})
    joined = sub.join(run, "clip_id", join_type="left outer")
    missing = joined.filter(pc.is_null(joined.column("_pos"))).sort_by("_row")
    failures = [
        Failure(cid, "export", "not_in_run", f"clip {cid} is not in {run_dir / 'clips.parquet'}")
        for cid in missing.column("clip_id").to_pylist()
    ]
    found = joined.filter(pc.is_valid(joined.column("_pos"))).sort_by("_pos")
    order = list(
        zip(found.column("_row").to_pylist(), found.column("shard").to_pylist(), strict=True)
    )
    shards = [order[i : i + clips_per_shard] for i in range(0, len(order), clips_per_shard)]
    return _Plan(rows, shards, failures)


class _Target:
    """The export folder: its identity, markers, and the files of shard k."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder = folder
        self.fmt = fmt
        self.state = folder / STATE_DIR

    def open(self, source: dict[str, Any]) -> None:
        """Claim the folder: empty, or an export of the same format (kept for resuming)."""
        ident = self.state / "export.json"
        if ident.is_file():
            old = json.loads(ident.read_text())
            if old.get("format") != self.fmt:
                raise ExportError(
                    f"{self.folder} holds a {old.get('format')} export; remove it or choose "
                    f"another target for --format {self.fmt}"
                )
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise ExportError(f"{self.folder} exists and is not an export; choose another target")
        self.state.mkdir(parents=True, exist_ok=True)
        removed = remove_temp_files(self.folder)
        if removed:
            log.info("removed %d temp file(s) of an interrupted export", removed)
        write_json_atomic(ident, {"format": self.fmt, **source})

    def marker(self, k: int) -> Path:
        return self.state / f"{_shard_name(k)}.done.json"

    def files(self, k: int) -> list[Path]:
        if self.fmt == "wds":
            base = self.folder / "shards" / _shard_name(k)
            return [base.with_suffix(".tar"), base.with_suffix(".parquet")]
        return [self.folder / "data" / f"{_shard_name(k)}.parquet"]

    def done(self, k: int, digest: str) -> dict[str, Any] | None:
        """The marker of shard k when it holds this plan's digest and its files exist."""
        path = self.marker(k)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("digest") != digest:
            return None
        if data["clips"] and not all(p.is_file() for p in self.files(k)):
            return None
        return data

    def prune(self, keep: set[int]) -> None:
        """Remove the shard files and markers of shards this export does not have (an earlier,
        larger subset written into the same target)."""
        folder = self.folder / ("shards" if self.fmt == "wds" else "data")
        for p in [
            *self.state.glob("*.done.json"),
            *folder.glob("*.tar"),
            *folder.glob("*.parquet"),
        ]:
            stem = p.name.split(".")[0]
            if stem.isdigit() and int(stem) not in keep:
                p.unlink()


def _shard_clips(plan: _Plan, k: int) -> list[tuple[Clip, int | None]]:
    """The clips of target shard k, as they will be written (shard = k), with their source shard."""
    from internvid.io.tables import row_to_clip

    picked = plan.shards[k]
    rows = plan.rows.take([r for r, _ in picked]).to_pylist()
    out = []
    for row, (_, src) in zip(rows, picked, strict=True):
        clip = row_to_clip(row)
        clip.shard = k
        out.append((clip, src))
    return out


def _digest(clips: list[tuple[Clip, int | None]], fmt: str, sources: dict[int, int]) -> str:
    """What shard k is made of: its clips' JSON, the format, and the sizes of the source tars."""
    from internvid.io.shards import sample_json

    h = hashlib.sha256(f"{fmt}\n".encode())
    for clip, src in clips:
        h.update(json.dumps(sample_json(clip), ensure_ascii=False, sort_keys=True).encode())
        h.update(f"\n{src}:{sources.get(src, -1) if src is not None else -1}\n".encode())
    return h.hexdigest()


def _clip_files(
    run_dir: Path, clips: list[tuple[Clip, int | None]], failures: list[Failure]
) -> Iterator[tuple[Clip, tarfile.TarInfo | None, IO[bytes] | None]]:
    """(clip, member, stream) for each clip whose KEY.mp4 its source tar holds, in the tar's order;
    one pass over each source tar (data skipped by seeking, the scan stops once all are found).
    Clips without a file become failures."""
    from internvid.engine.sample import Failure

    groups: dict[int | None, dict[str, Clip]] = {}
    for clip, src in clips:
        groups.setdefault(src, {})[clip.clip_id] = clip
    for src, wanted in groups.items():
        path = _source_tar(run_dir, src) if src is not None else None
        if path is None or not path.is_file():
            why = "the clip has no shard" if src is None else f"{path} is missing"
            for cid, clip in wanted.items():
                failures.append(Failure(cid, "export", "no_shard", why, clip.source))
            continue
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".mp4"):
                    continue
                clip = wanted.pop(member.name[: -len(".mp4")], None)
                if clip is None:
                    continue
                with tar.extractfile(member) as stream:
                    yield clip, member, stream
                if not wanted:
                    break
        for cid, clip in wanted.items():
            failures.append(
                Failure(cid, "export", "no_clip_file", f"{path} holds no {cid}.mp4", clip.source)
            )


def _members(
    run_dir: Path,
    clips: list[tuple[Clip, int | None]],
    clip_files: bool,
    failures: list[Failure],
) -> Iterator[tuple[Clip, tarfile.TarInfo | None, IO[bytes] | None]]:
    if clip_files:
        yield from _clip_files(run_dir, clips, failures)
    else:
        for clip, _ in clips:
            yield clip, None, None


def _write_wds(
    run_dir: Path,
    target: _Target,
    k: int,
    clips: list[tuple[Clip, int | None]],
    clip_files: bool,
    schema: pa.Schema,
) -> tuple[int, list[Failure]]:
    """shards/NNNNN.tar (members in the run's order) and its sidecar, each under a temp name."""
    import pyarrow as pa

    from internvid.io.shards import add_member, metadata_members
    from internvid.io.tables import clip_to_row, write_table_atomic

    tar_path, sidecar = target.files(k)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    failures: list[Failure] = []
    written: list[Clip] = []
    tmp = temp_name(tar_path)
    try:
        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for clip, member, stream in _members(run_dir, clips, clip_files, failures):
                    key = clip.clip_id
                    if member is not None:
                        add_member(tar, f"{key}.mp4", stream, member.size)
                    for ext, data in metadata_members(clip).items():
                        add_member(tar, f"{key}.{ext}", data)
                    written.append(clip)
            f.flush()
            os.fsync(f.fileno())
        if written:
            os.replace(tmp, tar_path)
    finally:
        tmp.unlink(missing_ok=True)
    if written:
        table = pa.Table.from_pylist([clip_to_row(c) for c in written], schema=schema)
        write_table_atomic(table, sidecar)
    return len(written), failures


def _write_hf(
    run_dir: Path,
    target: _Target,
    k: int,
    clips: list[tuple[Clip, int | None]],
    clip_files: bool,
    schema: pa.Schema,
) -> tuple[int, list[Failure]]:
    """data/NNNNN.parquet: the rows (+ the mp4 bytes), in row groups of bounded size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from internvid.io.tables import clip_to_row

    (path,) = target.files(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clip_files:
        schema = schema.append(pa.field(VIDEO_COLUMN, pa.binary()))
    failures: list[Failure] = []
    n, batch, size = 0, [], 0
    tmp = temp_name(path)
    # the rows zstd, the mp4 bytes as they are (compressed video does not shrink)
    codecs = {f.name: "none" if f.name == VIDEO_COLUMN else "zstd" for f in schema}
    try:
        with pq.ParquetWriter(tmp, schema, compression=codecs) as writer:
            for clip, _, stream in _members(run_dir, clips, clip_files, failures):
                row = clip_to_row(clip)
                if stream is not None:
                    row[VIDEO_COLUMN] = stream.read()  # one clip at a time
                    size += len(row[VIDEO_COLUMN])
                batch.append(row)
                n += 1
                if size >= HF_ROW_GROUP_BYTES or len(batch) >= HF_ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch, size = [], 0
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        if n:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n, failures


def _finish(
    target: _Target, done: dict[int, dict[str, Any]], plan: _Plan, clip_files: bool
) -> list[Failure]:
    """clips.parquet (wds), README.md (hf) and failures.jsonl, from the finished shards."""
    from internvid.engine.sample import Failure
    from internvid.io.tables import concat_clip_tables, read_clips_table, write_table_atomic

    failures = list(plan.failures)
    for k in sorted(done):
        failures += [Failure(**f) for f in done[k]["failures"]]
    written = [k for k in sorted(done) if done[k]["clips"]]
    if target.fmt == "wds":
        tables = [read_clips_table(target.files(k)[1]) for k in written]
        write_table_atomic(concat_clip_tables(tables), target.folder / "clips.parquet")
    else:
        video = f", and `{VIDEO_COLUMN}`: the clip file's bytes (binary)" if clip_files else ""
        with atomic_open(target.folder / "README.md") as f:
            f.write(HF_README.format(video=video))
    write_jsonl_atomic(target.folder / "failures.jsonl", [f.to_json() for f in failures])
    return failures


def export_subset(
    run_dir: str | os.PathLike[str],
    subset_parquet: str | os.PathLike[str],
    target: str | os.PathLike[str],
    clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD,
    fmt: str = "wds",
) -> ExportResult:
    """Write the clips of `subset_parquet` (a subset of the run in `run_dir`) into `target`.

    wds: `target/shards/NNNNN.tar` (KEY.mp4 copied byte for byte from the run's tars, KEY.json
    and KEY.txt written from the subset's rows, shard = the new shard) + `NNNNN.parquet`
    sidecars + `clips.parquet`, like a run folder. hf: `target/data/NNNNN.parquet` (the rows and,
    when the run has clip files, their bytes in column `mp4`) + a README.md whose `configs`
    make `datasets.load_dataset(target)` load them as split train. Clips are in the run's order
    (source shard, then position), `clips_per_shard` to a file. Every file is written under a
    temp name and renamed; a marker in `target/.export/` commits each shard, so a rerun after a
    kill keeps the finished shards and writes the same bytes. Rows that cannot be exported (not
    in the run, no clip file) go to `target/failures.jsonl`.
    """
    from internvid.io import remote
    from internvid.io.storage import is_remote
    from internvid.io.tables import read_clips_table

    if is_remote(run_dir) or is_remote(target):  # fetched here, published there
        with (
            remote.input_path(run_dir, remote.not_downloads) as local_run,
            remote.staged(target, "export", local_lock=False) as local_target,
        ):
            return export_subset(local_run, subset_parquet, local_target, clips_per_shard, fmt)
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if clips_per_shard < 1:
        raise ExportError(f"--clips-per-shard must be at least 1, got {clips_per_shard}")
    run_dir = run_folder_of(run_dir)
    subset_parquet, out = Path(subset_parquet), Path(target)
    rows = read_clips_table(subset_parquet)
    plan = _plan(run_dir, rows, clips_per_shard)
    mode = _cut_mode(run_dir)
    if mode is None:  # no config.yaml: look at the first source tar
        first = next((s for sh in plan.shards for _, s in sh if s is not None), None)
        path = _source_tar(run_dir, first) if first is not None else None
        clip_files = path is not None and path.is_file() and _tar_has_mp4(path)
    else:
        clip_files = mode != "none"
    notes = []
    if not clip_files:
        notes.append(
            f"the run's cut.mode is {mode or 'none'}: no clip files, KEY.json and KEY.txt only"
            if fmt == "wds"
            else f"the run's cut.mode is {mode or 'none'}: no clip files, no {VIDEO_COLUMN} column"
        )
        log.warning("%s", notes[-1])
    tgt = _Target(out, fmt)
    tgt.open(
        {"run": str(run_dir), "subset": str(subset_parquet), "clips_per_shard": clips_per_shard}
    )
    tgt.prune(set(range(len(plan.shards))))
    sizes = {
        s: _source_tar(run_dir, s).stat().st_size
        for s in {s for sh in plan.shards for _, s in sh if s is not None}
        if _source_tar(run_dir, s).is_file()
    }
    schema = rows.schema
    write = _write_wds if fmt == "wds" else _write_hf
    done: dict[int, dict[str, Any]] = {}
    resumed = 0
    for k in range(len(plan.shards)):
        clips = _shard_clips(plan, k)
        digest = _digest(clips, fmt, sizes)
        marker = tgt.done(k, digest)
        if marker is not None:
            done[k] = marker
            resumed += 1
            continue
        n, failures = write(run_dir, tgt, k, clips, clip_files, schema)
        if not n:  # every clip failed: no files; drop the ones an earlier export left
            for p in tgt.files(k):
                p.unlink(missing_ok=True)
        done[k] = {
            "shard": k,
            "digest": digest,
            "clips": n,
            "failures": [f.to_json() for f in failures],
        }
        write_json_atomic(tgt.marker(k), done[k])
        log.info("shard %s: %d clips", _shard_name(k), n)
    failures = _finish(tgt, done, plan, clip_files)
    result = ExportResult(
        target=out,
        fmt=fmt,
        inputs=len(rows),
        clips=sum(d["clips"] for d in done.values()),
        shards=sum(1 for d in done.values() if d["clips"]),
        resumed=resumed,
        failures=len(failures),
        clip_files=clip_files,
        notes=notes,
    )
    log.info("export %s: %s", out, result.summary())
    return result
