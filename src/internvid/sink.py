"""The shard sink of `internvid run`: clips into WebDataset tars with parquet sidecars."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from internvid.engine.sample import Sample
from internvid.io.shards import shard_name, write_shard
from internvid.io.storage import Store
from internvid.io.tables import video_to_row

SCRATCH = Path("_work") / "tmp"  # under the output folder: clip files until their shard is written


class ShardSink:
    """Writes `shards/NNNNN.tar` + `shards/NNNNN.parquet` per work shard, then cleans scratch."""

    def __init__(
        self, out_dir: str | Path, keep_downloads: bool = False, store: Store | None = None
    ):
        self.out_dir = Path(out_dir)
        # a remote run folder (`out_dir` is its staging folder): each shard's tar and sidecar
        # are uploaded as soon as written, then its marker (the commit point) — from the worker
        # that made them, so nodes that share no disk need nothing else
        self.store = store
        self.shard_dir = self.out_dir / "shards"
        self.scratch = self.out_dir / SCRATCH
        self.downloads = self.out_dir / "downloads"
        self.keep_downloads = keep_downloads

    def clear_shard(self, index: int, samples: list[Sample]) -> None:
        for suffix in (".tar", ".parquet"):
            (self.shard_dir / f"{shard_name(index)}{suffix}").unlink(missing_ok=True)
            if self.store is not None:  # an attempt killed between its uploads and its marker
                self.store.rm(f"shards/{shard_name(index)}{suffix}")
        for s in samples:
            shutil.rmtree(self.scratch / s.id, ignore_errors=True)

    def write_shard(self, index: int, samples: list[Sample]) -> dict[str, Any]:
        clips = []
        for s in samples:
            for c in s.clips:
                c.shard = index
                clips.append(c)
        files = {k: v for s in samples for k, v in s.files.items()}
        if clips:
            write_shard(self.shard_dir, index, clips, files)
            if self.store is not None:
                tar = self.shard_dir / f"{shard_name(index)}.tar"
                self.store.put(tar, f"shards/{tar.name}")
                self.store.put(tar.with_suffix(".parquet"), f"shards/{shard_name(index)}.parquet")
                tar.unlink()  # it lives in the store now; the small sidecar stays for finalize
        for s in samples:
            shutil.rmtree(self.scratch / s.id, ignore_errors=True)
            if (
                not self.keep_downloads
                and s.video.path
                and Path(s.video.path).resolve().parent == self.downloads.resolve()
            ):
                Path(s.video.path).unlink(missing_ok=True)
        return {
            "clips": len(clips),
            "seconds_of_clips": round(sum(c.duration for c in clips), 3),
            "videos": [video_to_row(s.video) for s in samples],
        }

    def committed(self, index: int, marker: Path) -> None:
        """The shard's marker is written: publish it (after the shard's files) to the store."""
        if self.store is not None:
            self.store.put(marker, f"_work/{marker.name}")
