"""Finding models before any work (local folder, HF cache, hub), devices and dtypes, loading once."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"  # "tiny:blip" names a tiny model built locally by internvid.caption.tiny
HUB_PROBE_SECONDS = 3.0  # how long the one reachability probe of the hub may take
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # fmt: skip


class ModelsUnavailable(RuntimeError):
    """Some models are neither local, nor cached, nor reachable: the run cannot start."""


@dataclass(frozen=True)
class Resolved:
    """Where a model will be loaded from."""

    name: str  # as configured: hub id, local folder or tiny:NAME
    path: str  # what from_pretrained gets: a folder, or the hub id (cached or downloadable)
    how: str  # "local", "tiny", "cached" or "hub"


def default_cache_dir(cache_dir: str = "") -> Path:
    """Where tiny models are built: the configured cache folder, else ~/.cache/internvid."""
    if cache_dir:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "internvid"


def _complete_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / w).is_file() for w in WEIGHT_FILES)


def _cached(repo_id: str, cache_dir: str) -> str | None:
    """The cached snapshot folder of a hub model that holds a config and weights, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        return None
    hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir or None)
    if not isinstance(hit, str):
        return None
    folder = Path(hit).parent
    return str(folder) if _complete_folder(folder) else None


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub answers within `timeout` (DNS included; never blocks longer)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    result: list[bool] = []

    def probe() -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout):
                result.append(True)
        except Exception:  # any failure means "not reachable"
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def resolve_models(names: list[str], cache_dir: str = "") -> list[Resolved]:
    """Find every model before any work; raise ModelsUnavailable naming each missing one.

    A name is a local folder (with config.json and weights), `tiny:NAME` (built on the spot),
    or a hub id found in the Hugging Face cache or, when the hub answers, downloadable.
    """
    found: list[Resolved] = []
    missing: list[str] = []
    reachable: bool | None = None
    for name in names:
        if name.startswith(TINY_PREFIX):
            from internvid.caption.tiny import TINY_MODELS, build_tiny_models

            kind = name[len(TINY_PREFIX) :]
            if kind not in TINY_MODELS:
                missing.append(f"{name} (no such tiny model; known: {', '.join(TINY_MODELS)})")
                continue
            root = default_cache_dir(cache_dir) / "tiny-models"
            folder = build_tiny_models(root, [kind])[kind]
            found.append(Resolved(name, str(folder), "tiny"))
            continue
        local = Path(name).expanduser()
        if local.is_dir():
            if _complete_folder(local):
                found.append(Resolved(name, str(local), "local"))
            else:
                missing.append(f"{name} (a folder without config.json and weights)")
            continue
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            missing.append(f"{name} (no such folder)")
            continue
        cached = _cached(name, cache_dir)
        if cached:
            found.append(Resolved(name, name, "cached"))
            continue
        if reachable is None:
            reachable = hub_reachable()
        if reachable:
            found.append(Resolved(name, name, "hub"))
        else:
            missing.append(f"{name} (not in the Hugging Face cache, and the hub is unreachable)")
    if missing:
        raise ModelsUnavailable(
            "captioning models are missing:\n"
            + "".join(f"  - {m}\n" for m in missing)
            + "Supply them in one of these ways:\n"
            "  - download them where the hub is reachable (`hf download NAME`), then point "
            "HF_HOME or --cache-dir at that cache;\n"
            "  - give local folders: --coarse-model, --fine-model, --fusion-model PATH "
            "(or caption.*_model in the config);\n"
            "  - run with --models tiny for an offline smoke run (random weights: the captions "
            "are noise)."
        )
    return found


def pick_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when a GPU is there, else "cpu"."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    """ "auto" -> bf16 on a GPU that supports it, else fp16 on GPU, fp32 on CPU."""
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype != "auto":
        return table[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


_LOADED: dict[tuple[str, str, str, str], Any] = {}  # (kind, path, device, dtype) -> object
_LOCK = threading.Lock()


def load_once(kind: str, path: str, device: str, dtype: Any, loader) -> Any:
    """Load a model (or processor) at most once per worker process: `loader()` on first use."""
    key = (kind, path, device, str(dtype))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = loader()
        return _LOADED[key]
