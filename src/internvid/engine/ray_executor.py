"""The Ray executor: runs of stages as Ray Data actor pools sized by their resources, streamed per shard."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import pickle
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from internvid.engine.pipeline import Pipeline
from internvid.engine.sample import Failure, Sample
from internvid.engine.shard import (
    ShardResult,
    Sink,
    commit_shard,
    give_up_shard,
    resume_shards,
)
from internvid.engine.stage import Resources, StageStats
from internvid.engine.threads import actor_threads, apply_threads
from internvid.io.atomic import write_json_atomic
from internvid.log import quiet_noisy_loggers

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the Ray executor needs Ray: pip install 'internvid[ray]' (or: pip install 'ray[data]>=2.40')"
)


class RayUnavailable(RuntimeError):
    """Ray is not installed (the `ray` extra), or the cluster cannot run the pipeline."""


def import_ray() -> Any:
    """Import Ray (and Ray Data) or say how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise RayUnavailable(f"{INSTALL_HINT} ({e})") from e
    return ray


def driver_pythonpath() -> str:
    """This process's import path without the interpreter's own folders: what local workers need
    to import the same code (a source checkout, test helpers) when nothing is installed."""
    base = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    keep = []
    for p in sys.path:
        real = os.path.realpath(p or os.getcwd())
        if not any(real == b or real.startswith(b + os.sep) for b in base):
            keep.append(real)
    return os.pathsep.join(dict.fromkeys(keep))


# --- the plan: which stages run together, with what resources, in how many actors ---------------


@dataclass
class StageGroup:
    """Consecutive stages asking for the same resources: one Ray Data operator, one actor pool."""

    stages: list[str]  # names of the stages, in pipeline order
    resources: Resources  # what the stages declare (GPU stages on a GPU-less cluster: CPUs)
    cpus: float  # CPUs each actor asks Ray for (the declared ones, scaled down on small clusters)
    actors: tuple[int, int]  # pool size: at least, at most

    @property
    def name(self) -> str:
        return "+".join(self.stages)

    @property
    def gpus(self) -> float:
        return self.resources.gpus


def plan_groups(
    pipeline: Pipeline,
    cluster_cpus: float,
    cluster_gpus: float,
    cpu_actors: int = 0,
    gpu_actors: int = 0,
) -> list[StageGroup]:
    """Group consecutive stages with equal resources and size their actor pools for a cluster.

    A stage that may use a GPU (device "auto") runs on CPUs when the cluster has no GPU; one that
    must (device "cuda") stops the run here. When one actor per pool asks for more CPUs than the
    cluster has, every CPU request is scaled down by the same factor (a 2-core machine can still
    hold every pool); GPU requests are never scaled.
    """
    groups: list[tuple[list[str], Resources]] = []
    for stage in pipeline.stages:
        r = stage.resources
        if r.gpus > 0 and cluster_gpus <= 0:
            if not r.cpu_fallback:
                raise RayUnavailable(
                    f"stage {stage.name!r} needs a GPU (its device is a GPU) and the Ray cluster "
                    "has none: add GPU nodes, or set its device to auto or cpu"
                )
            r = Resources(cpus=r.cpus)
        if r.gpus > cluster_gpus > 0:
            raise RayUnavailable(
                f"stage {stage.name!r} asks for {r.gpus:g} GPUs per actor; the cluster has "
                f"{cluster_gpus:g}"
            )
        key = Resources(r.cpus, r.gpus)
        if groups and groups[-1][1] == key:
            groups[-1][0].append(stage.name)
        else:
            groups.append(([stage.name], key))

    need = sum(r.cpus for _, r in groups)  # one actor per pool
    scale = min(1.0, cluster_cpus / need) if need > 0 else 1.0
    if scale < 1.0:
        log.info(
            "the cluster has %g CPUs and one actor per pool asks for %g: CPU requests scaled by %.2f",
            cluster_cpus,
            need,
            scale,
        )
    gpu_cpus = 0.0  # CPUs the GPU pools take at full size
    sized: list[StageGroup] = []
    for names, r in groups:
        cpus = r.cpus * scale
        if r.gpus > 0:
            most = gpu_actors or max(1, math.floor(cluster_gpus / r.gpus))
            gpu_cpus += most * cpus
            sized.append(StageGroup(names, r, cpus, (gpu_actors or 1, most)))
        else:
            sized.append(StageGroup(names, r, cpus, (0, 0)))  # sized below
    cpu_need = sum(g.cpus for g in sized if g.gpus == 0)
    free = max(0.0, cluster_cpus - gpu_cpus)
    most = max(1, math.floor(free / cpu_need)) if cpu_need > 0 else 1
    for g in sized:
        if g.gpus == 0:
            g.actors = (cpu_actors, cpu_actors) if cpu_actors else (1, most)
    return sized


# --- what travels between the pools: one shard -------------------------------------------------


@dataclass
class ShardState:
    """One shard on its way through the pools (pickled into one row of the Ray dataset)."""

    index: int  # shard number
    inputs: list[Sample]  # the shard as given (what a give-up records as failed)
    samples: list[Sample]  # the shard so far
    stats: dict[str, StageStats]  # per stage, filled by each pool
    failures: list[Failure] = field(default_factory=list)  # items that failed so far
    started: float = field(default_factory=time.time)  # wall clock at the first pool
    trace: list[dict[str, Any]] = field(default_factory=list)  # per pool: where, when, GPUs
    result: dict[str, Any] | None = None  # the completion marker, once committed


def _attempts_path(work_dir: str, index: int) -> Path:
    return Path(work_dir) / f"{index:05d}.attempts.json"


class _PoolActor:
    """One actor of a pool: sets up its stages once, then runs them over shards (rows)."""

    def __init__(
        self,
        pipeline: Pipeline,
        sink: Sink,
        work_dir: str,
        group: list[str],
        position: int,
        groups: int,
        frames_needed_later: bool,
        run_token: str,
        max_attempts: int,
        log_level: int,
        threads: int = 1,
    ):
        logging.basicConfig(
            level=log_level, format="%(levelname)s %(name)s [ray %(process)d] %(message)s"
        )
        quiet_noisy_loggers(log_level)
        apply_threads(threads)  # before the stages load their models
        self.pipeline = pipeline
        self.sink = sink
        self.work_dir = work_dir
        self.name = "+".join(group)
        self.stages = [s for s in pipeline.stages if s.name in group]
        self.first = position == 0
        self.last = position == groups - 1
        self.frames_needed_later = frames_needed_later
        self.run_token = run_token
        self.max_attempts = max_attempts
        for stage in self.stages:
            stage.setup()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        indices, states = [], []
        for index, blob in zip(
            batch.column("index").to_pylist(), batch.column("state").to_pylist(), strict=True
        ):
            state: ShardState = pickle.loads(blob)
            if state.result is None:
                self._run(state)
            indices.append(index)
            states.append(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        return pa.table(
            {"index": pa.array(indices, pa.int64()), "state": pa.array(states, pa.large_binary())}
        )

    def _start_attempt(self, index: int) -> int:
        """Count this start of the shard in this pool (a file, so restarted actors see it)."""
        path = _attempts_path(self.work_dir, index)
        try:
            seen = json.loads(path.read_text())
        except (OSError, ValueError):
            seen = {}
        key = f"{self.run_token}:{self.name}"
        seen[key] = seen.get(key, 0) + 1
        write_json_atomic(path, seen)
        return seen[key]

    def _run(self, state: ShardState) -> None:
        import ray

        t0 = time.time()
        attempt = self._start_attempt(state.index)
        if attempt > self.max_attempts:
            log.error(
                "shard %05d: the actor running %s died %d times on it; its %d videos are "
                "recorded as failed",
                state.index,
                self.name,
                attempt - 1,
                len(state.inputs),
            )
            message = f"the Ray actor running {self.name} died {attempt - 1} times on this shard"
            result = give_up_shard(
                self.pipeline, self.sink, state.index, state.inputs, self.work_dir, message
            )
            self._finish(state, result)
            return
        if self.first:
            self.sink.clear_shard(state.index, state.inputs)
        state.samples = Pipeline.run_stages(self.stages, state.samples, state.stats, state.failures)
        if not self.frames_needed_later:  # later pools read no frames: do not ship them
            for s in state.samples:
                s.payload.pop("frames", None)
                s.payload.pop("frame_indices", None)
        state.trace.append(
            {
                "pool": self.name,
                "pid": os.getpid(),
                "node": ray.get_runtime_context().get_node_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "cuda": _cuda_device(),
                "start": t0,
                "end": time.time(),
            }
        )
        if self.last:
            t_start = time.perf_counter() - (time.time() - state.started)
            result = commit_shard(
                self.sink,
                state.index,
                len(state.inputs),
                state.samples,
                state.stats,
                state.failures,
                self.work_dir,
                t_start,
            )
            self._finish(state, result)

    def _finish(self, state: ShardState, result: ShardResult) -> None:
        _attempts_path(self.work_dir, state.index).unlink(missing_ok=True)
        state.result = result.to_json()
        state.samples, state.inputs = [], []  # the driver needs the marker only


def _cuda_device() -> str:
    """The GPU this actor's models run on, when torch is loaded and sees one ("" otherwise)."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.cuda.current_device())
    except Exception:
        return ""
    return ""


def overlap_seconds(trace: list[dict[str, Any]], pool: str) -> float:
    """Seconds during which `pool` and at least one other pool were both working."""
    events = []
    for t in trace:
        mine = t["pool"] == pool
        events += [(t["start"], int(mine), int(not mine)), (t["end"], -int(mine), -int(not mine))]
    total, m, o, last = 0.0, 0, 0, 0.0
    for at, dm, do in sorted(events):
        if m > 0 and o > 0:
            total += at - last
        m, o, last = m + dm, o + do, at
    return total


def pool_report(trace: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pool: actors (processes) used, GPU ids they held, seconds busy and beside others."""
    pools: dict[str, dict[str, Any]] = {}
    for t in trace:
        p = pools.setdefault(t["pool"], {"actors": set(), "gpu_ids": set(), "busy_s": 0.0})
        p["actors"].add(t["pid"])
        p["gpu_ids"].update(t["gpu_ids"])
        p["busy_s"] += t["end"] - t["start"]
    return {
        name: {
            "actors": len(p["actors"]),
            "gpu_ids": sorted(p["gpu_ids"]),
            "busy_s": round(p["busy_s"], 3),
            "beside_others_s": round(overlap_seconds(trace, name), 3),
        }
        for name, p in pools.items()
    }


# --- the executor --------------------------------------------------------------------------------


class RayExecutor:
    """Runs the shards of a pipeline on a Ray cluster (or a Ray started on this machine).

    Consecutive stages with equal resources form one pool of actors (Ray Data `map_batches`
    over a callable class: models load once per actor), each actor asking Ray for its stages'
    CPUs and GPUs. A row of the dataset is a whole shard, so every stage sees exactly the
    batches the local executor gives it, and shards stream from pool to pool: the GPU pool
    captions shard 3 while the CPU pools split shard 4. The last pool writes the shard's outputs
    and its completion marker, as `process_shard` does; shards with a marker are skipped, so a
    killed run resumes. A shard whose actor keeps dying is recorded as `worker_crashed`.
    Each actor sets torch/OpenCV/BLAS to `threads_per_worker` threads (0: the CPUs it asked
    Ray for, rounded, at least 1).
    """

    def __init__(
        self,
        address: str = "",
        cpu_actors: int = 0,
        gpu_actors: int = 0,
        max_attempts: int = 3,
        progress: bool = False,
        threads_per_worker: int = 0,
    ):
        self.address = address
        self.cpu_actors = cpu_actors
        self.gpu_actors = gpu_actors
        self.max_attempts = max_attempts
        self.progress = progress  # Ray Data's own progress bars
        self.threads_per_worker = threads_per_worker  # per actor; 0: its CPUs, rounded
        self.groups: list[StageGroup] = []  # the plan of the last run
        self.trace: list[dict[str, Any]] = []  # per shard and pool: where and when it ran

    def run(
        self,
        pipeline: Pipeline,
        sink: Sink,
        shards: list[list[Sample]],
        work_dir: str | Path,
        on_done: Callable[[ShardResult, bool], None] | None = None,
    ) -> list[ShardResult]:
        """Process every shard without a marker; return all results in shard order."""
        ray = import_ray()
        work_dir = str(work_dir)
        results, todo = resume_shards(work_dir, len(shards), on_done)
        if not todo:
            return [results[i] for i in range(len(shards))]

        started_here = not ray.is_initialized()
        if started_here:
            if self.address:
                ray.init(address=self.address, log_to_driver=True)
            else:  # workers import what this process imports (a source checkout too)
                env = {"PYTHONPATH": driver_pythonpath()}
                ray.init(runtime_env={"env_vars": env}, include_dashboard=False)
        try:
            for result in self._stream(ray, pipeline, sink, shards, todo, work_dir):
                results[result.index] = result
                if on_done:
                    on_done(result, False)
        finally:
            if started_here:
                ray.shutdown()
        return [results[i] for i in range(len(shards))]

    def _stream(self, ray, pipeline, sink, shards, todo, work_dir):
        from ray.data import ActorPoolStrategy, DataContext

        cluster = ray.cluster_resources()
        self.groups = plan_groups(
            pipeline,
            cluster.get("CPU", 0.0),
            cluster.get("GPU", 0.0),
            self.cpu_actors,
            self.gpu_actors,
        )
        for g in self.groups:
            log.info(
                "pool %s: %d-%d actor(s), each %.2g CPU(s)%s",
                g.name,
                *g.actors,
                g.cpus,
                f" and {g.gpus:g} GPU(s)" if g.gpus else "",
            )
        ctx = DataContext.get_current()
        ctx.execution_options.preserve_order = False
        ctx.enable_progress_bars = self.progress
        ctx.print_on_execution_start = False

        token = uuid.uuid4().hex[:12]
        items = []
        for i in todo:
            inputs = copy.deepcopy(shards[i])  # stages change samples in place; keep the input
            state = ShardState(i, inputs, shards[i], pipeline.new_stats())
            items.append({"index": i, "state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL)})
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        names = [g.stages for g in self.groups]
        for k, g in enumerate(self.groups):
            later = [s for s in pipeline.stages if any(s.name in n for n in names[k + 1 :])]
            args = {"num_gpus": g.gpus} if g.gpus else {}
            ds = ds.map_batches(
                _PoolActor,
                batch_size=1,  # one shard: each stage sees the local executor's batches
                batch_format="pyarrow",
                compute=ActorPoolStrategy(min_size=g.actors[0], max_size=g.actors[1]),
                num_cpus=g.cpus,
                fn_constructor_kwargs={
                    "pipeline": pipeline,
                    "sink": sink,
                    "work_dir": work_dir,
                    "group": g.stages,
                    "position": k,
                    "groups": len(self.groups),
                    "frames_needed_later": any(getattr(s, "frame_needs", ()) for s in later),
                    "run_token": token,
                    "max_attempts": self.max_attempts,
                    "log_level": logging.getLogger().getEffectiveLevel(),
                    "threads": actor_threads(g.cpus, self.threads_per_worker),
                },
                **args,
            )
        self.trace = []
        for row in ds.iter_rows():
            state: ShardState = pickle.loads(row["state"])
            self.trace.extend({"shard": state.index, **t} for t in state.trace)
            yield ShardResult.from_json(state.result)
        for name, p in pool_report(self.trace).items():
            log.info(
                "pool %s: %d actor(s)%s, busy %.1f s, %.1f s of it beside other pools",
                name,
                p["actors"],
                f" on GPU(s) {','.join(p['gpu_ids'])}" if p["gpu_ids"] else "",
                p["busy_s"],
                p["beside_others_s"],
            )
