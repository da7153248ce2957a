"""The model hub: find models before any work (local, tiny, HF cache, hub), fetch, device, dtype, load once."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"  # "tiny:blip" names a random-weight model built locally (TINY_MODELS)
# tiny:NAME -> the module whose `build_tiny(name, root)` builds it (imported only when asked for,
# so that the hub imports no model code and nothing imports in a cycle)
TINY_MODELS = {
    "blip": "internvid.tiny.captioners",
    "blip2": "internvid.tiny.captioners",
    "t5": "internvid.tiny.captioners",
    "chat": "internvid.tiny.captioners",
    "qwen_vl": "internvid.tiny.captioners",
    "viclip": "internvid.tiny.viclip",
    "clip": "internvid.tiny.scorers",
    "aesthetic-linear": "internvid.tiny.scorers",
    "aesthetic-mlp": "internvid.tiny.scorers",
}
# the `models` choices of score, search, eval: auto (tiny when the run captioned with tiny
# models), real (the released checkpoints), tiny (random weights built locally: smoke runs)
MODEL_CHOICES = ("auto", "real", "tiny")
OFFICIAL_VICLIP = "OpenGVLab/ViCLIP/ViClip-InternVid-10M-FLT.pth"  # ViCLIP-L/14, 10M-FLT
TINY_VICLIP = "tiny:viclip"  # the random-weight ViCLIPConfig.tiny() checkpoint
OFFICIAL_CLIP = "openai/clip-vit-large-patch14"  # CLIP ViT-L/14: aesthetic + CLIPScore
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


def _offline() -> bool:
    flags = (os.environ.get(k, "").lower() for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f in ("1", "true", "yes") for f in flags)


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the Hugging Face hub answers within `timeout` (DNS included; never blocks longer)."""
    if _offline():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return url_reachable(f"{endpoint}/api/models?limit=1", timeout)


def url_reachable(url: str, timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether `url` answers within `timeout`, DNS included (the probe runs in a thread)."""
    result: list[bool] = []

    def probe() -> None:
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=timeout):
                result.append(True)
        except Exception:  # any failure means "not reachable"
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _tiny(name: str, cache_dir: str) -> Path | None:
    """Build (once) and return the local folder or file of a `tiny:NAME` model, None if unknown."""
    kind = name[len(TINY_PREFIX) :]
    module = TINY_MODELS.get(kind)
    if module is None:
        return None
    root = default_cache_dir(cache_dir) / "tiny-models"
    return importlib.import_module(module).build_tiny(kind, root)


def split_file_ref(ref: str) -> tuple[str, str]:
    """ "OWNER/REPO/path/in/repo.pth" -> ("OWNER/REPO", "path/in/repo.pth")."""
    parts = ref.split("/")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{ref!r} is neither a local file nor OWNER/REPO/FILE on the hub")
    return "/".join(parts[:2]), "/".join(parts[2:])


def resolve_models(
    names: list[str], cache_dir: str = "", files: list[str] = (), what: str = "captioning"
) -> list[Resolved]:
    """Find every model before any work; raise ModelsUnavailable naming each missing one.

    A name in `names` is a local folder (with config.json and weights), `tiny:NAME` (built on
    the spot), or a hub id found in the Hugging Face cache or, when the hub answers,
    downloadable. A name in `files` is a single weight file: a local path, `tiny:NAME`, or
    `OWNER/REPO/FILE` on the hub (cached, or downloadable).
    """
    found: list[Resolved] = []
    missing: list[str] = []
    fetchable: list[str] = []  # the missing hub models, as `hf download` arguments
    reachable: bool | None = None
    for name, is_file in [(n, False) for n in names] + [(f, True) for f in files]:
        if name.startswith(TINY_PREFIX):
            built = _tiny(name, cache_dir)
            if built is None:
                missing.append(f"{name} (no such tiny model)")
            else:
                found.append(Resolved(name, str(built), "tiny"))
            continue
        local = Path(name).expanduser()
        if is_file and local.is_file():
            found.append(Resolved(name, str(local), "local"))
            continue
        if not is_file and local.is_dir():
            if _complete_folder(local):
                found.append(Resolved(name, str(local), "local"))
            else:
                missing.append(f"{name} (a folder without config.json and weights)")
            continue
        if name.startswith((".", "/", "~")) or (not is_file and name.count("/") > 1):
            missing.append(f"{name} (no such {'file' if is_file else 'folder'})")
            continue
        if is_file and name.startswith(("https://", "http://")):
            local_copy = _url_cache_path(name, cache_dir)
            if local_copy.is_file():
                found.append(Resolved(name, str(local_copy), "cached"))
            elif not _offline() and url_reachable(name):
                found.append(Resolved(name, name, "hub"))
            else:
                missing.append(f"{name} (not downloaded yet, and it does not answer)")
            continue
        if is_file:
            try:
                repo, filename = split_file_ref(name)
            except ValueError as e:
                missing.append(str(e))
                continue
            cached = _cached_file(repo, filename, cache_dir)
            download = f"{repo} {filename}"
        else:
            cached = _cached(name, cache_dir)
            download = name
        if cached:
            found.append(Resolved(name, cached if is_file else name, "cached"))
            continue
        if reachable is None:
            reachable = hub_reachable()
        if reachable:
            found.append(Resolved(name, name, "hub"))
        else:
            missing.append(f"{name} (not in the Hugging Face cache, and the hub is unreachable)")
            fetchable.append(download)
    if missing:
        raise ModelsUnavailable(
            f"{what} models are missing:\n"
            + "".join(f"  - {m}\n" for m in missing)
            + missing_models_hint(what, fetchable)
        )
    return found


# the options that name models, of the command whose `what` (resolve_models') is the key; every
# one of these commands also has --cache-dir and --models
MODEL_OPTIONS = {
    "captioning and scoring": ("--coarse-model", "--fine-model", "--fusion-model", "--viclip",
                               "--clip-model", "--aesthetic-head"),  # internvid run
    "captioning": ("--coarse-model", "--fine-model", "--fusion-model"),  # run's captioners only
    "scoring": ("--viclip", "--clip-model", "--aesthetic-head"),  # internvid score
    "search": ("--viclip",),  # internvid search
    "eval": ("--model",),  # internvid eval
}  # fmt: skip


def missing_models_hint(what: str, fetchable: list[str]) -> str:
    """How to supply missing models: the `hf download` line of each hub model in `fetchable`
    ("REPO" or "REPO FILE"), and only the options the command of `what` has (MODEL_OPTIONS;
    another `what`, e.g. a call from Python, is told of no option)."""
    options = MODEL_OPTIONS.get(what)
    lines = ["Supply them in one of these ways:"]
    if fetchable:
        where = "give --cache-dir CACHE" if options else "pass cache_dir=CACHE"
        lines.append(
            "  - where the hub is reachable, download them into a cache folder, bring that "
            f"folder here and {where} (or set HF_HUB_CACHE=CACHE):"
        )
        lines += [f"      hf download {ref} --cache-dir CACHE" for ref in fetchable]
    local = "give local folders or files instead"
    if options:
        local += f" ({', '.join(options)}, or the config's keys)"
    if fetchable:
        local += "; `hf download REPO [FILE] --local-dir DIR` writes them into DIR"
    lines.append(f"  - {local};")
    tiny = "--models tiny" if options else "tiny models (tiny:NAME)"
    lines.append(
        f"  - run with {tiny} for an offline smoke run (random weights: the results are noise)."
    )
    return "\n".join(lines)


def _cached_file(repo_id: str, filename: str, cache_dir: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    hit = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir or None)
    return hit if isinstance(hit, str) else None


def _url_cache_path(url: str, cache_dir: str = "") -> Path:
    import hashlib

    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or "file"
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return default_cache_dir(cache_dir) / "downloads" / f"{digest}-{name}"


def fetch_file(ref: str, cache_dir: str = "") -> str:
    """A resolved file reference -> a local path (downloads `OWNER/REPO/FILE` or a URL once)."""
    if Path(ref).is_file():
        return ref
    if ref.startswith(("https://", "http://")):
        import urllib.request

        from internvid.io.atomic import atomic_open

        target = _url_cache_path(ref, cache_dir)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(ref, timeout=60) as r, atomic_open(target, "wb") as f:
                f.write(r.read())
        return str(target)
    from huggingface_hub import hf_hub_download

    repo, filename = split_file_ref(ref)
    return hf_hub_download(repo, filename, cache_dir=cache_dir or None)


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


def viclip_ref(models: str = "auto", viclip: str | None = None, tiny_run: bool = False) -> str:
    """The ViCLIP checkpoint that `--models` and `--viclip` pick (`tiny_run`: the run captioned
    with tiny models, which `auto` follows)."""
    if models not in MODEL_CHOICES:
        raise ValueError(f"--models must be one of {MODEL_CHOICES}, not {models!r}")
    if viclip:
        return str(Path(viclip).expanduser().resolve()) if Path(viclip).is_file() else viclip
    tiny = models == "tiny" or (models == "auto" and tiny_run)
    return TINY_VICLIP if tiny else OFFICIAL_VICLIP


def load_viclip(
    ref: str,
    cache_dir: str = "",
    device: str = "auto",
    dtype: str = "auto",
    resolved: str | None = None,
    what: str = "ViCLIP",
    *,
    config: Any = None,
    edit_state: Any = None,
) -> Any:
    """The one ViCLIP loader: find `ref` (a checkpoint file, OWNER/REPO/FILE or tiny:viclip;
    `resolved` when resolve_models already found it), fetch it, load it on `device` in `dtype`
    ("auto" picks), eval mode. Raises ModelsUnavailable naming it when it cannot be had.
    `config`: the ViCLIPConfig to build (None: tiny for tiny:viclip, else inferred from the
    weights); `edit_state`: a function of the checkpoint's state dict returning the weights to
    load instead (eval's WiSE-FT average)."""
    from internvid.models import ViCLIPConfig, read_state_dict
    from internvid.models import load_viclip as load_checkpoint

    if resolved is None:
        resolved = resolve_models([], cache_dir, files=[ref], what=what)[0].path
    path = fetch_file(resolved, cache_dir)
    dev = pick_device(device)
    if config is None and ref == TINY_VICLIP:
        config = ViCLIPConfig.tiny()  # else inferred from the file
    source = path if edit_state is None else edit_state(read_state_dict(path))
    torch_dtype = pick_dtype(dtype, dev) if isinstance(dtype, str) else dtype
    return load_checkpoint(source, config, device=dev, dtype=torch_dtype).eval()
