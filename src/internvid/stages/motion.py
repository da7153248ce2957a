"""Motion filter: drops still clips (slideshows, static screens) and chaotic ones, with reasons."""

from __future__ import annotations

from internvid.config import MotionConfig
from internvid.engine import Context, Sample, Stage


class MotionFilter(Stage):
    """Keeps clips whose `frozen` and `motion` scores (from the split's pass) are in range.

    still: more than `max_frozen` of the frames show no change at all (a decoded slide repeats
    bit for bit; camera footage always carries some sensor noise). chaotic: the mean luma change
    per frame exceeds `max_motion` (strobes, noise, constant flashes).
    """

    name = "motion"
    unit = "clip"
    needs = frozenset({"clips"})

    def __init__(self, cfg: MotionConfig):
        self.cfg = cfg

    def verdict(self, scores: dict[str, float]) -> str | None:
        if scores.get("frozen", 0.0) > self.cfg.max_frozen:
            return "still"
        if scores.get("motion", 0.0) > self.cfg.max_motion:
            return "chaotic"
        return None

    def values(self, scores: dict[str, float]) -> dict[str, float | None]:
        """What the rules look at, and their thresholds (a dropped.jsonl row's values)."""
        return {
            "frozen": scores.get("frozen"),
            "max_frozen": self.cfg.max_frozen,
            "motion": scores.get("motion"),
            "max_motion": self.cfg.max_motion,
        }

    def process_one(self, sample: Sample, ctx: Context) -> Sample | None:
        if not self.cfg.enabled:
            return sample
        keep = []
        frames = sample.payload.get("frames", {})
        for clip in sample.clips:
            reason = self.verdict(clip.scores)
            if reason is None:
                keep.append(clip)
            else:
                ctx.drop(reason, sample=sample, clip=clip, values=self.values(clip.scores))
                frames.pop(clip.clip_id, None)
        sample.clips = keep
        return sample if keep else None
