"""Score stage: every score asked for (the scorers of scores/), batched over a shard's clips."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from internvid.config import ScoreConfig
from internvid.engine import Context, Resources, Sample, Stage
from internvid.scores.base import Loaded, ModelRef, ScoreItem, Scorer, scorers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreModels:
    """The models the enabled scores need, as configured (hub ids, files, tiny:NAME)."""

    refs: dict[str, ModelRef]  # role ("viclip", "clip", "aesthetic_head", ...) -> model

    def get(self, role: str) -> str:
        """The model configured for `role`, "" when no enabled score needs it."""
        ref = self.refs.get(role)
        return ref.ref if ref else ""

    def folders(self) -> list[str]:
        return [r.ref for r in self.refs.values() if r.kind == "folder"]

    def files(self) -> list[str]:
        return [r.ref for r in self.refs.values() if r.kind == "file"]


def enabled_scorers(cfg: ScoreConfig) -> list[Scorer]:
    """The scorers `cfg.scores` asks for, in the registry's order (not yet loaded)."""
    want = set(cfg.scores)
    return [cls(cfg) for name, cls in scorers().items() if name in want]


def score_models(cfg: ScoreConfig, caption_preset: str = "none") -> ScoreModels | None:
    """Which models `cfg.scores` need; None when no score is asked for."""
    if not cfg.scores:
        return None
    tiny = cfg.models == "tiny" or (cfg.models == "auto" and caption_preset.startswith("tiny"))
    refs: dict[str, ModelRef] = {}
    for scorer in enabled_scorers(cfg):
        for role, ref in scorer.models(tiny).items():
            refs.setdefault(role, ref)  # scorers naming the same role share its model
    return ScoreModels(refs)


class ScoreStage(Stage):
    """Scores each clip with every enabled scorer (scores/: ViCLIP similarity and its in-shard
    percentile, aesthetics, CLIPScore, text overlay, and any registered one), batched across
    the clips of a batch of videos (a shard). Captions are the clip's best (fused > release >
    coarse); scorers that need a caption skip clips without one."""

    name = "score"
    unit = "clip"
    needs = frozenset({"clips"})
    provides = frozenset({"scores"})
    batch_size = 64

    def __init__(self, cfg: ScoreConfig, models: ScoreModels, paths: dict[str, str]):
        self.cfg = cfg
        self.models = models
        self.paths = paths  # configured name -> local folder / file / hub id (resolved)
        self.resources = Resources.for_device(cfg.device)
        self.scorers = enabled_scorers(cfg)
        self.frame_needs = tuple(n for s in self.scorers for n in s.frame_needs())
        self._ready = False

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["scorers"] = enabled_scorers(self.cfg)  # models load again in the worker (setup)
        state["_ready"] = False
        return state

    def setup(self) -> None:
        from internvid.hub import pick_device, pick_dtype

        device = pick_device(self.cfg.device)
        ctx = Loaded(
            refs=self.models.refs,
            paths=self.paths,
            device=device,
            dtype=pick_dtype(self.cfg.dtype, device),
        )
        for scorer in self.scorers:
            scorer.load(ctx)
        self._ready = True

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if not self._ready:
            self.setup()
        items: list[ScoreItem] = []
        for sample in batch:
            frames = sample.payload.get("frames", {})
            for clip in sample.clips:
                f = frames.get(clip.clip_id)
                if not f:
                    ctx.fail(sample, "no_frames", "no frames were served", item=clip.clip_id)
                    continue
                items.append(ScoreItem(clip, f, clip.best_caption()))
        for scorer in self.scorers:
            todo = [it for it in items if it.caption] if scorer.needs_caption else items
            if not todo:
                continue
            values = scorer.score(todo)
            for item, vals in zip(todo, values, strict=True):
                item.clip.scores.update(vals)
        return batch
