"""Chat vision-language captioners (Qwen2-VL, Qwen2.5-VL, any image-text-to-text model): frames and a prompt in, text out."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from internvid.hub import load_once

log = logging.getLogger(__name__)

# Processor classes rebuilt without their video processor, by the class they stand in for.
_IMAGES_ONLY: dict[type, type] = {}


def messages(n_frames: int, prompt: str, system: str = "") -> list[dict[str, Any]]:
    """The chat of one request: an optional system message, then the user's `n_frames` images
    (each after "Frame i: " when there are several: the frames of a clip, in order; none: a text
    question), then the prompt. Every content is a list of parts, the form all multimodal chat
    templates read."""
    chat: list[dict[str, Any]] = []
    if system:
        chat.append({"role": "system", "content": [{"type": "text", "text": system}]})
    parts: list[dict[str, Any]] = []
    for i in range(n_frames):
        if n_frames > 1:
            parts.append({"type": "text", "text": f"Frame {i + 1}: "})
        parts.append({"type": "image"})
    parts.append({"type": "text", "text": prompt})
    chat.append({"role": "user", "content": parts})
    return chat


def load_processor(path: str, cache_dir: str | None = None) -> Any:
    """`AutoProcessor.from_pretrained(path)`. Where that fails only because the processor's video
    processor needs torchvision (Qwen2-VL, Qwen2.5-VL, ... without torchvision installed), the
    same processor class without its video processor: images and text work as usual."""
    from transformers import AutoConfig, AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path, cache_dir=cache_dir)
    except ImportError as e:
        if "torchvision" not in str(e).lower():
            raise
        error = e
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    config_class = type(AutoConfig.from_pretrained(path, cache_dir=cache_dir))
    cls = PROCESSOR_MAPPING.get(config_class, None)
    if cls is None or "video_processor" not in inspect.signature(cls.__init__).parameters:
        raise error
    log.debug("%s: no torchvision, so %s loads without its video processor", path, cls.__name__)
    return _images_only(cls).from_pretrained(path, cache_dir=cache_dir)


def _images_only(cls: type) -> type:
    """A subclass of processor class `cls` whose sub-processors are its image processor and its
    tokenizer: from_pretrained loads no video processor, and `cls.__init__` gets None for it."""
    if cls not in _IMAGES_ONLY:

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            cls.__init__(
                self,
                image_processor=image_processor,
                tokenizer=tokenizer,
                chat_template=chat_template,
                **kwargs,
            )

        # named as `cls`, so that save_pretrained writes a processor_config.json that loads back
        _IMAGES_ONLY[cls] = type(cls.__name__, (cls,), {"__init__": __init__})
    return _IMAGES_ONLY[cls]


def _image(frame: np.ndarray) -> Any:
    """An RGB uint8 H x W x 3 array as a PIL image (no channel-order guessing by processors)."""
    from PIL import Image

    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be H x W x 3 uint8 RGB, not {array.dtype} {array.shape}")
    return Image.fromarray(array)


class VLMCaptioner:
    """Answers (frames, prompt) requests with a chat vision-language model, in batches.

    One frame is an image to caption; several are the frames of one clip, given to the model as
    that many images in temporal order. The model and its processor load once per worker process
    (`internvid.hub.load_once`); prompts are left-padded, decoding is greedy (beam search with
    num_beams > 1), so the same request always gets the same text, alone or in any batch.
    """

    def __init__(
        self,
        path: str,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        num_beams: int = 1,
        system: str = "",
        cache_dir: str = "",
    ):
        self.path = path  # hub id or folder for from_pretrained
        self.device = device  # torch device string
        self.dtype = dtype  # torch dtype of the weights (None: fp32)
        self.batch_size = batch_size  # requests per generate() call
        self.max_new_tokens = max_new_tokens  # answer token cap
        self.num_beams = num_beams  # 1: greedy
        self.system = system  # system message of every request that brings none ("": none)
        self.cache_dir = cache_dir or None  # HF cache folder
        self.model: Any = None  # the AutoModelForImageTextToText, after load()
        self.processor: Any = None  # its processor (tokenizer padding on the left), after load()

    def load(self) -> VLMCaptioner:
        import torch
        from transformers import AutoModelForImageTextToText
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no per-file "Loading weights" bars in our logs
        dtype = self.dtype or torch.float32

        def load_model() -> Any:
            model = AutoModelForImageTextToText.from_pretrained(
                self.path, dtype=dtype, cache_dir=self.cache_dir
            )
            return model.to(self.device).eval()

        self.model = load_once("captioner", self.path, self.device, dtype, load_model)
        self.processor = load_once(
            "processor", self.path, "", "", lambda: load_processor(self.path, self.cache_dir)
        )
        self.processor.tokenizer.padding_side = "left"  # generation continues every row's end
        return self

    def generate(
        self,
        requests: Sequence[tuple[Sequence[np.ndarray], str]],
        *,
        systems: Sequence[str] | None = None,
        max_new_tokens: int = 0,
    ) -> list[str]:
        """One answer per (frames, prompt) request, in order. Frames: RGB uint8 H x W x 3 arrays
        in temporal order. `systems`: a system message per request ("": `self.system`);
        `max_new_tokens`: this call's token cap (0: `self.max_new_tokens`)."""
        if self.model is None:
            self.load()
        requests = list(requests)
        systems = list(systems) if systems is not None else [""] * len(requests)
        if len(systems) != len(requests):
            raise ValueError(f"{len(systems)} system messages for {len(requests)} requests")
        cap = max_new_tokens or self.max_new_tokens
        out: list[str] = []
        for i in range(0, len(requests), self.batch_size):
            batch = requests[i : i + self.batch_size]
            out.extend(self._generate(batch, systems[i : i + self.batch_size], cap))
        return out

    def _generate(
        self, batch: list[tuple[Sequence[np.ndarray], str]], systems: list[str], cap: int
    ) -> list[str]:
        import torch

        texts = [
            self.processor.apply_chat_template(
                messages(len(frames), prompt, system or self.system),
                add_generation_prompt=True,
                tokenize=False,
            )
            for (frames, prompt), system in zip(batch, systems, strict=True)
        ]
        images = [_image(frame) for frames, _ in batch for frame in frames]
        inputs = self.processor(
            text=texts, images=images or None, padding=True, return_tensors="pt"
        )
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        kw: dict[str, Any] = {}
        if self.model.generation_config.pad_token_id is None:
            tokenizer = self.processor.tokenizer
            kw["pad_token_id"] = tokenizer.pad_token_id or tokenizer.eos_token_id
        with torch.inference_mode():
            ids = self.model.generate(
                **inputs, max_new_tokens=cap, num_beams=self.num_beams, do_sample=False, **kw
            )
        if not self.model.config.is_encoder_decoder:  # decoder-only: the prompt comes back first
            ids = ids[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
