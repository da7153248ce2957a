"""A direct video URL probed before any clip is cut: its duration and whether it serves ranges."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from internvid.download.errors import FetchError, classify_exception

__all__ = ["PROBE_BLOCK", "PROBE_MAX_BYTES", "RemoteProbe", "probe_remote"]

log = logging.getLogger(__name__)

PROBE_BLOCK = 64 * 1024  # bytes asked for per ranged request (ffmpeg reads 32 KiB at a time)
PROBE_MAX_BYTES = 8 * 1024 * 1024  # bytes a probe may read at most (a large moov) before it stops


@dataclass
class RemoteProbe:
    """What one probe of a URL found."""

    ranges: bool  # the server answered a ranged GET with 206 (False: 200 and the whole file)
    duration: float | None  # seconds, from the container's header (None: it could not be read)
    size: int | None  # bytes of the whole file (Content-Range / Content-Length), if given
    requests: int  # GETs made
    bytes_read: int  # body bytes read


class _NoMoreBytes(Exception):
    """The probe may not read further (a server without ranges, or the byte cap)."""


class _RangeFile(io.RawIOBase):
    """A seekable read-only file over HTTP: bounded `Range: bytes=a-b` GETs, blocks cached.

    The first answer tells whether the server honours ranges: a 200 gives the file's first
    block only (read, then the connection is closed) and nothing after it.
    """

    def __init__(self, urlopen: Any, url: str, headers: dict[str, str]) -> None:
        self._urlopen, self.url, self.headers = urlopen, url, headers
        self.pos = 0  # current offset
        self.size: int | None = None  # the file's size once a response said it
        self.ranges: bool | None = None  # None until the first response
        self.blocks: dict[int, bytes] = {}  # block index -> bytes (the last may be short)
        self.requests = 0  # GETs made
        self.bytes_read = 0  # body bytes read
        self.error: BaseException | None = None  # a network error met inside PyAV's reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            if self.size is None:
                self._block(0)
            if self.size is None:
                raise _NoMoreBytes  # no size given: the end cannot be found
            self.pos = self.size + offset
        else:
            self.pos = offset if whence == io.SEEK_SET else self.pos + offset
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.size is not None and self.pos >= self.size:
            return 0
        index, skip = divmod(self.pos, PROBE_BLOCK)
        try:
            data = self._block(index)
        except _NoMoreBytes:
            return 0  # an end of file for the demuxer: it stops, the probe reports no duration
        except Exception as e:
            self.error = self.error or e
            raise
        chunk = data[skip : skip + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def _block(self, index: int) -> bytes:
        if index in self.blocks:
            return self.blocks[index]
        if self.ranges is False or self.bytes_read >= PROBE_MAX_BYTES:
            raise _NoMoreBytes
        from yt_dlp.networking import Request

        first = index * PROBE_BLOCK
        headers = {**self.headers, "Range": f"bytes={first}-{first + PROBE_BLOCK - 1}"}
        self.requests += 1
        with self._urlopen(Request(self.url, headers=headers)) as resp:
            status = getattr(resp, "status", 200)
            self.ranges = status == 206
            if status == 206:
                self.size = _total_from_content_range(resp.headers.get("Content-Range"))
            elif status == 200:
                length = resp.headers.get("Content-Length")
                self.size = int(length) if length and length.isdigit() else None
                if first != 0:
                    raise _NoMoreBytes  # the server sends from byte 0 whatever we ask
            data = resp.read(PROBE_BLOCK)  # a 200 sends the whole file: read one block, hang up
        self.bytes_read += len(data)
        self.blocks[index] = data
        if len(data) < PROBE_BLOCK and self.size is None:
            self.size = first + len(data)
        return data


def _total_from_content_range(value: str | None) -> int | None:
    """The total of "bytes 0-65535/672981" (None when it is "*" or missing)."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def probe_remote(urlopen: Any, url: str, headers: dict[str, str]) -> RemoteProbe:
    """Read a video's header through bounded ranged GETs (`urlopen`: yt-dlp's, for its
    networking); its duration, and whether the server honours `Range:`.

    Raises FetchError when the server fails (404, 5xx, a timeout). A file that is not a video
    or whose header lies beyond what could be read gives `duration=None`, not an error.
    """
    import av

    f = _RangeFile(urlopen, url, headers)
    duration: float | None = None
    try:
        f._block(0)  # the first answer: a status, ranges or not, the size
        with av.open(f, mode="r") as container:
            if container.duration:
                duration = container.duration / 1e6
            else:
                lengths = [
                    float(s.duration * s.time_base)
                    for s in container.streams
                    if s.duration and s.time_base
                ]
                duration = max(lengths) if lengths else None
    except (av.FFmpegError, _NoMoreBytes) as e:
        if f.error is not None:  # a request inside PyAV's reads failed: that is the answer
            raise classify_exception(f.error) from f.error
        log.debug("%s: no duration from the first %d bytes: %s", url, f.bytes_read, e)
    except FetchError:
        raise
    except Exception as e:  # the server's answer (an HTTP status, a timeout, a reset)
        raise classify_exception(f.error or e) from e
    return RemoteProbe(f.ranges is not False, duration, f.size, f.requests, f.bytes_read)
