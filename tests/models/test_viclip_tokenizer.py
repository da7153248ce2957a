"""ViCLIP tokenizer: ids vs transformers' CLIP BPE on the same vocabulary; official truncation."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources

import pytest
import torch

from internvid.models.tokenizer import (
    CONTEXT_LENGTH,
    EOT_ID,
    SOT_ID,
    VOCAB_FILE,
    VOCAB_SIZE,
    ViCLIPTokenizer,
    get_tokenizer,
    tokenize,
)

VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"  # OpenAI CLIP's
LONG = (
    "A very long caption about a person walking a dog along the beach at sunset while seagulls "
    "fly overhead and waves crash on the shore, then a car drives past and the camera pans to "
    "the city skyline with tall buildings and bright lights"
)
CAPTIONS = [
    "a photo of a cat",
    "A man is riding a horse on the beach.",
    "Hello, World!!! It's 5 o'clock; we'll see...",
    "  multiple   spaces\tand\nnewlines  ",
    "don't you're we've I'm they'll he'd",
    "numbers 12345 and 3.14159",
    "@#$%^&*()_+-=[]{}|;:,.<>/?",
    "e-mail: someone@example.com https://x.org/a?b=c",
    "café crème brûlée naïve",
    "Ünïcödé ÀÉÎÕÜ",
    "東京の夜景 and 北京",
    "Привет мир",
    "Ελληνικά γράμματα",
    "नमस्ते दुनिया",
    "dog 🐶 with emoji 🎉🎉",
    LONG,
    "",
]


@pytest.fixture(scope="module")
def ours() -> ViCLIPTokenizer:
    return get_tokenizer()


@pytest.fixture(scope="module")
def hf_ids():
    """An independent CLIP BPE: transformers' CLIPTokenizer (tokenizers backend) on the same
    vocabulary file, plus the official ViCLIP truncation."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    raw = importlib.resources.files("internvid.models").joinpath(VOCAB_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    base = list(bytes_to_unicode().values())
    vocab = [*base, *(b + "</w>" for b in base), *("".join(m) for m in merges)]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    # transformers 5 takes the data itself; vocab_file= / merges_file= would be ignored
    hf = CLIPTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, merges=merges)
    sot, eot = hf.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])

    def ids(text: str, context: int = CONTEXT_LENGTH) -> list[int]:
        tokens = [sot, *hf(text, add_special_tokens=False)["input_ids"], eot]
        if len(tokens) > context:  # ViCLIP: tokenize(..., truncate=True)
            tokens = tokens[:context]
            tokens[-1] = eot
        return tokens + [0] * (context - len(tokens))

    return ids


def test_vocabulary_file_is_shipped_with_its_licence():
    files = importlib.resources.files("internvid.models")
    assert hashlib.sha256(files.joinpath(VOCAB_FILE).read_bytes()).hexdigest() == VOCAB_SHA256
    licence = files.joinpath("LICENSE-clip-bpe.txt").read_text()
    assert "Copyright (c) 2021 OpenAI" in licence and "Gabriel Ilharco" in licence
    assert "MIT License" in licence


def test_known_ids(ours: ViCLIPTokenizer):
    assert len(ours.encoder) == VOCAB_SIZE
    assert (SOT_ID, EOT_ID) == (49406, 49407)
    ids = tokenize("a photo of a cat")
    assert ids.dtype == torch.long and ids.shape == (1, 32)
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[0, 7:].eq(0).all()
    assert tokenize("")[0].tolist() == [49406, 49407] + [0] * 30


@pytest.mark.parametrize("caption", CAPTIONS, ids=[c[:20] or "empty" for c in CAPTIONS])
def test_matches_independent_bpe(ours: ViCLIPTokenizer, hf_ids, caption: str):
    assert ours.tokenize(caption)[0].tolist() == hf_ids(caption)


def test_truncation_forces_eot_last(ours: ViCLIPTokenizer):
    full = [SOT_ID, *ours.encode(LONG), EOT_ID]
    assert len(full) > 40
    row = tokenize(LONG)[0].tolist()
    assert row[31] == EOT_ID and row[:31] == full[:31]
    assert EOT_ID not in row[:31]
    exact = [SOT_ID, *ours.encode(LONG)[:30], EOT_ID]  # 32 tokens: no cut needed
    assert len(exact) == 32
    assert tokenize(ours.decode(exact))[0].tolist() == exact


def test_batch_and_context(ours: ViCLIPTokenizer, hf_ids):
    batch = tokenize(CAPTIONS)
    assert batch.shape == (len(CAPTIONS), 32)
    assert [row.argmax().item() for row in batch] == [row.index(EOT_ID) for row in batch.tolist()]
    wide = ours.tokenize(LONG, context_length=77)
    assert wide.shape == (1, 77) and wide[0].tolist() == hf_ids(LONG, 77)
    with pytest.raises(ValueError):
        ours.tokenize("x", context_length=1)


def test_cleaning_like_the_official(ours: ViCLIPTokenizer):
    # ftfy (curly quotes, full-width letters, ligatures), HTML entities twice, whitespace, case
    assert ours.encode("It\u2019s a \u201ccat\u201d") == ours.encode('it\'s a "cat"')
    assert ours.encode("\uff48\uff45\uff4c\uff4c\uff4f") == ours.encode("hello")
    assert ours.encode("\ufb01sh") == ours.encode("fish")
    assert ours.encode("rock &amp;amp; roll") == ours.encode("rock & roll")
    assert ours.encode(" A\u00a0 CAT\n") == ours.encode("a cat")


def test_decode_round_trip(ours: ViCLIPTokenizer):
    ids = tokenize("A dog, running on the beach! 東京 🎉")[0]
    assert ours.decode(ids.tolist()) == "a dog , running on the beach ! 東京 🎉"
