"""`internvid download` against plain mirrors, rows that do not fit their video, hanging servers,
killed runs, and the command's exit codes.

The plain mirror is `python -m http.server`'s handler on a ThreadingHTTPServer: it ignores
`Range:` and answers every GET with 200 and the whole file. Everything binds 127.0.0.1.
"""

from __future__ import annotations

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
import test_download_command as base
from test_download_command import (
    Hook,
    HookServer,
    failures_by_item,
    mp4_duration,
    opts,
    read_jsonl,
    row,
    shard_members,
    write_meta,
)

from httpserver import Request
from internvid.config import DownloadConfig
from internvid.download import download_release
from internvid.download.probe import PROBE_BLOCK
from internvid.engine import Sample
from internvid.io.lock import hold_lock
from internvid.records import Video, make_clip_id, parse_timecode
from internvid.stages.download import DownloadStage

served = base.served  # the real videos under YouTube-like ids (a fixture)
server = base.server  # a HookServer serving them, with ranges (a fixture)

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


# ---------------------------------------------------------------------------------------------
# Hanging servers are `timeout`


class _OpenEndedStallHandler(base._HookHandler):
    """Also stalls ffmpeg's reads (open-ended `bytes=N-` ranges) of the paths in `stall_open`;
    the probe's bounded ranges are answered."""

    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        owner = self.server.owner  # type: ignore[attr-defined]
        spec = self.headers.get("Range") or ""
        if path in owner.stall_open and re.fullmatch(r"bytes=\d+-", spec):
            with owner.lock:
                owner.requests.append(Request(self.command, path, spec))
            owner.stall_release.wait(60)
            self.close_connection = True
            return
        super()._answer(send_body)


@pytest.mark.integration
def test_a_hanging_server_is_a_timeout(server: HookServer, tmp_path: Path) -> None:
    server.stall_open = {"/vidCount004.mp4"}  # type: ignore[attr-defined]
    server.stall_release = threading.Event()  # type: ignore[attr-defined]
    server._httpd.RequestHandlerClass = _OpenEndedStallHandler
    server.hooks["/vidPool0002.mp4"] = Hook("stall")  # no answer at all: the info times out
    server.hooks["/vidFade0003.mp4"] = Hook("stall", ranged_only=True)  # the probe times out
    rows = [
        row("vidPool0002", "00:00:01.000", "00:00:02.000"),
        row("vidFade0003", "00:00:01.000", "00:00:02.000"),
        row("vidCount004", "00:00:00.500", "00:00:01.500"),  # ffmpeg's reads hang
        row("vidNasa0001", "00:00:02.000", "00:00:03.000"),  # fine
    ]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    out = tmp_path / "out"
    try:
        summary = download_release(
            meta, out, opts(server, retries=1, socket_timeout=1.0, workers=4)
        )
    finally:
        server.stall_release.set()  # type: ignore[attr-defined]
    fails = failures_by_item(out)
    assert {k: (f["reason"], f["transient"], f["attempts"]) for k, f in fails.items()} == {
        "vidPool0002_000001000_000002000": ("timeout", True, 2),
        "vidFade0003_000001000_000002000": ("timeout", True, 2),
        "vidCount004_000000500_000001500": ("timeout", True, 2),
    }
    assert "read timeout" in fails["vidCount004_000000500_000001500"]["message"]
    assert summary.clips == 1 and summary.failures_by_reason == {"timeout": 3}
    assert leftovers(out) == []


@pytest.mark.allow_error_logs
def test_the_run_stage_calls_a_hanging_server_a_timeout(server: HookServer, tmp_path: Path):

    server.hooks["/vidPool0002.mp4"] = Hook("stall")
    stage = DownloadStage(DownloadConfig(retries=0, socket_timeout=1.0), tmp_path / "dl")
    sample = Sample(video=Video(id="hang", source=server.url("vidPool0002.mp4"), meta={}))
    stats, failures = stage.new_stats(), []
    assert stage.run_batch([sample], stats, failures) == []
    assert [(f.item, f.stage, f.reason) for f in failures] == [("hang", "download", "timeout")]


# ---------------------------------------------------------------------------------------------
# 3. Nothing left behind: a killed run against a plain mirror, resumed


def _cli(meta: Path, out: Path, template: str, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    cmd = [sys.executable, "-m", "internvid", "download", str(meta), "--out", str(out)]
    cmd += ["--url-template", template, "--rate", "0", "--backoff", "0.02", "--no-progress"]
    cmd += list(extra)
    with open(log, "ab") as f:  # a file, not a pipe: a full pipe would block the child
        return subprocess.Popen(
            cmd, env=env, cwd=ROOT, start_new_session=True, stdout=f, stderr=subprocess.STDOUT
        )


@pytest.mark.slow
@pytest.mark.integration
def test_killed_mid_whole_file_then_resumed_leaves_nothing(
    mirror: PlainMirror, tmp_path: Path
) -> None:
    rows = [*MIRROR_ROWS, row("vidSnow0005", "00:00:01.000", "00:00:02.000", "snow")]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    args = ("--workers", "1", "--rows-per-shard", "2")
    ref = tmp_path / "ref"
    assert _cli(meta, ref, mirror.template(), tmp_path / "ref.log", *args).wait(120) == 0

    # killed (SIGKILL, its process group) while vidPool0002's whole file is half sent
    with mirror.lock:  # unranged GETs of the file so far: the next run's info, then its file
        seen = sum(1 for r in mirror.requests if r.path == "/vidPool0002.mp4" and not r.range)
    mirror.stall_whole["/vidPool0002.mp4"] = seen + 2
    out = tmp_path / "out"
    proc = _cli(meta, out, mirror.template(), tmp_path / "first.log", *args)
    assert mirror.stalled.wait(60), (tmp_path / "first.log").read_text()
    time.sleep(0.3)  # the half it got is on disk
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    mirror.release.set()
    partial_files = [p.name for p in (out / "_download" / "sources").iterdir()]
    assert any(n.endswith(".part") for n in partial_files), partial_files
    assert not (out / "stats.json").exists()

    del mirror.stall_whole["/vidPool0002.mp4"]
    second = _cli(meta, out, mirror.template(), tmp_path / "second.log", *args)
    assert second.wait(120) == 0, (tmp_path / "second.log").read_text()
    assert leftovers(out) == []
    assert leftovers(ref) == []
    assert shard_members(out) == shard_members(ref)
    for name in ("internvid.jsonl", "failures.jsonl"):
        assert (out / name).read_bytes() == (ref / name).read_bytes()
    assert pq.read_table(out / "clips.parquet").equals(pq.read_table(ref / "clips.parquet"))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clips"] == 5 and stats["reused"] == 2  # shard 0 was committed before the kill


# ---------------------------------------------------------------------------------------------
# 4. Exit codes


def _exit(meta: Path, out: Path, template: str, log: Path, *extra: str) -> int:
    return _cli(meta, out, template, log, "--retries", "0", *extra).wait(120)


@pytest.mark.integration
def test_exit_codes_clean_and_all_missing(server: HookServer, tmp_path: Path) -> None:
    t = server.template()
    log = tmp_path / "cli.log"
    good = [row("vidCount004", "00:00:00.500", "00:00:01.500")]
    missing = [
        row("missing0001", "00:00:01.000", "00:00:02.000"),
        row("missing0002", "00:00:01.000", "00:00:02.000"),
    ]
    assert _exit(write_meta(tmp_path / "c.jsonl", good), tmp_path / "clean", t, log) == 0
    assert _exit(write_meta(tmp_path / "m.jsonl", missing), tmp_path / "missing", t, log) == 1
    assert [f["reason"] for f in read_jsonl(tmp_path / "missing" / "failures.jsonl")] == [
        "not_found",
        "not_found",
    ]
    assert json.loads((tmp_path / "clean" / "stats.json").read_text())["clips"] == 1


@pytest.mark.slow
@pytest.mark.integration
def test_exit_codes_of_failed_and_partial_runs(server: HookServer, tmp_path: Path) -> None:
    t = server.template()
    log = tmp_path / "cli.log"
    good = [
        row("vidCount004", "00:00:00.500", "00:00:01.500"),
        row("vidCount004", "00:00:01.000", "00:00:02.000"),
    ]
    missing = [
        row("missing0001", "00:00:01.000", "00:00:02.000"),
        row("missing0002", "00:00:01.000", "00:00:02.000"),
    ]
    failed = [
        missing[0],
        row("vidNasa0001", "00:00:30.000", "00:00:31.000"),  # clip_out_of_range
        row("vidPool0002", "00:00:01.000", "00:00:01.000"),  # empty_range
        row("vidFade0003", "00:00:02.000", "00:00:01.000"),  # end_before_start (input)
    ]
    partial_rows = [good[0], missing[0]]

    def meta(name: str, rows: list[dict]) -> Path:
        return write_meta(tmp_path / f"{name}.jsonl", rows)

    assert _exit(meta("failed", failed), tmp_path / "failed", t, log) == 1
    reasons = [f["reason"] for f in read_jsonl(tmp_path / "failed" / "failures.jsonl")]
    assert reasons == ["not_found", "clip_out_of_range", "empty_range", "end_before_start"]
    # partial: 1 of 2 rows failed; a rerun of the finished folder answers the same way
    p, po = meta("partial", partial_rows), tmp_path / "partial"
    assert _exit(p, po, t, log) == 0
    assert _exit(p, po, t, log, "--max-failure-rate", "0.5") == 0  # 50 % is not above 50 %
    assert _exit(p, po, t, log, "--max-failure-rate", "0.25") == 3
    assert json.loads((po / "stats.json").read_text())["clips"] == 1


@pytest.mark.integration
def test_exit_codes_when_it_cannot_start_or_is_locked(server: HookServer, tmp_path: Path) -> None:
    t = server.template()
    log = tmp_path / "cli.log"
    p = write_meta(tmp_path / "p.jsonl", [row("vidCount004", "00:00:00.500", "00:00:01.500")])
    po = tmp_path / "locked"
    po.mkdir()
    assert _exit(p, tmp_path / "bad1", "http://127.0.0.1/{id}", log) == 2
    assert _exit(p, tmp_path / "bad2", t, log, "--max-failure-rate", "1.5") == 2
    assert _exit(tmp_path / "nope.jsonl", tmp_path / "bad3", t, log) == 2
    assert not (tmp_path / "bad1").exists() and not (tmp_path / "bad2").exists()
    # another command holds the folder (the lock run, score and train-frames share)
    with hold_lock(po, "run"):
        assert _exit(p, po, t, log) == 4
        assert f"in use by `internvid run` (pid {os.getpid()}" in log.read_text()
