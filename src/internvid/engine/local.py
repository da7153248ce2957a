"""The local executor: shards run in worker processes, finished shards are never redone."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import pickle
import signal
from collections.abc import Callable
from pathlib import Path

from internvid.engine.pipeline import Pipeline
from internvid.engine.sample import Sample
from internvid.engine.shard import (
    ShardResult,
    Sink,
    give_up_shard,
    process_shard,
    resume_shards,
)
from internvid.engine.threads import apply_threads, thread_share
from internvid.log import quiet_noisy_loggers

log = logging.getLogger(__name__)


_worker: dict = {}  # per worker process: the pipeline (set up once) and the sink


def _die_with_parent() -> None:
    """Linux: make the kernel kill this worker when the main process dies (SIGKILL included)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _init_worker(state: bytes, threads: int, log_level: int) -> None:
    """Start a worker: threads first, then the pipeline and sink (pickled, so that the libraries
    their stages import load after the thread variables are set), set up once."""
    _die_with_parent()
    logging.basicConfig(
        level=log_level, format="%(levelname)s %(name)s [worker %(process)d] %(message)s"
    )
    quiet_noisy_loggers(log_level)
    apply_threads(threads)
    pipeline, sink = pickle.loads(state)
    pipeline.setup()
    _worker.update(pipeline=pipeline, sink=sink)


def _run_in_worker(index: int, samples: list[Sample], work_dir: str) -> ShardResult:
    return process_shard(_worker["pipeline"], _worker["sink"], index, samples, work_dir)


class LocalExecutor:
    """Runs the shards of a pipeline on this machine, `workers` processes at a time.

    Shards whose completion marker exists are skipped (resume). A worker process that dies
    (a decoder crash, out of memory) breaks the pool; the shards it held are retried one at a
    time, and a shard whose worker dies again is recorded as failed items; the run goes on.
    Each worker process sets torch/OpenCV/BLAS to `threads_per_worker` threads (0: the cores
    divided by the pool's workers), so that workers do not fight over the cores.
    """

    def __init__(self, workers: int = 1, threads_per_worker: int = 0):
        self.workers = max(1, workers)
        self.threads_per_worker = max(0, threads_per_worker)

    def run(
        self,
        pipeline: Pipeline,
        sink: Sink,
        shards: list[list[Sample]],
        work_dir: str | Path,
        on_done: Callable[[ShardResult, bool], None] | None = None,
    ) -> list[ShardResult]:
        """Process every shard without a marker; return all results in shard order.

        `on_done(result, resumed)` is called per shard (resumed=True for markers found on disk).
        """
        work_dir = str(work_dir)
        results, todo = resume_shards(work_dir, len(shards), on_done)

        def finish(result: ShardResult) -> None:
            results[result.index] = result
            if on_done:
                on_done(result, False)

        if self.workers == 1 or len(todo) <= 1:
            if self.threads_per_worker:  # in this process: only when asked for
                apply_threads(self.threads_per_worker)
            pipeline.setup()
            for i in todo:
                finish(process_shard(pipeline, sink, i, shards[i], work_dir))
        else:
            self._run_pool(pipeline, sink, shards, todo, work_dir, finish)
        return [results[i] for i in range(len(shards))]

    def _run_pool(self, pipeline, sink, shards, todo, work_dir, finish) -> None:
        while todo:
            crashed, todo = self._pool_pass(
                pipeline, sink, shards, todo, work_dir, finish, self.workers
            )
            if crashed:  # a dead worker breaks the pool: retry each shard it held alone
                log.warning(
                    "a worker process died; retrying %d shard(s) one at a time", len(crashed)
                )
            for i in crashed:
                if self._pool_pass(pipeline, sink, shards, [i], work_dir, finish, 1)[0]:
                    finish(self._give_up(pipeline, sink, i, shards[i], work_dir))

    def _pool_pass(
        self, pipeline, sink, shards, indices, work_dir, finish, workers
    ) -> tuple[list[int], list[int]]:
        """Run `indices` in a fresh process pool, at most 2 shards a worker in flight (shards
        are read as they are submitted: a manifest's are never all in memory). Returns the
        shards lost to a dead worker and, when one died, those not started yet."""
        crashed: list[int] = []
        workers = min(workers, len(indices))
        threads = thread_share(workers, self.threads_per_worker)
        log.debug("%d worker process(es), %d thread(s) each", workers, threads)
        state = pickle.dumps((pipeline, sink), protocol=pickle.HIGHEST_PROTOCOL)
        queue = iter(indices)
        with cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(state, threads, logging.getLogger().getEffectiveLevel()),
        ) as pool:
            futures: dict[cf.Future, int] = {}

            def submit() -> None:
                i = next(queue, None)
                if i is not None:
                    futures[pool.submit(_run_in_worker, i, shards[i], work_dir)] = i

            for _ in range(2 * workers):
                submit()
            while futures:
                done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    i = futures.pop(fut)
                    try:
                        finish(fut.result())
                    except cf.process.BrokenProcessPool:
                        crashed.append(i)
                    if not crashed:
                        submit()
        return sorted(crashed), list(queue)

    @staticmethod
    def _give_up(pipeline, sink, index, samples, work_dir) -> ShardResult:
        """Record every item of a shard whose worker keeps dying as failed, and mark it done."""
        log.error(
            "shard %05d: its worker died twice; its %d videos are recorded as failed",
            index,
            len(samples),
        )
        message = "the worker process died twice on this shard"
        return give_up_shard(pipeline, sink, index, samples, work_dir, message)
