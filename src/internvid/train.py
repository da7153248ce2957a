"""ViCLIP training: CLIP init, masked contrastive training on shards or shapes, exact resume."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from internvid.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from internvid.models.tokenizer import tokenize
from internvid.models.viclip import (
    ViCLIP,
    ViCLIPConfig,
    check_state_dict,
    count_parameters,
    read_state_dict,
)

log = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")

# ---------------------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything a training run needs; `from_dict` / `from_file` reject unknown keys."""

    model: str | dict[str, Any] = "tiny"  # "tiny"/"b16"/"l14", or ViCLIPConfig fields (+"preset")
    init: str = "none"  # "none", a ViCLIP .pth/.safetensors, or a transformers CLIPModel dir/id
    data: str = "shapes"  # "shapes" (synthetic task) or our shards: run folder, glob or .tar
    num_samples: int = 256  # clips in the synthetic data set (one epoch); shards: all clips
    decode_threads: int = 4  # shards: threads decoding the clips of a batch
    frames: int = 4  # T frames per clip (also the model's num_frames)
    image_size: int = 32  # frame side S in pixels (also the model's image_size)
    batch_size: int = 4  # clips per step per process
    steps: int = 0  # optimiser steps; 0: derived from `epochs`
    epochs: float = 1.0  # passes over the data when `steps` is 0
    lr: float = 2e-4  # peak learning rate (official: 4e-4 for L/14, 2e-4 for B/16)
    warmup: float = 0.05  # fraction of the steps warming up linearly (official: 0.5 of 10 epochs)
    min_lr_multi: float = 0.01  # the lr factor never falls below this, warm-up included (official)
    weight_decay: float = 0.2  # AdamW decay; none on 1-D params, biases, temp, pos/class embeddings
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon (official: torch's default)
    mask_ratio: float = 0.9  # fraction of video patch tokens dropped per clip in training
    drop_path: float = 0.0  # video-tower stochastic depth, the last block's rate (official 0.1)
    freeze_text: bool = True  # the text tower gets no gradient (official recipe)
    temp_init: float = 0.0  # initial temperature when not loaded; 0: the model's (0.01)
    bf16: bool = False  # bfloat16 autocast (GPU; CPU works but is slow)
    grad_checkpointing: bool = False  # recompute transformer blocks in backward
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise resume on GPU)
    seed: int = 0  # seeds the model init, data order and masking
    pre_text: bool = True  # shards: captions normalised by models.text.pre_text (official)
    min_caption_words: int = 2  # shards: clips with fewer caption words are left out (official)
    subset: float = 1.0  # shards: train on this fraction of the clips, one fixed seeded draw
    subset_seed: int = 42  # seed of that draw (official: random.seed(42); random.sample)
    out: str = "runs/viclip"  # output folder: checkpoints and config.json
    ckpt_every: int = 0  # write a checkpoint every N steps (0: only at the end)
    log_every: int = 10  # log the loss every N steps
    wise_ft: float = 0.0  # > 0: also write wise_ft.pth = (1 - a) x trained + a x other weights
    wise_ft_with: str = ""  # the other weights: "" this run's initial ones, or an `init` spec
    eval_sets: int = 0  # shapes: held-out sets of the 48 captions scored at the end (0: none)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, stored as is

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.batch_size < 1 or self.num_samples < 1 or self.frames < 1:
            raise ValueError("batch_size, num_samples and frames must be >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a fraction in [0, 1), got {self.warmup}")
        if not 0.0 <= self.min_lr_multi <= 1.0:
            raise ValueError(f"min_lr_multi is a fraction in [0, 1], got {self.min_lr_multi}")
        if not 0.0 < self.subset <= 1.0:
            raise ValueError(f"subset is a fraction in (0, 1], got {self.subset}")

    @property
    def total_steps(self) -> int:
        """Optimiser steps on the synthetic task (shards: `steps_for(len(data), world)`)."""
        return self.steps_for(self.num_samples)

    def steps_for(self, num_samples: int, world: int = 1) -> int:
        """`steps`, or `epochs` passes over `num_samples` clips at the global batch size."""
        if self.steps > 0:
            return self.steps
        return max(1, math.ceil(self.epochs * num_samples / (self.batch_size * world)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {', '.join(unknown)}")
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """From a .json or .yaml/.yml file."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a mapping of TrainConfig keys")
        return cls.from_dict(data)

    def model_config(self) -> ViCLIPConfig:
        """The ViCLIPConfig, with frames / image size / training knobs from this config."""
        knobs = dict(
            num_frames=self.frames,
            image_size=self.image_size,
            mask_ratio=self.mask_ratio,
            grad_checkpointing=self.grad_checkpointing,
        )
        if self.temp_init > 0:
            knobs["temp_init"] = self.temp_init
        if self.drop_path > 0:
            knobs["drop_path_rate"] = self.drop_path
        presets = {"tiny": ViCLIPConfig.tiny, "b16": ViCLIPConfig.b16, "l14": ViCLIPConfig.l14}
        if isinstance(self.model, Mapping):  # ViCLIPConfig fields, over {"preset": NAME} if given
            fields = dict(self.model)
            preset = fields.pop("preset", None)
            if preset is None:
                return ViCLIPConfig.from_dict({**fields, **knobs})
            name, overrides = preset, {**fields, **knobs}
        else:
            name, overrides = self.model, knobs
        if name not in presets:
            raise ValueError(f"unknown model {name!r}: one of {sorted(presets)} or a dict")
        return presets[name](**overrides)


# -------------------------------------------------------------------------------------- CLIP init


def _resize_positions(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """(1 + g0^2, W) CLS + grid positions -> (1 + grid^2, W), bicubic over the grid."""
    g0 = math.isqrt(pos.shape[0] - 1)
    if g0 == grid:
        return pos
    cls, patches = pos[:1], pos[1:]
    w = pos.shape[1]
    img = patches.reshape(1, g0, g0, w).permute(0, 3, 1, 2).float()  # (1, W, g0, g0)
    img = F.interpolate(img, size=(grid, grid), mode="bicubic", align_corners=False)
    patches = img.permute(0, 2, 3, 1).reshape(grid * grid, w).to(pos.dtype)  # (grid^2, W)
    log.info("resized CLIP positional embedding from %dx%d to %dx%d", g0, g0, grid, grid)
    return torch.cat([cls, patches], dim=0)


def _map_blocks(
    src: Mapping[str, torch.Tensor], src_prefix: str, dst_prefix: str
) -> dict[str, torch.Tensor]:
    """transformers CLIPEncoderLayer keys -> ViCLIP ResidualAttentionBlock keys."""
    out: dict[str, torch.Tensor] = {}
    layers = sorted(
        {int(m.group(1)) for k in src if (m := re.match(re.escape(src_prefix) + r"(\d+)\.", k))}
    )
    for i in layers:
        s, d = f"{src_prefix}{i}.", f"{dst_prefix}{i}."
        a = s + "self_attn."
        out[d + "attn.in_proj_weight"] = torch.cat(
            [src[a + f"{n}_proj.weight"] for n in "qkv"], dim=0
        )  # (3W, W) = [q; k; v]
        out[d + "attn.in_proj_bias"] = torch.cat([src[a + f"{n}_proj.bias"] for n in "qkv"])
        pairs = {
            "attn.out_proj": "self_attn.out_proj",
            "ln_1": "layer_norm1",
            "ln_2": "layer_norm2",
            "mlp.c_fc": "mlp.fc1",
            "mlp.c_proj": "mlp.fc2",
        }
        for ours, theirs in pairs.items():
            for p in ("weight", "bias"):
                out[f"{d}{ours}.{p}"] = src[f"{s}{theirs}.{p}"]
    return out


def clip_to_viclip_state(
    clip: Mapping[str, torch.Tensor], cfg: ViCLIPConfig
) -> dict[str, torch.Tensor]:
    """A transformers CLIPModel state dict -> ViCLIP keys (no temporal positions; temp if the
    CLIP has a logit_scale)."""
    v, t = "vision_model.", "text_model."
    out: dict[str, torch.Tensor] = {}
    patch = clip[v + "embeddings.patch_embedding.weight"]  # (W, 3, p, p)
    out["vision_encoder.conv1.weight"] = patch.unsqueeze(2)  # (W, 3, 1, p, p): inflated
    out["vision_encoder.class_embedding"] = clip[v + "embeddings.class_embedding"]
    pos = clip[v + "embeddings.position_embedding.weight"]  # (1 + g0^2, W)
    out["vision_encoder.positional_embedding"] = _resize_positions(pos, cfg.grid_size)
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            out[f"vision_encoder.{ours}.{p}"] = clip[f"{v}{theirs}.{p}"]
    out.update(_map_blocks(clip, v + "encoder.layers.", "vision_encoder.transformer.resblocks."))
    out["vision_encoder.proj"] = clip["visual_projection.weight"].T  # (D, W) -> (W, D)

    out["text_encoder.token_embedding.weight"] = clip[t + "embeddings.token_embedding.weight"]
    tpos = clip[t + "embeddings.position_embedding.weight"]  # (77, Wt)
    if tpos.shape[0] < cfg.context_length:
        raise ValueError(
            f"CLIP has {tpos.shape[0]} text positions, fewer than {cfg.context_length}"
        )
    out["text_encoder.positional_embedding"] = tpos[: cfg.context_length]  # (32, Wt)
    for p in ("weight", "bias"):
        out[f"text_encoder.ln_final.{p}"] = clip[f"{t}final_layer_norm.{p}"]
    out.update(_map_blocks(clip, t + "encoder.layers.", "text_encoder.transformer.resblocks."))
    out["text_encoder.text_projection"] = clip["text_projection.weight"].T  # (Dt, Wt) -> (Wt, D)
    if "logit_scale" in clip:  # CLIP: logits = exp(logit_scale) x cosine; ViCLIP: cosine / temp
        out["temp"] = torch.exp(-clip["logit_scale"].float()).reshape(())
    return {k: val.detach().clone().contiguous() for k, val in out.items()}


def _check_clip_config(clip_cfg: Any) -> None:
    """Refuse CLIPs whose blocks differ from ours (QuickGELU, LayerNorm eps 1e-5)."""
    for name in ("vision_config", "text_config"):
        sub = getattr(clip_cfg, name, None)
        if sub is None:
            continue
        act = getattr(sub, "hidden_act", "quick_gelu")
        if act != "quick_gelu":
            raise ValueError(
                f"CLIP {name}.hidden_act is {act!r}: ViCLIP's blocks use QuickGELU, so this "
                "checkpoint (not an OpenAI CLIP) would not reproduce its features"
            )
        eps = getattr(sub, "layer_norm_eps", 1e-5)
        if abs(eps - 1e-5) > 1e-12:
            log.warning("CLIP %s.layer_norm_eps is %g; ViCLIP uses 1e-5", name, eps)


def init_from_clip(model: ViCLIP, clip_state_or_model: Any) -> ViCLIP:
    """Load a transformers CLIPModel (module or state dict) into `model`, in place.

    2D patch weights are inflated to the (1, p, p) kernel; the temporal positional embedding is
    zeroed; shapes must otherwise match (raises CheckpointError naming the keys).
    """
    if isinstance(clip_state_or_model, nn.Module):
        if hasattr(clip_state_or_model, "config"):
            _check_clip_config(clip_state_or_model.config)
        clip_state = clip_state_or_model.state_dict()
    else:
        log.warning("CLIP state dict without a config: assuming QuickGELU (OpenAI) blocks")
        clip_state = dict(clip_state_or_model)
    state = clip_to_viclip_state(clip_state, model.config)
    state["vision_encoder.temporal_positional_embedding"] = torch.zeros_like(
        model.vision_encoder.temporal_positional_embedding
    )
    if "temp" not in state:
        state["temp"] = model.temp.detach().clone()
    dev = model.device
    state = {
        k: v.to(dev, model.state_dict()[k].dtype) if k in model.state_dict() else v
        for k, v in state.items()
    }
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        model.temp.clamp_(min=model.config.temp_min)
    return model


def load_init(model: ViCLIP, init: str) -> None:
    """`init`: "none", a ViCLIP checkpoint file, a training run folder (its newest ckpt_*.pt),
    or a transformers CLIPModel folder / hub id."""
    if init in ("", "none"):
        return
    path = Path(init)
    if path.is_dir() and (newest := latest_checkpoint(path)) is not None:
        path = newest
    if path.is_file():
        state = read_state_dict(path)
        check_state_dict(model, state)
        model.load_state_dict(state, strict=True)
        log.info("initialised from ViCLIP checkpoint %s", path)
        return
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(init)
    init_from_clip(model, clip)
    log.info("initialised from CLIP %s", init)


# ------------------------------------------------------------------------------------------- data


COLOURS = {  # name -> RGB in [0, 1]
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.1),
    "blue": (0.1, 0.2, 0.9),
    "yellow": (0.9, 0.9, 0.1),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy)
N_COMBOS = len(COLOURS) * len(SHAPES) * len(DIRECTIONS)  # 48 distinct captions


class ShapesDataset(torch.utils.data.Dataset):
    """A coloured shape moving left/right/up/down across a plain background, wrapping around at
    the edges (a torus), from a uniformly random start; deterministic per index.

    Every single frame therefore shows the shape at a uniformly random place whatever the
    direction: only the order of the frames tells the direction (an image model cannot).
    Item: ((T, 3, S, S) ImageNet-normalised frames, "a red circle moving left").
    `combos`: draw the (colour, shape, direction) of item i as the i-th of all 48 combinations
    (mod 48) instead of at random: a held-out set with each caption once.
    """

    def __init__(
        self, num_samples: int, frames: int = 4, size: int = 32, seed: int = 0, combos: bool = False
    ) -> None:
        self.num_samples, self.frames, self.size, self.seed = num_samples, frames, size, seed
        self.combos = combos
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.num_samples

    def labels(self, index: int) -> tuple[str, str, str]:
        """(colour, shape, direction) of item `index`."""
        if self.combos:
            c, rest = divmod(index % N_COMBOS, len(SHAPES) * len(DIRECTIONS))
            s, d = divmod(rest, len(DIRECTIONS))
            return list(COLOURS)[c], SHAPES[s], list(DIRECTIONS)[d]
        rng = np.random.default_rng([self.seed, index, 1])
        return (
            list(COLOURS)[rng.integers(len(COLOURS))],
            SHAPES[rng.integers(len(SHAPES))],
            list(DIRECTIONS)[rng.integers(len(DIRECTIONS))],
        )

    def caption(self, index: int) -> str:
        """The caption of item `index`, without drawing it."""
        return "a {} {} moving {}".format(*self.labels(index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        colour, shape, direction = self.labels(index)
        rng = np.random.default_rng([self.seed, index, 2])
        s, t = self.size, self.frames
        r = max(2, s // 8)  # half size of the shape
        speed = s / (2 * max(t, 2))  # pixels per frame: half the frame over the clip
        dx, dy = DIRECTIONS[direction]
        start = rng.uniform(0, s, size=2)  # (x, y) of the centre, anywhere
        background = rng.uniform(0.3, 0.6) * np.ones(3)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)  # (S, S)
        video = np.empty((t, s, s, 3), dtype=np.float32)  # (T, S, S, 3)
        for i in range(t):
            cx, cy = start[0] + dx * speed * i, start[1] + dy * speed * i
            ox = (xx - cx + s / 2) % s - s / 2  # offsets from the centre on the torus
            oy = (yy - cy + s / 2) % s - s / 2
            if shape == "circle":
                inside = ox**2 + oy**2 <= r * r
            elif shape == "square":
                inside = (np.abs(ox) <= r) & (np.abs(oy) <= r)
            else:  # point-up triangle
                inside = (oy >= -r) & (oy <= r) & (np.abs(ox) <= (oy + r) / 2)
            video[i] = background
            video[i][inside] = COLOURS[colour]
        frames = torch.from_numpy(video).permute(0, 3, 1, 2)  # (T, 3, S, S)
        return (frames - self.mean) / self.std, self.caption(index)


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, num_samples: int) -> np.ndarray:
    return np.random.default_rng([seed, 1_000_003, epoch]).permutation(num_samples)


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
    from internvid.train_data import ShardClips

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


@torch.no_grad()
def evaluate_shapes(
    model: ViCLIP, frames: int, size: int, seed: int = 10_000, sets: int = 4
) -> dict[str, float]:
    """Held-out retrieval on the shapes task: `sets` fresh sets of the 48 captions, a clip each.

    t2v_r1: percent of captions whose own clip ranks first among the 48 (chance 2.1%);
    direction_acc: percent of clips whose caption beats the three with the same colour and shape
    but another direction (chance 25%; an image model cannot beat chance). Ties count against
    the model (a collapsed model scores 0, not 100).
    """
    was_training = model.training
    model.eval()
    texts = [ShapesDataset(N_COMBOS, combos=True).caption(i) for i in range(N_COMBOS)]
    t = model.encode_text(texts, normalize=True).float()  # (48, D)
    hits, dir_hits = 0, 0
    for k in range(sets):
        data = ShapesDataset(N_COMBOS, frames, size, seed=seed + k, combos=True)
        videos = torch.stack([data[i][0] for i in range(N_COMBOS)]).to(model.device)
        v = model.encode_video(videos, normalize=True).float()  # (48, D)
        sims = t @ v.T  # (48 texts, 48 videos); text i belongs to video i
        own = sims.diagonal()
        hits += int(((sims >= own[:, None]).sum(1) == 1).sum())
        per_video = sims.T  # (48 videos, 48 texts)
        groups = per_video.reshape(N_COMBOS, N_COMBOS // len(DIRECTIONS), len(DIRECTIONS))
        idx = torch.arange(N_COMBOS)
        mine = groups[idx, idx // len(DIRECTIONS)]  # (48, 4): same colour + shape
        gt = mine[idx, idx % len(DIRECTIONS)]
        dir_hits += int(((mine >= gt[:, None]).sum(1) == 1).sum())
    model.train(was_training)
    n = sets * N_COMBOS
    return {"t2v_r1": 100.0 * hits / n, "direction_acc": 100.0 * dir_hits / n, "clips": float(n)}


# ------------------------------------------------------------------------------------------- loss


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(B, D) per process -> (world * B, D); gradients flow into the local shard only."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x  # the local tensor, with its autograd history
    return torch.cat(parts, dim=0)


def clip_loss(v: torch.Tensor, t: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch; v, t: (B, D) normalised, local shard."""
    v_all, t_all = gather_with_grad(v), gather_with_grad(t)  # (G, D)
    logits = logit_scale * v_all @ t_all.T  # (G, G)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


# ----------------------------------------------------------------------------------- optimisation


# ViCLIP.no_weight_decay() of the official model: "temp" and its towers' sets, prefixed. The text
# entries name modules, not parameters, so "text_encoder.token_embedding.weight" is decayed there
# (it only matters when the text tower is trained; the recipe freezes it).
NO_DECAY = frozenset(
    {
        "temp",
        "vision_encoder.positional_embedding",
        "vision_encoder.class_embedding",
        "vision_encoder.temporal_positional_embedding",
        "text_encoder.token_embedding",
        "text_encoder.positional_embedding",
    }
)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups by the official rule (`utils/optimizer.py` add_weight_decay): no decay on
    1-D parameters, biases and the names in NO_DECAY; decay on the rest; frozen ones left out."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 1 or name.endswith(".bias") or name in NO_DECAY:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine(total: int, warmup: float, min_lr_multi: float = 0.0) -> Any:
    """LR factor of step s (0-based), the official schedule (`utils/scheduler.py`
    get_cosine_schedule_with_warmup, half a cosine, stepped once per optimiser step):
    s / warmup while s < warmup (`warmup` may be fractional: the official one is epochs x steps
    per epoch), then 0.5 (1 + cos(pi (s - warmup) / (total - warmup))), never below
    `min_lr_multi`: the first step runs at min_lr_multi x peak and the last ones floor there."""

    def factor(step: int) -> float:
        if step < warmup:
            return max(min_lr_multi, float(step) / float(max(1, warmup)))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(min_lr_multi, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor


# ------------------------------------------------------------------------------------ checkpoints


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> Path:
    """torch.save to a temporary file beside `path`, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)
    return path


def write_failures(path: Path, failed: Mapping[str, Any]) -> None:
    """The clips that could not be decoded (engine.sample.Failure), one failures.jsonl row each
    (atomic rewrite)."""
    from internvid.io.atomic import write_jsonl_atomic

    rows = [failed[key].to_json() for key in sorted(failed)]
    write_jsonl_atomic(path, rows)
    log.warning("%d clips could not be decoded and were replaced: %s", len(rows), path)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step ckpt_*.pt in `folder`, or None."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("ckpt_*.pt") if (m := CKPT_RE.match(p.name))]
    return max(found)[1] if found else None


# ------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    """`--config FILE`, `--resume`, `--resume-from FILE`, and `--<field> VALUE` overrides."""
    parser = argparse.ArgumentParser(prog="internvid-train", description=__doc__)
    parser.add_argument("--config", help="a TrainConfig .json / .yaml")
    parser.add_argument("--resume", action="store_true", help="continue from out/ckpt_*.pt")
    parser.add_argument("--resume-from", help="continue from this checkpoint file")
    fields = [f for f in dataclasses.fields(TrainConfig) if f.name != "extra"]
    for f in fields:
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None)
    args = parser.parse_args(list(argv) if argv is not None else None)
    base = TrainConfig.from_file(args.config).to_dict() if args.config else {}
    for f in fields:
        raw = getattr(args, f.name)
        if raw is None:
            continue
        base[f.name] = _parse_value(raw, f.type)
    return TrainConfig.from_dict(base), args


def _parse_value(raw: str, type_name: Any) -> Any:
    """A CLI string as the field's type: bools, numbers, JSON (dicts, lists), or the string."""
    tn = str(type_name)
    if tn == "bool":
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"expected a boolean, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if tn == "int":
        return int(raw)
    if tn == "float":
        return float(raw)
    if tn.startswith("tuple"):
        return tuple(float(x) for x in raw.strip("()[]").split(","))
    if raw.lstrip().startswith("{"):
        return json.loads(raw)
    return raw


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train; returns {"losses": per-step losses from step 1, "step", "checkpoint", "out"}."""
    cfg, args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    owns_group = distributed and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed)  # same init on every process
    model = ViCLIP(cfg.model_config())
    load_init(model, cfg.init)
    initial = None
    if cfg.wise_ft > 0 and not cfg.wise_ft_with:
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    elif cfg.wise_ft > 0:  # e.g. the CLIP a finishing run's pre-training started from
        other = ViCLIP(cfg.model_config())
        load_init(other, cfg.wise_ft_with)
        initial = other.state_dict()
    if cfg.freeze_text:
        model.freeze_text()
    model.to(device)
    log.info("%s: %.2fM parameters", model.config.name, count_parameters(model) / 1e6)

    data = load_data(cfg)
    total = cfg.steps_for(len(data), world)
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total, cfg.warmup * total, cfg.min_lr_multi)
    )
    out = Path(cfg.out)
    step, position, losses = 0, 0, []

    resume_path = Path(args.resume_from) if args.resume_from else None
    if args.resume and resume_path is None:
        resume_path = latest_checkpoint(out)
        if resume_path is None:
            log.warning("--resume: no checkpoint in %s, starting afresh", out)
    if resume_path is not None:
        ckpt = torch.load(resume_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, position, losses = ckpt["step"], ckpt["data_position"], list(ckpt["losses"])
        rng = ckpt["rng"][rank] if isinstance(ckpt["rng"], list) else ckpt["rng"]
        _set_rng_state(rng)
        log.info("resumed from %s at step %d", resume_path, step)
        if hasattr(data, "failures") and (out / "failures.jsonl").is_file():  # keep them listed
            from internvid.engine.sample import Failure

            for line in (out / "failures.jsonl").read_text().splitlines():
                row = json.loads(line)
                data.failures.setdefault(row["item"], Failure(**row))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    def checkpoint_now() -> Path:
        rngs: Any = _rng_state()
        failed = dict(getattr(data, "failures", {}))  # shards: clips that did not decode
        if distributed:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, (rngs, failed))
            rngs = [g[0] for g in gathered]
            failed = {k: v for g in gathered for k, v in g[1].items()}
        path = out / f"ckpt_{step:07d}.pt"
        if rank == 0 and failed:
            write_failures(out / "failures.jsonl", failed)
        if rank == 0:
            payload = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "data_position": position,
                "losses": losses,
                "rng": rngs,
                "config": cfg.to_dict(),
            }
            save_checkpoint(path, payload)
            log.info("checkpoint %s", path)
        return path

    last_ckpt: Path | None = None
    pool = None
    if hasattr(data, "item") and cfg.decode_threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(cfg.decode_threads, thread_name_prefix="decode")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
    model.train()
    first_step, started = step, time.perf_counter()
    while step < total:
        # every process reads its own slice of the global batch
        first = position + rank * cfg.batch_size  # this process's first sample of the batch
        idx = batch_indices(first, cfg.batch_size, len(data), cfg.seed)
        draws = [cfg.seed * 1_000_003 + first + j for j in range(cfg.batch_size)]
        videos, ids = make_batch(data, idx, draws, pool)  # (B, T, 3, S, S), (B, 32)
        videos, ids = videos.to(device), ids.to(device)
        model.clamp_temperature()
        with autocast:
            v = model.encode_video(videos, normalize=True)  # (B, D), masked in train mode
            with torch.set_grad_enabled(not cfg.freeze_text):
                t = model.encode_text(ids, normalize=True)  # (B, D)
            loss = clip_loss(v.float(), t.float(), model.logit_scale.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distributed:  # each process holds the global loss's gradient through its shard
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
        optimizer.step()
        scheduler.step()
        model.clamp_temperature()
        step += 1
        position += cfg.batch_size * world
        value = loss.detach()
        if distributed:
            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if cfg.log_every and (step % cfg.log_every == 0 or step == 1):
            rate = (step - first_step) * cfg.batch_size * world / (time.perf_counter() - started)
            eta = (total - step) * cfg.batch_size * world / max(rate, 1e-9)
            log.info(
                "step %d/%d loss %.4f lr %.3g | %.1f clips/s, %.0f s to go",
                step,
                total,
                losses[-1],
                scheduler.get_last_lr()[0],
                rate,
                eta,
            )
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < total:
            last_ckpt = checkpoint_now()
    if pool is not None:
        pool.shutdown()
    if last_ckpt is None or not last_ckpt.name.endswith(f"{step:07d}.pt"):
        last_ckpt = checkpoint_now()
    result: dict[str, Any] = {
        "losses": losses,
        "step": step,
        "checkpoint": str(last_ckpt),
        "out": str(out),
        "seconds": time.perf_counter() - started,
    }
    clips = (step - first_step) * cfg.batch_size * world
    log.info(
        "trained %d steps (%d clips) in %.1f s: %.1f clips/s; %d clips failed to decode",
        step - first_step,
        clips,
        result["seconds"],
        clips / max(result["seconds"], 1e-9),
        len(getattr(data, "failures", {})),
    )
    if initial is not None and rank == 0:  # the official zero-shot scripts' 50/50 average
        from internvid.models.wise_ft import wise_ft

        averaged = wise_ft(model.state_dict(), initial, cfg.wise_ft)
        result["wise_ft"] = str(save_checkpoint(out / "wise_ft.pth", {"model": averaged}))
        log.info("WiSE-FT weights (alpha %.2f of the initial ones): %s", cfg.wise_ft, out)
    if cfg.data == "shapes" and cfg.eval_sets > 0 and rank == 0:
        result["heldout"] = evaluate_shapes(model, cfg.frames, cfg.image_size, sets=cfg.eval_sets)
        log.info("held-out shapes: %s", json.dumps(result["heldout"]))
        (out / "heldout.json").write_text(json.dumps(result["heldout"], indent=2) + "\n")
    if owns_group:
        dist.barrier()
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
