"""The `hf` captioner backend: any caption, vision-language or text model through transformers generate()."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from internvid.caption.backend import Reply, Request

log = logging.getLogger(__name__)

KINDS = ("image", "vlm", "seq2seq", "chat")  # what a model does, from its config


def model_kind(path: str, cache_dir: str = "") -> str:
    """What the model at `path` is: `image` (BLIP / BLIP-2: an image in, a caption out), `vlm`
    (a chat vision-language model such as Qwen2.5-VL: images and a prompt in), `seq2seq` (a
    T5-style text model) or `chat` (a causal LM with a chat template)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, cache_dir=cache_dir or None)
    if cfg.model_type in ("blip", "blip-2"):
        return "image"
    if getattr(cfg, "vision_config", None) is not None:
        return "vlm"
    if getattr(cfg, "is_encoder_decoder", False):
        return "seq2seq"
    return "chat"


@dataclass(frozen=True)
class Prepared:
    """One request after the CPU part, ready for generate()."""

    item: Any  # pixel_values (image), (frames, prompt, system) (vlm) or the prompt text (text)
    cap: int  # its token cap (0: the backend's)


class HFCaptioner:
    """Hugging Face models as a Captioner: BLIP-style captioners (one frame a request), chat
    vision-language models (any frames and a prompt), seq2seq and chat language models (text).

    The model loads once per worker process (`internvid.hub.load_once`), batches of
    `batch_size` requests share one generate() call, decoding is greedy unless num_beams > 1.
    """

    def __init__(
        self,
        path: str,
        name: str = "",
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 16,
        max_new_tokens: int = 30,
        num_beams: int = 1,
        cache_dir: str = "",
    ):
        self.path = path  # hub id or folder for from_pretrained
        self.name = name or path  # the model as configured
        self.device = device  # torch device string
        self.dtype = dtype  # torch dtype of the weights (None: fp32)
        self.batch_size = batch_size  # requests per generate() call
        self.max_new_tokens = max_new_tokens  # token cap of a request that sets none
        self.num_beams = num_beams  # 1: greedy
        self.cache_dir = cache_dir  # HF cache folder ("" = HF_HOME's)
        self.kind = ""  # one of KINDS, known after load()
        self.engine: Any = None  # ImageCaptioner, VLMCaptioner or Fuser

    def load(self, model: bool = True) -> HFCaptioner:
        """Find the model's kind and load it (`model=False`: its processor only, for prepare)."""
        if self.engine is not None and (not model or self._model_loaded()):
            return self
        self.kind = model_kind(self.path, self.cache_dir)
        common = dict(
            device=self.device,
            dtype=self.dtype,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
            num_beams=self.num_beams,
            cache_dir=self.cache_dir,
        )
        if self.kind == "image":
            from internvid.caption.captioner import ImageCaptioner

            self.engine = ImageCaptioner(self.path, **common)
        elif self.kind == "vlm":
            from internvid.caption.vlm import VLMCaptioner

            self.engine = VLMCaptioner(self.path, **common)
        else:
            from internvid.caption.fusion import Fuser

            self.engine = Fuser(self.path, self.kind, **common)
        if model:
            self.engine.load()
        return self

    def _model_loaded(self) -> bool:
        return getattr(self.engine, "model", None) is not None

    def prepare(self, requests: Sequence[Request]) -> list[Prepared | Reply]:
        """The CPU part, one element per request: images through the processor (BLIP), chat
        templates applied (text); a request the model cannot take is its failure Reply."""
        if self.engine is None:
            self.load(model=False)
        refused = {i: self._refuse(r) for i, r in enumerate(requests)}
        out: list[Prepared | Reply] = [
            Reply(error="unsupported_request", message=why) for why in refused.values()
        ]
        take = [i for i, why in refused.items() if not why]
        chosen = [requests[i] for i in take]
        if self.kind == "image":
            items = self.engine.prepare([r.frames[0] for r in chosen])
        elif self.kind == "vlm":  # its processor runs with the batch (image tokens, padding)
            items = [(list(r.frames), r.prompt, r.system) for r in chosen]
        else:
            items = self.engine.texts([(r.system, r.prompt) for r in chosen])
        for i, item in zip(take, items, strict=True):
            out[i] = Prepared(item, requests[i].max_new_tokens)
        return out

    def _refuse(self, r: Request) -> str:
        """Why this model cannot answer `r` ("" when it can)."""
        if self.kind == "image" and len(r.frames) != 1:
            return f"{self.name} captions one image a request, not {len(r.frames)}"
        if self.kind in ("seq2seq", "chat") and r.frames:
            return f"{self.name} is a text model: it reads no images"
        return ""

    def run(self, prepared: Sequence[Prepared | Reply]) -> list[Reply]:
        """The accelerator part: generate() over prepared requests, in batches; one Reply per
        element, in order (refused ones as they are)."""
        self.load()
        todo = {i: p for i, p in enumerate(prepared) if isinstance(p, Prepared)}
        texts: dict[int, str] = {}
        # requests with the same token cap share batches (a generate() call has one cap)
        for cap in sorted({p.cap for p in todo.values()}):
            keys = [i for i, p in todo.items() if p.cap == cap]
            batch = [todo[i].item for i in keys]
            if self.kind == "image":
                out = self.engine.run(batch, max_new_tokens=cap)
            elif self.kind == "vlm":
                out = self.engine.generate(
                    [(frames, prompt) for frames, prompt, _ in batch],
                    systems=[system for _, _, system in batch],
                    max_new_tokens=cap,
                )
            else:
                out = self.engine.run(batch, max_new_tokens=cap)
            texts.update(zip(keys, out, strict=True))
        return [Reply(text=texts[i]) if i in texts else p for i, p in enumerate(prepared)]  # type: ignore[misc]

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return self.run(self.prepare(requests))
