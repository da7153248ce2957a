"""`internvid run`: options -> RunConfig -> internvid.run.run -> summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import (
    CACHE_DIR_HELP,
    CONFIG_HELP,
    DEVICE_HELP,
    DTYPE_HELP,
    DTYPES,
    EXIT_OK,
    EXIT_USAGE,
    MODELS_HELP,
    SCORE_LIST,
    MaxFailureRateOption,
    check_choice,
    check_device,
    exit_codes_epilog,
    score_list,
)
from internvid.config import RunConfig
from internvid.hub import OFFICIAL_CLIP, OFFICIAL_VICLIP

log = logging.getLogger("internvid")

# option -> the RunConfig field it sets (its default is the one --help shows)
OPTION_FIELDS = {
    "workers": "workers",
    "threads_per_worker": "threads_per_worker",
    "executor": "executor",
    "address": "ray.address",
    "videos_per_shard": "output.videos_per_shard",
    "collect": "collect.enabled",
    "min_clip": "split.min_clip_seconds",
    "max_clip": "split.max_clip_seconds",
    "detector": "split.detector",
    "cut_mode": "cut.mode",
    "threshold": "split.threshold",
    "max_height": "cut.max_height",
    "path_template": "input.path_template",
    "limit": "input.limit",
    "models": "caption.models",
    "coarse_model": "caption.coarse_model",
    "fine_model": "caption.fine_model",
    "fusion_model": "caption.fusion_model",
    "fusion": "caption.fusion",
    "caption_backend": "caption.backend",
    "api_base": "caption.api_base",
    "caption_batch_size": "caption.batch_size",
    "scores": "score.scores",
    "viclip": "score.viclip",
    "clip_model": "score.clip_model",
    "aesthetic_head": "score.aesthetic_head",
    "device": "caption.device",
    "dtype": "caption.dtype",
    "cache_dir": "caption.cache_dir",
}
# what an empty or unset default means, where the value alone would not say
DEFAULT_MEANS = {
    "caption.coarse_model": "the preset's",
    "caption.fine_model": "the preset's",
    "caption.fusion_model": "the preset's",
    "caption.fusion": "the preset's",
    "caption.api_base": "none",
    "caption.cache_dir": "HF_HOME's",
    "score.viclip": OFFICIAL_VICLIP,
    "score.clip_model": OFFICIAL_CLIP,
    "ray.address": "start Ray here",
    "input.limit": "all",
    "input.path_template": "none",
    "score.scores": "none",
}


def shown_default(option: str) -> str:
    """The default --help shows for `option`: its RunConfig field's default value."""
    field = OPTION_FIELDS[option]
    if field in DEFAULT_MEANS:
        return DEFAULT_MEANS[field]
    value = RunConfig()
    for key in field.split("."):
        value = getattr(value, key)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def run(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Videos to process: files, folders (searched recursively), glob patterns, http(s) "
            "URLs, lists of paths/URLs (.txt one per line, .csv or .jsonl with a url/path column and "
            "optional id), or an InternVid metadata .jsonl (needs --path-template)."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Output folder (created; an interrupted run there resumes): a path, or object "
                "storage such as s3://bucket/run (staged on this machine, published as it goes)."
            ),
        ),
    ],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=CONFIG_HELP, show_default="none")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            help="Worker processes of the local executor.",
            show_default=shown_default("workers"),
        ),
    ] = None,
    threads_per_worker: Annotated[
        int | None,
        typer.Option(
            "--threads-per-worker",
            help="torch/OpenCV/BLAS threads in each worker (0: the cores divided by the "
            "workers; Ray: each actor's CPUs).",
            show_default=shown_default("threads_per_worker"),
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("executor"),
            help="local (worker processes on this machine) or ray (actor pools on a Ray "
            "cluster, needs the ray extra; see docs/ray.md).",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("address"),
            help="Ray executor: the cluster to join (auto, HOST:PORT).",
        ),
    ] = None,
    videos_per_shard: Annotated[
        int | None,
        typer.Option(
            show_default=shown_default("videos_per_shard"),
            help="Source videos per work shard and WebDataset tar.",
        ),
    ] = None,
    collect: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("collect"),
            help="Collection rules (10 s-30 min, >= 360p): on, off, or auto (on for URLs and metadata).",
        ),
    ] = None,
    min_clip: Annotated[
        float | None,
        typer.Option(
            show_default=shown_default("min_clip"),
            help="Drop clips shorter than this many seconds.",
        ),
    ] = None,
    max_clip: Annotated[
        float | None,
        typer.Option(
            show_default=shown_default("max_clip"),
            help="Split scenes longer than this many seconds into equal pieces (0: never).",
        ),
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("detector"),
            help="Shot detector: content (paper), adaptive, transnetv2, stride, none.",
        ),
    ] = None,
    cut_mode: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("cut_mode"),
            help="Clip files: exact (re-encode, frame-exact), copy (stream copy), none.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            show_default=shown_default("threshold"), help="ContentDetector threshold (paper: 27)."
        ),
    ] = None,
    max_height: Annotated[
        int | None,
        typer.Option(
            show_default=shown_default("max_height"),
            help="Scale clips taller than this down (0: keep size).",
        ),
    ] = None,
    path_template: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("path_template"),
            help="Metadata input: the video of each row, e.g. '/data/{YoutubeID}.mp4' or a URL template.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(show_default=shown_default("limit"), help="Process only the first N videos."),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("models"),
            help=f"{MODELS_HELP} For run: the caption preset, auto (the config's), real (= "
            "paper: BLIP-2 + BLIP + T5), tiny, lite (CPU-friendly) or none; scores follow it.",
        ),
    ] = None,
    coarse_model: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("coarse_model"),
            help="Middle-frame captioner: hub id or local folder.",
        ),
    ] = None,
    fine_model: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("fine_model"),
            help="Per-frame (1 fps) captioner: hub id or local folder.",
        ),
    ] = None,
    fusion_model: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("fusion_model"),
            help="Caption fusion language model: hub id or local folder.",
        ),
    ] = None,
    fusion: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("fusion"),
            help="Fusion: seq2seq (T5-style), chat (instruction LM) or none.",
        ),
    ] = None,
    caption_backend: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("caption_backend"),
            help="What runs the caption models: hf (transformers here), vllm (vLLM on the GPU: "
            "make vllm) or openai (an OpenAI-compatible server, its URL below).",
        ),
    ] = None,
    api_base: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("api_base"),
            help="The openai backend's server, e.g. http://127.0.0.1:8000/v1 (vllm serve, "
            "internvid serve); the key comes from $OPENAI_API_KEY (caption.api_key_env).",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help=DEVICE_HELP, show_default=shown_default("device"))
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help=DTYPE_HELP, show_default=shown_default("dtype"))
    ] = None,
    caption_batch_size: Annotated[
        int | None,
        typer.Option(
            show_default=shown_default("caption_batch_size"), help="Images per captioner call."
        ),
    ] = None,
    cache_dir: Annotated[
        str | None, typer.Option(help=CACHE_DIR_HELP, show_default=shown_default("cache_dir"))
    ] = None,
    scores: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("scores"),
            help=f"Scores per clip, comma-separated: {SCORE_LIST}.",
        ),
    ] = None,
    viclip: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("viclip"),
            help="ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE.",
        ),
    ] = None,
    clip_model: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("clip_model"),
            help="CLIP for aesthetic and clipscore: hub id or local folder.",
        ),
    ] = None,
    aesthetic_head: Annotated[
        str | None,
        typer.Option(
            show_default=shown_default("aesthetic_head"),
            help="Aesthetic head: mlp (improved), linear (LAION v1) or a .pth file.",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a different earlier run in the output folder.")
    ] = False,
    max_failure_rate: MaxFailureRateOption = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress bar.", show_default="off")
    ] = False,
) -> None:
    """Split videos into clips at scene cuts, caption them, and write clips.parquet, internvid.jsonl and WebDataset shards."""
    from internvid.api import run_outcome
    from internvid.config import RunConfig, apply_overrides
    from internvid.run import RunError
    from internvid.run import run as run_pipeline
    from internvid.summary import print_summary

    try:
        cfg = RunConfig.from_yaml(config) if config else RunConfig()
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--config") from e
    given = {  # options given on the command line override the config file
        ("workers",): workers,
        ("threads_per_worker",): threads_per_worker,
        ("executor",): executor,
        ("ray", "address"): address,
        ("output", "videos_per_shard"): videos_per_shard,
        ("collect", "enabled"): collect,
        ("split", "min_clip_seconds"): min_clip,
        ("split", "max_clip_seconds"): max_clip,
        ("split", "threshold"): threshold,
        ("split", "detector"): detector,
        ("cut", "mode"): cut_mode,
        ("cut", "max_height"): max_height,
        ("input", "path_template"): path_template,
        ("input", "limit"): limit,
        ("caption", "models"): {"auto": None, "real": "paper"}.get(models, models),
        ("caption", "coarse_model"): coarse_model,
        ("caption", "fine_model"): fine_model,
        ("caption", "fusion_model"): fusion_model,
        ("caption", "fusion"): fusion,
        ("caption", "backend"): caption_backend,
        ("caption", "api_base"): api_base,
        ("caption", "device"): check_device(device),
        ("caption", "dtype"): check_choice(dtype, DTYPES, "--dtype"),
        ("score", "device"): device,
        ("score", "dtype"): dtype,
        ("caption", "batch_size"): caption_batch_size,
        ("caption", "cache_dir"): cache_dir,
        ("score", "scores"): score_list(scores),
        ("score", "viclip"): viclip,
        ("score", "clip_model"): clip_model,
        ("score", "aesthetic_head"): aesthetic_head,
    }
    apply_overrides(cfg, given)
    for section, name in (("split", "max_clip_seconds"), ("cut", "max_height")):
        if getattr(getattr(cfg, section), name) == 0 and given[(section, name)] == 0:
            setattr(getattr(cfg, section), name, None)  # 0 on the command line means "none"
    try:
        cfg.validate()
        summary = run_pipeline(inputs, out, cfg, overwrite=overwrite, progress=not no_progress)
    except (RunError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    print_summary(summary)
    result = run_outcome(summary, max_failure_rate)
    if result.code != EXIT_OK:
        log.error("%s", result.message)
        raise typer.Exit(result.code)


def register(app: typer.Typer) -> None:
    app.command(epilog=exit_codes_epilog())(run)
