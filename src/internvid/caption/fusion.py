"""Fusion: a language model turns a clip's frame captions and middle-frame caption into one caption."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from internvid.caption.backend import Request
from internvid.caption.clean import collapse_consecutive
from internvid.hub import load_once

log = logging.getLogger(__name__)

# The whole prompt of the chat fusion, in one place (shown in docs/captioning.md). {frames} is a
# numbered list of the frame captions in temporal order, {middle} the middle-frame caption.
CHAT_SYSTEM = "You write short, factual captions for video clips."
CHAT_PROMPT = (
    "Automatic captions of one video clip follow.\n"
    "Frame captions, one per second, in temporal order:\n"
    "{frames}\n"
    "Caption of the middle frame: {middle}\n\n"
    "Write one English sentence of 10 to 20 words that describes the clip: who or what is in "
    "it and what happens, in the order it happens. Use only what the captions say. Answer with "
    "the sentence only."
)
# The seq2seq fusion's input: T5 summarisation style, no elaborate prompt (as the InternVid
# maintainers describe theirs): the frame captions in order, then the middle-frame caption.
SEQ2SEQ_PROMPT = "summarize: {frames} {middle}"


@dataclass(frozen=True)
class FusionInput:
    """What the fusion model reads for one clip."""

    frames: tuple[str, ...]  # frame captions in temporal order, near-duplicates collapsed
    middle: str  # the middle-frame caption


def fusion_input(
    frame_captions: Sequence[str], middle: str, min_similarity: float = 0.8
) -> FusionInput:
    """Collapse consecutive near-identical frame captions, keep the order and the middle caption."""
    keep = collapse_consecutive(list(frame_captions), min_similarity)
    return FusionInput(tuple(frame_captions[i] for i in keep), middle)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def chat_messages(inp: FusionInput) -> list[dict[str, str]]:
    """The chat fusion's messages for one clip."""
    frames = "\n".join(f"{i}. {c}" for i, c in enumerate(inp.frames, 1)) or "(none)"
    return [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": CHAT_PROMPT.format(frames=frames, middle=inp.middle)},
    ]


def fusion_request(inp: FusionInput, mode: str) -> Request:
    """One clip's fusion as a backend request: the chat prompt with its system message, or the
    seq2seq input text."""
    if mode == "seq2seq":
        return Request(prompt=seq2seq_text(inp))
    system, user = chat_messages(inp)
    return Request(prompt=user["content"], system=system["content"])


def seq2seq_text(inp: FusionInput) -> str:
    """The seq2seq fusion's input text for one clip."""
    frames = " ".join(_sentence(c) for c in inp.frames)
    return SEQ2SEQ_PROMPT.format(frames=frames, middle=_sentence(inp.middle)).replace("  ", " ")


class Fuser:
    """Fuses captions with a seq2seq summariser or an instruction-tuned causal LM, batched.

    Loads once per worker process; greedy decoding (deterministic) unless num_beams > 1.
    """

    def __init__(
        self,
        path: str,
        mode: str,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 16,
        max_new_tokens: int = 48,
        num_beams: int = 1,
        cache_dir: str = "",
    ):
        if mode not in ("seq2seq", "chat"):
            raise ValueError(f"fusion mode must be seq2seq or chat, not {mode!r}")
        self.path = path  # hub id or folder for from_pretrained
        self.mode = mode  # "seq2seq" or "chat"
        self.device = device  # torch device string
        self.dtype = dtype  # torch dtype of the weights (None: fp32)
        self.batch_size = batch_size  # prompts per generate() call
        self.max_new_tokens = max_new_tokens  # fused caption token cap
        self.num_beams = num_beams  # 1: greedy
        self.cache_dir = cache_dir or None  # HF cache folder
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> Fuser:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no per-file "Loading weights" bars in our logs
        dtype = self.dtype or torch.float32
        cls = AutoModelForSeq2SeqLM if self.mode == "seq2seq" else AutoModelForCausalLM

        def load_model() -> Any:
            model = cls.from_pretrained(self.path, dtype=dtype, cache_dir=self.cache_dir)
            return model.to(self.device).eval()

        self.model = load_once(f"fusion-{self.mode}", self.path, self.device, dtype, load_model)
        return self.load_tokenizer()

    def load_tokenizer(self) -> Fuser:
        """The tokenizer alone (what `texts` needs, in a CPU worker)."""
        from transformers import AutoTokenizer

        def load_tokenizer() -> Any:
            tok = AutoTokenizer.from_pretrained(self.path, cache_dir=self.cache_dir)
            if self.mode == "chat":
                tok.padding_side = "left"  # generation continues the right end of every row
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            return tok

        self.tokenizer = load_once(f"tokenizer-{self.mode}", self.path, "", "", load_tokenizer)
        return self

    def prompts(self, inputs: Sequence[FusionInput]) -> list[str]:
        """The exact texts the model reads (the chat template applied for chat models)."""
        if self.mode == "seq2seq":
            return self.texts([("", seq2seq_text(i)) for i in inputs])
        return self.texts([(m[0]["content"], m[1]["content"]) for m in map(chat_messages, inputs)])

    def texts(self, turns: Sequence[tuple[str, str]]) -> list[str]:
        """The exact texts the model reads for (system, user) turns: a seq2seq model reads the
        user text as it is, a chat model the chat template of the two messages."""
        if self.tokenizer is None:
            self.load_tokenizer()
        if self.mode == "seq2seq":
            return [user for _, user in turns]
        out = []
        for system, user in turns:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": user})
            out.append(
                self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
        return out

    def fuse(self, inputs: Sequence[FusionInput]) -> list[str]:
        """One raw fused caption per input, in order (clean them with caption.clean)."""
        return self.run(self.prompts(inputs))

    def run(self, texts: Sequence[str], max_new_tokens: int = 0) -> list[str]:
        """One raw completion per prompt text (from `texts` / `prompts`), `batch_size` per
        generate() call."""
        if self.model is None:
            self.load()
        out: list[str] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._generate(list(texts[i : i + self.batch_size]), max_new_tokens))
        return out

    def _generate(self, texts: list[str], max_new_tokens: int = 0) -> list[str]:
        import torch

        seq2seq = self.mode == "seq2seq"
        limit = self.tokenizer.model_max_length
        enc = self.tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=seq2seq,  # the chat template already holds the special tokens
            truncation=seq2seq and limit < 100_000,  # the encoder's input limit (T5: 512)
            max_length=limit if seq2seq and limit < 100_000 else None,
        ).to(self.device)
        with torch.inference_mode():
            ids = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens or self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        if self.mode == "chat":
            ids = ids[:, enc["input_ids"].shape[1] :]  # only the answer, not the prompt
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
