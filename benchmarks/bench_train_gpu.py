"""ViCLIP training step on a GPU: B/16 clips/s and peak memory, fp32 vs bf16 + checkpointing.

Random 8 x 224 x 224 clips and captions on the device (the model step alone, no decoding), the
real training pieces (masking, frozen text tower, clip_loss, AdamW groups). Baseline: fp32
without gradient checkpointing, in the same process. Usage: python benchmarks/bench_train_gpu.py
"""

from __future__ import annotations

import argparse
import time

import torch

from internvid.models.tokenizer import tokenize
from internvid.models.viclip import ViCLIP, ViCLIPConfig
from internvid.train import clip_loss, param_groups


def step_rate(
    batch: int, mask: float, bf16: bool, ckpt: bool, steps: int = 8
) -> tuple[float, float]:
    """(clips per second, peak GiB) of `steps` timed training steps after 3 warm-up ones."""
    torch.manual_seed(0)
    model = ViCLIP(ViCLIPConfig.b16(mask_ratio=mask, grad_checkpointing=ckpt)).cuda()
    model.freeze_text()
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 0.2), lr=1e-5, betas=(0.9, 0.98), eps=1e-6)
    video = torch.randn(batch, 8, 3, 224, 224, device="cuda")
    ids = tokenize([f"a caption number {i}" for i in range(batch)]).cuda()
    torch.cuda.reset_peak_memory_stats()
    for i in range(3 + steps):
        if i == 3:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            v = model.encode_video(video, normalize=True)
            with torch.no_grad():
                t = model.encode_text(ids, normalize=True)
            loss = clip_loss(v.float(), t.float(), model.logit_scale.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    rate = batch * steps / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30
    del model, opt
    torch.cuda.empty_cache()
    return rate, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    print("| B/16, batch", args.batch, "| mask | clips/s | peak GiB | vs fp32 |")
    print("|---|---|---|---|---|")
    for mask in (0.9, 0.0):
        base, base_mem = step_rate(args.batch, mask, bf16=False, ckpt=False)
        print(f"| fp32 | {mask} | {base:.0f} | {base_mem:.1f} | 1.00x |", flush=True)
        for bf16, ckpt, name in ((True, False, "bf16"), (True, True, "bf16 + checkpointing")):
            rate, mem = step_rate(args.batch, mask, bf16, ckpt)
            print(f"| {name} | {mask} | {rate:.0f} | {mem:.1f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
