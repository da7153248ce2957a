"""Fixtures of the object-storage tests: a session's S3 server, a fresh bucket per test."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("s3fs", reason="s3fs (the dev extra) is needed for the object-storage tests")
pytest.importorskip("moto", reason="moto[server] (the dev extra) runs the local S3 server")

from s3server import S3Server

_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    with S3Server(tmp_path_factory.mktemp("moto") / "server.log") as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The server, with this process (and the processes it starts) pointed at it, and staging
    folders under the test's tmp_path. `s3.bucket(name)` makes a bucket."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("INTERNVID_STAGING", str(tmp_path / "staging"))
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3_server.next_bucket = lambda prefix="run": s3_server.bucket(f"{prefix}-{next(_buckets)}")
    return s3_server
