"""CLIPScore of a clip and its caption: CLIP ViT-L/14 image-text cosine on one frame (raw)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from internvid.scores.aesthetic import (
    DEFAULT_CLIP_MODEL,
    l2_normalize,
    load_pretrained,
    resolve_device_dtype,
)
from internvid.scores.base import Loaded, ModelRef, ScoreItem, Scorer, register

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Token budget of CLIP's text tower (start and end tokens included); longer captions are cut.
CLIP_MAX_TOKENS = 77
# The weight CLIPScore papers (Hessel et al. 2021) put on the cosine: 2.5 * max(cos, 0).
CLIPSCORE_WEIGHT = 2.5


def clipscore_from_cosine(cosine: float, weight: float = CLIPSCORE_WEIGHT) -> float:
    """The published CLIPScore, weight * max(cos, 0), from the raw cosine we store."""
    return weight * max(cosine, 0.0)


def _features(output: Any) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return output if hasattr(output, "shape") else output.pooler_output


class ClipScorer:
    """Cosine similarity between a frame's and a caption's CLIP embeddings, in [-1, 1].

    We store the raw cosine. CLIPScore papers report 2.5 * max(cos, 0) (see
    clipscore_from_cosine); the two rank pairs the same way above 0, and the raw value keeps
    the negative tail that max(cos, 0) hides. Captions longer than the text tower's 77 tokens
    are truncated (start and end tokens kept). Models load once, in the constructor.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_CLIP_MODEL,
        device: str = "cpu",
        dtype: Any = None,
        batch_size: int = 32,
        cache_dir: str | None = None,
    ) -> None:
        from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

        model = str(model)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        self.batch_size = batch_size  # image-text pairs per forward pass
        # The PIL backend matches OpenAI CLIP's preprocessing and needs no torchvision.
        self.image_processor = CLIPImageProcessorPil.from_pretrained(model, cache_dir=cache_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model, cache_dir=cache_dir)
        clip = load_pretrained(CLIPModel, model, self.dtype, cache_dir)
        self.model = clip.to(self.device).eval()
        positions = int(self.model.config.text_config.max_position_embeddings)
        self.max_tokens = min(CLIP_MAX_TOKENS, positions)  # text tokens kept per caption
        logger.debug("clip scorer: %s on %s/%s", model, self.device, self.dtype)

    def embed_images(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """L2-normalised fp32 image embeddings (on the CPU), one row per frame."""
        import torch

        pixels = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        return l2_normalize(_features(out).float()).cpu()

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised fp32 text embeddings (on the CPU), one row per text (truncated)."""
        import torch

        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
        return l2_normalize(_features(out).float()).cpu()

    def score(self, frames: Sequence[np.ndarray], texts: Sequence[str]) -> list[float]:
        """Raw cosine of each (frame, text) pair, in order."""
        if len(frames) != len(texts):
            raise ValueError(f"{len(frames)} frames but {len(texts)} texts: give one per frame")
        out: list[float] = []
        for i in range(0, len(frames), self.batch_size):
            images = self.embed_images(frames[i : i + self.batch_size])
            captions = self.embed_texts(texts[i : i + self.batch_size])
            cosine = (images * captions).sum(dim=-1).clamp(-1.0, 1.0)
            out.extend(float(c) for c in cosine)
        return out


NEED_MIDDLE = "score_middle"  # the middle frame, 224 px short side


@register
class ClipScore(Scorer):
    """CLIP ViT-L/14 cosine of the clip's middle frame and its caption (raw, in [-1, 1])."""

    name = "clipscore"
    description = "CLIP ViT-L/14 cosine of the middle frame and the caption (raw)"
    needs_caption = True
    order = 30

    def frame_needs(self) -> tuple[Any, ...]:
        from internvid.media.onepass import FrameNeed

        return (FrameNeed(NEED_MIDDLE, "middle", short_side=224),)

    def models(self, tiny: bool) -> dict[str, ModelRef]:
        from internvid.scores.aesthetic import clip_ref

        return {"clip": clip_ref(self.cfg, tiny)}

    def load(self, ctx: Loaded) -> None:
        self.scorer = ClipScorer(
            model=ctx.path("clip"),
            device=ctx.device,
            dtype=ctx.dtype,
            batch_size=self.cfg.batch_size,
        )

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        values = self.scorer.score(
            [it.frames[NEED_MIDDLE][0] for it in items], [it.caption for it in items]
        )
        return [{self.name: round(float(v), 4)} for v in values]
