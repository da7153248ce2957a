"""ViCLIP input preprocessing: frame sampling and frames -> normalised (T, 3, 224, 224) tensors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the official demo's normalisation (not CLIP's)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_FRAMES = 8  # frames per clip of the released models
IMAGE_SIZE = 224  # frame side of the released models

SampleMode = Literal["demo", "middle"]


def sample_indices(
    num_frames_in_clip: int, n: int = NUM_FRAMES, mode: SampleMode = "demo"
) -> list[int]:
    """Indices of the `n` frames ViCLIP sees out of a clip of `num_frames_in_clip` frames.

    "demo": the official demo's `frames[::len // n][:n]`: every (len // n)-th frame from the
    first. It needs len >= n (the demo asserts it; its step would be 0): ValueError otherwise.
    "middle": the evaluation code's: the middle frame of each of n equal segments
    (`np.linspace(0, len, n + 1)` cut points); a clip shorter than n gives one index per frame,
    padded with the last one to n.
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
        picked = [int((a + b - 1) // 2) for a, b in itertools.pairwise(cuts)]
        return picked + [picked[-1]] * (n - len(picked))
    raise ValueError(f"unknown sampling mode {mode!r} (expected 'demo' or 'middle')")


def frames_to_tensor(
    frames: Sequence[np.ndarray] | np.ndarray, size: int = IMAGE_SIZE, bgr: bool = False
) -> torch.Tensor:
    """HxWx3 uint8 frames -> (T, 3, size, size) float32, as the official demo's `frames2tensor`.

    Each frame is resized to size x size without cropping (cv2.resize, bilinear, on uint8),
    scaled to [0, 1] and normalised with the ImageNet mean/std (in float64, then float32).
    Frames are RGB; pass `bgr=True` for frames straight from cv2 (the demo flips them).
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = [frames]
    if len(frames) == 0:
        raise ValueError("no frames")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64).reshape(1, 1, 3)
    std = np.asarray(IMAGENET_STD, dtype=np.float64).reshape(1, 1, 3)
    out = np.empty((len(frames), 3, size, size), dtype=np.float32)  # (T, 3, size, size)
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i}: expected HxWx3 uint8, got {frame.dtype} {frame.shape}")
        if bgr:
            frame = frame[:, :, ::-1]
        resized = cv2.resize(np.ascontiguousarray(frame), (size, size))  # (size, size, 3) uint8
        normed = (resized / 255.0 - mean) / std  # float64, like the demo
        out[i] = normed.transpose(2, 0, 1)
    return torch.from_numpy(out)


def preprocess_clip(
    frames: Sequence[np.ndarray] | np.ndarray,
    n: int = NUM_FRAMES,
    mode: SampleMode = "demo",
    size: int = IMAGE_SIZE,
    bgr: bool = False,
) -> torch.Tensor:
    """All decoded frames of a clip -> the (n, 3, size, size) input of `ViCLIP.encode_video`."""
    picked = sample_indices(len(frames), n=n, mode=mode)
    return frames_to_tensor([frames[i] for i in picked], size=size, bgr=bgr)
