"""`internvid report`: options -> ReportConfig -> internvid.report.write_report."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from internvid.cli.options import ConfigOption, command_config

log = logging.getLogger("internvid")


def report(
    run_dir: Annotated[
        str,
        typer.Argument(
            metavar="DIR", help="A run's output folder (of `internvid run`; a path or s3://...)."
        ),
    ],
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="HTML file to write (default: DIR/report.html)."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option("--samples", "-n", min=0, help="Clips in the frame grid (default 24)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the clip sample of the grid (default 0).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write a self-contained HTML report (plots, sample frames; no network) about a run."""
    from internvid.config import ReportConfig
    from internvid.report import write_report

    given = {  # options given on the command line override the config file
        ("out",): out,
        ("samples",): samples,
        ("seed",): seed,
    }
    cfg = command_config(ReportConfig, config, given)
    try:
        write_report(run_dir, cfg.out, samples=cfg.samples, seed=cfg.seed)
    except OSError as e:
        log.error("%s", e)
        raise typer.Exit(2) from e


def register(app: typer.Typer) -> None:
    app.command("report")(report)
