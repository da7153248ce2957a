"""Caption stages: frame captions at 1 fps and a middle-frame caption, then their fusion into one."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from internvid.caption import prompts
from internvid.caption.backend import Captioner, Reply, Request
from internvid.caption.clean import caption_language, clean_caption
from internvid.caption.factory import make_captioner
from internvid.caption.fusion import fusion_input, fusion_request
from internvid.caption.presets import CaptionModels
from internvid.config import CaptionConfig
from internvid.engine import Context, Resources, Sample, Stage
from internvid.media.onepass import FrameNeed

log = logging.getLogger(__name__)

MIDDLE = "caption_middle"  # frame need: the clip's middle frame (coarse scale, one frame)
COARSE = "caption_coarse"  # frame need: coarse_frames frames of the clip (a video VLM)
FINE = "caption_fine"  # frame need: frames at caption.fine_fps (fine scale)
JOBS = "caption_jobs"  # payload key: a sample's prepared requests per model (CaptionPrepStage)
PLANS = "caption_plans"  # payload key: its clips' plans (which requests answer which clip)


def make_stage_captioner(cfg: CaptionConfig, name: str, path: str, fusion: bool) -> Captioner:
    """The configured backend for model `name` (`path`: where it was found; the name itself
    for the openai backend, whose server holds the model)."""
    from internvid.hub import pick_device, pick_dtype

    hf_side = cfg.backend != "openai"
    device = pick_device(cfg.device) if hf_side else "cpu"
    api = cfg
    if fusion and cfg.fusion_api_base:
        api = dataclasses.replace(cfg, api_base=cfg.fusion_api_base)
    return make_captioner(
        cfg.backend,
        name,
        path,
        device=device,
        dtype=pick_dtype(cfg.dtype, device) if hf_side else None,
        batch_size=cfg.fusion_batch_size if fusion else cfg.batch_size,
        max_new_tokens=cfg.fusion_max_new_tokens if fusion else cfg.max_new_tokens,
        num_beams=cfg.num_beams,
        cache_dir=cfg.cache_dir,
        api=api,
    )


def frame_captioners(
    cfg: CaptionConfig, models: CaptionModels, paths: dict[str, str], load: bool
) -> dict[str, Captioner]:
    """The coarse and fine captioners by name (one when both scales use the same model);
    `load`: with their models (the caption stage), else for `prepare` only (caption_prep)."""
    out: dict[str, Captioner] = {}
    for name in (models.coarse, models.fine):
        if name and name not in out:
            c = make_stage_captioner(cfg, name, paths.get(name, name), fusion=False)
            out[name] = c.load() if load else c
    return out


@dataclass
class _Plan:
    """One clip's requests, as positions in its sample's prepared lists."""

    clip_id: str  # the clip
    coarse: tuple[str, int]  # (model, position) of the coarse request
    fine: list[tuple[str, int]]  # per fine frame: (model, position)
    fine_frames: list[int]  # frame numbers of the fine frames


class _Requests:
    """One sample's requests per model; a single frame asked twice with one prompt is one."""

    def __init__(self) -> None:
        self.by_model: dict[str, list[Request]] = {}
        self._single: dict[tuple, tuple[str, int]] = {}  # (model, clip, frame, prompt) -> ref

    def add(self, model: str, frames: tuple, prompt: str, key: tuple | None) -> tuple[str, int]:
        """Add a request (key: (clip id, frame number) of a single frame); its (model, position)."""
        if key is not None and (model, *key, prompt) in self._single:
            return self._single[(model, *key, prompt)]
        reqs = self.by_model.setdefault(model, [])
        reqs.append(Request(frames, prompt))
        ref = (model, len(reqs) - 1)
        if key is not None:
            self._single[(model, *key, prompt)] = ref
        return ref


class CaptionPrepStage(Stage):
    """The CPU half of captioning: for each clip, the coarse request (its middle frame, or
    `coarse_frames` frames for a video VLM) and one request per frame at `fine_fps`, prepared
    by each model's backend over the whole batch (images through the processor, JPEG data URLs,
    chat templates), so that the caption stage only generates. A single frame both scales ask
    the same model for is one request. The served frames it read leave the payload; each sample
    carries its prepared requests (`payload["caption_jobs"]`) and its clips' plans.
    """

    name = "caption_prep"
    unit = "clip"
    needs = frozenset({"clips"})
    provides = frozenset({"caption_jobs"})
    batch_size = 64  # videos per batch: all their clips' frames are prepared together

    def __init__(self, cfg: CaptionConfig, models: CaptionModels, paths: dict[str, str]):
        self.cfg = cfg
        self.models = models  # which models (names as configured)
        self.paths = paths  # name -> what from_pretrained gets (resolved before the run)
        self.resources = Resources(cpus=1.0)
        n = models.coarse_frames
        coarse = (
            FrameNeed(MIDDLE, "middle", short_side=cfg.frame_size)
            if n <= 1
            else FrameNeed(COARSE, "segments", n, short_side=cfg.frame_size)
        )
        fine = (FrameNeed(FINE, "fps", cfg.fine_fps, short_side=cfg.frame_size),)
        self.frame_needs = (coarse, *(fine if models.fine else ()))
        self._captioners: dict[str, Captioner] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_captioners"] = {}  # made again in the worker (setup)
        return state

    def setup(self) -> None:
        self._captioners = frame_captioners(self.cfg, self.models, self.paths, load=False)

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if not self._captioners:
            self.setup()
        m = self.models
        coarse_key = MIDDLE if m.coarse_frames <= 1 else COARSE
        coarse_prompt = prompts.coarse_prompt(m.coarse_frames)
        per_sample: list[dict[str, list[Request]]] = []
        for sample in batch:
            requests = _Requests()
            frames = sample.payload.get("frames", {})
            indices = sample.payload.get("frame_indices", {})
            plans, kept = [], []
            for clip in sample.clips:
                f, idx = frames.get(clip.clip_id, {}), indices.get(clip.clip_id, {})
                if not f.get(coarse_key):
                    ctx.fail(sample, "no_frames", "no frames were served", item=clip.clip_id)
                    continue
                cf = tuple(f[coarse_key])
                one = (clip.clip_id, idx.get(coarse_key, [-1])[0]) if len(cf) == 1 else None
                coarse = requests.add(m.coarse, cf, coarse_prompt, one)
                fine, fine_frames = [], []
                if m.fine:
                    fi = list(idx.get(FINE, range(len(f.get(FINE, [])))))
                    for k, img in zip(fi, f.get(FINE, []), strict=True):
                        key = (clip.clip_id, k)
                        fine.append(requests.add(m.fine, (img,), prompts.FRAME_PROMPT, key))
                        fine_frames.append(k)
                plans.append(_Plan(clip.clip_id, coarse, fine, fine_frames))
                kept.append(clip)
            sample.clips = kept
            sample.payload[PLANS] = plans
            for clip_frames in frames.values():  # read: they need not travel on
                for key in (MIDDLE, COARSE, FINE):
                    clip_frames.pop(key, None)
            per_sample.append(requests.by_model)
        t0 = time.perf_counter()
        n = 0
        for model, captioner in self._captioners.items():  # one prepare() per model and batch
            reqs = [r for requests in per_sample for r in requests.get(model, [])]
            n += len(reqs)
            prepared = captioner.prepare(reqs) if reqs else []
            at = 0
            for sample, requests in zip(batch, per_sample, strict=True):
                k = len(requests.get(model, []))
                sample.payload.setdefault(JOBS, {})[model] = prepared[at : at + k]
                at += k
        if n:
            log.debug("prepared %d caption requests in %.2f s", n, time.perf_counter() - t0)
        return [s for s in batch if s.clips]


class CaptionStage(Stage):
    """The accelerator half of captioning: generates every request CaptionPrepStage prepared
    (one backend call per model over the whole batch) and writes `clip.captions["coarse"]`,
    `clip.frame_captions` (cleaned, in temporal order) and the frames' offsets from the clip
    start in `clip.meta["frame_caption_times"]`. A clip whose request failed (a 4xx from a
    server, a request the model cannot take) is a failed item with the backend's reason.
    """

    name = "caption"
    unit = "clip"
    needs = frozenset({"caption_jobs"})
    provides = frozenset({"captions"})
    batch_size = 64  # videos per batch: all their clips' requests are generated together

    def __init__(self, cfg: CaptionConfig, models: CaptionModels, paths: dict[str, str]):
        self.cfg = cfg
        self.models = models
        self.paths = paths
        self.resources = (
            Resources(cpus=1.0) if cfg.backend == "openai" else Resources.for_device(cfg.device)
        )
        self._captioners: dict[str, Captioner] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_captioners"] = {}  # models load again in the worker (setup)
        return state

    def setup(self) -> None:
        self._captioners = frame_captioners(self.cfg, self.models, self.paths, load=True)

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if not self._captioners:
            self.setup()
        jobs = [s.payload.pop(JOBS, {}) for s in batch]
        t0 = time.perf_counter()
        replies: list[dict[str, list[Reply]]] = [{} for _ in batch]
        n = 0
        for model, captioner in self._captioners.items():
            prepared = [p for j in jobs for p in j.get(model, [])]
            n += len(prepared)
            out = captioner.run(prepared) if prepared else []
            at = 0
            for got, j in zip(replies, jobs, strict=True):
                k = len(j.get(model, []))
                got[model] = out[at : at + k]
                at += k
        if n:
            log.debug("captioned %d requests in %.2f s", n, time.perf_counter() - t0)
        for sample, got in zip(batch, replies, strict=True):
            by_id = {c.clip_id: c for c in sample.clips}
            done: set[str] = set()
            for plan in sample.payload.pop(PLANS, []):
                clip = by_id.get(plan.clip_id)
                if clip is None:
                    continue
                answers = [got[m][i] for m, i in (plan.coarse, *plan.fine)]
                bad = next((r for r in answers if not r.ok), None)
                if bad is not None:
                    msg = bad.message or bad.error
                    ctx.fail(sample, f"caption_{bad.error}", msg, item=clip.clip_id)
                    continue
                clip.captions["coarse"] = clean_caption(answers[0].text)
                clip.frame_captions = [clean_caption(r.text) for r in answers[1:]]
                fps = clip.fps or 25.0
                start = clip.meta.get("start_frame", round(clip.start * fps))
                times = [round((k - start) / fps, 3) for k in plan.fine_frames]
                clip.meta["frame_caption_times"] = times
                clip.meta["caption_lang"] = caption_language(clip.captions["coarse"])
                done.add(clip.clip_id)
            sample.clips = [c for c in sample.clips if c.clip_id in done]
        return [s for s in batch if s.clips]


class FuseStage(Stage):
    """Fuses each clip's frame captions (consecutive near-duplicates collapsed, temporal order)
    and coarse caption into one caption with a language model, batched across clips, through
    the configured backend (the prompt: caption/fusion.py). A failed request is the clip's
    failure; an empty answer leaves the coarse caption standing in (`meta["fusion_empty"]`).

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
        self.resources = (
            Resources(cpus=1.0) if cfg.backend == "openai" else Resources.for_device(cfg.device)
        )
        self._fuser: Captioner | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fuser"] = None
        return state

    def setup(self) -> None:
        name = self.models.fusion_model
        path = self.paths.get(name, name)
        self._fuser = make_stage_captioner(self.cfg, name, path, fusion=True).load()

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        if self._fuser is None:
            self.setup()
        assert self._fuser is not None
        pairs = [(s, c) for s in batch for c in s.clips]
        requests = [
            fusion_request(
                fusion_input(
                    c.frame_captions, c.captions.get("coarse", ""), self.cfg.collapse_similarity
                ),
                self.models.fusion,
            )
            for _, c in pairs
        ]
        replies = self._fuser.generate(requests) if requests else []
        failed: set[str] = set()
        for (sample, clip), reply in zip(pairs, replies, strict=True):
            if not reply.ok:
                ctx.fail(sample, f"fuse_{reply.error}", reply.message or reply.error, clip.clip_id)
                failed.add(clip.clip_id)
                continue
            caption = clean_caption(reply.text)
            if not caption:  # the model said nothing usable: the coarse caption stands in
                caption = clip.captions.get("coarse", "")
                clip.meta["fusion_empty"] = True
            clip.captions["fused"] = caption
            clip.meta["caption_lang"] = caption_language(caption)
        for sample in batch:
            sample.clips = [c for c in sample.clips if c.clip_id not in failed]
        return [s for s in batch if s.clips]
