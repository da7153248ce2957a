"""Option helpers shared by the commands."""

from __future__ import annotations

from internvid.scores.base import score_names

SCORE_LIST = ", ".join(score_names())  # the registered scores, for help texts


def score_list(text: str | None) -> list[str] | None:
    """ "a, b,c" -> ["a", "b", "c"]; None stays None."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]
