"""`internvid score`: add score columns to a finished run."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from internvid.cli.options import (
    DTYPES,
    EXIT_OK,
    EXIT_USAGE,
    MODELS,
    SCORE_LIST,
    CacheDirOption,
    ConfigOption,
    DeviceOption,
    DtypeOption,
    MaxFailureRateOption,
    ModelsOption,
    ViclipOption,
    check_choice,
    check_device,
    command_config,
    exit_codes_epilog,
    score_list,
)

log = logging.getLogger("internvid")


DEFAULT_SCORES = ["viclip_sim", "aesthetic"]  # what `internvid score` adds when not told


def score(
    out: Annotated[
        str, typer.Argument(help="A finished run's output folder (a path or s3://...).")
    ],
    scores: Annotated[
        str | None,
        typer.Option(
            help=f"Scores to add, comma-separated: {SCORE_LIST} (default: "
            f"{','.join(DEFAULT_SCORES)})."
        ),
    ] = None,
    config: ConfigOption = None,
    models: ModelsOption = None,
    viclip: ViclipOption = None,
    viclip_sampling: Annotated[
        str | None, typer.Option(help="ViCLIP frames: middle (official evaluation) or demo.")
    ] = None,
    clip_model: Annotated[
        str | None, typer.Option(help="CLIP for aesthetic and clipscore: hub id or folder.")
    ] = None,
    aesthetic_head: Annotated[
        str | None,
        typer.Option(help="Aesthetic head: mlp (improved, default), linear (LAION v1) or a .pth."),
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Clips per model call (default 32).")
    ] = None,
    cache_dir: CacheDirOption = None,
    max_failure_rate: MaxFailureRateOption = None,
) -> None:
    """Add score columns to a finished run (clips.parquet, internvid.jsonl, shard sidecars).
    A --config file holds the keys of a run's `score:` section."""
    from internvid.api import score_outcome
    from internvid.config import RunConfig, ScoreConfig
    from internvid.rescore import score_folder
    from internvid.run import RunError

    given = {  # options given on the command line override the config file
        ("scores",): score_list(scores),
        ("models",): check_choice(models, MODELS, "--models"),
        ("viclip",): viclip,
        ("viclip_sampling",): viclip_sampling,
        ("clip_model",): clip_model,
        ("aesthetic_head",): aesthetic_head,
        ("device",): check_device(device),
        ("dtype",): check_choice(dtype, DTYPES, "--dtype"),
        ("batch_size",): batch_size,
    }
    cfg = command_config(ScoreConfig, config, given)
    if not cfg.scores:
        cfg.scores = list(DEFAULT_SCORES)
    check = RunConfig(score=cfg)
    try:
        check.validate()
        summary = score_folder(out, cfg, cache_dir=cache_dir or "")
    except (RunError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    reasons = ", ".join(f"{k}: {v}" for k, v in summary.failures_by_reason.items()) or "none"
    log.info(
        "%d of %d clips scored (%s) in %.1f s; failures: %d (%s)",
        summary.scored,
        summary.clips,
        ", ".join(summary.scores),
        summary.wall_seconds,
        summary.failures,
        reasons,
    )
    for note in summary.notes:
        log.warning("note: %s", note)
    result = score_outcome(summary, max_failure_rate)
    if result.code != EXIT_OK:
        log.error("%s", result.message)
        raise typer.Exit(result.code)


def register(app: typer.Typer) -> None:
    app.command(epilog=exit_codes_epilog())(score)
