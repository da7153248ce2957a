"""ViCLIP (InternVid): CLIP with a joint space-time video tower; loads the official checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------- config


@dataclass
class ViCLIPConfig:
    """Sizes and training knobs of a ViCLIP; `b16()` / `l14()` are the released models."""

    name: str = "ViCLIP-B/16"  # a label for logs only
    # video tower
    vision_width: int = 768  # token width W of the video transformer
    vision_layers: int = 12  # residual attention blocks in the video transformer
    vision_heads: int = 12  # attention heads (W must divide by it)
    patch_size: int = 16  # p: Conv3d kernel = stride = (1, p, p)
    num_frames: int = 8  # T the temporal positional embedding was trained for
    image_size: int = 224  # frame side in pixels (frames are square)
    # text tower
    text_width: int = 512  # token width of the text transformer
    text_layers: int = 12  # residual attention blocks in the text transformer
    text_heads: int = 8  # attention heads of the text transformer
    context_length: int = 32  # text positions (ViCLIP: 32, not CLIP's 77)
    vocab_size: int = 49408  # CLIP BPE vocabulary
    # shared
    embed_dim: int = 512  # joint embedding size D (vision proj and text projection output)
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * width in both towers
    temp_init: float = 0.01  # initial temperature: logits = cosine / temp = 100 x cosine
    temp_min: float = 0.01  # temp is clamped to >= this (official: 1/100)
    # training knobs (all off by default; inference ignores them)
    mask_ratio: float = 0.0  # fraction of patch tokens dropped per clip in training (CLS kept)
    drop_path_rate: float = 0.0  # video tower stochastic depth: block i of n drops at
    # linspace(0, rate, n)[i], attention and MLP residuals apart (official training: 0.1)
    grad_checkpointing: bool = False  # recompute blocks in backward (training + grad only)

    def __post_init__(self) -> None:
        for width, heads, tower in (
            (self.vision_width, self.vision_heads, "vision"),
            (self.text_width, self.text_heads, "text"),
        ):
            if heads <= 0 or width % heads:
                raise ValueError(f"{tower}: width {width} is not a multiple of heads {heads}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of {self.patch_size}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if self.num_frames < 1 or self.context_length < 2 or self.temp_min <= 0:
            raise ValueError("num_frames >= 1, context_length >= 2 and temp_min > 0 are required")

    @property
    def grid_size(self) -> int:
        """Patches per frame side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """N: patches per frame."""
        return self.grid_size**2

    @classmethod
    def b16(cls, **overrides: Any) -> ViCLIPConfig:
        """ViCLIP-B/16 (149.6M parameters)."""
        return cls(**{"name": "ViCLIP-B/16", **overrides})

    @classmethod
    def l14(cls, **overrides: Any) -> ViCLIPConfig:
        """ViCLIP-L/14 (427.6M parameters)."""
        base = dict(
            name="ViCLIP-L/14",
            vision_width=1024,
            vision_layers=24,
            vision_heads=16,
            patch_size=14,
            text_width=768,
            text_layers=12,
            text_heads=12,
            embed_dim=768,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> ViCLIPConfig:
        """A 1.6M-parameter ViCLIP for tests (full vocabulary and context; 8 frames of 32 px)."""
        base = dict(
            name="ViCLIP-tiny",
            vision_width=32,
            vision_layers=2,
            vision_heads=2,
            patch_size=8,
            image_size=32,
            text_width=32,
            text_layers=2,
            text_heads=2,
            embed_dim=16,
        )
        return cls(**{**base, **overrides})

    def replace(self, **changes: Any) -> ViCLIPConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViCLIPConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ViCLIPConfig fields: {', '.join(unknown)}")
        return cls(**dict(data))

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> ViCLIPConfig:
        """From a JSON file, or from JSON text (a string starting with '{')."""
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text()
        return cls.from_dict(json.loads(text))


# -------------------------------------------------------------------------------------- modules


class QuickGELU(nn.Module):
    """CLIP's GELU approximation: x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back (the text tower's, as in OpenAI CLIP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


class DropPath(nn.Module):
    """Stochastic depth as the official video tower applies it, in training only.

    The official blocks run timm's DropPath on sequence-first (L, B, W) tokens, so its mask
    (drawn per first dimension) is per *token position*, shared by every clip of the batch, not
    per clip. On our batch-first (B, L, W) tokens that is a (1, L, 1) mask: each position's
    residual branch is zeroed with probability `rate`, the others scaled by 1 / (1 - rate).
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((1, x.shape[1], 1)).bernoulli_(keep)  # (1, L, 1): per position
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class SelfAttention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter names, run by SDPA."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))  # [Wq; Wk; Wv]
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, x: torch.Tensor, causal: bool = False, queries: int | None = None
    ) -> torch.Tensor:
        """(B, L, W) -> (B, L, W); with `queries` only the first that many tokens attend (the
        rest still serve as keys and values) -> (B, queries, W)."""
        b, n, w = x.shape  # (B, L, W)
        hd = w // self.heads
        if queries is None:
            qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, L, 3W)
            qkv = qkv.view(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # each (B, heads, L, W/heads)
        else:
            q = F.linear(x[:, :queries], self.in_proj_weight[:w], self.in_proj_bias[:w])
            q = q.view(b, queries, self.heads, hd).transpose(1, 2)  # (B, heads, Q, W/heads)
            kv = F.linear(x, self.in_proj_weight[w:], self.in_proj_bias[w:])  # (B, L, 2W)
            k, v = kv.view(b, n, 2, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # (B, heads, Q, W/heads)
        out = out.transpose(1, 2).reshape(b, q.shape[2], w)  # (B, Q, W)
        return self.out_proj(out)


class Mlp(nn.Module):
    """c_fc -> QuickGELU -> c_proj."""

    def __init__(self, width: int, ratio: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, width * ratio)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(width * ratio, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN CLIP block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(
        self,
        width: int,
        heads: int,
        mlp_ratio: int,
        norm: type[nn.LayerNorm] = nn.LayerNorm,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.attn = SelfAttention(width, heads)
        self.ln_1 = norm(width)
        self.mlp = Mlp(width, mlp_ratio)
        self.ln_2 = norm(width)
        self.drop_path1 = DropPath(drop_path)  # on the attention residual (official name)
        self.drop_path2 = DropPath(drop_path)  # on the MLP residual, an independent draw

    def forward(
        self, x: torch.Tensor, causal: bool = False, queries: int | None = None
    ) -> torch.Tensor:
        """(B, L, W) -> (B, L, W), or only the first `queries` tokens' outputs (B, Q, W)."""
        h = self.attn(self.ln_1(x), causal=causal, queries=queries)  # (B, Q, W)
        x = (x if queries is None else x[:, :queries]) + self.drop_path1(h)
        return x + self.drop_path2(self.mlp(self.ln_2(x)))  # (B, Q, W)


class Transformer(nn.Module):
    """A stack of `ResidualAttentionBlock`s on batch-first tokens."""

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: int,
        norm: type[nn.LayerNorm] = nn.LayerNorm,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        # the official stochastic-depth rule: torch.linspace(0, rate, layers), block by block
        rates = torch.linspace(0, drop_path_rate, layers, device="cpu").tolist()  # even on meta
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, mlp_ratio, norm, rate) for rate in rates
        )
        self.grad_checkpointing = False

    def forward(
        self, x: torch.Tensor, causal: bool = False, last_queries: int | None = None
    ) -> torch.Tensor:
        """(B, L, W) -> (B, L, W). `last_queries`: the last block computes only the first that
        many tokens (B, Q, W): when only the CLS output is read, the last block's MLP and most
        of its attention are skipped (the same numbers, ~7% of ViCLIP-B's video tower)."""
        recompute = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        last = len(self.resblocks) - 1
        for i, block in enumerate(self.resblocks):
            queries = last_queries if i == last else None
            if recompute:  # keep only the block inputs; recompute the rest in backward
                x = checkpoint(block, x, causal, queries, use_reentrant=False)
                continue
            x = block(x, causal, queries)  # (B, L, W)
        return x


def drop_tokens(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Keep a random subset of the tokens of each sample, in their order.

    Drops int(ratio * L) of the L tokens of every row (the official count); (B, L, W) ->
    (B, L - int(ratio * L), W).
    """
    b, n, w = x.shape
    drop = int(ratio * n)
    if drop <= 0:
        return x
    keep = n - drop
    order = torch.rand(b, n, device=x.device).argsort(dim=1)[:, :keep]  # (B, keep)
    order = order.sort(dim=1).values
    return x.gather(1, order.unsqueeze(-1).expand(b, keep, w))  # (B, keep, W)


class VisionTransformer(nn.Module):
    """The video tower: (B, T, 3, H, W) frames -> (B, D), joint space-time attention."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.patch_size
        self.num_frames = cfg.num_frames
        self.grid_size = cfg.grid_size
        self.conv1 = nn.Conv3d(3, w, kernel_size=(1, p, p), stride=(1, p, p), bias=False)
        scale = w**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(w))
        self.positional_embedding = nn.Parameter(scale * torch.randn(cfg.num_patches + 1, w))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(
            w,
            cfg.vision_layers,
            cfg.vision_heads,
            cfg.mlp_ratio,
            drop_path_rate=cfg.drop_path_rate,
        )
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(scale * torch.randn(w, cfg.embed_dim))

    def temporal_embedding(self, frames: int) -> torch.Tensor:
        """(1, frames, W) temporal positions for a clip of `frames` frames.

        The trained T: as is; 1 frame: their mean (the official single-image path); more: linear
        interpolation; fewer: the first ones (the official checkpoint-loading adaptation).
        """
        emb = self.temporal_positional_embedding  # (1, T0, W)
        t0 = emb.shape[1]
        if frames == t0:
            return emb
        if frames == 1:
            return emb.mean(dim=1, keepdim=True)
        if frames < t0:
            return emb[:, :frames]
        resized = F.interpolate(emb.transpose(1, 2).float(), size=frames, mode="linear")
        return resized.transpose(1, 2).to(emb.dtype)  # (1, frames, W)

    def forward(self, video: torch.Tensor, mask_ratio: float = 0.0) -> torch.Tensor:
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"expected video (B, T, 3, H, W), got {tuple(video.shape)}")
        b, t, _, h, w_px = video.shape
        weight = self.conv1.weight  # (W, 3, 1, p, p)
        p = weight.shape[-1]
        if (h // p, w_px // p) != (self.grid_size, self.grid_size) or h % p or w_px % p:
            side = self.grid_size * p
            raise ValueError(f"frames must be {side} x {side} pixels, got {h} x {w_px}")
        frames = video.reshape(b * t, 3, h, w_px)  # (B*T, 3, H, W)
        frames = frames.to(weight.device, weight.dtype)
        # Conv3d with a (1, p, p) kernel on (B, 3, T, H, W) == Conv2d per frame.
        x = F.conv2d(frames, weight[:, :, 0], stride=p)  # (B*T, W, h, w)
        x = x.flatten(2).transpose(1, 2)  # (B*T, N, W)
        pos = self.positional_embedding.to(x.dtype)  # (N+1, W)
        x = x + pos[1:]  # (B*T, N, W): spatial positions, shared by all frames
        n, width = x.shape[1], x.shape[2]
        x = x.view(b, t, n, width) + self.temporal_embedding(t).to(x.dtype).unsqueeze(2)
        x = x.transpose(1, 2).reshape(b, n * t, width)  # (B, N*T, W), patch-major like official
        if mask_ratio > 0.0:
            x = drop_tokens(x, mask_ratio)  # (B, L', W)
        cls = (self.class_embedding.to(x.dtype) + pos[0]).expand(b, 1, width)  # (B, 1, W)
        x = torch.cat([cls, x], dim=1)  # (B, 1+L', W)
        x = self.ln_pre(x)
        x = self.transformer(x, last_queries=1)  # (B, 1, W): only CLS is read
        return self.ln_post(x[:, 0]) @ self.proj  # (B, D)


class TextTransformer(nn.Module):
    """OpenAI CLIP's text tower: causal attention, the EOT token's feature projected."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        w = cfg.text_width
        self.context_length = cfg.context_length
        self.token_embedding = nn.Embedding(cfg.vocab_size, w)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, w))
        self.transformer = Transformer(
            w, cfg.text_layers, cfg.text_heads, cfg.mlp_ratio, Fp32LayerNorm
        )
        self.ln_final = Fp32LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, cfg.embed_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=w**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] > self.context_length:
            raise ValueError(f"expected ids (B, <= {self.context_length}), got {tuple(ids.shape)}")
        length = ids.shape[1]
        x = self.token_embedding(ids)  # (B, L, Wt)
        x = x + self.positional_embedding[:length].to(x.dtype)  # (B, L, Wt)
        x = self.transformer(x, causal=True)  # (B, L, Wt)
        x = self.ln_final(x)
        eot = x[torch.arange(x.shape[0], device=x.device), ids.argmax(dim=-1)]  # (B, Wt)
        return eot @ self.text_projection  # (B, D)


class ViCLIP(nn.Module):
    """ViCLIP: `vision_encoder` + `text_encoder` + `temp`, with the official parameter names."""

    def __init__(self, config: ViCLIPConfig | None = None) -> None:
        super().__init__()
        self.config = dataclasses.replace(config) if config else ViCLIPConfig.b16()  # own copy
        self.vision_encoder = VisionTransformer(self.config)
        self.text_encoder = TextTransformer(self.config)
        self.temp = nn.Parameter(torch.tensor(float(self.config.temp_init)))  # shape ()
        self.set_grad_checkpointing(self.config.grad_checkpointing)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute transformer blocks in backward (only when training with grad)."""
        self.config.grad_checkpointing = enabled
        self.vision_encoder.transformer.grad_checkpointing = enabled
        self.text_encoder.transformer.grad_checkpointing = enabled

    def freeze_text(self) -> None:
        """Stop gradients into the text tower (the official training recipe)."""
        for p in self.text_encoder.parameters():
            p.requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return self.vision_encoder.conv1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.vision_encoder.conv1.weight.device

    def encode_video(
        self, video: torch.Tensor, normalize: bool = False, mask_ratio: float | None = None
    ) -> torch.Tensor:
        """(B, T, 3, H, W) normalised frames -> (B, D) clip embeddings.

        `mask_ratio` None: `config.mask_ratio` in training mode, no masking in eval mode; a
        number: that ratio regardless of the mode.
        """
        if mask_ratio is None:
            mask_ratio = self.config.mask_ratio if self.training else 0.0
        feats = self.vision_encoder(video, mask_ratio=mask_ratio)  # (B, D)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(
        self, ids: torch.Tensor | str | Sequence[str], normalize: bool = False
    ) -> torch.Tensor:
        """(B, L <= 32) token ids (or raw strings, tokenised here) -> (B, D) text embeddings."""
        if not isinstance(ids, torch.Tensor):
            from internvid.models.tokenizer import tokenize

            ids = tokenize(ids, context_length=self.config.context_length)
        feats = self.text_encoder(ids.to(self.device))  # (B, D)
        return F.normalize(feats, dim=-1) if normalize else feats

    @torch.no_grad()
    def clamp_temperature(self) -> None:
        """temp >= temp_min, in place (the official model does this every training step)."""
        self.temp.clamp_(min=self.config.temp_min)

    @property
    def logit_scale(self) -> torch.Tensor:
        """1 / temp, temp clamped to >= temp_min: 100 for the released models."""
        return 1.0 / self.temp.clamp(min=self.config.temp_min)

    def forward(
        self, video: torch.Tensor, ids: torch.Tensor | str | Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits per video (B, N), logits per text (N, B)) = cosine / temp (100 x cosine)."""
        if self.training:
            self.clamp_temperature()
        v = self.encode_video(video, normalize=True)  # (B, D)
        t = self.encode_text(ids, normalize=True)  # (N, D)
        logits = self.logit_scale.to(v.dtype) * (v @ t.T)  # (B, N)
        return logits, logits.T


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------ checkpoints


class CheckpointError(ValueError):
    """A checkpoint does not match the model; `missing` / `unexpected` / `mismatched` name keys."""

    def __init__(
        self,
        message: str,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)


_WRAPPER_KEYS = ("model", "state_dict", "module")  # {"model": state_dict} and friends
_PREFIXES = ("module.", "model.", "_orig_mod.")  # DDP, HF-style wrappers, torch.compile
_IGNORED_SUFFIXES = (".attn_mask",)  # non-learned causal masks some ports store as buffers
_LAYER_RE = re.compile(r"^(vision|text)_encoder\.transformer\.resblocks\.(\d+)\.")


def read_state_dict(
    source: str | Path | Mapping[str, Any], *, weights_only: bool = True
) -> dict[str, torch.Tensor]:
    """The bare state dict of a .pth/.pt/.bin (torch.load, weights only), a .safetensors or a
    mapping: unwraps {"model": ...}, strips a common "module." / "model." prefix, drops stored
    causal-mask buffers.

    `weights_only=False` unpickles arbitrary objects (a training checkpoint's config, say): only
    for files you trust.
    """
    if isinstance(source, Mapping):
        state: Any = source
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=weights_only)
            except pickle.UnpicklingError as err:
                raise CheckpointError(
                    f"{path}: holds pickled objects besides tensors, refused by "
                    "torch.load(weights_only=True); if you trust the file, load it with "
                    f"weights_only=False ({str(err).splitlines()[0]})"
                ) from err
    for _ in range(3):  # nested wrappers, e.g. {"model": {"module": ...}}
        if not isinstance(state, Mapping):
            break
        inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None or any(isinstance(v, torch.Tensor) for v in state.values()):
            break
        state = inner
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError("the checkpoint holds no state dict (expected a dict of tensors)")
    out = {str(k): v for k, v in state.items()}
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
                changed = True
    not_tensors = sorted(k for k, v in out.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointError(
            f"non-tensor entries: {', '.join(not_tensors[:10])}", unexpected=not_tensors
        )
    dropped = [k for k in out if k.endswith(_IGNORED_SUFFIXES)]
    for k in dropped:
        del out[k]
    if dropped:
        log.debug("ignored %d stored attention-mask buffers", len(dropped))
    return out


def _need(state: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(f"missing key {key!r}: not a ViCLIP checkpoint?", missing=[key])
    return state[key]


def infer_config(state: Mapping[str, torch.Tensor]) -> ViCLIPConfig:
    """The ViCLIPConfig of an official-layout state dict, from its tensor shapes.

    Head counts are not stored: a shape match with ViCLIP-B/16 or -L/14 takes theirs, anything
    else takes CLIP's width // 64 (pass a config to override).
    """
    v, t = "vision_encoder.", "text_encoder."
    width, _, _, _, patch = _need(state, v + "conv1.weight").shape  # (W, 3, 1, p, p)
    positions = _need(state, v + "positional_embedding").shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise CheckpointError(f"{v}positional_embedding: {positions} rows is not 1 + a square")
    layers = {"vision": set(), "text": set()}
    for key in state:
        m = _LAYER_RE.match(key)
        if m:
            layers[m.group(1)].add(int(m.group(2)))
    vocab, text_width = _need(state, t + "token_embedding.weight").shape
    shapes = dict(
        vision_width=int(width),
        vision_layers=len(layers["vision"]),
        patch_size=int(patch),
        num_frames=int(_need(state, v + "temporal_positional_embedding").shape[1]),
        image_size=int(grid * patch),
        text_width=int(text_width),
        text_layers=len(layers["text"]),
        context_length=int(_need(state, t + "positional_embedding").shape[0]),
        vocab_size=int(vocab),
        embed_dim=int(_need(state, v + "proj").shape[1]),
    )
    for preset in (ViCLIPConfig.b16(), ViCLIPConfig.l14()):
        if all(getattr(preset, k) == val for k, val in shapes.items()):
            return preset
    heads = {
        "vision_heads": max(1, shapes["vision_width"] // 64),
        "text_heads": max(1, shapes["text_width"] // 64),
    }
    log.warning("checkpoint is neither ViCLIP-B/16 nor -L/14; assuming %s", heads)
    return ViCLIPConfig(name="ViCLIP-custom", **shapes, **heads)


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming every missing, unexpected or mis-shaped key."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k]
    )
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"missing keys: {', '.join(missing[:20])}")
    if unexpected:
        parts.append(f"unexpected keys: {', '.join(unexpected[:20])}")
    if mismatched:
        details = [f"{k} {tuple(state[k].shape)} != {expected[k]}" for k in mismatched[:20]]
        parts.append(f"shape mismatch (checkpoint != model): {'; '.join(details)}")
    raise CheckpointError(
        "checkpoint does not match the model: " + " | ".join(parts),
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
    )


def load_viclip(
    path_or_state: str | Path | Mapping[str, Any],
    config: ViCLIPConfig | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    *,
    weights_only: bool = True,
) -> ViCLIP:
    """A ViCLIP in eval mode with the weights of an official .pth or -hf .safetensors, strictly.

    Without `config`, B/16 or L/14 is inferred from the shapes. `dtype` None gives float32.
    Any missing, unexpected or mis-shaped key raises a CheckpointError (a ValueError) naming it.
    """
    state = read_state_dict(path_or_state, weights_only=weights_only)
    temp = state.get("temp")
    if temp is not None and temp.shape == (1,):  # a 1-element temp, should a port store one
        state["temp"] = temp.reshape(())
    cfg = config or infer_config(state)
    with torch.device("meta"):
        model = ViCLIP(cfg)
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype or torch.float32)
    log.info("loaded %s (%.1fM parameters)", cfg.name, count_parameters(model) / 1e6)
    return model.eval()


def save_official(model: ViCLIP, path: str | Path) -> Path:
    """Write the official layout: {"model": state_dict} (.pth) or the bare dict (.safetensors)."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"model": state}, path)
    return path
