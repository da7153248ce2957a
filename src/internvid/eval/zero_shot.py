"""Zero-shot evaluation of ViCLIP: video-text retrieval and video classification (`internvid eval`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from internvid.eval.encode import DEFAULT_BATCH, class_embeddings, encode_texts, encode_videos
from internvid.eval.metrics import (
    DEFAULT_CHUNK,
    DSL_TEMPERATURE,
    classification_metrics,
    retrieval_metrics,
)
from internvid.eval.model import load_model, model_ref
from internvid.eval.prompts import (
    PROMPT_AVERAGES,
    TEMPLATE_SETS,
    TEXT_NORMS,
    load_templates,
    normalise_texts,
)
from internvid.eval.sets import load as load_annotations
from internvid.eval.sets import read_id_list, resolve_labels

log = logging.getLogger(__name__)


def evaluate(
    annotations: Path,
    model_path: str | Path | None = None,
    *,
    models: str = "auto",
    cache_dir: str = "",
    task: str = "auto",
    fmt: str = "auto",
    videos: Path | None = None,
    split_list: Path | None = None,
    paragraphs: bool | None = None,
    skip_missing: bool = False,
    arch: str = "auto",
    classes: Path | None = None,
    templates: str = "official",
    text_norm: str = "official",
    prompt_average: str = "official",
    resize: str = "bicubic",
    sampling: str = "middle",
    device: str = "auto",
    dtype: str = "fp32",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
    chunk: int = DEFAULT_CHUNK,
    wise_ft_path: str | Path | None = None,
    alpha: float = 0.5,
) -> dict[str, Any]:
    """Run one zero-shot evaluation; returns {"task", "metrics" (plain cosine), "metrics_dsl"
    (dual softmax), ...settings}. The defaults are the official protocol. `model_path` None: the
    checkpoint `models` picks (auto / real: the official ViCLIP-L/14 10M-FLT; tiny: tiny:viclip)."""
    from internvid.config import DTYPE_ALIASES, DTYPES
    from internvid.models.resize import RESIZE_MODES

    if task not in ("auto", "retrieval", "classification"):
        raise ValueError(f"unknown task {task!r}")
    if text_norm not in TEXT_NORMS:
        raise ValueError(f"unknown text normalisation {text_norm!r}")
    if prompt_average not in PROMPT_AVERAGES:
        raise ValueError(f"unknown prompt averaging {prompt_average!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize {resize!r} (expected one of {', '.join(RESIZE_MODES)})")
    if DTYPE_ALIASES.get(dtype, dtype) not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    ids = read_id_list(split_list) if split_list is not None else None
    data = load_annotations(
        annotations, fmt, task=task, videos=videos, ids=ids, classes=classes, paragraphs=paragraphs
    )
    if task != "auto" and data.task != task:
        raise ValueError(f"{annotations}: a {data.task} set, not {task}")
    task = data.task
    if skip_missing:
        data, dropped = data.drop_missing()
        if dropped:
            log.warning("%d videos not found, left out (--skip-missing)", dropped)
        if not data.videos:
            raise ValueError(f"{annotations}: none of the videos exist")
    prompts: tuple[str, ...] = ()
    if task == "classification":  # fail on bad labels / templates before loading the model
        names, labels = resolve_labels(data.labels, data.classes or None)
        prompts = load_templates(templates)
    ref = model_ref(model_path, models)
    model = load_model(ref, arch, device, dtype, wise_ft_path, alpha, cache_dir=cache_dir)
    start = time.monotonic()
    video_emb = encode_videos(
        model, data.videos, mode=sampling, resize=resize, batch_size=batch_size, workers=workers
    )
    info: dict[str, Any] = {"task": task, "annotations": str(annotations)}
    if task == "retrieval":
        text_emb = encode_texts(model, normalise_texts(data.texts, text_norm))
        metrics = retrieval_metrics(video_emb, text_emb, data.text_to_video, chunk=chunk)
        metrics_dsl = retrieval_metrics(
            video_emb, text_emb, data.text_to_video, chunk=chunk, dual_softmax=True
        )
    else:
        class_emb = class_embeddings(
            model, names, prompts, average=prompt_average, text_norm=text_norm
        )
        metrics = classification_metrics(video_emb, class_emb, labels, chunk=chunk)
        metrics_dsl = classification_metrics(
            video_emb, class_emb, labels, chunk=chunk, dual_softmax=True
        )
        info.update(
            templates=templates if templates in TEMPLATE_SETS else str(templates),
            num_templates=len(prompts),
            prompt_average=prompt_average,
        )
    info.update(
        model=_shown(model_path, ref),
        config=model.config.name,
        text_norm=text_norm,
        sampling=sampling,
        resize=resize,
        num_frames=model.config.num_frames,
        image_size=model.config.image_size,
        wise_ft=None if wise_ft_path is None else {"path": str(wise_ft_path), "alpha": alpha},
        dsl_temperature=DSL_TEMPERATURE,
        seconds=round(time.monotonic() - start, 3),
        metrics=metrics,
        metrics_dsl=metrics_dsl,
    )
    return info


def _shown(model_path: str | Path | None, ref: str) -> str:
    """The model as the result names it: the path as given (a local file as a Path prints it),
    else the checkpoint `--models` picked."""
    if model_path is None or not str(model_path):
        return ref
    return str(Path(model_path)) if Path(model_path).is_file() else str(model_path)


def _retrieval_line(m: Mapping[str, float]) -> str:
    return (
        f"T2V R@1/5/10 {m['t2v_r1']:.1f}/{m['t2v_r5']:.1f}/{m['t2v_r10']:.1f} "
        f"MdR {m['t2v_medr']:g} MnR {m['t2v_meanr']:.1f} | "
        f"V2T R@1/5/10 {m['v2t_r1']:.1f}/{m['v2t_r5']:.1f}/{m['v2t_r10']:.1f} "
        f"MdR {m['v2t_medr']:g} MnR {m['v2t_meanr']:.1f}"
    )


def summary_line(result: Mapping[str, Any]) -> str:
    """One log line with the headline numbers: plain cosine, then dual softmax (DSL)."""
    m, d = result["metrics"], result.get("metrics_dsl")
    if result["task"] == "retrieval":
        line = _retrieval_line(m)
        if d:
            line += f" || DSL {_retrieval_line(d)}"
        return line + f" ({int(m['num_videos'])} videos, {int(m['num_texts'])} captions)"
    line = f"top-1 {m['top1']:.1f} top-5 {m['top5']:.1f} mean {m['mean_top1_top5']:.1f}"
    if d:
        line += (
            f" || DSL top-1 {d['top1']:.1f} top-5 {d['top5']:.1f} mean {d['mean_top1_top5']:.1f}"
        )
    return line + f" ({int(m['num_videos'])} videos, {int(m['num_classes'])} classes)"
