"""A run killed with SIGKILL resumes: same outputs, finished shards not redone, no partial files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from internvid.io.release import iter_release_rows

TMP_MARK = ".tmp-"


def final_files(out: Path) -> list[Path]:
    """Files under final names now; os.walk skips a scratch folder removed while it lists."""
    found = []
    for root, _, names in os.walk(out):
        found += [Path(root) / n for n in names if TMP_MARK not in n]
    return [p for p in found if p.is_file()]


def check_complete(path: Path) -> None:
    """Every file under a final name must be whole: readable to its end."""
    if path.suffix == ".tar":
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            assert members and len(members) % 3 == 0, path
            for m in members:
                assert len(tar.extractfile(m).read()) == m.size
    elif path.suffix == ".parquet":
        pq.read_table(path)
    elif path.name.endswith(".json"):
        json.loads(path.read_text())
    elif path.suffix == ".jsonl":
        for line in path.read_text().splitlines():
            json.loads(line)


def cli(inp: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "internvid", "-q", "run", str(inp), "--out", str(out),
        "--workers", "2", "--videos-per-shard", "1", "--no-progress",
    ]  # fmt: skip


def test_sigkill_mid_run_then_resume(tmp_path, demo_videos):
    inp = tmp_path / "input"
    inp.mkdir()
    for copy in range(3):  # 12 videos -> 12 shards of one video
        for p in sorted(demo_videos.glob("*.mp4")):
            shutil.copy(p, inp / f"{p.stem}_{copy}.mp4")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }

    # the reference: an uninterrupted run
    ref = tmp_path / "ref"
    subprocess.run(cli(inp, ref), check=True, env=env, timeout=600)

    # the same run, killed (whole process group, workers included) once some shards are done
    out = tmp_path / "out"
    proc = subprocess.Popen(cli(inp, out), env=env, start_new_session=True)
    work = out / "_work"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            for p in final_files(out):  # while it runs, nothing under a final name is partial
                if p.suffix in (".tar", ".parquet") or p.name.endswith(".done.json"):
                    with contextlib.suppress(FileNotFoundError):  # replaced since listed
                        check_complete(p)
            if len(list(work.glob("*.done.json"))) >= 3:
                break
            assert proc.poll() is None, "the run finished before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done_before = {p.name: p.stat().st_mtime_ns for p in work.glob("*.done.json")}
    assert 3 <= len(done_before) < 12, "killed mid-way"
    assert not (out / "clips.parquet").exists(), "final tables appear only when the run completes"
    for p in final_files(out):
        check_complete(p)

    # resume: the same command completes the run
    subprocess.run(cli(inp, out), check=True, env=env, timeout=600)
    assert {p: (work / p).stat().st_mtime_ns for p in done_before} == done_before, (
        "finished shards not redone"
    )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards"] == 12 and stats["shards_resumed"] == len(done_before)
    assert pq.read_table(out / "clips.parquet").equals(pq.read_table(ref / "clips.parquet"))
    assert (out / "internvid.jsonl").read_bytes() == (ref / "internvid.jsonl").read_bytes()
    assert (
        len(list(iter_release_rows(out / "internvid.jsonl"))) == 27
    )  # 9 clips per copy of the demo
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted(
        p.name for p in (ref / "shards").iterdir()
    )
    assert not [p for p in out.rglob("*") if TMP_MARK in p.name]
