"""Small commands: `demo-videos`, `probe`, `version`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid import __version__

log = logging.getLogger("internvid")


def demo_videos(
    folder: Annotated[
        Path, typer.Argument(help="Folder to write the demo videos (and cuts.json) into.")
    ],
) -> None:
    """Generate the demo videos: synthetic footage with known hard cuts (ffmpeg lavfi, deterministic)."""
    from internvid.media.synth import write_demo_videos

    write_demo_videos(folder)


def probe(path: Annotated[Path, typer.Argument(help="A video file.")]) -> None:
    """Show what probing finds out about one video file (or why it fails)."""
    import json
    from dataclasses import asdict

    from internvid.engine import StageError
    from internvid.media.probe import probe as probe_file

    try:
        typer.echo(json.dumps(asdict(probe_file(path)), indent=2))
    except StageError as e:
        log.error("%s: %s", e.reason, e.message)
        raise typer.Exit(1) from e


def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def register(app: typer.Typer) -> None:
    app.command("demo-videos")(demo_videos)
    app.command()(probe)
    app.command()(version)
