"""`internvid run` from and to a real S3 server: killed, resumed, equal to a local-disk run."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time

import pyarrow.parquet as pq
import pytest
from rundigest import digest

VIDEOS = ["cosmos_clip_10s.mp4", "counter.mp4", "delayed_start.mp4", "nasa_13013.mp4"]


def _cli(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "internvid", "-q", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _done(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{err[-3000:]}"
    return out


def check_object(fs, key: str, data: bytes) -> str | None:
    """Why an object is not a whole file of its kind, or None."""
    try:
        if key.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                for m in tf.getmembers():
                    tf.extractfile(m).read()
        elif key.endswith(".parquet"):
            pq.read_table(io.BytesIO(data))
        elif key.endswith(".json"):
            json.loads(data)
        elif key.endswith(".jsonl"):
            for line in data.decode().splitlines():
                json.loads(line)
    except Exception as e:
        return f"{key}: {type(e).__name__}: {e}"
    return None


class Watcher(threading.Thread):
    """Reads every object of a bucket over and over while a run writes it: records any object
    that is not a whole file under its final name."""

    def __init__(self, fs, bucket: str):
        super().__init__(daemon=True)
        self.fs, self.bucket = fs, bucket
        self.bad: list[str] = []
        self.seen: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                keys = self.fs.find(self.bucket)
            except FileNotFoundError:
                keys = []
            for key in keys:
                if key.endswith("/_work/lock"):
                    continue
                try:
                    data = self.fs.cat_file(key)
                except FileNotFoundError:  # removed between the listing and the read
                    continue
                self.seen.add(key)
                why = check_object(self.fs, key, data)
                if why:
                    self.bad.append(why)
            self.fs.invalidate_cache()
            time.sleep(0.05)


@pytest.mark.integration
def test_a_killed_s3_run_resumes_to_the_outputs_of_a_local_run(s3, tmp_path, real_videos):
    fs = s3.filesystem()
    videos, runs = s3.next_bucket("videos"), s3.next_bucket("runs")
    local_in = tmp_path / "in"
    local_in.mkdir()
    for name in VIDEOS:
        (local_in / name).write_bytes((real_videos / name).read_bytes())
        fs.put_file(str(local_in / name), f"{videos[5:]}/in/{name}")
    common = ["--videos-per-shard", "1"]

    _done(_cli("run", str(local_in), "--out", str(tmp_path / "local"), *common))

    out_url = f"{runs}/run"
    watcher = Watcher(s3.filesystem(), runs[5:])
    watcher.start()
    first = _cli("run", f"{videos}/in/", "--out", out_url, *common, start_new_session=True)
    deadline = time.monotonic() + 240
    while not fs.glob(f"{runs[5:]}/run/_work/*.done.json"):
        fs.invalidate_cache()
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no shard finished"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    fs.invalidate_cache()
    assert not fs.exists(f"{runs[5:]}/run/stats.json"), "killed before the end, by design"
    assert fs.exists(f"{runs[5:]}/run/_work/lock"), "a killed run leaves its lock object"

    _done(_cli("run", f"{videos}/in/", "--out", out_url, *common))  # takes the lock over
    watcher.stop.set()
    watcher.join(timeout=30)
    assert watcher.bad == [], watcher.bad
    assert any(k.endswith(".tar") for k in watcher.seen), "the watcher saw the shards"

    copy = tmp_path / "copy"
    fs.invalidate_cache()
    fs.get(f"{runs[5:]}/run/", str(copy), recursive=True)
    stats = json.loads((copy / "stats.json").read_text())
    assert stats["out_dir"] == out_url
    assert 1 <= stats["shards_resumed"] < len(VIDEOS)
    assert not (copy / "_work" / "lock").exists(), "the lock object is removed at the end"
    assert not (copy / "downloads").exists(), "staging-only files are not published"
    assert sorted(p.name for p in copy.rglob("*") if ".tmp-" in p.name) == []
    assert digest(copy) == digest(tmp_path / "local")
    sources = pq.read_table(copy / "videos.parquet").column("source").to_pylist()
    assert sources == sorted(f"{videos}/in/{n}" for n in VIDEOS)
