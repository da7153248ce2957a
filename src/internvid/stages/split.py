"""Split stage: one decode pass gives the clips, their motion scores and the frames stages need."""

from __future__ import annotations

import logging

from internvid.config import SplitConfig
from internvid.engine import Context, Sample, Stage, StageError
from internvid.media.onepass import FrameNeed, OnePass, PassClip
from internvid.media.scenes import detector_factory
from internvid.records import Clip, make_clip_id

log = logging.getLogger(__name__)


class SplitStage(Stage):
    """Turns a probed video into clips at shot boundaries, in a single decode pass.

    The pass also computes each clip's motion scores (`motion`, `frozen`) and keeps the frames
    that later stages declared (`Stage.frame_needs`), in `sample.payload["frames"][clip_id]`.
    Videos whose clips were given by the input (InternVid metadata rows) keep them: their times
    are checked against the video's duration and nothing is detected.
    """

    name = "split"
    needs = frozenset({"probe"})
    provides = frozenset({"clips", "frames"})

    def __init__(self, cfg: SplitConfig):
        self.cfg = cfg
        self.frame_requests: tuple[FrameNeed, ...] = ()  # filled in by the pipeline

    def request_frames(self, needs: tuple[FrameNeed, ...]) -> None:
        names = [n.name for n in needs]
        if len(set(names)) != len(names):
            raise ValueError(f"two frame needs share a name: {sorted(names)}")
        self.frame_requests = tuple(needs)
        if needs and self.cfg.max_clip_seconds is None:
            log.warning(
                "frames are requested and split.max_clip_seconds is None: memory grows with the longest scene"
            )

    def setup(self) -> None:
        """Resolve the detector (fails early when e.g. TransNetV2 is not installed)."""
        c = self.cfg
        self._factory = detector_factory(
            c.detector, c.threshold, c.min_scene_len, c.adaptive_threshold, c.transnet_threshold
        )

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_factory", None)  # a closure: rebuilt by setup() in the worker
        return state

    def _pass(self, fps: float) -> OnePass:
        c = self.cfg
        if "_factory" not in self.__dict__:
            self.setup()
        max_s = c.stride_seconds if c.detector == "stride" else c.max_clip_seconds
        return OnePass(
            self._factory,
            min_frames=max(1, round(c.min_clip_seconds * fps - 1e-6)),
            max_frames=None if max_s is None else max(1, round(max_s * fps)),
            needs=self.frame_requests,
            fast_decode=c.fast_decode,
        )

    def process_one(self, sample: Sample, ctx: Context) -> Sample | None:
        v = sample.video
        given = bool(sample.clips)
        try:
            if given:
                kept = self._check_given(sample, ctx)
                ranges = [c.frame_range(v.fps) for c in kept]
                result = self._pass(v.fps).run_given(v.path, ranges) if kept else None
            else:
                result = self._pass(v.fps).run(v.path)
        except Exception as e:
            raise StageError("decode_error", f"decoding failed: {type(e).__name__}: {e}") from e
        if result is not None and result.frames_read == 0:
            raise StageError("undecodable", "the decoder returned no frames")
        if given:
            sample.clips = kept
            if result:
                for clip, pc in zip(kept, result.clips, strict=True):
                    self._attach(sample, clip, pc, result.fps)
        else:
            for a, b in result.short_pieces:
                ctx.drop(
                    "clip_too_short",
                    sample=sample,
                    item=make_clip_id(
                        v.id, round(a / result.fps * 1000), round(b / result.fps * 1000)
                    ),
                    span=(a / result.fps, b / result.fps),
                    values={
                        "duration": round((b - a) / result.fps, 6),
                        "min_clip_seconds": self.cfg.min_clip_seconds,
                        "start_frame": a,
                        "end_frame": b,
                    },
                )
            for pc in result.clips:
                clip = Clip.new(
                    v.id,
                    pc.start / result.fps,
                    pc.end / result.fps,
                    source=v.source,
                    fps=result.fps,
                )
                clip.meta["scenes_in_video"] = len(result.scenes)
                self._attach(sample, clip, pc, result.fps)
                sample.clips.append(clip)
        if not sample.clips:
            scenes = len(result.scenes) if result else 0
            ctx.drop("no_clips", sample=sample, values={"scenes": scenes, "given": given})
            return None
        return sample

    @staticmethod
    def _attach(sample: Sample, clip: Clip, pc: PassClip, fps: float) -> None:
        clip.fps = clip.fps or fps
        clip.meta["start_frame"], clip.meta["end_frame"] = pc.start, pc.end
        clip.scores["motion"] = round(pc.motion, 4)
        clip.scores["frozen"] = round(pc.frozen, 4)
        if pc.frames:
            sample.payload.setdefault("frames", {})[clip.clip_id] = pc.frames
            sample.payload.setdefault("frame_indices", {})[clip.clip_id] = pc.frame_indices

    def _check_given(self, sample: Sample, ctx: Context) -> list[Clip]:
        v = sample.video
        keep = []
        for clip in sample.clips:
            if clip.end <= clip.start:
                ctx.fail(
                    sample,
                    "empty_range",
                    f"clip ends at {clip.end:.3f} s, not after its start {clip.start:.3f} s",
                    item=clip.clip_id,
                )
            elif clip.duration < self.cfg.min_clip_seconds:
                ctx.drop(
                    "clip_too_short",
                    sample=sample,
                    clip=clip,
                    values={
                        "duration": round(clip.duration, 6),
                        "min_clip_seconds": self.cfg.min_clip_seconds,
                    },
                )
            elif clip.end <= v.duration + 1.0 / v.fps:
                keep.append(clip)
            else:
                ctx.fail(
                    sample,
                    "clip_out_of_range",
                    f"clip ends at {clip.end:.3f} s, video lasts {v.duration:.3f} s",
                    item=clip.clip_id,
                )
        return keep
