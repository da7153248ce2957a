"""Synthetic demo videos: PySceneDetect finds exactly the known cuts; bad inputs are rejected."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import av
import pytest
import scenedetect

from internvid.media.synth import (
    DEMO_VIDEOS,
    Segment,
    SynthVideo,
    make_video,
    write_bad_inputs,
    write_demo_videos,
)

# The paper's PySceneDetect setting.
THRESHOLD = 27
MIN_SCENE_LEN = 15


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """Render DEMO_VIDEOS once; return the folder and the wall time it took."""
    folder = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    paths = write_demo_videos(folder)
    elapsed = time.perf_counter() - t0
    assert [p.name for p in paths] == [f"{v.name}.mp4" for v in DEMO_VIDEOS]
    return folder, elapsed


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_inputs(tmp_path_factory.mktemp("bad"))


def _frame_index(tc: scenedetect.FrameTimecode) -> int:
    """A FrameTimecode's frame number (`frame_num` in 0.7, `get_frames()` before)."""
    num = getattr(tc, "frame_num", None)
    return int(num) if num is not None else int(tc.get_frames())


def _open_and_decode_first_frame(path: Path) -> None:
    with av.open(str(path)) as container:
        next(container.decode(video=0))


def _frames_md5(path: Path, every: int = 10) -> str:
    """md5 over every `every`-th decoded frame's pixels (plus the frame count)."""
    h = hashlib.md5()
    n = 0
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                h.update(frame.to_ndarray().tobytes())
            n += 1
    h.update(str(n).encode())
    return h.hexdigest()


# --- the specs themselves ---------------------------------------------------------------------


def test_spec_properties() -> None:
    spec = SynthVideo(
        "x", (Segment("testsrc2", 2.0), Segment("color=c=red", 0.6), Segment("mandelbrot", 1.4))
    )
    assert spec.num_frames == 100
    assert spec.duration == pytest.approx(4.0)
    assert spec.cut_frames == (50, 65)
    assert spec.cut_times == pytest.approx((2.0, 2.6))
    single = SynthVideo("y", (Segment("testsrc2", 3.0),), fps=30)
    assert single.cut_frames == ()
    assert single.cut_times == ()
    assert single.num_frames == 90


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="whole"):
        SynthVideo("x", (Segment("testsrc2", 0.61),))
    with pytest.raises(ValueError, match="whole"):
        SynthVideo("x", (Segment("testsrc2", 0.5),), fps=25)
    with pytest.raises(ValueError):
        Segment("testsrc2,hflip", 1.0)
    with pytest.raises(ValueError):
        Segment("testsrc2", 0.0)
    with pytest.raises(ValueError):
        SynthVideo("x", ())
    with pytest.raises(ValueError):
        SynthVideo("x", (Segment("testsrc2", 1.0),), width=321)


def test_demo_table_shape() -> None:
    names = [v.name for v in DEMO_VIDEOS]
    assert names == ["demo_a", "demo_b", "demo_c", "demo_d"]
    for v in DEMO_VIDEOS:
        assert (v.width, v.height, v.fps) == (320, 240, 25)
        assert 10 <= v.duration <= 20
        assert len(v.cut_frames) <= 4
    assert sum(1 for v in DEMO_VIDEOS if not v.cut_frames) == 1
    no_cut = next(v for v in DEMO_VIDEOS if not v.cut_frames)
    assert no_cut.duration == pytest.approx(12.0)
    assert sum(1 for v in DEMO_VIDEOS if v.cut_frames) == 3
    segments = [s for v in DEMO_VIDEOS for s in v.segments]
    assert any(s.seconds > 10 for s in segments)
    # A 15-frame (0.6 s) shot: its own scene, but shorter than a 1 s minimum clip.
    assert any(s.num_frames(25) == MIN_SCENE_LEN for s in segments)
    # Consecutive shots use different sources, so every cut is a real change of content.
    for v in DEMO_VIDEOS:
        for a, b in zip(v.segments, v.segments[1:], strict=False):
            assert a.source != b.source


# --- rendered demo videos ---------------------------------------------------------------------


def test_write_demo_videos_files(demo_dir: tuple[Path, float]) -> None:
    folder, elapsed = demo_dir
    truth = json.loads((folder / "cuts.json").read_text(encoding="utf-8"))
    assert list(truth) == [v.name for v in DEMO_VIDEOS]
    for v in DEMO_VIDEOS:
        entry = truth[v.name]
        assert (folder / entry["file"]).stat().st_size > 0
        assert entry["cut_frames"] == list(v.cut_frames)
        assert entry["cut_times"] == pytest.approx(list(v.cut_times))
        assert entry["fps"] == v.fps
        assert entry["duration"] == pytest.approx(v.duration)
        assert entry["num_frames"] == v.num_frames
        assert [s["start_frame"] for s in entry["segments"][1:]] == list(v.cut_frames)
    # The target is < 2 s per video on 2 cores; this only guards against gross regressions.
    assert elapsed < 10 * len(DEMO_VIDEOS)


@pytest.mark.parametrize("spec", DEMO_VIDEOS, ids=lambda v: v.name)
def test_scenedetect_finds_exact_cuts(demo_dir: tuple[Path, float], spec: SynthVideo) -> None:
    path = demo_dir[0] / f"{spec.name}.mp4"
    scenes = scenedetect.detect(
        str(path), scenedetect.ContentDetector(threshold=THRESHOLD, min_scene_len=MIN_SCENE_LEN)
    )
    starts = tuple(_frame_index(start) for start, _end in scenes[1:])
    assert starts == spec.cut_frames
    if scenes:
        assert _frame_index(scenes[0][0]) == 0
        assert _frame_index(scenes[-1][1]) == spec.num_frames


@pytest.mark.parametrize("spec", DEMO_VIDEOS, ids=lambda v: v.name)
def test_pyav_metadata(demo_dir: tuple[Path, float], spec: SynthVideo) -> None:
    path = demo_dir[0] / f"{spec.name}.mp4"
    one_frame = 1 / spec.fps
    with av.open(str(path)) as container:
        assert container.duration is not None
        assert abs(container.duration / av.time_base - spec.duration) <= one_frame
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert (video.width, video.height) == (spec.width, spec.height)
        assert video.average_rate == spec.fps
        assert video.frames == spec.num_frames
        assert video.duration is not None and video.time_base is not None
        assert abs(float(video.duration * video.time_base) - spec.duration) <= one_frame
        if spec.audio:
            assert len(container.streams.audio) == 1
            audio = container.streams.audio[0]
            assert audio.codec_context.name == "aac"
            assert audio.duration is not None and audio.time_base is not None
            assert abs(float(audio.duration * audio.time_base) - spec.duration) <= one_frame
        else:
            assert not container.streams.audio
        frames = list(container.decode(video=0))
    assert len(frames) == spec.num_frames
    assert frames[0].format.name == "yuv420p"
    # A keyframe at least every 2 s, so stream-copy cuts are possible.
    key = [i for i, f in enumerate(frames) if f.key_frame]
    assert key[0] == 0
    assert all(b - a <= 2 * spec.fps for a, b in zip(key, [*key[1:], len(frames)], strict=True))


def test_no_audio_track(tmp_path: Path) -> None:
    spec = SynthVideo("silent", (Segment("testsrc2", 1.0),), audio=False)
    path = make_video(spec, tmp_path / "silent.mp4")
    with av.open(str(path)) as container:
        assert not container.streams.audio
        assert container.streams.video[0].frames == 25


def test_render_is_deterministic(tmp_path: Path) -> None:
    # Every moving source the demos use, including the ones whose defaults are random.
    sources = {s.source for v in DEMO_VIDEOS for s in v.segments}
    spec = SynthVideo("det", tuple(Segment(src, 0.6) for src in sorted(sources)))
    first = make_video(spec, tmp_path / "one.mp4")
    second = make_video(spec, tmp_path / "two.mp4")
    assert _frames_md5(first, every=5) == _frames_md5(second, every=5)
    assert first.read_bytes() == second.read_bytes()


def test_demo_video_is_deterministic(demo_dir: tuple[Path, float], tmp_path: Path) -> None:
    spec = DEMO_VIDEOS[0]
    again = make_video(spec, tmp_path / "again.mp4")
    assert _frames_md5(again) == _frames_md5(demo_dir[0] / f"{spec.name}.mp4")


# --- bad inputs -------------------------------------------------------------------------------


def test_bad_inputs_files(bad_inputs: dict[str, Path]) -> None:
    assert set(bad_inputs) == {"corrupt", "empty", "text", "audio_only"}
    names = {k: p.name for k, p in bad_inputs.items()}
    assert names == {
        "corrupt": "corrupt.mp4",
        "empty": "empty.mp4",
        "text": "notes.mp4",
        "audio_only": "audio_only.mp4",
    }
    assert bad_inputs["empty"].stat().st_size == 0
    bad_inputs["text"].read_text(encoding="utf-8")
    corrupt = bad_inputs["corrupt"].read_bytes()
    assert corrupt[4:8] == b"ftyp"  # it starts as a real mp4
    assert len(corrupt) > 4096


@pytest.mark.parametrize("kind", ["corrupt", "empty", "text"])
def test_bad_inputs_are_rejected(bad_inputs: dict[str, Path], kind: str) -> None:
    with pytest.raises(av.FFmpegError):
        _open_and_decode_first_frame(bad_inputs[kind])


def test_audio_only_has_no_video(bad_inputs: dict[str, Path]) -> None:
    with av.open(str(bad_inputs["audio_only"])) as container:
        assert not container.streams.video
        assert len(container.streams.audio) == 1
        assert container.streams.audio[0].codec_context.name == "aac"
        assert sum(1 for _ in container.decode(audio=0)) > 0


def test_bad_inputs_are_deterministic(bad_inputs: dict[str, Path], tmp_path: Path) -> None:
    again = write_bad_inputs(tmp_path)
    for kind, path in bad_inputs.items():
        assert again[kind].read_bytes() == path.read_bytes(), kind
