"""One decode pass per video: scene cuts, a motion score, and exactly the frames stages ask for."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from scenedetect import FrameTimecode
from scenedetect.common import Timecode, framerate_to_fraction

from internvid.media.probe import stream_fps

log = logging.getLogger(__name__)

DETECT_WIDTH = 256  # PySceneDetect's auto-downscale target (its DEFAULT_MIN_WIDTH), longer side
_BICUBIC = Interpolation.BICUBIC  # OpenCV's swscale flag (matters beyond 8-bit 4:2:0)
_AHEAD = 3  # decoded frames whose detector frames are made ahead on a worker thread
FROZEN = 0.01  # mean absolute luma change (0-255) below which a frame shows no change at all
FRAME_KINDS = ("middle", "fps", "uniform", "segments", "strided")
_MICROSECOND = Fraction(1, 1000000)  # the time base of OpenCV positions as PySceneDetect reads them
_YUV420 = {"yuv420p": False, "yuvj420p": True}  # planar 8-bit 4:2:0 formats -> full range?
# planar formats whose first plane is luma -> its bits per sample (little-endian above 8)
_LUMA_BITS = {
    **{f"{p}{s}p": 8 for p in ("yuv", "yuvj") for s in ("420", "422", "444", "440", "411", "410")},
    "gray": 8,
    **{f"yuv{s}p{b}le": b for s in ("420", "422", "444") for b in (10, 12)},
}
# BT.601 YUV -> RGB, what swscale (and so OpenCV's and PyAV's default conversion) applies
_LIMITED = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]], np.float32)
_FULL = np.array([[1.0, 0.0, 1.402], [1.0, -0.344, -0.714], [1.0, 1.772, 0.0]], np.float32)


@dataclass(frozen=True)
class FrameNeed:
    """Frames a stage wants of every clip, served from the split's single decode pass."""

    name: str  # key in the served frames, e.g. "viclip"
    kind: str  # "middle" (1 frame), "fps" (`count` frames per second), "uniform" (`count` frames
    # from first to last), "segments" (middle frame of `count` equal segments: ViCLIP's evaluation
    # sampling), "strided" (frames[::n // count][:count]: the official ViCLIP demo's sampling)
    count: int = 1  # frames (uniform, segments) or frames per second (fps)
    width: int | None = None  # with height: exact output size (no crop), e.g. 224x224
    height: int | None = None
    short_side: int | None = (
        None  # else scale so the short side is this (keeps aspect); None: source size
    )

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise ValueError(f"frame need {self.name!r}: kind must be one of {FRAME_KINDS}")
        if self.count < 1:
            raise ValueError(f"frame need {self.name!r}: count must be >= 1")
        if (self.width is None) != (self.height is None):
            raise ValueError(f"frame need {self.name!r}: give both width and height, or neither")

    def indices(self, start: int, end: int, fps: float) -> list[int]:
        """Frame numbers of the clip [start, end) this need selects (sorted, may repeat)."""
        n = end - start
        if self.kind == "middle":
            return [start + n // 2]
        if self.kind == "fps":
            step = fps / self.count
            return [start + int(k * step) for k in range(max(1, math.ceil(n / step - 1e-9)))]
        if self.kind == "uniform":
            if self.count == 1:
                return [start + n // 2]
            return [start + round(i * (n - 1) / (self.count - 1)) for i in range(self.count)]
        if self.kind == "strided":  # short clips repeat their last frame (the demo would fail)
            step = max(1, n // self.count)
            return [min(start + k * step, end - 1) for k in range(self.count)]
        # segments: the official evaluation's get_frame_indices(sample="middle"), one function
        from internvid.media.sampling import sample_indices

        return [start + i for i in sample_indices(max(n, 1), self.count, "middle")]

    def size(self, width: int, height: int) -> tuple[int, int]:
        """Output (width, height) for a source of this size."""
        if self.width is not None:
            return self.width, self.height
        if self.short_side is None or min(width, height) <= self.short_side:
            return width, height
        s = self.short_side / min(width, height)
        return max(1, round(width * s)), max(1, round(height * s))


class Detector(Protocol):
    """PySceneDetect's SceneDetector interface (ContentDetector, AdaptiveDetector, TransNetV2...)."""

    def process_frame(
        self, timecode: FrameTimecode, frame_img: np.ndarray
    ) -> list[FrameTimecode]: ...

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]: ...

    @property
    def event_buffer_length(self) -> int: ...


@dataclass
class PassClip:
    """One clip found by the pass: its frame range, motion score and served frames."""

    start: int  # first frame
    end: int  # first frame after the clip
    motion: float  # mean absolute luma change between consecutive frames (0-255, downscaled)
    frozen: float  # fraction of frames that show no change from the previous one (slides: ~1)
    frames: dict[str, list[np.ndarray]] = field(default_factory=dict)  # need name -> RGB HxWx3
    frame_indices: dict[str, list[int]] = field(default_factory=dict)  # need name -> frame numbers


@dataclass
class PassResult:
    """What one pass over a video found."""

    fps: float  # frame rate frames are numbered by
    frames_read: int  # frames decoded
    width: int  # decoded width
    height: int  # decoded height
    scenes: list[tuple[int, int]]  # detected scenes before the clip policy
    clips: list[PassClip]  # kept clips, in order
    dropped: int  # pieces shorter than the minimum clip length
    peak_buffered: int  # most frames held at once for frame needs (memory bound check)
    # the dropped pieces as [start, end) frame ranges, in order
    short_pieces: list[tuple[int, int]] = field(default_factory=list)


def detect_size(width: int, height: int) -> tuple[int, int]:
    """The frame size PySceneDetect's `detect()` hands its detector: its auto-downscale factor
    `f = max(width, height) / 256` (a float; none under 256), then `round(side / f)` each side."""
    longest = max(width, height)
    if longest <= DETECT_WIDTH:  # f == 1: PySceneDetect resizes only when f > 1
        return width, height
    f = longest / float(DETECT_WIDTH)
    return max(1, round(width / f)), max(1, round(height / f))


def buffer_factor(needs: tuple[FrameNeed, ...], width: int, height: int) -> int:
    """Integer factor k the open clip's frames are kept at (source size / k): the largest k that
    still leaves every need's output no bigger than the kept frame.

    An integer factor lets the per-frame downscale be a box filter on whole pixel blocks
    (OpenCV's fast INTER_AREA path: a quarter of the cost of a bilinear resize to the exact
    size, and no aliasing); the few served frames are then resized to their exact size.
    """
    sizes = [n.size(width, height) for n in needs]
    w, h = max(s[0] for s in sizes), max(s[1] for s in sizes)
    return max(1, min(width // w, height // h))


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to exactly `size` (width, height): a box filter by the largest whole factor,
    then bilinear for the rest (under 2x, where bilinear does not alias). OpenCV's INTER_AREA
    at a fractional factor would cost 5-10x more."""
    w, h = size
    H, W = img.shape[:2]
    if (w, h) == (W, H):
        return img
    k = min(W // w, H // h)
    if k >= 2:
        img = cv2.resize(
            img[: H // k * k, : W // k * k], (W // k, H // k), interpolation=cv2.INTER_AREA
        )
    if img.shape[1] != w or img.shape[0] != h:
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    return img


def open_video(path: str | Path, skip_loop_filter: str | None = None) -> tuple[Any, Any]:
    """Open the first video stream for decoding with frame and slice threads.

    `skip_loop_filter` ("all", "bidir", "noref", or None) skips H.264/HEVC deblocking on those
    frames. It is not exact: "all" lets errors drift through a GOP (PSNR 33-48 dB against exact
    decoding on the sample videos) and adds a cut on 10 of the 53 parity-corpus videos (a frame
    that scores just under the threshold when decoded exactly scores over it); "bidir" skips it
    on B-frames only: served frames stay within 44 dB of exact ones, for most of the speed-up.
    """
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if skip_loop_filter:
        stream.codec_context.options = {"skip_loop_filter": skip_loop_filter}
    return container, stream


def _planes(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-copy views of a planar 4:2:0 frame's Y, U, V planes."""
    w, h = frame.width, frame.height
    y = np.frombuffer(frame.planes[0], np.uint8).reshape(h, -1)[:, :w]
    cw, ch = (w + 1) // 2, (h + 1) // 2
    u = np.frombuffer(frame.planes[1], np.uint8).reshape(ch, -1)[:, :cw]
    v = np.frombuffer(frame.planes[2], np.uint8).reshape(ch, -1)[:, :cw]
    return y, u, v


def _yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, full_range: bool) -> np.ndarray:
    """Same-size Y, U, V planes -> RGB uint8 (BT.601)."""
    if full_range:
        yuv = np.stack(
            [y.astype(np.float32), u.astype(np.float32) - 128, v.astype(np.float32) - 128], -1
        )
        m = _FULL
    else:
        yuv = np.stack(
            [y.astype(np.float32) - 16, u.astype(np.float32) - 128, v.astype(np.float32) - 128], -1
        )
        m = _LIMITED
    return np.clip(yuv @ m.T + 0.5, 0, 255).astype(np.uint8)


def _box(plane: np.ndarray, k: int, size: tuple[int, int]) -> np.ndarray:
    """Mean of each k x k block (OpenCV's fast whole-factor INTER_AREA path) -> `size`."""
    w, h = size
    return cv2.resize(plane[: h * k, : w * k], size, interpolation=cv2.INTER_AREA)


class _Scaler:
    """Downscales decoded frames cheaply, on the 4:2:0 planes (colour is converted only for the
    frames that are used): a box filter by a whole factor `box`, then, when `size` is given, a
    bilinear resize to it. Other pixel formats go through one RGB plane the same way."""

    def __init__(
        self, fmt: str, width: int, height: int, box: int = 1, size: tuple[int, int] | None = None
    ):
        self.full_range = _YUV420.get(fmt)  # None: not planar 4:2:0, work on RGB
        self.luma_bits = _LUMA_BITS.get(fmt)  # bits of a planar Y plane; None: grey from RGB
        self.box = box
        w, h = width // box, height // box
        self.boxed = (w - w % 2, h - h % 2) if box > 1 else (width, height)  # even: 4:2:0
        self.size = (size[0] + size[0] % 2, size[1] + size[1] % 2) if size else self.boxed
        self.chroma = (self.size[0] // 2, self.size[1] // 2)

    def _sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        if self.full_range is None:
            return [size]
        return [size, (size[0] // 2, size[1] // 2), (size[0] // 2, size[1] // 2)]

    def planes(self, frame: Any) -> tuple[np.ndarray, ...]:
        """(Y, U, V) at `size` (U, V at half size), or (RGB,) for other pixel formats."""
        rgb = self.full_range is None
        planes = (frame.to_ndarray(format="rgb24"),) if rgb else _planes(frame)
        k = self.box
        if k > 1:
            planes = tuple(
                _box(p, k, s) for p, s in zip(planes, self._sizes(self.boxed), strict=True)
            )
        if self.size != self.boxed:
            planes = tuple(
                cv2.resize(p, s, interpolation=cv2.INTER_LINEAR)
                for p, s in zip(planes, self._sizes(self.size), strict=True)
            )
        elif k == 1 and self.full_range is not None:
            planes = tuple(p.copy() for p in planes)  # the decoder reuses its buffers
        return planes

    def luma(self, frame: Any) -> np.ndarray:
        """The Y plane at `size` (grey from RGB for formats without one): what motion compares."""
        if self.luma_bits is None:
            return cv2.cvtColor(self.planes(frame)[0], cv2.COLOR_RGB2GRAY)
        w, h = frame.width, frame.height
        if self.luma_bits == 8:
            y = np.frombuffer(frame.planes[0], np.uint8).reshape(h, -1)[:, :w]
        else:  # 10/12-bit little-endian samples -> their top 8 bits
            y16 = np.frombuffer(frame.planes[0], np.uint16).reshape(h, -1)[:, :w]
            y = (y16 >> (self.luma_bits - 8)).astype(np.uint8)
        if self.box > 1:
            y = _box(y, self.box, self.boxed)
        if (y.shape[1], y.shape[0]) != self.size:
            return cv2.resize(y, self.size, interpolation=cv2.INTER_LINEAR)
        return y.copy() if y.base is not None else y  # the decoder reuses its buffers

    def convert(self, planes: tuple[np.ndarray, ...], code: int) -> np.ndarray:
        """Planes -> a 3-channel image; `code` is cv2.COLOR_YUV2RGB_I420 or ..._YUV2BGR_I420."""
        if len(planes) == 1:
            rgb = planes[0]
            return rgb if code == cv2.COLOR_YUV2RGB_I420 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.full_range:
            y, u, v = planes
            up = (self.size[0], self.size[1])
            rgb = _yuv_to_rgb(y, cv2.resize(u, up), cv2.resize(v, up), full_range=True)
            return rgb if code == cv2.COLOR_YUV2RGB_I420 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        i420 = np.concatenate([planes[0].ravel(), planes[1].ravel(), planes[2].ravel()])
        return cv2.cvtColor(i420.reshape(self.size[1] * 3 // 2, self.size[0]), code)


_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


class _DetectFrames:
    """The frames and timecodes PySceneDetect's `detect()` hands its detector, made from our
    decoded frames, pixel for pixel.

    `detect()` reads with `cv2.VideoCapture`: FFmpeg's swscale converts each frame to BGR at
    full size (SWS_BICUBIC, which matters for formats other than 8-bit 4:2:0), OpenCV turns it
    upright by the display rotation, and PySceneDetect resizes it with INTER_LINEAR to
    `detect_size`. The timecode is the frame's presentation time as OpenCV reports it
    (CAP_PROP_POS_MSEC, in microseconds), with PySceneDetect's frame-number fallback, at the
    frame rate OpenCV reports. PyAV's swscale gives the same BGR frames (tests/test_cut_parity.py).
    """

    def __init__(self, stream: Any, fps: float):
        self.start = stream.start_time or 0  # OpenCV measures time from the stream's start
        tb = stream.time_base
        self.tb = tb.numerator / tb.denominator if tb else 0.0
        self.rate = framerate_to_fraction(fps)  # what VideoStreamCv2.frame_rate gives
        self.rotate: int | None = None  # cv2.rotate code, set from the first frame
        self.size: tuple[int, int] | None = None  # (width, height) fed to the detector
        self.count = 0  # frames read (OpenCV's CAP_PROP_POS_FRAMES after each read)
        # one swscale context for the whole video: a frame's own reformat() sets up a new one
        # for every decoded frame, which costs 4x the conversion at 320x180
        self.swscale = VideoReformatter()

    def image(self, frame: Any) -> np.ndarray:
        """The BGR frame (H, W, 3) uint8 `detect()` gives its detector for this decoded frame."""
        bgr = self.swscale.reformat(frame, format="bgr24", interpolation=_BICUBIC).to_ndarray()
        if self.size is None:
            self.rotate = _ROTATE.get(round(getattr(frame, "rotation", 0) or 0) % 360)
            h, w = bgr.shape[:2]
            turned = self.rotate in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE)
            self.size = detect_size(*((h, w) if turned else (w, h)))
        if self.rotate is not None:
            bgr = cv2.rotate(bgr, self.rotate)
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_LINEAR)
        return bgr

    def timecode(self, frame: Any) -> FrameTimecode:
        """The next frame's position as VideoStreamCv2.position reports it."""
        self.count += 1
        pts = frame.pts if frame.pts is not None else frame.dts
        us = 0 if pts is None else round((pts - self.start) * self.tb * 1000 * 1000)
        if us > 0:
            tc = Timecode(pts=us, time_base=_MICROSECOND)
        else:  # PySceneDetect: a non-positive time after the first frame -> from the count
            r = self.rate
            tc = Timecode(pts=(self.count - 1) * r.denominator, time_base=Fraction(1, r.numerator))
        return FrameTimecode(timecode=tc, fps=self.rate)


class OnePass:
    """Decodes a video once and, frame by frame:

    - feeds a PySceneDetect detector exactly the frames and timecodes PySceneDetect's `detect()`
      gives it (`_DetectFrames`: full-size BGR from swscale, OpenCV's rotation, INTER_LINEAR to
      the longer side 256), so with exact decoding the cuts are detect()'s, frame for frame;
    - turns scenes into clips online: a scene longer than `max_frames` is cut into pieces of
      `max_frames` (the last piece is the remainder), pieces under `min_frames` are dropped;
    - keeps a motion score per clip (mean absolute luma change between consecutive frames);
    - keeps, only for the clip still open, its frames at the largest size a FrameNeed asks for,
      and hands each closed clip exactly the frames its needs select. Memory is bounded by the
      longest clip, never by the video's length.
    """

    def __init__(
        self,
        detector_factory: Callable[[], Detector] | None,
        min_frames: int,
        max_frames: int | None,
        needs: tuple[FrameNeed, ...] = (),
        fast_decode: bool = False,
    ):
        # fast_decode: skip the loop filter, on every frame when no frames are served, on
        # B-frames only when some are (see open_video): faster, but the cuts may differ
        self.detector_factory = detector_factory  # None: one scene per video (plus the max policy)
        self.min_frames = max(1, min_frames)
        self.max_frames = max_frames
        self.needs = needs
        self.fast_decode = fast_decode

    @property
    def skip_loop_filter(self) -> str | None:
        """Frames the decoder skips deblocking on (see open_video)."""
        if not self.fast_decode:
            return None
        return "bidir" if self.needs else "all"

    def run_given(self, path: str | Path, ranges: list[tuple[int, int]]) -> PassResult:
        """Decode `path` once for clips whose frame ranges are already known (metadata rows).

        Ranges may overlap. Only the frames the needs select are kept; motion comes from the
        per-frame luma changes of the whole video (one float per frame).
        """
        container, stream = open_video(path, self.skip_loop_filter)
        with container:
            cc = stream.codec_context
            fps = stream_fps(stream) or 25.0
            w, h = cc.width, cc.height
            small = _Scaler(cc.pix_fmt or "", w, h, size=detect_size(w, h))
            wanted: dict[int, set[tuple[int, int]]] = {}  # frame -> output sizes asked for it
            plan = []
            for a, b in ranges:
                sel = {}
                for need in self.needs:
                    idx = [min(max(k, a), b - 1) for k in need.indices(a, b, fps)]
                    size = need.size(cc.width, cc.height)
                    sel[need.name] = (idx, size)
                    for k in idx:
                        wanted.setdefault(k, set()).add(size)
                plan.append(sel)
            kept: dict[tuple[int, tuple[int, int]], np.ndarray] = {}
            diffs: list[float] = [0.0]
            prev = None
            n = 0
            for n, frame in enumerate(_decode(container, stream), start=1):
                luma = small.luma(frame)
                if prev is not None:
                    diffs.append(float(cv2.absdiff(luma, prev).mean()))
                prev = luma
                sizes = wanted.get(n - 1)
                if sizes:
                    rgb = frame.to_ndarray(format="rgb24")
                    for size in sizes:
                        kept[(n - 1, size)] = resize(rgb, size)
            d = np.array(diffs)
            clips = []
            for (a, b), sel in zip(ranges, plan, strict=True):
                clip = PassClip(a, b, *motion_scores(d, a, min(b, n)))
                for name, (idx, size) in sel.items():
                    clip.frame_indices[name] = idx
                    clip.frames[name] = [kept[(k, size)] for k in idx if (k, size) in kept]
                clips.append(clip)
            return PassResult(fps, n, cc.width, cc.height, [(0, n)], clips, 0, len(kept))

    def run(
        self, path: str | Path, on_clip: Callable[[PassClip], None] | None = None
    ) -> PassResult:
        """Decode `path` once; call `on_clip` as each clip closes (clips are also returned in
        order; with `on_clip` their frames go to it only, so memory stays flat in video length)."""
        container, stream = open_video(path, self.skip_loop_filter)
        with container, ThreadPoolExecutor(1) as pool:
            fps = stream_fps(stream) or 25.0
            state = _PassState(self, stream, fps, on_clip)
            # the detector frames are made on one worker thread a few frames ahead (swscale and
            # OpenCV release the GIL), as detect() decodes on a thread of its own; the rest of a
            # frame's work stays here, in order
            ahead: deque[tuple[Any, Future | None]] = deque()
            for frame in _decode(container, stream):
                image = pool.submit(state.frames.image, frame) if state.detector else None
                ahead.append((frame, image))
                if len(ahead) > _AHEAD:
                    state.feed(*ahead.popleft())
            while ahead:
                state.feed(*ahead.popleft())
            return state.finish()


def motion_scores(
    diffs: dict[int, float] | np.ndarray, start: int, end: int
) -> tuple[float, float]:
    """(motion, frozen) of frames start..end-1 from per-frame luma changes (diffs[k]: k-1 -> k)."""
    if isinstance(diffs, np.ndarray):
        vals = diffs[start + 1 : end]
    else:
        vals = np.array([diffs[k] for k in range(start + 1, end) if k in diffs])
    if len(vals) == 0:
        return 0.0, 0.0
    return float(vals.mean()), float((vals < FROZEN).mean())


def _decode(container: Any, stream: Any) -> Iterator[Any]:
    try:
        yield from container.decode(stream)
    except av.error.EOFError:
        return


class _PassState:
    """The streaming state of one OnePass.run: detector, open clip, frame buffer, motion."""

    def __init__(self, cfg: OnePass, stream: Any, fps: float, on_clip):
        cc = stream.codec_context
        width, height, pix_fmt = cc.width, cc.height, cc.pix_fmt or ""
        self.cfg, self.fps, self.width, self.height, self.on_clip = cfg, fps, width, height, on_clip
        self.detector = cfg.detector_factory() if cfg.detector_factory else None
        self.lag = (self.detector.event_buffer_length if self.detector else 0) + 1
        self.frames = _DetectFrames(stream, fps)  # what detect() would feed the detector
        self.positions: dict[int, int] = {}  # recent timecode pts -> frame number (cuts map back)
        self.recent: deque[int] = deque()  # the pts in `positions`, oldest first
        self.last_tc: FrameTimecode | None = None  # timecode of the last frame fed
        self.small = _Scaler(pix_fmt, width, height, size=detect_size(width, height))  # motion
        self.big = None  # scales the frames kept for the open clip
        if cfg.needs:
            self.big = _Scaler(pix_fmt, width, height, buffer_factor(cfg.needs, width, height))
        self.index = 0  # frames decoded so far
        self.cuts: list[int] = []  # detected cut frames, in order
        self.scene_start = 0  # first frame of the current scene
        self.clip_start = 0  # first frame of the open clip
        self.buffer: dict[int, tuple[np.ndarray, ...]] = {}  # frame number -> planes (open clip)
        self.converted: dict[int, np.ndarray] = {}  # frame number -> RGB, while a clip closes
        self.diffs: dict[int, float] = {}  # frame number -> luma change from the previous frame
        self.prev_luma: np.ndarray | None = None
        self.clips: list[PassClip] = []
        self.scenes: list[tuple[int, int]] = []
        self.dropped = 0
        self.short_pieces: list[tuple[int, int]] = []  # [start, end) of the dropped pieces
        self.peak = 0

    def frame_of(self, cut: FrameTimecode) -> int:
        """Our frame number of a cut the detector reported (one of the timecodes it was fed)."""
        k = self.positions.get(cut.pts)
        return cut.frame_num if k is None else k

    def feed(self, frame: Any, image: Future | None = None) -> None:
        """Take the next decoded frame; `image`: its detector frame being made (else made here)."""
        i = self.index
        if self.big is not None:
            self.buffer[i] = self.big.planes(frame)
            self.peak = max(self.peak, len(self.buffer))
        if self.detector is not None:
            tc = self.last_tc = self.frames.timecode(frame)
            self.positions[tc.pts] = i
            self.recent.append(tc.pts)
            if len(self.recent) > 4 * self.lag + 64:  # far past any cut the detector can report
                self.positions.pop(self.recent.popleft(), None)
            img = self.frames.image(frame) if image is None else image.result()
            for cut in self.detector.process_frame(tc, img):
                self._cut(self.frame_of(cut))
        luma = self.small.luma(frame)
        if self.prev_luma is not None:
            self.diffs[i] = float(cv2.absdiff(luma, self.prev_luma).mean())
        self.prev_luma = luma
        self.index += 1
        # a clip reaching the maximum length closes once no late cut can still land inside it
        self._close_full_pieces(self.index - self.lag + 1)

    def _cut(self, frame: int) -> None:
        """A detected cut: frame `frame` starts a new scene (it may be the frame just fed)."""
        if frame <= self.scene_start or frame > self.index:
            return
        self.cuts.append(frame)
        self.scenes.append((self.scene_start, frame))
        self.scene_start = frame
        if frame > self.clip_start:
            self._close_full_pieces(frame)  # a late cut may come after the clip passed the maximum
            self._close(frame)
        elif frame < self.clip_start:  # cannot happen while the lag covers the detector's delay
            log.warning(
                "cut at frame %d came after its clip was closed at %d", frame, self.clip_start
            )

    def _close_full_pieces(self, frame: int) -> None:
        """Close maximum-length pieces of the open clip while it runs past them before `frame`."""
        m = self.cfg.max_frames
        while m and frame - self.clip_start > m:
            self._close(self.clip_start + m)

    def _close(self, end: int) -> None:
        """Close the open clip at `end`: keep or drop it, serve its frames, free its buffer."""
        start, self.clip_start = self.clip_start, end
        if end - start >= self.cfg.min_frames:
            clip = PassClip(start, end, *motion_scores(self.diffs, start, end))
            for need in self.cfg.needs:
                idx = [min(max(k, start), end - 1) for k in need.indices(start, end, self.fps)]
                size = need.size(self.width, self.height)
                clip.frame_indices[need.name] = idx
                clip.frames[need.name] = [self._rgb(k, size) for k in idx]
            self.converted.clear()
            if self.on_clip:  # streaming: the consumer takes the frames, the result keeps the rest
                self.on_clip(clip)
                clip = PassClip(
                    clip.start, clip.end, clip.motion, clip.frozen, frame_indices=clip.frame_indices
                )
            self.clips.append(clip)
        else:
            self.dropped += 1
            self.short_pieces.append((start, end))
        for k in [k for k in self.buffer if k < end]:
            del self.buffer[k]
        for k in [k for k in self.diffs if k <= end]:  # the diff across a boundary is not motion
            del self.diffs[k]

    def _rgb(self, k: int, size: tuple[int, int]) -> np.ndarray:
        rgb = self.converted.get(k)
        if rgb is None:  # several needs often select the same frame: convert it once
            rgb = self.converted[k] = self.big.convert(self.buffer[k], cv2.COLOR_YUV2RGB_I420)
        return resize(rgb, size)

    def finish(self) -> PassResult:
        if self.detector is not None and self.index:
            for cut in self.detector.post_process(self.last_tc):
                self._cut(self.frame_of(cut))
        if self.index:
            self.scenes.append((self.scene_start, self.index))
            self._close_full_pieces(self.index)
            if self.clip_start < self.index:
                self._close(self.index)
        return PassResult(
            fps=self.fps,
            frames_read=self.index,
            width=self.width,
            height=self.height,
            scenes=self.scenes,
            clips=self.clips,
            dropped=self.dropped,
            peak_buffered=self.peak,
            short_pieces=list(self.short_pieces),
        )
