"""The `internvid` typer app: global options, and every command module registered on it."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="InternVid: turn raw videos into a clean, sharded video-text dataset.",
)
log = logging.getLogger("internvid")


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    from internvid.log import setup_logging

    setup_logging(verbose, quiet)


# Commands that live beside the code they drive: each module has `register(app)`, which adds
# its command(s) with their options (imports inside the commands keep `internvid --help` fast).
_COMMAND_MODULES = (
    "internvid.cli.run",
    "internvid.cli.score",
    "internvid.cli.tools",
    "internvid.cli.subset",
    "internvid.cli.report",
    "internvid.cli.download",
    "internvid.cli.eval",
    "internvid.cli.eval_gen",
    "internvid.cli.search",
    "internvid.cli.train",
)


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()
