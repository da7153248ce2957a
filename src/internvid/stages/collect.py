"""The paper's collection rules (10 s - 30 min, at least 360p) as a filter with reasons."""

from __future__ import annotations

from internvid.config import CollectConfig
from internvid.engine import Filter, Sample


def display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(width, height) as shown, after the rotation in the file's display matrix."""
    return (height, width) if rotation % 180 == 90 else (width, height)


class CollectFilter(Filter):
    """Drops videos outside the duration and resolution rules; reasons become stats counters.

    "auto" applies the rules to videos that came from URLs or metadata rows (a crawl) and not to
    local files a user picked by hand. Videos above the resolution cap are kept; the cut scales
    them down (SPEC: above 720p taken at 720p).
    """

    name = "collect"
    needs = frozenset({"probe"})

    def __init__(self, cfg: CollectConfig):
        self.cfg = cfg

    def applies_to(self, sample: Sample) -> bool:
        if self.cfg.enabled == "auto":
            return sample.video.meta.get("origin") in ("url", "metadata")
        return self.cfg.enabled == "on"

    def keep(self, sample: Sample) -> bool | tuple[bool, str, dict]:
        if not self.applies_to(sample):
            return True
        v, c = sample.video, self.cfg
        if v.duration < c.min_duration:
            return False, "too_short", {"duration": v.duration, "min_duration": c.min_duration}
        if v.duration > c.max_duration:
            return False, "too_long", {"duration": v.duration, "max_duration": c.max_duration}
        shown = min(display_size(v.width, v.height, v.rotation))
        if shown < c.min_height:
            return False, "low_resolution", {"height": shown, "min_height": c.min_height}
        return True
