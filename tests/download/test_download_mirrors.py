"""`internvid download` against plain mirrors, rows that do not fit their video, hanging servers,
killed runs, and the command's exit codes.

The plain mirror is `python -m http.server`'s handler on a ThreadingHTTPServer: it ignores
`Range:` and answers every GET with 200 and the whole file. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow.parquet as pq
import pytest

from httpserver import Request, _Handler
from internvid.config import DownloadConfig
from internvid.download import download_release
from internvid.download.probe import PROBE_BLOCK
from internvid.engine import Sample
from internvid.records import Video, make_clip_id, parse_timecode
from internvid.stages.download import DownloadStage
from test_download_command import (  # noqa: F401 (served, server: the fixtures)
    VIDEOS,
    Hook,
    HookServer,
    failures_by_item,
    mp4_duration,
    opts,
    read_jsonl,
    row,
    served,
    server,
    shard_members,
    write_meta,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("localhost_only")  # no connection leaves 127.0.0.1


# ---------------------------------------------------------------------------------------------
# A plain mirror: ignores Range, answers 200 with the whole file


class _PlainHandler(SimpleHTTPRequestHandler):
    """http.server's own handler (no Range support), recording each request."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner: PlainMirror = self.server.owner  # type: ignore[attr-defined]
        path = unquote(urlsplit(self.path).path)
        with owner.lock:
            owner.requests.append(Request("GET", path, self.headers.get("Range")))
            n = sum(1 for r in owner.requests if r.path == path and r.range is None)
            stall = owner.stall_whole.get(path) == n
        if stall:  # half the file, then nothing until released (a kill lands here)
            data = (owner.root / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            owner.stalled.set()
            owner.release.wait(60)
            self.close_connection = True
            return
        super().do_GET()


class _PlainServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: PlainMirror

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up after the part they wanted (the probe reads one block)


class PlainMirror:
    """A `python -m http.server`-like mirror of `root` on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[Request] = []  # every GET, in order
        self.lock = threading.Lock()
        self.stall_whole: dict[str, int] = {}  # path -> the unranged GET number that stalls
        self.stalled = threading.Event()  # set when a stall began
        self.release = threading.Event()  # ends a stall
        handler = partial(_PlainHandler, directory=str(root))
        self._httpd = _PlainServer(("127.0.0.1", 0), handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{YoutubeID}}.mp4"

    def gets(self, video_id: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path == f"/{video_id}.mp4")

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def mirror(served: Path):
    srv = PlainMirror(served)
    yield srv
    srv.close()


def leftovers(out: Path) -> list[str]:
    """Partial downloads, temp files, whole-file copies: what a finished run must not leave."""
    bad = []
    for p in out.rglob("*"):
        name = p.name
        if name == ".download.lock":
            continue
        if name.startswith(".") or ".tmp-" in name or name.endswith((".part", ".ytdl")):
            bad.append(str(p.relative_to(out)))
    if (out / "_download" / "sources").exists():
        bad.append("_download/sources")
    return bad


def clip_durations(out: Path, rows: list[dict]) -> dict[str, tuple[float, float]]:
    """clip id -> (duration of its mp4 in the shards, by PyAV; its row's length)."""
    members = {k.split("/", 1)[1]: v for k, v in shard_members(out).items()}
    got = {}
    for r in rows:
        start, end = parse_timecode(r["Start_timestamp"]), parse_timecode(r["End_timestamp"])
        key = make_clip_id(r["YoutubeID"], start, end)
        if f"{key}.mp4" in members:
            got[key] = (mp4_duration(members[f"{key}.mp4"]), (end - start) / 1000)
    return got


MIRROR_ROWS = [
    row("vidNasa0001", "00:00:02.000", "00:00:05.500", "a technician"),
    row("vidNasa0001", "00:00:08.040", "00:00:10.200", "a mirror"),
    row("vidPool0002", "00:00:01.234", "00:00:03.456", "cleaning a pool"),
    row("vidCount004", "00:00:00.500", "00:00:02.000", "a counter"),
]


# ---------------------------------------------------------------------------------------------
# 1. Servers that ignore Range


@pytest.mark.integration
def test_a_plain_mirror_gives_the_clips_cut_locally(
    mirror: PlainMirror, server: HookServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    meta = write_meta(tmp_path / "meta.jsonl", MIRROR_ROWS)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="internvid.download"):
        summary = download_release(meta, out, opts(mirror, rows_per_shard=3))  # type: ignore[arg-type]

    assert (summary.clips, summary.failures, summary.whole_files) == (4, 0, 3)
    durations = clip_durations(out, MIRROR_ROWS)
    assert len(durations) == 4
    for key, (got, want) in durations.items():
        assert abs(got - want) <= 0.1, (key, got, want)
    # said once for the host, at INFO
    said = [r for r in caplog.records if "ignores Range requests" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert f"127.0.0.1:{mirror.port}" in said[0].getMessage()
    # per video: the info, one probe (answered with 200: a block read, then hung up), and the
    # whole file once however many of its rows
    assert {v: mirror.gets(v) for v in ("vidNasa0001", "vidPool0002", "vidCount004")} == {
        "vidNasa0001": 3,
        "vidPool0002": 3,
        "vidCount004": 3,
    }
    assert leftovers(out) == []
    assert read_jsonl(out / "internvid.jsonl") == MIRROR_ROWS

    # the same rows from a server that serves ranges: byte for byte the same clips (the local
    # cut gives ffmpeg the arguments yt-dlp gives it for a ranged download)
    ref = tmp_path / "ref"
    assert download_release(meta, ref, opts(server, rows_per_shard=3)).clips == 4

    def mp4s(folder: Path) -> dict[str, bytes]:
        return {k: v for k, v in shard_members(folder).items() if k.endswith(".mp4")}

    assert mp4s(out) == mp4s(ref) and len(mp4s(out)) == 4


# ---------------------------------------------------------------------------------------------
# 2. Rows that do not fit the video


_CLOSED = re.compile(r"^bytes=(\d+)-(\d+)$")


@pytest.mark.integration
def test_rows_past_the_end_or_empty_fail_without_fetching_media(
    server: HookServer, served: Path, tmp_path: Path
) -> None:
    rows = [
        row("vidNasa0001", "00:00:05.000", "00:59:00.000", "past the end"),  # 13 s video
        row("vidNasa0001", "00:00:20.000", "00:00:25.000", "starts after the end"),
        row("vidNasa0001", "00:00:12.500", "00:00:13.500", "ends 0.44 s late: cut at the end"),
        row("vidPool0002", "00:00:02.000", "00:00:02.000", "zero length"),
        row("vidFade0003", "00:00:04.000", "00:00:03.000", "negative length"),
        row("vidCount004", "00:00:00.500", "00:00:01.500", "fits"),
    ]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    out = tmp_path / "out"
    summary = download_release(meta, out, opts(server, rows_per_shard=10))

    fails = failures_by_item(out)
    assert {k: (f["reason"], f["transient"]) for k, f in fails.items()} == {
        "vidNasa0001_000005000_005900000": ("clip_out_of_range", False),
        "vidNasa0001_000020000_000025000": ("clip_out_of_range", False),
        "vidPool0002_000002000_000002000": ("empty_range", False),
        "line-5": ("end_before_start", False),
    }
    assert summary.clips == 2
    # no request at all for the zero- and negative-length rows
    assert server.count("/vidPool0002.mp4") == server.count("/vidFade0003.mp4") == 0
    # vidNasa0001: its info, the probe's bounded ranges, then only the fitting row's clip
    ranges = [r.range for r in server.requests if r.path == "/vidNasa0001.mp4" and r.range]
    closed = [m for m in map(_CLOSED.match, ranges) if m]
    probe_bytes = sum(int(m[2]) - int(m[1]) + 1 for m in closed)
    size = (served / "vidNasa0001.mp4").stat().st_size
    assert all(int(m[2]) - int(m[1]) + 1 == PROBE_BLOCK for m in closed)
    assert 0 < len(closed) <= 3 and probe_bytes < size / 2
    # a fitting row's clip is read by ffmpeg with open-ended ranges (so the check can fail)
    assert any(
        r.range and not _CLOSED.match(r.range)
        for r in server.requests
        if r.path == "/vidCount004.mp4"
    )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["probes"] == len(closed) + sum(  # every video probed, ranges bounded
        1
        for r in server.requests
        if r.path == "/vidCount004.mp4" and r.range and _CLOSED.match(r.range)
    )

    # the same rows without the fitting one: not one open-ended (media) read of vidNasa0001
    server.reset()
    meta2 = write_meta(tmp_path / "meta2.jsonl", rows[:2])
    download_release(meta2, tmp_path / "out2", opts(server))
    nasa = [r for r in server.requests if r.path == "/vidNasa0001.mp4"]
    assert [r.range for r in nasa if r.range is None] == [None]  # the info fetch
    assert all(_CLOSED.match(r.range) for r in nasa if r.range)
    assert len(nasa) <= 4
