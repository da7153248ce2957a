"""Deterministic synthetic videos with known hard cuts (demo and tests), and bad input files."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from internvid.media.ffmpeg import run_ffmpeg

logger = logging.getLogger(__name__)

# Characters that would let a "source" escape its own filter in the filtergraph.
_FORBIDDEN_IN_SOURCE = frozenset(",;[]'\"\n")
# The tone of the synthetic audio track.
_SINE_HZ = 440
# Audio sample rate of every synthetic track.
_SAMPLE_RATE = 48000
# Timeout of one ffmpeg render, in seconds.
_RENDER_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Segment:
    """One shot: a lavfi video source shown for `seconds`; its size and rate come from the video."""

    # A lavfi video source with optional options but WITHOUT size/rate/duration, e.g. "testsrc2",
    # "mandelbrot=maxiter=256", "color=c=0x3050a0". It must be a single filter (no , ; [ ]).
    source: str
    # How long the shot lasts, in seconds; must be a whole number of frames at the video's fps.
    seconds: float

    def __post_init__(self) -> None:
        if not self.source or _FORBIDDEN_IN_SOURCE & set(self.source):
            raise ValueError(
                f"segment source must be a single lavfi source filter: {self.source!r}"
            )
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"segment seconds must be positive: {self.seconds!r}")

    def num_frames(self, fps: int) -> int:
        """Frames this segment lasts at `fps` (exact: `SynthVideo` checks they are whole)."""
        return round(self.seconds * fps)


@dataclass(frozen=True)
class SynthVideo:
    """A synthetic video: shots concatenated with hard cuts, optionally with a sine tone."""

    # File stem of the rendered video ("{name}.mp4") and its key in cuts.json.
    name: str
    # The shots in order; a hard cut sits between every two consecutive segments.
    segments: tuple[Segment, ...]
    # Frame rate (constant), frames per second.
    fps: int = 25
    # Frame width in pixels (even, for yuv420p).
    width: int = 320
    # Frame height in pixels (even, for yuv420p).
    height: int = 240
    # Whether the file gets an AAC sine-tone audio track of the same duration.
    audio: bool = True

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ValueError(f"bad video name: {self.name!r}")
        if not self.segments:
            raise ValueError(f"{self.name}: a video needs at least one segment")
        if self.fps <= 0:
            raise ValueError(f"{self.name}: fps must be positive")
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"{self.name}: width and height must be positive and even")
        for seg in self.segments:
            frames = seg.seconds * self.fps
            if abs(frames - round(frames)) > 1e-6 or round(frames) < 1:
                raise ValueError(
                    f"{self.name}: segment {seg.source!r} of {seg.seconds} s is not a whole "
                    f"number of frames at {self.fps} fps"
                )

    @property
    def num_frames(self) -> int:
        """Total number of video frames."""
        return sum(seg.num_frames(self.fps) for seg in self.segments)

    @property
    def duration(self) -> float:
        """Duration in seconds (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def cut_frames(self) -> tuple[int, ...]:
        """Frame index where each segment after the first starts (0 is not a cut)."""
        starts: list[int] = []
        frame = 0
        for seg in self.segments[:-1]:
            frame += seg.num_frames(self.fps)
            starts.append(frame)
        return tuple(starts)

    @property
    def cut_times(self) -> tuple[float, ...]:
        """Time of each cut in seconds (cut_frames / fps)."""
        return tuple(f / self.fps for f in self.cut_frames)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly description of the ground truth (written to cuts.json)."""
        segments = []
        frame = 0
        for seg in self.segments:
            n = seg.num_frames(self.fps)
            segments.append(
                {
                    "source": seg.source,
                    "start_frame": frame,
                    "num_frames": n,
                    "seconds": n / self.fps,
                }
            )
            frame += n
        return {
            "file": f"{self.name}.mp4",
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "num_frames": self.num_frames,
            "duration": self.duration,
            "audio": self.audio,
            "cut_frames": list(self.cut_frames),
            "cut_times": list(self.cut_times),
            "segments": segments,
        }


def _source_filter(seg: Segment, spec: SynthVideo) -> str:
    """The segment's lavfi source with the video's size and rate appended."""
    sep = ":" if "=" in seg.source else "="
    return f"{seg.source}{sep}s={spec.width}x{spec.height}:r={spec.fps}"


def _filtergraph(spec: SynthVideo) -> str:
    """A filter_complex that renders every segment and concatenates them to [v] (and [a])."""
    chains = []
    labels = []
    for i, seg in enumerate(spec.segments):
        # trim on frame count makes every segment exactly its frames, whatever the source's own
        # duration support; setsar/format make the segments concat-compatible.
        chains.append(
            f"{_source_filter(seg, spec)},trim=end_frame={seg.num_frames(spec.fps)},"
            f"setpts=PTS-STARTPTS,format=yuv420p,setsar=1[s{i}]"
        )
        labels.append(f"[s{i}]")
    chains.append(f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0[v]")
    if spec.audio:
        chains.append(f"{_sine_source(spec.duration)}[a]")
    return ";".join(chains)


def _sine_source(seconds: float) -> str:
    """A lavfi sine-tone source lasting `seconds`."""
    return f"sine=frequency={_SINE_HZ}:sample_rate={_SAMPLE_RATE}:duration={seconds!r}"


# Output options that make the encode deterministic (single-threaded, no version strings).
_DETERMINISM_ARGS = (
    "-filter_complex_threads", "1",
    "-fflags", "+bitexact",
    "-map_metadata", "-1",
)  # fmt: skip


def _video_codec_args(spec: SynthVideo) -> list[str]:
    """libx264 settings: small GOP (keyframe every 2 s) so stream-copy cuts are possible."""
    gop = 2 * spec.fps
    return [
        "-c:v", "libx264",
        "-preset", "veryfast",
        "-crf", "20",
        "-pix_fmt", "yuv420p",
        "-g", str(gop),
        "-keyint_min", str(spec.fps),
        "-threads", "1",
        "-flags:v", "+bitexact",
        "-r", str(spec.fps),
    ]  # fmt: skip


def _audio_codec_args() -> list[str]:
    """AAC settings for the sine track."""
    return ["-c:a", "aac", "-b:a", "64k", "-ac", "1", "-flags:a", "+bitexact"]


def make_video(spec: SynthVideo, path: str | Path) -> Path:
    """Render `spec` to the mp4 file `path` with ffmpeg (H.264 + optional AAC, faststart)."""
    return _render(spec, Path(path), faststart=True)


def _render(spec: SynthVideo, path: Path, *, faststart: bool) -> Path:
    """Render `spec` to `path`; without faststart the index (moov) goes at the end of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args: list[str] = ["-y", *_DETERMINISM_ARGS, "-filter_complex", _filtergraph(spec)]
    args += ["-map", "[v]", *_video_codec_args(spec)]
    if spec.audio:
        args += ["-map", "[a]", *_audio_codec_args()]
    if faststart:
        args += ["-movflags", "+faststart"]
    args += ["-f", "mp4", str(path)]
    t0 = time.perf_counter()
    run_ffmpeg(args, timeout=_RENDER_TIMEOUT_S)
    logger.debug(
        "rendered %s (%d frames) in %.2f s", path, spec.num_frames, time.perf_counter() - t0
    )
    return path


def _c(color: str) -> str:
    """A solid-colour source."""
    return f"color=c={color}"


# Slowly rotating orange-to-violet gradient; colours and seed are fixed (the defaults are random).
_GRADIENTS = "gradients=c0=0xffa000:c1=0x2000c0:n=2:seed=7:speed=0.01"
# Grey Perlin noise; Ken Perlin's fixed pattern (the default pattern is random).
_PERLIN = "perlin=random_mode=ken"

# The demo videos: hard cuts between visually very different shots. Within a shot the moving
# sources (testsrc2, mandelbrot, gradients, perlin) score < 9 on PySceneDetect's content metric,
# every cut > 50 (threshold 27). demo_a and demo_d hold a 15-frame (0.6 s) shot; demo_b an 11 s one.
#   demo_a 14 s: testsrc2 4 | mandelbrot 6 | smptehdbars 0.6 | blue 3.4    cuts 100, 250, 265
#   demo_b 15 s: mandelbrot 11 | perlin 4                                   cut  275
#   demo_c 12 s: testsrc2 12                                                no cut
#   demo_d 13 s: red 2 | gradients 3 | smptehdbars 0.6 | mandelbrot 4 | green 3.4
#                                                                           cuts 50, 125, 140, 240
DEMO_VIDEOS: tuple[SynthVideo, ...] = (
    SynthVideo(
        "demo_a",
        (
            Segment("testsrc2", 4.0),
            Segment("mandelbrot", 6.0),
            Segment("smptehdbars", 0.6),
            Segment(_c("0x3050a0"), 3.4),
        ),
    ),
    SynthVideo("demo_b", (Segment("mandelbrot", 11.0), Segment(_PERLIN, 4.0))),
    SynthVideo("demo_c", (Segment("testsrc2", 12.0),)),
    SynthVideo(
        "demo_d",
        (
            Segment(_c("0xc02020"), 2.0),
            Segment(_GRADIENTS, 3.0),
            Segment("smptehdbars", 0.6),
            Segment("mandelbrot", 4.0),
            Segment(_c("0x20a040"), 3.4),
        ),
    ),
)


def write_demo_videos(folder: str | Path) -> list[Path]:
    """Render DEMO_VIDEOS as `{name}.mp4` into `folder`, plus `cuts.json` with the ground truth."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [make_video(spec, folder / f"{spec.name}.mp4") for spec in DEMO_VIDEOS]
    truth = {spec.name: spec.describe() for spec in DEMO_VIDEOS}
    (folder / "cuts.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %d demo videos and cuts.json to %s", len(paths), folder)
    return paths


# What notes.mp4 holds: prose, not anything a subtitle demuxer could take for cues.
_TEXT_BODY = (
    "These are my notes, not a video.\n"
    "Somebody saved a plain text file with an .mp4 extension; a pipeline must reject it.\n"
)
# Bytes of the real mp4 kept at the start of corrupt.mp4; everything after is garbage.
_CORRUPT_KEEP = 2048
# Seed of the deterministic garbage in corrupt.mp4.
_CORRUPT_SEED = 20240101


def write_bad_inputs(folder: str | Path) -> dict[str, Path]:
    """Write files a pipeline must reject: corrupt, empty, text-as-mp4 and audio-only mp4s."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    # corrupt.mp4: a real 2 s mp4 with its index (moov) at the end, not faststart, so overwriting
    # everything after the first 2 KB destroys the index and no demuxer can open the file.
    corrupt = folder / "corrupt.mp4"
    _render(SynthVideo("corrupt", (Segment("testsrc2", 2.0),)), corrupt, faststart=False)
    data = corrupt.read_bytes()
    garbage = random.Random(_CORRUPT_SEED).randbytes(max(0, len(data) - _CORRUPT_KEEP))
    corrupt.write_bytes(data[:_CORRUPT_KEEP] + garbage)
    out["corrupt"] = corrupt

    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    out["empty"] = empty

    text = folder / "notes.mp4"
    text.write_text(_TEXT_BODY, encoding="utf-8")
    out["text"] = text

    audio_only = folder / "audio_only.mp4"
    args = ["-y", *_DETERMINISM_ARGS, "-filter_complex", f"{_sine_source(2.0)}[a]"]
    args += ["-map", "[a]", *_audio_codec_args(), "-movflags", "+faststart"]
    run_ffmpeg([*args, "-f", "mp4", str(audio_only)], timeout=_RENDER_TIMEOUT_S)
    out["audio_only"] = audio_only
    logger.info("wrote bad inputs %s to %s", sorted(out), folder)
    return out
