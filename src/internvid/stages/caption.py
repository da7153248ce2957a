"""Caption stages: frame captions at 1 fps and a middle-frame caption, then their fusion into one."""

from __future__ import annotations

import logging
import time
from typing import Any

from internvid.caption.captioner import ImageCaptioner
from internvid.caption.clean import caption_language, clean_caption
from internvid.caption.fusion import Fuser, fusion_input
from internvid.caption.presets import CaptionModels
from internvid.config import CaptionConfig
from internvid.engine import Context, Resources, Sample, Stage
from internvid.media.onepass import FrameNeed

log = logging.getLogger(__name__)

MIDDLE = "caption_middle"  # frame need: the clip's middle frame (coarse scale)
FINE = "caption_fine"  # frame need: frames at caption.fine_fps (fine scale)


class CaptionStage(Stage):
    """Captions each clip's middle frame (coarse) and its frames at 1 fps (fine), batched across
    every clip of the batch; one generate() call per `caption.batch_size` images. When both scales
    use the same model it loads once and a frame picked by both is captioned once.

    Writes `clip.captions["coarse"]`, `clip.frame_captions` (cleaned, in temporal order) and the
    frames' offsets from the clip start in `clip.meta["frame_caption_times"]`.
    """

    name = "caption"
    unit = "clip"
    needs = frozenset({"clips"})
    provides = frozenset({"captions"})
    batch_size = 64  # videos per batch: all their clips' frames are captioned together

    def __init__(self, cfg: CaptionConfig, models: CaptionModels, paths: dict[str, str]):
        self.cfg = cfg
        self.models = models  # which models (names as configured)
        self.paths = paths  # name -> what from_pretrained gets (resolved before the run)
        self.resources = Resources.for_device(cfg.device)
        self.frame_needs = (
            FrameNeed(MIDDLE, "middle", short_side=cfg.frame_size),
            FrameNeed(FINE, "fps", cfg.fine_fps, short_side=cfg.frame_size),
        )
        self._captioners: dict[str, ImageCaptioner] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_captioners"] = {}  # models load again in the worker (setup)
        return state

    def setup(self) -> None:
        from internvid.hub import pick_device, pick_dtype

        c = self.cfg
        device = pick_device(c.device)
        dtype = pick_dtype(c.dtype, device)
        for name in (self.models.coarse, self.models.fine):
            if name not in self._captioners:
                self._captioners[name] = ImageCaptioner(
                    self.paths[name],
                    device=device,
                    dtype=dtype,
                    batch_size=c.batch_size,
                    max_new_tokens=c.max_new_tokens,
                    num_beams=c.num_beams,
                    cache_dir=c.cache_dir,
                ).load()

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if not self._captioners:
            self.setup()
        # every image to caption, per model: (model, key) -> image, key = (clip_id, frame number)
        jobs: dict[str, dict[tuple[str, int], Any]] = {}
        plan = []  # (clip, middle key, fine keys, fps)
        for sample in batch:
            frames = sample.payload.get("frames", {})
            indices = sample.payload.get("frame_indices", {})
            for clip in sample.clips:
                f, idx = frames.get(clip.clip_id, {}), indices.get(clip.clip_id, {})
                if not f.get(MIDDLE):
                    ctx.fail(sample, "no_frames", "no frames were served", item=clip.clip_id)
                    continue
                mid_k = (clip.clip_id, idx.get(MIDDLE, [-1])[0])
                fine_k = [(clip.clip_id, k) for k in idx.get(FINE, range(len(f.get(FINE, []))))]
                jobs.setdefault(self.models.coarse, {})[mid_k] = f[MIDDLE][0]
                fine_jobs = jobs.setdefault(self.models.fine, {})
                for key, img in zip(fine_k, f.get(FINE, []), strict=True):
                    fine_jobs[key] = img
                plan.append((clip, mid_k, fine_k))
        t0 = time.perf_counter()
        captions: dict[str, dict[tuple[str, int], str]] = {}
        for name, images in jobs.items():
            keys = list(images)
            raw = self._captioners[name].caption([images[k] for k in keys])
            captions[name] = {k: clean_caption(t) for k, t in zip(keys, raw, strict=True)}
        n = sum(len(v) for v in jobs.values())
        if n:
            log.debug("captioned %d images in %.2f s", n, time.perf_counter() - t0)
        done: set[str] = set()
        for clip, mid_k, fine_k in plan:
            clip.captions["coarse"] = captions[self.models.coarse][mid_k]
            clip.frame_captions = [captions[self.models.fine][k] for k in fine_k]
            fps = clip.fps or 25.0
            start = clip.meta.get("start_frame", round(clip.start * fps))
            clip.meta["frame_caption_times"] = [round((k - start) / fps, 3) for _, k in fine_k]
            clip.meta["caption_lang"] = caption_language(clip.captions["coarse"])
            done.add(clip.clip_id)
        for sample in batch:  # clips that failed leave the sample; the others go on
            sample.clips = [c for c in sample.clips if c.clip_id in done]
        return [s for s in batch if s.clips]


class FuseStage(Stage):
    """Fuses each clip's frame captions (consecutive near-duplicates collapsed, temporal order)
    and middle-frame caption into one caption with a language model, batched across clips.

    Writes `clip.captions["fused"]` (cleaned) and `clip.meta["caption_lang"]`.
    """

    name = "fuse"
    unit = "clip"
    needs = frozenset({"captions"})
    provides = frozenset({"fused_caption"})
    batch_size = 64

    def __init__(self, cfg: CaptionConfig, models: CaptionModels, paths: dict[str, str]):
        self.cfg = cfg
        self.models = models
        self.paths = paths
        self.resources = Resources.for_device(cfg.device)
        self._fuser: Fuser | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fuser"] = None
        return state

    def setup(self) -> None:
        from internvid.hub import pick_device, pick_dtype

        c = self.cfg
        device = pick_device(c.device)
        self._fuser = Fuser(
            self.paths[self.models.fusion_model],
            self.models.fusion,
            device=device,
            dtype=pick_dtype(c.dtype, device),
            batch_size=c.fusion_batch_size,
            max_new_tokens=c.fusion_max_new_tokens,
            num_beams=c.num_beams,
            cache_dir=c.cache_dir,
        ).load()

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if self._fuser is None:
            self.setup()
        clips = [c for s in batch for c in s.clips]
        inputs = [
            fusion_input(
                c.frame_captions, c.captions.get("coarse", ""), self.cfg.collapse_similarity
            )
            for c in clips
        ]
        fused = self._fuser.fuse(inputs) if inputs else []
        for clip, text in zip(clips, fused, strict=True):
            caption = clean_caption(text)
            if not caption:  # the model said nothing usable: the middle-frame caption stands in
                caption = clip.captions.get("coarse", "")
                clip.meta["fusion_empty"] = True
            clip.captions["fused"] = caption
            clip.meta["caption_lang"] = caption_language(caption)
        return batch
