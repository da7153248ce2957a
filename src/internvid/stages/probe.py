"""Probe stage: fill in the Video's stream facts, or fail the item with a reason."""

from __future__ import annotations

from internvid.engine import Context, Sample, Stage, StageError
from internvid.media.probe import probe


class ProbeStage(Stage):
    """Reads duration, fps, size, codec, audio and rotation with PyAV (decodes one frame)."""

    name = "probe"
    needs = frozenset({"video", "local_file"})
    provides = frozenset({"probe"})

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        video = sample.video
        if not video.path:
            raise StageError("missing_file", f"no local file for {video.source}")
        r = probe(video.path)
        video.duration, video.fps, video.num_frames = r.duration, r.fps, r.num_frames
        video.width, video.height, video.codec = r.width, r.height, r.codec
        video.has_audio, video.rotation, video.size_bytes = r.has_audio, r.rotation, r.size_bytes
        ctx.probed(sample)
        return sample
