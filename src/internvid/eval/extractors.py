"""Feature extractors of `internvid eval-gen`: I3D (FVD), Inception-v3 (FID, IS), CLIP (CLIPSIM)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and numpy load inside the functions: `internvid --help` stays fast
    import numpy as np
    import torch

I3D_SIZE = 224  # I3D input side: frames are resized to I3D_SIZE x I3D_SIZE
# I3D call of the common FVD code: input already in [-1, 1] at 224 px, the 400 logits out.
I3D_KWARGS = {"rescale": False, "resize": False, "return_features": True}
DEFAULT_CLIP = "openai/clip-vit-base-patch32"  # CLIPSIM's model in the text-to-video papers
# Where users get each TorchScript extractor (named in the error when the file is missing).
I3D_SOURCE = (
    "i3d_torchscript.pt: StyleGAN-V's TorchScript port of the Kinetics-400 I3D of the original "
    "FVD code, used by most FVD code (https://www.dropbox.com/s/ge9e5ujwgetktms/"
    "i3d_torchscript.pt?dl=1)"
)
INCEPTION_SOURCE = (
    "inception-2015-12-05.pt: the TorchScript Inception-v3 of stylegan2-ada-pytorch and clean-fid "
    "(https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    "inception-2015-12-05.pt)"
)


class ExtractorMissing(FileNotFoundError):
    """A feature extractor the requested metrics need is not where it was said to be."""


def i3d_input(clip: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(T, H, W, 3) uint8 frames -> the (3, T, 224, 224) float32 I3D input in [-1, 1]: each
    frame resized to 224 x 224 (bilinear, no crop, as the original FVD code), then x / 127.5 - 1."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(clip).to(device).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if x.shape[-2:] != (I3D_SIZE, I3D_SIZE):
        x = F.interpolate(x, size=(I3D_SIZE, I3D_SIZE), mode="bilinear", align_corners=False)
    return (x / 127.5 - 1.0).permute(1, 0, 2, 3).contiguous()


def i3d_features(model: Any, clips: Sequence[np.ndarray], device: str = "cpu") -> np.ndarray:
    """(N, 400) I3D logits (the "features" of FVD) of N clips with the same frame count."""
    import torch

    with torch.no_grad():
        x = torch.stack([i3d_input(c, device) for c in clips])  # (N, 3, T, 224, 224)
        return model(x, **I3D_KWARGS).double().cpu().numpy()


def _same_shape_runs(clips: Sequence[np.ndarray]) -> Iterator[list[np.ndarray]]:
    run: list[np.ndarray] = []
    for clip in clips:
        if run and clip.shape != run[0].shape:
            yield run
            run = []
        run.append(clip)
    if run:
        yield run


def inception_features(
    model: Any, clips: Sequence[np.ndarray], device: str = "cpu", probs: bool = False
) -> np.ndarray:
    """Per frame, in order: the 2048 pool features (FID) or, with `probs`, the 1008 class
    probabilities without the output bias (IS, as stylegan2-ada-pytorch) of the Inception-v3
    TorchScript, which takes (N, 3, H, W) uint8 frames at any size and resizes them itself."""
    import numpy as np
    import torch

    kwargs = {"no_output_bias": True} if probs else {"return_features": True}
    out = []
    with torch.no_grad():
        for run in _same_shape_runs(clips):
            frames = torch.from_numpy(np.concatenate(run)).to(device)  # (sum T, H, W, 3)
            x = frames.permute(0, 3, 1, 2).contiguous()  # (sum T, 3, H, W) uint8
            out.append(model(x, **kwargs).double().cpu().numpy())
    return np.concatenate(out)


def video_clipsims(scorer: Any, clips: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
    """Per video, the mean over its frames of the CLIP image-text cosine with its prompt.

    `scorer` embeds like `internvid.scores.clipscore.ClipScorer` (L2-normalised image and text
    embeddings); the cosine is plain (not x 100, not clamped).
    """
    import torch

    if len(clips) != len(prompts):
        raise ValueError(f"{len(clips)} videos but {len(prompts)} prompts")
    texts = scorer.embed_texts(list(prompts))  # (N, D)
    frames = [f for clip in clips for f in clip]
    step = max(1, int(getattr(scorer, "batch_size", 32)))
    images = torch.cat(
        [scorer.embed_images(frames[i : i + step]) for i in range(0, len(frames), step)]
    )
    out, start = [], 0
    for clip, text in zip(clips, texts, strict=True):
        cos = images[start : start + len(clip)] @ text  # (T,)
        out.append(float(cos.double().mean()))
        start += len(clip)
    return out


def clipsim(scorer: Any, clips: Sequence[np.ndarray], prompts: Sequence[str]) -> float:
    """CLIPSIM: the mean over videos of `video_clipsims`."""
    import numpy as np

    return float(np.mean(video_clipsims(scorer, clips, prompts)))


def check_extractors(
    metrics: Iterable[str], i3d: str | Path | None, inception: str | Path | None, clip: str
) -> None:
    """Raise ExtractorMissing naming every extractor file the metrics need that is not there."""
    wanted = set(metrics)
    missing = []
    for metric_set, value, option, source in (
        ({"fvd"}, i3d, "--i3d", I3D_SOURCE),
        ({"fid", "is"}, inception, "--inception", INCEPTION_SOURCE),
    ):
        need = sorted(wanted & metric_set)
        if not need:
            continue
        if value is None:
            missing.append(f"{'/'.join(need).upper()} needs {option} PATH: {source}")
        elif not Path(value).expanduser().is_file():
            missing.append(f"{value}: no such file ({option}); it should be {source}")
    looks_local = str(clip).startswith((".", "/", "~"))
    if "clipsim" in wanted and looks_local and not Path(clip).expanduser().is_dir():
        missing.append(f"{clip}: no such CLIP folder (--clip)")
    if missing:
        raise ExtractorMissing(
            "feature extractors are missing:\n" + "".join(f"  - {m}\n" for m in missing)
        )


def load_torchscript(path: str | Path, device: str = "cpu") -> Any:
    """A TorchScript extractor in eval mode on `device` (torch.jit.load with map_location)."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise ExtractorMissing(f"{path}: no such file")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as e:
        raise ValueError(f"{path}: not a TorchScript file ({str(e).splitlines()[0]})") from e


def load_clip(name_or_path: str, device: str = "cpu", dtype: Any = None) -> Any:
    """The CLIPSIM scorer: a CLIP (hub id or folder) through ClipScorer, in `dtype` (a torch
    dtype; None: float32)."""
    import torch

    from internvid.scores.clipscore import ClipScorer

    try:
        return ClipScorer(name_or_path, device=device, dtype=dtype or torch.float32)
    except OSError as e:
        raise ExtractorMissing(
            f"CLIP {name_or_path!r} cannot be loaded ({str(e).splitlines()[0]}); give a local "
            f"folder, or download {DEFAULT_CLIP} where the hub is reachable "
            f"(`hf download {DEFAULT_CLIP}`) and point HF_HOME at that cache"
        ) from e
