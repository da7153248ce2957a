"""`internvid score`: add score columns to a finished run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import SCORE_LIST, score_list

log = logging.getLogger("internvid")


def score(
    out: Annotated[Path, typer.Argument(help="A finished run's output folder.")],
    scores: Annotated[
        str,
        typer.Option(help=f"Scores to add, comma-separated: {SCORE_LIST}."),
    ] = "viclip_sim,aesthetic",
    models: Annotated[
        str,
        typer.Option(
            help="auto (tiny when the run captioned with tiny models), real, or tiny "
            "(random weights built locally: smoke runs only)."
        ),
    ] = "auto",
    viclip: Annotated[
        str | None,
        typer.Option(help="ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE."),
    ] = None,
    viclip_sampling: Annotated[
        str, typer.Option(help="ViCLIP frames: middle (official evaluation) or demo.")
    ] = "middle",
    clip_model: Annotated[
        str | None, typer.Option(help="CLIP for aesthetic and clipscore: hub id or folder.")
    ] = None,
    aesthetic_head: Annotated[
        str, typer.Option(help="Aesthetic head: mlp (improved), linear (LAION v1) or a .pth.")
    ] = "mlp",
    device: Annotated[str, typer.Option(help="Model device: auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, fp32, fp16 or bf16.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Clips per model call.")] = 32,
    cache_dir: Annotated[str, typer.Option(help="Hugging Face cache folder.")] = "",
) -> None:
    """Add score columns to a finished run (clips.parquet, internvid.jsonl, shard sidecars)."""
    from internvid.config import RunConfig, ScoreConfig
    from internvid.run import RunError
    from internvid.score import score_folder

    cfg = ScoreConfig(
        scores=score_list(scores) or [],
        models=models,
        viclip=viclip or "",
        viclip_sampling=viclip_sampling,
        clip_model=clip_model or "",
        aesthetic_head=aesthetic_head,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
    )
    check = RunConfig(score=cfg)
    try:
        check.validate()
        summary = score_folder(out, cfg, cache_dir=cache_dir)
    except (RunError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
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


def register(app: typer.Typer) -> None:
    app.command()(score)
