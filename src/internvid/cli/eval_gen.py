"""`internvid eval-gen`: options -> EvalGenConfig -> internvid.eval.evaluate_generation -> JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from internvid.cli.options import (
    ConfigOption,
    DeviceOption,
    DtypeOption,
    check_device,
    check_dtype,
    command_config,
)

log = logging.getLogger("internvid")


def eval_gen(
    generated: Annotated[
        Path,
        typer.Argument(
            help="Generated videos: a folder (prompts in STEM.txt beside each video) or a "
            "list (.txt of paths; .jsonl/.json/.csv with 'video' and 'caption' columns)."
        ),
    ],
    config: ConfigOption = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Reference (real) videos for FVD and FID: a folder, a list, or a .npz "
            "written by --save-reference-stats."
        ),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated: fvd, fid, is, clipsim (all four).")
    ] = None,
    i3d: Annotated[
        Path | None, typer.Option(help="FVD's I3D TorchScript file (i3d_torchscript.pt).")
    ] = None,
    inception: Annotated[
        Path | None,
        typer.Option(help="FID/IS Inception TorchScript file (inception-2015-12-05.pt)."),
    ] = None,
    clip: Annotated[
        str | None,
        typer.Option(help="CLIPSIM's CLIP: hub id or local folder (openai/clip-vit-base-patch32)."),
    ] = None,
    frames: Annotated[
        int | None, typer.Option(min=1, help="Frames per video, consecutive from the first (16).")
    ] = None,
    stride: Annotated[int | None, typer.Option(min=1, help="Take every N-th frame (1).")] = None,
    splits: Annotated[int | None, typer.Option(min=1, help="Inception Score splits (10).")] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Videos per extractor call (8).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Video decoding threads (2).")] = None,
    save_reference_stats: Annotated[
        Path | None,
        typer.Option(help="Write the reference FVD/FID statistics to this .npz (reusable)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the result JSON here (default: stdout)."),
    ] = None,
) -> None:
    """Text-to-video generation metrics: FVD, FID, IS against reference videos, CLIPSIM with the prompts."""
    from internvid.config import DTYPE_ALIASES, EvalGenConfig
    from internvid.eval.generation import evaluate_generation, summary_line

    given = {  # options given on the command line override the config file
        ("reference",): None if reference is None else str(reference),
        ("metrics",): None if metrics is None else [m.strip().lower() for m in metrics.split(",") if m.strip()],
        ("i3d",): None if i3d is None else str(i3d),
        ("inception",): None if inception is None else str(inception),
        ("clip",): clip,
        ("frames",): frames,
        ("stride",): stride,
        ("splits",): splits,
        ("device",): check_device(device),
        ("dtype",): check_dtype(dtype),
        ("batch_size",): batch_size,
        ("workers",): workers,
        ("save_reference_stats",): None if save_reference_stats is None else str(save_reference_stats),
        ("out",): None if out is None else str(out),
    }  # fmt: skip
    cfg = command_config(EvalGenConfig, config, given)
    cfg.dtype = DTYPE_ALIASES.get(cfg.dtype, cfg.dtype)  # the torch names are read as these
    check_device(cfg.device)
    try:
        result = evaluate_generation(
            generated, cfg.reference, metrics=cfg.metrics, i3d=cfg.i3d, inception=cfg.inception,
            clip=cfg.clip, num_frames=cfg.frames, stride=cfg.stride, splits=cfg.splits,
            device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size, workers=cfg.workers,
            save_reference_stats=cfg.save_reference_stats,
        )  # fmt: skip
    except (OSError, ValueError) as e:
        log.error("%s", e)
        raise typer.Exit(2) from e
    log.info("%s", summary_line(result))
    if cfg.out is None:
        typer.echo(json.dumps(result, indent=2))
        return
    from internvid.io.atomic import write_json_atomic

    write_json_atomic(Path(cfg.out), result)
    log.info("wrote %s", cfg.out)


def register(app: typer.Typer) -> None:
    app.command("eval-gen")(eval_gen)
