"""Optimisation as the official recipe: AdamW decay groups and the warm-up + cosine schedule."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

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
