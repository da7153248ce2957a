"""Every command on an s3:// run folder of a real S3 server: subset, report, score, search,
train (data and checkpoints) and download, each compared with the same command on a copy."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app

VIDEOS = ["cosmos_clip_10s.mp4", "nasa_13013.mp4", "counter.mp4"]


@pytest.fixture(scope="module")
def env(s3_server, tmp_path_factory):
    """This module's staging folder and tiny-model cache (the server's env is the session's)."""
    base = tmp_path_factory.mktemp("s3cmd")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3_server.env().items():
            mp.setenv(k, v)
        mp.setenv("INTERNVID_STAGING", str(base / "staging"))
        mp.setenv("XDG_CACHE_HOME", str(base / "cache"))  # tiny models, built once
        yield base


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["-q", *args])
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


def fetch(s3_server, url: str, local: Path) -> Path:
    """A fresh download of a remote folder (what another machine would see)."""
    fs = s3_server.filesystem()
    fs.get(url[5:].rstrip("/") + "/", str(local), recursive=True)
    return local


@pytest.fixture(scope="module")
def s3_run(env, s3_server, real_videos_module):
    """A run of three sample videos with the tiny models into s3://BUCKET/run."""
    bucket = s3_server.bucket("cmds")
    local_in = env / "in"
    local_in.mkdir()
    for name in VIDEOS:
        (local_in / name).write_bytes((real_videos_module / name).read_bytes())
    url = f"{bucket}/run"
    cli("run", str(local_in), "--out", url, "--models", "tiny", "--scores", "viclip_sim",
        "--videos-per-shard", "2", "--no-progress")  # fmt: skip
    return url


@pytest.fixture(scope="module")
def real_videos_module():
    from shared_data import REAL_VIDEOS

    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real sample videos not found at {REAL_VIDEOS} (set INTERNVID_SHARED_DATA)")
    return REAL_VIDEOS


pytestmark = pytest.mark.integration


def test_subset_of_an_s3_run_equals_the_subset_of_its_copy(s3_run, s3_server, env, tmp_path):
    cli("subset", "div", s3_run, "-o", f"{s3_run}-subsets/div", "-n", "3", "--seed", "1")
    got = fetch(s3_server, f"{s3_run}-subsets", tmp_path / "remote")
    copy = fetch(s3_server, s3_run, tmp_path / "copy")
    cli("subset", "div", str(copy), "-o", str(tmp_path / "local" / "div"), "-n", "3", "--seed", "1")
    local = tmp_path / "local"
    assert (got / "div.jsonl").read_bytes() == (local / "div.jsonl").read_bytes()
    assert pq.read_table(got / "div.parquet").equals(pq.read_table(local / "div.parquet"))
    assert pq.read_table(got / "div.parquet").num_rows == 3


def test_subset_exported_as_shards_to_s3(s3_run, s3_server, tmp_path):
    out = f"{s3_run}-export/aes"
    cli("subset", "random", s3_run, "-o", out, "-n", "2", "--seed", "3", "--shards")
    got = fetch(s3_server, out, tmp_path / "export")
    tars = sorted((got / "shards").glob("*.tar"))
    assert tars, sorted(p.name for p in got.rglob("*"))
    with tarfile.open(tars[0]) as tf:
        names = tf.getnames()
    assert any(n.endswith(".mp4") for n in names) and any(n.endswith(".json") for n in names)
    assert not (got / "_work" / "lock").exists()


def test_report_of_an_s3_run_is_written_there(s3_run, s3_server, tmp_path):
    cli("report", s3_run)
    page = s3_server.filesystem().cat_file(f"{s3_run[5:]}/report.html").decode()
    assert s3_run in page and "<svg" in page
    assert "<img" in page  # the frame grid read the shards it fetched


def test_score_an_s3_run_rewrites_its_tables_and_tars(s3_run, s3_server, env, tmp_path):
    cli("score", s3_run, "--scores", "aesthetic", "--models", "tiny")
    got = fetch(s3_server, s3_run, tmp_path / "after")
    clips = pq.read_table(got / "clips.parquet")
    assert "aesthetic" in clips.column_names
    assert all(v is not None for v in clips.column("aesthetic").to_pylist())
    tar = sorted((got / "shards").glob("*.tar"))[0]
    with tarfile.open(tar) as tf:
        js = [json.loads(tf.extractfile(m).read()) for m in tf if m.name.endswith(".json")]
    assert all("aesthetic" in j for j in js), js[0]


def test_search_an_s3_run_builds_its_index_there(s3_run, s3_server, tmp_path, monkeypatch):
    args = ("search", s3_run, "a rocket launch", "--models", "tiny", "--json")
    found = json.loads(cli(*args))
    clips = pq.read_table(fetch(s3_server, s3_run, tmp_path / "copy") / "clips.parquet").num_rows
    assert found["hits"] and found["indexed"] == clips and found["index_built"]
    keys = s3_server.filesystem().find(f"{s3_run[5:]}/search")
    assert keys, "the index is published in the run folder"
    monkeypatch.setenv("INTERNVID_STAGING", str(tmp_path / "other_machine"))
    again = json.loads(cli(*args))
    assert not again["index_built"], "another machine reuses the published index"
    assert again["hits"] == found["hits"]


def test_train_on_s3_shards_with_checkpoints_in_s3_and_resume(s3_run, s3_server, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: tiny\nframes: 4\nimage_size: 32\nbatch_size: 2\n")
    out = f"{s3_run}-train"
    cli("train", "--config", str(cfg), "--data", s3_run, "--out", out, "--steps", "2")
    fs = s3_server.filesystem()
    assert fs.exists(f"{out[5:]}/ckpt_0000002.pt")
    cli("train", "--config", str(cfg), "--data", s3_run, "--out", out, "--steps", "3", "--resume")
    fs.invalidate_cache()
    names = sorted(os.path.basename(k) for k in fs.find(out[5:]))
    assert "ckpt_0000003.pt" in names and "config.json" in names
    local = fetch(s3_server, out, tmp_path / "train")
    import torch

    ckpt = torch.load(local / "ckpt_0000003.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == 3 and len(ckpt["losses"]) == 3  # resumed from step 2, not afresh


def test_download_into_s3_from_metadata_in_s3(s3_server, env, real_videos_module, tmp_path):
    from httpserver import LocalServer

    served = tmp_path / "served"
    served.mkdir()
    (served / "vidNasa0001.mp4").write_bytes((real_videos_module / "nasa_13013.mp4").read_bytes())
    rows = [
        {"YoutubeID": "vidNasa0001", "Start_timestamp": "00:00:01.000",
         "End_timestamp": "00:00:03.500", "Caption": "a rocket"},
        {"YoutubeID": "vidMissing1", "Start_timestamp": "00:00:00.000",
         "End_timestamp": "00:00:01.000", "Caption": "gone"},
    ]  # fmt: skip
    bucket = s3_server.bucket("download")
    fs = s3_server.filesystem()
    fs.pipe_file(
        f"{bucket[5:]}/meta/rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
    )
    with LocalServer(served) as server:
        cli("download", f"{bucket}/meta/rows.jsonl", "--out", f"{bucket}/clips",
            "--url-template", server.url("{YoutubeID}.mp4"), "--rate", "0", "--retries", "0",
            "--workers", "1", "--no-progress")  # fmt: skip
    got = fetch(s3_server, f"{bucket}/clips", tmp_path / "clips")
    failures = [json.loads(x) for x in (got / "failures.jsonl").read_text().splitlines()]
    assert [f["reason"] for f in failures] == ["not_found"]
    with tarfile.open(sorted((got / "shards").glob("*.tar"))[0]) as tf:
        assert any(n.startswith("vidNasa0001") and n.endswith(".mp4") for n in tf.getnames())
