"""The training index: one cached Parquet file of clips per shard tar, read lazily (memory does
not grow with the number of clips)."""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INDEX_VERSION = 1  # of the index files' layout: another version is rebuilt, never read
CACHED_SHARDS = 64  # shards whose index tables stay in memory (least recently used goes first)
CACHE_ENV = "INTERNVID_CACHE_DIR"  # where index files are kept (default ~/.cache/internvid)


@dataclass(frozen=True)
class Member:
    """Where one file of a clip lies inside its tar: byte offset of the data, and its size."""

    offset: int
    size: int


@dataclass(frozen=True)
class TrainClip:
    """One clip of the index: its shard, key, video member, caption and clip window."""

    shard: int  # index into ShardClips.shards
    key: str  # the clip id (member names are KEY.mp4 / KEY.txt / KEY.json)
    video: Member | None  # the KEY.mp4 member; None when the clip is stored as frames
    caption: str  # KEY.txt (the best caption the pipeline had)
    start: float  # seconds into the file where the clip starts (copy cuts start earlier)
    duration: float  # clip length in seconds; 0: unknown (the whole file)
    frames: tuple[Member, ...] = ()  # pre-extracted frames KEY.00.jpg, KEY.01.jpg ... in order


FRAME_EXTS = ("jpg", "jpeg", "png", "webp")  # image members of frame shards


def _split_name(name: str) -> tuple[str, str]:
    """'KEY.mp4' -> ('KEY', 'mp4'): the extension is the last suffix (clip ids may hold dots)."""
    key, _, ext = name.rpartition(".")
    return key, ext.lower()


def index_shard(path: Path, shard: int) -> tuple[list[TrainClip], dict[str, int]]:
    """Read one tar's headers (and the small .txt/.json members) -> its trainable clips.

    Returns the clips and counts of what was left out: clips with no video file, with an
    empty caption, or with an unreadable KEY.json.
    """
    files: dict[str, dict[str, Member]] = {}
    small: dict[tuple[str, str], bytes] = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, ext = _split_name(info.name)
            if ext in FRAME_EXTS:  # KEY.NN.jpg: frame NN of clip KEY
                key, _, number = key.rpartition(".")
                if not number.isdigit():
                    continue
                ext = f"frame{int(number):06d}"
            files.setdefault(key, {})[ext] = Member(info.offset_data, info.size)
            if ext in ("txt", "json"):
                fh = tar.extractfile(info)
                small[(key, ext)] = fh.read() if fh is not None else b""
    clips, skipped = [], {"no_video": 0, "no_caption": 0, "bad_json": 0}
    for key in sorted(files):
        members = files[key]
        frames = tuple(members[k] for k in sorted(members) if k.startswith("frame"))
        if "mp4" not in members and not frames:
            skipped["no_video"] += 1
            continue
        caption = small.get((key, "txt"), b"").decode("utf-8", "replace").strip()
        if not caption:
            skipped["no_caption"] += 1
            continue
        start, duration = 0.0, 0.0
        if (key, "json") in small:
            try:
                row = json.loads(small[(key, "json")])
                meta = row.get("meta") or {}
                meta = json.loads(meta) if isinstance(meta, str) else meta
                start = float(meta.get("start_shift") or 0.0)
                duration = float(row.get("duration") or 0.0)
            except (ValueError, TypeError, AttributeError):
                skipped["bad_json"] += 1
                start, duration = 0.0, 0.0
        video = members.get("mp4") if not frames else None
        clips.append(TrainClip(shard, key, video, caption, start, duration, frames))
    return clips, skipped


def cache_root() -> Path:
    """$INTERNVID_CACHE_DIR, else $XDG_CACHE_HOME/internvid, else ~/.cache/internvid."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "internvid"


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),  # the clip id (member names KEY.mp4 / KEY.txt ...)
            ("video_offset", pa.int64()),  # byte offset of KEY.mp4 in the tar, null: frames
            ("video_size", pa.int64()),  # its size in bytes, null: frames
            ("caption", pa.string()),  # the caption as training reads it (pre_text applied)
            ("start", pa.float64()),  # seconds into the file where the clip starts
            ("duration", pa.float64()),  # clip length in seconds, 0: the whole file
            ("frame_offsets", pa.list_(pa.int64())),  # KEY.NN.jpg members in order: offsets
            ("frame_sizes", pa.list_(pa.int64())),  # ... and their sizes
        ]
    )


def index_file_for(tar: Path, pre_text: bool, min_words: int, root: Path) -> Path:
    """The index file of `tar` under `root`: named by the tar's path, size and mtime and the
    caption settings, so a changed tar or setting gets a new index."""
    st = tar.stat()
    ident = f"{tar.resolve()}|{st.st_size}|{st.st_mtime_ns}|{pre_text}|{min_words}"
    digest = hashlib.sha1(ident.encode()).hexdigest()[:20]
    return root / "train-index" / f"v{INDEX_VERSION}" / f"{tar.stem[:40]}-{digest}.parquet"


def build_index_file(
    tar: Path, dest: Path, pre_text: bool, min_words: int
) -> tuple[int, dict[str, int]]:
    """Index one tar into `dest` (written to a temp name, then renamed): its clips with a
    caption of at least `min_words` words. Returns (clips kept, clips left out by reason)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from internvid.models.text import pre_text as normalise

    found, skipped = index_shard(tar, 0)
    cols: dict[str, list[Any]] = {f.name: [] for f in _schema()}
    kept = 0
    for c in found:
        caption = normalise(c.caption) if pre_text else c.caption
        if len(caption.split()) < min_words:
            continue
        kept += 1
        cols["key"].append(c.key)
        cols["video_offset"].append(c.video.offset if c.video else None)
        cols["video_size"].append(c.video.size if c.video else None)
        cols["caption"].append(caption)
        cols["start"].append(c.start)
        cols["duration"].append(c.duration)
        cols["frame_offsets"].append([m.offset for m in c.frames])
        cols["frame_sizes"].append([m.size for m in c.frames])
    skipped = {**skipped, "short_caption": len(found) - kept}
    schema = _schema().with_metadata({"skipped": json.dumps(skipped)})
    table = pa.table([cols[f.name] for f in _schema()], schema=schema)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, dest)  # ranks of one job may index the same tar: the last rename wins
    return kept, skipped


def _read_counts(path: Path) -> tuple[int, dict[str, int]] | None:
    """(clips, skipped) from an index file's footer; None when it is missing or unreadable."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        skipped = json.loads(meta.metadata[b"skipped"])
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return meta.num_rows, skipped


class ClipIndex(Sequence):
    """The clips of `shards` in shard order, then key order: item i -> TrainClip. Holds one
    count per shard; a shard's clips are read from its index file when first asked for."""

    def __init__(
        self,
        shards: Sequence[Path],
        pre_text: bool = True,
        min_words: int = 2,
        cache_dir: str | Path | None = None,
    ) -> None:
        root = Path(cache_dir) if cache_dir else cache_root()
        self.files: list[Path] = []
        counts = np.zeros(len(shards), np.int64)
        self.skipped: dict[str, int] = {}  # reason -> clips left out of the index
        built = 0
        for i, tar in enumerate(shards):
            dest = index_file_for(Path(tar), pre_text, min_words, root)
            got = _read_counts(dest)
            if got is None:
                got = build_index_file(Path(tar), dest, pre_text, min_words)
                built += 1
            counts[i] = got[0]
            for k, v in got[1].items():
                self.skipped[k] = self.skipped.get(k, 0) + v
            self.files.append(dest)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # (shards + 1,) first item of each
        self._cache: OrderedDict[int, Any] = OrderedDict()  # shard -> its Arrow table
        self._lock = threading.Lock()  # loader threads share the index
        log.info("training index: %d shards (%d indexed now) under %s", len(shards), built, root)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Item `index` -> (shard, position among that shard's clips)."""
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} of {len(self)}")
        shard = bisect.bisect_right(self.starts, index) - 1
        return shard, index - int(self.starts[shard])

    def _table(self, shard: int) -> Any:
        """The shard's index as an Arrow table (a few KB a clip less than objects), cached."""
        import pyarrow.parquet as pq

        with self._lock:
            table = self._cache.get(shard)
            if table is not None:
                self._cache.move_to_end(shard)
                return table
        table = pq.read_table(self.files[shard])
        with self._lock:
            self._cache[shard] = table
            while len(self._cache) > CACHED_SHARDS:
                self._cache.popitem(last=False)
        return table

    def shard_clips(self, shard: int) -> list[Any]:
        """Every clip of one shard, in key order."""
        return _clips(shard, self._table(shard).to_pylist())

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        if index < 0:
            index += len(self)
        shard, at = self.locate(index)
        return _clips(shard, self._table(shard).slice(at, 1).to_pylist())[0]

    def __iter__(self) -> Iterator[Any]:
        for shard in range(len(self.files)):
            yield from self.shard_clips(shard)


def _clips(shard: int, rows: list[dict[str, Any]]) -> list[Any]:
    out = []
    for r in rows:
        off = r["video_offset"]
        frames = tuple(
            Member(o, n) for o, n in zip(r["frame_offsets"], r["frame_sizes"], strict=True)
        )
        video = Member(off, r["video_size"]) if off is not None else None
        out.append(
            TrainClip(shard, r["key"], video, r["caption"], r["start"], r["duration"], frames)
        )
    return out


class Subset(Sequence):
    """Items `order` of a sequence (the drawn subset, in draw order)."""

    def __init__(self, base: Sequence, order: np.ndarray) -> None:
        self.base, self.order = base, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        return self.base[int(self.order[index])]


def draw_subset(n: int, k: int, seed: int) -> np.ndarray:
    """`random.Random(seed).sample(range(n), k)` as an array (the same draws, the same order)
    without a Python list of n: the pool of CPython's algorithm is a NumPy array."""
    import math
    import random

    if not 0 <= k <= n:
        raise ValueError(f"cannot draw {k} of {n}")
    randbelow = random.Random(seed)._randbelow  # what Random.sample draws with
    dtype = np.int32 if n < 2**31 else np.int64
    result = np.empty(k, dtype)
    setsize = 21
    if k > 5:
        setsize += 4 ** math.ceil(math.log(k * 3, 4))
    if n <= setsize:
        pool = np.arange(n, dtype=dtype)
        for i in range(k):
            j = randbelow(n - i)
            result[i] = pool[j]
            pool[j] = pool[n - i - 1]
    else:
        selected: set[int] = set()
        for i in range(k):
            j = randbelow(n)
            while j in selected:
                j = randbelow(n)
            selected.add(j)
            result[i] = j
    return result
