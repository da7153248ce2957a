"""Download stage: yt-dlp fetches URLs from a local HTTP server (127.0.0.1 only) into OUT/downloads.

A small synthetic mp4 is rendered once and served by tests/httpserver.py, which honours Range
requests and counts what it is asked for. Nothing here may reach the internet: every socket
connect is checked to go to 127.0.0.1.
"""

from __future__ import annotations

import copy
import urllib.error
import urllib.request
from pathlib import Path

import av
import pytest

from httpserver import LocalServer, Route
from internvid.config import DownloadConfig
from internvid.download.ytdlp import MIN_BYTES, format_selector, is_url
from internvid.engine import Failure, Sample
from internvid.media.synth import Segment, SynthVideo, make_video
from internvid.records import Video
from internvid.stages.download import DownloadStage

TINY_BODY = b"hello, this is not a video\n"


pytestmark = pytest.mark.usefixtures("localhost_only")  # no connection leaves 127.0.0.1


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding clip.mp4, a 1 s synthetic video (rendered once for the session)."""
    folder = tmp_path_factory.mktemp("served")
    make_video(SynthVideo("clip", (Segment("testsrc2", 1.0),)), folder / "clip.mp4")
    assert (folder / "clip.mp4").stat().st_size > 10 * MIN_BYTES
    return folder


@pytest.fixture
def video_bytes(served: Path) -> bytes:
    return (served / "clip.mp4").read_bytes()


@pytest.fixture
def server(served: Path):
    """The served folder on a fresh server, with a 404 route and two non-video bodies."""
    with LocalServer(served) as srv:
        srv.routes["/gone.mp4"] = Route(404, b"<h1>Not Found</h1>", "text/html")
        srv.routes["/tiny.mp4"] = Route(200, TINY_BODY, "video/mp4")
        srv.routes["/page.html"] = Route(200, b"<html><body>no video</body></html>", "text/html")
        yield srv


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


@pytest.fixture
def stage(folder: Path) -> DownloadStage:
    return DownloadStage(DownloadConfig(retries=0, socket_timeout=10), folder)


def url_sample(video_id: str, url: str) -> Sample:
    return Sample(video=Video(id=video_id, source=url, meta={"origin": "url"}))


def run(stage: DownloadStage, batch: list[Sample]) -> tuple[list[Sample], list[Failure], object]:
    stats, failures = stage.new_stats(), []
    out = stage.run_batch(batch, stats, failures)
    return out, failures, stats


# --- the test server itself -------------------------------------------------------------------


def test_server_honours_range_requests(server: LocalServer, video_bytes: bytes):
    def get(path: str, rng: str | None = None, method: str = "GET"):
        req = urllib.request.Request(server.url(path), method=method)
        if rng:
            req.add_header("Range", rng)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    size = len(video_bytes)
    status, headers, body = get("clip.mp4")
    assert (status, body) == (200, video_bytes)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == str(size)
    assert headers["Content-Type"] == "video/mp4"

    status, headers, body = get("clip.mp4", "bytes=10-19")
    assert (status, body) == (206, video_bytes[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{size}"
    assert headers["Content-Length"] == "10"

    status, headers, body = get("clip.mp4", f"bytes={size - 100}-")
    assert (status, body) == (206, video_bytes[-100:])
    status, headers, body = get("clip.mp4", "bytes=-7")
    assert (status, body) == (206, video_bytes[-7:])
    status, headers, body = get("clip.mp4", f"bytes=0-{size * 2}")  # clamped to the file
    assert (status, body) == (206, video_bytes)
    status, headers, _ = get("clip.mp4", f"bytes={size}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"

    status, headers, body = get("clip.mp4", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(size))
    assert get("gone.mp4")[0] == 404
    assert get("no/such/file.mp4")[0] == 404
    assert get("../../etc/passwd")[0] == 404
    assert server.count("/clip.mp4") == 7


# --- fetching ---------------------------------------------------------------------------------


def test_url_is_downloaded_into_the_folder_named_by_our_id(
    stage: DownloadStage, server: LocalServer, folder: Path, video_bytes: bytes
):
    url = server.url("clip.mp4")
    sample = url_sample("my_clip", url)

    out, failures, stats = run(stage, [sample])

    assert failures == []
    assert out == [sample]
    expected = folder / "my_clip.mp4"  # named by our id, not by the remote file name
    assert sample.video.path == str(expected)
    assert expected.read_bytes() == video_bytes
    assert sorted(p.name for p in folder.iterdir()) == ["my_clip.mp4"]  # no .part left over
    assert sample.video.source == url  # the source stays what the user gave
    assert sample.video.meta["origin"] == "url"
    assert sample.video.meta["extractor"] == "generic"
    assert (stats.items_in, stats.items_out, dict(stats.failed)) == (1, 1, {})
    assert server.count("/clip.mp4") >= 1

    # a second run (a resumed job) reuses the file without asking the server again
    before = server.count()
    again = url_sample("my_clip", url)
    out, failures, _ = run(stage, [again])
    assert failures == [] and out == [again]
    assert again.video.path == str(expected)
    assert server.count() == before
    assert expected.read_bytes() == video_bytes


def test_partial_download_is_resumed_with_a_range_request(
    stage: DownloadStage, server: LocalServer, folder: Path, video_bytes: bytes
):
    folder.mkdir(parents=True)
    half = len(video_bytes) // 2
    (folder / "resumed.mp4.part").write_bytes(video_bytes[:half])  # an interrupted download

    out, failures, _ = run(stage, [url_sample("resumed", server.url("clip.mp4"))])

    assert failures == []
    assert Path(out[0].video.path).read_bytes() == video_bytes
    assert f"bytes={half}-" in [r.range for r in server.requests if r.path == "/clip.mp4"]
    assert sorted(p.name for p in folder.iterdir()) == ["resumed.mp4"]


def test_a_too_small_existing_file_is_fetched_again(
    stage: DownloadStage, server: LocalServer, folder: Path, video_bytes: bytes
):
    folder.mkdir(parents=True)
    (folder / "small.mp4").write_bytes(b"x" * (MIN_BYTES - 1))  # an error page saved earlier
    out, failures, _ = run(stage, [url_sample("small", server.url("clip.mp4"))])
    assert failures == []
    assert Path(out[0].video.path).read_bytes() == video_bytes
    assert server.count("/clip.mp4") >= 1


def test_local_file_sample_passes_through_untouched(
    stage: DownloadStage, server: LocalServer, folder: Path, served: Path
):
    src = str(served / "clip.mp4")
    sample = Sample(video=Video(id="clip", source=src, path=src, meta={"origin": "local"}))
    before = copy.deepcopy(sample)

    out, failures, stats = run(stage, [sample])

    assert failures == [] and out == [sample]
    assert out[0] is sample
    assert sample == before
    assert not folder.exists()  # nothing downloaded, not even the folder made
    assert server.count() == 0
    assert (stats.items_in, stats.items_out) == (1, 1)


def test_404_fails_that_item_only(
    stage: DownloadStage, server: LocalServer, folder: Path, served: Path, video_bytes: bytes
):
    good = url_sample("good", server.url("clip.mp4"))
    gone = url_sample("gone", server.url("gone.mp4"))
    missing = url_sample("missing", server.url("not/there.mp4"))  # no such file: 404 too
    local = Sample(video=Video(id="local", source=str(served / "clip.mp4")))

    out, failures, stats = run(stage, [good, gone, missing, local])

    assert out == [good, local]
    assert Path(good.video.path).read_bytes() == video_bytes
    assert [(f.item, f.stage, f.reason) for f in failures] == [
        ("gone", "download", "not_found"),
        ("missing", "download", "not_found"),
    ]
    assert failures[0].source == server.url("gone.mp4")
    assert "404" in failures[0].message
    assert gone.video.path is None
    assert (stats.items_in, stats.items_out) == (4, 2)
    assert dict(stats.failed) == {"not_found": 2}
    assert sorted(p.name for p in folder.iterdir()) == ["good.mp4"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        # served as video/mp4, so yt-dlp saves it; the stage refuses it as too small
        ("tiny.mp4", f"downloaded only {len(TINY_BODY)} bytes"),
        # an HTML page without a video: yt-dlp's generic extractor finds nothing
        ("page.html", "Unsupported URL"),
    ],
)
def test_a_non_video_body_is_a_failure(
    stage: DownloadStage, server: LocalServer, folder: Path, path: str, message: str
):
    good = url_sample("good", server.url("clip.mp4"))
    bad = url_sample("bad", server.url(path))

    out, failures, stats = run(stage, [bad, good])

    assert out == [good]
    assert [(f.item, f.reason) for f in failures] == [("bad", "other")]
    assert message in failures[0].message
    assert bad.video.path is None
    assert dict(stats.failed) == {"other": 1}
    assert not list(folder.glob("bad*"))  # the tiny body is not left for a later run to reuse


def test_the_downloaded_file_then_probes_as_a_video(
    stage: DownloadStage, server: LocalServer, video_bytes: bytes
):
    out, failures, _ = run(stage, [url_sample("probe_me", server.url("clip.mp4"))])
    assert failures == []
    with av.open(out[0].video.path) as container:
        assert container.streams.video[0].frames == 25


def test_is_url():
    assert is_url("http://127.0.0.1:8000/a.mp4") and is_url("https://youtu.be/pDq9UzfCtGw")
    assert not is_url("/data/a.mp4") and not is_url("ftp://host/a.mp4")
    assert not is_url("videos/http://x")


# --- the shared taxonomy and format policy -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "not_found"), (410, "not_found"), (429, "rate_limited"), (503, "server_error")],
)
def test_http_errors_get_the_download_commands_reasons(
    stage: DownloadStage, server: LocalServer, status: int, reason: str
):
    server.routes["/status.mp4"] = Route(status, b"nope", "text/plain")
    out, failures, stats = run(stage, [url_sample("bad", server.url("status.mp4"))])
    assert out == []
    assert [(f.item, f.stage, f.reason) for f in failures] == [("bad", "download", reason)]
    assert f"HTTP Error {status}" in failures[0].message
    assert dict(stats.failed) == {reason: 1}
    assert server.count("/status.mp4") == 1  # retries=0: asked once


def test_the_stage_asks_for_the_shared_format_policy(folder: Path):
    capped = DownloadStage(DownloadConfig(max_height=480), folder).ydl_options("v")
    assert capped["format"] == "bv*[height<=?480]+ba/b[height<=?480]/wv*+ba/w"
    assert capped["format"] == format_selector(480)
    assert capped["outtmpl"] == {"default": str(folder / "v.%(ext)s")}
    assert (capped["retries"], capped["socket_timeout"]) == (3, 30.0)
    given = DownloadStage(DownloadConfig(format="worst"), folder).ydl_options("v")
    assert given["format"] == "worst"
    assert format_selector(0) == format_selector(None) == "bv*+ba/b"


# --- a whole run over a URL list ----------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True], ids=["absolute_out", "relative_out"])
def test_run_over_a_url_list(
    tmp_path: Path,
    server: LocalServer,
    served: Path,
    demo_videos: Path,
    relative: bool,
    monkeypatch: pytest.MonkeyPatch,
):
    """`internvid run urls.txt`: good URLs become clips, a dead one a failure; downloads cleaned
    (also with a relative --out: the sink compared a relative folder with absolute paths)."""
    import json
    import shutil

    from internvid.config import RunConfig
    from internvid.io.tables import read_clips
    from internvid.run import run as run_pipeline

    shutil.copy(demo_videos / "demo_a.mp4", served / "demo_a.mp4")
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# two videos\n{server.url('/demo_a.mp4')}\n{server.url('/gone.mp4')}\n")
    cfg = RunConfig()
    cfg.collect.enabled = "off"  # the demo video is 240p: the crawl rules would drop it
    cfg.download.retries = 0
    out = tmp_path / "out"
    if relative:
        monkeypatch.chdir(tmp_path)
        out = Path("out")
    summary = run_pipeline([str(urls)], out, cfg, progress=False)
    clips = read_clips(out / "clips.parquet")
    assert [(c.video_id, c.start, c.end) for c in clips] == [
        ("demo_a", 0.0, 4.0),
        ("demo_a", 4.0, 10.0),
    ]  # the blue 3.4 s shot after 10.6 s is still (a solid colour) and dropped
    assert all(c.source == server.url("/demo_a.mp4") for c in clips)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["item"], f["stage"], f["reason"]) for f in failures] == [
        ("gone", "download", "not_found")
    ]
    assert summary.clips == 2
    assert not [p for p in (out / "downloads").iterdir()], (
        "downloads are removed once their shard is done"
    )
