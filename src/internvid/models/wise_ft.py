"""WiSE-FT: the weight-space average of two ViCLIP state dicts (Wortsman et al., 2022)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the tensors passed in
    import torch

log = logging.getLogger(__name__)

# State-dict keys `wise_ft` never averages: the temporal positional embedding has no counterpart
# in an image-CLIP initialisation (the official zero-shot scripts skip it too).
WISE_FT_EXCLUDE = ("vision_encoder.temporal_positional_embedding",)


def wise_ft(
    state_a: Mapping[str, torch.Tensor],
    state_b: Mapping[str, torch.Tensor],
    alpha: float,
    exclude: Iterable[str] = WISE_FT_EXCLUDE,
) -> dict[str, torch.Tensor]:
    """Weight-space ensemble: `(1 - alpha) * a + alpha * b`, key by key, in a's dtype.

    Keys of a that are in `exclude`, missing from b, differently shaped or not floating point
    keep a's value (the last two with a warning); keys only in b are ignored.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    skip = set(exclude)
    out: dict[str, torch.Tensor] = {}
    missing, mismatched = [], []
    for key, a in state_a.items():
        b = state_b.get(key)
        if key in skip or not a.is_floating_point():
            out[key] = a
        elif b is None:
            missing.append(key)
            out[key] = a
        elif b.shape != a.shape:
            mismatched.append(key)
            out[key] = a
        else:
            mixed = (1.0 - alpha) * a.float() + alpha * b.to(a.device).float()
            out[key] = mixed.to(a.dtype)
    if missing:
        log.warning(
            "wise-ft: %d keys missing from the other state dict: %s", len(missing), missing[:5]
        )
    if mismatched:
        log.warning("wise-ft: %d keys differ in shape, kept: %s", len(mismatched), mismatched[:5])
    return out
