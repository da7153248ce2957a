"""`internvid collect`: options -> CrawlConfig -> crawl.collect.collect -> a summary table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import ConfigOption, command_config
from internvid.outcome import EXIT_NOTHING, EXIT_USAGE

log = logging.getLogger("internvid")

EPILOG = (
    "Rules (reasons in candidates.parquet): too_short / too_long (10 s - 30 min), "
    "low_resolution (< 360p), no_audio, live, duplicate ids (kept once, first query), "
    "in_earlier_dataset (--ids). A rerun of the same command repeats no finished request "
    "(OUT/journal.jsonl). When the platform blocks us (a bot check, 429) the run stops, "
    "keeps its state and exits 1: rerun later."
)


def collect(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable).")],
    queries: Annotated[
        Path | None,
        typer.Option(help="Queries: InternVid queries.jsonl, `queries build` output or text."),
    ] = None,
    per_query: Annotated[int | None, typer.Option(help="Search results per query.")] = None,
    channel: Annotated[
        list[str] | None, typer.Option(help="A channel or playlist URL to list (repeatable).")
    ] = None,
    ids: Annotated[
        Path | None, typer.Option(help="Id database (`internvid ids`) of earlier datasets.")
    ] = None,
    download: Annotated[
        bool | None, typer.Option("--download/--no-download", help="Fetch accepted videos.")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Platform requests per second.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    config: ConfigOption = None,
) -> None:
    """Find videos like InternVid: search every query (yt-dlp, flat: no media), list channels,
    keep what passes the paper's rules, record each video's metadata and download the rest.
    Writes OUT/candidates.parquet (every video found, kept or why not), accepted.txt (URLs for
    `internvid run`), videos/, failures.jsonl, collect.json."""
    from rich.console import Console
    from rich.table import Table

    from internvid.config import CrawlConfig
    from internvid.crawl.collect import CollectError
    from internvid.crawl.collect import collect as run_collect

    given = {
        ("queries",): str(queries) if queries else None,
        ("per_query",): per_query,
        ("channels",): list(channel) if channel else None,
        ("ids",): str(ids) if ids else None,
        ("download",): download,
        ("rate",): rate,
        ("limit",): limit,
    }
    cfg = command_config(CrawlConfig, config, given)
    try:
        summary = run_collect(cfg, out, progress=progress)
    except CollectError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    table = Table(title=f"collect: {out}")
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [("queries", summary.queries), ("videos found", summary.found),
            ("accepted", summary.accepted), ("downloaded", summary.downloaded)]  # fmt: skip
    rows += [(f"dropped: {k}", v) for k, v in summary.dropped.items()]
    rows += [(f"failed: {k}", v) for k, v in summary.failed.items()]
    rows += [("requests (this run)", summary.requests), ("answers reused", summary.reused)]
    for k, v in rows:
        table.add_row(k, str(v))
    Console(stderr=True).print(table)
    if summary.blocked or not summary.accepted:
        raise typer.Exit(EXIT_NOTHING)


def register(app: typer.Typer) -> None:
    app.command("collect", epilog=EPILOG)(collect)
