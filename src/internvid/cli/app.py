"""The `internvid` typer app: global options, and every command module registered on it."""

from __future__ import annotations

import errno
import logging
import pickle
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

log = logging.getLogger("internvid")


def known_error(e: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for an error a user can cause and fix, else None (a bug:
    its traceback is shown). Commands handle their own usage errors; these reach the app."""
    from internvid.io.lock import FolderLocked
    from internvid.io.storage import StorageUnavailable
    from internvid.outcome import EXIT_LOCKED, EXIT_NOTHING, EXIT_USAGE

    if isinstance(e, FolderLocked):
        return EXIT_LOCKED, str(e)
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {e.filename}" if e.filename else ""
        return EXIT_NOTHING, f"disk full{where}: free space (or choose another folder) and rerun"
    if isinstance(e, StorageUnavailable):  # no credentials, an unreachable endpoint
        return EXIT_NOTHING, str(e)
    if isinstance(e, pickle.UnpicklingError):  # torch.load(weights_only=True) said no
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return EXIT_USAGE, (
            "refused to load the checkpoint: it holds pickled Python objects beyond tensors, "
            f"and checkpoints are read with torch.load(weights_only=True) ({first})"
        )
    return None


class _Group(TyperGroup):
    """The app's command group: the errors of `known_error` become one logged line and their
    exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:
            known = known_error(e)
            if known is None:
                raise
            code, message = known
            log.error("%s", " ".join(message.split()))
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="InternVid: turn raw videos into a clean, sharded video-text dataset.",
)


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
    "internvid.cli.caption_eval",
    "internvid.cli.serve",
    "internvid.cli.collect",
    "internvid.cli.search",
    "internvid.cli.dedup",
    "internvid.cli.queries",
    "internvid.cli.train",
    "internvid.cli.ids",
)


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()
