"""One writer per output folder: the flock, its holder record, a stale lock, the CLI's exit 4."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from internvid.io.lock import (
    FolderLocked,
    clear_work_dir,
    hold_lock,
    lock_holder,
    lock_path,
)
from internvid.io.remote import locked
from internvid.outcome import EXIT_LOCKED

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    "COLUMNS": "400",  # rich wraps log lines at the terminal width
}
HOLDER = """
import sys
from internvid.io.lock import hold_lock
with hold_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def start_holder(folder: Path, command: str = "run") -> subprocess.Popen:
    """Another process holding `folder`'s lock until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_held_folder_is_refused_naming_its_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "_work").mkdir(parents=True)
    (out / "_work" / "run.json").write_text("{}")  # a run's folder: the lock file stays in it
    proc = start_holder(out, "run")
    try:
        record = json.loads(lock_path(out).read_text())
        assert record["pid"] == proc.pid
        assert record["host"] == socket.gethostname()
        assert record["command"] == "run"
        assert set(record) == {"pid", "host", "command", "started"}
        with pytest.raises(FolderLocked) as err, hold_lock(out, "score"):
            pytest.fail("two holders of one folder")
        assert err.value.holder == record
        message = str(err.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "internvid run" in message
        assert lock_holder(out) == record
    finally:
        stop(proc)
    assert lock_holder(out) is None  # released when the holder left its block
    assert lock_path(out).read_text() == ""  # and the record cleared
    with hold_lock(out, "score") as holder:
        assert holder["pid"] == os.getpid()
        assert json.loads(lock_path(out).read_text())["command"] == "score"


def test_a_lock_file_left_by_sigkill_does_not_block(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_holder(out)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    stale = json.loads(lock_path(out).read_text())
    assert stale["pid"] == proc.pid  # the dead holder's record is still in the file
    assert lock_holder(out) is None  # but the kernel dropped its flock
    with hold_lock(out, "run") as holder:
        assert json.loads(lock_path(out).read_text()) == holder
        assert holder["pid"] == os.getpid()


def test_nested_calls_of_one_process_reenter(tmp_path: Path) -> None:
    with hold_lock(tmp_path, "run"):
        with hold_lock(tmp_path, "score"):
            assert lock_holder(tmp_path)["command"] == "run"
        assert lock_holder(tmp_path)["command"] == "run"  # the inner exit kept the lock
    assert lock_holder(tmp_path) is None


def test_a_call_that_wrote_nothing_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"

    @locked("run")
    def fails(out_dir: Path) -> None:
        assert lock_holder(out_dir)["pid"] == os.getpid()
        raise ValueError("bad settings")

    with pytest.raises(ValueError, match="bad settings"):
        fails(out)
    assert not out.exists() and (tmp_path / "new").is_dir()

    @locked("run")
    def writes(out_dir: Path) -> None:
        (out_dir / "clips.parquet").write_text("x")

    writes(out_dir=out)
    assert sorted(p.name for p in out.rglob("*")) == ["clips.parquet"]  # the empty _work went


def test_existing_folders_only_are_locked_when_asked(tmp_path: Path) -> None:
    @locked("score", existing=True)
    def score(out_dir: Path) -> str:
        return "locked" if lock_holder(out_dir) else "unlocked"

    assert score(tmp_path / "missing") == "unlocked"
    assert not (tmp_path / "missing").exists()
    assert score(tmp_path) == "locked"


def test_overwrite_keeps_the_held_lock_file(tmp_path: Path) -> None:
    work = tmp_path / "_work"
    with hold_lock(tmp_path, "run"):
        inode = lock_path(tmp_path).stat().st_ino
        (work / "00000.done.json").write_text("{}")
        (work / "sub").mkdir()
        (work / "sub" / "x").write_text("x")
        clear_work_dir(work)
        assert [p.name for p in work.iterdir()] == ["lock"]
        assert lock_path(tmp_path).stat().st_ino == inode  # the very file this process holds
        proc = subprocess.run(
            [sys.executable, "-c", HOLDER, str(tmp_path), "run"],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0 and "FolderLocked" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{video}", "--out", "{out}", "--models", "none", "--no-progress"],
        ["score", "{out}", "--scores", "aesthetic", "--models", "tiny"],
        ["train-frames", "{out}", "{out}"],
    ],
    ids=["run", "score", "train-frames"],
)
def test_cli_exits_4_at_once_on_a_held_folder(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not read: the lock comes first")
    holder = start_holder(out, "run")
    try:
        argv = [a.format(out=out, video=video) for a in args]
        proc = subprocess.run(
            [sys.executable, "-m", "internvid", *argv],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == EXIT_LOCKED, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"pid {holder.pid} on {socket.gethostname()}" in proc.stderr
        assert "internvid run" in proc.stderr
        assert holder.poll() is None  # the holder is untouched
        assert sorted(p.name for p in out.rglob("*")) == ["_work", "lock"]  # nothing written
    finally:
        stop(holder)


def run_argv(videos: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "internvid", "-q", "run", str(videos), "--out", str(out),
        "--models", "tiny", "--videos-per-shard", "1", "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_two_runs_on_one_folder_then_sigkill_and_resume(tmp_path: Path, demo_videos: Path) -> None:
    out, ref = tmp_path / "out", tmp_path / "ref"
    first = subprocess.Popen(run_argv(demo_videos, out), env=ENV, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while lock_holder(out) is None:  # the first run takes the lock before any work
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert lock_holder(out)["pid"] == first.pid

        second = subprocess.run(
            run_argv(demo_videos, out), env=ENV, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == EXIT_LOCKED, second.stderr
        assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # refused while the first one still runs

        while not list((out / "_work").glob("*.done.json")):  # one shard done, then kill
            assert first.poll() is None, "the first run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the run and its workers
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert json.loads(lock_path(out).read_text())["pid"] == first.pid  # a stale lock file
    assert not (out / "clips.parquet").exists()

    resumed = subprocess.run(run_argv(demo_videos, out), env=ENV, timeout=600)
    assert resumed.returncode == 0
    subprocess.run(run_argv(demo_videos, ref), env=ENV, timeout=600, check=True)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards"] == 4 and stats["shards_resumed"] >= 1
    assert pq.read_table(out / "clips.parquet").equals(pq.read_table(ref / "clips.parquet"))
    assert (out / "internvid.jsonl").read_bytes() == (ref / "internvid.jsonl").read_bytes()
    assert pq.read_table(out / "clips.parquet").num_rows > 0
