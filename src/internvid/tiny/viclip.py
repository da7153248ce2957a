"""A tiny random-weight ViCLIP checkpoint in the official layout, for tests and smoke runs."""

from __future__ import annotations

import os
from pathlib import Path

TINY_VICLIP_FILE = "viclip-tiny.pth"  # file name of the checkpoint under the tiny-models folder


def build_tiny_viclip(root: str | Path, seed: int = 0) -> Path:
    """Write (once) a ViCLIPConfig.tiny() checkpoint with random weights, as {"model": sd}."""
    import torch

    from internvid.models.viclip import ViCLIP, ViCLIPConfig, save_official

    path = Path(root) / TINY_VICLIP_FILE
    if path.is_file():
        return path
    torch.manual_seed(seed)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.pth")
    try:
        save_official(ViCLIP(ViCLIPConfig.tiny()), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def build_tiny(name: str, root: str | Path) -> Path:
    """The hub's entry (internvid.hub.TINY_MODELS): the tiny ViCLIP checkpoint under root."""
    if name != "viclip":
        raise ValueError(f"no tiny model {name!r} here")
    return build_tiny_viclip(root)
