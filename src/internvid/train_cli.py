"""`internvid train` and `internvid train-frames`: the training command line (lazy torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add `internvid train` to the command line."""

    @app.command(
        "train",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def train_command(
        ctx: typer.Context,
        config: Annotated[
            Path | None,
            typer.Option(help="A TrainConfig .yaml/.json (see configs/); flags below override it."),
        ] = None,
        resume: Annotated[
            bool, typer.Option(help="Continue from the newest checkpoint in the output folder.")
        ] = False,
        resume_from: Annotated[
            Path | None, typer.Option(help="Continue from this checkpoint file.")
        ] = None,
    ) -> None:
        """Train ViCLIP (any TrainConfig field as --field VALUE, e.g. --steps 100 --lr 1e-4).

        Several GPUs or nodes: `torchrun --nproc_per_node N -m internvid.train --config FILE`.
        """
        from internvid.train import main

        argv: list[str] = []
        if config is not None:
            argv += ["--config", str(config)]
        if resume:
            argv.append("--resume")
        if resume_from is not None:
            argv += ["--resume-from", str(resume_from)]
        argv += list(ctx.args)
        try:
            result = main(argv)
        except (OSError, ValueError) as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
        summary = f"{result['step']} steps, final loss {result['losses'][-1]:.4f}"
        if "heldout" in result:
            summary += ", held-out " + ", ".join(
                f"{k} {v:.1f}" for k, v in result["heldout"].items() if k != "clips"
            )
        log.info("trained: %s; checkpoint %s", summary, result["checkpoint"])

    @app.command("train-frames")
    def train_frames_command(
        source: Annotated[str, typer.Argument(help="A run folder, a glob of .tar shards, or one.")],
        out: Annotated[Path, typer.Argument(help="Folder for the frame shards.")],
        frames: Annotated[int, typer.Option(min=1, help="JPEG frames kept per clip.")] = 16,
        short_side: Annotated[
            int, typer.Option(min=16, help="Frames larger than this are resized to it.")
        ] = 256,
        quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 90,
    ) -> None:
        """Pre-extract training frames from clip shards (then train with --data OUT).

        Training then decodes a few JPEGs per clip instead of the video. An interrupted call
        resumes: finished shards are kept.
        """
        from internvid.train_data import write_frame_shards

        try:
            counts = write_frame_shards(source, out, frames, short_side, quality)
        except (OSError, ValueError) as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
        log.info(
            "frame shards in %s: %d clips in %d shards (%d kept from before); %d clips failed",
            out,
            counts["clips"],
            counts["shards"],
            counts["skipped_shards"],
            counts["failed"],
        )
