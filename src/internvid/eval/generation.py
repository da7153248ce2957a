"""Text-to-video generation metrics of generated videos: FVD, FID, IS and CLIPSIM (`internvid eval-gen`)."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # torch and numpy load inside the functions: `internvid --help` stays fast
    import numpy as np
    import torch

log = logging.getLogger(__name__)

METRICS = ("fvd", "fid", "is", "clipsim")  # what `evaluate_generation` can compute
NUM_FRAMES = 16  # frames per video: the 16-frame clips of FVD (the original code, StyleGAN-V)
I3D_SIZE = 224  # I3D input side: frames are resized to I3D_SIZE x I3D_SIZE
# I3D call of the common FVD code: input already in [-1, 1] at 224 px, the 400 logits out.
I3D_KWARGS = {"rescale": False, "resize": False, "return_features": True}
IS_SPLITS = 10  # Inception Score splits (Salimans et al. 2016)
DEFAULT_CLIP = "openai/clip-vit-base-patch32"  # CLIPSIM's model in the text-to-video papers
DEFAULT_BATCH = 8  # videos per extractor call
PROMPT_KEYS = ("caption", "prompt", "text")  # list-file columns holding a video's prompt
VIDEO_KEYS = ("video", "path", "video_path", "clip", "file")  # list-file columns naming a video
PROGRESS_EVERY_S = 10.0  # seconds between progress log lines
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


# ------------------------------------------------------------------------- Fréchet distance


class FeatureStats:
    """Running mean and covariance of feature rows, merged batch by batch (Chan et al.), so
    that the rows need not be kept; float64 throughout."""

    def __init__(self) -> None:
        self.count = 0  # rows seen
        self.mean: np.ndarray | None = None  # (D,) mean of the rows seen
        self.m2: np.ndarray | None = None  # (D, D) sum of outer products of centred rows

    def add(self, rows: Any) -> None:
        """Add a (N, D) batch of feature rows."""
        import numpy as np

        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got {x.shape}")
        if len(x) == 0:
            return
        mean_b = x.mean(0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = len(x), mean_b, m2_b
            return
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features of width {x.shape[1]} added to {self.mean.shape[0]}")
        n_a, n_b = self.count, len(x)
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the unbiased (N - 1) covariance, as `np.cov`; needs two rows or more."""
        if self.count < 2 or self.mean is None or self.m2 is None:
            raise ValueError(f"a covariance needs at least 2 feature rows, got {self.count}")
        return self.mean, self.m2 / (self.count - 1)


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, D) features (N >= 2)."""
    stats = FeatureStats()
    stats.add(features)
    return stats.mean_cov()


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh; negative
    eigenvalues, rounding noise, are taken as 0)."""
    import numpy as np

    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    The trace of (S1 S2)^(1/2) is computed without a general matrix square root: for positive
    semi-definite S1, S2 the product S1 S2 is similar to S1^(1/2) S2 S1^(1/2) = A A^T with
    A = S1^(1/2) S2^(1/2), so the eigenvalues of (S1 S2)^(1/2) are the singular values of A
    and the trace is their sum (symmetric roots by `eigh`, then one SVD; float64). This holds
    for singular covariances too (fewer samples than dimensions), where `scipy.linalg.sqrtm`
    may need the usual eps * I offset, and stays on the scale of the covariances (the
    eigenvalues of A A^T would be on their square, losing half the digits near zero).
    """
    import numpy as np

    mu1, mu2 = np.asarray(mu1, np.float64).reshape(-1), np.asarray(mu2, np.float64).reshape(-1)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or s1.shape != (dim, dim) or s2.shape != (dim, dim):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}"
        )
    trace_covmean = float(np.linalg.svd(_sqrt_psd(s1) @ _sqrt_psd(s2), compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_covmean)


# --------------------------------------------------------------------------- Inception Score


def inception_score(
    scores: Any, splits: int = IS_SPLITS, from_logits: bool = False
) -> tuple[float, float]:
    """Inception Score (mean, std over `splits`) of class probabilities (N, C), or logits.

    Split i is rows [i N // splits, (i + 1) N // splits), as in the original code and
    stylegan2-ada-pytorch; per split exp(mean over rows of KL(p(y|x) || p(y))), where p(y) is
    the split's mean; the std is NumPy's (population). Zero probabilities add 0 to the KL.
    """
    import numpy as np

    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"scores must be (N, C), got {x.shape}")
    if splits < 1 or len(x) < splits:
        raise ValueError(f"the Inception Score needs at least {splits} rows, got {len(x)}")
    if from_logits:
        shifted = x - x.max(1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        probs = np.exp(logp)
    else:
        probs = x
        logp = np.log(probs, out=np.zeros_like(probs), where=probs > 0)
    n = len(x)
    values = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        marginal = probs[lo:hi].mean(0)
        log_marginal = np.log(marginal, out=np.zeros_like(marginal), where=marginal > 0)
        kl = np.where(probs[lo:hi] > 0, probs[lo:hi] * (logp[lo:hi] - log_marginal), 0.0)
        values.append(float(np.exp(kl.sum(1).mean())))
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------- decoding


def decode_frames(path: str | Path, num_frames: int = NUM_FRAMES, stride: int = 1) -> np.ndarray:
    """The first `num_frames` frames of a video, every `stride`-th from frame 0, as
    (T, H, W, 3) uint8 RGB; ValueError when the video is shorter."""
    import numpy as np

    from internvid.media.onepass import open_video

    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1: {num_frames}, {stride}")
    container, stream = open_video(path)
    frames: list[np.ndarray] = []
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i % stride == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == num_frames:
                    break
    finally:
        container.close()
    if len(frames) < num_frames:
        raise ValueError(
            f"{path}: only {len(frames)} frames at stride {stride}; {num_frames} are needed"
        )
    return np.stack(frames)


@dataclass
class VideoItem:
    """One video to evaluate and, for CLIPSIM, its prompt."""

    path: Path  # the video file
    prompt: str | None = None  # the text it was generated from (None: not known)


def _sidecar_prompt(path: Path) -> str | None:
    side = path.with_suffix(".txt")
    if side.is_file():
        return side.read_text(encoding="utf-8").strip() or None
    return None


def list_videos(spec: str | Path) -> list[VideoItem]:
    """The videos of a folder (recursive, sorted) or of a list file, with their prompts.

    A list is .txt (one path per line) or .jsonl/.json/.csv (a `video`/`path` column and a
    `caption`/`prompt`/`text` column); relative paths are relative to the list. A video without
    a prompt column takes the text of its sidecar `STEM.txt` when there is one.
    """
    from internvid.config import VIDEO_EXTENSIONS
    from internvid.evaluate import read_rows

    spec = Path(spec).expanduser()
    if spec.is_dir():
        exts = {*VIDEO_EXTENSIONS, ".gif"}
        files = sorted(f for f in spec.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        return [VideoItem(f, _sidecar_prompt(f)) for f in files]
    if not spec.is_file():
        raise FileNotFoundError(f"{spec}: no such folder or list file")
    items: list[VideoItem] = []
    if spec.suffix.lower() == ".txt":
        names = [ln.strip() for ln in spec.read_text(encoding="utf-8").splitlines()]
        rows: list[dict[str, Any]] = [{"video": n} for n in names if n and not n.startswith("#")]
    else:
        rows = read_rows(spec)
    for i, row in enumerate(rows):
        name = next((row[k] for k in VIDEO_KEYS if row.get(k)), None)
        if name is None:
            raise ValueError(f"{spec}: record {i} has no video column ({', '.join(VIDEO_KEYS)})")
        path = Path(str(name)).expanduser()
        path = path if path.is_absolute() else spec.parent / path
        prompt = next((str(row[k]) for k in PROMPT_KEYS if row.get(k)), None)
        items.append(VideoItem(path, prompt if prompt is not None else _sidecar_prompt(path)))
    return items


def iter_clips(
    items: Sequence[VideoItem], num_frames: int, stride: int, workers: int = 2
) -> Iterator[tuple[VideoItem, np.ndarray | str]]:
    """(item, frames) in order, or (item, reason) for a video that cannot be decoded; decoded
    in `workers` threads, at most 2 x workers videos ahead of the consumer."""
    import av

    def load(item: VideoItem) -> np.ndarray | str:
        try:
            return decode_frames(item.path, num_frames, stride)
        except (OSError, ValueError, av.error.FFmpegError) as e:
            return str(e) or type(e).__name__

    ahead = max(1, workers) * 2
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque[tuple[VideoItem, Future]] = deque()
        todo = iter(items)
        for item in todo:
            pending.append((item, pool.submit(load, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(load, nxt)))
            yield item, future.result()


# -------------------------------------------------------------------------------- extractors


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


def load_clip(name_or_path: str, device: str = "cpu") -> Any:
    """The CLIPSIM scorer: a CLIP (hub id or folder) through ClipScorer, in float32."""
    import torch

    from internvid.scores.clipscore import ClipScorer

    try:
        return ClipScorer(name_or_path, device=device, dtype=torch.float32)
    except OSError as e:
        raise ExtractorMissing(
            f"CLIP {name_or_path!r} cannot be loaded ({str(e).splitlines()[0]}); give a local "
            f"folder, or download {DEFAULT_CLIP} where the hub is reachable "
            f"(`hf download {DEFAULT_CLIP}`) and point HF_HOME at that cache"
        ) from e


# ---------------------------------------------------------------------------------------- run


def _progress(what: str, total: int) -> Callable[[int], None]:
    start = last = time.monotonic()

    def tick(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= PROGRESS_EVERY_S:
            last = now
            log.info("%s: %d/%d videos (%.1f s)", what, done, total, now - start)

    return tick


@dataclass
class _Pass:
    """What one pass over a set of videos collects."""

    i3d: FeatureStats | None = None  # FVD features, when asked
    inception: FeatureStats | None = None  # FID features, when asked
    probs: list[np.ndarray] | None = None  # IS probabilities per batch, when asked
    sims: list[float] | None = None  # CLIPSIM per video, when asked
    videos: int = 0  # videos that went in
    frames: int = 0  # frames that went in
    skipped: list[dict[str, str]] | None = None  # videos that could not be decoded


def _run_pass(
    what: str,
    items: Sequence[VideoItem],
    models: dict[str, Any],
    wanted: set[str],
    *,
    num_frames: int,
    stride: int,
    device: str,
    batch_size: int,
    workers: int,
) -> _Pass:
    out = _Pass(
        i3d=FeatureStats() if "fvd" in wanted else None,
        inception=FeatureStats() if "fid" in wanted else None,
        probs=[] if "is" in wanted else None,
        sims=[] if "clipsim" in wanted else None,
        skipped=[],
    )
    tick = _progress(what, len(items))
    batch: list[tuple[VideoItem, np.ndarray]] = []

    def flush() -> None:
        clips = [c for _, c in batch]
        if out.i3d is not None:
            out.i3d.add(i3d_features(models["i3d"], clips, device))
        if out.inception is not None:
            out.inception.add(inception_features(models["inception"], clips, device))
        if out.probs is not None:
            out.probs.append(inception_features(models["inception"], clips, device, probs=True))
        if out.sims is not None:
            prompts = [str(item.prompt) for item, _ in batch]
            out.sims.extend(video_clipsims(models["clip"], clips, prompts))
        out.videos += len(clips)
        out.frames += sum(len(c) for c in clips)
        batch.clear()

    for done, (item, clip) in enumerate(iter_clips(items, num_frames, stride, workers), 1):
        if isinstance(clip, str):
            log.warning("%s: skipped %s: %s", what, item.path, clip)
            out.skipped.append({"video": str(item.path), "reason": clip})
        else:
            batch.append((item, clip))
            if len(batch) == batch_size:
                flush()
        tick(done)
    if batch:
        flush()
    return out


def _load_reference_stats(path: Path, wanted: set[str]) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as data:
        stats = {k: data[k] for k in data.files}
    for metric in sorted(wanted & {"fvd", "fid"}):
        if f"{metric}_mu" not in stats:
            raise ValueError(
                f"{path}: no {metric.upper()} statistics ({metric}_mu, {metric}_sigma)"
            )
    return stats


def evaluate_generation(
    generated: str | Path,
    reference: str | Path | None = None,
    *,
    metrics: Sequence[str] = METRICS,
    i3d: str | Path | None = None,
    inception: str | Path | None = None,
    clip: str = DEFAULT_CLIP,
    num_frames: int = NUM_FRAMES,
    stride: int = 1,
    splits: int = IS_SPLITS,
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
    save_reference_stats: str | Path | None = None,
) -> dict[str, Any]:
    """FVD, FID (generated against reference), IS and CLIPSIM (generated) of video folders/lists.

    Every video gives its first `num_frames` frames at `stride`; FVD uses them as one I3D clip,
    FID, IS and CLIPSIM as frames. `reference` may be a `.npz` of statistics written by
    `save_reference_stats`. Returns {"metrics": {...}, "generated": {...}, "reference": {...},
    "settings": {...}, "seconds"}.
    """
    import numpy as np
    import torch

    start = time.monotonic()
    wanted = set(metrics)
    unknown = sorted(wanted - set(METRICS))
    if unknown or not wanted:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be >= 1")
    needs_reference = wanted & {"fvd", "fid"}
    if needs_reference and reference is None:
        raise ValueError(f"{'/'.join(sorted(needs_reference)).upper()} need --reference videos")
    gen_items = list_videos(generated)
    if not gen_items:
        raise ValueError(f"{generated}: no videos")
    if "clipsim" in wanted:
        lacking = [str(it.path) for it in gen_items if not it.prompt]
        if lacking:
            raise ValueError(
                f"CLIPSIM needs a prompt per generated video; {len(lacking)} have none "
                f"(a caption column in the list or a STEM.txt beside the video), e.g. {lacking[0]}"
            )
    ref_stats: dict[str, Any] | None = None
    ref_items: list[VideoItem] = []
    if needs_reference:
        ref_path = Path(reference).expanduser()  # type: ignore[arg-type]
        if ref_path.suffix.lower() == ".npz":
            ref_stats = _load_reference_stats(ref_path, wanted)
        else:
            ref_items = list_videos(ref_path)
            if not ref_items:
                raise ValueError(f"{reference}: no videos")
    check_extractors(wanted, i3d, inception, clip)

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    models: dict[str, Any] = {}
    if "fvd" in wanted:
        models["i3d"] = load_torchscript(i3d, device)  # type: ignore[arg-type]
    if wanted & {"fid", "is"}:
        models["inception"] = load_torchscript(inception, device)  # type: ignore[arg-type]
    if "clipsim" in wanted:
        models["clip"] = load_clip(clip, device)
    common = dict(
        num_frames=num_frames, stride=stride, device=device, batch_size=batch_size, workers=workers
    )
    gen = _run_pass("generated", gen_items, models, wanted, **common)
    result: dict[str, Any] = {"metrics": {}}
    out = result["metrics"]
    ref_info: dict[str, Any] = {}
    if needs_reference:
        if ref_stats is None:
            ref = _run_pass("reference", ref_items, models, needs_reference, **common)
            ref_stats = {}
            for metric, stats in (("fvd", ref.i3d), ("fid", ref.inception)):
                if stats is not None:
                    ref_stats[f"{metric}_mu"], ref_stats[f"{metric}_sigma"] = stats.mean_cov()
            ref_stats["num_frames"], ref_stats["stride"] = np.array(num_frames), np.array(stride)
            ref_info = {"source": str(reference), "videos": ref.videos, "frames": ref.frames}
            ref_info["skipped"] = ref.skipped
            if save_reference_stats is not None:
                from internvid.io.atomic import atomic_open

                target = Path(save_reference_stats)
                with atomic_open(target, "wb") as f:
                    np.savez(f, **ref_stats)
                log.info("wrote reference statistics to %s", target)
        else:
            ref_info = {"source": str(reference), "statistics": True}
            saved = (
                int(ref_stats.get("num_frames", num_frames)),
                int(ref_stats.get("stride", stride)),
            )
            if saved != (num_frames, stride):
                log.warning(
                    "%s holds statistics of %d frames at stride %d, not %d at %d",
                    reference,
                    *saved,
                    num_frames,
                    stride,
                )
        for metric, stats in (("fvd", gen.i3d), ("fid", gen.inception)):
            if stats is not None:
                mu, sigma = stats.mean_cov()
                out[metric] = frechet_distance(
                    mu, sigma, ref_stats[f"{metric}_mu"], ref_stats[f"{metric}_sigma"]
                )
    if gen.probs is not None:
        out["is"], out["is_std"] = inception_score(np.concatenate(gen.probs), splits)
    if gen.sims is not None:
        out["clipsim"] = float(np.mean(gen.sims))
    result["generated"] = {
        "source": str(generated),
        "videos": gen.videos,
        "frames": gen.frames,
        "skipped": gen.skipped,
    }
    if ref_info:
        result["reference"] = ref_info
    result["settings"] = {
        "metrics": [m for m in METRICS if m in wanted],
        "num_frames": num_frames,
        "stride": stride,
        "is_splits": splits if "is" in wanted else None,
        "i3d": None if i3d is None else str(i3d),
        "inception": None if inception is None else str(inception),
        "clip": clip if "clipsim" in wanted else None,
        "device": device,
    }
    result["seconds"] = round(time.monotonic() - start, 3)
    return result


def summary_line(result: dict[str, Any]) -> str:
    """One log line with the metrics."""
    m = result["metrics"]
    parts = []
    if "fvd" in m:
        parts.append(f"FVD {m['fvd']:.2f}")
    if "fid" in m:
        parts.append(f"FID {m['fid']:.2f}")
    if "is" in m:
        parts.append(f"IS {m['is']:.2f} ± {m['is_std']:.2f}")
    if "clipsim" in m:
        parts.append(f"CLIPSIM {m['clipsim']:.4f}")
    return " | ".join(parts) + f" ({result['generated']['videos']} generated videos)"


def register(app: typer.Typer) -> None:
    """Add `internvid eval-gen` to the command line."""

    @app.command("eval-gen")
    def eval_gen_command(
        generated: Annotated[
            Path,
            typer.Argument(
                help="Generated videos: a folder (prompts in STEM.txt beside each video) or a "
                "list (.txt of paths; .jsonl/.json/.csv with 'video' and 'caption' columns)."
            ),
        ],
        reference: Annotated[
            Path | None,
            typer.Option(
                help="Reference (real) videos for FVD and FID: a folder, a list, or a .npz "
                "written by --save-reference-stats."
            ),
        ] = None,
        metrics: Annotated[
            str, typer.Option(help="Comma-separated: fvd, fid, is, clipsim.")
        ] = ",".join(METRICS),
        i3d: Annotated[
            Path | None, typer.Option(help="FVD's I3D TorchScript file (i3d_torchscript.pt).")
        ] = None,
        inception: Annotated[
            Path | None,
            typer.Option(help="FID/IS Inception TorchScript file (inception-2015-12-05.pt)."),
        ] = None,
        clip: Annotated[
            str, typer.Option(help="CLIPSIM's CLIP: hub id or local folder.")
        ] = DEFAULT_CLIP,
        frames: Annotated[
            int, typer.Option(min=1, help="Frames per video, consecutive from the first.")
        ] = NUM_FRAMES,
        stride: Annotated[int, typer.Option(min=1, help="Take every N-th frame.")] = 1,
        splits: Annotated[int, typer.Option(min=1, help="Inception Score splits.")] = IS_SPLITS,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
        batch_size: Annotated[
            int, typer.Option(min=1, help="Videos per extractor call.")
        ] = DEFAULT_BATCH,
        workers: Annotated[int, typer.Option(min=1, help="Video decoding threads.")] = 2,
        save_reference_stats: Annotated[
            Path | None,
            typer.Option(help="Write the reference FVD/FID statistics to this .npz (reusable)."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Write the result JSON here (default: stdout)."),
        ] = None,
    ) -> None:
        """Text-to-video generation metrics: FVD, FID, IS against reference videos, CLIPSIM with the prompts."""
        try:
            result = evaluate_generation(
                generated,
                reference,
                metrics=[m.strip().lower() for m in metrics.split(",") if m.strip()],
                i3d=i3d,
                inception=inception,
                clip=clip,
                num_frames=frames,
                stride=stride,
                splits=splits,
                device=device,
                batch_size=batch_size,
                workers=workers,
                save_reference_stats=save_reference_stats,
            )
        except (OSError, ValueError) as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
        log.info("%s", summary_line(result))
        if out is None:
            typer.echo(json.dumps(result, indent=2))
            return
        from internvid.io.atomic import write_json_atomic

        write_json_atomic(out, result)
        log.info("wrote %s", out)
