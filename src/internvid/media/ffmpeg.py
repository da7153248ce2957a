"""The ffmpeg binary (system or imageio-ffmpeg's) and a safe way to run it: list args, no shell."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero; the message ends with the tail of its stderr."""


@functools.cache
def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary: $INTERNVID_FFMPEG, else imageio-ffmpeg's static build, else PATH."""
    env = os.environ.get("INTERNVID_FFMPEG")
    if env:
        return env
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        found = shutil.which("ffmpeg")
        if found:
            return found
        raise FFmpegError(
            "no ffmpeg found: `pip install imageio-ffmpeg` or put ffmpeg on PATH"
        ) from None


def run_ffmpeg(args: Sequence[str], timeout: float | None = None) -> None:
    """Run `ffmpeg -nostdin -hide_banner -loglevel error ARGS...`; raise FFmpegError on failure."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *map(str, args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise FFmpegError(f"ffmpeg timed out after {timeout} s") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-800:]
        raise FFmpegError(f"ffmpeg exited with {proc.returncode}: {tail}")
