"""Checkpoints: RNG states, atomic torch.save, the newest ckpt_*.pt, failures.jsonl."""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")  # ckpt_0000123.pt: the checkpoint after step 123


def rng_state() -> dict[str, Any]:
    """This process's torch, NumPy (legacy global), Python and CUDA RNG states, savable with
    `torch.load(weights_only=True)` (the NumPy key array as a tensor)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` saved (CUDA only where a GPU is there)."""
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
