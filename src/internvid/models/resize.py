"""Frame resizing of the official ViCLIP evaluation (torchvision's tensor `Resize`), written in torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from internvid.models.preprocess import IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD, frames_to_tensor

# --resize choices:
# "bicubic"     the official test transform, `Resize((224, 224), BICUBIC)` on uint8 (T, 3, H, W)
#               tensors with the torchvision it pins (0.15.2), whose default for tensors is no
#               antialiasing;
# "bicubic-aa"  the same with antialias=True (the default of torchvision >= 0.17);
# "bilinear"    the official demo's cv2.resize (bilinear on uint8), `preprocess.frames_to_tensor`.
RESIZE_MODES = ("bicubic", "bicubic-aa", "bilinear")


def resize_uint8(
    images: torch.Tensor, size: int | tuple[int, int], *, antialias: bool = False
) -> torch.Tensor:
    """(..., H, W) uint8 -> (..., h, w) uint8, as torchvision's `Resize(size, BICUBIC)` on a uint8
    tensor: cast to float32, `interpolate(mode="bicubic", align_corners=False, antialias=...)`
    (Keys' cubic with a = -0.75, edge pixels repeated; with antialias PIL's a = -0.5 filter
    widened by the scale), clamp to [0, 255], round half to even, cast back. An int `size` is
    both sides (no aspect-preserving resize: the official transform gives both)."""
    if images.dtype != torch.uint8 or images.ndim < 2:
        raise ValueError(
            f"expected a (..., H, W) uint8 tensor, got {images.dtype} {tuple(images.shape)}"
        )
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be positive, got {size}")
    lead, (h, w) = images.shape[:-2], images.shape[-2:]
    if (h, w) == (out_h, out_w):
        return images.clone()
    x = images.reshape(-1, 1, h, w).to(torch.float32)  # interpolate wants (N, C, H, W)
    y = torch.nn.functional.interpolate(
        x, size=(out_h, out_w), mode="bicubic", align_corners=False, antialias=antialias
    )
    y = torch.round(y.clamp(0.0, 255.0))  # torch.round: half to even, as torchvision's cast
    return y.to(torch.uint8).reshape(*lead, out_h, out_w)


def eval_frames_to_tensor(
    frames: Sequence[np.ndarray] | np.ndarray, size: int = IMAGE_SIZE, mode: str = "bicubic"
) -> torch.Tensor:
    """HxWx3 RGB uint8 frames -> (T, 3, size, size) float32 ViCLIP input.

    "bicubic"/"bicubic-aa": the official test transform: `resize_uint8`, then /255 and the
    ImageNet mean/std, in float32 (torchvision's ToTensor-free path: `x.float().div(255)` and
    `Normalize`). "bilinear": the demo's `frames_to_tensor` (cv2 bilinear, float64 normalise).
    """
    if mode == "bilinear":
        return frames_to_tensor(frames, size=size)
    if mode not in RESIZE_MODES:
        raise ValueError(
            f"unknown resize mode {mode!r} (expected one of {', '.join(RESIZE_MODES)})"
        )
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = [frames]
    if len(frames) == 0:
        raise ValueError("no frames")
    for i, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {i}: expected HxWx3 uint8, got {frame.dtype} {frame.shape}")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames differ in shape: {sorted(shapes)}")
    video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    resized = resize_uint8(video, size, antialias=mode == "bicubic-aa")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return ((resized.float() / 255.0 - mean) / std).contiguous()
