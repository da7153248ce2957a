"""Video-VLM captioning on a GPU: hf generate vs vLLM on the same model and frames, and the vlm / internvid-vl presets end to end.

Usage: python benchmarks/bench_caption_gpu.py [--arch 7b|tiny] [--clips 32] [--frames 8]
       [--batch 8] [--tokens 32] [--videos DIR] [--out results.json]

The hub is out of reach here, so the model is Qwen2.5-VL-7B-Instruct's architecture (its
config's sizes: 28 layers of width 3584, a 32-block ViT of width 1280, patch 14, merge 2) with
random bf16 weights and the tiny tokenizer of `tiny:qwen_vl` (so the vocabulary is that
tokenizer's, not 152K: the LM head is ~7 % of the real model's FLOPs). Speed does not depend
on the weights: every request is made to generate exactly `--tokens` tokens (min_new_tokens),
as a caption of that length would. `--arch tiny` runs the same steps on the tiny model and
`--arch small` on the 7B's layout at a small size (CPU smoke tests of this script).

1. hf: `VLMCaptioner` (caption/vlm.py) over `--clips` clips of `--frames` frames each
   (384 x 683 frames, as the split serves them at caption.frame_size 384), `--batch` clips
   per generate() call; then single frames (the fine scale), 32 a call.
2. vllm: the same requests through `VLLMCaptioner` where vLLM is installed (else reported).
3. End to end: `internvid run VIDEOS --models vlm --coarse-model FOLDER` and `--models
   internvid-vl` (fine and fusion by the same folder), cut mode none, no scores: clips/s from
   stats.json's caption stages and the wall time.

Each step's numbers go to `--out` as soon as it finishes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_caption_gpu")

# Qwen2.5-VL-7B-Instruct's config.json sizes (the hub's), with the tiny tokenizer's ids
QWEN25_VL_7B = {
    "text": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": [16, 24, 24],
        },
    ),
    "vision": dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
        out_hidden_size=3584,
    ),
}


# the same layout at a CPU-friendly size (--arch small: checks build_7b and the real processor
# settings without 15 GB of weights)
SMALL = {
    "text": {**QWEN25_VL_7B["text"], "hidden_size": 256, "intermediate_size": 512,
             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1},
    "vision": {**QWEN25_VL_7B["vision"], "depth": 4, "hidden_size": 64, "intermediate_size": 128,
               "num_heads": 2, "fullatt_block_indexes": [3], "out_hidden_size": 256},
}  # fmt: skip


def build_7b(tiny_folder: Path, dest: Path, sizes: dict = QWEN25_VL_7B) -> None:
    """Random-weight Qwen2.5-VL-7B into `dest`, with tiny_folder's tokenizer and chat template
    and the real image processor settings (patch 14, merge 2, the hub's pixel bounds)."""
    import torch
    from transformers import AutoConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tiny = AutoConfig.from_pretrained(tiny_folder)
    tt = tiny.text_config
    config = Qwen2_5_VLConfig(
        text_config={
            **sizes["text"],
            "vocab_size": tt.vocab_size,
            "bos_token_id": tt.bos_token_id,
            "eos_token_id": tt.eos_token_id,
            "pad_token_id": tt.pad_token_id,
        },
        vision_config=sizes["vision"],
        image_token_id=tiny.image_token_id,
        video_token_id=tiny.video_token_id,
        vision_start_token_id=tiny.vision_start_token_id,
        vision_end_token_id=tiny.vision_end_token_id,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    torch.set_default_dtype(torch.float32)
    log.info("built %.2fB parameters", sum(p.numel() for p in model.parameters()) / 1e9)
    model.generation_config = model.generation_config.from_pretrained(tiny_folder)
    model.save_pretrained(dest)
    del model
    for name in os.listdir(tiny_folder):
        if not (name.endswith(".safetensors") or name in ("config.json", "generation_config.json")):
            shutil.copy(tiny_folder / name, dest / name)
    pre = json.loads((dest / "preprocessor_config.json").read_text())
    pre.update(patch_size=14, merge_size=2, temporal_patch_size=2)
    pre.update(min_pixels=3136, max_pixels=12845056)
    pre.setdefault("size", {}).update(shortest_edge=3136, longest_edge=12845056)
    (dest / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    tok = json.loads((dest / "tokenizer_config.json").read_text())
    tok["model_max_length"] = 32768
    (dest / "tokenizer_config.json").write_text(json.dumps(tok, indent=2))


def frames(n: int, h: int = 384, w: int = 683, seed: int = 0) -> list[np.ndarray]:
    """Smooth random frames (JPEG-friendly, like video)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        out.append(np.repeat(np.repeat(base, 16, 0), 16, 1)[:h, :w].copy())
    return out


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_hf(folder: str, clips: int, n_frames: int, batch: int, tokens: int) -> dict:
    import torch

    from internvid.caption.prompts import FRAME_PROMPT, coarse_prompt
    from internvid.caption.vlm import VLMCaptioner

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    cap = VLMCaptioner(folder, device=dev, dtype=dtype, batch_size=batch, max_new_tokens=tokens)
    t0 = time.perf_counter()
    cap.load()
    load_s = time.perf_counter() - t0
    cap.model.generation_config.min_new_tokens = tokens  # exactly `tokens` per caption
    f = frames(n_frames * clips)
    reqs = [(f[i * n_frames : (i + 1) * n_frames], coarse_prompt(n_frames)) for i in range(clips)]
    cap.generate(reqs[:batch])  # warm-up
    sync()
    t0 = time.perf_counter()
    out = cap.generate(reqs)
    sync()
    clip_s = time.perf_counter() - t0
    singles = [([x], FRAME_PROMPT) for x in f[: 4 * 32]]
    cap.batch_size = 32
    cap.generate(singles[:32])
    sync()
    t0 = time.perf_counter()
    cap.generate(singles)
    sync()
    frame_s = time.perf_counter() - t0
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else 0.0
    return {
        "load_s": round(load_s, 1),
        "clips": clips,
        "frames_per_clip": n_frames,
        "batch": batch,
        "tokens": tokens,
        "clip_seconds": round(clip_s, 2),
        "clips_per_s": round(clips / clip_s, 3),
        "frame_requests": len(singles),
        "frames_per_s": round(len(singles) / frame_s, 2),
        "peak_gpu_gib": round(mem, 1),
        "sample_caption_chars": len(out[0]),
    }


def bench_vllm(folder: str, clips: int, n_frames: int, tokens: int) -> dict:
    from internvid.caption.vllm_engine import vllm_available

    if not vllm_available():
        return {"skipped": "vLLM is not installed on this machine (it has no network to get it)"}
    from internvid.caption.backend import Request
    from internvid.caption.prompts import coarse_prompt
    from internvid.caption.vllm_engine import VLLMCaptioner

    eng = VLLMCaptioner(folder, max_new_tokens=tokens, gpu_memory_utilization=0.8).load()
    f = frames(n_frames * clips)
    reqs = [
        Request(tuple(f[i * n_frames : (i + 1) * n_frames]), coarse_prompt(n_frames))
        for i in range(clips)
    ]
    eng.generate(reqs[:4])
    t0 = time.perf_counter()
    eng.generate(reqs)
    s = time.perf_counter() - t0
    return {"clips": clips, "clip_seconds": round(s, 2), "clips_per_s": round(clips / s, 3)}


def bench_run(folder: str, videos: str, preset: str, work: Path) -> dict:
    out = work / f"run-{preset}"
    args = [sys.executable, "-m", "internvid", "run", videos, "--out", str(out)]
    args += ["--models", preset, "--coarse-model", folder, "--cut-mode", "none", "--no-progress"]
    args += ["--workers", "1", "--dtype", "bf16" if _cuda() else "fp32"]
    if preset == "internvid-vl":
        args += ["--fine-model", folder, "--fusion-model", folder]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.returncode, "tail": (proc.stdout + proc.stderr)[-3000:]}
    stats = json.loads((out / "stats.json").read_text())
    stage_s = {s["name"]: round(s["seconds"], 2) for s in stats["stages"]}
    capt = sum(stage_s.get(k, 0.0) for k in ("caption_prep", "caption", "fuse"))
    clips = stats.get("clips", 0)
    return {
        "wall_s": round(wall, 1),
        "clips": clips,
        "stage_seconds": stage_s,
        "caption_clips_per_s": round(clips / capt, 3) if capt else None,
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=("7b", "small", "tiny"), default="7b")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--videos", default="", help="folder of videos for the end-to-end runs")
    ap.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default="bench_caption_gpu.json")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-caption-gpu-"))
    results: dict = {"args": vars(a)}

    def save() -> None:
        Path(a.out).write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2), flush=True)

    from internvid.tiny.captioners import build_tiny_models

    tiny = build_tiny_models(work / "tiny", ["qwen_vl"])["qwen_vl"]
    folder = tiny
    if a.arch in ("7b", "small"):
        folder = work / f"qwen2.5-vl-{a.arch}-random"
        t0 = time.perf_counter()
        build_7b(tiny, folder, QWEN25_VL_7B if a.arch == "7b" else SMALL)
        results["build_s"] = round(time.perf_counter() - t0, 1)
    steps = [
        ("hf", lambda: bench_hf(str(folder), a.clips, a.frames, a.batch, a.tokens)),
        ("vllm", lambda: bench_vllm(str(folder), a.clips, a.frames, a.tokens)),
    ]
    if a.videos:
        for preset in ("vlm", "internvid-vl"):
            steps.append(
                (f"run_{preset}", lambda p=preset: bench_run(str(folder), a.videos, p, work))
            )
    for name, step in steps:
        t0 = time.perf_counter()
        try:
            results[name] = step()
        except Exception as e:  # report and go on to the next step
            log.exception("%s failed", name)
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results[name]["step_s"] = round(time.perf_counter() - t0, 1)
        save()


if __name__ == "__main__":
    main()
