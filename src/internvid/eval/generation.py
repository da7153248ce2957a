"""Text-to-video generation metrics of generated videos: FVD, FID, IS and CLIPSIM (`internvid eval-gen`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from internvid.config import GEN_METRICS
from internvid.eval.extractors import (
    DEFAULT_CLIP,
    check_extractors,
    i3d_features,
    inception_features,
    load_clip,
    load_torchscript,
    video_clipsims,
)
from internvid.eval.gen_metrics import IS_SPLITS, FeatureStats, frechet_distance, inception_score
from internvid.eval.gen_videos import NUM_FRAMES, VideoItem, iter_clips, list_videos
from internvid.log import progress_ticker

if TYPE_CHECKING:  # numpy loads inside the functions: `internvid --help` stays fast
    import numpy as np

log = logging.getLogger(__name__)

METRICS = GEN_METRICS  # what `evaluate_generation` can compute: fvd, fid, is, clipsim
DEFAULT_BATCH = 8  # videos per extractor call


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
    tick = progress_ticker(what, len(items), "videos")
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
    dtype: str = "fp32",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
    save_reference_stats: str | Path | None = None,
) -> dict[str, Any]:
    """FVD, FID (generated against reference), IS and CLIPSIM (generated) of video folders/lists.

    Every video gives its first `num_frames` frames at `stride`; FVD uses them as one I3D clip,
    FID, IS and CLIPSIM as frames. `reference` may be a `.npz` of statistics written by
    `save_reference_stats`. `dtype` (auto, fp32, fp16, bf16) is CLIPSIM's CLIP's; the I3D and
    Inception TorchScript files always run in float32. Returns {"metrics": {...}, "generated":
    {...}, "reference": {...}, "settings": {...}, "seconds"}.
    """
    import numpy as np

    from internvid.config import DTYPE_ALIASES, DTYPES
    from internvid.hub import pick_device, pick_dtype

    start = time.monotonic()
    wanted = set(metrics)
    unknown = sorted(wanted - set(METRICS))
    if unknown or not wanted:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be >= 1")
    dtype = DTYPE_ALIASES.get(dtype, dtype)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
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

    device = pick_device(device)
    clip_dtype = pick_dtype(dtype, device)
    models: dict[str, Any] = {}
    if "fvd" in wanted:
        models["i3d"] = load_torchscript(i3d, device)  # type: ignore[arg-type]
    if wanted & {"fid", "is"}:
        models["inception"] = load_torchscript(inception, device)  # type: ignore[arg-type]
    if "clipsim" in wanted:
        models["clip"] = load_clip(clip, device, clip_dtype)
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
        "clip_dtype": str(clip_dtype).removeprefix("torch.") if "clipsim" in wanted else None,
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
