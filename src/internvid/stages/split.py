"""Split stage: scene boundaries (PySceneDetect) and the clip-length policy give the clips."""

from __future__ import annotations

from internvid.config import SplitConfig
from internvid.engine import Context, Sample, Stage, StageError
from internvid.media.scenes import clip_policy, detect_content_scenes
from internvid.records import Clip


class SplitStage(Stage):
    """Turns a probed video into clips at scene cuts.

    Videos whose clips were given by the input (InternVid metadata rows) keep them: their
    times are checked against the video's duration and nothing is detected.
    """

    name = "split"
    needs = frozenset({"probe"})
    provides = frozenset({"clips"})

    def __init__(self, cfg: SplitConfig):
        self.cfg = cfg

    def process_one(self, sample: Sample, ctx: Context) -> Sample | None:
        v = sample.video
        if sample.clips:  # given by metadata
            return self._check_given(sample, ctx)
        if self.cfg.detector == "none":
            scenes, fps = [(0, max(1, round(v.duration * v.fps)))], v.fps
        else:
            try:
                found = detect_content_scenes(v.path, self.cfg.threshold, self.cfg.min_scene_len)
            except Exception as e:
                raise StageError("decode_error", f"scene detection failed: {e}") from e
            if found.frames_read == 0:
                raise StageError("undecodable", "the decoder returned no frames")
            scenes, fps = found.scenes, found.fps
        kept, dropped = clip_policy(
            scenes, fps, self.cfg.min_clip_seconds, self.cfg.max_clip_seconds
        )
        if dropped:
            ctx.drop("clip_too_short", dropped)
        for a, b in kept:
            sample.clips.append(
                Clip.new(
                    v.id,
                    a / fps,
                    b / fps,
                    source=v.source,
                    fps=fps,
                    meta={"start_frame": a, "end_frame": b, "scenes_in_video": len(scenes)},
                )
            )
        if not sample.clips:
            ctx.drop("no_clips")
            return None
        return sample

    def _check_given(self, sample: Sample, ctx: Context) -> Sample | None:
        v = sample.video
        keep = []
        for clip in sample.clips:
            clip.fps = clip.fps or v.fps
            if clip.end <= v.duration + 1.0 / v.fps:
                keep.append(clip)
            else:
                ctx.fail(
                    sample,
                    "clip_out_of_range",
                    f"clip ends at {clip.end:.3f} s, video lasts {v.duration:.3f} s",
                    item=clip.clip_id,
                )
        sample.clips = keep
        if not keep:
            ctx.drop("no_clips")
            return None
        return sample
