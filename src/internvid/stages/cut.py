"""Cut stage: write each clip as its own mp4 (frame-exact, re-encoded), ready for the shard."""

from __future__ import annotations

import shutil
from pathlib import Path

import av

from internvid.config import CutConfig
from internvid.engine import Context, Sample, Stage, StageError
from internvid.media.cut import CutSpec, cut_exact
from internvid.media.ffmpeg import FFmpegError
from internvid.stages.collect import display_size


def layers(ranges: list[tuple[int, int]]) -> list[list[int]]:
    """Group range indices into layers of non-overlapping ranges (greedy interval partitioning).

    Clips from scene splitting never overlap (one layer, one ffmpeg pass); clips given by
    metadata may, and each extra layer costs one more pass.
    """
    out: list[list[int]] = []
    ends: list[int] = []
    for i in sorted(range(len(ranges)), key=lambda i: ranges[i]):
        a, b = ranges[i]
        k = next((k for k, end in enumerate(ends) if end <= a), None)
        if k is None:
            out.append([i])
            ends.append(b)
        else:
            out[k].append(i)
            ends[k] = b
    return out


def clip_frames(clip, fps: float) -> tuple[int, int]:
    """The clip's frame range: from the splitter's meta, else its times rounded to frames."""
    if "start_frame" in clip.meta and "end_frame" in clip.meta:
        return int(clip.meta["start_frame"]), int(clip.meta["end_frame"])
    return round(clip.start * fps), max(round(clip.end * fps), round(clip.start * fps) + 1)


class CutStage(Stage):
    """Cuts every clip of a video in one ffmpeg pass into `scratch/VIDEO_ID/`."""

    name = "cut"
    needs = frozenset({"local_file", "probe", "clips"})
    provides = frozenset({"clip_files"})

    def __init__(self, cfg: CutConfig, scratch: str | Path):
        self.cfg = cfg
        self.scratch = Path(scratch)
        self.spec = CutSpec(
            codec=cfg.codec,
            crf=cfg.crf,
            preset=cfg.preset,
            max_height=cfg.max_height,
            audio=cfg.audio,
            timeout=cfg.timeout,
        )

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        v = sample.video
        fps = sample.clips[0].fps or v.fps
        ranges = [clip_frames(c, fps) for c in sample.clips]
        out_dir = self.scratch / v.id
        shutil.rmtree(out_dir, ignore_errors=True)
        _, shown_height = display_size(v.width, v.height, v.rotation)
        files: list[Path] = [Path()] * len(ranges)
        try:
            for n, layer in enumerate(layers(ranges)):
                got = cut_exact(
                    v.path,
                    [ranges[i] for i in layer],
                    fps,
                    out_dir / f"pass{n}",
                    self.spec,
                    height=shown_height,
                )
                for i, path in zip(layer, got, strict=True):
                    files[i] = path
        except (FFmpegError, RuntimeError, ValueError) as e:
            raise StageError("cut_failed", str(e)) from e
        with av.open(str(files[0])) as c:
            width, height = (
                c.streams.video[0].codec_context.width,
                c.streams.video[0].codec_context.height,
            )
        for clip, path, (a, b) in zip(sample.clips, files, ranges, strict=True):
            clip.width, clip.height, clip.fps = width, height, fps
            clip.meta.setdefault("start_frame", a)
            clip.meta.setdefault("end_frame", b)
            clip.status = "cut"
            sample.files[clip.clip_id] = str(path)
        return sample
