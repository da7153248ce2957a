"""Captioning throughput: our batched captioner against the naive loop, on the same model.

Usage: python benchmarks/bench_caption.py [--arch tiny lite] [--frames 32] [--batch 16]
                                          [--dtype fp32 bf16] [--video V]

The naive loop is what most scripts do: one processor call and one `generate` per frame, fp32.
Ours is `internvid.caption.captioner.ImageCaptioner`: `batch` frames per `generate`, the model
loaded once (load time is not counted for either). Architectures: `tiny` (the random-weight
BLIP of `--models tiny`) and `lite` (BLIP base's architecture, the lite preset's captioner:
ViT-B/16 at 384 px + a 12-layer BERT-base decoder, random weights: the hub is not reachable
here, and speed does not depend on the weights). Both decode greedily with the same token cap,
so in fp32 they must write the same captions: the script checks that. Frames: 1 fps frames at
384 px (short side) of a real video when one is there, else of a demo video.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from internvid.caption.captioner import ImageCaptioner
from internvid.hub import pick_dtype
from internvid.tiny.captioners import build_tiny_models

log = logging.getLogger("bench_caption")
ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared/data/videos/cosmos_clip_10s.mp4"


def lite_sized_blip(tiny: Path, out: Path) -> Path:
    """BLIP base's architecture with random weights, the tiny model's tokenizer and processor."""
    from transformers import AutoProcessor, BlipConfig, BlipForConditionalGeneration

    small = BlipConfig.from_pretrained(tiny)
    cfg = BlipConfig(
        vision_config={"image_size": 384, "patch_size": 16},  # BLIP base: ViT-B/16 at 384
        text_config={  # BERT-base decoder; only the vocabulary is the tiny tokenizer's
            "vocab_size": small.text_config.vocab_size,
            "bos_token_id": small.text_config.bos_token_id,
            "sep_token_id": small.text_config.sep_token_id,
            "pad_token_id": small.text_config.pad_token_id,
        },
    )
    torch.manual_seed(0)
    BlipForConditionalGeneration(cfg).save_pretrained(out)
    proc = AutoProcessor.from_pretrained(tiny)
    proc.image_processor.size = {"height": 384, "width": 384}
    proc.save_pretrained(out)
    return out


def lite_sized_chat(tiny: Path, out: Path) -> Path:
    """Qwen2.5-0.5B-Instruct's architecture (24 layers, 896 wide, GQA 14/2 heads), random
    weights, the tiny chat model's tokenizer (so the embedding is small: the real one has
    136M of its 494M parameters there)."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    small = Qwen2Config.from_pretrained(tiny)
    cfg = Qwen2Config(
        vocab_size=small.vocab_size,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        bos_token_id=small.bos_token_id,
        eos_token_id=small.eos_token_id,
        pad_token_id=small.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(out)
    return out


DEVICE = "cpu"  # set by --device


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def bench_fusion(path: Path, clips: int, batch: int, dtype: str, max_new_tokens: int) -> None:
    """Fusing `clips` clips' captions: one generate per clip (fp32) against ours, batched."""
    from internvid.caption.fusion import Fuser, FusionInput

    inputs = [
        FusionInput(
            tuple(
                f"a man in a red shirt rides a horse across field number {i} {k}" for k in range(6)
            ),
            f"a man riding a brown horse in a field {i}",
        )
        for i in range(clips)
    ]
    naive_f = Fuser(
        str(path), "chat", device=DEVICE, batch_size=1, max_new_tokens=max_new_tokens
    ).load()
    naive_f.fuse(inputs[:1])  # warm-up
    _sync()
    t0 = time.perf_counter()
    for inp in inputs:
        naive_f.fuse([inp])
    _sync()
    t_naive = time.perf_counter() - t0
    ours_f = Fuser(
        str(path),
        "chat",
        batch_size=batch,
        max_new_tokens=max_new_tokens,
        device=DEVICE,
        dtype=pick_dtype(dtype, DEVICE),
    ).load()
    ours_f.fuse(inputs[:2])  # warm-up
    _sync()
    t0 = time.perf_counter()
    ours_f.fuse(inputs)
    _sync()
    t_ours = time.perf_counter() - t0
    log.info(
        "| fusion (Qwen2.5-0.5B-sized) | %s | %.2f | %.2f | %.2f clips/s | %.2f clips/s | %.2fx | - |",
        dtype,
        t_naive,
        t_ours,
        clips / t_naive,
        clips / t_ours,
        t_naive / t_ours,
    )


def clip_frames(video: Path | None, n: int) -> list[np.ndarray]:
    """`n` frames at 1 fps, 384 px short side, cycling the video's clips' frames."""
    if video is None:  # --noise-frames: e.g. a GPU machine without PyAV or the sample videos
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (384, 683, 3), dtype=np.uint8) for _ in range(n)]
    from internvid.media.onepass import FrameNeed, OnePass

    need = FrameNeed("f", "fps", 1, short_side=384)
    r = OnePass(None, 1, 250, (need,)).run(video)
    got = [f for c in r.clips for f in c.frames["f"]]
    return [got[i % len(got)] for i in range(n)]


def naive(path: str, frames: list[np.ndarray], max_new_tokens: int) -> list[str]:
    """One processor call and one generate per frame, fp32."""
    from transformers import AutoProcessor, BlipForConditionalGeneration

    proc = AutoProcessor.from_pretrained(path)
    model = BlipForConditionalGeneration.from_pretrained(path).to(DEVICE).eval()
    with torch.no_grad():  # warm-up (CUDA kernels, allocator), as ours gets
        model.generate(**proc(images=frames[0], return_tensors="pt").to(DEVICE), max_new_tokens=2)
    _sync()
    out = []
    t0 = time.perf_counter()
    for f in frames:
        inputs = proc(images=f, return_tensors="pt").to(DEVICE)
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens)
        out.append(proc.decode(ids[0], skip_special_tokens=True).strip())
    _sync()
    return out, time.perf_counter() - t0


def ours(path: str, frames, max_new_tokens: int, batch: int, dtype: str):
    cap = ImageCaptioner(
        path,
        device=DEVICE,
        batch_size=batch,
        max_new_tokens=max_new_tokens,
        dtype=pick_dtype(dtype, DEVICE),
    ).load()
    cap.caption(frames[:2])  # warm-up (CUDA kernels, allocator)
    _sync()
    t0 = time.perf_counter()
    out = cap.caption(frames)
    _sync()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["tiny", "lite"], choices=["tiny", "lite"])
    ap.add_argument("--frames", type=int, default=32, help="frames to caption")
    ap.add_argument("--batch", type=int, default=16, help="our frames per generate()")
    ap.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--max-new-tokens", type=int, default=30)
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--fusion-clips", type=int, default=0, help="also time fusing N clips")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (naive: fp32 there too)")
    ap.add_argument("--noise-frames", action="store_true", help="random frames, no decoding")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if args.noise_frames:
            video = None
        elif video is None:
            if VIDEO.is_file():
                video = VIDEO
            else:
                from internvid.media.synth import write_demo_videos

                video = write_demo_videos(Path(tmp) / "demo")[0]
        frames = clip_frames(video, args.frames)
        built = build_tiny_models(Path(tmp) / "tiny", ["blip", "chat"])
        tiny = built["blip"]
        log.info(
            "%d frames of %s (%dx%d), torch %s, %d threads",
            len(frames),
            video.name if video else "random noise",
            frames[0].shape[1],
            frames[0].shape[0],
            torch.__version__,
            torch.get_num_threads(),
        )
        log.info(
            "| arch | dtype | naive s | ours s | naive frames/s | ours frames/s | speed-up | same captions |"
        )
        log.info("|---|---|---:|---:|---:|---:|---:|---|")
        for arch in args.arch:
            path = tiny if arch == "tiny" else lite_sized_blip(tiny, Path(tmp) / "lite")
            ref, t_naive = naive(str(path), frames, args.max_new_tokens)
            for dtype in args.dtype:
                got, t_ours = ours(str(path), frames, args.max_new_tokens, args.batch, dtype)
                n = len(frames)
                log.info(
                    "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2fx | %s |",
                    arch,
                    dtype,
                    t_naive,
                    t_ours,
                    n / t_naive,
                    n / t_ours,
                    t_naive / t_ours,
                    "yes"
                    if got == ref
                    else f"{sum(a == b for a, b in zip(got, ref, strict=True))}/{n}",
                )

        if args.fusion_clips:
            chat = lite_sized_chat(built["chat"], Path(tmp) / "lite_chat")
            for dtype in args.dtype:
                bench_fusion(chat, args.fusion_clips, args.batch, dtype, 48)


if __name__ == "__main__":
    main()
