"""The lazy training index: per-shard index files, cached by the tar's identity, the official
subset draw without a list of every clip."""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest

from internvid.train import index as idx
from internvid.train.data import ShardClips


def _tar(path: Path, captions: dict[str, str]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, caption in captions.items():
            for name, data in ((f"{key}.mp4", b"\x00" * 64), (f"{key}.txt", caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "shards"
    folder.mkdir()
    return [
        _tar(folder / "00000.tar", {f"a{i}": f"clip a number {i}" for i in range(5)}),
        _tar(folder / "00001.tar", {"short": "one"}),  # min_words 2: left out -> an empty shard
        _tar(folder / "00002.tar", {f"c{i}": f"clip c number {i}" for i in range(3)}),
    ]


@pytest.mark.parametrize(
    ("n", "k"),
    [(0, 0), (10, 0), (10, 3), (10, 10), (1000, 500), (1000, 5), (100_000, 7), (5000, 6)],
)
@pytest.mark.parametrize("seed", [0, 42])
def test_draw_subset_equals_random_sample(n: int, k: int, seed: int) -> None:
    """Both branches of CPython's Random.sample (the pool and the set): same draws, same order."""
    got = idx.draw_subset(n, k, seed)
    assert got.tolist() == random.Random(seed).sample(range(n), k)


def test_index_spans_shards_in_order(shards: list[Path], tmp_path: Path) -> None:
    index = idx.ClipIndex(shards, min_words=2, cache_dir=tmp_path / "cache")
    keys = [c.key for c in index]
    assert keys == [f"a{i}" for i in range(5)] + [f"c{i}" for i in range(3)]
    assert len(index) == 8 and index.skipped["short_caption"] == 1
    assert [index[i].key for i in (0, 4, 5, 7, -1)] == ["a0", "a4", "c0", "c2", "c2"]
    assert index[5].shard == 2 and index[5].caption == "clip c number 0"
    with pytest.raises(IndexError):
        index[8]


def test_index_files_are_reused_until_the_tar_changes(shards: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    idx.ClipIndex(shards, cache_dir=cache)
    files = sorted(cache.rglob("*.parquet"))
    assert len(files) == 3
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = idx.ClipIndex(shards, cache_dir=cache)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # read, not rebuilt
    assert len(again) == 8
    _tar(shards[2], {"z": "a changed shard"})
    os.utime(shards[2], ns=(1, 1))  # a new mtime whatever the clock's resolution
    changed = idx.ClipIndex(shards, cache_dir=cache)
    assert [c.key for c in changed][-1] == "z" and len(changed) == 6
    other = idx.ClipIndex(shards, pre_text=False, cache_dir=cache)  # other settings: own files
    assert len(sorted(cache.rglob("*.parquet"))) == 7 and len(other) == 6


def test_index_keeps_only_a_few_shards_decoded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(idx, "CACHED_SHARDS", 2)
    tars = [_tar(tmp_path / f"{s:05d}.tar", {f"k{s}_{i}": f"clip {s} {i}" for i in range(4)})
            for s in range(6)]  # fmt: skip
    index = idx.ClipIndex(tars, cache_dir=tmp_path / "cache")
    assert [index[i].key for i in range(0, 24, 4)] == [f"k{s}_0" for s in range(6)]
    assert list(index._cache) == [4, 5]  # the two last read; the others are files again


def test_a_torn_index_file_is_rebuilt(shards: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    idx.ClipIndex(shards, cache_dir=cache)
    victim = sorted(cache.rglob("00000-*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:20])  # cut short: not a Parquet file
    assert [c.key for c in idx.ClipIndex(shards, cache_dir=cache)][:2] == ["a0", "a1"]
    assert not list(cache.rglob("*.tmp"))


def test_shard_clips_subset_is_the_official_draw(shards: list[Path], tmp_path: Path) -> None:
    data = ShardClips([str(p) for p in shards], subset=0.5, subset_seed=7, cache_dir=tmp_path)
    every = [c.key for c in ShardClips([str(p) for p in shards], cache_dir=tmp_path).clips]
    assert [c.key for c in data.clips] == random.Random(7).sample(every, 4)
    assert data.skipped["not_in_subset"] == 4 and len(data) == 4
    assert isinstance(data.clips.order, np.ndarray) and data.clips.order.dtype == np.int32
