"""Probe a video file with PyAV: stream facts, or a failure with a clear reason."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from internvid.engine.stage import StageError


@dataclass
class ProbeResult:
    """What the container and the first decoded frame say about a file."""

    duration: float  # seconds (video stream duration, else container duration, else frames / fps)
    fps: float  # average frame rate of the first video stream
    num_frames: int | None  # frames in the video stream when the container records it
    width: int  # coded width in pixels
    height: int  # coded height in pixels
    codec: str  # video codec name
    has_audio: bool  # an audio stream exists
    rotation: int  # display rotation in degrees, normalised to 0/90/180/270
    size_bytes: int  # file size


def _looks_like_text(path: Path) -> bool:
    head = path.read_bytes()[:4096] if path.stat().st_size else b""
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def stream_fps(stream: av.video.stream.VideoStream) -> float:
    """A video stream's frame rate (average, else guessed, else base); 0.0 when unknown."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(path: str | Path) -> ProbeResult:
    """Open `path`, read its first video stream and decode one frame.

    Raises StageError with reason: missing_file, empty_file, not_a_video (text or other
    non-media), corrupt (a media container FFmpeg cannot open), no_video_stream,
    undecodable (opens, but no frame decodes).
    """
    path = Path(path)
    if not path.is_file():
        raise StageError("missing_file", f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise StageError("empty_file", f"file is empty (0 bytes): {path.name}")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        if _looks_like_text(path):
            raise StageError("not_a_video", f"{path.name} is a text file, not a video") from e
        raise StageError("corrupt", f"cannot open {path.name}: {e}") from e
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise StageError(
                "no_video_stream", f"{path.name} has no video stream (streams: {', '.join(kinds)})"
            )
        stream = container.streams.video[0]
        fps = stream_fps(stream)
        if fps <= 0:
            raise StageError("undecodable", f"{path.name}: video stream has no frame rate")
        try:
            frame = next(container.decode(stream))
        except (av.error.FFmpegError, StopIteration, OSError) as e:
            raise StageError("undecodable", f"{path.name}: no video frame decodes ({e!r})") from e
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        if not duration and container.duration:
            duration = container.duration / av.time_base
        num_frames = stream.frames or None
        if not duration and num_frames:
            duration = num_frames / fps
        if not duration:
            raise StageError("undecodable", f"{path.name}: duration unknown")
        rotation = round(getattr(frame, "rotation", 0) or 0) % 360
        return ProbeResult(
            duration=duration,
            fps=fps,
            num_frames=num_frames,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
            rotation=rotation,
            size_bytes=os.path.getsize(path),
        )
