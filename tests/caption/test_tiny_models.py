"""The tiny offline models: built once, idempotent, deterministic, loadable and able to generate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from internvid.tiny.captioners import MARKER, TINY_MODELS, build_tiny_models

transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

# New tokens per generate call in these tests.
MAX_NEW = 6
# Prompts for the text models, of different lengths so that the batch needs padding.
SUMMARIZE = [
    "summarize: a man rides a horse. a man on a horse in a field.",
    "summarize: a cat.",
]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_models")
    build_tiny_models(root)
    return root


def _images(kind: str) -> list:
    """Two RGB uint8 images of different sizes and content."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        np.full((20, 30, 3), 200, dtype=np.uint8),
    ]
    return arrays if kind == "numpy" else [Image.fromarray(a) for a in arrays]


def _twice(generate) -> list[str]:
    first, second = generate(), generate()
    assert first == second, "greedy generation is not deterministic"
    return first


def _check_texts(texts: list[str], count: int = 2) -> None:
    assert len(texts) == count
    assert all(isinstance(t, str) for t in texts)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != MARKER}


def test_build_layout(tiny_root: Path):
    folders = build_tiny_models(tiny_root)
    assert set(folders) == set(TINY_MODELS)
    for name, folder in folders.items():
        assert folder == tiny_root / name
        marker = json.loads((folder / MARKER).read_text())
        assert marker == {"tiny": True, "name": name, "seed": 0}
        assert (folder / "model.safetensors").is_file()
        assert (folder / "tokenizer.json").is_file()
        size = sum(p.stat().st_size for p in folder.iterdir())
        assert size < 5_000_000, f"{name} is {size} bytes"
    assert not [p for p in tiny_root.iterdir() if p.name.startswith(".")], "tmp folder left"


def test_second_call_does_not_rebuild(tiny_root: Path):
    stamps = {p: p.stat().st_mtime_ns for name in TINY_MODELS for p in (tiny_root / name).iterdir()}
    build_tiny_models(tiny_root)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_incomplete_folder_is_rebuilt(tmp_path: Path):
    partial = tmp_path / "t5"
    partial.mkdir()
    (partial / "config.json").write_text("{}")  # an interrupted copy: no marker
    folders = build_tiny_models(tmp_path, names=["t5"])
    assert folders == {"t5": partial}
    assert (partial / MARKER).is_file()
    assert json.loads((partial / "config.json").read_text())["model_type"] == "t5"


def test_unknown_name_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown tiny model"):
        build_tiny_models(tmp_path, names=["gpt5"])


def test_same_seed_same_bytes(tiny_root: Path, tmp_path: Path):
    again = build_tiny_models(tmp_path / "again", seed=0)
    for name in TINY_MODELS:
        assert _files(again[name]) == _files(tiny_root / name), name
    other = build_tiny_models(tmp_path / "other", names=["chat"], seed=1)
    chat_bytes = (tiny_root / "chat" / "model.safetensors").read_bytes()
    assert (other["chat"] / "model.safetensors").read_bytes() != chat_bytes


@pytest.mark.parametrize("kind", ["numpy", "pil"])
def test_blip_captions(tiny_root: Path, kind: str):
    folder = tiny_root / "blip"
    processor = transformers.AutoProcessor.from_pretrained(folder)
    model = transformers.BlipForConditionalGeneration.from_pretrained(folder)
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    images = _images(kind)

    def caption(**extra) -> list[str]:
        inputs = processor(images=images, return_tensors="pt", **extra)
        out = model.generate(**inputs, max_new_tokens=MAX_NEW)
        return processor.batch_decode(out, skip_special_tokens=True)

    _check_texts(_twice(caption))
    prompted = _twice(lambda: caption(text=["a picture of"] * 2))
    _check_texts(prompted)
    assert all(t.startswith("a picture of") for t in prompted)


@pytest.mark.parametrize("kind", ["numpy", "pil"])
def test_blip2_captions(tiny_root: Path, kind: str):
    folder = tiny_root / "blip2"
    processor = transformers.AutoProcessor.from_pretrained(folder)
    model = transformers.Blip2ForConditionalGeneration.from_pretrained(folder)
    tokenizer = processor.tokenizer
    assert model.config.text_config.vocab_size == len(tokenizer)
    assert processor.num_query_tokens == model.config.num_query_tokens
    assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    images = _images(kind)

    def caption(**extra) -> list[str]:
        inputs = processor(images=images, return_tensors="pt", **extra)
        out = model.generate(**inputs, max_new_tokens=MAX_NEW)
        return processor.batch_decode(out, skip_special_tokens=True)

    _check_texts(_twice(caption))
    inputs = processor(images=images, text=["a picture of"] * 2, return_tensors="pt")
    image_tokens = (inputs["input_ids"] == model.config.image_token_id).sum(dim=1)
    assert image_tokens.tolist() == [model.config.num_query_tokens] * 2
    prompted = _twice(lambda: caption(text=["a picture of"] * 2))
    _check_texts(prompted)
    assert all(t.startswith("a picture of") for t in prompted)


def test_t5_summarizes(tiny_root: Path):
    folder = tiny_root / "t5"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1)
    assert tokenizer.unk_token is not None
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id
    assert model.config.vocab_size == len(tokenizer)
    inputs = tokenizer(SUMMARIZE, return_tensors="pt", padding=True)
    assert (inputs["attention_mask"] == 0).any(), "the batch should need padding"

    def summarize() -> list[str]:
        out = model.generate(**inputs, max_new_tokens=MAX_NEW)
        return tokenizer.batch_decode(out, skip_special_tokens=True)

    _check_texts(_twice(summarize))


def test_chat_generates(tiny_root: Path):
    folder = tiny_root / "chat"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    assert tokenizer.padding_side == "left"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token is not None
    assert model.config.vocab_size == len(tokenizer)
    assert model.generation_config.do_sample is False
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(prompt)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        for text in SUMMARIZE
    ]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    assert (inputs["attention_mask"][:, 0] == 0).any(), "the batch should be left-padded"
    width = inputs["input_ids"].shape[1]

    def reply() -> list[str]:
        out = model.generate(**inputs, max_new_tokens=MAX_NEW)
        return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)

    _check_texts(_twice(reply))
