"""Tiny random-weight captioning models built offline, saved and reloaded like hub models."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from internvid.tiny import FFN, HEADS, HIDDEN, IMAGE_SIZE, LAYERS, MARKER, PATCH

logger = logging.getLogger(__name__)

# The tiny models this module can build, by short name.
TINY_MODELS = ("blip", "blip2", "t5", "chat", "qwen_vl")


# Learned query tokens of the tiny BLIP-2 Q-Former (also the number of <image> tokens per prompt).
_QUERY_TOKENS = 4
# Longest sequence the tiny text models accept (position embeddings).
_MAX_POSITIONS = 128
# Std of the random weights: 10x the usual 0.02 (and BLIP's 1e-10 for vision towers), so that
# random captions depend on the image and the prompt instead of being one constant string.
_INIT_STD = 0.2
# Merges the byte-level BPE trainer may learn on top of the 256 byte symbols.
_BPE_MERGES = 256

# BERT-style special tokens of the BLIP tokenizer, in id order from 0.
_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The BLIP decoder's start token (BLIP's "[DEC]"), used as its bos token.
_BLIP_BOS = "[DEC]"
# OPT's special tokens, with the ids real OPT checkpoints use (0..3).
_OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
# The placeholder BLIP-2 prompts carry once per query token, where the image embeddings go.
_IMAGE_TOKEN = "<image>"
# Sentinel tokens of the tiny T5 vocabulary (real T5 has 100).
_T5_EXTRA_IDS = 8
# ChatML special tokens of the chat model: end of text (also padding), turn start, turn end (eos).
_CHAT_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# A ChatML chat template: one "<|im_start|>role\ncontent<|im_end|>\n" block per message.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Qwen2-VL's vision markers: image/video start and end, and the placeholder the processor repeats
# once per merged patch of an image (or a video).
_VISION_SPECIALS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
# Qwen2-VL / Qwen2.5-VL's own chat template: ChatML, a default system message, and each image
# part of a message as <|vision_start|><|image_pad|><|vision_end|> (each video part likewise).
_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Side of a tiny Qwen-VL vision patch, and how many patches a side its merger fuses into one token.
_VL_PATCH = PATCH
_VL_MERGE = 2
# One image token covers (patch * merge)^2 pixels: the image processor resizes every image to
# between 1 and 3 x 3 such tokens (a 384-px frame: 9 tokens, 36 patches).
_VL_TOKEN_PIXELS = (_VL_PATCH * _VL_MERGE) ** 2
_VL_MIN_PIXELS = _VL_TOKEN_PIXELS
_VL_MAX_PIXELS = 9 * _VL_TOKEN_PIXELS
# Window of the vision tower's windowed attention, in pixels (2 x 2 tokens); its last layer
# attends over the whole image, as Qwen2.5-VL's full-attention blocks do.
_VL_WINDOW = 2 * _VL_PATCH * _VL_MERGE
# Longest sequence of the tiny Qwen-VL: eight frames of 9 tokens and a prompt fit many times over.
_VL_MAX_POSITIONS = 1024

# Common English words (captions, summaries, chat) every tiny vocabulary holds whole.
_WORD_TEXT = """
a an the this that these those there here it its he she they them his her their we you i
is are was were be been being has have had do does did can could will would should may might
and or but not no yes so if then than as of in on at by for with from to into onto over under
up down out off about above below behind between near next along across through around inside
outside front back top bottom left right side middle center one two three four five six seven
eight nine ten many some several few all each other another more most very just only also too
man woman men women person people boy girl child children baby kid kids guy lady player crowd
team family friend friends group couple dog dogs cat cats horse horses bird birds cow sheep fish
animal animals car cars truck bus train bike bicycle motorcycle boat plane road street city
building house room kitchen table chair bed couch window door wall floor field grass tree trees
flower flowers water river lake sea ocean beach sand snow sky sun cloud clouds mountain hill
park forest garden food plate cup bowl pizza cake ball game sport video picture image photo
frame scene shot view screen camera phone computer book paper sign light lights fire smoke hand
hands face head hair eyes shirt hat dress white black red blue green yellow orange brown gray
pink purple dark bright big small large little long short old new young tall open close closed
empty full good great nice beautiful happy sad fast slow hot cold day night morning evening
time year moment stands stand standing sits sit sitting walks walk walking runs run running
rides ride riding plays play playing holds hold holding looks look looking talks talk talking
eats eat eating drinks drink drinking wears wear wearing goes go going comes come coming jumps
jump jumping swims swimming flies flying drives driving dances dancing sings singing cooking
reading writing working smiling laughing watching showing shows show made make makes using
use uses summarize summary caption describe description question answer user assistant system
please thank hello what who where when why how which clip text word words say said
"""
# The same words as a tuple, in order.
_WORDS = tuple(_WORD_TEXT.split())

# A small fixed corpus the byte-level BPE tokenizers are trained on (with the word list).
_CORPUS = (
    "a man rides a horse in a field.",
    "a woman is sitting on a couch and reading a book.",
    "two dogs are running on the beach near the water.",
    "a group of people standing in front of a building.",
    "a red car is driving down the street at night.",
    "a little girl is playing with a ball in the park.",
    "a cat sitting on a table next to a window.",
    "a plate of food with a cup of coffee on the table.",
    "a person holding a phone and looking at the screen.",
    "the sun sets over the mountains and the sea.",
    "summarize: a man rides a horse. a man on a horse in a field.",
    "describe the video in one short sentence.",
    "<|im_start|>user\nwhat is in the picture?<|im_end|>\n<|im_start|>assistant\n",
    "Hello! How can I help you today? Thank you, please describe the scene.",
    "The quick brown fox jumps over the lazy dog. 0123456789",
)


def build_tiny_models(
    root: str | Path, names: Iterable[str] = TINY_MODELS, seed: int = 0
) -> dict[str, Path]:
    """Build tiny random-weight models under root/<name> (skips any whose folder is already complete); return name -> folder."""
    root = Path(root)
    names = list(names)
    unknown = sorted(set(names) - set(TINY_MODELS))
    if unknown:
        raise ValueError(f"unknown tiny model(s) {unknown}; choose from {TINY_MODELS}")
    root.mkdir(parents=True, exist_ok=True)
    folders: dict[str, Path] = {}
    for name in names:
        dest = root / name
        folders[name] = dest
        if _is_complete(dest):
            logger.debug("tiny model %r already built at %s", name, dest)
            continue
        _build_one(name, dest, seed)
    return folders


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bar while saving, then restore the setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _build_one(name: str, dest: Path, seed: int) -> None:
    """Build one model into a private temporary folder, then move it onto `dest`."""
    import torch  # lazy: the pipeline imports this module without needing torch

    start = time.perf_counter()
    tmp = dest.parent / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        torch.manual_seed(seed)
        with _quiet_progress_bars():
            _BUILDERS[name](tmp)
        marker = {"tiny": True, "name": name, "seed": seed}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if dest.exists() and not _is_complete(dest):
            shutil.rmtree(dest)  # an incomplete folder, e.g. a copy that was cut short
        try:
            os.replace(tmp, dest)
        except OSError:
            if not _is_complete(dest):
                raise
            logger.debug("tiny model %r was built concurrently; keeping %s", name, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built tiny model %r in %.2f s at %s", name, time.perf_counter() - start, dest)


# ------------------------------------------------------------------------------------ tokenizers


def _ascii_chars() -> list[str]:
    """Printable ASCII characters other than whitespace, in code-point order."""
    return [chr(c) for c in range(33, 127)]


def _bert_tokenizer() -> Any:
    """A lower-casing WordPiece tokenizer: specials, whole words, single characters, then [DEC]."""
    from transformers import BertTokenizer

    tokens = list(_BERT_SPECIALS)
    tokens += _unique(_WORDS)
    tokens += _ascii_chars()
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens.append(_BLIP_BOS)
    vocab = {token: i for i, token in enumerate(_unique(tokens))}
    return BertTokenizer(
        vocab=vocab, do_lower_case=True, bos_token=_BLIP_BOS, model_max_length=_MAX_POSITIONS
    )


def _train_bpe(specials: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE on the built-in corpus; specials take the first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(specials) + len(alphabet) + _BPE_MERGES,
        special_tokens=list(specials),
        initial_alphabet=alphabet,
        min_frequency=2,
        show_progress=False,
    )
    corpus = [*_CORPUS, " ".join(_WORDS), *(f" {w}" for w in _WORDS)]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def _opt_tokenizer() -> Any:
    """An OPT-style byte-level BPE tokenizer (bos prepended) with an added <image> token."""
    from tokenizers import AddedToken
    from transformers import GPT2Tokenizer

    vocab, merges = _train_bpe(_OPT_SPECIALS)
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        add_bos_token=True,
        model_max_length=_MAX_POSITIONS,
    )
    tokenizer.add_tokens([AddedToken(_IMAGE_TOKEN, normalized=False, special=True)])
    return tokenizer


def _t5_tokenizer() -> Any:
    """A T5 Unigram tokenizer: whole words preferred, single characters as fallback."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -6.0)]
    pieces += [(f"▁{w}", -5.0) for w in _unique(_WORDS)]
    pieces += [(c, -8.0) for c in _ascii_chars()]
    pieces += [(f"▁{c}", -7.0) for c in _ascii_chars() if f"▁{c}" not in dict(pieces)]
    pieces += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(_T5_EXTRA_IDS))]
    return T5Tokenizer(vocab=pieces, extra_ids=_T5_EXTRA_IDS, model_max_length=_MAX_POSITIONS)


def _chat_tokenizer(
    extra: tuple[str, ...] = (),
    chat_template: str = _CHAT_TEMPLATE,
    max_length: int = _MAX_POSITIONS,
) -> Any:
    """A Qwen2-style byte-level BPE tokenizer with ChatML markers (then the `extra` special
    tokens) and a chat template."""
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe(_CHAT_SPECIALS + extra)
    endoftext, im_start, im_end = _CHAT_SPECIALS
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=im_end,
        pad_token=endoftext,
        extra_special_tokens=[im_start, *extra],
        padding_side="left",
        model_max_length=max_length,
        chat_template=chat_template,
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------- models


def _image_processor() -> Any:
    from transformers import BlipImageProcessorPil  # the PIL backend: no torchvision needed

    return BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


def _vision_kwargs() -> dict[str, Any]:
    return {
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH,
        "initializer_range": _INIT_STD,
    }


def _greedy(**kwargs: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(do_sample=False, num_beams=1, **kwargs)


def _build_blip(folder: Path) -> None:
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor

    tokenizer = _bert_tokenizer()
    config = BlipConfig(
        vision_config=_vision_kwargs(),
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "max_position_embeddings": _MAX_POSITIONS,
            "encoder_hidden_size": HIDDEN,
            "initializer_range": _INIT_STD,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        projection_dim=HIDDEN,
        image_text_hidden_size=HIDDEN,
        initializer_range=_INIT_STD,
    )
    model = BlipForConditionalGeneration(config).eval()
    model.generation_config = _greedy(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    BlipProcessor(image_processor=_image_processor(), tokenizer=tokenizer).save_pretrained(folder)


def _build_blip2(folder: Path) -> None:
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor

    tokenizer = _opt_tokenizer()
    image_token_id = tokenizer.convert_tokens_to_ids(_IMAGE_TOKEN)
    config = Blip2Config(
        vision_config=_vision_kwargs(),
        qformer_config={
            "hidden_size": HIDDEN,
            "intermediate_size": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "cross_attention_frequency": 1,
            "encoder_hidden_size": HIDDEN,
            "max_position_embeddings": _MAX_POSITIONS,
            "initializer_range": _INIT_STD,
        },
        text_config={
            "model_type": "opt",
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "word_embed_proj_dim": HIDDEN,
            "ffn_dim": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "max_position_embeddings": _MAX_POSITIONS,
            "init_std": _INIT_STD,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        num_query_tokens=_QUERY_TOKENS,
        image_text_hidden_size=HIDDEN,
        image_token_index=image_token_id,
        initializer_range=_INIT_STD,
    )
    model = Blip2ForConditionalGeneration(config).eval()
    model.generation_config = _greedy(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    processor = Blip2Processor(
        image_processor=_image_processor(), tokenizer=tokenizer, num_query_tokens=_QUERY_TOKENS
    )
    if tokenizer.convert_tokens_to_ids(_IMAGE_TOKEN) != image_token_id:
        raise RuntimeError("the BLIP-2 processor moved the <image> token")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _build_t5(folder: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _t5_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=HIDDEN,
        d_kv=HIDDEN // HEADS,
        d_ff=FFN,
        num_layers=LAYERS,
        num_decoder_layers=LAYERS,
        num_heads=HEADS,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        initializer_factor=_INIT_STD / 0.02,  # T5 scales its own default stds by this factor
    )
    model = T5ForConditionalGeneration(config).eval()
    model.generation_config = _greedy(
        decoder_start_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _build_chat(folder: Path) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = _chat_tokenizer()
    endoftext_id = tokenizer.convert_tokens_to_ids(_CHAT_SPECIALS[0])
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=_MAX_POSITIONS,
        tie_word_embeddings=True,
        initializer_range=_INIT_STD,
        bos_token_id=endoftext_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = _greedy(
        bos_token_id=endoftext_id,
        eos_token_id=[tokenizer.eos_token_id, endoftext_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _build_qwen_vl(folder: Path) -> None:
    """A Qwen2.5-VL chat VLM, saved as the hub's Qwen2.5-VL checkpoints are: weights, tokenizer,
    image processor (preprocessor_config.json, which the video processor also reads), the chat
    template and processor_config.json naming Qwen2_5_VLProcessor (built here from its files:
    constructing the processor needs torchvision, for its video processor)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,  # the PIL backend: no torchvision needed
    )

    tokenizer = _chat_tokenizer(_VISION_SPECIALS, _VL_CHAT_TEMPLATE, _VL_MAX_POSITIONS)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _CHAT_SPECIALS + _VISION_SPECIALS}
    endoftext_id = ids[_CHAT_SPECIALS[0]]
    vision_start, vision_end, image_pad, video_pad = _VISION_SPECIALS
    head_dim = HIDDEN // HEADS
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": HIDDEN,
            "intermediate_size": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "num_key_value_heads": HEADS,
            "max_position_embeddings": _VL_MAX_POSITIONS,
            "initializer_range": _INIT_STD,
            # M-RoPE: the rotary half of a head split over (time, height, width), as 16/24/24 of
            # Qwen2.5-VL's 64
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16],
            },
            "bos_token_id": endoftext_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": LAYERS,
            "hidden_size": HIDDEN,
            "intermediate_size": FFN,
            "num_heads": HEADS,
            "patch_size": _VL_PATCH,
            "spatial_merge_size": _VL_MERGE,
            "temporal_patch_size": 2,
            "window_size": _VL_WINDOW,
            "fullatt_block_indexes": [LAYERS - 1],
            "out_hidden_size": HIDDEN,
            "initializer_range": _INIT_STD,
        },
        image_token_id=ids[image_pad],
        video_token_id=ids[video_pad],
        vision_start_token_id=ids[vision_start],
        vision_end_token_id=ids[vision_end],
        tie_word_embeddings=True,
    )
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = _greedy(
        bos_token_id=endoftext_id,
        eos_token_id=[tokenizer.eos_token_id, endoftext_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=_VL_PATCH,
        merge_size=_VL_MERGE,
        temporal_patch_size=2,
        min_pixels=_VL_MIN_PIXELS,
        max_pixels=_VL_MAX_PIXELS,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)  # with the chat template (chat_template.jinja)
    image_processor.save_pretrained(folder)
    processor = {"processor_class": "Qwen2_5_VLProcessor"}
    text = json.dumps(processor, indent=2) + "\n"
    (folder / "processor_config.json").write_text(text, encoding="utf-8")


# How to build each tiny model into a (new) folder.
_BUILDERS: dict[str, Callable[[Path], None]] = {
    "blip": _build_blip,
    "blip2": _build_blip2,
    "t5": _build_t5,
    "chat": _build_chat,
    "qwen_vl": _build_qwen_vl,
}


def build_tiny(name: str, root: str | Path) -> Path:
    """The hub's entry (internvid.hub.TINY_MODELS): build `name` under root/<name> once."""
    return build_tiny_models(root, [name])[name]
