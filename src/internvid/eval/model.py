"""The evaluated ViCLIP: a checkpoint (or --models' choice), its config, an optional WiSE-FT partner."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads inside the functions: `internvid --help` stays fast
    import torch

log = logging.getLogger(__name__)


def resolve_config(arch: str) -> Any:
    """None (infer from the checkpoint), a preset (b16, l14, tiny) or a config JSON file."""
    from internvid.models.viclip import ViCLIPConfig

    presets = {"b16": ViCLIPConfig.b16, "l14": ViCLIPConfig.l14, "tiny": ViCLIPConfig.tiny}
    if arch == "auto":
        return None
    if arch in presets:
        return presets[arch]()
    return ViCLIPConfig.from_json(Path(arch))


def _other_state(spec: str | Path, state: Mapping[str, torch.Tensor], arch: str) -> dict:
    """The WiSE-FT partner: a ViCLIP state dict file, or (what the official zero-shot scripts
    average with) a CLIP / run folder / hub id that `train.load_init` turns into a ViCLIP of the
    checkpoint's shape: patch weights inflated, temporal positions zero."""
    from internvid.models.viclip import ViCLIP, infer_config, read_state_dict

    if Path(spec).is_file():
        return read_state_dict(spec)
    from internvid.train import load_init

    model = ViCLIP(resolve_config(arch) or infer_config(state))
    load_init(model, str(spec))
    return model.state_dict()


def model_ref(path: str | Path | None = None, models: str = "auto") -> str:
    """The checkpoint to evaluate: `path` when given (a file or OWNER/REPO/FILE), else the one
    `--models` picks (`hub.viclip_ref`: real and auto, the official ViCLIP-L/14 10M-FLT; tiny,
    the random-weight tiny:viclip)."""
    from internvid.hub import viclip_ref

    return viclip_ref(models, str(path) if path is not None and str(path) else None)


def load_model(
    path: str | Path | None = None,
    arch: str = "auto",
    device: str = "auto",
    dtype: str = "fp32",
    wise_ft_path: str | Path | None = None,
    alpha: float = 0.5,
    *,
    models: str = "auto",
    cache_dir: str = "",
) -> Any:
    """A ViCLIP in eval mode (`hub.load_viclip`), optionally weight-averaged with another state
    dict (WiSE-FT): `(1 - alpha) x checkpoint + alpha x other`, temporal positions kept from the
    checkpoint. `path` None: the checkpoint `models` picks (`model_ref`); `dtype` also takes the
    torch names float32 / float16 / bfloat16."""
    from internvid import hub
    from internvid.config import DTYPE_ALIASES
    from internvid.models.wise_ft import wise_ft

    def average(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mixed = wise_ft(state, _other_state(wise_ft_path, state, arch), alpha)  # type: ignore[arg-type]
        log.info("wise-ft: averaged with %s (alpha %.2f)", wise_ft_path, alpha)
        return mixed

    return hub.load_viclip(
        model_ref(path, models),
        cache_dir,
        device,
        DTYPE_ALIASES.get(dtype, dtype),
        config=resolve_config(arch),
        edit_state=None if wise_ft_path is None else average,
    )
