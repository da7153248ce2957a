"""`internvid eval`: options -> EvalConfig -> internvid.eval.evaluate -> a summary line (+ JSON)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import (
    MODELS,
    CacheDirOption,
    ConfigOption,
    DeviceOption,
    DtypeOption,
    ModelsOption,
    check_choice,
    check_device,
    check_dtype,
    command_config,
)
from internvid.eval.sets import FORMATS

log = logging.getLogger("internvid")


def eval_command(
    annotations: Annotated[
        Path,
        typer.Argument(
            help="Annotation file: MSR-VTT (JSFusion csv, MSRVTT_data.json), MSVD "
            "(raw-captions.pkl or the corpus csv), DiDeMo test_data.json, ActivityNet "
            "val_1.json, LSMDC tsv, Kinetics val.csv, or generic .jsonl/.json/.csv rows of "
            "'video' + 'caption'/'captions' (retrieval) or 'label' (classification)."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE "
            "(default: the one --models picks).",
        ),
    ] = None,
    config: ConfigOption = None,
    models: ModelsOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the metrics JSON here.")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"Annotation format: {', '.join(FORMATS)}.")
    ] = None,
    videos: Annotated[
        Path | None,
        typer.Option(help="Folder of the videos (searched recursively; default: the file's)."),
    ] = None,
    split_list: Annotated[
        Path | None,
        typer.Option(
            help="Video ids of the split (test_list.txt, or a csv's video_id column) for "
            "msrvtt-json, msvd, didemo."
        ),
    ] = None,
    paragraphs: Annotated[
        bool | None,
        typer.Option(
            "--paragraphs/--sentences",
            help="One caption per video (its sentences joined) or one per sentence; default: "
            "paragraphs for DiDeMo / ActivityNet, sentences for generic caption lists.",
        ),
    ] = None,
    skip_missing: Annotated[
        bool | None,
        typer.Option(
            "--skip-missing/--no-skip-missing",
            help="Leave out videos whose file is missing (else an error).",
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="retrieval, classification, or auto (from the file).")
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="Model config: auto (from the checkpoint), b16, l14, tiny, or a JSON."),
    ] = None,
    classes: Annotated[
        Path | None,
        typer.Option(
            help="Class names (.txt one per line, .csv 'name' column, .json); default: the "
            "sorted distinct labels."
        ),
    ] = None,
    templates: Annotated[
        str | None,
        typer.Option(
            help="Prompts: official (ViCLIP's 16), kinetics (28), clip, single, or a file "
            "of '{}' lines."
        ),
    ] = None,
    text_norm: Annotated[
        str | None, typer.Option(help="official (pre_text before tokenising) or raw.")
    ] = None,
    prompt_average: Annotated[
        str | None,
        typer.Option(help="official (mean of prompt cosines) or renorm (renormalised mean)."),
    ] = None,
    resize: Annotated[
        str | None,
        typer.Option(
            help="Frame resize: bicubic (official), bicubic-aa (torchvision >= 0.17), "
            "bilinear (the demo's cv2)."
        ),
    ] = None,
    sampling: Annotated[
        str | None, typer.Option(help="Frame sampling: middle (of 8 segments) or demo.")
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Clips per batch (16).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Video decoding threads (2).")] = None,
    chunk: Annotated[
        int | None, typer.Option(min=1, help="Query rows per similarity block (1024).")
    ] = None,
    wise_ft: Annotated[
        str | None,
        typer.Option(
            "--wise-ft",
            help="Average the weights with this ViCLIP state dict, or with a CLIP (folder or "
            "hub id: what the official zero-shot scripts do, at --alpha 0.5).",
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Weight of the --wise-ft weights (0: none; 0.5)."),
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Zero-shot ViCLIP evaluation: retrieval R@K / ranks or classification top-1/top-5,
    plain cosine and dual softmax; the official protocol by default."""
    from internvid.config import DTYPE_ALIASES, EvalConfig
    from internvid.eval.prompts import PROMPT_AVERAGES, TEXT_NORMS
    from internvid.eval.zero_shot import evaluate, summary_line
    from internvid.hub import ModelsUnavailable
    from internvid.models.resize import RESIZE_MODES

    given = {  # options given on the command line override the config file
        ("model",): model,
        ("models",): check_choice(models, MODELS, "--models"),
        ("out",): None if out is None else str(out),
        ("format",): fmt,
        ("videos",): None if videos is None else str(videos),
        ("split_list",): None if split_list is None else str(split_list),
        ("paragraphs",): paragraphs,
        ("skip_missing",): skip_missing,
        ("task",): task,
        ("arch",): arch,
        ("classes",): None if classes is None else str(classes),
        ("templates",): templates,
        ("text_norm",): text_norm,
        ("prompt_average",): prompt_average,
        ("resize",): resize,
        ("sampling",): sampling,
        ("device",): check_device(device),
        ("dtype",): check_dtype(dtype),
        ("batch_size",): batch_size,
        ("workers",): workers,
        ("chunk",): chunk,
        ("wise_ft",): wise_ft,
        ("alpha",): alpha,
        ("cache_dir",): cache_dir,
    }  # fmt: skip
    cfg = command_config(EvalConfig, config, given)
    cfg.dtype = DTYPE_ALIASES.get(cfg.dtype, cfg.dtype)  # the torch names it took before
    check_device(cfg.device)
    for value, choices, option in (  # the config file's values too
        (cfg.format, FORMATS, "--format"),
        (cfg.task, ("auto", "retrieval", "classification"), "--task"),
        (cfg.sampling, ("middle", "demo"), "--sampling"),
        (cfg.text_norm, TEXT_NORMS, "--text-norm"),
        (cfg.prompt_average, PROMPT_AVERAGES, "--prompt-average"),
        (cfg.resize, RESIZE_MODES, "--resize"),
    ):
        check_choice(value, choices, option)
    try:
        result = evaluate(
            annotations, cfg.model or None, models=cfg.models, cache_dir=cfg.cache_dir,
            task=cfg.task, fmt=cfg.format, videos=_path(cfg.videos),
            split_list=_path(cfg.split_list), paragraphs=cfg.paragraphs,
            skip_missing=cfg.skip_missing, arch=cfg.arch, classes=_path(cfg.classes),
            templates=cfg.templates, text_norm=cfg.text_norm, prompt_average=cfg.prompt_average,
            resize=cfg.resize, sampling=cfg.sampling, device=cfg.device, dtype=cfg.dtype,
            batch_size=cfg.batch_size, workers=cfg.workers, chunk=cfg.chunk,
            wise_ft_path=cfg.wise_ft, alpha=cfg.alpha,
        )  # fmt: skip
    except (OSError, ValueError, ModelsUnavailable) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
    log.info("%s", summary_line(result))
    if cfg.out is not None:
        target = Path(cfg.out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log.info("wrote %s", target)


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
