"""Decoding evaluation videos and encoding videos, captions and class prompts with a ViCLIP."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from internvid.eval.prompts import class_prompts
from internvid.log import progress_ticker

if TYPE_CHECKING:  # torch and numpy load inside the functions: `internvid --help` stays fast
    import numpy as np
    import torch

log = logging.getLogger(__name__)

DEFAULT_BATCH = 16  # clips per encode_video batch
TEXT_BATCH = 256  # captions / prompts per encode_text batch


def _no_grad(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`@torch.no_grad()` that imports torch only when the function runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper


def decode_clip(
    path: str | Path,
    num_frames: int = 8,
    mode: str = "middle",
    size: int = 224,
    resize: str = "bicubic",
) -> torch.Tensor:
    """Decode a video with PyAV -> its (num_frames, 3, size, size) ViCLIP input.

    `resize` (`models.resize.RESIZE_MODES`): "bicubic" is the official test transform
    (torchvision bicubic on uint8, no antialiasing), "bilinear" the demo's cv2 resize. When the
    container states its frame count, only the sampled frames are converted to RGB arrays
    (memory stays small for long videos); if the decoded count disagrees, every frame is kept
    and the indices are taken from the true count. (Not `media.frames.frames_at`: it turns
    frames upright by the display rotation, which this never did, and stops at the last wanted
    index, so it cannot notice a stated count that is wrong.)
    """
    import av

    from internvid.models.preprocess import sample_indices
    from internvid.models.resize import eval_frames_to_tensor

    def pick(total: int) -> list[int]:
        return sample_indices(total, n=num_frames, mode=mode)  # type: ignore[arg-type]

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stated = int(stream.frames or 0)
        wanted = set(pick(stated)) if stated >= (num_frames if mode == "demo" else 1) else None
        kept: dict[int, np.ndarray] = {}
        count = 0
        for count, frame in enumerate(container.decode(stream), 1):
            if wanted is None or count - 1 in wanted:
                kept[count - 1] = frame.to_ndarray(format="rgb24")
    if count == 0:
        raise ValueError(f"{path}: no video frames decoded")
    if wanted is not None and count != stated:
        log.debug("%s: %d frames stated, %d decoded; decoding again", path, stated, count)
        return _decode_all(path, pick, size, resize)
    return eval_frames_to_tensor([kept[i] for i in pick(count)], size=size, mode=resize)


def _decode_all(
    path: str | Path, pick: Callable[[int], list[int]], size: int, resize: str = "bicubic"
) -> torch.Tensor:
    import av

    from internvid.models.resize import eval_frames_to_tensor

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return eval_frames_to_tensor([frames[i] for i in pick(len(frames))], size=size, mode=resize)


@_no_grad
def encode_videos(
    model: Any,
    paths: Sequence[Path],
    *,
    mode: str = "middle",
    resize: str = "bicubic",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
) -> torch.Tensor:
    """(V, D) normalised float32 embeddings of videos (decoded in `workers` threads)."""
    import torch

    cfg = model.config
    tick = progress_ticker("videos", len(paths))
    out = []

    def load(p: Path) -> torch.Tensor:
        return decode_clip(p, cfg.num_frames, mode, cfg.image_size, resize)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        clips = pool.map(load, paths)
        batch: list[torch.Tensor] = []
        for i, clip in enumerate(clips, 1):
            batch.append(clip)
            if len(batch) == batch_size or i == len(paths):
                x = torch.stack(batch).to(model.device, model.dtype)  # (B, T, 3, H, W)
                out.append(model.encode_video(x, normalize=True).float().cpu())
                batch = []
                tick(i)
    return torch.cat(out)


@_no_grad
def encode_texts(model: Any, texts: Sequence[str], batch_size: int = TEXT_BATCH) -> torch.Tensor:
    """(N, D) normalised float32 embeddings of texts, tokenised as given (see `normalise_texts`)."""
    import torch

    from internvid.models.tokenizer import tokenize

    out = []
    for start in range(0, len(texts), batch_size):
        ids = tokenize(list(texts[start : start + batch_size]), model.config.context_length)
        out.append(model.encode_text(ids.to(model.device), normalize=True).float().cpu())
    return torch.cat(out)


def average_prompts(prompt_emb: torch.Tensor, average: str = "official") -> torch.Tensor:
    """(C, P, D) normalised prompt embeddings -> (C, D) class embeddings.

    "official": their plain mean, so a video's score is the mean of its P prompt cosines (the
    official `get_sim` with (C, P, D) text features: cosines per prompt, then `.mean(1)`);
    "renorm": the mean renormalised to unit length (CLIP's recipe: the cosine with the mean).
    """
    import torch

    mean = prompt_emb.mean(1)
    if average == "official":
        return mean
    if average == "renorm":
        return torch.nn.functional.normalize(mean, dim=-1)
    raise ValueError(f"unknown prompt averaging {average!r} (expected official or renorm)")


def class_embeddings(
    model: Any,
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    average: str = "official",
    text_norm: str = "official",
) -> torch.Tensor:
    """(C, D) class embeddings: every prompt encoded (normalised), averaged per class."""
    prompts = class_prompts(classnames, templates, text_norm)
    emb = encode_texts(model, prompts).reshape(len(classnames), len(templates), -1)
    return average_prompts(emb, average)
