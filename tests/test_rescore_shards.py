"""`internvid score` rewrites the shard tars' KEY.json: new scores inside, mp4s untouched, atomic."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import RunConfig
from internvid.io.shards import sample_json
from internvid.io.tables import read_clips
from internvid.rescore import rewrite_shard
from internvid.run import run

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_cache")


@pytest.fixture(scope="module")
def unscored(demo_videos, tmp_path_factory) -> Path:
    """A run of the demo videos, clips stream-copied, no scores but motion's (2 tars)."""
    cfg = RunConfig()
    cfg.cut.mode = "copy"
    cfg.output.videos_per_shard = 2
    out = tmp_path_factory.mktemp("run") / "run"
    run([str(demo_videos)], out, cfg, progress=False)
    return out


def _members(tar_path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(tar_path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_tar_matches_table(tar_path: Path, clips_by_id: dict) -> None:
    for name, data in _members(tar_path):
        key, _, ext = name.partition(".")
        if ext == "json":
            assert json.loads(data) == sample_json(clips_by_id[key]), name
        elif ext == "txt":
            assert data.decode() == clips_by_id[key].best_caption()


def _score_args(out: Path, cache: Path) -> list[str]:
    return [
        "score",
        str(out),
        "--scores",
        "aesthetic",
        "--models",
        "tiny",
        "--cache-dir",
        str(cache),
    ]


def test_score_rewrites_the_json_members(unscored, tmp_path, tiny_cache):
    out = tmp_path / "run"
    shutil.copytree(unscored, out)
    tars = sorted((out / "shards").glob("*.tar"))
    before = {p.name: _members(p) for p in tars}
    result = CliRunner().invoke(app, _score_args(out, tiny_cache))
    assert result.exit_code == 0, result.output
    clips = {c.clip_id: c for c in read_clips(out / "clips.parquet")}
    assert all("aesthetic" in c.scores for c in clips.values())
    for p in tars:
        after = _members(p)
        assert [n for n, _ in after] == [n for n, _ in before[p.name]]  # same members, same order
        for (name, old), (_, new) in zip(before[p.name], after, strict=True):
            if name.endswith(".mp4"):
                assert _sha(new) == _sha(old)  # the clip files are untouched
            elif name.endswith(".json"):
                assert "aesthetic" in json.loads(new) and "aesthetic" not in json.loads(old)
        _check_tar_matches_table(p, clips)
    assert not list(out.rglob("*.tmp-*"))


def test_rewrite_shard_leaves_an_unchanged_tar_alone(unscored, tmp_path):
    tar_path = tmp_path / "00000.tar"
    shutil.copy(unscored / "shards" / "00000.tar", tar_path)
    stat = tar_path.stat()
    clips = [c for c in read_clips(unscored / "clips.parquet") if c.shard == 0]
    assert rewrite_shard(tar_path, clips) is False
    assert tar_path.stat().st_mtime_ns == stat.st_mtime_ns  # not rewritten
    clips[0].captions["fused"] = "a new caption"
    assert rewrite_shard(tar_path, clips) is True
    members = dict(_members(tar_path))
    assert members[f"{clips[0].clip_id}.txt"] == b"a new caption"
    assert json.loads(members[f"{clips[0].clip_id}.json"])["fused_caption"] == "a new caption"
    original = dict(_members(unscored / "shards" / "00000.tar"))
    assert {k: _sha(v) for k, v in members.items() if k.endswith(".mp4")} == {
        k: _sha(v) for k, v in original.items() if k.endswith(".mp4")
    }


KILLER = """
import os, signal, sys
from internvid import rescore
from internvid.cli import app

calls = 0
real = rescore.add_member

def add_member(tar, name, data):
    global calls
    calls += 1
    if calls == int(sys.argv[1]):  # half of this member, then SIGKILL
        tar.fileobj.write(data[: len(data) // 2])
        tar.fileobj.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(tar, name, data)

rescore.add_member = add_member
app(sys.argv[2:])
"""


def test_killed_score_leaves_each_tar_old_or_new(unscored, tmp_path, tiny_cache):
    out = tmp_path / "run"
    shutil.copytree(unscored, out)
    tars = sorted((out / "shards").glob("*.tar"))
    old = {p.name: p.read_bytes() for p in tars}
    first = sum(1 for c in read_clips(out / "clips.parquet") if c.shard == 0)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    kill_at = 2 * first + 3  # shard 0: a json and a txt per clip; then midway through shard 1
    args = [sys.executable, "-c", KILLER, str(kill_at), *_score_args(out, tiny_cache)]
    proc = subprocess.run(args, env=env, timeout=300, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    clips = {c.clip_id: c for c in read_clips(out / "clips.parquet")}  # written before the tars
    assert tars[0].read_bytes() != old[tars[0].name]  # new, and whole
    _check_tar_matches_table(tars[0], clips)
    assert tars[1].read_bytes() == old[tars[1].name]  # old: the half tar is a temp file
    assert len(list((out / "shards").glob(".00001.tar.tmp-*"))) == 1
    result = CliRunner().invoke(app, _score_args(out, tiny_cache))  # the rerun finishes it
    assert result.exit_code == 0, result.output
    clips = {c.clip_id: c for c in read_clips(out / "clips.parquet")}
    for p in tars:
        _check_tar_matches_table(p, clips)
        mp4 = {n: _sha(d) for n, d in _members(p) if n.endswith(".mp4")}
        with tarfile.open(fileobj=io.BytesIO(old[p.name])) as t:
            assert mp4 == {
                m.name: _sha(t.extractfile(m).read()) for m in t if m.name.endswith(".mp4")
            }
    assert not list(out.rglob("*.tmp-*"))  # the killed score's temp file is gone
