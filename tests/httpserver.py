"""A small local HTTP server for tests: serves a folder with Range support, counts requests.

`python -m http.server` ignores `Range:`; this handler answers `Range: bytes=a-b` (also `a-` and
`-n`) with 206 Partial Content, and always sends Content-Length and `Accept-Ranges: bytes`. Fixed
responses (a 404, a tiny text body) can be set per path in `routes`. It binds 127.0.0.1 only.

    with LocalServer(folder) as server:
        url = server.url("clip.mp4")
        ...
        assert server.count("/clip.mp4") == 2
"""

from __future__ import annotations

import mimetypes
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Route:
    """A fixed response for one path (instead of a file from the folder)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str  # "GET", "HEAD"
    path: str  # the URL path, decoded, without the query
    range: str | None  # the Range header as sent, or None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(Request(self.command, path, self.headers.get("Range")))
        route = owner.routes.get(path)
        if route is not None:
            self._send(route.status, route.body, route.content_type, send_body)
            return
        file = owner.file_for(path)
        if file is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", send_body)
            return
        data = file.read_bytes()
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        spec = self.headers.get("Range")
        if spec is None:
            self._send(200, data, ctype, send_body)
            return
        span = _parse_range(spec, len(data))
        if span is None:  # not a single bytes range we understand: the whole file (RFC 9110)
            self._send(200, data, ctype, send_body)
        elif span == "unsatisfiable":
            self._send(416, b"", ctype, send_body, {"Content-Range": f"bytes */{len(data)}"})
        else:
            first, last = span
            self._send(
                206,
                data[first : last + 1],
                ctype,
                send_body,
                {"Content-Range": f"bytes {first}-{last}/{len(data)}"},
            )

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up early (it read only a prefix)


def _parse_range(spec: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte of a single `bytes=` range, "unsatisfiable", or None to ignore it."""
    m = _RANGE.match(spec.strip().replace(" ", ""))
    if m is None:
        return None  # several ranges or another unit: ignored
    a, b = m.groups()
    if not a and not b:
        return None
    if not a:  # bytes=-n: the last n bytes
        n = int(b)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(a)
    last = min(int(b), size - 1) if b else size - 1
    if b and int(b) < first:
        return None  # invalid range: ignored
    if first >= size:
        return "unsatisfiable"
    return first, last


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer


class LocalServer:
    """Serves `root` on 127.0.0.1 at a free port, in a thread, until `close()` (or `with` ends)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.routes: dict[str, Route] = {}  # path -> fixed response
        self.requests: list[Request] = []  # every request, in order
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def file_for(self, path: str) -> Path | None:
        """The file under root that a URL path names, or None (missing, or outside root)."""
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def count(self, path: str | None = None) -> int:
        """Requests so far (for one path when given)."""
        with self.lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
