"""The contrastive loss: symmetric InfoNCE over the global batch, gathered with gradients."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


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
