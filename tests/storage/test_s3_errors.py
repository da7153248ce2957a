"""A store that cannot be used (no credentials, nothing listening) is a recorded failure or one
line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("s3fs", reason="s3fs (the dev extra) is needed for the object-storage tests")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base["HOME"] = str(tmp_path / "home")  # no ~/.aws
    base["PYTHONPATH"] = SRC
    base["COLUMNS"] = "400"
    base["INTERNVID_STAGING"] = str(tmp_path / "staging")
    return subprocess.run(
        [sys.executable, "-m", "internvid", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


# a run that only probes and splits: what matters here is where it reads and writes
QUICK = ["--models", "none", "--collect", "off", "--cut-mode", "none", "--no-progress"]


def test_an_input_without_credentials_is_a_storage_error_row(tmp_path, demo_videos):
    out = tmp_path / "out"
    proc = _run(
        ["run", str(demo_videos / "demo_c.mp4"), "s3://bucket/in/", "--out", str(out), *QUICK],
        {"AWS_EC2_METADATA_DISABLED": "true"},  # no instance role to look for
        tmp_path,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr  # the local video made clips
    videos = pq.read_table(out / "videos.parquet").to_pylist()
    rows = {r["source"]: (r["status"], r["reason"]) for r in videos}
    assert rows["s3://bucket/in/"] == ("failed", "storage_error")
    (failure,) = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["reason"] == "storage_error"
    assert "NoCredentialsError" in failure["message"] and "AWS_ACCESS_KEY_ID" in failure["message"]


def test_an_unreachable_store_for_out_is_one_line_and_a_non_zero_exit(tmp_path, demo_videos):
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test-secret-never-logged",
        "AWS_MAX_ATTEMPTS": "1",
    }
    proc = _run(
        ["run", str(demo_videos / "demo_c.mp4"), "--out", "s3://bucket/run", *QUICK], env, tmp_path
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in f" {ln} "]
    assert errors and "s3://bucket/run" in errors[-1], proc.stderr
    assert "test-secret-never-logged" not in proc.stderr + proc.stdout


def test_pull_skips_keys_that_would_escape_the_staging_folder(tmp_path):
    from internvid.io.storage import Store, pull

    class Listed(Store):  # a bucket whose listing holds hostile keys
        def files(self, prefix: str = "") -> dict[str, int]:
            return {"../escape.txt": 1, "/etc/passwd": 1, "a/../../b": 1, "ok/x.txt": 1}

        def get(self, rel: str, local):
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            Path(local).write_text("x")
            return Path(local)

    local = tmp_path / "stage" / "run"
    pull(Listed("s3://bucket/run"), local)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "stage/run/ok/x.txt"
    ]
