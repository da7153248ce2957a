"""Score stage: ViCLIP video-text similarity and its in-shard percentile, aesthetics, CLIPScore, text."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from internvid.config import ScoreConfig
from internvid.engine import Context, Resources, Sample, Stage
from internvid.hub import OFFICIAL_CLIP, OFFICIAL_VICLIP, TINY_VICLIP
from internvid.io.shards import best_caption
from internvid.media.onepass import FrameNeed

log = logging.getLogger(__name__)

NEED_VICLIP = "score_viclip"  # 8 frames at 224x224 (no crop), ViCLIP's sampling
NEED_UNIFORM = "score_uniform"  # 4 uniform frames, 224 px short side (aesthetic: max over them)
NEED_MIDDLE = "score_middle"  # the middle frame, 224 px short side (CLIPScore)
NEED_TEXT = "score_text"  # 4 uniform frames for the text detector
# the published aesthetic heads (improved MLP predictor; LAION's first linear one)
AESTHETIC_HEADS = {
    "mlp": "camenduru/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth",
    "linear": "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
}


@dataclass(frozen=True)
class ScoreModels:
    """The models the enabled scores need, as configured (hub ids, files, tiny:NAME)."""

    viclip: str  # ViCLIP checkpoint file ("" when viclip_sim is off)
    clip: str  # CLIP model folder or hub id ("" when aesthetic and clipscore are off)
    aesthetic_head: str  # head weight file ("" when aesthetic is off)

    def folders(self) -> list[str]:
        return [self.clip] if self.clip else []

    def files(self) -> list[str]:
        return [f for f in (self.viclip, self.aesthetic_head) if f]


def score_models(cfg: ScoreConfig, caption_preset: str = "none") -> ScoreModels | None:
    """Which models `cfg.scores` need; None when no score is asked for."""
    if not cfg.scores:
        return None
    tiny = cfg.models == "tiny" or (cfg.models == "auto" and caption_preset == "tiny")
    want = set(cfg.scores)
    viclip = cfg.viclip or (TINY_VICLIP if tiny else OFFICIAL_VICLIP)
    clip = cfg.clip_model or ("tiny:clip" if tiny else OFFICIAL_CLIP)
    head = cfg.aesthetic_head
    if head in AESTHETIC_HEADS:
        head = f"tiny:aesthetic-{head}" if tiny else AESTHETIC_HEADS[head]
    return ScoreModels(
        viclip=viclip if "viclip_sim" in want else "",
        clip=clip if want & {"aesthetic", "clipscore"} else "",
        aesthetic_head=head if "aesthetic" in want else "",
    )


def caption_percentiles(sims: np.ndarray) -> list[float | None]:
    """For each clip i, the fraction of the other clips' captions that match its video less
    than its own caption does (`sims[i, j]`: video i against caption j; ties count half).
    1.0: its caption beats every other caption of the shard; None when there is no other."""
    n = sims.shape[0]
    if n < 2:
        return [None] * n
    own = np.diag(sims)[:, None]
    others = ~np.eye(n, dtype=bool)
    below = ((sims < own) & others).sum(1) + 0.5 * ((sims == own) & others).sum(1)
    return [float(x) for x in below / (n - 1)]


class ScoreStage(Stage):
    """Scores each clip, batched across the clips of a batch of videos (a shard):

    - `viclip_sim`: cosine of ViCLIP's video and caption embeddings (8 frames at 224x224); the
      release's `UMT_Score` comes from it. `viclip_sim_pct`: where the clip's own caption ranks
      among the captions of the other clips of the batch (a percentile that means the same at
      any absolute cosine level);
    - `aesthetic`: the LAION aesthetic predictor on CLIP ViT-L/14 embeddings, max over 4
      uniform frames (the paper's rule);
    - `clipscore`: CLIP ViT-L/14 cosine of the middle frame and the caption;
    - `text_overlay`: the largest fraction of frame area covered by detected text over 4
      uniform frames (RapidOCR's detector, offline).

    Captions are the clip's best (fused > release > coarse); a clip without one gets no
    caption scores.
    """

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
        want = set(cfg.scores)
        needs = []
        if "viclip_sim" in want:
            kind = "segments" if cfg.viclip_sampling == "middle" else "strided"
            needs.append(FrameNeed(NEED_VICLIP, kind, 8, width=224, height=224))
        if "aesthetic" in want:
            needs.append(FrameNeed(NEED_UNIFORM, "uniform", 4, short_side=224))
        if "clipscore" in want:
            needs.append(FrameNeed(NEED_MIDDLE, "middle", short_side=224))
        if "text_overlay" in want:
            needs.append(FrameNeed(NEED_TEXT, "uniform", 4, short_side=cfg.text_frame_size))
        self.frame_needs = tuple(needs)
        self._loaded: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_loaded"] = {}  # models load again in the worker (setup)
        return state

    def setup(self) -> None:
        from internvid.hub import fetch_file, pick_device, pick_dtype

        c, m = self.cfg, self.models
        device = pick_device(c.device)
        dtype = pick_dtype(c.dtype, device)
        self._device = device
        want = set(c.scores)
        if "viclip_sim" in want:
            from internvid.hub import load_viclip

            self._loaded["viclip"] = load_viclip(
                m.viclip, device=device, dtype=c.dtype, resolved=self.paths[m.viclip]
            )
        if "aesthetic" in want:
            from internvid.scores import AestheticScorer

            self._loaded["aesthetic"] = AestheticScorer(
                clip_model=self.paths[m.clip],
                head=fetch_file(self.paths[m.aesthetic_head]),
                device=device,
                dtype=dtype,
                batch_size=c.batch_size,
            )
        if "clipscore" in want:
            from internvid.scores import ClipScorer

            self._loaded["clipscore"] = ClipScorer(
                model=self.paths[m.clip], device=device, dtype=dtype, batch_size=c.batch_size
            )
        if "text_overlay" in want:
            from internvid.scores import TextOverlayScorer

            self._loaded["text_overlay"] = TextOverlayScorer()

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if not self._loaded:
            self.setup()
        items = []  # (sample, clip, its frames)
        for sample in batch:
            frames = sample.payload.get("frames", {})
            for clip in sample.clips:
                f = frames.get(clip.clip_id)
                if not f:
                    ctx.fail(sample, "no_frames", "no frames were served", item=clip.clip_id)
                    continue
                items.append((sample, clip, f))
        if not items:
            return batch
        if "viclip" in self._loaded:
            self._viclip(items)
        if "aesthetic" in self._loaded:
            scores = self._loaded["aesthetic"].score_clips([f[NEED_UNIFORM] for _, _, f in items])
            for (_, clip, _), s in zip(items, scores, strict=True):
                clip.scores["aesthetic"] = round(float(s), 4)
        if "clipscore" in self._loaded:
            pairs = [(clip, f[NEED_MIDDLE][0]) for _, clip, f in items if best_caption(clip)]
            if pairs:
                scores = self._loaded["clipscore"].score(
                    [img for _, img in pairs], [best_caption(c) for c, _ in pairs]
                )
                for (clip, _), s in zip(pairs, scores, strict=True):
                    clip.scores["clipscore"] = round(float(s), 4)
        if "text_overlay" in self._loaded:
            scores = self._loaded["text_overlay"].score_clips([f[NEED_TEXT] for _, _, f in items])
            for (_, clip, _), s in zip(items, scores, strict=True):
                clip.scores["text_overlay"] = round(float(s), 4)
        return batch

    def _viclip(self, items: list) -> None:
        import torch

        from internvid.models import frames_to_tensor, tokenize

        model = self._loaded["viclip"]
        with_caption = [(clip, f[NEED_VICLIP]) for _, clip, f in items if best_caption(clip)]
        if not with_caption:
            return
        dtype = next(model.parameters()).dtype
        videos, texts = [], []
        bs = self.cfg.batch_size
        with torch.inference_mode():
            for i in range(0, len(with_caption), bs):
                chunk = with_caption[i : i + bs]
                size = model.config.image_size  # frames are served at 224x224
                x = torch.stack([frames_to_tensor(fr, size) for _, fr in chunk])  # (B, 8, 3, S, S)
                videos.append(model.encode_video(x.to(self._device, dtype), normalize=True))
                ids = tokenize([best_caption(c) for c, _ in chunk]).to(self._device)
                texts.append(model.encode_text(ids, normalize=True))
            v = torch.cat(videos).float()
            t = torch.cat(texts).float()
            sims = (v @ t.T).cpu().numpy()  # (N videos, N captions)
        pct = caption_percentiles(sims)
        for k, (clip, _) in enumerate(with_caption):
            clip.scores["viclip_sim"] = round(float(sims[k, k]), 4)
            if pct[k] is not None:
                clip.scores["viclip_sim_pct"] = round(pct[k], 4)
