"""`internvid ids`: options -> IdsConfig -> internvid.ids.database.IdDatabase -> a summary.

internvid ids import DB FILE --dataset NAME [--column C]   add a file's YouTube ids
internvid ids overlap DB A B [--out shared.parquet] [--json]
internvid ids list DB                                       datasets and their ids
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from internvid.cli.options import ConfigOption, command_config, exit_codes_epilog
from internvid.outcome import EXIT_LOCKED, EXIT_NOTHING, EXIT_OK, EXIT_USAGE

log = logging.getLogger("internvid")

EPILOG = exit_codes_epilog((EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_LOCKED))

ids_app = typer.Typer(
    no_args_is_help=True,
    help="A database of YouTube video ids by dataset (one DuckDB file): import the ids of "
    "release files and id lists, ask how much of one dataset another holds (docs/ids.md).",
)

DbArgument = Annotated[
    Path, typer.Argument(metavar="DB", help="The id database: a DuckDB file (import creates it).")
]
MemoryLimitOption = Annotated[
    str | None,
    typer.Option(
        help="DuckDB memory limit, e.g. 24MB (the default) or 1GB; imports and overlaps work "
        "a bucket group of ids at a time, so it need not grow with the files."
    ),
]
ThreadsOption = Annotated[int | None, typer.Option(min=1, help="DuckDB threads (default 1).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _config(config: Path | None, memory_limit: str | None, threads: int | None) -> Any:
    from internvid.config import IdsConfig

    given = {("memory_limit",): memory_limit, ("threads",): threads}
    return command_config(IdsConfig, config, given)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Errors a user can fix as one logged line and an exit code: 2 for a missing file, a bad
    name, column or dataset, a file DuckDB cannot read; 4 when another process writes the DB."""
    import duckdb

    from internvid.ids.database import IdsError

    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as e:
        log.error("%s: %s", e.filename or "", e.strerror or e)
        raise typer.Exit(EXIT_USAGE) from None
    except IdsError as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from None
    except duckdb.OutOfMemoryException as e:
        first = str(e).splitlines()[0]
        log.error("%s; give DuckDB more with --memory-limit (e.g. 256MB)", first)
        raise typer.Exit(EXIT_USAGE) from None
    except duckdb.IOException as e:
        first = str(e).splitlines()[0]
        if "lock" in first.lower():
            log.error("the id database is in use by another process: %s", first)
            raise typer.Exit(EXIT_LOCKED) from None
        log.error("%s", first)
        raise typer.Exit(EXIT_USAGE) from None
    except duckdb.Error as e:
        log.error("%s", str(e).splitlines()[0])
        raise typer.Exit(EXIT_USAGE) from None


@ids_app.command("import", epilog=EPILOG)
def import_command(
    db: DbArgument,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Ids to add: .csv / .tsv (a header row), .parquet, .jsonl / .json (JSON lines, "
            "e.g. an InternVid release file), .txt (an id or URL a line); .gz read through.",
        ),
    ],
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="The dataset the ids belong to, e.g. hdvila.")
    ],
    column: Annotated[
        str | None,
        typer.Option(
            help="The column (jsonl: key) of the ids or YouTube URLs (default: found by name: "
            "youtube_id, YoutubeID, videoid, video_id, ytid, id, else a url/link column)."
        ),
    ] = None,
    config: ConfigOption = None,
    memory_limit: MemoryLimitOption = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the YouTube ids of a file to a dataset (malformed rows counted, not stored).

    Importing the same file again adds nothing."""
    from internvid.ids.database import IdDatabase
    from internvid.outcome import outcome

    cfg = _config(config, memory_limit, threads)
    with _errors(), IdDatabase.open(db, cfg) as database:
        stats = database.import_file(file, dataset, column)
        held = database.datasets()[stats.dataset]
    if as_json:
        typer.echo(json.dumps({**stats.to_json(), "dataset_ids": held}, indent=2))
    else:
        typer.echo(
            f"{file} -> {stats.dataset!r}: {stats.rows:,} rows, {stats.added:,} new ids, "
            f"{stats.duplicates:,} already held or repeated, {stats.malformed:,} malformed "
            f"(column {stats.column}, {stats.seconds:.1f} s); {stats.dataset!r} holds {held:,} ids"
        )
    valid = stats.rows - stats.malformed
    result = outcome(valid, stats.rows, stats.malformed, what="ids")
    if result.code != EXIT_OK:
        log.error("no YouTube id in %s (%s rows, %s malformed)", file, stats.rows, stats.malformed)
        raise typer.Exit(result.code)


@ids_app.command("overlap", epilog=EPILOG)
def overlap_command(
    db: DbArgument,
    a: Annotated[str, typer.Argument(metavar="A", help="A dataset of the database.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Another dataset (or the same).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Also write the shared ids to this Parquet file (column id)."
        ),
    ] = None,
    config: ConfigOption = None,
    memory_limit: MemoryLimitOption = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many ids datasets A and B share, and what share of each the other holds."""
    from internvid.ids.database import IdDatabase

    cfg = _config(config, memory_limit, threads)
    exported = None
    with _errors(), IdDatabase.open(db, cfg, read_only=True) as database:
        o = database.overlap(a, b)
        if out is not None:
            exported = database.export_overlap(a, b, out)
    if as_json:
        result = {**o.to_json(), "out": str(out) if out else None, "exported": exported}
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{o.a!r}: {o.in_a:,} ids, {o.in_both:,} of them in {o.b!r} ({o.a_in_b:.2%})")
        typer.echo(f"{o.b!r}: {o.in_b:,} ids, {o.in_both:,} of them in {o.a!r} ({o.b_in_a:.2%})")
        if out is not None:
            typer.echo(f"wrote {exported:,} shared ids to {out}")
    if out is not None and not exported:
        log.error("%r and %r share no id: %s holds none", a, b, out)
        raise typer.Exit(EXIT_NOTHING)


@ids_app.command("list", epilog=EPILOG)
def list_command(
    db: DbArgument,
    config: ConfigOption = None,
    memory_limit: MemoryLimitOption = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The datasets of the database, the ids each holds and the files imported into it."""
    from internvid.ids.database import IdDatabase

    cfg = _config(config, memory_limit, threads)
    with _errors(), IdDatabase.open(db, cfg, read_only=True) as database:
        datasets = database.datasets()
        imports = database.imports()
    files: dict[str, int] = {}
    for i in imports:
        files[i.dataset] = files.get(i.dataset, 0) + 1
    if as_json:
        result = {"datasets": datasets, "imports": [i.to_json() for i in imports]}
        typer.echo(json.dumps(result, indent=2))
    else:
        width = max([len("dataset"), *(len(d) for d in datasets)])
        typer.echo(f"{'dataset':<{width}}  {'ids':>13}  {'files':>5}")
        for name, n in datasets.items():
            typer.echo(f"{name:<{width}}  {n:>13,}  {files.get(name, 0):>5}")
    if not datasets:
        log.error("%s holds no dataset yet (add one with `internvid ids import`)", db)
        raise typer.Exit(EXIT_NOTHING)


def register(app: typer.Typer) -> None:
    app.add_typer(ids_app, name="ids")
