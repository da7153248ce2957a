"""Frame shards: JPEG frames pre-extracted from clip shards, so training decodes no video."""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Sequence
from pathlib import Path

import cv2

from internvid.io.remote import locked
from internvid.records import is_safe_id
from internvid.train.data import TrainClip, decode_at, expand_shards, index_shard, segment_times

log = logging.getLogger(__name__)


def is_safe_key(key: str) -> bool:
    """Whether a source shard's clip key may name members of the tars written here: our clip
    ids (records.is_safe_id), or dot-joined safe ids ("v.a_..."); never "..", "/", "" parts."""
    return all(is_safe_id(part) for part in key.split("."))


@locked("train-frames", arg="out")  # one writer per frame-shard folder
def write_frame_shards(
    source: str | Sequence[str],
    out: str | Path,
    frames: int = 16,
    short_side: int = 256,
    quality: int = 90,
) -> dict[str, int]:
    """Pre-extract training frames: for every clip of `source` shards, `frames` JPEGs at the
    middles of equal segments of its window (short side resized to `short_side`), written with
    its KEY.txt / KEY.json as out/NNNNN.tar (same names as the source shards, atomically).
    Every member name written is KEY + a suffix of ours; a source key that is not a safe id
    (`../../x`, `/abs/x`: `is_safe_key`) is left out and counted in `unsafe_keys`.

    Training then decodes JPEGs instead of video (`ShardClips` reads both). Returns counts.
    """
    from internvid.io.atomic import temp_name

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"clips": 0, "failed": 0, "shards": 0, "skipped_shards": 0, "unsafe_keys": 0}
    for path in expand_shards(source):
        target = out / path.name
        if target.is_file():  # done by an earlier, interrupted call
            counts["skipped_shards"] += 1
            continue
        clips, _ = index_shard(path, 0)
        tmp = temp_name(target)
        try:
            _extract_shard(path, clips, tmp, frames, short_side, quality, counts)
        except BaseException:
            tmp.unlink(missing_ok=True)  # never a half-written shard
            raise
        tmp.replace(target)
        counts["shards"] += 1
    return counts


def _extract_shard(
    path: Path,
    clips: list[TrainClip],
    tmp: Path,
    frames: int,
    short_side: int,
    quality: int,
    counts: dict[str, int],
) -> None:
    """Write the frame shard of one source shard to `tmp`."""
    from internvid.io.shards import add_member

    with open(path, "rb") as src, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for clip in clips:
            if clip.video is None:
                continue
            if not is_safe_key(clip.key):  # a hostile or foreign member name: never copied
                log.warning("%s: clip key %r is not a safe id: left out", path, clip.key[:200])
                counts["unsafe_keys"] += 1
                continue
            src.seek(clip.video.offset)
            data = src.read(clip.video.size)
            try:
                times = (
                    segment_times(clip.start, clip.duration, frames, None)
                    if clip.duration > 0
                    else None
                )
                images = decode_at(data, times, frames)
            except Exception as e:  # a broken clip: left out, counted, logged
                log.warning("%s: no frames extracted (%s)", clip.key, e)
                counts["failed"] += 1
                continue
            for i, img in enumerate(images):
                h, w = img.shape[:2]
                scale = short_side / min(h, w)
                if scale < 1:
                    size = (max(1, round(w * scale)), max(1, round(h * scale)))
                    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                ok, jpg = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
                if not ok:
                    raise RuntimeError(f"{clip.key}: JPEG encoding failed")
                add_member(tar, f"{clip.key}.{i:02d}.jpg", jpg.tobytes())
            add_member(tar, f"{clip.key}.txt", clip.caption.encode())
            counts["clips"] += 1
