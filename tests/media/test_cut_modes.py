"""The other cut modes: "copy" (stream copy from keyframes, measured shifts) and "none" (no files)."""

from __future__ import annotations

import itertools
import logging
import time

import av
import numpy as np
import pytest

from internvid.config import CutConfig
from internvid.engine import Sample
from internvid.media.cut import CutSpec, boundary_shift_summary, cut_copy, cut_exact, read_packets
from internvid.records import Clip, Video
from internvid.stages.cut import CutStage

log = logging.getLogger(__name__)

FPS = 25.0
GOP = 2.0  # the demo videos have a keyframe at least every 2 s (-g 50)
MAX_B_RUN = 3  # x264 --bframes 3: a copied file can hold at most 3 frames past the clip's end


def decode(path) -> tuple[list[np.ndarray], list[float]]:
    """All frames (rgb) and the times of the keyframes, decoded (independent of `read_packets`)."""
    frames, keys = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if f.key_frame:
                keys.append(f.time)
    return frames, keys


def keyframe_at_or_before(keys: list[float], t: float) -> float:
    return max(k for k in keys if k <= t + 1e-6)


def audio_seconds(path) -> float:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return float(a.duration * a.time_base)


# demo_a: cuts at frames 100, 250, 265 of 350; keyframes every 2 s (frames 0, 50, 100, ...)
RANGES_A = [(0, 100), (100, 180), (180, 250), (265, 350), (52, 77), (90, 130)]


@pytest.fixture(scope="module")
def copied_a(demo_videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("copy_a")
    return cut_copy(demo_videos / "demo_a.mp4", RANGES_A, FPS, out)


def test_keyframes_from_packets_match_decoded_keyframes(demo_videos):
    for name in ("demo_a", "demo_d"):
        _, keys = decode(demo_videos / f"{name}.mp4")
        got = read_packets(demo_videos / f"{name}.mp4").keyframe_times
        assert got == pytest.approx(keys)
        assert max(b - a for a, b in itertools.pairwise(got)) <= GOP + 1e-9


def test_copy_starts_on_keyframe_and_covers_clip(demo_videos, copied_a):
    source, keys = decode(demo_videos / "demo_a.mp4")
    for (a, b), cut in zip(RANGES_A, copied_a, strict=True):
        kf = keyframe_at_or_before(keys, a / FPS)
        k = round(kf * FPS)
        got, _ = decode(cut.path)
        # stream copy: the decoded frames are bit-identical to the source's, from the keyframe on
        assert np.array_equal(got[0], source[k]), cut.path.name
        assert all(np.array_equal(g, source[k + i]) for i, g in enumerate(got)), "no gap"
        assert len(got) == cut.frames
        # the file covers the clip; B-frame reordering may add a few frames at the end
        assert k <= a and k + len(got) >= b
        assert 0 <= k + len(got) - b <= MAX_B_RUN
        assert cut.file_start == pytest.approx(kf)
        assert cut.file_end == pytest.approx((k + len(got)) / FPS)
        assert cut.start_shift == pytest.approx(a / FPS - kf)
        assert 0 <= cut.start_shift < GOP
        assert cut.end_shift == pytest.approx(cut.file_end - b / FPS)
        if a % 50 == 0:  # the clip starts on a keyframe
            assert cut.start_shift == 0.0
    shifts = [(c.start_shift, round(c.end_shift * FPS)) for c in copied_a]
    log.info("demo_a copy: (start shift s, extra end frames) %s", shifts)
    print("demo_a copy shifts (s, extra end frames):", shifts)


def test_copy_keeps_audio(copied_a):
    for cut in copied_a:
        with av.open(str(cut.path)) as c:
            assert c.streams.audio, "audio kept"
        # the audio spans the file's video (AAC frames are 21 ms)
        assert audio_seconds(cut.path) == pytest.approx(cut.file_end - cut.file_start, abs=0.1)


def test_copy_without_audio(demo_videos, tmp_path):
    src = demo_videos / "demo_d.mp4"  # keyframes at 0, 2, 3.88, 5, 7, 9, 11 s
    (cut,) = cut_copy(src, [(130, 200)], FPS, tmp_path, audio=False)
    with av.open(str(cut.path)) as c:
        assert not c.streams.audio
    assert cut.file_start == pytest.approx(keyframe_at_or_before(decode(src)[1], 130 / FPS))
    assert cut.start_shift == pytest.approx(0.2)


def test_copy_faster_than_exact(demo_videos, tmp_path):
    src = demo_videos / "demo_b.mp4"
    ranges = [(0, 100), (100, 275), (275, 375)]
    t0 = time.perf_counter()
    cut_exact(src, ranges, FPS, tmp_path / "exact", CutSpec())
    t1 = time.perf_counter()
    cut_copy(src, ranges, FPS, tmp_path / "copy")
    t2 = time.perf_counter()
    log.info("demo_b, 3 clips: exact %.3f s, copy %.3f s", t1 - t0, t2 - t1)
    print(f"demo_b, 3 clips: exact {t1 - t0:.3f} s, copy {t2 - t1:.3f} s")


def test_boundary_shift_summary(copied_a):
    s = boundary_shift_summary(copied_a)
    starts = [c.start_shift for c in copied_a]
    assert s["count"] == len(copied_a)
    assert s["mean"] == pytest.approx(sum(starts) / len(starts), abs=1e-6)
    assert s["max"] == pytest.approx(max(starts))
    assert s["end_max"] <= MAX_B_RUN / FPS + 1e-6
    assert boundary_shift_summary([Clip.new("v", 0.0, 1.0)])["count"] == 0


def _sample(src, name="demo_a") -> Sample:
    v = Video(
        id=name, source=str(src), path=str(src), duration=14.0, fps=25.0, width=320, height=240
    )
    clips = [
        Clip.new(name, 0.0, 4.0, fps=25.0),
        Clip.new(name, 2.0, 6.0, fps=25.0),  # overlaps the first
        Clip.new(name, 4.0, 5.0, fps=25.0),
        Clip.new(name, 7.2, 9.6, fps=25.0),  # starts 1.2 s after the keyframe at 6 s
    ]
    return Sample(v, clips=clips)


def _run(mode: str, sample: Sample, scratch):
    stage = CutStage(CutConfig(mode=mode), scratch)
    stats, failures = stage.new_stats(), []
    out = stage.run_batch([sample], stats, failures)
    assert not failures, failures
    assert stats.items_out == 1 and stats.clips_out == len(sample.clips)
    return out[0]


def test_stage_copy_mode(demo_videos, tmp_path):
    src = demo_videos / "demo_a.mp4"
    source, keys = decode(src)
    out = _run("copy", _sample(src), tmp_path)
    expected_shift = {0.0: 0.0, 2.0: 0.0, 4.0: 0.0, 7.2: 1.2}
    for c in out.clips:
        assert c.status == "cut"
        assert (c.start, c.end) in {(0.0, 4.0), (2.0, 6.0), (4.0, 5.0), (7.2, 9.6)}  # kept
        assert (c.width, c.height, c.fps) == (320, 240, 25.0)
        kf = keyframe_at_or_before(keys, c.start)
        assert c.meta["file_start"] == pytest.approx(kf)
        assert c.meta["start_shift"] == pytest.approx(c.start - kf)
        assert c.meta["start_shift"] == pytest.approx(expected_shift[c.start])
        assert c.meta["file_end"] >= c.end - 1e-6
        assert c.meta["end_shift"] == pytest.approx(c.meta["file_end"] - c.end)
        got, _ = decode(out.files[c.clip_id])
        assert np.array_equal(got[0], source[round(kf * FPS)])
        assert len(got) == round((c.meta["file_end"] - c.meta["file_start"]) * FPS)
    s = boundary_shift_summary(out.clips)
    assert s["count"] == 4 and s["max"] == pytest.approx(1.2) and s["mean"] == pytest.approx(0.3)


def test_stage_exact_mode(demo_videos, tmp_path):
    src = demo_videos / "demo_a.mp4"
    out = _run("exact", _sample(src), tmp_path)
    for c in out.clips:
        assert c.status == "cut" and "start_shift" not in c.meta
        got, _ = decode(out.files[c.clip_id])
        assert len(got) == round(c.end * FPS) - round(c.start * FPS)


def test_stage_none_mode(demo_videos, tmp_path):
    src = demo_videos / "demo_a.mp4"
    out = _run("none", _sample(src), tmp_path)
    assert out.files == {}
    assert not any(tmp_path.iterdir()), "no files written"
    for c in out.clips:
        assert c.status == "split"
        assert (c.width, c.height, c.fps) == (320, 240, 25.0)
        assert c.meta["start_frame"] == round(c.start * FPS)
        assert c.meta["end_frame"] == round(c.end * FPS)
        assert "start_shift" not in c.meta


@pytest.mark.integration
def test_copy_on_real_video(real_videos, tmp_path):
    src = real_videos / "cosmos_clip_10s.mp4"
    if not src.exists():
        pytest.skip(f"{src} not found")
    with av.open(str(src)) as c:
        fps = float(c.streams.video[0].average_rate)
    source, keys = decode(src)
    n = len(source)
    ranges = [(0, 48), (48, 120), (100, 180), (180, n)]
    cuts = cut_copy(src, ranges, fps, tmp_path)
    for (a, b), cut in zip(ranges, cuts, strict=True):
        kf = keyframe_at_or_before(keys, a / fps)
        k = round(kf * fps)
        got, _ = decode(cut.path)
        assert np.array_equal(got[0], source[k])
        assert all(np.array_equal(g, source[k + i]) for i, g in enumerate(got))
        assert k <= a and k + len(got) >= b
        assert cut.start_shift == pytest.approx(a / fps - kf)
    shifts = [(round(c.start_shift, 3), round(c.end_shift, 3)) for c in cuts]
    summary = boundary_shift_summary(cuts)
    log.info("cosmos copy: keyframes %s, shifts %s, summary %s", keys, shifts, summary)
    print(f"cosmos_clip_10s copy: keyframes {keys}, (start, end) shifts {shifts}, {summary}")


def test_copy_when_seek_lands_after_keyframe(demo_videos, tmp_path, monkeypatch):
    """A -ss past the keyframe gives it a negative pts (an edit list would hide it): shifted."""
    from internvid.media.cut import VideoPackets

    seek_arg = VideoPackets.seek_arg
    monkeypatch.setattr(
        VideoPackets, "seek_arg", lambda self, pts: f"{float(seek_arg(self, pts)) + 0.001:.6f}"
    )
    src = demo_videos / "demo_a.mp4"
    (cut,) = cut_copy(src, [(180, 250)], FPS, tmp_path)
    source, _ = decode(src)
    got, _ = decode(cut.path)
    assert cut.file_start == pytest.approx(6.0) and np.array_equal(got[0], source[150])
    assert len(got) == cut.frames == 100
