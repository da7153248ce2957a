"""The training set of a config and its batches: a per-epoch seeded order, tokenised captions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from internvid.config import TrainConfig
from internvid.models.tokenizer import tokenize
from internvid.train.shapes import ShapesDataset


@functools.lru_cache(maxsize=2)  # a batch spans at most two epochs
def _epoch_order(seed: int, epoch: int, num_samples: int) -> np.ndarray:
    """The epoch's shuffle: 4 bytes a sample (40 MB at 10M clips), two epochs kept."""
    order = np.random.default_rng([seed, 1_000_003, epoch]).permutation(num_samples)
    return order.astype(np.int32) if num_samples < 2**31 else order


def batch_indices(position: int, batch_size: int, num_samples: int, seed: int) -> list[int]:
    """Data indices of the batch starting at sample `position` (a per-epoch seeded shuffle)."""
    out = []
    for pos in range(position, position + batch_size):
        epoch, offset = divmod(pos, num_samples)
        out.append(int(_epoch_order(seed, epoch, num_samples)[offset]))
    return out


def make_batch(
    data: Any, indices: Sequence[int], draws: Sequence[int] | None = None, pool: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ((B, T, 3, S, S) frames, (B, 32) token ids). Shards: item i gets the training
    randomness of draws[i], decoded on `pool` (a thread pool) when given."""
    if hasattr(data, "item"):  # ShardClips
        draws = list(draws) if draws is not None else [None] * len(indices)
        mapper = pool.map if pool is not None else map
        items = list(mapper(data.item, indices, draws))
    else:
        items = [data[i] for i in indices]
    return torch.stack([v for v, _ in items]), tokenize([c for _, c in items])


def load_data(cfg: TrainConfig) -> Any:
    """The training set of `cfg.data`: the synthetic shapes, or the clips of our shards."""
    if cfg.data == "shapes":
        if cfg.subset < 1.0:
            raise ValueError("subset applies to shard data, not the synthetic shapes")
        return ShapesDataset(cfg.num_samples, cfg.frames, cfg.image_size, cfg.seed)
    from internvid.train.data import ShardClips

    return ShardClips(
        cfg.data,
        frames=cfg.frames,
        size=cfg.image_size,
        train=True,
        pre_text=cfg.pre_text,
        min_words=cfg.min_caption_words,
        subset=cfg.subset,
        subset_seed=cfg.subset_seed,
    )
