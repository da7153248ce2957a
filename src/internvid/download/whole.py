"""Servers that ignore `Range:`: whole files fetched once per video, clips cut from them locally."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from internvid.download.errors import MAX_REASON_MESSAGE, FetchError

__all__ = ["KEEP_SOURCES", "SourceCache", "cut_local"]

log = logging.getLogger(__name__)

KEEP_SOURCES = 2  # whole files kept after their last row is done (rows of a video are adjacent)


class SourceCache:
    """Whole files by video id: fetched once (concurrent rows wait), deleted when idle.

    A file in use (acquired, not yet released) is never deleted; of the idle ones, the
    `keep` most recently used stay. A failed fetch is cached like a file, so the other rows of
    that video fail without another request.
    """

    def __init__(self, fetch: Callable[[str], tuple[Path, float]], keep: int = KEEP_SOURCES):
        self._fetch, self._keep = fetch, keep
        # video id -> [future of (file, duration in s), rows using it now]
        self._entries: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, video_id: str) -> tuple[Path, float]:
        """The video's whole file and duration (fetched by the first asker); `release` after."""
        with self._lock:
            entry = self._entries.get(video_id)
            owner = entry is None
            if entry is None:
                entry = [Future(), 0]
                self._entries[video_id] = entry
            entry[1] += 1
            self._entries.move_to_end(video_id)
        fut: Future[tuple[Path, float]] = entry[0]
        if owner:
            try:
                fut.set_result(self._fetch(video_id))
            except BaseException as e:  # waiting rows must not hang
                fut.set_exception(e)
        try:
            return fut.result()
        except BaseException:
            self.release(video_id)
            raise

    def release(self, video_id: str) -> None:
        """One row is done with the file; idle files beyond `keep` are deleted."""
        drop: list[Future[tuple[Path, float]]] = []
        with self._lock:
            entry = self._entries.get(video_id)
            if entry is not None:
                entry[1] -= 1
            idle = [k for k, (f, users) in self._entries.items() if users <= 0 and f.done()]
            for key in idle[: max(0, len(idle) - self._keep)]:
                drop.append(self._entries.pop(key)[0])
        for f in drop:
            _remove(f)

    def clear(self) -> None:
        """Delete every file (at the end of a run)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for fut, _ in entries:
            if fut.done():
                _remove(fut)


def _remove(fut: Future[tuple[Path, float]]) -> None:
    if fut.exception() is None:
        fut.result()[0].unlink(missing_ok=True)


def cut_local(ffmpeg: str, source: Path, start: float, end: float, out: Path) -> None:
    """Cut [start, end) of a local file into `out` (mp4): the arguments yt-dlp gives ffmpeg for
    a ranged download with keyframes forced at the cuts, so both ways give the same clip."""
    cmd = [
        ffmpeg,
        "-y",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        str(start),
        "-t",
        str(end - start),
        "-i",
        str(source),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)  # a list: no shell
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        said = " ".join(proc.stderr.decode(errors="replace").split())[-300:]
        raise FetchError(
            "cut_failed",
            f"ffmpeg exited with code {proc.returncode} cutting the downloaded file: {said}"[
                :MAX_REASON_MESSAGE
            ],
            transient=False,
        )
