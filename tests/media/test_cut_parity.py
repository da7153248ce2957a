"""Our split's cuts are PySceneDetect's `detect()` cuts: the same detector frames, pixel for pixel."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scenedetect
from scenedetect import SceneDetector, SceneManager
from scenedetect.scene_manager import compute_downscale_factor

from internvid.media.ffmpeg import run_ffmpeg
from internvid.media.onepass import _decode, _DetectFrames, detect_size, open_video
from internvid.media.probe import stream_fps

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "split"))
from bench_parity import detect_cut_frames, distance, our_cut_frames

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an"]
HEVC10 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]
HEVC10 += ["-pix_fmt", "yuv420p10le", "-an"]
MJPEG = ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-an"]
# four shots with hard cuts (the 0.4 s one is shorter than min_scene_len), each at the clip's size
SHOTS = (
    "testsrc2=s={s}:r={r}:d=1.2[a];mandelbrot=s={s}:r={r}[m0];[m0]trim=duration=0.8[b];"
    "smptehdbars=s={s}:r={r}:d=0.4[c];cellauto=s={s}:r={r}:rule=110[c0];"
    "[c0]trim=duration=1.0[d];[a][b][c][d]concat=n=4:v=1:a=0"
)
DROP = ",select='not(eq(mod(n\\,5)\\,2))'"  # every 5th frame dropped: variable frame rate
# small synthetic clips: (name, size, rate, extra filters, codec args); each 3.4 s
SYNTH = [
    ("w320_25", "320x180", "25", "", X264),  # f = 1.25
    ("w200_30_noresize", "200x112", "30", "", X264),  # under 256: fed at source size
    ("portrait_180x320", "180x320", "24", "", X264),  # the longer side is the height
    ("w426_hevc10", "426x240", "25", "", HEVC10),  # 10-bit: swscale's generic path
    ("w300_mjpeg_full_range", "300x168", "25", "", MJPEG),  # yuvj420p
    ("w320_vfr", "320x180", "25", DROP, [*X264, "-fps_mode", "vfr"]),
]


class _Recorder(SceneDetector):
    """Keeps every (timecode, frame) PySceneDetect's SceneManager hands a detector."""

    def __init__(self):
        super().__init__()
        self.fed: list[tuple[scenedetect.FrameTimecode, np.ndarray]] = []

    def process_frame(self, timecode, frame_img):
        self.fed.append((timecode, frame_img.copy()))
        return []


def pyscenedetect_fed(path: Path) -> list[tuple[scenedetect.FrameTimecode, np.ndarray]]:
    """What `detect()` feeds its detector: detect()'s own calls, with a recording detector."""
    video = scenedetect.open_video(str(path), backend="opencv")
    manager, rec = SceneManager(), _Recorder()
    manager.add_detector(rec)
    manager.detect_scenes(video=video)
    return rec.fed


def ours_fed(path: Path) -> list[tuple[scenedetect.FrameTimecode, np.ndarray]]:
    container, stream = open_video(path)
    with container:
        frames = _DetectFrames(stream, stream_fps(stream))
        return [(frames.timecode(f), frames.image(f)) for f in _decode(container, stream)]


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory) -> dict[str, Path]:
    """The synthetic clips, plus short re-encodes of real film when the sample videos exist."""
    from tests.conftest import REAL_VIDEOS

    folder = tmp_path_factory.mktemp("parity")
    out = {}
    for name, size, rate, extra, codec in SYNTH:
        path = folder / f"{name}.{'avi' if 'mjpeg' in name else 'mp4'}"
        graph = SHOTS.format(s=size, r=rate) + extra
        run_ffmpeg(["-y", "-filter_complex", graph, *codec, path])
        out[name] = path
    sintel = REAL_VIDEOS / "cosmos_clip_10s.mp4"  # from 5 s: a fade to black, a hard cut
    if sintel.is_file():
        for name, vf in (("sintel_w320", "scale=320:-2"), ("sintel_w480_rotated", "scale=480:-2")):
            path = folder / f"{name}.mp4"
            run_ffmpeg(["-y", "-ss", "5", "-i", sintel, "-vf", vf, *X264, "-crf", "30", path])
            if "rotated" in name:  # display matrix: OpenCV turns the frames upright
                rot = folder / f"{name}_r.mp4"
                run_ffmpeg(["-y", "-display_rotation", "90", "-i", path, "-c", "copy", rot])
                path = rot
            out[name] = path
    return out


def test_detect_size_is_pyscenedetects_downscale():
    """detect_size is SceneManager's auto-downscale: f = compute_downscale_factor(longer side),
    then round(side / f) when f > 1."""
    for w in (100, 255, 256, 257, 320, 426, 480, 640, 853, 854, 1280, 1366, 1920, 3840):
        for h in (90, 144, 240, 256, 272, 360, 480, 720, 1080, 1920, 2160):
            f = compute_downscale_factor(max(w, h))
            want = (max(1, round(w / f)), max(1, round(h / f))) if f > 1.0 else (w, h)
            assert detect_size(w, h) == want, (w, h)


def test_detection_frames_are_pixel_identical(small_videos):
    """Every frame and timecode our pass feeds the detector equals what `detect()` feeds it
    (cv2.VideoCapture BGR, OpenCV's rotation, PySceneDetect's INTER_LINEAR resize, its
    OpenCV-based timecodes), for sizes over and under 256, portrait, rotated, 10-bit, full
    range and variable frame rate."""
    for name, path in small_videos.items():
        ref, ours = pyscenedetect_fed(path), ours_fed(path)
        assert len(ours) == len(ref), name
        for k, ((tc_r, img_r), (tc_o, img_o)) in enumerate(zip(ref, ours, strict=True)):
            assert img_o.shape == img_r.shape, (name, k)
            assert np.array_equal(img_o, img_r), (name, k, np.abs(img_o - img_r.astype(int)).max())
            assert (tc_o.pts, tc_o.time_base, tc_o.frame_rate) == (
                tc_r.pts,
                tc_r.time_base,
                tc_r.frame_rate,
            ), (name, k)


def test_cuts_equal_detect(small_videos):
    """With the split's default settings the cuts are exactly `detect()`'s (frame numbers)."""
    for name, path in small_videos.items():
        ref = detect_cut_frames(path)
        assert ref, name  # every clip has cuts
        assert our_cut_frames(path) == ref, name


def test_known_cuts_and_the_minimum_scene_length(small_videos):
    """The synthetic shots change at 30, 50 and 60 (25 fps): the cut at 60 comes 10 frames after
    the one at 50, under min_scene_len (15), and PySceneDetect's flash filter merges it away."""
    path = small_videos["w320_25"]
    assert detect_cut_frames(path) == our_cut_frames(path) == [30, 50]


def test_skipping_the_loop_filter_can_move_a_cut(real_videos, tmp_path):
    """Why exact decoding is the default: in Sintel re-encoded at 480 px, frame 104 scores just
    under the threshold decoded exactly and over it with deblocking skipped (fast_decode), so
    the fast path adds a cut that detect() does not make."""
    path = tmp_path / "sintel_w480.mp4"
    src = real_videos / "cosmos_clip_10s.mp4"
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an"]
    run_ffmpeg(["-y", "-i", src, "-vf", "scale=480:-2:flags=bicubic", *x264, path])
    assert detect_cut_frames(path) == our_cut_frames(path) == [214]
    assert our_cut_frames(path, fast_decode=True) == [104, 214]


@pytest.mark.slow
def test_whole_corpus_cuts_equal_detect(real_videos):
    """Every video of the parity corpus (>= 40: sizes, rates, codecs, VFR, transitions): cuts
    equal to `detect()`'s with the default settings."""
    from parity_corpus import DEFAULT_OUT, build

    files = build(DEFAULT_OUT)
    assert len(files) >= 40
    diffs = {f.name: distance(detect_cut_frames(f), our_cut_frames(f)) for f in files}
    assert all(d == 0 for d in diffs.values()), {k: d for k, d in diffs.items() if d}
