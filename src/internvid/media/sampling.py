"""Which frames of a clip ViCLIP sees: the official evaluation and demo index rules (no torch)."""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np

NUM_FRAMES = 8  # frames per clip of the released models
SampleMode = Literal["demo", "middle"]


def sample_indices(
    num_frames_in_clip: int, n: int = NUM_FRAMES, mode: SampleMode = "demo"
) -> list[int]:
    """Indices of the `n` frames ViCLIP sees out of a clip of `num_frames_in_clip` frames.

    "middle": the official evaluation sampling, `get_frame_indices(n, len, sample="middle")` of
    ViCLIP's `dataset/video_utils.py`: `min(n, len)` segments cut at
    `np.linspace(0, len, segments + 1).astype(int)`, segment [a, b) gives frame `(a + b - 1) // 2`
    (the middle of a..b-1, rounded down); a clip shorter than n gives every frame once, padded
    with the last one to n.
    "demo": the official demo's `frames[::len // n][:n]`: every (len // n)-th frame from the
    first. It needs len >= n (the demo asserts it; its step would be 0): ValueError otherwise.

    Every "segments" frame choice in the project goes through this function: the score stage
    and search (`FrameNeed(kind="segments").indices`), evaluation, and training's decoding of a
    clip of unknown length (`train.data.decode_at`).
    """
    total, n = int(num_frames_in_clip), int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if total < 1:
        raise ValueError(f"a clip needs at least one frame, got {total}")
    if mode == "demo":
        if total < n:
            raise ValueError(f"demo sampling needs at least {n} frames, the clip has {total}")
        step = total // n
        return list(range(0, total, step))[:n]
    if mode == "middle":
        segments = min(n, total)
        cuts = np.linspace(0, total, num=segments + 1).astype(int)
        picked = [(int(a) + int(b) - 1) // 2 for a, b in itertools.pairwise(cuts)]
        return picked + [picked[-1]] * (n - segments)
    raise ValueError(f"unknown sampling mode {mode!r} (expected 'demo' or 'middle')")
