"""Semantic dedup of a finished run's clips: embed, k-means, pairwise cosine, keep one a group."""

from internvid.dedup.embed import DEFAULT_THRESHOLDS, DedupError, Embedded, NoClips
from internvid.dedup.run import (
    DEDUP_DIR,
    GROUPS_FILE,
    KEEP_FILE,
    SUMMARY_FILE,
    DedupSummary,
    dedup_folder,
)

__all__ = [
    "DEDUP_DIR",
    "DEFAULT_THRESHOLDS",
    "GROUPS_FILE",
    "KEEP_FILE",
    "SUMMARY_FILE",
    "DedupError",
    "DedupSummary",
    "Embedded",
    "NoClips",
    "dedup_folder",
]
