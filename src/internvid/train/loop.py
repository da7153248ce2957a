"""The training loop: `main(argv)` (also `torchrun -m internvid.train`) and `train(cfg)`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from internvid.config import TrainConfig
from internvid.io import remote
from internvid.io.storage import is_remote
from internvid.models.viclip import ViCLIP, count_parameters
from internvid.train.args import parse_args
from internvid.train.batches import batch_indices, load_data, make_batch
from internvid.train.checkpoint import (
    latest_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_failures,
)
from internvid.train.init import load_init
from internvid.train.loss import clip_loss
from internvid.train.optim import param_groups, warmup_cosine
from internvid.train.shapes import evaluate_shapes

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train from command-line arguments (`args.parse_args`); returns what `train` returns."""
    cfg, args = parse_args(argv)
    return train(cfg, resume=args.resume, resume_from=args.resume_from)


def pick_device(spec: str, distributed: bool) -> torch.device:
    """`TrainConfig.device` -> this process's device: auto and cuda take the GPU of LOCAL_RANK
    (0 outside torchrun; auto: cpu when there is no GPU); cuda:N one GPU, refused under a
    multi-process torchrun."""
    from internvid.hub import pick_device as pick_name

    name = pick_name(spec)
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec}: torch finds no GPU here")
    if name.startswith("cuda:"):
        if distributed:
            raise ValueError(
                f"device {spec} names one GPU, but under torchrun every process takes the GPU "
                "of its LOCAL_RANK: use device cuda (or auto)"
            )
        return torch.device(name)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def autocast_dtype(spec: str, device: torch.device) -> torch.dtype | None:
    """`TrainConfig.dtype` -> the autocast dtype (None: none, float32): bf16 always, auto on a
    GPU that supports bfloat16."""
    if spec == "bf16":
        return torch.bfloat16
    if spec == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _is_shard(rel: str) -> bool:
    """A remote data folder's shard tars (not its downloads or scratch)."""
    return rel.endswith(".tar") and remote.not_downloads(rel)


def train_remote(
    cfg: TrainConfig, resume: bool = False, resume_from: str | Path | None = None
) -> dict[str, Any]:
    """`train` with remote data (a run or frame-shard folder, or one .tar: its shards fetched
    here) and/or a remote `cfg.out` (staged here: its checkpoints fetched for --resume, each new
    checkpoint published when written, the rest at the end; rank 0 holds its lock)."""
    rank0 = int(os.environ.get("RANK", "0")) == 0
    with contextlib.ExitStack() as stack:
        data, out = cfg.data, cfg.out
        if is_remote(data):
            data = str(stack.enter_context(remote.input_path(data, _is_shard)))
        if is_remote(out):
            where = remote.staged(out, "train") if rank0 else remote.readable(out)
            out = str(stack.enter_context(where))
        result = train(dataclasses.replace(cfg, data=data, out=out), resume, resume_from)
        result["out"] = cfg.out
        return result


def train(
    cfg: TrainConfig, resume: bool = False, resume_from: str | Path | None = None
) -> dict[str, Any]:
    """Train; returns {"losses": per-step losses from step 1, "step", "checkpoint", "out",
    "seconds"} (+ "wise_ft", "heldout" when asked for). `resume`: continue from the newest
    checkpoint in cfg.out; `resume_from`: from this checkpoint file. `cfg.data` and `cfg.out`
    may be remote (s3://...): `train_remote`."""
    if is_remote(cfg.data) or is_remote(cfg.out):
        return train_remote(cfg, resume, resume_from)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(cfg.device, distributed)
    owns_group = distributed and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = autocast_dtype(cfg.dtype, device)
    log.info("device %s, autocast %s", device, amp or "none (float32)")
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    torch.manual_seed(cfg.seed)  # same init on every process
    model = ViCLIP(cfg.model_config())
    load_init(model, cfg.init)
    initial = None
    if cfg.wise_ft > 0 and not cfg.wise_ft_with:
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    elif cfg.wise_ft > 0:  # e.g. the CLIP a finishing run's pre-training started from
        other = ViCLIP(cfg.model_config())
        load_init(other, cfg.wise_ft_with)
        initial = other.state_dict()
    if cfg.freeze_text:
        model.freeze_text()
    model.to(device)
    log.info("%s: %.2fM parameters", model.config.name, count_parameters(model) / 1e6)

    data = load_data(cfg)
    total = cfg.steps_for(len(data), world)
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total, cfg.warmup * total, cfg.min_lr_multi)
    )
    out = Path(cfg.out)
    step, position, losses = 0, 0, []

    resume_path = Path(resume_from) if resume_from else None
    if resume and resume_path is None:
        resume_path = latest_checkpoint(out)
        if resume_path is None:
            log.warning("--resume: no checkpoint in %s, starting afresh", out)
    if resume_path is not None:
        ckpt = torch.load(resume_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        step, position, losses = ckpt["step"], ckpt["data_position"], list(ckpt["losses"])
        rng = ckpt["rng"][rank] if isinstance(ckpt["rng"], list) else ckpt["rng"]
        set_rng_state(rng)
        log.info("resumed from %s at step %d", resume_path, step)
        if hasattr(data, "failures") and (out / "failures.jsonl").is_file():  # keep them listed
            from internvid.engine.sample import Failure

            for line in (out / "failures.jsonl").read_text().splitlines():
                row = json.loads(line)
                data.failures.setdefault(row["item"], Failure(**row))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    def checkpoint_now() -> Path:
        rngs: Any = rng_state()
        failed = dict(getattr(data, "failures", {}))  # shards: clips that did not decode
        if distributed:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, (rngs, failed))
            rngs = [g[0] for g in gathered]
            failed = {k: v for g in gathered for k, v in g[1].items()}
        path = out / f"ckpt_{step:07d}.pt"
        if rank == 0 and failed:
            write_failures(out / "failures.jsonl", failed)
        if rank == 0:
            payload = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "data_position": position,
                "losses": losses,
                "rng": rngs,
                "config": cfg.to_dict(),
            }
            save_checkpoint(path, payload)
            log.info("checkpoint %s", path)
            store = remote.store_of(out)  # a remote cfg.out: each checkpoint is published at once
            if store is not None:
                if failed:
                    store.put(out / "failures.jsonl", "failures.jsonl")
                store.put(path, path.name)
        return path

    last_ckpt: Path | None = None
    pool = None
    if hasattr(data, "item") and cfg.decode_threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(cfg.decode_threads, thread_name_prefix="decode")
    autocast = torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None)
    model.train()
    first_step, started = step, time.perf_counter()
    while step < total:
        # every process reads its own slice of the global batch
        first = position + rank * cfg.batch_size  # this process's first sample of the batch
        idx = batch_indices(first, cfg.batch_size, len(data), cfg.seed)
        draws = [cfg.seed * 1_000_003 + first + j for j in range(cfg.batch_size)]
        videos, ids = make_batch(data, idx, draws, pool)  # (B, T, 3, S, S), (B, 32)
        videos, ids = videos.to(device), ids.to(device)
        model.clamp_temperature()
        with autocast:
            v = model.encode_video(videos, normalize=True)  # (B, D), masked in train mode
            with torch.set_grad_enabled(not cfg.freeze_text):
                t = model.encode_text(ids, normalize=True)  # (B, D)
            loss = clip_loss(v.float(), t.float(), model.logit_scale.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distributed:  # each process holds the global loss's gradient through its shard
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
        optimizer.step()
        scheduler.step()
        model.clamp_temperature()
        step += 1
        position += cfg.batch_size * world
        value = loss.detach()
        if distributed:
            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if cfg.log_every and (step % cfg.log_every == 0 or step == 1):
            rate = (step - first_step) * cfg.batch_size * world / (time.perf_counter() - started)
            eta = (total - step) * cfg.batch_size * world / max(rate, 1e-9)
            log.info(
                "step %d/%d loss %.4f lr %.3g | %.1f clips/s, %.0f s to go",
                step,
                total,
                losses[-1],
                scheduler.get_last_lr()[0],
                rate,
                eta,
            )
        if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < total:
            last_ckpt = checkpoint_now()
    if pool is not None:
        pool.shutdown()
    if last_ckpt is None or not last_ckpt.name.endswith(f"{step:07d}.pt"):
        last_ckpt = checkpoint_now()
    result: dict[str, Any] = {
        "losses": losses,
        "step": step,
        "checkpoint": str(last_ckpt),
        "out": str(out),
        "seconds": time.perf_counter() - started,
    }
    clips = (step - first_step) * cfg.batch_size * world
    log.info(
        "trained %d steps (%d clips) in %.1f s: %.1f clips/s; %d clips failed to decode",
        step - first_step,
        clips,
        result["seconds"],
        clips / max(result["seconds"], 1e-9),
        len(getattr(data, "failures", {})),
    )
    if initial is not None and rank == 0:  # the official zero-shot scripts' 50/50 average
        from internvid.models.wise_ft import wise_ft

        averaged = wise_ft(model.state_dict(), initial, cfg.wise_ft)
        result["wise_ft"] = str(save_checkpoint(out / "wise_ft.pth", {"model": averaged}))
        log.info("WiSE-FT weights (alpha %.2f of the initial ones): %s", cfg.wise_ft, out)
    if cfg.data == "shapes" and cfg.eval_sets > 0 and rank == 0:
        result["heldout"] = evaluate_shapes(model, cfg.frames, cfg.image_size, sets=cfg.eval_sets)
        log.info("held-out shapes: %s", json.dumps(result["heldout"]))
        (out / "heldout.json").write_text(json.dumps(result["heldout"], indent=2) + "\n")
    if owns_group:
        dist.barrier()
        dist.destroy_process_group()
    return result
