"""Per-worker thread limits: torch, OpenCV, BLAS and onnxruntime use a share of the cores."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

log = logging.getLogger(__name__)

# read by OpenMP, MKL, OpenBLAS and numexpr when they load (setting them later changes nothing)
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_applied: int | None = None  # the thread count apply_threads set in this process, if any


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_share(workers: int, threads_per_worker: int = 0, cores: int | None = None) -> int:
    """Threads each of `workers` processes gets: `threads_per_worker` when given (> 0), else
    the available cores divided by the workers (at least 1)."""
    if threads_per_worker > 0:
        return threads_per_worker
    return max(1, (cores or available_cores()) // max(1, workers))


def actor_threads(cpus: float, threads_per_worker: int = 0) -> int:
    """Threads of a Ray actor: `threads_per_worker` when given (> 0), else the CPUs it asked
    Ray for, rounded, at least 1."""
    return threads_per_worker if threads_per_worker > 0 else max(1, round(cpus))


def worker_threads() -> int | None:
    """The thread count set in this process by `apply_threads` (None: the libraries' defaults)."""
    return _applied


def set_thread_env(threads: int) -> None:
    """Set the OpenMP/BLAS thread variables; they count only for libraries not loaded yet (and
    for processes started from here)."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)


def apply_threads(threads: int) -> int:
    """Make this process use `threads` threads: the environment variables, then torch (intra-op,
    and inter-op while torch still allows it) and OpenCV when installed. Returns `threads`.

    Call it at the start of a worker, before the pipeline's libraries load, so that those
    reading the environment variables (OpenBLAS under numpy, MKL) see them too.
    """
    global _applied
    threads = max(1, int(threads))
    set_thread_env(threads)
    torch = _module("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # parallel work already started, or set once already
            log.debug("torch inter-op threads stay at %d", torch.get_num_interop_threads())
    cv2 = _module("cv2")
    if cv2 is not None:
        cv2.setNumThreads(threads)
    _applied = threads
    log.debug("worker threads: %d", threads)
    return threads


def _module(name: str):
    """The module `name`, imported if installed but not loaded yet; None when not installed."""
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)
