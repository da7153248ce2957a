"""`internvid train` / `train-frames`: options -> TrainConfig / TrainFramesConfig -> internvid.train."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import logging
import textwrap
import tokenize
from pathlib import Path
from typing import Annotated, Any

import typer

from internvid.cli.options import (
    DTYPES,
    ConfigOption,
    DeviceOption,
    DtypeOption,
    check_choice,
    check_device,
    command_config,
)
from internvid.config import TrainConfig, TrainFramesConfig

log = logging.getLogger("internvid")

FIELDS_PANEL = "Training settings: every TrainConfig field (a config file's keys, _ for -)"
SHARED_FIELDS = ("device", "dtype")  # TrainConfig fields set by the shared --device / --dtype
METAVARS = {"int": "INT", "float": "FLOAT", "bool": "BOOL", "str": "TEXT"}  # field type -> shown


def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of dataclass `cls` in its source: the comment lines right
    above the field, else the comment at the end of its line ({} when the source is gone)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {  # line number -> (comment text, whether the line holds only the comment)
        tok.start[0]: (tok.string.lstrip("#").strip(), not tok.line[: tok.start[1]].strip())
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    (node,) = ast.parse(source).body
    out: dict[str, str] = {}
    for stmt in node.body:  # type: ignore[attr-defined]
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        above, line = [], stmt.lineno - 1
        while line in comments and comments[line][1]:
            above.insert(0, comments[line][0])
            line -= 1
        trailing = comments.get(stmt.lineno, ("", True))
        out[stmt.target.id] = " ".join(above) or (trailing[0] if not trailing[1] else "")
    return out


def _shown(value: Any) -> str:
    """A default as it is written on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if value == "":
        return '""'
    return str(value)


def _field_options() -> list[inspect.Parameter]:
    """One `--field VALUE` option per TrainConfig field (not `extra`, not device / dtype): the
    field's comment and default as its help, the value read as the field's type by
    `internvid.train.args.parse_value`."""
    comments = field_comments(TrainConfig)
    defaults = TrainConfig()
    params = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra" or f.name in SHARED_FIELDS:
            continue
        kind = str(f.type)
        metavar = METAVARS.get(kind, "A,B" if kind.startswith("tuple") else "NAME|JSON")
        help_text = f"{comments.get(f.name, '')} (default: {_shown(getattr(defaults, f.name))})"
        option = typer.Option(
            f"--{f.name.replace('_', '-')}",
            help=help_text.strip(),
            metavar=metavar,
            rich_help_panel=FIELDS_PANEL,
            show_default=False,
        )
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[str | None, option],
            )
        )
    return params


def train(**options: Any) -> None:
    """Train ViCLIP on a run's shards or the synthetic shapes (configs/*.yaml; any setting
    below as --field VALUE, e.g. --steps 100 --lr 1e-4).

    Here --device auto (the default) takes each process's GPU (LOCAL_RANK under torchrun) when
    there is one, else the CPU; --dtype is the autocast: fp32 (the default: none), bf16, auto
    (bf16 on a GPU that supports it, else fp32); fp16 is refused (it needs loss scaling).

    Several GPUs or nodes: `torchrun --nproc_per_node N -m internvid.train --config FILE`.
    """
    config, resume, resume_from = (
        options.pop("config"),
        options.pop("resume"),
        options.pop("resume_from"),
    )
    device = check_device(options.pop("device"))
    dtype = check_choice(options.pop("dtype"), DTYPES, "--dtype")
    given = {name: raw for name, raw in options.items() if raw is not None}
    given.update({k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None})

    from internvid.train.args import build_config
    from internvid.train.loop import train as run_training

    try:
        cfg = build_config(config, given)
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--config") from e
    try:
        result = run_training(cfg, resume=resume, resume_from=resume_from)
    except (OSError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
    summary = f"{result['step']} steps, final loss {result['losses'][-1]:.4f}"
    if "heldout" in result:
        summary += ", held-out " + ", ".join(
            f"{k} {v:.1f}" for k, v in result["heldout"].items() if k != "clips"
        )
    log.info("trained: %s; checkpoint %s", summary, result["checkpoint"])


train.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=tp)
        for name, default, tp in (
            ("config", None, ConfigOption),
            (
                "resume",
                False,
                Annotated[
                    bool,
                    typer.Option(help="Continue from the newest checkpoint in the output folder."),
                ],
            ),
            (
                "resume_from",
                None,
                Annotated[Path | None, typer.Option(help="Continue from this checkpoint file.")],
            ),
            ("device", None, DeviceOption),
            ("dtype", None, DtypeOption),
        )
    ]
    + _field_options()
)


def train_frames(
    source: Annotated[str, typer.Argument(help="A run folder, a glob of .tar shards, or one.")],
    out: Annotated[Path, typer.Argument(help="Folder for the frame shards.")],
    config: ConfigOption = None,
    frames: Annotated[
        int | None, typer.Option(min=1, help="JPEG frames kept per clip (16).")
    ] = None,
    short_side: Annotated[
        int | None, typer.Option(min=16, help="Frames larger than this are resized to it (256).")
    ] = None,
    quality: Annotated[int | None, typer.Option(min=1, max=100, help="JPEG quality (90).")] = None,
) -> None:
    """Pre-extract training frames from clip shards (then train with --data OUT).

    Training then decodes a few JPEGs per clip instead of the video. An interrupted call
    resumes: finished shards are kept.
    """
    given = {("frames",): frames, ("short_side",): short_side, ("quality",): quality}
    cfg = command_config(TrainFramesConfig, config, given)

    from internvid.train.frames import write_frame_shards

    try:
        counts = write_frame_shards(source, out, cfg.frames, cfg.short_side, cfg.quality)
    except (OSError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
    log.info(
        "frame shards in %s: %d clips in %d shards (%d kept from before); %d clips failed, "
        "%d with unsafe keys left out",
        out,
        counts["clips"],
        counts["shards"],
        counts["skipped_shards"],
        counts["failed"],
        counts["unsafe_keys"],
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("train-frames")(train_frames)
