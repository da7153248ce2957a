"""The chat VLM captioner on the tiny Qwen2.5-VL: reload, frames in order, batching, greedy."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from internvid.caption.vlm import VLMCaptioner, load_processor, messages
from internvid.hub import resolve_models
from internvid.tiny.captioners import MARKER, build_tiny_models

transformers = pytest.importorskip("transformers")

# New tokens per request in these tests.
MAX_NEW = 6
# A 384 x 384 frame becomes 6 x 6 patches of 8 px, merged 2 x 2: 9 image tokens.
FRAME_TOKENS = 9


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the tiny Qwen2.5-VL (what `tiny:qwen_vl` builds)."""
    root = tmp_path_factory.mktemp("vlm_cache")
    build_tiny_models(root / "tiny-models", ["qwen_vl"])
    return root


@pytest.fixture(scope="module")
def folder(cache: Path) -> str:
    return str(cache / "tiny-models" / "qwen_vl")


def frames(n: int, seed: int = 0, size: int = 384) -> list[np.ndarray]:
    """n RGB uint8 frames, the later ones a little wider (other patch grids)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size + 32 * i, 3), dtype=np.uint8) for i in range(n)]


def test_tiny_qwen_vl_resolves_builds_and_reloads(cache: Path, folder: str):
    (r,) = resolve_models(["tiny:qwen_vl"], str(cache))
    assert r.how == "tiny" and r.path == folder
    assert json.loads((Path(folder) / MARKER).read_text())["name"] == "qwen_vl"
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.generation_config.do_sample is False
    processor = load_processor(folder)
    assert isinstance(processor, transformers.Qwen2_5_VLProcessor)
    tokenizer = processor.tokenizer
    assert model.config.text_config.vocab_size == len(tokenizer)
    for token in ("image", "video", "vision_start", "vision_end"):
        want = tokenizer.convert_tokens_to_ids(
            f"<|{token}{'_pad' * (token in ('image', 'video'))}|>"
        )
        assert getattr(model.config, f"{token}_token_id") == want
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    chat = processor.apply_chat_template(
        messages(1, "hi"), add_generation_prompt=True, tokenize=False
    )
    assert chat.endswith(
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(text=[chat], images=frames(1), return_tensors="pt")
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == FRAME_TOKENS
    # AutoProcessor itself needs torchvision for the Qwen video processor
    if importlib.util.find_spec("torchvision") is None:
        with pytest.raises(ImportError, match=r"(?i)torchvision"):
            transformers.AutoProcessor.from_pretrained(folder)
    else:
        auto = transformers.AutoProcessor.from_pretrained(folder)
        assert isinstance(auto, transformers.Qwen2_5_VLProcessor)


def test_messages_put_the_frames_in_order_before_the_prompt():
    chat = messages(3, "what happens?", system="be brief.")
    assert chat[0] == {"role": "system", "content": [{"type": "text", "text": "be brief."}]}
    parts = chat[1]["content"]
    assert [p.get("text") for p in parts] == [
        "Frame 1: ",
        None,
        "Frame 2: ",
        None,
        "Frame 3: ",
        None,
        "what happens?",
    ]
    assert messages(1, "x") == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}
    ]


def test_one_and_eight_frames_get_one_text_each(folder: str):
    vlm = VLMCaptioner(folder, max_new_tokens=MAX_NEW)
    texts = vlm.generate([(frames(1), "describe the picture."), (frames(8), "what happens?")])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert vlm.processor.tokenizer.padding_side == "left"


def test_batches_equal_one_request_at_a_time(folder: str):
    clip = frames(8, seed=1)
    requests = [
        (clip[:1], "describe the picture."),
        (clip, "what happens in this video clip? answer in one short sentence, please."),
        (clip[2:5], "caption"),
        (frames(2, seed=2, size=200), "two frames of a street at night."),
        (clip[3:4], "a"),
    ]
    systems = ["", "you are a careful video annotator.", "", "", ""]
    batched = VLMCaptioner(folder, batch_size=4, max_new_tokens=MAX_NEW)
    inputs = batched.load().processor(
        text=[
            batched.processor.apply_chat_template(
                messages(len(f), p), add_generation_prompt=True, tokenize=False
            )
            for f, p in requests[:4]
        ],
        images=[frame for f, _ in requests[:4] for frame in f],
        padding=True,
        return_tensors="pt",
    )
    assert (inputs["attention_mask"][:, 0] == 0).any(), "the batch should be left-padded"
    assert (inputs["attention_mask"][:, -1] == 1).all()
    together = batched.generate(requests, systems=systems)
    alone = VLMCaptioner(folder, batch_size=1, max_new_tokens=MAX_NEW)
    pairs = zip(requests, systems, strict=True)
    assert together == [alone.generate([r], systems=[s])[0] for r, s in pairs]
    assert len(set(together)) > 1, "random captions should depend on the frames and the prompt"


def test_greedy_runs_are_identical(folder: str):
    requests = [(frames(4, seed=3), "what happens?"), (frames(1, seed=4), "describe it.")]
    first = VLMCaptioner(folder, max_new_tokens=MAX_NEW).generate(requests)
    again = VLMCaptioner(folder, max_new_tokens=MAX_NEW).generate(requests)
    assert first == again


def test_caps_system_messages_and_bad_frames(folder: str, monkeypatch: pytest.MonkeyPatch):
    vlm = VLMCaptioner(folder, max_new_tokens=MAX_NEW, system="you are brief.")
    request = (frames(1, seed=5), "describe the picture.")
    model = vlm.load().model
    calls: list[dict] = []
    real_generate = model.generate

    def generate(**kw):
        calls.append(kw)
        return real_generate(**kw)

    monkeypatch.setattr(model, "generate", generate)
    vlm.generate([request], max_new_tokens=2)
    vlm.generate([request])
    assert [c["max_new_tokens"] for c in calls] == [2, MAX_NEW]
    assert all(c["do_sample"] is False and c["num_beams"] == 1 for c in calls)
    assert all(c["pixel_values"].dtype == model.dtype for c in calls)
    monkeypatch.undo()
    # a request's own system message replaces the default one
    plain = VLMCaptioner(folder, max_new_tokens=MAX_NEW)
    assert vlm.generate([request]) == plain.generate([request], systems=["you are brief."])
    with pytest.raises(ValueError, match="system messages"):
        vlm.generate([request], systems=["a", "b"])
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)):
        with pytest.raises(ValueError, match="H x W x 3 uint8"):
            vlm.generate([([bad], "x")])
