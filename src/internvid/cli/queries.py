"""`internvid queries build`: options -> QueriesConfig -> internvid.queries.build.build -> a table."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from internvid.cli.options import (
    CacheDirOption,
    ConfigOption,
    DeviceOption,
    DtypeOption,
    check_device,
    check_dtype,
    command_config,
    score_list,
)
from internvid.outcome import EXIT_USAGE

log = logging.getLogger("internvid")

LISTS_HELP = (
    "Shipped label lists to read, in order, comma-separated (kinetics400,kinetics600,"
    "kinetics700,ucf101,atus; licences and sources: internvid/queries/data/SOURCES.json)."
)


def build(
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="File to write, one row per query: .parquet or .jsonl."),
    ] = None,
    config: ConfigOption = None,
    lists: Annotated[str | None, typer.Option(help=LISTS_HELP)] = None,
    released: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="InternVid's released queries.jsonl: read last; its Chinese search_word "
            "becomes zh of every query it matches, and its coverage is reported.",
        ),
    ] = None,
    ssv2: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Something-Something v2 labels.json (yours: its licence forbids shipping it): "
            "the 174 templates, brackets dropped (\\[something] -> something).",
        ),
    ] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE",
            help="A text file, one phrase a line (repeatable); its stem names the source.",
        ),
    ] = None,
    llm_corpus: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Texts (.txt lines, or .jsonl with caption/text) an LLM extracts short action "
            "phrases from (needs --llm-model).",
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option(
            metavar="NAME_OR_PATH",
            help="Chat LM of the extraction: hub id, local folder, tiny:chat (random weights: "
            "noise), or the model name on an --api-base server.",
        ),
    ] = None,
    llm_backend: Annotated[
        str | None, typer.Option(help="What runs the LM: hf (here), vllm or openai (a server).")
    ] = None,
    api_base: Annotated[
        str | None,
        typer.Option(help="--llm-backend openai: the server's base URL, e.g. http://HOST:8000/v1."),
    ] = None,
    llm_max_texts: Annotated[
        int | None, typer.Option(min=0, help="Use only the first N corpus texts (0: all).")
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Build the action-query vocabulary (label lists, ATUS activities, your files, LLM phrases).

    Phrases are normalised and deduplicated; every query keeps the sources it came from
    (docs/queries.md)."""
    from internvid.config import QueriesConfig
    from internvid.hub import ModelsUnavailable
    from internvid.queries.build import build as build_queries
    from internvid.queries.build import print_summary

    given = {  # options given on the command line override the config file
        ("out",): out,
        ("lists",): score_list(lists),
        ("released",): released,
        ("ssv2",): ssv2,
        ("extra",): extra or None,
        ("llm_corpus",): llm_corpus,
        ("llm_model",): llm_model,
        ("llm_backend",): llm_backend,
        ("api_base",): api_base,
        ("llm_max_texts",): llm_max_texts,
        ("device",): check_device(device),
        ("dtype",): check_dtype(dtype),
        ("cache_dir",): cache_dir,
    }
    cfg = command_config(QueriesConfig, config, given)
    try:
        result = build_queries(cfg)
    except (ValueError, OSError, ModelsUnavailable) as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    print_summary(result)


def register(app: typer.Typer) -> None:
    queries = typer.Typer(
        no_args_is_help=True,
        help="The InternVid action-query vocabulary (search phrases for collection).",
    )
    queries.command("build")(build)
    app.add_typer(queries, name="queries")
