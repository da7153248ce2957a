"""Split: one decode pass gives PySceneDetect's cuts, the clip policy, motion scores and frames."""

from __future__ import annotations

import itertools

import av
import cv2
import numpy as np
import pytest
import scenedetect

from internvid.config import SplitConfig
from internvid.engine import Sample
from internvid.media.onepass import FrameNeed, OnePass
from internvid.media.probe import probe
from internvid.media.scenes import detector_factory
from internvid.records import Clip, Video
from internvid.stages.split import SplitStage

REAL = [
    "cosmos_clip_10s",
    "nasa_13013",
    "mmaction_test",
    "internvid_example1",
    "fades",
    "counter",
    "delayed_start",
]


def split(path, cfg: SplitConfig, needs=(), clips=()):
    r = probe(path)
    v = Video(
        id=path.stem,
        source=str(path),
        path=str(path),
        duration=r.duration,
        fps=r.fps,
        width=r.width,
        height=r.height,
    )
    stage = SplitStage(cfg)
    stage.request_frames(tuple(needs))
    stats, failures = stage.new_stats(), []
    out = stage.run_batch([Sample(v, clips=list(clips))], stats, failures)
    return out, stats, failures


def ref_starts(path) -> list[int]:
    ref = scenedetect.detect(str(path), scenedetect.ContentDetector(threshold=27, min_scene_len=15))
    return [s.frame_num for s, _ in ref] or [0]


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


# --- frame needs ----------------------------------------------------------------------------------


def test_frame_need_indices():
    assert FrameNeed("m", "middle").indices(100, 250, 25.0) == [175]
    assert FrameNeed("f", "fps", 1).indices(100, 250, 25.0) == [100, 125, 150, 175, 200, 225]
    assert FrameNeed("f2", "fps", 2).indices(0, 50, 25.0) == [0, 12, 25, 37]
    assert FrameNeed("u", "uniform", 4).indices(0, 100, 25.0) == [0, 33, 66, 99]
    # ViCLIP's evaluation sampling: the middle frame of 8 equal segments (get_frame_indices
    # "middle"); a clip under 8 frames gives each frame once, padded with its last
    assert FrameNeed("s", "segments", 8).indices(0, 40, 5.0) == [2, 7, 12, 17, 22, 27, 32, 37]
    assert FrameNeed("s", "segments", 8).indices(0, 100, 5.0) == [5, 18, 30, 43, 55, 68, 80, 93]
    assert FrameNeed("s", "segments", 8).indices(10, 14, 5.0) == [10, 11, 12, 13, 13, 13, 13, 13]
    # the official ViCLIP demo's sampling: frames[::len // 8][:8]
    assert FrameNeed("d", "strided", 8).indices(0, 100, 25.0) == list(range(100))[::12][:8]
    assert FrameNeed("d", "strided", 8).indices(5, 10, 25.0) == [5, 6, 7, 8, 9, 9, 9, 9]
    assert FrameNeed("v", "middle", width=224, height=224).size(1920, 1080) == (224, 224)
    assert FrameNeed("c", "middle", short_side=384).size(1920, 1080) == (683, 384)
    assert FrameNeed("c", "middle", short_side=384).size(320, 240) == (320, 240)
    with pytest.raises(ValueError):
        FrameNeed("x", "random")


def test_served_frames_are_the_selected_source_frames(demo_videos):
    path = demo_videos / "demo_a.mp4"  # testsrc2 and mandelbrot move every frame
    needs = (
        FrameNeed("mid", "middle"),
        FrameNeed("seg", "segments", 8, width=160, height=120),
        FrameNeed("fps", "fps", 1, short_side=120),
    )
    out, _, _ = split(path, SplitConfig(), needs)
    source = decoded(path)
    frames = out[0].payload["frames"]
    clips = out[0].clips
    assert set(frames) == {c.clip_id for c in clips}
    for c in clips[:2]:
        a, b = c.meta["start_frame"], c.meta["end_frame"]
        got = frames[c.clip_id]
        assert [f.shape for f in got["seg"]] == [(120, 160, 3)] * 8
        assert len(got["fps"]) == len(range(a, b, 25)) and got["fps"][0].shape == (120, 160, 3)
        for name, idx in (
            ("mid", needs[0].indices(a, b, 25.0)),
            ("seg", needs[1].indices(a, b, 25.0)),
        ):
            for frame, k in zip(got[name], idx, strict=True):
                h, w = frame.shape[:2]
                dist = {
                    j: np.abs(
                        cv2.resize(source[j], (w, h), interpolation=cv2.INTER_AREA).astype(int)
                        - frame
                    ).mean()
                    for j in (k - 1, k, k + 1)
                }
                assert dist[k] == min(dist.values()) and dist[k] < 6, (name, k, dist)


def test_frames_are_buffered_only_for_the_open_clip(demo_videos):
    needs = (FrameNeed("mid", "middle", short_side=64),)
    r = OnePass(detector_factory("content"), 25, 100, needs).run(
        demo_videos / "demo_c.mp4"
    )  # 300 frames
    assert [(c.start, c.end) for c in r.clips] == [(0, 100), (100, 200), (200, 300)]
    assert r.peak_buffered <= 100 + 16 + 1  # one clip + the detector's lag, not the video


def test_cuts_do_not_depend_on_the_frames_kept(tmp_path):
    """Frames kept for stages (at source size, or box-filtered by 2 or 3) change neither the
    cuts nor the motion scores, and are the selected source frames at the asked size."""
    from internvid.media.synth import Segment, SynthVideo, make_video

    spec = SynthVideo(
        "wide",
        (Segment("testsrc2", 1.2), Segment("mandelbrot", 1.0), Segment("color=c=0x3050a0", 0.8)),
        width=1280,
        height=720,
        audio=False,
    )
    path = make_video(spec, tmp_path / "wide.mp4")
    runs = [
        OnePass(detector_factory("content"), 1, None, needs, fast_decode=False).run(path)
        for needs in (
            (),
            (FrameNeed("full", "middle"),),  # kept at source size
            (FrameNeed("cap", "middle", short_side=320),),  # kept boxed by 2
            (FrameNeed("vit", "segments", 8, width=224, height=224),),  # kept boxed by 3
        )
    ]
    assert [a for a, _ in runs[0].scenes] == [0, 30, 55]
    for r in runs[1:]:
        assert r.scenes == runs[0].scenes
        assert [(c.motion, c.frozen) for c in r.clips] == [
            (c.motion, c.frozen) for c in runs[0].clips
        ]
    source = decoded(path)
    for r, shape in zip(runs[1:], [(720, 1280, 3), (320, 569, 3), (224, 224, 3)], strict=True):
        for c in r.clips:
            for frame, k in zip(
                *(next(iter(d.values())) for d in (c.frames, c.frame_indices)), strict=True
            ):
                assert frame.shape == shape
                ref = cv2.resize(source[k], shape[1::-1], interpolation=cv2.INTER_AREA)
                assert np.abs(ref.astype(int) - frame).mean() < 4, (shape, k)


# --- the clip policy --------------------------------------------------------------------------------


def test_cuts_match_known_hard_cuts_exactly(demo_videos, demo_specs):
    cfg = SplitConfig(min_clip_seconds=0.0, max_clip_seconds=None)
    for name, spec in demo_specs.items():
        out, _, failures = split(demo_videos / f"{name}.mp4", cfg)
        assert not failures
        clips = out[0].clips
        assert [c.meta["start_frame"] for c in clips] == [0, *spec.cut_frames], name
        assert clips[-1].meta["end_frame"] == spec.num_frames
        assert [round(c.start, 6) for c in clips] == [0.0, *(round(t, 6) for t in spec.cut_times)]
        assert all(a.end == b.start for a, b in itertools.pairwise(clips))


def test_default_policy_on_demo_videos(demo_videos):
    out, stats, _ = split(demo_videos / "demo_a.mp4", SplitConfig())
    # demo_a: 4 s | 6 s | 0.6 s (dropped: < 1 s) | 3.4 s
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 4.0), (4.0, 10.0), (10.6, 14.0)]
    assert stats.dropped == {"clip_too_short": 1}
    # demo_b: an 11 s shot is cut at the 10 s maximum; the 1 s rest is long enough to keep
    out, _, _ = split(demo_videos / "demo_b.mp4", SplitConfig())
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 10.0), (10.0, 11.0), (11.0, 15.0)]
    out, _, _ = split(demo_videos / "demo_b.mp4", SplitConfig(min_clip_seconds=1.5))
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 10.0), (11.0, 15.0)]


def test_stride_and_none_detectors(demo_videos):
    out, _, _ = split(
        demo_videos / "demo_a.mp4", SplitConfig(detector="stride", stride_seconds=5.0)
    )
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 5.0), (5.0, 10.0), (10.0, 14.0)]
    out, _, _ = split(
        demo_videos / "demo_a.mp4", SplitConfig(detector="none", max_clip_seconds=None)
    )
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 14.0)]


def test_adaptive_detector_finds_the_hard_cuts(demo_videos, demo_specs):
    out, _, _ = split(
        demo_videos / "demo_d.mp4",
        SplitConfig(detector="adaptive", min_clip_seconds=0, max_clip_seconds=None),
    )
    starts = [c.meta["start_frame"] for c in out[0].clips]
    assert starts == [0, *demo_specs["demo_d"].cut_frames]


def test_motion_scores(demo_videos):
    out, _, _ = split(demo_videos / "demo_d.mp4", SplitConfig())
    scores = [(c.start, c.scores["frozen"], c.scores["motion"] > 0.1) for c in out[0].clips]
    # red (still) | gradients | mandelbrot | green (still)
    assert scores == [(0.0, 1.0, False), (2.0, 0.0, True), (5.6, 0.0, True), (9.6, 1.0, False)]


def test_given_clips_get_scores_and_frames(demo_videos):
    clips = [
        Clip.new("demo_a", 1.0, 3.0, fps=25.0),
        Clip.new("demo_a", 2.0, 5.0, fps=25.0),
        Clip.new("demo_a", 11.0, 13.0, fps=25.0),
    ]
    out, _, failures = split(
        demo_videos / "demo_a.mp4", SplitConfig(), needs=(FrameNeed("mid", "middle"),), clips=clips
    )
    assert not failures
    got = out[0].clips
    assert [(c.start, c.end) for c in got] == [(1.0, 3.0), (2.0, 5.0), (11.0, 13.0)]
    assert [(c.meta["start_frame"], c.meta["end_frame"]) for c in got] == [
        (25, 75),
        (50, 125),
        (275, 325),
    ]
    assert got[2].scores["frozen"] == 1.0 and got[0].scores["frozen"] == 0.0
    source = decoded(demo_videos / "demo_a.mp4")
    mid = out[0].payload["frames"][got[0].clip_id]["mid"][0]
    assert np.abs(mid.astype(int) - source[50]).mean() < 1.0


# --- real videos ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("name", [*REAL, "v2d_test_video"])
def test_boundaries_equal_pyscenedetect_detect(real_videos, name):
    """Our one-pass split equals PySceneDetect's own detect(path, ContentDetector(27, 15))."""
    path = real_videos / f"{name}.mp4"
    ref = ref_starts(path)
    r = OnePass(detector_factory("content"), 1, None).run(path)
    starts = [a for a, _ in r.scenes]
    assert len(starts) == len(ref) and all(
        abs(a - b) <= 1 for a, b in zip(starts, ref, strict=True)
    ), (starts, ref)


@pytest.mark.integration
@pytest.mark.parametrize("name", REAL)
def test_fast_decoding_changes_no_cut_on_the_samples(real_videos, name):
    """On these sample files skipping the loop filter happens to change no cut; on re-encodes it
    can (tests/test_cut_parity.py), which is why exact decoding is the default."""
    path = real_videos / f"{name}.mp4"
    fast = OnePass(detector_factory("content"), 1, None, fast_decode=True).run(path)
    plain = OnePass(detector_factory("content"), 1, None, fast_decode=False).run(path)
    assert fast.scenes == plain.scenes and fast.frames_read == plain.frames_read


@pytest.mark.integration
@pytest.mark.parametrize("name", REAL)
def test_fast_decoding_serves_near_exact_frames(real_videos, name):
    """With frames served, fast decoding skips deblocking on B-frames only: the same cuts, and
    every served frame within 44 dB PSNR of the exactly decoded one (skipping it on every frame
    drifts to 33 dB)."""
    path = real_videos / f"{name}.mp4"
    needs = (FrameNeed("mid", "middle"), FrameNeed("seg", "segments", 8, short_side=224))
    runs = [OnePass(detector_factory("content"), 1, 250, needs, fast_decode=f) for f in (1, 0)]
    assert [r.skip_loop_filter for r in runs] == ["bidir", None]
    fast, exact = (r.run(path) for r in runs)
    assert fast.scenes == exact.scenes
    for a, b in zip(fast.clips, exact.clips, strict=True):
        for name_ in ("mid", "seg"):
            for x, y in zip(a.frames[name_], b.frames[name_], strict=True):
                mse = ((x.astype(float) - y) ** 2).mean()
                assert mse == 0 or 10 * np.log10(255**2 / mse) > 44


@pytest.mark.integration
@pytest.mark.parametrize("name", ["cosmos_clip_10s", "nasa_13013", "internvid_example1"])
def test_stage_clips_start_at_pyscenedetect_cuts(real_videos, name):
    path = real_videos / f"{name}.mp4"
    ref = scenedetect.detect(str(path), scenedetect.ContentDetector(threshold=27, min_scene_len=15))
    out, _, failures = split(path, SplitConfig(min_clip_seconds=0.0, max_clip_seconds=None))
    assert not failures and len(ref) >= 2
    assert [(c.meta["start_frame"], c.meta["end_frame"]) for c in out[0].clips] == [
        (s.frame_num, e.frame_num) for s, e in ref
    ]
    assert [c.start for c in out[0].clips] == pytest.approx([s.seconds for s, _ in ref], abs=1e-6)


@pytest.mark.integration
def test_slide_video_is_still_and_camera_footage_is_not(real_videos):
    from internvid.config import MotionConfig
    from internvid.stages.motion import MotionFilter

    f = MotionFilter(MotionConfig())
    out, _, _ = split(real_videos / "v2d_test_video.mp4", SplitConfig())
    assert out[0].clips and all(f.verdict(c.scores) == "still" for c in out[0].clips)
    for name in [
        "cosmos_clip_10s",
        "nasa_13013",
        "mmaction_test",
        "internvid_example1",
        "fades",
        "counter",
    ]:
        out, _, _ = split(real_videos / f"{name}.mp4", SplitConfig())
        assert [f.verdict(c.scores) for c in out[0].clips] == [None] * len(out[0].clips), name


def test_no_clip_exceeds_the_maximum_when_a_cut_comes_late(demo_videos):
    # demo_d cuts at 50 (reported by the flash filter up to 15 frames late); max 40 frames
    r = OnePass(detector_factory("content"), 1, 40).run(demo_videos / "demo_d.mp4")
    assert all(c.end - c.start <= 40 for c in r.clips), [(c.start, c.end) for c in r.clips]
    assert [c.start for c in r.clips][:3] == [0, 40, 50]
