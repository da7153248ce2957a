"""A model's initial weights: a transformers CLIP (2D patches inflated), a ViCLIP file or run."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from internvid.models.viclip import ViCLIP, ViCLIPConfig, check_state_dict, read_state_dict
from internvid.train.checkpoint import latest_checkpoint

log = logging.getLogger(__name__)


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
