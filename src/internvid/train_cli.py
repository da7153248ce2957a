"""`internvid train`: the command line of ViCLIP training (torch is imported only when it runs)."""

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
