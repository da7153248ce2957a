"""`internvid download`: release rows -> clips fetched by time range from a local HTTP server.

The real sample videos are served under YouTube-like ids by tests/httpserver.py, extended here
with hooks that answer 404 / 429 / 503, drop the connection mid-body, or stall a request (to
kill the downloader at a known point). Nothing may reach the internet: connects other than to
127.0.0.1 are refused and fail the test.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import av
import pyarrow.parquet as pq
import pytest

from httpserver import LocalServer, Request, _Handler
from internvid.config import DownloadCommandConfig
from internvid.download import DownloadSetupError, download_release
from internvid.download.limiter import RateLimiter, backoff_delay
from internvid.download.units import check_video_id
from internvid.records import make_clip_id, parse_timecode

ROOT = Path(__file__).resolve().parents[2]
# served name -> real sample video (small, quick to re-encode)
VIDEOS = {
    "vidNasa0001": "nasa_13013.mp4",  # 16.6 s, two video streams (ffmpeg takes the 480x270 one)
    "vidPool0002": "mmaction_test.mp4",  # 10 s, 30 fps, 340x256
    "vidFade0003": "fades.mp4",  # 10 s, 25 fps, 480x320, mpeg4
    "vidCount004": "counter.mp4",  # 3 s, 10 fps, 1920x1080
    "vidSnow0005": "internvid_example1.mp4",  # 8 s, 5 fps, 640x480, mpeg4
}


# ---------------------------------------------------------------------------------------------
# A server with failure hooks


@dataclass
class Hook:
    """What a path answers instead of the file, for its first `times` matching requests."""

    kind: int | str  # an HTTP status (404, 429, 503), "drop" (cut the body) or "stall"
    times: int | None = None  # None: always
    ranged_only: bool = False  # only requests with a Range header (ffmpeg's clip reads)
    hits: int = 0  # matching requests answered so far
    release: threading.Event = field(default_factory=threading.Event)  # ends a stall


class _HookHandler(_Handler):
    def _answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        owner: HookServer = self.server.owner  # type: ignore[assignment]
        spec = self.headers.get("Range")
        hook = owner.hooks.get(path)
        with owner.lock:
            active = (
                hook is not None
                and (not hook.ranged_only or spec is not None)
                and (hook.times is None or hook.hits < hook.times)
            )
            if active:
                hook.hits += 1
                owner.requests.append(Request(self.command, path, spec))
        if not active:
            super()._answer(send_body)
            return
        if isinstance(hook.kind, int):
            self._send(hook.kind, b"nope\n", "text/plain", send_body)
        elif hook.kind == "drop":
            self._drop(owner.file_for(path))
        elif hook.kind == "stall":
            hook.release.wait(60)
            self.close_connection = True

    def _drop(self, file: Path | None) -> None:
        """Promise the whole file, send 2 KiB of it, then close the connection."""
        data = file.read_bytes() if file else b""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.write(data[:2048])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True


class HookServer(LocalServer):
    """LocalServer with per-path hooks."""

    def __init__(self, root: Path) -> None:
        self.hooks: dict[str, Hook] = {}
        super().__init__(root)
        self._httpd.RequestHandlerClass = _HookHandler

    def template(self) -> str:
        return self.url("{YoutubeID}.mp4")

    def gets(self, video_id: str, ranged: bool | None = None) -> int:
        """GETs of a video's file; ranged=True: clip reads (ffmpeg), False: info fetches."""
        path = f"/{video_id}.mp4"
        with self.lock:
            return sum(
                1
                for r in self.requests
                if r.path == path
                and r.method == "GET"
                and (ranged is None or (r.range is not None) == ranged)
            )

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
        for hook in self.hooks.values():
            hook.release.set()
        self.hooks.clear()


pytestmark = pytest.mark.usefixtures("localhost_only")  # no connection leaves 127.0.0.1


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real videos under YouTube-like ids (copies: the server serves only its own folder)."""
    from shared_data import REAL_VIDEOS

    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real sample videos not found at {REAL_VIDEOS} (set INTERNVID_SHARED_DATA)")
    folder = tmp_path_factory.mktemp("fetch_served")
    for vid, name in VIDEOS.items():
        shutil.copyfile(REAL_VIDEOS / name, folder / f"{vid}.mp4")
    return folder


@pytest.fixture
def server(served: Path):
    with HookServer(served) as srv:
        yield srv
        srv.reset()  # wakes any stalled handler


def row(vid: str, start: str, end: str, caption: str = "", **extra: object) -> dict:
    obj = {"YoutubeID": vid, "Start_timestamp": start, "End_timestamp": end, "Caption": caption}
    obj.update(extra)
    return obj


def write_meta(path: Path, rows: list[dict | str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def opts(server: HookServer, **kw: object) -> DownloadCommandConfig:
    base = {"url_template": server.template(), "workers": 2, "rate": 0.0, "backoff": 0.02}
    base.update(kw)
    return DownloadCommandConfig(**base)  # type: ignore[arg-type]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def shard_members(out: Path) -> dict[str, bytes]:
    """Every member of every shard tar (each tar must open and read completely)."""
    members: dict[str, bytes] = {}
    for tar_path in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for m in tar:
                f = tar.extractfile(m)
                assert f is not None
                members[f"{tar_path.stem}/{m.name}"] = f.read()
    return members


def mp4_duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base) if s.duration else c.duration / 1e6


def failures_by_item(out: Path) -> dict[str, dict]:
    return {f["item"]: f for f in read_jsonl(out / "failures.jsonl")}


# ---------------------------------------------------------------------------------------------
# Units without a server


@pytest.mark.parametrize(
    "bad",
    ["../x", "/etc/passwd", "a/b", "a\\b", "..", "-rf", "--exec", "a\x00b", "a\nb", "", "x" * 129],
)
def test_unsafe_ids_are_refused(bad: str) -> None:
    assert check_video_id(bad) is not None


def test_safe_ids_pass() -> None:
    assert check_video_id("pDq9UzfCtGw") is None
    assert check_video_id("-Dq9UzfCtGw", allow_leading_dash=True) is None  # real ids can


def test_rate_limiter_spaces_requests_across_threads() -> None:
    limiter = RateLimiter(rate=40.0, burst=1)
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(4)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 16 requests at 40/s with no burst: the last may go 15/40 s after the first
    assert time.monotonic() - t0 >= 15 / 40 - 0.02
    assert limiter.requests == 16


def test_rate_limiter_burst_and_pause_with_a_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0], sleep=sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst goes at once
    assert waits[3] == pytest.approx(0.5) and waits[4] == pytest.approx(0.5)
    limiter.pause(10.0)
    assert limiter.acquire() == pytest.approx(10.0)


def test_backoff_grows_is_jittered_and_capped() -> None:
    rng = random.Random(1)
    for attempt in range(1, 8):
        full = min(30.0, 1.0 * 2 ** (attempt - 1))
        d = backoff_delay(attempt, 1.0, 30.0, rng=rng)
        assert full / 2 <= d <= full
    assert backoff_delay(1, 1.0, 30.0, retry_after=12.0, rng=rng) == 12.0
    assert backoff_delay(1, 1.0, 30.0, retry_after=3600.0, rng=rng) == 30.0


def test_bad_options_are_refused(tmp_path: Path) -> None:
    meta = write_meta(tmp_path / "m.jsonl", [row("abc", "00:00:01.000", "00:00:02.000")])
    with pytest.raises(DownloadSetupError, match="YoutubeID"):
        download_release(meta, tmp_path / "o", DownloadCommandConfig(url_template="http://x/{id}"))
    with pytest.raises(DownloadSetupError, match="http"):
        cfg = DownloadCommandConfig(url_template="file:///{YoutubeID}")
        download_release(meta, tmp_path / "o", cfg)


# ---------------------------------------------------------------------------------------------
# Against the local server


@pytest.mark.integration
def test_clips_match_their_ranges_and_carry_the_row(server: HookServer, tmp_path: Path) -> None:
    rows = [
        row("vidNasa0001", "00:00:02.000", "00:00:05.500", "a technician", Aesthetic_Score=4.5),
        row("vidNasa0001", "00:00:08.040", "00:00:10.200", "a mirror", **{"UMT-SIM": 0.41}),
        row("vidNasa0001", "00:00:11.000", "00:00:12.000", "a lift", UMT_Score=0.3),
        row("vidPool0002", "00:00:01.234", "00:00:03.456", "cleaning a pool"),
        row("vidCount004", "00:00:00.500", "00:00:02.000", "a counter"),
    ]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    out = tmp_path / "out"
    summary = download_release(meta, out, opts(server, rows_per_shard=3))

    assert (summary.clips, summary.downloaded, summary.failures) == (5, 5, 0)
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "00000.parquet",
        "00000.tar",
        "00001.parquet",
        "00001.tar",
    ]
    members = shard_members(out)
    for r in rows:
        start, end = parse_timecode(r["Start_timestamp"]), parse_timecode(r["End_timestamp"])
        key = make_clip_id(r["YoutubeID"], start, end)
        start, end = start / 1000, end / 1000
        shard = "00000" if rows.index(r) < 3 else "00001"
        got = mp4_duration(members[f"{shard}/{key}.mp4"])
        assert abs(got - (end - start)) <= 0.1, (key, got, end - start)
        sample = json.loads(members[f"{shard}/{key}.json"])
        assert sample["release_caption"] == sample["caption"] == r["Caption"]
        assert members[f"{shard}/{key}.txt"].decode() == r["Caption"]
        assert sample["status"] == "cut" and sample["shard"] == int(shard)
        assert sample["source"] == server.url(f"{r['YoutubeID']}.mp4")
    nasa = json.loads(members["00000/vidNasa0001_000008040_000010200.json"])
    assert nasa["umt"] == 0.41 and nasa["meta"]["release_umt_key"] == "UMT-SIM"

    # the release rows come back as they went in; the tables agree with the shards
    assert read_jsonl(out / "internvid.jsonl") == rows
    assert pq.read_table(out / "clips.parquet").num_rows == 5
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clips"] == 5 and stats["failures"] == 0
    # one info fetch per video however many of its rows (ffmpeg's ranged reads fetch the clips)
    assert server.gets("vidNasa0001", ranged=False) == 1
    assert server.gets("vidNasa0001", ranged=True) >= 3
    assert server.gets("vidPool0002", ranged=False) == 1
    assert not list((out / "_download").glob("0000?"))  # finished units leave no work folders

    # a second run finds everything done: no request at all
    server.reset()
    again = download_release(meta, out, opts(server, rows_per_shard=3))
    assert server.count() == 0
    assert (again.downloaded, again.reused, again.clips) == (0, 5, 5)


@pytest.mark.integration
def test_404_429_and_dropped_connections(server: HookServer, tmp_path: Path) -> None:
    rows = [
        row("vidNasa0001", "00:00:02.000", "00:00:03.000", "ok"),
        row("missing0001", "00:00:01.000", "00:00:02.000", "404"),
        row("vidPool0002", "00:00:01.000", "00:00:02.000", "429 twice, then fine"),
        row("vidPool0002", "00:00:04.000", "00:00:05.000", "same video: no new request"),
        row("vidFade0003", "00:00:01.000", "00:00:02.000", "always 429"),
        row("vidCount004", "00:00:00.500", "00:00:01.500", "dropped once"),
        row("vidSnow0005", "00:00:01.000", "00:00:02.000", "always dropped"),
    ]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    out = tmp_path / "out"
    server.hooks["/vidPool0002.mp4"] = Hook(429, times=2)
    server.hooks["/vidFade0003.mp4"] = Hook(429)
    server.hooks["/vidCount004.mp4"] = Hook("drop", times=1, ranged_only=True)
    server.hooks["/vidSnow0005.mp4"] = Hook("drop", ranged_only=True)
    summary = download_release(meta, out, opts(server, retries=2, rows_per_shard=4))

    fails = failures_by_item(out)
    assert set(fails) == {
        "missing0001_000001000_000002000",
        "vidFade0003_000001000_000002000",
        "vidSnow0005_000001000_000002000",
    }
    f404 = fails["missing0001_000001000_000002000"]
    assert (f404["reason"], f404["transient"], f404["attempts"]) == ("not_found", False, 1)
    f429 = fails["vidFade0003_000001000_000002000"]
    assert (f429["reason"], f429["transient"], f429["attempts"]) == ("rate_limited", True, 3)
    assert server.gets("vidFade0003") == 3  # 1 try + 2 retries, then it gives up
    fdrop = fails["vidSnow0005_000001000_000002000"]
    assert (fdrop["reason"], fdrop["transient"]) == ("network", True)
    assert server.gets("missing0001") == 1  # a 404 is not retried
    assert server.gets("vidPool0002", ranged=False) == 3  # 429, 429, then the info
    assert summary.clips == 4 and summary.transient_failures == 2
    assert summary.failures_by_reason == {"network": 1, "not_found": 1, "rate_limited": 1}

    # the rerun (server healthy now) retries only the transient failures
    server.reset()
    again = download_release(meta, out, opts(server, retries=2, rows_per_shard=4))
    assert server.count("/missing0001.mp4") == 0
    assert server.count("/vidNasa0001.mp4") == server.count("/vidPool0002.mp4") == 0
    assert server.count("/vidCount004.mp4") == 0
    for v in ("vidFade0003", "vidSnow0005"):  # one info fetch each, then the clip
        assert server.gets(v, ranged=False) == 1 and server.gets(v, ranged=True) >= 1
    assert (again.downloaded, again.clips) == (2, 6)
    assert [f["reason"] for f in read_jsonl(out / "failures.jsonl")] == ["not_found"]
    assert len(read_jsonl(out / "internvid.jsonl")) == 6


@pytest.mark.integration
def test_unsafe_ids_are_rejected_before_any_request(server: HookServer, tmp_path: Path) -> None:
    bad = ["../x", "/etc/passwd", "a/b", "-rf", "--output=/tmp/pwn", "a\u0000b", "a\nb", ".."]
    rows: list[dict | str] = [row(b, "00:00:01.000", "00:00:02.000", "bad") for b in bad]
    rows.append(row("vidCount004", "00:00:00.500", "00:00:01.500", "good"))
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    out = tmp_path / "sub" / "out"
    summary = download_release(meta, out, opts(server))

    fails = read_jsonl(out / "failures.jsonl")
    assert [f["reason"] for f in fails] == ["unsafe_id"] * len(bad)
    assert [f["line"] for f in fails] == list(range(1, len(bad) + 1))
    assert all(f["transient"] is False and f["stage"] == "input" for f in fails)
    assert {r.path for r in server.requests} == {"/vidCount004.mp4"}  # nothing else asked for
    assert summary.clips == 1
    # nothing written outside the output folder
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.jsonl", "sub"]


def _cli(meta: Path, out: Path, server: HookServer, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    cmd = [
        sys.executable,
        "-c",
        "from internvid.cli import app; app()",
        "download",
        str(meta),
        "--out",
        str(out),
        "--url-template",
        server.template(),
        "--workers",
        "1",
        "--rate",
        "0",
        "--rows-per-shard",
        "2",
        "--backoff",
        "0.02",
        "--no-progress",
    ]
    with open(log, "wb") as f:  # a file, not a pipe: a full pipe would block the child
        return subprocess.Popen(
            cmd, env=env, cwd=ROOT, start_new_session=True, stdout=f, stderr=subprocess.STDOUT
        )


@pytest.mark.integration
def test_sigkill_and_rerun_downloads_nothing_twice(server: HookServer, tmp_path: Path) -> None:
    rows = [
        row("vidNasa0001", "00:00:02.000", "00:00:03.000", "n1"),
        row("vidNasa0001", "00:00:05.000", "00:00:06.500", "n2"),
        row("vidPool0002", "00:00:01.000", "00:00:02.000", "p1"),
        row("vidFade0003", "00:00:01.000", "00:00:02.000", "f1"),
        row("vidFade0003", "00:00:03.000", "00:00:04.000", "f2"),
        row("vidCount004", "00:00:00.500", "00:00:01.500", "c1"),  # stalled: the kill lands here
        row("vidSnow0005", "00:00:01.000", "00:00:02.000", "s1"),
    ]
    clips_of = {v: sum(r["YoutubeID"] == v for r in rows) for v in VIDEOS}
    assert list(VIDEOS) == [r["YoutubeID"] for r in rows if r["Caption"].endswith("1")]
    meta = write_meta(tmp_path / "meta.jsonl", rows)

    # the reference: one uninterrupted run
    ref = tmp_path / "ref"
    download_release(meta, ref, opts(server, workers=1, rows_per_shard=2))
    server.reset()

    # a run killed (SIGKILL, its whole process group) while the 6th clip downloads
    out = tmp_path / "out"
    stall = Hook("stall", ranged_only=True)
    server.hooks["/vidCount004.mp4"] = stall
    proc = _cli(meta, out, server, tmp_path / "first.log")
    deadline = time.monotonic() + 60
    while stall.hits == 0:
        assert proc.poll() is None, (tmp_path / "first.log").read_text()
        assert time.monotonic() < deadline, "the download never reached the stalled clip"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stall.release.set()
    first = {v: (server.gets(v, ranged=False), server.gets(v, ranged=True)) for v in VIDEOS}
    # only complete shards carry final names (each opens and reads to the end)
    assert sorted(p.name for p in (out / "shards").glob("*.tar")) == ["00000.tar", "00001.tar"]
    shard_members(out)
    assert not (out / "stats.json").exists()

    # the rerun
    del server.hooks["/vidCount004.mp4"]
    with server.lock:
        server.requests.clear()
    proc = _cli(meta, out, server, tmp_path / "second.log")
    assert proc.wait(120) == 0, (tmp_path / "second.log").read_text()
    second = {v: (server.gets(v, ranged=False), server.gets(v, ranged=True)) for v in VIDEOS}

    # before the kill: every video up to the stalled one was asked for (info, then clips);
    # the last video not at all
    assert all(first[v][0] == 1 and first[v][1] >= clips_of[v] for v in list(VIDEOS)[:3])
    assert first["vidCount004"] == (1, 1) and first["vidSnow0005"] == (0, 0)
    # the rerun: not one request for the videos whose clips were all done (vidFade0003's
    # second clip sat in the unfinished shard with the stalled one), and one info fetch plus
    # the clip reads for the other two
    assert second["vidNasa0001"] == second["vidPool0002"] == second["vidFade0003"] == (0, 0)
    assert second["vidCount004"][0] == second["vidSnow0005"][0] == 1
    assert second["vidCount004"][1] >= 1 and second["vidSnow0005"][1] >= 1
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["downloaded"], stats["reused"], stats["clips"]) == (2, 5, 7)
    # 2 infos + 2 probes (the served files' infos hold no duration) + 2 clips: nothing else
    assert stats["requests"] == 6

    # and the outputs are those of the uninterrupted run
    assert shard_members(out) == shard_members(ref)
    for name in ("internvid.jsonl", "failures.jsonl"):
        assert (out / name).read_bytes() == (ref / name).read_bytes()
    assert pq.read_table(out / "clips.parquet").equals(pq.read_table(ref / "clips.parquet"))
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted(
        p.name for p in (ref / "shards").iterdir()
    )
    leftovers = [p for p in out.rglob("*") if ".tmp-" in p.name or p.name.startswith(".vid")]
    assert leftovers == []


@pytest.mark.integration
@pytest.mark.allow_error_logs
def test_cli_refuses_another_unit_size(server: HookServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from internvid.cli import app

    meta = write_meta(tmp_path / "meta.jsonl", [row("missing0001", "00:00:01.000", "00:00:02.000")])
    out = tmp_path / "out"
    args = ["download", str(meta), "--out", str(out), "--url-template", server.template()]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--rows-per-shard", "3", "--no-progress", "--rate", "0"])
    assert first.exit_code == 1, first.output  # it ran; its only row failed
    assert read_jsonl(out / "failures.jsonl")[0]["reason"] == "not_found"
    second = runner.invoke(app, [*args, "--rows-per-shard", "4", "--no-progress"])
    assert second.exit_code == 2


@pytest.mark.integration
@pytest.mark.allow_error_logs
def test_cli_config_file_with_flags_over_it(server: HookServer, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from internvid.cli import app

    rows = [
        row("-dash000001", "00:00:01.000", "00:00:02.000"),
        row("missing0001", "00:00:01.000", "00:00:02.000"),
        row("missing0002", "00:00:01.000", "00:00:02.000"),
    ]
    meta = write_meta(tmp_path / "meta.jsonl", rows)
    config = tmp_path / "download.yaml"
    settings = {
        "url_template": server.template(),
        "rows_per_shard": 3,
        "rate": 0,  # an int where a float is expected: accepted
        "format": "b",
        "limit": 2,
        "allow_leading_dash": True,
    }
    config.write_text(yaml.safe_dump(settings))
    runner = CliRunner()

    def invoke(out: Path, *flags: str):
        args = ["download", str(meta), "--out", str(out), "--config", str(config), *flags]
        return runner.invoke(app, [*args, "--no-progress"])

    out = tmp_path / "file_only"
    assert invoke(out).exit_code == 1  # it ran, and every row failed
    assert json.loads((out / "_download" / "settings.json").read_text()) == {
        "rows_per_shard": 3,
        "url_template": server.template(),
        "format": "b",
    }
    assert [(f["item"], f["reason"]) for f in read_jsonl(out / "failures.jsonl")] == [
        ("-dash000001_000001000_000002000", "not_found"),  # the file allows a leading dash
        ("missing0001_000001000_000002000", "not_found"),  # limit 2: missing0002 not taken
    ]

    out = tmp_path / "flags_win"
    result = invoke(out, "--rows-per-shard", "2", "--no-allow-leading-dash", "--limit", "3")
    assert result.exit_code == 1, result.output
    assert json.loads((out / "_download" / "settings.json").read_text())["rows_per_shard"] == 2
    assert [(f["line"], f["reason"]) for f in read_jsonl(out / "failures.jsonl")] == [
        (1, "unsafe_id"),
        (2, "not_found"),
        (3, "not_found"),
    ]

    config.write_text(yaml.safe_dump({**settings, "rows_per_shrd": 3}))
    bad = invoke(tmp_path / "bad")
    assert bad.exit_code == 2
    assert "rows_per_shrd" in bad.output
    assert not (tmp_path / "bad").exists()


@pytest.mark.integration
def test_limit_then_the_full_file_keeps_what_it_has(server: HookServer, tmp_path: Path) -> None:
    rows = [
        row("vidPool0002", "00:00:01.000", "00:00:02.000", "one"),
        row("vidPool0002", "00:00:03.000", "00:00:04.000", "two"),
        row("vidPool0002", "00:00:05.000", "00:00:06.000", "three"),
    ]
    meta = tmp_path / "meta.jsonl.gz"
    with gzip.open(meta, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    first = download_release(meta, out, opts(server, rows_per_shard=2, limit=1))
    assert (first.rows, first.clips, first.downloaded) == (1, 1, 1)
    # shard 0 now covers two rows: its first clip comes back out of the tar, not the network
    server.reset()
    full = download_release(meta, out, opts(server, rows_per_shard=2))
    assert (full.rows, full.clips, full.downloaded, full.reused) == (3, 3, 2, 1)
    assert server.gets("vidPool0002", ranged=False) == 1
    assert read_jsonl(out / "internvid.jsonl") == rows
    assert sorted(k for k in shard_members(out) if k.endswith(".mp4")) == [
        "00000/vidPool0002_000001000_000002000.mp4",
        "00000/vidPool0002_000003000_000004000.mp4",
        "00001/vidPool0002_000005000_000006000.mp4",
    ]


def test_an_overlong_metadata_line_is_one_failure_row_read_past_in_chunks(tmp_path: Path) -> None:
    """download reads metadata lines bounded: a 3 MiB line is one line_too_long row, and the
    rows around it are units as usual (no request is made: units are only listed)."""
    from internvid.config import DownloadCommandConfig
    from internvid.download.units import iter_units

    good = '{"YoutubeID": "vidAAAAAAA1", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000"}'
    huge = '{"YoutubeID": "vidAAAAAAA2", "Caption": "' + "x" * (3 << 20) + '"}'
    meta = tmp_path / "m.jsonl"
    meta.write_text(f"{good}\n{huge}\n{good.replace('A1', 'A3')}\n")
    import io
    from typing import ClassVar

    from internvid.download import units as units_module
    from internvid.io.release import MAX_LINE_BYTES

    class Bounded(io.BytesIO):  # refuses whole-line iteration, records each read's bound
        sizes: ClassVar[list[int]] = []

        def __iter__(self):
            raise AssertionError("metadata iterated line by line: unbounded")

        def readline(self, size: int | None = -1) -> bytes:
            self.sizes.append(size if size is not None else -1)
            return super().readline(size)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(units_module, "open_metadata", lambda path: Bounded(path.read_bytes()))
    failures: list[dict] = []
    try:
        units = list(iter_units(meta, DownloadCommandConfig(), failures))
    finally:
        monkey.undo()
    assert Bounded.sizes and 0 < max(Bounded.sizes) <= MAX_LINE_BYTES + 1
    ids = [r.row.youtube_id for u in units for r in u.rows]
    assert ids == ["vidAAAAAAA1", "vidAAAAAAA3"]
    assert [r.line for u in units for r in u.rows] == [1, 3]
    assert [(f["line"], f["reason"]) for f in failures] == [(2, "line_too_long")]
