"""ViCLIP input preprocessing: frame sampling and frames -> normalised (T, 3, 224, 224) tensors."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

# the one frame-index rule (torch-free: the split's decode pass uses it too)
from internvid.media.sampling import NUM_FRAMES, SampleMode, sample_indices

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SIZE",
    "NUM_FRAMES",
    "SampleMode",
    "frames_to_tensor",
    "preprocess_clip",
    "sample_indices",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the official demo's normalisation (not CLIP's)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SIZE = 224  # frame side of the released models


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
