"""Worker threads: each local worker and Ray actor sets torch/OpenCV/BLAS to its share of the cores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from internvid.config import MAX_WORKERS, RunConfig
from internvid.engine import Context, Pipeline, Resources, Sample, Stage
from internvid.engine.local import LocalExecutor
from internvid.engine.threads import (
    THREAD_ENV_VARS,
    actor_threads,
    available_cores,
    thread_share,
)
from internvid.records import Video
from internvid.run import make_executor
from toy_stages import JsonSink


class RecordThreads(Stage):
    """Writes, per process it runs in, the thread counts torch, OpenCV and the environment say."""

    name = "record_threads"
    needs = frozenset({"video"})

    def __init__(self, folder: str, cpus: float = 1.0):
        self.folder = folder
        self.resources = Resources(cpus=cpus)

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        import cv2
        import torch

        from internvid.engine.threads import worker_threads

        seen = {
            "torch": torch.get_num_threads(),
            "cv2": cv2.getNumThreads(),
            "env": {name: os.environ.get(name) for name in THREAD_ENV_VARS},
            "applied": worker_threads(),
        }
        Path(self.folder, f"{os.getpid()}.json").write_text(json.dumps(seen))
        return batch


def shards(n: int) -> list[list[Sample]]:
    return [[Sample(Video(id=f"v{i}", source=f"/x/v{i}.mp4"))] for i in range(n)]


def run_recording(tmp_path: Path, executor, cpus: float = 1.0) -> list[dict]:
    seen, out = tmp_path / "seen", tmp_path / "out"
    seen.mkdir(parents=True)
    out.mkdir()
    pipeline = Pipeline([RecordThreads(str(seen), cpus)])
    executor.run(pipeline, JsonSink(str(out)), shards(4), tmp_path / "work")
    return [json.loads(p.read_text()) for p in sorted(seen.glob("*.json"))]


def test_share_is_the_cores_divided_by_the_workers():
    assert thread_share(2, cores=2) == 1
    assert thread_share(4, cores=16) == 4
    assert thread_share(3, cores=8) == 2  # rounded down: never more threads than cores
    assert thread_share(8, cores=2) == 1  # at least one
    assert thread_share(0, cores=4) == 4  # no workers counts as one
    assert thread_share(2, threads_per_worker=3, cores=2) == 3  # given: used as is
    assert thread_share(1) == available_cores()
    assert available_cores() == len(os.sched_getaffinity(0))


def test_ray_actors_get_their_cpus_rounded():
    assert actor_threads(1.0) == 1
    assert actor_threads(4.0) == 4
    assert actor_threads(2.6) == 3
    assert actor_threads(0.25) == 1  # CPU requests scaled down on a small cluster
    assert actor_threads(0.25, threads_per_worker=2) == 2


@pytest.mark.parametrize("given", [0, 3])
def test_local_workers_use_their_share(tmp_path, given):
    seen = run_recording(tmp_path, LocalExecutor(2, threads_per_worker=given))
    share = given or max(1, available_cores() // 2)
    assert 1 <= len(seen) <= 2  # one file per worker process
    for s in seen:
        assert (s["torch"], s["cv2"], s["applied"]) == (share, share, share), s
        assert set(s["env"].values()) == {str(share)}, s


def test_run_config_threads_per_worker():
    cfg = RunConfig()
    assert cfg.threads_per_worker == 0
    cfg.validate()
    for bad in (-1, MAX_WORKERS + 1):
        cfg.threads_per_worker = bad
        with pytest.raises(ValueError, match="threads_per_worker"):
            cfg.validate()
    a, b = RunConfig(), RunConfig(threads_per_worker=4)
    b.validate()
    assert a.fingerprint() == b.fingerprint()  # where it runs, not what it makes
    assert make_executor(b).threads_per_worker == 4
    b.executor = "ray"
    assert make_executor(b).threads_per_worker == 4


@pytest.mark.slow
def test_ray_actors_use_their_cpus_or_the_given_threads(tmp_path):
    ray = pytest.importorskip("ray")
    from internvid.engine.ray_executor import RayExecutor, driver_pythonpath

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": driver_pythonpath()}},
    )
    try:
        seen = run_recording(tmp_path / "own", RayExecutor(cpu_actors=1), cpus=1.0)
        assert {(s["torch"], s["cv2"], s["applied"]) for s in seen} == {(1, 1, 1)}
        given = RayExecutor(cpu_actors=1, threads_per_worker=2)
        seen = run_recording(tmp_path / "given", given, cpus=1.0)
        assert {(s["torch"], s["cv2"], s["applied"]) for s in seen} == {(2, 2, 2)}
    finally:
        ray.shutdown()
