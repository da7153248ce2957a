"""`internvid dedup`: options -> DedupConfig -> internvid.dedup.dedup_folder -> a summary."""

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
    check_dtype,
    command_config,
    exit_codes_epilog,
)
from internvid.config import DEDUP_EMBEDDERS, DEDUP_KEEP_RULES
from internvid.outcome import EXIT_LOCKED, EXIT_NOTHING, EXIT_OK, EXIT_USAGE

log = logging.getLogger("internvid")

EMBEDDER_HELP = (
    "What clips are compared by: viclip (the video tower, through the run's search index), "
    "text (all-MiniLM-L6-v2 over each clip's best caption; needs the dedup extra), "
    "frames (a model-free signature of the frames: re-encoded, rescaled, re-muxed copies)."
)
KEEP_HELP = (
    "The clip each duplicate group keeps: aesthetic (highest aesthetic score, then longest), "
    "longest, first (canonical order: video id, start, end); ties go by that order."
)


def dedup(
    run_dir: Annotated[
        str,
        typer.Argument(metavar="RUN", help="A finished run's output folder (a path or s3://...)."),
    ],
    config: ConfigOption = None,
    embedder: Annotated[str | None, typer.Option(help=f"{EMBEDDER_HELP} (default viclip).")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Cosine at or above which two clips are duplicates (default: viclip 0.95, "
            "text 0.9, frames 0.9)."
        ),
    ] = None,
    clusters: Annotated[
        int | None, typer.Option(help="k-means clusters (default 0: about sqrt(clips)).")
    ] = None,
    neighbours: Annotated[
        int | None,
        typer.Option(
            help="Also compare each clip with the clips of its this-many next-nearest "
            "clusters, for pairs split across a boundary (default 2; 0: within clusters only)."
        ),
    ] = None,
    keep: Annotated[str | None, typer.Option(help=f"{KEEP_HELP} (default aesthetic).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the k-means start (default 0).")] = None,
    models: ModelsOption = None,
    viclip: ViclipOption = None,
    text_model: Annotated[
        str | None,
        typer.Option(help="text: a sentence-embedding model folder (default all-MiniLM-L6-v2)."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="viclip: embed every clip again, even when the index is current.")
    ] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Clips per model call (32).")
    ] = None,
    cache_dir: CacheDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Find near-duplicate clips of a finished run; write RUN/dedup/groups.parquet, keep.txt
    (the clips to keep: `internvid subset ... --keep-list RUN/dedup/keep.txt`) and dedup.json."""
    from internvid.config import DedupConfig
    from internvid.dedup import DedupError, NoClips, dedup_folder

    given = {  # options given on the command line override the config file
        ("embedder",): check_choice(embedder, DEDUP_EMBEDDERS, "--embedder"),
        ("threshold",): threshold,
        ("clusters",): clusters,
        ("neighbours",): neighbours,
        ("keep",): check_choice(keep, DEDUP_KEEP_RULES, "--keep"),
        ("seed",): seed,
        ("models",): check_choice(models, MODELS, "--models"),
        ("viclip",): viclip,
        ("text_model",): text_model,
        ("rebuild",): rebuild or None,
        ("device",): check_device(device),
        ("dtype",): check_choice(check_dtype(dtype), DTYPES, "--dtype"),
        ("batch_size",): batch_size,
        ("cache_dir",): cache_dir,
    }
    cfg = command_config(DedupConfig, config, given)
    try:
        summary = dedup_folder(run_dir, cfg)
    except NoClips as e:  # a locked folder reaches the app: exit 4
        log.error("%s", e)
        raise typer.Exit(EXIT_NOTHING) from e
    except DedupError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    except (ValueError, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps(asdict(summary), ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"{summary.clips} clips, {summary.groups} duplicate groups, {summary.dropped} "
            f"dropped, {summary.kept} kept -> {summary.paths['keep']}"
        )
    if summary.embedded == 0:
        log.error("no clip could be compared (%s): every clip is kept", summary.not_embedded)
        raise typer.Exit(EXIT_NOTHING)


def register(app: typer.Typer) -> None:
    app.command(epilog=exit_codes_epilog((EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_LOCKED)))(dedup)
