"""`internvid caption-eval`: options -> CaptionEvalConfig -> eval.caption_eval.caption_eval -> a table."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import (
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
)
from internvid.eval.caption_eval import Thresholds
from internvid.outcome import EXIT_NOTHING, EXIT_USAGE

log = logging.getLogger("internvid")

EXIT_FAILED = 1  # a metric failed its check (as EXIT_NOTHING: both mean "not good")

_T = Thresholds()  # the defaults, for the help text
EPILOG = (
    "Metrics (means over the set): viclip_sim (ViCLIP video-caption cosine, as the viclip_sim "
    "score), words per caption, empty_rate, repetition (share of a caption's word 3-grams that "
    "repeat), distinct_2 (distinct / all word bigrams of the set), duplicate_rate (captions equal "
    f"to another clip's). A check fails when similarity drops by more than {_T.similarity_drop:g}, "
    f"words leave {_T.words_min_ratio:g}x-{_T.words_max_ratio:g}x of the baseline, empty rate "
    f"rises by more than {_T.empty_rise:g}, repetition by more than {_T.repetition_rise:g}, "
    f"duplicates by more than {_T.duplicate_rise:g}, distinct-2 drops by more than "
    f"{_T.distinct_drop:g} (a --config file's `thresholds:` section: "
    f"{', '.join(f.name for f in fields(Thresholds))}). Exit codes: 0 every metric within its "
    "threshold (or no baseline); 1 a metric failed, or nothing could be scored (no caption "
    "matched the set, no video could be read); 2 could not start: bad options, files or "
    "missing models."
)


def caption_eval_command(
    clip_set: Annotated[
        Path,
        typer.Argument(
            metavar="CLIPSET",
            help="Clip set JSON (from --make-set): clip ids, videos (relative to --root, "
            "else to the file's folder), start and end seconds.",
        ),
    ],
    captions: Annotated[
        Path | None,
        typer.Option(
            "--captions",
            metavar="RUN_OR_JSONL",
            help='Captions to judge: a run folder (its clips.parquet) or a JSONL of {"clip_id": '
            '..., "caption": ...} rows (another captioner\'s output).',
        ),
    ] = None,
    caption_kind: Annotated[
        str | None,
        typer.Option(help="Caption column of a run folder: fused (default), coarse, or NAME."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Baseline JSON to check against: exit 1 when a metric fails."),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            help="Write these captions' means as a baseline JSON (with --baseline: only when "
            "every check passes)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the report JSON (metrics, checks, per clip)."),
    ] = None,
    make_set: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN",
            help="First write CLIPSET: --clips kept clips of this finished run, drawn with "
            "--seed (then judge --captions, when given).",
        ),
    ] = None,
    clips: Annotated[
        int | None, typer.Option(min=1, help="Clips of a new set (--make-set; 32).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the --make-set draw (0).")] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the videos: relative paths of the set resolve here (--make-set: "
            "videos under it are written relative to it)."
        ),
    ] = None,
    config: ConfigOption = None,
    models: ModelsOption = None,
    viclip: ViclipOption = None,
    viclip_sampling: Annotated[
        str | None, typer.Option(help="ViCLIP frames: middle (as viclip_sim; default) or demo.")
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Clips per model call (32).")
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Caption-quality regression check: judge captions of a fixed clip set (ViCLIP similarity
    and text metrics) and compare them with a baseline; `--make-set RUN` makes the set."""
    from internvid.eval.caption_eval import (
        CaptionEvalConfig,
        CaptionEvalError,
        NothingScored,
        caption_eval,
        clip_set_from_run,
        load_clip_set,
        write_clip_set,
    )
    from internvid.eval.caption_eval import write_baseline as save_baseline

    given = {  # options given on the command line override the config file
        ("caption_kind",): caption_kind,
        ("models",): check_choice(models, MODELS, "--models"),
        ("viclip",): viclip,
        ("viclip_sampling",): viclip_sampling,
        ("device",): check_device(device),
        ("dtype",): check_dtype(dtype),
        ("batch_size",): batch_size,
        ("cache_dir",): cache_dir,
        ("clips",): clips,
        ("seed",): seed,
    }
    cfg = command_config(CaptionEvalConfig, config, given)
    if make_set is None and captions is None:
        raise typer.BadParameter("give --captions RUN_OR_JSONL (or --make-set RUN)")
    try:
        if make_set is not None:
            made = clip_set_from_run(make_set, cfg.clips, cfg.seed, root)
            write_clip_set(made, clip_set)
            log.info(
                "clip set %s: %d clips of %s (digest %s)",
                clip_set,
                len(made.clips),
                make_set,
                made.digest,
            )
        if captions is None:
            return
        report = caption_eval(load_clip_set(clip_set, root), captions, cfg, baseline)
    except NothingScored as e:
        log.error("nothing could be scored: %s", e)
        raise typer.Exit(EXIT_NOTHING) from e
    except (CaptionEvalError, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    print_report(report)
    for note in report.result.notes:
        log.warning("note: %s", note)
    if out is not None:
        from internvid.io.atomic import write_json_atomic

        write_json_atomic(out, report.to_json())
        log.info("report written to %s", out)
    failed = report.failed
    if write_baseline is not None:
        if failed:
            log.warning("baseline %s not written: the captions failed the check", write_baseline)
        else:
            save_baseline(report.result, write_baseline)
            log.info("baseline written to %s", write_baseline)
    if failed:
        log.error("%d metric(s) failed against %s: %s", len(failed), baseline, ", ".join(failed))
        raise typer.Exit(EXIT_FAILED)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_report(report) -> None:
    """The metrics, current against baseline, with pass/fail, as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    from internvid.eval.caption_eval import METRICS

    r = report.result
    title = f"captions of {len(r.clips)} clips (set {r.clip_set}, {r.model})"
    table = Table(title=title)
    for name, justify in [
        ("metric", "left"),
        ("baseline", "right"),
        ("current", "right"),
        ("rule", "left"),
        ("result", "left"),
    ]:
        table.add_column(name, justify=justify)
    checks = {c.metric: c for c in report.checks}
    current = r.metrics.to_json()
    for metric in METRICS:
        c = checks.get(metric)
        if c is None:
            table.add_row(metric, "-", _fmt(current[metric]), "", "-")
            continue
        verdict = "[green]pass[/green]" if c.passed else "[bold red]FAIL[/bold red]"
        if c.note:
            verdict += f" ({c.note})"
        table.add_row(metric, _fmt(c.baseline), _fmt(c.current), c.rule, verdict)
    console = Console()
    console.print(table)
    if r.missing or r.unreadable:
        console.print(
            f"{r.missing} clip(s) without a caption (counted as empty), "
            f"{r.unreadable} unreadable (no similarity)"
        )


def register(app: typer.Typer) -> None:
    app.command("caption-eval", epilog=EPILOG)(caption_eval_command)
