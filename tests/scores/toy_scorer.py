"""A toy scorer registered from outside the package: the mean red value of the middle frame."""

from __future__ import annotations

from typing import Any

from internvid.scores.base import ScoreItem, Scorer, register

NEED = "toy_middle"  # the middle frame at its source size


@register
class ToyRed(Scorer):
    """Mean red channel of the middle frame (0-255): needs no model and no caption."""

    name = "toy_red"
    description = "mean red value of the middle frame (toy)"
    value_range = (0.0, 255.0)

    def frame_needs(self) -> tuple[Any, ...]:
        from internvid.media.onepass import FrameNeed

        return (FrameNeed(NEED, "middle", short_side=64),)

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        return [{self.name: round(float(it.frames[NEED][0][..., 0].mean()), 4)} for it in items]
