"""Cutting: one ffmpeg pass, clips hold exactly the source frames of their range."""

from __future__ import annotations

import av
import numpy as np
import pytest

from internvid.media.cut import CutSpec, cut_exact


def frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


def is_source_frame(frame: np.ndarray, source: list[np.ndarray], index: int) -> bool:
    """True when source frame `index` is (one of) the closest to `frame` among its +-2 neighbours.

    Moving content makes the match unique; a still segment ties, which is fine.
    """
    cands = range(max(0, index - 2), min(len(source), index + 3))
    dist = {i: np.abs(source[i] - frame).mean() for i in cands}
    return dist[index] <= min(dist.values()) + 1e-9 and dist[index] < 10.0  # re-encoding noise


def test_clips_are_frame_exact(demo_videos, tmp_path):
    src = demo_videos / "demo_a.mp4"  # cuts at frames 100, 250, 265 of 350
    ranges = [(0, 100), (100, 180), (180, 250), (265, 350)]  # a gap: the 15-frame scene is skipped
    files = cut_exact(src, ranges, 25.0, tmp_path, CutSpec(audio=True))
    source = frames(src)
    for (a, b), f in zip(ranges, files, strict=True):
        got = frames(f)
        assert len(got) == b - a, f.name
        # first and last frames are the source's frames a and b-1 (testsrc2/mandelbrot move every frame)
        assert is_source_frame(got[0], source, a)
        assert is_source_frame(got[-1], source, b - 1)
        with av.open(str(f)) as c:
            assert c.streams.audio, "audio kept"
            assert float(c.streams.video[0].average_rate) == 25.0


def test_order_is_kept_and_seek_start(demo_videos, tmp_path):
    src = demo_videos / "demo_d.mp4"  # cuts at 50, 125, 140, 240 of 325
    ranges = [(240, 325), (50, 125)]  # unsorted, first clip does not start at 0
    files = cut_exact(src, ranges, 25.0, tmp_path, CutSpec(audio=False))
    source = frames(src)
    for (a, b), f in zip(ranges, files, strict=True):
        got = frames(f)
        assert len(got) == b - a
        assert is_source_frame(got[0], source, a)


def test_scale_down_to_max_height(demo_videos, tmp_path):
    files = cut_exact(
        demo_videos / "demo_c.mp4", [(0, 50)], 25.0, tmp_path, CutSpec(max_height=120), height=240
    )
    with av.open(str(files[0])) as c:
        s = c.streams.video[0].codec_context
        assert (s.width, s.height) == (160, 120)


def test_overlapping_ranges_rejected(demo_videos, tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        cut_exact(demo_videos / "demo_c.mp4", [(0, 50), (40, 80)], 25.0, tmp_path, CutSpec())


def test_layers_split_overlapping_ranges():
    from internvid.stages.cut import layers

    assert layers([(0, 10), (10, 20), (20, 30)]) == [[0, 1, 2]]
    # 1 overlaps 0; 2 fits after 0 in the first layer; 3 overlaps both open layers
    assert layers([(0, 10), (5, 15), (10, 20), (12, 18)]) == [[0, 2], [1], [3]]
    assert layers([]) == []


def test_overlapping_metadata_clips_are_all_cut(demo_videos, tmp_path):
    from internvid.config import CutConfig
    from internvid.engine import Sample
    from internvid.records import Clip, Video
    from internvid.stages.cut import CutStage

    src = demo_videos / "demo_a.mp4"
    v = Video(
        id="demo_a", source=str(src), path=str(src), duration=14.0, fps=25.0, width=320, height=240
    )
    clips = [
        Clip.new("demo_a", 0.0, 4.0, fps=25.0),
        Clip.new("demo_a", 2.0, 6.0, fps=25.0),
        Clip.new("demo_a", 4.0, 5.0, fps=25.0),
    ]
    stage = CutStage(CutConfig(), tmp_path)
    stats, failures = stage.new_stats(), []
    out = stage.run_batch([Sample(v, clips=clips)], stats, failures)
    assert not failures
    source = frames(src)
    for c in out[0].clips:
        got = frames(out[0].files[c.clip_id])
        a, b = round(c.start * 25), round(c.end * 25)
        assert len(got) == b - a and is_source_frame(got[0], source, a), c.clip_id
