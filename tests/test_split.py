"""Scene split: exact cuts on generated videos, parity with PySceneDetect on real ones, clip policy."""

from __future__ import annotations

import itertools

import pytest
import scenedetect

from internvid.config import SplitConfig
from internvid.engine import Sample
from internvid.media.probe import probe
from internvid.media.scenes import clip_policy, detect_content_scenes
from internvid.records import Video
from internvid.stages.split import SplitStage


def split(path, cfg: SplitConfig):
    r = probe(path)
    v = Video(id=path.stem, source=str(path), path=str(path), duration=r.duration, fps=r.fps)
    stage = SplitStage(cfg)
    stats, failures = stage.new_stats(), []
    out = stage.run_batch([Sample(v)], stats, failures)
    return out, stats, failures


def test_clip_policy_splits_long_scenes_into_equal_pieces():
    # 25 fps: a 25 s scene with max 10 s -> 3 pieces of 208/208/209 frames
    clips, dropped = clip_policy([(0, 625)], 25.0, 1.0, 10.0)
    assert clips == [(0, 208), (208, 416), (416, 625)] and dropped == 0
    assert all((b - a) / 25 <= 10.0 for a, b in clips)
    # exactly max stays whole; just over splits in two
    assert clip_policy([(0, 250)], 25.0, 1.0, 10.0)[0] == [(0, 250)]
    assert clip_policy([(0, 251)], 25.0, 1.0, 10.0)[0] == [(0, 125), (125, 251)]


def test_clip_policy_drops_short_clips():
    scenes = [(0, 24), (24, 49), (49, 300)]
    clips, dropped = clip_policy(scenes, 25.0, 1.0, None)
    assert clips == [(24, 49), (49, 300)] and dropped == 1  # 24 frames < 1 s, 25 frames == 1 s kept
    assert clip_policy(scenes, 25.0, 0.0, None) == (scenes, 0)


def test_cuts_match_known_hard_cuts_exactly(demo_videos, demo_specs):
    cfg = SplitConfig(min_clip_seconds=0.0, max_clip_seconds=None)
    for name, spec in demo_specs.items():
        out, _, failures = split(demo_videos / f"{name}.mp4", cfg)
        assert not failures
        clips = out[0].clips
        starts = [c.meta["start_frame"] for c in clips]
        assert starts == [0, *spec.cut_frames], name
        assert clips[-1].meta["end_frame"] == spec.num_frames
        assert [round(c.start, 6) for c in clips] == [0.0, *(round(t, 6) for t in spec.cut_times)]
        # clips tile the video: each ends where the next starts
        assert all(a.end == b.start for a, b in itertools.pairwise(clips))


def test_default_policy_on_demo_videos(demo_videos, demo_specs):
    out, stats, _ = split(demo_videos / "demo_a.mp4", SplitConfig())
    # demo_a: 4 s | 6 s | 0.6 s (dropped: < 1 s) | 3.4 s
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 4.0), (4.0, 10.0), (10.6, 14.0)]
    assert stats.dropped == {"clip_too_short": 1}
    out, _, _ = split(demo_videos / "demo_b.mp4", SplitConfig())
    # demo_b: an 11 s shot (275 frames) is split in two pieces of whole frames under the 10 s maximum
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 5.48), (5.48, 11.0), (11.0, 15.0)]


def test_detector_none_gives_one_clip_per_video(demo_videos):
    out, _, _ = split(
        demo_videos / "demo_a.mp4", SplitConfig(detector="none", max_clip_seconds=None)
    )
    assert [(c.start, c.end) for c in out[0].clips] == [(0.0, 14.0)]


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        "cosmos_clip_10s",
        "nasa_13013",
        "mmaction_test",
        "internvid_example1",
        "fades",
        "counter",
        "delayed_start",
        "v2d_test_video",
    ],
)
def test_boundaries_equal_pyscenedetect_detect(real_videos, name):
    """Our split equals PySceneDetect's own detect(path, ContentDetector(27, 15)) within a frame."""
    path = real_videos / f"{name}.mp4"
    ref = scenedetect.detect(str(path), scenedetect.ContentDetector(threshold=27, min_scene_len=15))
    ref_starts = [s.frame_num for s, _ in ref] or [0]
    ours = detect_content_scenes(str(path), threshold=27, min_scene_len=15)
    starts = [a for a, _ in ours.scenes]
    assert len(starts) == len(ref_starts), (starts, ref_starts)
    assert all(abs(a - b) <= 1 for a, b in zip(starts, ref_starts, strict=True)), (
        starts,
        ref_starts,
    )


@pytest.mark.integration
@pytest.mark.parametrize("name", ["cosmos_clip_10s", "nasa_13013", "internvid_example1"])
def test_stage_clips_start_at_pyscenedetect_cuts(real_videos, name):
    """Through the split stage, with the clip policy off, clip times are the detector's frames."""
    path = real_videos / f"{name}.mp4"
    ref = scenedetect.detect(str(path), scenedetect.ContentDetector(threshold=27, min_scene_len=15))
    out, _, failures = split(path, SplitConfig(min_clip_seconds=0.0, max_clip_seconds=None))
    assert not failures and len(ref) >= 2
    assert [(c.meta["start_frame"], c.meta["end_frame"]) for c in out[0].clips] == [
        (s.frame_num, e.frame_num) for s, e in ref
    ]
    assert [c.start for c in out[0].clips] == pytest.approx([s.seconds for s, _ in ref], abs=1e-6)
