"""Frames of a video file at given times or indices (display-rotated RGB): the one frame grabber."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

MAX_DECODE_FRAMES = 3000  # frames decoded after a seek before giving up on reaching a time
SEEK_AHEAD_S = 3.0  # a time this far past the last decoded frame is reached by a seek, not decoding

Source = str | os.PathLike | bytes | IO[bytes]  # a file path, the file's bytes, or a binary file


def frames_at(
    src: Source,
    times: Sequence[float] | None = None,
    *,
    indices: Sequence[int] | None = None,
    size: int | tuple[int, int] | None = None,
    max_decode: int = MAX_DECODE_FRAMES,
) -> list[np.ndarray]:
    """RGB frames (H, W, 3) uint8 of the first video stream of `src`, in the order asked for.

    `times` (seconds from the stream's start, any order): the frame nearest each time, i.e. the
    first frame shown at or after `t - half a frame`; a time past the end gives the last frame,
    a negative one the first. The first (smallest) time is reached by a seek to the keyframe at
    or before it, later ones by decoding on, or by another seek when they are more than
    SEEK_AHEAD_S past the last decoded frame; after `max_decode` frames of one seek the frame
    reached is taken. `indices` (instead of times): the N-th decoded frame, counted from the
    start (decodes from the start; IndexError past the end).
    Frames are turned upright by the stream's display rotation, then resized to `size`: an int
    is the width (height keeps the aspect ratio), a pair is (width, height); OpenCV INTER_AREA.
    ValueError when there is no video stream or no frame.
    """
    import av

    if (times is None) == (indices is None):
        raise ValueError("give either times or indices")
    if isinstance(src, bytes):
        src = io.BytesIO(src)
    with av.open(src, metadata_errors="ignore") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if indices is not None:
            frames = _by_index(container, stream, list(indices))
        else:
            frames = _by_time(container, stream, [float(t) for t in times], max_decode)
    return [_resize(f, size) for f in frames]


def _upright(frame: Any) -> np.ndarray:
    """A decoded frame as RGB, rotated by its display rotation."""
    img = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def _resize(img: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return img
    import cv2

    h, w = img.shape[:2]
    if isinstance(size, int):
        nw, nh = size, max(1, round(h * size / w))
    else:
        nw, nh = size
    if (nw, nh) == (w, h):
        return img
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


def _by_index(container: Any, stream: Any, indices: list[int]) -> list[np.ndarray]:
    """The frames at `indices` (0 = first decoded frame), in one pass from the start."""
    if any(i < 0 for i in indices):
        raise IndexError(f"negative frame index in {indices}")
    if not indices:
        return []
    wanted, last = set(indices), max(indices)
    got: dict[int, np.ndarray] = {}
    n = 0
    for n, frame in enumerate(container.decode(stream), 1):
        if n - 1 in wanted:
            got[n - 1] = _upright(frame)
        if n - 1 >= last:
            break
    if not n:
        raise ValueError("no video frames")
    missing = sorted(wanted - set(got))
    if missing:
        raise IndexError(f"frame {missing[0]} asked for; the video has {n} frames")
    return [got[i] for i in indices]


def _by_time(container: Any, stream: Any, times: list[float], max_decode: int) -> list[np.ndarray]:
    """The frame nearest each of `times` (see `frames_at`), seeking forward as needed."""
    base = float(stream.time_base) if stream.time_base else 0.0
    first = float(stream.start_time * stream.time_base) if stream.start_time and base else 0.0
    half = 0.5 / float(stream.average_rate or 25)
    out: list[np.ndarray | None] = [None] * len(times)
    decoded = None  # the decode iterator since the last seek
    current = None  # the last decoded frame
    current_rgb: np.ndarray | None = None  # it as an upright array, once converted
    count = 0  # frames decoded since the last seek
    capped = False  # the last time was given up on after max_decode frames
    for i in sorted(range(len(times)), key=times.__getitem__):
        t = max(times[i], 0.0)
        target = first + t
        far = (
            current is not None
            and current.time is not None
            and target - half - current.time > SEEK_AHEAD_S
        )
        if decoded is None or capped or far:
            if t > 0 and base:
                container.seek(int(target / base), stream=stream, backward=True)
            decoded = container.decode(stream)
            current, current_rgb, count, capped = None, None, 0, False
        reached = current is not None and (current.time is None or current.time >= target - half)
        if not reached:
            for frame in decoded:
                current, current_rgb, count = frame, None, count + 1
                if frame.time is None or frame.time >= target - half:
                    break
                if count > max_decode:
                    capped = True
                    break
        if current is None:
            raise ValueError("no video frames")
        if current_rgb is None:
            current_rgb = _upright(current)
            out[i] = current_rgb
        else:  # the frame of an earlier time too: each answer is an array of its own
            out[i] = current_rgb.copy()
    return out  # type: ignore[return-value]
