"""Tiny random-weight CLIP and aesthetic heads built offline, saved and reloaded like real ones."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from internvid.tiny import FFN, HEADS, HIDDEN, IMAGE_SIZE, LAYERS, MARKER, PATCH

logger = logging.getLogger(__name__)

# What the tiny folder holds, by the name `tiny:NAME` refers to it: the CLIP (a folder for
# from_pretrained) and the two aesthetic heads (files in the official formats).
TINY_SCORER_MODELS = ("clip", "aesthetic-linear", "aesthetic-mlp")
# Where each of them lies inside the folder.
_LAYOUT = {"clip": "clip", "aesthetic-linear": "linear.pth", "aesthetic-mlp": "mlp.pth"}

# Joint embedding width: 768 like CLIP ViT-L/14, so that the official head shapes fit unchanged.
_PROJECTION_DIM = 768
# Longest token sequence of the text tower, as in real CLIP.
_MAX_POSITIONS = 77
# CLIP's start and end of text tokens (end also pads).
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
# Suffix CLIP's BPE appends to the last symbol of every word.
_END_OF_WORD = "</w>"
# Common words the tiny BPE holds whole (everything else falls back to single bytes).
_WORD_TEXT = """
a an the of in on at with and is are to from man woman dog cat car street video text slide
sunset mountain snow people playing running red blue white black
"""
# The same words as a tuple, in order.
_WORDS = tuple(_WORD_TEXT.split())
# Mean score of the tiny heads (real LAION scores of video frames sit around 4 to 6).
_HEAD_MEAN = 5.0
# Std of the random weights: larger than CLIP's default so that different images differ.
_INIT_STD = 0.2


def build_tiny_scorer_models(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Build (once) the tiny CLIP and both aesthetic heads into `folder`; return name -> path.

    Names are TINY_SCORER_MODELS: "clip" (a folder for from_pretrained), "aesthetic-linear" and
    "aesthetic-mlp" (head files in the official LAION and improved-aesthetic-predictor formats).
    A folder with its marker is reused as it is; one without (an interrupted copy) is rebuilt.
    """
    dest = Path(folder)
    paths = {name: dest / _LAYOUT[name] for name in TINY_SCORER_MODELS}
    if (dest / MARKER).is_file():
        logger.debug("tiny scorer models already built at %s", dest)
        return paths
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _build(tmp, seed)
        marker = {"tiny": True, "name": "scorers", "seed": seed}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if dest.exists() and not (dest / MARKER).is_file():
            shutil.rmtree(dest)  # an incomplete folder, e.g. a copy that was cut short
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / MARKER).is_file():
                raise
            logger.debug("tiny scorer models were built concurrently; keeping %s", dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built tiny scorer models in %.2f s at %s", time.perf_counter() - start, dest)
    return paths


def _build(folder: Path, seed: int) -> None:
    import torch  # lazy: importing this module needs no torch
    from transformers.utils import logging as hf_logging

    from internvid.scores.aesthetic import make_head_module

    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        _build_clip(folder / _LAYOUT["clip"])
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    for fmt in ("linear", "mlp"):
        head = make_head_module(fmt, _PROJECTION_DIM)
        linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        for i, layer in enumerate(linears):
            # The input embedding has norm 1, later inputs about 1 per component: this keeps
            # the random scores near _HEAD_MEAN with a spread of about 1, like real ones.
            torch.nn.init.normal_(layer.weight, std=1.0 if i == 0 else layer.in_features**-0.5)
            torch.nn.init.zeros_(layer.bias)
        torch.nn.init.constant_(linears[-1].bias, _HEAD_MEAN)
        state = {k: v.detach().clone().contiguous() for k, v in head.state_dict().items()}
        torch.save(state, folder / _LAYOUT[f"aesthetic-{fmt}"])


def _tokenizer() -> Any:
    """A CLIP byte-level BPE tokenizer: the 256 byte symbols (plain and end-of-word), a few
    whole words through merges, then the start and end tokens (the order real CLIP uses)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [c + _END_OF_WORD for c in alphabet]
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys(_WORDS):
        symbols = [*word[:-1], word[-1] + _END_OF_WORD]
        while len(symbols) > 1:  # merge left to right: ((w o) r) d</w>
            merged = symbols[0] + symbols[1]
            if merged not in tokens:
                merges.append((symbols[0], symbols[1]))
                tokens.append(merged)
            symbols = [merged, *symbols[2:]]
    tokens += [_BOS, _EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=_MAX_POSITIONS)


def _build_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    tokenizer = _tokenizer()
    common = {
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "projection_dim": _PROJECTION_DIM,
        "initializer_range": _INIT_STD,
    }
    config = CLIPConfig(
        text_config={
            **common,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": _MAX_POSITIONS,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**common, "image_size": IMAGE_SIZE, "patch_size": PATCH},
        projection_dim=_PROJECTION_DIM,
        initializer_range=_INIT_STD,
    )
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def build_tiny(name: str, root: str | Path) -> Path:
    """The hub's entry (internvid.hub.TINY_MODELS): build the scorer models under root/scorers."""
    return build_tiny_scorer_models(Path(root) / "scorers")[name]
