"""LAION aesthetic score of a clip: CLIP ViT-L/14 image embeddings into a LAION head, frame max."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from internvid.scores.base import Loaded, ModelRef, ScoreItem, Scorer, register

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# The CLIP whose image embeddings both LAION heads were trained on (OpenAI ViT-L/14, 768-d).
DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
# The improved aesthetic predictor head (christophschuhmann/improved-aesthetic-predictor) as a
# hub reference "repo_id/filename". Unverified here (the hub is unreachable from our build
# machines): it is the mirror other projects fetch with hf_hub_download. The original lives in
# the GitHub repository itself; TRL loads trl-lib/ddpo-aesthetic-predictor/aesthetic-model.pth
# into the same MLP layout (also unverified). Any of them can be given as a local path instead.
IMPROVED_MLP_HEAD = "camenduru/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth"
# Where the original LAION linear head is published (GitHub, not the hub): download it and pass
# the local path. https://github.com/LAION-AI/aesthetic-predictor/raw/main/ + this name.
LAION_LINEAR_HEAD_NAME = "sa_0_4_vit_l_14_linear.pth"
# The head used when none is given.
DEFAULT_HEAD = IMPROVED_MLP_HEAD

# State-dict keys of the LAION linear head: a bare nn.Linear(768, 1).
LINEAR_KEYS = ("weight", "bias")
# Indices of the Linear layers inside the improved head's `layers` nn.Sequential (the others
# are Dropout layers, which have no weights).
MLP_LINEAR_INDICES = (0, 2, 4, 6, 7)
# Output width of each of those Linear layers, in order (the input of the first is the CLIP
# embedding width).
MLP_WIDTHS = (1024, 128, 64, 16, 1)
# Dropout probability after each Linear layer that has one, by layer index (eval: identity).
MLP_DROPOUTS = {1: 0.2, 3: 0.2, 5: 0.1}
# State-dict keys of the improved MLP head, in order.
MLP_KEYS = tuple(f"layers.{i}.{p}" for i in MLP_LINEAR_INDICES for p in ("weight", "bias"))
# The two head formats, by name.
HEAD_FORMATS = ("linear", "mlp")


class HeadFormatError(ValueError):
    """An aesthetic head file is not in one of the two official formats."""


def make_head_module(fmt: str, dim: int) -> torch.nn.Module:
    """An untrained head of the given format taking `dim`-wide embeddings (official layout)."""
    from torch import nn

    if fmt == "linear":
        return nn.Linear(dim, 1)
    if fmt != "mlp":
        raise ValueError(f"unknown aesthetic head format {fmt!r}; choose from {HEAD_FORMATS}")
    layers: list[nn.Module] = []
    width = dim
    for out in MLP_WIDTHS:
        layers.append(nn.Linear(width, out))
        if len(layers) in MLP_DROPOUTS:
            layers.append(nn.Dropout(MLP_DROPOUTS[len(layers)]))
        width = out

    class ImprovedAestheticMLP(nn.Module):
        """The improved-aesthetic-predictor MLP: Linear/Dropout stack, no activations."""

        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    return ImprovedAestheticMLP()


def detect_head_format(state: Mapping[str, Any], source: str = "head") -> tuple[str, int]:
    """(format, input width) of a head state dict; HeadFormatError naming any wrong key or shape."""
    keys = set(state)
    if any(k.startswith("layers.") for k in keys):
        fmt, expected = "mlp", MLP_KEYS
    elif keys & set(LINEAR_KEYS):
        fmt, expected = "linear", LINEAR_KEYS
    else:
        raise HeadFormatError(
            f"{source}: keys {sorted(keys)} match no aesthetic head format: expected "
            f"{list(LINEAR_KEYS)} (LAION linear) or {list(MLP_KEYS)} (improved MLP)"
        )
    unexpected = sorted(keys - set(expected))
    missing = [k for k in expected if k not in keys]
    if unexpected or missing:
        raise HeadFormatError(
            f"{source}: not a valid {fmt} aesthetic head: unexpected key(s) {unexpected}, "
            f"missing key(s) {missing}; expected exactly {list(expected)}"
        )
    first = state["weight"] if fmt == "linear" else state["layers.0.weight"]
    if len(first.shape) != 2:
        raise HeadFormatError(f"{source}: first weight has shape {tuple(first.shape)}, not 2-D")
    dim = int(first.shape[1])
    shapes = _expected_shapes(fmt, dim)
    for key, shape in shapes.items():
        if tuple(state[key].shape) != shape:
            raise HeadFormatError(
                f"{source}: {key} has shape {tuple(state[key].shape)}, expected {shape} "
                f"for a {fmt} aesthetic head"
            )
    return fmt, dim


def _expected_shapes(fmt: str, dim: int) -> dict[str, tuple[int, ...]]:
    if fmt == "linear":
        return {"weight": (1, dim), "bias": (1,)}
    shapes: dict[str, tuple[int, ...]] = {}
    width = dim
    for index, out in zip(MLP_LINEAR_INDICES, MLP_WIDTHS, strict=True):
        shapes[f"layers.{index}.weight"] = (out, width)
        shapes[f"layers.{index}.bias"] = (out,)
        width = out
    return shapes


def resolve_head_path(head: str | Path, cache_dir: str | None = None) -> Path:
    """A local head file, or a hub reference "owner/repo/filename" fetched (and cached) with
    huggingface_hub.hf_hub_download."""
    path = Path(head).expanduser()
    if path.is_file():
        return path
    text = str(head)
    parts = text.split("/")
    if text.startswith(("/", ".", "~")) or len(parts) < 3 or not all(parts):
        raise FileNotFoundError(
            f"aesthetic head {text!r} is not a file; give a local path, or a hub reference "
            f"'owner/repo/filename' such as {IMPROVED_MLP_HEAD!r}"
        )
    from huggingface_hub import hf_hub_download

    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=cache_dir))
    except Exception as exc:  # offline, missing repo or file: one clear message
        raise FileNotFoundError(
            f"aesthetic head {text!r} is not a local file and could not be fetched from the "
            f"Hugging Face hub (repo {repo_id!r}, file {filename!r}): {exc}. Download it where "
            "the hub is reachable and pass its local path."
        ) from exc


def load_head(head: str | Path, cache_dir: str | None = None) -> tuple[str, torch.nn.Module]:
    """Load a head file (local or hub reference): its format and the module in eval mode, fp32."""
    import torch

    path = resolve_head_path(head, cache_dir)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise HeadFormatError(f"{path}: expected a state dict, found {type(state).__name__}")
    fmt, dim = detect_head_format(state, str(path))
    module = make_head_module(fmt, dim)
    module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return fmt, module.eval()


def l2_normalize(embeddings: torch.Tensor) -> torch.Tensor:
    """LAION's normalisation: divide each row by its L2 norm, rows of norm 0 left as they are."""
    import torch

    norm = embeddings.norm(p=2, dim=-1, keepdim=True)
    return embeddings / torch.where(norm == 0, torch.ones_like(norm), norm)


def resolve_device_dtype(device: str, dtype: Any) -> tuple[str, torch.dtype]:
    """ "auto" device -> cuda if present; dtype None -> fp32, a string ("fp16", "auto"...) or a
    torch dtype."""
    import torch

    from internvid.hub import pick_device, pick_dtype

    device = pick_device(device)
    if dtype is None:
        return device, torch.float32
    if isinstance(dtype, str):
        return device, pick_dtype(dtype, device)
    return device, dtype


def load_pretrained(cls: Any, name_or_path: str, dtype: Any, cache_dir: str | None = None) -> Any:
    """cls.from_pretrained without transformers' load report and progress bars (loading a
    CLIPModel checkpoint into one tower lists the other tower as unexpected), failing instead
    when any weight of the model is missing from the checkpoint."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = cls.from_pretrained(
            name_or_path, dtype=dtype, cache_dir=cache_dir, output_loading_info=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ValueError(
            f"{name_or_path} lacks {len(missing)} weight(s) of {cls.__name__}, e.g. {missing[:3]}"
        )
    return model


class AestheticScorer:
    """LAION aesthetic score per clip: the max over its frames of the head's prediction.

    Each frame (RGB uint8 HxWx3) goes through the CLIP image processor and the CLIP vision
    tower with projection (= OpenAI CLIP's encode_image), is L2-normalised in fp32 as LAION
    does, then scored by the head (LAION linear or improved MLP, detected from the file's keys).
    The paper's rule is the max over 4 uniformly sampled frames: callers sample, we take the max.
    Models load once, in the constructor.
    """

    def __init__(
        self,
        clip_model: str | Path = DEFAULT_CLIP_MODEL,
        head: str | Path = DEFAULT_HEAD,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 32,
        cache_dir: str | None = None,
    ) -> None:
        from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

        clip_model = str(clip_model)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        self.batch_size = batch_size  # frames per forward pass
        self.head_format, head_module = load_head(head, cache_dir)
        self.head = head_module.to(self.device)
        # The PIL backend matches OpenAI CLIP's preprocessing and needs no torchvision.
        self.processor = CLIPImageProcessorPil.from_pretrained(clip_model, cache_dir=cache_dir)
        model = load_pretrained(CLIPVisionModelWithProjection, clip_model, self.dtype, cache_dir)
        self.model = model.to(self.device).eval()
        dim = int(self.model.config.projection_dim)
        head_dim = int(next(self.head.parameters()).shape[1])
        if head_dim != dim:
            raise HeadFormatError(
                f"aesthetic head {head!s} takes {head_dim}-d embeddings but {clip_model} makes "
                f"{dim}-d ones (the LAION heads need CLIP ViT-L/14)"
            )
        logger.debug(
            "aesthetic scorer: %s + %s head on %s, %s",
            clip_model,
            self.head_format,
            self.device,
            self.dtype,
        )

    def embed(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """L2-normalised fp32 CLIP image embeddings (N x 768) of the frames, on the CPU."""
        import torch

        out: list[torch.Tensor] = []
        for i in range(0, len(frames), self.batch_size):
            batch = list(frames[i : i + self.batch_size])
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                emb = self.model(pixel_values=pixels.to(self.device, self.dtype)).image_embeds
            out.append(l2_normalize(emb.float()).cpu())
        if not out:
            return torch.zeros((0, int(self.model.config.projection_dim)))
        return torch.cat(out)

    def score_frames(self, frames: Sequence[np.ndarray]) -> list[float]:
        """The head's aesthetic prediction for each frame, in order."""
        import torch

        emb = self.embed(frames)
        if len(emb) == 0:
            return []
        with torch.inference_mode():
            scores = self.head(emb.to(self.device)).squeeze(-1)
        return [float(s) for s in scores.cpu()]

    def score_clips(self, clips: Sequence[Sequence[np.ndarray]]) -> list[float]:
        """Per clip, the max over its frames of the aesthetic score (frames of all clips are
        batched together)."""
        empty = [i for i, clip in enumerate(clips) if len(clip) == 0]
        if empty:
            raise ValueError(f"clips {empty} have no frames to score")
        scores = self.score_frames([frame for clip in clips for frame in clip])
        out: list[float] = []
        start = 0
        for clip in clips:
            out.append(max(scores[start : start + len(clip)]))
            start += len(clip)
        return out


# the published heads by the names score.aesthetic_head accepts (improved MLP; LAION's first)
AESTHETIC_HEADS = {
    "mlp": IMPROVED_MLP_HEAD,
    "linear": f"https://github.com/LAION-AI/aesthetic-predictor/raw/main/{LAION_LINEAR_HEAD_NAME}",
}
NEED_UNIFORM = "score_uniform"  # 4 uniform frames, 224 px short side (the paper: max over them)


def clip_ref(cfg: Any, tiny: bool) -> ModelRef:
    """The CLIP of the aesthetic and clipscore scores (one model, shared)."""
    from internvid.hub import OFFICIAL_CLIP

    return ModelRef(cfg.clip_model or ("tiny:clip" if tiny else OFFICIAL_CLIP), "folder")


@register
class Aesthetic(Scorer):
    """The LAION aesthetic predictor on CLIP ViT-L/14 embeddings, max over 4 uniform frames."""

    name = "aesthetic"
    description = "LAION aesthetic predictor, max over 4 frames"
    order = 40

    def frame_needs(self) -> tuple[Any, ...]:
        from internvid.media.onepass import FrameNeed

        return (FrameNeed(NEED_UNIFORM, "uniform", 4, short_side=224),)

    def models(self, tiny: bool) -> dict[str, ModelRef]:
        head = self.cfg.aesthetic_head
        if head in AESTHETIC_HEADS:
            head = f"tiny:aesthetic-{head}" if tiny else AESTHETIC_HEADS[head]
        return {"clip": clip_ref(self.cfg, tiny), "aesthetic_head": ModelRef(head, "file")}

    def load(self, ctx: Loaded) -> None:
        from internvid.hub import fetch_file

        self.scorer = AestheticScorer(
            clip_model=ctx.path("clip"),
            head=fetch_file(ctx.path("aesthetic_head")),
            device=ctx.device,
            dtype=ctx.dtype,
            batch_size=self.cfg.batch_size,
        )

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        values = self.scorer.score_clips([it.frames[NEED_UNIFORM] for it in items])
        return [{self.name: round(float(v), 4)} for v in values]
