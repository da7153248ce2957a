"""ViCLIP video tower speed: ours (SDPA, batch-first) vs the official nn.MultiheadAttention way.

Usage:
    PYTHONPATH=src python benchmarks/bench_viclip.py --batch 4 --repeat 3 --threads 2
    PYTHONPATH=src python benchmarks/bench_viclip.py --device cuda --dtype bf16 --batch 32

Both towers are ViCLIP-B/16's video tower at its real size (768 wide, 12 layers, 12 heads, patch
16, 8 frames of 224 x 224, 1,569 tokens) with the SAME random weights: ours is
`internvid.models.ViCLIP.encode_video`; the reference follows the official code (sequence-first
tokens, `nn.MultiheadAttention` blocks, Conv3d, the '(b t) n m -> (b n) t m' temporal step) and
loads our tower's state dict strictly, which also checks the parameter names. Both run under
`torch.inference_mode()` on the same inputs, taking turns; the best of `--repeat` timed runs after
one warm-up is reported with the max abs / relative difference of the (B, 512) outputs (fp32 must
agree to 1e-5). The last log line is a markdown table row for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from internvid.models import ViCLIP, ViCLIPConfig

log = logging.getLogger("bench_viclip")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ReferenceBlock(nn.Module):
    """Pre-LN CLIP block around nn.MultiheadAttention on (L, B, W) tokens, like the official."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width),
                gelu=_QuickGELU(),
                c_proj=nn.Linear(4 * width, width),
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]  # (L, B, W)
        return x + self.mlp(self.ln_2(x))


class _ReferenceTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ReferenceBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class ReferenceVisionTower(nn.Module):
    """The official video tower's computation, written plainly; same parameter names as ours."""

    def __init__(self, cfg: ViCLIPConfig) -> None:
        super().__init__()
        w, p = cfg.vision_width, cfg.patch_size
        self.conv1 = nn.Conv3d(3, w, (1, p, p), (1, p, p), bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.num_patches + 1, w))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = _ReferenceTransformer(w, cfg.vision_layers, cfg.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, cfg.embed_dim))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        x = self.conv1(video.permute(0, 2, 1, 3, 4))  # (B, W, T, h, w)
        width = x.shape[1]
        x = x.permute(0, 2, 3, 4, 1).reshape(b * t, -1, width)  # (B*T, N, W)
        cls = self.class_embedding + torch.zeros(b * t, 1, width, dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding  # (B*T, N+1, W)
        cls_tokens = x.view(b, t, -1, width)[:, 0, :1]  # (B, 1, W)
        n = x.shape[1] - 1
        x = x[:, 1:].reshape(b, t, n, width).permute(0, 2, 1, 3).reshape(b * n, t, width)
        x = x + self.temporal_positional_embedding  # (B*N, T, W)
        x = x.reshape(b, n * t, width)  # (B, N*T, W)
        x = self.ln_pre(torch.cat([cls_tokens, x], dim=1))  # (B, 1+N*T, W)
        x = self.transformer(x.permute(1, 0, 2))  # (1+N*T, B, W)
        return self.ln_post(x[0]) @ self.proj  # (B, D)


def build_pair(cfg: ViCLIPConfig, device: str, dtype: torch.dtype) -> tuple[ViCLIP, nn.Module]:
    """Our ViCLIP (random weights) and a reference tower holding a copy of its video tower."""
    torch.manual_seed(0)
    ours = ViCLIP(cfg).eval()
    with torch.no_grad():  # non-trivial temporal positions and biases, so they are checked too
        ours.vision_encoder.temporal_positional_embedding.normal_(std=0.02)
        for block in ours.vision_encoder.transformer.resblocks:
            block.attn.in_proj_bias.normal_(std=0.02)
    ref = ReferenceVisionTower(cfg).eval()
    ref.load_state_dict(ours.vision_encoder.state_dict(), strict=True)
    return ours.to(device=device, dtype=dtype), ref.to(device=device, dtype=dtype)


def best_times(
    fns: dict[str, Callable[[], torch.Tensor]], repeat: int, device: str
) -> dict[str, tuple[float, torch.Tensor]]:
    """Best wall time of `repeat` calls of each function after one warm-up each, and its last
    output; the functions take turns so that load from other jobs hits both alike."""
    outputs = {name: fn() for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs[name] = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], outputs[name]) for name in fns}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="clips per call")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--size", choices=["b16", "l14"], default="b16")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    cfg = ViCLIPConfig.b16() if args.size == "b16" else ViCLIPConfig.l14()
    ours, ref = build_pair(cfg, args.device, dtype)
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    video = torch.randn(shape, generator=gen).to(device=args.device, dtype=dtype)
    with torch.inference_mode():
        timed = best_times(
            {"reference": lambda: ref(video), "ours": lambda: ours.encode_video(video)},
            args.repeat,
            args.device,
        )
    (t_ref, y_ref), (t_ours, y_ours) = timed["reference"], timed["ours"]
    diff = (y_ours.float() - y_ref.float()).abs().max().item()
    rel = diff / y_ref.float().abs().max().item()
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    )
    log.info(
        "device: %s (%s), torch %s", args.device, device or platform.machine(), torch.__version__
    )
    log.info("input %s %s, %d threads", tuple(shape), args.dtype, torch.get_num_threads())
    log.info("reference (nn.MultiheadAttention): best of %d: %.3f s", args.repeat, t_ref)
    log.info("ours (SDPA):                       best of %d: %.3f s", args.repeat, t_ours)
    log.info(
        "speed-up %.2fx; max abs diff %.2e, relative to max |output| %.2e",
        t_ref / t_ours,
        diff,
        rel,
    )
    if dtype == torch.float32 and rel > 1e-5:
        log.warning("fp32 outputs differ by more than 1e-5 (relative)")
    log.info(
        "| `bench_viclip.py --size %s --batch %d --device %s --dtype %s --threads %d` | "
        "%s video tower, %dx%dx%d px | %.3f | %.3f | %.2fx | %.1e |",
        args.size,
        args.batch,
        args.device,
        args.dtype,
        args.threads,
        cfg.name,
        args.batch,
        cfg.num_frames,
        cfg.image_size,
        t_ours,
        t_ref,
        t_ref / t_ours,
        diff,
    )
    return {"ours_s": t_ours, "reference_s": t_ref, "max_abs_diff": diff, "max_rel_diff": rel}


if __name__ == "__main__":
    main()
