"""Caption text normalisation of the official ViCLIP/UMT code (`pre_text`), used before tokenising."""

from __future__ import annotations

import re

_PUNCT = re.compile(r"[,.'!?\"()*#:;~]")  # characters the official code deletes
_SPACES = re.compile(r"\s{2,}")


def pre_text(text: str, max_words: int | None = None) -> str:
    """Lower-case, delete ,.'!?"()*#:;~, turn `-` and `/` into spaces, `<person>` into "person",
    collapse runs of whitespace and trim; keep the first `max_words` words when given.

    This is what the official evaluation and training datasets apply to every caption and class
    name (InternVideo1/Pretrain/ViCLIP `dataset/utils.py`)."""
    text = _PUNCT.sub("", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = _SPACES.sub(" ", text).rstrip("\n").strip(" ")
    if max_words:
        words = text.split(" ")
        if len(words) > max_words:
            text = " ".join(words[:max_words])
    return text
