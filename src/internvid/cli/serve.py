"""`internvid serve`: options -> ServeConfig -> caption.server.serve (an OpenAI-compatible endpoint)."""

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
)
from internvid.outcome import EXIT_USAGE

log = logging.getLogger("internvid")


def serve(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="Models to serve, each under its name: hub ids, folders, tiny:NAME."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (127.0.0.1: this machine only).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (0: a free one).")] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="Requests of one model per generate() call.")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="Token cap of a request that sets no max_tokens.")
    ] = None,
    device: DeviceOption = None,
    dtype: DtypeOption = None,
    cache_dir: CacheDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve caption and fusion models (BLIP, BLIP-2, chat VLMs, T5, chat LMs) at an
    OpenAI-compatible /v1/chat/completions, for `internvid run --caption-backend openai
    --api-base http://HOST:PORT/v1`; concurrent requests are batched. Frames come as data URLs;
    nothing is fetched. For GPU throughput serve with vLLM (`vllm serve MODEL`) instead."""
    from internvid.caption.hf import HFCaptioner
    from internvid.caption.server import serve as run_server
    from internvid.config import ServeConfig
    from internvid.hub import ModelsUnavailable, pick_device, pick_dtype, resolve_models

    given = {
        ("models",): list(models) if models else None,
        ("host",): host,
        ("port",): port,
        ("max_batch",): max_batch,
        ("max_new_tokens",): max_new_tokens,
        ("device",): check_device(device),
        ("dtype",): check_dtype(dtype),
        ("cache_dir",): cache_dir,
    }
    cfg = command_config(ServeConfig, config, given)
    try:
        found = resolve_models(cfg.models, cfg.cache_dir, what="serving")
    except ModelsUnavailable as e:
        log.error("%s", e)
        raise typer.Exit(EXIT_USAGE) from e
    dev = pick_device(cfg.device)
    captioners = {
        r.name: HFCaptioner(
            r.path,
            name=r.name,
            device=dev,
            dtype=pick_dtype(cfg.dtype, dev),
            batch_size=cfg.max_batch,
            max_new_tokens=cfg.max_new_tokens,
            cache_dir=cfg.cache_dir,
        ).load()
        for r in found
    }
    run_server(captioners, cfg.host, cfg.port, cfg.max_batch)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
