"""Ray executor: same outputs as the local executor, GPU pools on GPU actors, resume, crashes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import internvid.run as run_module
from internvid.caption.presets import caption_models
from internvid.cli import app
from internvid.config import CaptionConfig, RunConfig, ScoreConfig
from internvid.engine import Pipeline, Resources, Sample, Stage
from internvid.engine.ray_executor import (
    INSTALL_HINT,
    RayExecutor,
    RayUnavailable,
    driver_pythonpath,
    plan_groups,
    pool_report,
)
from internvid.engine.shard import load_marker
from internvid.records import Video
from internvid.stages.caption import CaptionStage
from internvid.stages.score import ScoreStage, score_models
from internvid.tiny.captioners import build_tiny_models
from toy_stages import JsonSink, KeepEven, MakeClips, Sleep, read_sink

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the module: 2 CPUs and one (logical) GPU, so GPU pools get placed."""
    ray = pytest.importorskip("ray")
    ctx = ray.init(
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": driver_pythonpath()}},
    )
    yield ctx.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray_models")
    build_tiny_models(root / "tiny-models")
    return root


def read_rows(out: Path) -> tuple[list, list, list]:
    """clips.parquet rows, internvid.jsonl lines and failures.jsonl lines, each sorted."""
    clips = sorted(pq.read_table(out / "clips.parquet").to_pylist(), key=lambda r: r["clip_id"])
    lines = sorted((out / "internvid.jsonl").read_text().splitlines())
    failures = sorted((out / "failures.jsonl").read_text().splitlines())
    return clips, lines, failures


# --- planning pools (no Ray needed) ---------------------------------------------------------------


class _Gpu(Stage):
    def __init__(self, name: str, device: str):
        self.name = name
        self.resources = Resources.for_device(device)


class _Cpu(Stage):
    def __init__(self, name: str, cpus: float = 1.0):
        self.name = name
        self.resources = Resources(cpus=cpus)


def test_plan_groups_consecutive_equal_resources_and_sizes_pools():
    p = Pipeline(
        [_Cpu("a", 0.5), _Cpu("b"), _Cpu("c"), _Gpu("g1", "auto"), _Gpu("g2", "cuda"), _Cpu("d")]
    )
    groups = plan_groups(p, cluster_cpus=64, cluster_gpus=8)
    assert [g.stages for g in groups] == [["a"], ["b", "c"], ["g1", "g2"], ["d"]]
    assert [g.gpus for g in groups] == [0, 0, 1, 0]
    assert [g.cpus for g in groups] == [0.5, 1, 1, 1]
    assert groups[2].actors == (1, 8)  # one actor per GPU
    # CPU pools grow to share what the GPU pools leave: 56 CPUs / (0.5 + 1 + 1) per set
    assert groups[0].actors == groups[1].actors == groups[3].actors == (1, 22)
    fixed = plan_groups(p, 64, 8, cpu_actors=3, gpu_actors=2)
    assert [g.actors for g in fixed] == [(3, 3), (3, 3), (2, 2), (3, 3)]


def test_plan_groups_small_and_gpu_less_clusters():
    p = Pipeline([_Cpu("a", 0.5), _Cpu("b"), _Gpu("g", "auto"), _Cpu("d")])
    # no GPU: the auto-device stage runs on CPUs and joins its CPU neighbours
    (_, rest) = plan_groups(p, cluster_cpus=2, cluster_gpus=0)
    assert rest.stages == ["b", "g", "d"] and rest.gpus == 0
    # 2 CPUs, one GPU: one actor per pool must fit, so CPU requests shrink by one factor
    groups = plan_groups(p, cluster_cpus=2, cluster_gpus=1)
    assert [g.stages for g in groups] == [["a"], ["b"], ["g"], ["d"]]
    assert sum(g.cpus for g in groups) == pytest.approx(2.0)
    assert groups[0].cpus == pytest.approx(groups[1].cpus / 2)
    assert groups[2].gpus == 1  # GPU requests are never scaled
    with pytest.raises(RayUnavailable, match="needs a GPU"):
        plan_groups(Pipeline([_Gpu("g", "cuda")]), cluster_cpus=2, cluster_gpus=0)


def test_model_stages_declare_a_gpu_they_can_do_without():
    cfg = CaptionConfig(models="tiny")
    stage = CaptionStage(cfg, caption_models(cfg), {})
    assert stage.resources == Resources(cpus=1.0, gpus=1.0, cpu_fallback=True)
    score = ScoreConfig(scores=["aesthetic"], device="cuda")
    s = ScoreStage(score, score_models(score, "tiny"), {})
    assert s.resources.gpus == 1 and not s.resources.cpu_fallback


# --- Ray stays optional ---------------------------------------------------------------------------


def test_nothing_imports_ray_unless_chosen():
    code = (
        "import sys, internvid.cli, internvid.run, internvid.engine.ray_executor; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), driver_pythonpath()])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


@pytest.mark.allow_error_logs
def test_without_ray_the_error_says_how_to_install(tmp_path, demo_videos, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(demo_videos), "--out", str(out), "--executor", "ray", "--no-progress"]
    )
    assert result.exit_code == 2
    assert " ".join(INSTALL_HINT.split()) in " ".join(result.output.split())
    assert not out.exists()


# --- whole runs on a local Ray --------------------------------------------------------------------


def test_ray_run_equals_local_run_and_places_gpu_stages(
    tmp_path, demo_videos, bad_files, tiny_cache, ray_cluster, monkeypatch
):
    inp = tmp_path / "in"
    inp.mkdir()
    for p in sorted(demo_videos.glob("*.mp4"))[:3]:
        shutil.copy(p, inp / p.name)
    shutil.copy(bad_files["corrupt"], inp / "corrupt.mp4")  # a failure to carry over
    args = ["--models", "tiny", "--cache-dir", str(tiny_cache), "--scores", "viclip_sim"]
    args += ["--cut-mode", "copy", "--videos-per-shard", "1", "--no-progress"]

    ref = runner.invoke(app, ["run", str(inp), "--out", str(tmp_path / "local"), *args])
    assert ref.exit_code == 0, ref.output

    made = []
    real_make = run_module.make_executor

    def keep_executor(cfg):
        made.append(real_make(cfg))
        return made[-1]

    monkeypatch.setattr(run_module, "make_executor", keep_executor)
    out = tmp_path / "ray"
    res = runner.invoke(app, ["run", str(inp), "--out", str(out), "--executor", "ray", *args])
    assert res.exit_code == 0, res.output

    clips, lines, failures = read_rows(out)
    assert clips and failures
    assert (clips, lines, failures) == read_rows(tmp_path / "local")
    assert [json.loads(f)["reason"] for f in failures] == ["corrupt"]

    def shard_files(folder: Path) -> dict[str, int]:  # the same shard files, clip files inside
        return {p.name: p.stat().st_size for p in sorted((folder / "shards").glob("*.tar"))}

    assert len(shard_files(out)) == 3 and shard_files(out) == shard_files(tmp_path / "local")
    stats = json.loads((out / "stats.json").read_text())
    ref_stats = json.loads((tmp_path / "local" / "stats.json").read_text())
    counts = [{k: v for k, v in s.items() if k != "seconds"} for s in stats["stages"]]
    assert counts == [{k: v for k, v in s.items() if k != "seconds"} for s in ref_stats["stages"]]

    # the GPU stages ran together on an actor holding the (logical) GPU; the CPU pools did not
    # (caption_prep, the CPU half of captioning, runs in the CPU pool before them)
    (executor,) = made
    assert [g.stages for g in executor.groups] == [
        ["download"],
        ["probe", "collect", "split", "motion", "caption_prep"],
        ["caption", "fuse", "score"],
        ["cut"],
    ]
    gpu_pool = "caption+fuse+score"
    trace = executor.trace
    assert {t["shard"] for t in trace} == {0, 1, 2, 3}
    assert all(t["gpu_ids"] == ["0"] for t in trace if t["pool"] == gpu_pool)
    assert all(t["gpu_ids"] == [] for t in trace if t["pool"] != gpu_pool)
    gpu_pids = {t["pid"] for t in trace if t["pool"] == gpu_pool}
    assert gpu_pids.isdisjoint(t["pid"] for t in trace if t["pool"] != gpu_pool)


def test_killed_ray_run_resumes_without_redoing_shards(tmp_path, demo_videos, ray_cluster):
    inp = tmp_path / "in"
    inp.mkdir()
    for copy in range(3):  # 12 videos -> 12 shards of one video
        for p in sorted(demo_videos.glob("*.mp4")):
            shutil.copy(p, inp / f"{p.stem}_{copy}.mp4")
    args = ["--cut-mode", "copy", "--videos-per-shard", "1", "--no-progress"]
    ref = runner.invoke(app, ["run", str(inp), "--out", str(tmp_path / "local"), *args])
    assert ref.exit_code == 0, ref.output

    # a driver process of its own, on the module's cluster, killed once some shards are done
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "internvid", "-q", "run", str(inp), "--out", str(out), *args]
    cmd += ["--executor", "ray", "--address", ray_cluster]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), driver_pythonpath()])}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    work = out / "_work"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and len(list(work.glob("*.done.json"))) < 3:
            assert proc.poll() is None, "the run finished before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    done_before = {p.name: p.stat().st_mtime_ns for p in work.glob("*.done.json")}
    assert 3 <= len(done_before) < 12, "killed mid-way"
    assert not (out / "clips.parquet").exists()

    res = runner.invoke(app, ["run", str(inp), "--out", str(out), *args, "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert {p: (work / p).stat().st_mtime_ns for p in done_before} == done_before
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards"] == 12 and stats["shards_resumed"] == len(done_before)
    assert read_rows(out) == read_rows(tmp_path / "local")
    assert not list(work.glob("*.attempts.json"))


def test_shards_stream_while_the_gpu_pool_works(tmp_path, ray_cluster):
    stages = [
        Sleep("decode", 0.3),
        Sleep("model", 0.3, Resources.for_device("auto")),  # gpus=1: the cluster's logical GPU
        Sleep("pack", 0.05),
    ]
    shards = [[Sample(Video(id=f"v{i}", source=f"/x/{i}.mp4"))] for i in range(12)]
    executor = RayExecutor()
    results = executor.run(Pipeline(stages), JsonSink(str(tmp_path)), shards, tmp_path / "work")
    assert [r.index for r in results] == list(range(12))
    report = pool_report(executor.trace)
    assert [g.stages for g in executor.groups] == [["decode"], ["model"], ["pack"]]
    assert report["model"]["gpu_ids"] == ["0"] and report["model"]["actors"] == 1
    assert report["decode"]["gpu_ids"] == report["pack"]["gpu_ids"] == []
    # the GPU pool worked on some shards while the CPU pools worked on others
    assert report["model"]["beside_others_s"] > 0.3, report


@pytest.mark.allow_error_logs
def test_a_shard_whose_actor_keeps_dying_is_recorded_as_failed(tmp_path, ray_cluster):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()

    def samples(*metas):
        return [
            Sample(Video(id=f"v{i}", source=f"/x/v{i}.mp4", meta=m)) for i, m in enumerate(metas)
        ]

    shards = [samples({"n": 2}), samples({"crash": True}, {"n": 2}), samples({"n": 4})]
    results = RayExecutor(max_attempts=2).run(
        Pipeline([MakeClips(), KeepEven()]), JsonSink(str(out)), shards, work
    )
    assert [r.summary["clips"] for r in results] == [2, 0, 4]
    assert [(f.item, f.reason) for f in results[1].failures] == [
        ("v0", "worker_crashed"),
        ("v1", "worker_crashed"),
    ]
    assert load_marker(work, 1).failures == results[1].failures
    assert {k: len(v) for k, v in read_sink(out).items()} == {0: 2, 1: 0, 2: 4}
    assert not list(work.glob("*.attempts.json"))


def test_run_config_keeps_executor_out_of_the_identity():
    a, b = RunConfig(), RunConfig(executor="ray")
    b.ray.address = "auto"
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(ValueError, match="executor"):
        RunConfig(executor="spark").validate()
