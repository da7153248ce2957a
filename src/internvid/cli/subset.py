"""`internvid subset`: options -> SubsetConfig -> internvid.subsets.make_subset -> a summary."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated, Literal

import typer

from internvid.cli.options import ConfigOption
from internvid.config import SubsetConfig
from internvid.io.remote import input_path as input_path_of
from internvid.io.remote import not_downloads, tables_only
from internvid.outcome import EXIT_OK, EXIT_USAGE
from internvid.subsets.export import DEFAULT_CLIPS_PER_SHARD
from internvid.subsets.rules import Draw, fmt_number, rule_names, rules
from internvid.subsets.sampling import Rng
from internvid.subsets.source import SCORE_ALIASES, view_score_columns, where_help

log = logging.getLogger("internvid")

D = SubsetConfig()  # the defaults the help quotes
RuleName = Literal[rule_names()]  # the registered rules: the RULE choices
RngName = Literal[tuple(r.value for r in Rng)]
_DRAWN = [n for n, r in rules().items() if r.draw is not Draw.optional]  # the rules that need -n
_SAMPLED = [n for n, r in rules().items() if r.draw is Draw.optional]  # -n: a sample of the rows
RULE_HELP = " ".join(f"{name}: {r.help}" for name, r in rules().items())
_OTHER_SCORES = ", ".join(c for c in view_score_columns() if c not in ("viclip_sim", "umt"))
_UMT_NAMES = " / ".join(["umt", *(k for k, v in SCORE_ALIASES.items() if v == "umt")])
SCORE_HELP = (
    f"flt: rank by this score: viclip_sim (default), {_OTHER_SCORES}, {_UMT_NAMES} (default "
    "for release input), or any other score column of the run."
)


def subset(
    rule: Annotated[RuleName, typer.Argument(help=RULE_HELP)],
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="A run folder (its clips.parquet), a clips.parquet, or InternVid release "
            "metadata (.jsonl / .jsonl.gz; UMT_Score or UMT-SIM); local or s3://...",
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="Output prefix: writes PREFIX.jsonl (release format) and PREFIX.parquet "
            "(clips.parquet schema), each under a temp name then renamed (or s3://...).",
        ),
    ],
    config: ConfigOption = None,
    size: Annotated[
        int | None,
        typer.Option(
            "-n",
            "--size",
            help=f"Clips to draw ({', '.join(_DRAWN)}; {'/'.join(_SAMPLED)}: sample N).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help=f"Seed of the {'/'.join(_DRAWN)} draw (default {D.seed}, the release's)."
        ),
    ] = None,
    rng: Annotated[
        RngName | None,
        typer.Option(
            help=f"Random stream of {'/'.join(_DRAWN)}: legacy = np.random.seed(SEED) + "
            "np.random.choice, as the release's div_sampling.py; generator = "
            f"np.random.default_rng(SEED).choice (default {D.rng})."
        ),
    ] = None,
    keep_list: Annotated[
        str | None,
        typer.Option(
            help="Keep only the clip ids of this file, one a line (RUN/dedup/keep.txt of "
            "`internvid dedup`), before --where and the rule; local or s3://...",
        ),
    ] = None,
    where: Annotated[str | None, typer.Option(help=where_help())] = None,
    score: Annotated[str | None, typer.Option(help=SCORE_HELP)] = None,
    top_fraction: Annotated[
        float | None,
        typer.Option(help=f"flt: fraction kept by score (default {fmt_number(D.top_fraction)})."),
    ] = None,
    min_duration: Annotated[
        float | None,
        typer.Option(help=f"flt: shortest clip, seconds (default {fmt_number(D.min_duration)})."),
    ] = None,
    max_duration: Annotated[
        float | None,
        typer.Option(help=f"flt: longest clip, seconds (default {fmt_number(D.max_duration)})."),
    ] = None,
    min_aesthetic: Annotated[
        float | None,
        typer.Option(help=f"aes: lowest aesthetic score (default {fmt_number(D.min_aesthetic)})."),
    ] = None,
    max_text_overlay: Annotated[
        float | None, typer.Option(help="aes: also drop text_overlay above this.")
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help=f"DuckDB memory limit; beyond it, work spills to disk (default {D.memory_limit})."
        ),
    ] = None,
    temp_dir: Annotated[
        Path | None,
        typer.Option(help="Where DuckDB spills (default: beside the output; removed after)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="DuckDB threads (default: all cores).")
    ] = None,
    ignore_errors: Annotated[
        bool | None, typer.Option(help="Release input: skip lines DuckDB cannot parse.")
    ] = None,
    shards: Annotated[
        bool,
        typer.Option(
            "--shards",
            help="Also export the clips as training data into folder PREFIX/ (a run's subset "
            "only): shards/NNNNN.tar with each clip's mp4 copied from the run's tars (KEY.json, "
            "KEY.txt from the subset's rows), sidecars and clips.parquet; resumable.",
        ),
    ] = False,
    export_format: Annotated[
        Literal["wds", "hf"],
        typer.Option(
            "--format",
            help="Export format (implies --shards): wds = WebDataset tars; hf = "
            "PREFIX/data/NNNNN.parquet (rows + mp4 bytes) for datasets.load_dataset(PREFIX).",
        ),
    ] = "wds",
    clips_per_shard: Annotated[
        int, typer.Option(help="Export: clips per tar or parquet file.")
    ] = DEFAULT_CLIPS_PER_SHARD,
) -> None:
    """Rebuild a paper subset (DIV / FLT / Aes / random) or filter clips with SQL.

    Exit status: 0 rows were written, 1 the subset is empty (empty PREFIX.jsonl / .parquet are
    still written), 2 could not start (bad rule, options, --where or input).
    """
    try:
        import duckdb  # noqa: F401 - the check; _subset uses it
    except ImportError as e:
        log.error("internvid subset needs DuckDB: pip install 'internvid[query]'")
        raise typer.Exit(EXIT_USAGE) from e
    from internvid.config import apply_overrides, load_config

    # not cli.options.command_config: its validate() errors name --config, and a bad flag here
    # stays the logged error it has always been (make_subset checks every option)
    try:
        cfg = load_config(SubsetConfig, config) if config else SubsetConfig()
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--config") from e
    given = {  # options given on the command line override the config file
        ("rule",): rule,
        ("size",): size,
        ("seed",): seed,
        ("rng",): rng,
        ("keep_list",): keep_list,
        ("where",): where,
        ("score",): score,
        ("top_fraction",): top_fraction,
        ("min_duration",): min_duration,
        ("max_duration",): max_duration,
        ("min_aesthetic",): min_aesthetic,
        ("max_text_overlay",): max_text_overlay,
        ("memory_limit",): memory_limit,
        ("temp_dir",): None if temp_dir is None else str(temp_dir),
        ("threads",): threads,
        ("ignore_errors",): ignore_errors,
    }
    apply_overrides(cfg, given)
    export = shards or export_format != "wds"
    with contextlib.ExitStack() as stack:
        try:  # a remote INPUT is fetched (only its tables, unless exported)
            local_in = stack.enter_context(
                input_path_of(input_path, not_downloads if export else tables_only)
            )
        except OSError as e:  # a remote input that is not there, a store out of reach
            log.error("%s", e)
            raise typer.Exit(EXIT_USAGE) from e
        _subset(local_in, out, cfg, rule, export, clips_per_shard, export_format)


def _subset(
    input_path: Path,
    out: str,
    cfg: SubsetConfig,
    rule: str,
    export: bool,
    clips_per_shard: int,
    export_format: str,
) -> None:
    """The subset (and its export) of a local input; `out` may be remote."""
    import duckdb

    from internvid.outcome import outcome
    from internvid.subsets import SubsetError, make_subset
    from internvid.subsets.export import export_subset, run_folder_of

    try:
        run_dir = run_folder_of(input_path) if export else None  # before any work
        result = make_subset(input_path, out, cfg)
    except SubsetError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    except duckdb.Error as e:
        log.error("%s", str(e).strip())
        raise typer.Exit(EXIT_USAGE) from e
    typer.echo(f"{result.summary()} -> {result.jsonl}, {result.parquet} ({result.rows:,} rows)")
    done = outcome(result.rows, result.rows_in, 0, what="rows")
    if done.code != EXIT_OK:
        log.warning("the %s subset is empty: %s", rule, done.message)
        raise typer.Exit(done.code)
    if export:
        try:
            exported = export_subset(run_dir, result.parquet, out, clips_per_shard, export_format)
        except SubsetError as e:
            log.error("%s", e)
            raise typer.Exit(EXIT_USAGE) from e
        typer.echo(f"export: {exported.summary()} -> {out}")
        verdict = outcome(exported.clips, exported.inputs, exported.failures, what="clips exported")
        if verdict.code:
            log.error("%s", verdict.message)
            raise typer.Exit(verdict.code)


def register(app: typer.Typer) -> None:
    app.command("subset")(subset)
