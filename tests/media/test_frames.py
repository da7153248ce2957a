"""media.frames.frames_at: the exact frames at times or indices, seeking, rotation, sizes."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from internvid.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from internvid.media.frames import SEEK_AHEAD_S, frames_at
from internvid.media.synth import Segment, SynthVideo, make_video

FPS = 10  # frame rate of the test videos
W, H = 64, 48  # their size
# the grey video: 40 shots of 2 frames (0.2 s), shot k a flat grey of LEVELS[k]
LEVELS = [20 + 5 * k for k in range(40)]
GREY = SynthVideo(
    "grey",
    tuple(Segment(f"color=c=0x{v:02x}{v:02x}{v:02x}", 0.2) for v in LEVELS),
    fps=FPS,
    width=W,
    height=H,
    audio=False,
)
# the moving video: 12 s, every frame different, keyframes every 2 s, P- and B-frames between
MOVING = SynthVideo(
    "moving",
    (Segment("testsrc2", 6.0), Segment("mandelbrot", 6.0)),
    fps=FPS,
    width=W,
    height=H,
    audio=False,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("frames")
    return {spec.name: make_video(spec, folder / f"{spec.name}.mp4") for spec in (GREY, MOVING)}


def _decode_all(path: Path) -> tuple[list[np.ndarray], list[bool]]:
    """Every frame of the file in display order from one plain decode, and its keyframe flag."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.key_frame for f in frames]


def _nearest(t: float, n: int) -> int:
    """The index of the frame nearest `t` seconds (the first at or after t - half a frame)."""
    return min(max(math.ceil(t * FPS - 0.5 - 1e-9), 0), n - 1)


def _level(frame: np.ndarray) -> int:
    """Which shot of the grey video a frame is from (its grey is within 2 of that shot's)."""
    k = int(np.argmin([abs(float(frame.mean()) - v) for v in LEVELS]))
    assert np.abs(frame.astype(int) - LEVELS[k]).max() <= 2, "a flat frame of a known grey"
    return k


def test_indices_and_times_pick_the_exact_frames(videos):
    path = videos["grey"]
    frames = frames_at(path, indices=range(80))
    assert len(frames) == 80 and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert [_level(f) for f in frames] == [i // 2 for i in range(80)]
    # times around the shot boundaries (frame 2k starts shot k at 0.2 k s): the nearest frame
    for k in (1, 7, 20, 39):
        at = [2 * k / FPS, (2 * k - 0.4) / FPS, (2 * k - 0.6) / FPS, (2 * k + 1.4) / FPS]
        assert [_level(f) for f in frames_at(path, at)] == [k, k, k - 1, k], k
    # any order, repeats, before the start and past the end
    got = frames_at(str(path), [5.03, -1.0, 0.0, 100.0, 0.61, 5.03])
    assert [_level(f) for f in got] == [25, 0, 0, 39, 3, 25]
    assert got[0] is not got[5] and np.array_equal(got[0], got[5])
    assert [_level(f) for f in frames_at(path, indices=[79, 3, 3])] == [39, 1, 1]


def test_seeking_gives_the_frames_of_a_full_decode(videos):
    path = videos["moving"]
    ref, key = _decode_all(path)
    assert len(ref) == MOVING.num_frames == 120
    # spread out (each a seek: more than SEEK_AHEAD_S apart), near each other (decoded on), mixed
    spread = [11.9, 0.0, 4.16, 8.3]
    # no time lies exactly between two frames (a tie would depend on float rounding)
    near = [6.3, 6.56, 7.0, 7.02, 7.49, 8.04]  # 7.0 and 7.02: the same frame
    mixed = [3.94, 0.26, 11.9, 2.04, 9.61, 3.97, 1.0]
    assert min(abs(a - b) for a in spread for b in spread if a != b) > SEEK_AHEAD_S
    for times in (spread, near, mixed):
        idx = [_nearest(t, len(ref)) for t in times]
        got = frames_at(path, times)
        for t, i, frame in zip(times, idx, got, strict=True):
            assert np.array_equal(frame, ref[i]), f"t={t}: not frame {i}"
    picked = [_nearest(t, len(ref)) for t in spread + near + mixed]
    assert sum(not key[i] for i in picked) >= 10, "most targets lie between keyframes"
    every = frames_at(path, indices=range(120))
    assert all(np.array_equal(a, b) for a, b in zip(every, ref, strict=True))
    with pytest.raises(IndexError):
        frames_at(path, indices=[120])


def test_sources_and_sizes(videos):
    path = videos["moving"]
    (want,) = frames_at(path, [3.3])
    data = path.read_bytes()
    with open(path, "rb") as f:
        for src in (str(path), data, io.BytesIO(data), f):
            (got,) = frames_at(src, [3.3])
            assert np.array_equal(got, want)
    (half,) = frames_at(path, [3.3], size=32)
    assert half.shape == (24, 32, 3)
    assert np.array_equal(half, cv2.resize(want, (32, 24), interpolation=cv2.INTER_AREA))
    (wide,) = frames_at(path, [3.3], size=(100, 20))
    assert wide.shape == (20, 100, 3)
    assert np.array_equal(frames_at(path, [3.3], size=(W, H))[0], want)
    with pytest.raises(ValueError):
        frames_at(path)
    with pytest.raises(ValueError):
        frames_at(path, [1.0], indices=[1])


def test_display_rotation_as_ffmpeg_shows_it(videos, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg(["-y", "-display_rotation", "90", "-i", videos["moving"], "-c", "copy", rotated])
    raw = ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    shown = subprocess.run(  # ffmpeg's own decode, which applies the rotation
        [ffmpeg_exe(), "-v", "error", "-i", str(rotated), *raw],
        capture_output=True,
        check=True,
    ).stdout
    (got,) = frames_at(rotated, [0.0])
    assert got.shape == (W, H, 3)
    assert np.array_equal(got, np.frombuffer(shown, np.uint8).reshape(W, H, 3))
    (upright,) = frames_at(videos["moving"], [0.0])
    assert not np.array_equal(got, np.rot90(upright, 3)), "the turn has a direction"


def test_no_video_stream(tmp_path):
    audio = tmp_path / "audio.m4a"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", audio])
    with pytest.raises(ValueError, match="no video stream"):
        frames_at(audio, [0.5])
