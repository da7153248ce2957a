"""The captioner backend protocol: requests (frames + prompt) in, replies (text or a failure) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Request:
    """One generation: a caption of frames, or a text-only completion (fusion)."""

    frames: tuple[np.ndarray, ...] = ()  # RGB uint8 H x W x 3 in temporal order; () text only
    prompt: str = ""  # the user's instruction (image captioners like BLIP ignore it)
    system: str = ""  # system message of chat models ("" none)
    max_new_tokens: int = 0  # token cap (0: the backend's own)


@dataclass(frozen=True)
class Reply:
    """What a backend returns for one request: its raw text, or why there is none."""

    text: str = ""  # generated text, raw (clean it with caption.clean)
    error: str = ""  # "" when it worked, else a reason code: http_400, timeout, connection, ...
    message: str = ""  # what went wrong, for failures.jsonl

    @property
    def ok(self) -> bool:
        return not self.error


@runtime_checkable
class Captioner(Protocol):
    """A caption or fusion model behind one interface, whatever runs it.

    `prepare` is the CPU part (frames resized, encoded or run through the model's processor)
    and may run in another process than `run`, the accelerator part: it returns a list with one
    picklable element per request (a Reply for a request refused already), so that prepared
    lists can be split and joined across samples; `generate(requests)` is
    `run(prepare(requests))`. Replies come back in request order, one per request; a request
    that fails gets a Reply with `error` set and the others go on.
    """

    name: str  # the model as configured (hub id, folder, tiny:NAME or the server's name)

    def load(self) -> Captioner: ...

    def prepare(self, requests: Sequence[Request]) -> list[Any]: ...

    def run(self, prepared: Sequence[Any]) -> list[Reply]: ...

    def generate(self, requests: Sequence[Request]) -> list[Reply]: ...
