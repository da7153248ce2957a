"""Cut stage: write each clip as its own mp4, ready for the shard (or no files at all).

`cut.mode` picks how: "exact" re-encodes with frame-exact boundaries (one ffmpeg pass per
layer of non-overlapping clips); "copy" stream-copies each clip from the keyframe at or before
its start (fast, no quality loss; the file's real span goes into the clip's meta); "none" writes
no files (the InternVid release style: metadata, frames decoded from the source in memory).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av

from internvid.config import CutConfig
from internvid.engine import Context, Sample, Stage, StageError
from internvid.media.cut import CutSpec, cut_copy, cut_exact
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


class CutStage(Stage):
    """Cuts every clip of a video into `scratch/VIDEO_ID/` the way `cfg.mode` says.

    exact: files hold exactly the clip's frames; status "cut".
    copy: files start on the keyframe at or before the clip (and may end a few frames after it);
      `clip.start/end` stay the requested times and `meta` gets `file_start`, `file_end` (source
      seconds the file really spans), `start_shift` (seconds the file starts before the clip:
      skip that much) and `end_shift` (seconds it runs past the clip's end); status "cut".
    none: no files, `sample.files` stays empty; status stays "split".
    """

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
            scale_flags=cfg.scale_flags,
            audio=cfg.audio,
            timeout=cfg.timeout,
        )

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        v = sample.video
        fps = sample.clips[0].fps or v.fps
        ranges = [c.frame_range(fps) for c in sample.clips]
        mode = self.cfg.mode
        if mode == "none":
            return self._no_files(sample, fps, ranges)
        out_dir = self.scratch / v.id
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            if mode == "exact":
                files = self._cut_exact(sample, fps, ranges, out_dir)
            elif mode == "copy":
                files = self._cut_copy(sample, fps, ranges, out_dir)
            else:
                raise StageError("bad_config", f"unknown cut.mode {mode!r}")
        except (FFmpegError, RuntimeError, ValueError, av.FFmpegError) as e:
            raise StageError("cut_failed", str(e)) from e
        with av.open(str(files[0])) as c:
            width, height = (
                c.streams.video[0].codec_context.width,
                c.streams.video[0].codec_context.height,
            )
        if mode == "copy":  # the copied stream keeps the source's display rotation
            width, height = display_size(width, height, v.rotation)
        for clip, path, (a, b) in zip(sample.clips, files, ranges, strict=True):
            clip.width, clip.height, clip.fps = width, height, fps
            clip.meta.setdefault("start_frame", a)
            clip.meta.setdefault("end_frame", b)
            clip.status = "cut"
            sample.files[clip.clip_id] = str(path)
        return sample

    def _cut_exact(
        self, sample: Sample, fps: float, ranges: list[tuple[int, int]], out_dir: Path
    ) -> list[Path]:
        v = sample.video
        _, shown_height = display_size(v.width, v.height, v.rotation)
        files: list[Path] = [Path()] * len(ranges)
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
        return files

    def _cut_copy(
        self, sample: Sample, fps: float, ranges: list[tuple[int, int]], out_dir: Path
    ) -> list[Path]:
        cuts = cut_copy(
            sample.video.path,
            ranges,
            fps,
            out_dir / "copy",
            audio=self.spec.audio,
            timeout=self.spec.timeout,
        )
        for clip, cut in zip(sample.clips, cuts, strict=True):
            clip.meta["file_start"] = round(cut.file_start, 6)
            clip.meta["file_end"] = round(cut.file_end, 6)
            clip.meta["start_shift"] = round(clip.start - cut.file_start, 6)
            clip.meta["end_shift"] = round(cut.file_end - clip.end, 6)
        return [cut.path for cut in cuts]

    def _no_files(self, sample: Sample, fps: float, ranges: list[tuple[int, int]]) -> Sample:
        v = sample.video
        width, height = (
            display_size(v.width, v.height, v.rotation) if v.width and v.height else (None, None)
        )
        for clip, (a, b) in zip(sample.clips, ranges, strict=True):
            clip.width, clip.height, clip.fps = width, height, fps
            clip.meta.setdefault("start_frame", a)
            clip.meta.setdefault("end_frame", b)
            clip.status = "split"
        return sample
