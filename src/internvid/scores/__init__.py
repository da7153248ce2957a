"""Per-clip scores: the Scorer protocol and registry (base.py) and one scorer per file."""

from __future__ import annotations

from internvid.scores.aesthetic import AestheticScorer, HeadFormatError, load_head
from internvid.scores.base import (
    Loaded,
    ModelRef,
    ScoreItem,
    Scorer,
    describe,
    get,
    register,
    score_columns,
    score_names,
    scorers,
    unregister,
)
from internvid.scores.clipscore import ClipScorer, clipscore_from_cosine
from internvid.scores.text_overlay import TextOverlayScorer

__all__ = [
    "AestheticScorer",
    "ClipScorer",
    "HeadFormatError",
    "Loaded",
    "ModelRef",
    "ScoreItem",
    "Scorer",
    "TextOverlayScorer",
    "clipscore_from_cosine",
    "describe",
    "get",
    "load_head",
    "register",
    "score_columns",
    "score_names",
    "scorers",
    "unregister",
]
