"""The Ray executor over object storage: videos read from S3, the run written to S3, the same
outputs as the local executor writing to local disk."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from rundigest import digest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.engine.ray_executor import driver_pythonpath
from internvid.tiny.captioners import build_tiny_models

runner = CliRunner()


@pytest.fixture
def ray_on_s3(s3):
    """A local Ray (2 CPUs, one logical GPU) whose workers see the S3 server and the staging
    folder of this test, as a cluster's nodes see their credentials and endpoint."""
    ray = pytest.importorskip("ray")
    env = {
        **s3.env(),
        "INTERNVID_STAGING": os.environ["INTERNVID_STAGING"],
        "PYTHONPATH": driver_pythonpath(),
    }
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, runtime_env={"env_vars": env})
    yield s3
    ray.shutdown()


@pytest.mark.integration
def test_ray_run_from_and_to_s3_equals_a_local_run(ray_on_s3, tmp_path, demo_videos, bad_files):
    s3 = ray_on_s3
    fs = s3.filesystem()
    videos, runs = s3.next_bucket("rayvideos"), s3.next_bucket("rayruns")
    local_in = tmp_path / "in"
    local_in.mkdir()
    for p in sorted(demo_videos.glob("*.mp4"))[:3]:
        shutil.copy(p, local_in / p.name)
    shutil.copy(bad_files["corrupt"], local_in / "corrupt.mp4")  # a failure to carry over
    for p in sorted(local_in.iterdir()):
        fs.put_file(str(p), f"{videos[5:]}/in/{p.name}")
    build_tiny_models(tmp_path / "cache" / "tiny-models")
    args = ["--models", "tiny", "--cache-dir", str(tmp_path / "cache"), "--scores", "viclip_sim"]
    args += ["--cut-mode", "copy", "--videos-per-shard", "1", "--no-progress"]

    ref = runner.invoke(app, ["run", str(local_in), "--out", str(tmp_path / "local"), *args])
    assert ref.exit_code == 0, ref.output

    out_url = f"{runs}/run"
    res = runner.invoke(app, ["run", f"{videos}/in/", "--out", out_url, "--executor", "ray", *args])
    assert res.exit_code == 0, res.output

    copy = tmp_path / "copy"
    fs.invalidate_cache()
    fs.get(f"{runs[5:]}/run/", str(copy), recursive=True)
    stats = json.loads((copy / "stats.json").read_text())
    assert stats["out_dir"] == out_url and stats["shards"] == 4
    assert stats["failures_by_reason"] == {"corrupt": 1}
    assert not (copy / "_work" / "lock").exists() and not (copy / "downloads").exists()
    assert sorted(p.name for p in copy.rglob("*") if ".tmp-" in p.name) == []
    got, want = digest(copy), digest(tmp_path / "local")
    assert got["clips.parquet"], "the run made clips"
    assert got == want
    ref_stats = json.loads((tmp_path / "local" / "stats.json").read_text())
    counts = [{k: v for k, v in s.items() if k != "seconds"} for s in stats["stages"]]
    assert counts == [{k: v for k, v in s.items() if k != "seconds"} for s in ref_stats["stages"]]
