"""Middle frames of sample clips, from their files in the shard tars or else the source videos."""

from __future__ import annotations

import base64
import io
import json
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from internvid.report.data import column_values

log = logging.getLogger(__name__)

THUMB_WIDTH = 256  # pixels, width of the frames in the sample grid
JPEG_QUALITY = 80  # of the embedded frames


def jpeg_uri(rgb: Any) -> tuple[str, int, int]:
    """A frame scaled to THUMB_WIDTH wide as a JPEG data URI, with its size."""
    import cv2

    h, w = rgb.shape[:2]
    nw = min(THUMB_WIDTH, w)
    nh = max(1, round(h * nw / w))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) if nw != w else rgb
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii"), nw, nh


@dataclass
class Thumb:
    """A sample clip's middle frame (or why there is none)."""

    uri: str | None = None  # data: URI of the JPEG
    width: int = 0
    height: int = 0
    origin: str = ""  # where the frame came from, or why it is missing


def clip_offset(row: dict[str, Any]) -> float:
    """Seconds into the clip file of the clip's middle (copy mode files start earlier)."""
    try:
        meta = json.loads(row.get("meta") or "{}")
    except ValueError:
        meta = {}
    shift = meta.get("start_shift") if isinstance(meta, dict) else None
    duration = float(row.get("duration") or (row["end"] - row["start"]))
    return float(shift or 0.0) + duration / 2


def decode_thumb(src: str | io.BytesIO, t: float, origin: str) -> Thumb | None:
    """The frame nearest `t` seconds into `src` as a Thumb, or None when it does not decode."""
    import av

    from internvid.media.frames import frames_at

    try:
        (rgb,) = frames_at(src, [t])
        uri, w, h = jpeg_uri(rgb)
        return Thumb(uri, w, h, origin)
    except (av.error.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
        log.debug("report: no frame from %s at %.2f s: %s", origin, t, e)
        return None


def sample_thumbs(run_dir: Path, rows: list[dict[str, Any]], videos: Any) -> list[Thumb]:
    """Middle frames of `rows`: from the clip mp4 in its shard tar, else from the source video."""
    from internvid.io.shards import shard_name

    paths = video_paths(videos)
    out: list[Thumb] = [Thumb() for _ in rows]
    by_shard: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        if row.get("shard") is not None and row.get("status") != "split":
            by_shard.setdefault(int(row["shard"]), []).append(i)
    reasons = ["no clip file (cut mode none)"] * len(rows)
    for shard, idx in sorted(by_shard.items()):
        tar_path = run_dir / "shards" / f"{shard_name(shard)}.tar"
        if not tar_path.is_file():
            for i in idx:
                reasons[i] = f"shard {tar_path.name} missing"
            continue
        try:
            with tarfile.open(tar_path) as tar:
                for i in idx:
                    member = f"{rows[i]['clip_id']}.mp4"
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        reasons[i] = f"{member} not in {tar_path.name}"
                        continue
                    thumb = decode_thumb(
                        io.BytesIO(f.read()), clip_offset(rows[i]), f"{tar_path.name}: {member}"
                    )
                    if thumb is None:
                        reasons[i] = f"{member} in {tar_path.name} does not decode"
                    else:
                        out[i] = thumb
        except (OSError, tarfile.TarError) as e:
            log.warning("report: cannot read %s: %s", tar_path, e)
            for i in idx:
                reasons[i] = f"{tar_path.name} unreadable"
    for i, row in enumerate(rows):
        if out[i].uri:
            continue
        src = paths.get(row.get("video_id")) or row.get("source") or ""
        out[i] = source_thumb(src, float(row["start"]), float(row["end"]), reasons[i] + "; ")
    return out


def source_thumb(src: str, start: float, end: float, why: str = "") -> Thumb:
    """The frame at the middle of [start, end) of the source video `src` (a local file), or a
    Thumb whose origin says why there is none (prefixed by `why`)."""
    middle = (start + end) / 2
    if not src or not Path(src).is_file():
        return Thumb(origin=f"{why}source video not found")
    thumb = decode_thumb(src, middle, f"source video at {middle:.2f} s")
    return thumb if thumb is not None else Thumb(origin=f"{why}source video does not decode")


def video_paths(videos: Any) -> dict[str, str]:
    """Video id -> local path of videos.parquet (the downloaded file for a URL source)."""
    ids, paths = column_values(videos, "id"), column_values(videos, "path")
    return {i: p for i, p in zip(ids, paths, strict=True) if p} if paths else {}
