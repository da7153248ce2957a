"""`internvid download`: options -> DownloadCommandConfig -> download_release -> summary."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from internvid.cli.options import ConfigOption, command_config
from internvid.config import DownloadCommandConfig

if TYPE_CHECKING:
    from internvid.download import DownloadSummary

log = logging.getLogger("internvid")
_D = DownloadCommandConfig()  # the defaults the help shows (the config file's when not given)


def download(
    metadata: Annotated[
        str, typer.Argument(help="InternVid release metadata: .jsonl or .jsonl.gz (or s3://...).")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (an interrupted download resumes; a path or s3://...).",
        ),
    ],
    config: ConfigOption = None,
    url_template: Annotated[
        str | None,
        typer.Option(
            help="Video URL of a row; {YoutubeID} is replaced by its id "
            f"(default: {_D.url_template})."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", help=f"Clips downloaded at the same time (default: {_D.workers})."
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help=f"Requests per second across all workers (0: no limit) (default: {_D.rate:g})."
        ),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help=f"Requests that may go at once (default: {_D.burst}).")
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            help=f"Extra tries of a transient failure (429, 5xx, network) (default: {_D.retries})."
        ),
    ] = None,
    backoff: Annotated[
        float | None,
        typer.Option(
            help=f"Seconds before the first retry (doubles, jittered) (default: {_D.backoff:g})."
        ),
    ] = None,
    max_backoff: Annotated[
        float | None,
        typer.Option(help=f"Longest wait between tries (default: {_D.max_backoff:g})."),
    ] = None,
    max_height: Annotated[
        int | None,
        typer.Option(
            help=f"Pick formats up to this height (0: no cap) (default: {_D.max_height})."
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="A yt-dlp format selector (overrides the cap)."),
    ] = None,
    rows_per_shard: Annotated[
        int | None,
        typer.Option(
            help="Metadata rows per unit of work and WebDataset shard "
            f"(default: {_D.rows_per_shard})."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N valid rows.")] = None,
    socket_timeout: Annotated[
        float | None,
        typer.Option(
            help=f"Seconds to wait on a silent connection (default: {_D.socket_timeout:g})."
        ),
    ] = None,
    allow_leading_dash: Annotated[
        bool | None,
        typer.Option(help="Accept YoutubeIDs starting with '-' (refused by default)."),
    ] = None,
    max_failure_rate: Annotated[
        float | None,
        typer.Option(
            help="Exit with code 3 when more than this fraction (0-1) of the rows failed, "
            "though clips were produced (default: no limit)."
        ),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Download the clips of InternVid metadata rows (only their time ranges) into shards.

    Exit codes: 0 clips were produced (failures within --max-failure-rate), 1 none were (or
    every row failed), 2 it could not start, 3 above --max-failure-rate, 4 another download
    holds the output folder.
    """
    from internvid.download import DownloadLockedError, DownloadSetupError, download_release
    from internvid.outcome import EXIT_LOCKED, EXIT_USAGE, outcome

    if max_failure_rate is not None and not 0.0 <= max_failure_rate <= 1.0:
        log.error("--max-failure-rate must be within 0-1, got %g", max_failure_rate)
        raise typer.Exit(EXIT_USAGE)

    given = {  # options given on the command line override the config file
        ("url_template",): url_template,
        ("workers",): workers,
        ("rate",): rate,
        ("burst",): burst,
        ("retries",): retries,
        ("backoff",): backoff,
        ("max_backoff",): max_backoff,
        ("max_height",): max_height,
        ("format",): fmt,
        ("rows_per_shard",): rows_per_shard,
        ("limit",): limit,
        ("socket_timeout",): socket_timeout,
        ("allow_leading_dash",): allow_leading_dash,
    }
    cfg = command_config(DownloadCommandConfig, config, given)
    try:
        summary = download_release(metadata, out, cfg, progress=not no_progress)
    except DownloadLockedError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_LOCKED) from e
    except DownloadSetupError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    print_download_summary(summary)
    result = outcome(
        summary.clips,
        summary.rows + summary.input_failures,
        summary.failures,
        max_failure_rate,
        "clips",
    )
    if result.code:
        log.error("%s", result.message)
        raise typer.Exit(result.code)


def print_download_summary(s: DownloadSummary) -> None:
    """What the invocation did, in four lines on the console."""
    from internvid.log import console

    reasons = ", ".join(f"{k}: {v}" for k, v in s.failures_by_reason.items()) or "none"
    console.print(
        f"[bold]{s.clips}[/] clips ({s.clip_seconds:.1f} s) in {s.shards} shard(s) from "
        f"{s.rows} rows -> {s.out_dir}/shards"
    )
    console.print(
        f"this run: {s.downloaded} downloaded, {s.reused} kept from earlier runs, "
        f"{s.units_done_before}/{s.units} shards already finished; {s.requests} requests "
        f"({s.info_fetches} info, {s.retries} retries)"
    )
    console.print(
        f"failures: {s.failures} ({reasons}); {s.transient_failures} transient "
        "(a rerun retries them)"
    )
    console.print(
        f"wall {s.wall_seconds:.1f} s: {s.clips_per_second:.2f} clips/s, "
        f"{s.megabytes_per_second:.2f} MB/s"
    )


def register(app: typer.Typer) -> None:
    app.command("download")(download)
