"""Image captioners on Hugging Face transformers (BLIP, BLIP-2, any image-text-to-text model), batched."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from internvid.hub import load_once

log = logging.getLogger(__name__)


def _model_class(model_type: str) -> Any:
    """The transformers class that generates captions for a config's model_type."""
    import transformers

    if model_type == "blip":
        return transformers.BlipForConditionalGeneration
    if model_type == "blip-2":
        return transformers.Blip2ForConditionalGeneration
    return transformers.AutoModelForImageTextToText


class ImageCaptioner:
    """Captions RGB images (H x W x 3 uint8) in batches with one `generate` call per batch.

    The model and its processor load once per worker process (`from_pretrained`, the same path
    for a hub id, a cached model or a local folder). Decoding is greedy by default, so the same
    frame always gets the same caption.
    """

    def __init__(
        self,
        path: str,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 16,
        max_new_tokens: int = 30,
        num_beams: int = 1,
        prompt: str | None = None,
        cache_dir: str = "",
    ):
        self.path = path  # hub id or folder for from_pretrained
        self.device = device  # torch device string
        self.dtype = dtype  # torch dtype of the weights (None: fp32)
        self.batch_size = batch_size  # images per generate() call
        self.max_new_tokens = max_new_tokens  # caption token cap
        self.num_beams = num_beams  # 1: greedy
        self.prompt = prompt  # optional text the caption continues (BLIP conditional captioning)
        self.cache_dir = cache_dir or None  # HF cache folder
        self.model: Any = None
        self.processor: Any = None

    def load(self) -> ImageCaptioner:
        import torch
        from transformers import AutoConfig
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no per-file "Loading weights" bars in our logs
        dtype = self.dtype or torch.float32

        def load_model() -> Any:
            cfg = AutoConfig.from_pretrained(self.path, cache_dir=self.cache_dir)
            cls = _model_class(cfg.model_type)
            model = cls.from_pretrained(self.path, dtype=dtype, cache_dir=self.cache_dir)
            return model.to(self.device).eval()

        self.model = load_once("captioner", self.path, self.device, dtype, load_model)
        return self.load_processor()

    def load_processor(self) -> ImageCaptioner:
        """The processor alone (what `prepare` needs, in a CPU worker)."""
        from transformers import AutoProcessor

        self.processor = load_once(
            "processor",
            self.path,
            "",
            "",
            lambda: AutoProcessor.from_pretrained(self.path, cache_dir=self.cache_dir),
        )
        return self

    def caption(self, images: Sequence[np.ndarray]) -> list[str]:
        """One raw caption per image, in order (clean them with caption.clean)."""
        return self.run(self.prepare(images))

    def prepare(self, images: Sequence[np.ndarray]) -> list[Any]:
        """The CPU part: each image through the processor, alone (its pixel_values, 3 x H x W,
        in the model's dtype; BLIP's processors resize every image to one size, so rows stack
        into any batch)."""
        if self.processor is None:
            self.load_processor()
        out = [self.processor(images=[im], return_tensors="pt")["pixel_values"][0] for im in images]
        if self.dtype is not None:  # the model's dtype now (it casts them anyway): half the bytes
            out = [p.to(self.dtype) for p in out]  # in bf16 / fp16 while they wait or travel
        return out

    def run(self, pixels: Sequence[Any], max_new_tokens: int = 0) -> list[str]:
        """The accelerator part: captions of prepared images, `batch_size` per generate() call
        (`max_new_tokens`: this call's token cap, 0: `self.max_new_tokens`)."""
        if self.model is None:
            self.load()
        out: list[str] = []
        for i in range(0, len(pixels), self.batch_size):
            out.extend(self._generate(list(pixels[i : i + self.batch_size]), max_new_tokens))
        return out

    def _generate(self, pixels: list[Any], max_new_tokens: int = 0) -> list[str]:
        import torch

        inputs: dict[str, Any] = {
            "pixel_values": torch.stack(pixels).to(self.device, self.model.dtype)  # B x 3 x H x W
        }
        if self.prompt:
            text = self.processor(text=[self.prompt] * len(pixels), return_tensors="pt")
            inputs.update({k: v.to(self.device) for k, v in text.items()})
        with torch.inference_mode():
            ids = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens or self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
            )
        texts = [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        if self.prompt:  # the caption continues the prompt; some models echo it
            p = self.prompt.strip().lower()
            texts = [t[len(p) :].strip() if t.lower().startswith(p) else t for t in texts]
        return texts
