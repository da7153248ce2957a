"""Per-clip scores for the Aes and FLT subsets: LAION aesthetics, CLIPScore, text overlay."""

from __future__ import annotations

from internvid.scores.aesthetic import AestheticScorer, HeadFormatError, load_head
from internvid.scores.clipscore import ClipScorer, clipscore_from_cosine
from internvid.scores.text_overlay import TextOverlayScorer
from internvid.scores.tiny import build_tiny_scorer_models

__all__ = [
    "AestheticScorer",
    "ClipScorer",
    "HeadFormatError",
    "TextOverlayScorer",
    "build_tiny_scorer_models",
    "clipscore_from_cosine",
    "load_head",
]
