"""WebDataset shards: `NNNNN.tar` (KEY.mp4 when cut, KEY.json, KEY.txt) and a parquet sidecar."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import IO

from internvid.io.atomic import temp_name
from internvid.io.tables import clip_to_row, clips_table, write_table_atomic
from internvid.records import Clip


def shard_name(index: int) -> str:
    return f"{index:05d}"


def sample_json(clip: Clip) -> dict:
    """KEY.json: the clip's flat row (the sidecar's columns), with meta as an object."""
    row = clip_to_row(clip)
    row["meta"] = json.loads(row["meta"])
    return row


def metadata_members(clip: Clip) -> dict[str, bytes]:
    """A clip's members beside its mp4, by extension: KEY.json (its flat row) and KEY.txt (its
    caption). Every tar we write (run, score, export) holds exactly these."""
    return {
        "json": json.dumps(sample_json(clip), ensure_ascii=False).encode(),
        "txt": clip.best_caption().encode(),
    }


def add_member(
    tar: tarfile.TarFile, name: str, data: bytes | Path | IO[bytes], size: int | None = None
) -> None:
    """Add bytes, a file streamed from disk (clips can be long), or `size` bytes streamed from
    an open file (another tar's member), as member `name`."""
    info = tarfile.TarInfo(name)
    info.mtime = 0  # deterministic archives: same clips, same bytes
    info.mode = 0o644
    if isinstance(data, Path):
        info.size = data.stat().st_size
        with open(data, "rb") as f:
            tar.addfile(info, f)
    elif isinstance(data, bytes):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        if size is None:
            raise ValueError(f"{name}: a streamed member needs its size")
        info.size = size
        tar.addfile(info, data)


def write_shard(folder: str | Path, index: int, clips: list[Clip], files: dict[str, str]) -> Path:
    """Write `folder/NNNNN.tar` and `folder/NNNNN.parquet` atomically; return the tar path.

    `files` maps clip_id -> clip file. The parquet sidecar is written after the tar, and both
    appear under their final names only once complete.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tar_path = folder / f"{shard_name(index)}.tar"
    tmp = temp_name(tar_path)
    try:
        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for clip in clips:
                    key = clip.clip_id
                    if key in files:  # no clip file when cut.mode is "none"
                        add_member(tar, f"{key}.mp4", Path(files[key]))
                    for ext, data in metadata_members(clip).items():
                        add_member(tar, f"{key}.{ext}", data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, tar_path)
    finally:
        tmp.unlink(missing_ok=True)
    write_table_atomic(clips_table(clips), folder / f"{shard_name(index)}.parquet")
    return tar_path
