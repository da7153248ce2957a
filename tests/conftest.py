"""Shared fixtures: demo videos with known cuts, bad inputs, the real sample videos."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import pytest

from internvid.media.synth import DEMO_VIDEOS, write_bad_inputs, write_demo_videos
from shared_data import REAL_VIDEOS, RELEASE_DATA, SHARED_DATA  # noqa: F401 (re-exported)


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Caches (the training index files) go to a session folder, never the user's ~/.cache."""
    from internvid.train.index import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="session")
def demo_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the demo videos (rendered once per session; treat as read-only)."""
    folder = tmp_path_factory.mktemp("demo_videos")
    write_demo_videos(folder)
    return folder


@pytest.fixture(scope="session")
def demo_specs() -> dict:
    return {v.name: v for v in DEMO_VIDEOS}


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files a run must reject: corrupt, empty, text named .mp4, audio only."""
    return write_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture
def real_videos() -> Path:
    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real sample videos not found at {REAL_VIDEOS} (set INTERNVID_SHARED_DATA)")
    return REAL_VIDEOS


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest):
    """Fail any test that logs an ERROR it did not ask for (mark it `allow_error_logs`)."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"unexpected ERROR log: {errors[0].getMessage()}"


@pytest.fixture
def toy():
    """tests/scores/toy_scorer.py registered as the score `toy_red` (forgotten afterwards)."""
    from internvid.scores import unregister

    here = str(Path(__file__).resolve().parent / "scores")
    sys.path.insert(0, here)
    try:
        import toy_scorer

        yield toy_scorer
    finally:
        sys.path.remove(here)
        sys.modules.pop("toy_scorer", None)
        unregister("toy_red")


@pytest.fixture
def localhost_only(monkeypatch: pytest.MonkeyPatch):
    """Refuse, and fail the test on, any connection that is not to 127.0.0.1 (no internet).

    yt-dlp turns the refusal into a download error, so the attempt is also recorded and checked
    after the test: a test that expects a failure cannot pass by trying to reach the internet.
    """
    real_connect = socket.socket.connect
    attempts: list[object] = []

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::ffff:127.0.0.1"):
            attempts.append(address)
            raise ConnectionRefusedError(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert attempts == [], f"connections outside 127.0.0.1: {attempts}"
