"""`internvid search`: options -> SearchConfig -> internvid.search.search_folder -> a table."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from internvid.cli.options import (
    DTYPES,
    MODELS,
    CacheDirOption,
    ConfigOption,
    DeviceOption,
    DtypeOption,
    ModelsOption,
    ViclipOption,
    check_choice,
    check_device,
    command_config,
)

log = logging.getLogger("internvid")


def search(
    run_dir: Annotated[
        str,
        typer.Argument(metavar="DIR", help="A finished run's output folder (a path or s3://...)."),
    ],
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    top: Annotated[
        int | None, typer.Option("--top", "-k", min=1, help="Clips to show (10).")
    ] = None,
    config: ConfigOption = None,
    models: ModelsOption = None,
    viclip: ViclipOption = None,
    rebuild: Annotated[
        bool, typer.Option(help="Embed every clip again, even when the index is current.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Clips per model call (32).")
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Find the clips of a finished run that match a text (ViCLIP; indexes on first use)."""
    from internvid.config import SearchConfig
    from internvid.search import SearchError, print_table, search_folder

    given = {  # options given on the command line override the config file
        ("top",): top,
        ("models",): check_choice(models, MODELS, "--models"),
        ("viclip",): viclip,
        ("device",): check_device(device),
        ("dtype",): check_choice(dtype, DTYPES, "--dtype"),
        ("batch_size",): batch_size,
        ("cache_dir",): cache_dir,
    }
    cfg = command_config(SearchConfig, config, given)
    try:
        result = search_folder(
            run_dir, query, top=cfg.top, models=cfg.models, viclip=cfg.viclip or None,
            rebuild=rebuild, cache_dir=cfg.cache_dir, device=cfg.device, dtype=cfg.dtype,
            batch_size=cfg.batch_size,
        )  # fmt: skip
    except (SearchError, ValueError, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print_table(result)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
