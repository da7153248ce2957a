"""One writer per folder, local or remote (`locked`); remote folders staged here, published back."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from internvid.io.lock import LOCK_NAME, WORK_DIR, FolderLocked, hold_lock
from internvid.io.storage import (
    Select,
    Store,
    backend_errors,
    everything,
    filesystem,
    is_remote,
    pull,
    push,
    staging_dir,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

LOCK_KEY = f"{WORK_DIR}/{LOCK_NAME}"  # the remote folder's lock object (and the local lock file)
# the files a reader of a finished folder looks at last: written after everything they describe
LAST = ("stats.json",)

_active: dict[str, Store] = {}  # staged folder (this process) -> the store it mirrors


def store_of(local: str | Path) -> Store | None:
    """The store that the staged folder `local` mirrors, while a command works on it."""
    return _active.get(os.path.realpath(local))


def display(local: str | Path) -> str:
    """How to name a folder to the user: its store's URL when it is a staged remote folder."""
    store = store_of(local)
    return store.url if store else str(local)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def remote_lock(store: Store, command: str) -> Iterator[dict[str, Any]]:
    """One writer per remote folder: the object `_work/lock` holds the writer's pid, host,
    command and start, created exclusively (If-None-Match) and removed at the end. A lock
    left by a killed process of this host is taken over; one of another host must be removed
    by hand (its holder may still be running)."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data = (json.dumps(holder) + "\n").encode()
    try:
        store.write_bytes(LOCK_KEY, data, exclusive=True)
    except FileExistsError:
        try:
            old = json.loads(store.read_bytes(LOCK_KEY) or b"{}")
        except (OSError, ValueError):
            old = {}
        same_host = old.get("host") == holder["host"]
        if not (same_host and isinstance(old.get("pid"), int) and not _pid_alive(old["pid"])):
            raise FolderLocked(store.url, old) from None  # type: ignore[arg-type]
        log.info("taking over the lock of %s left by killed pid %s", store.url, old["pid"])
        store.write_bytes(LOCK_KEY, data)
    try:
        yield holder
    finally:
        store.rm(LOCK_KEY)


def _not_lock(rel: str) -> bool:
    return rel == LOCK_KEY


@contextlib.contextmanager
def staged(
    url: str | Path,
    command: str,
    select: Select = everything,
    last: Iterable[str] = LAST,
    local_lock: bool = True,
) -> Iterator[Path]:
    """Run a command that writes into folder `url`: a local folder is yielded as it is; a
    remote one is locked (remotely, and its staging folder locally), the objects `select`
    keeps are fetched into the staging folder, the command works there, and what it wrote or
    changed among those keys is published back (the `last` ones after the rest), also when
    it failed midway (each file it left is complete: the commands write through temp names).
    `local_lock`: also flock the staging folder (io/lock); off for a target that must hold
    only its own files (an export)."""
    if not is_remote(url):
        yield Path(url)
        return
    store = Store(str(url))
    local = staging_dir(store.url)
    with contextlib.ExitStack() as held:
        held.enter_context(remote_lock(store, command))
        if local_lock:
            held.enter_context(hold_lock(local, command))
        before = pull(store, local, lambda rel: not _not_lock(rel) and select(rel))
        local.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(local)
        _active[key] = store
        try:
            yield local
        finally:
            _active.pop(key, None)
            push(store, local, before, skip=lambda r: _not_lock(r) or not select(r), last=last)


@contextlib.contextmanager
def readable(url: str | Path, select: Select = everything) -> Iterator[Path]:
    """A folder a command only reads: a local one as it is, a remote one fetched (the objects
    `select` keeps) into its staging folder; nothing is published back."""
    if not is_remote(url):
        yield Path(url)
        return
    store = Store(str(url))
    local = staging_dir(store.url)
    pull(store, local, lambda rel: not _not_lock(rel) and select(rel))
    yield local


def _split(url: str) -> tuple[str, str]:
    """(parent URL, name) of an object URL."""
    parent, _, name = str(url).rstrip("/").rpartition("/")
    return parent, name


@contextlib.contextmanager
def input_path(url: str | Path, select: Select = everything) -> Iterator[Path]:
    """An input a command reads, as a local path: a local one as it is; a remote object
    fetched into the staging folder; a remote folder with the objects `select` keeps."""
    if not is_remote(url):
        yield Path(url)
        return
    fs, path = filesystem(str(url))
    with backend_errors(str(url)):
        is_file = fs.isfile(path)
        size = fs.size(path) if is_file else None
        is_dir = not is_file and fs.isdir(path)
    if is_file:
        parent, name = _split(str(url))
        local = staging_dir(parent) / name
        if not (local.is_file() and local.stat().st_size == size):
            Store(parent).get(name, local)
        yield local
        return
    if not is_dir:
        raise FileNotFoundError(f"no such object or folder: {url}")
    with readable(url, select) as local:
        yield local


@contextlib.contextmanager
def output_prefix(url: str | Path) -> Iterator[Path]:
    """Where a command writes files named PREFIX.* (a subset's .jsonl and .parquet, a report's
    .html): a local prefix as it is; for a remote one, a prefix in the staging folder whose
    files are uploaded beside the remote prefix when the block ends without an error."""
    if not is_remote(url):
        yield Path(url)
        return
    parent, name = _split(str(url))
    local_dir = staging_dir(parent)
    local_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name: p.stat().st_mtime_ns for p in local_dir.glob(f"{name}*") if p.is_file()}
    yield local_dir / name
    store = Store(parent)
    for p in sorted(local_dir.glob(f"{name}*")):
        if (
            p.is_file()
            and not p.name.startswith(".")
            and before.get(p.name) != p.stat().st_mtime_ns
        ):
            store.put(p, p.name)
            log.info("published %s", store.url_of(p.name))


def not_downloads(rel: str) -> bool:
    """A run folder without its downloads and scratch (what readers of a run need)."""
    return not rel.startswith(("downloads/", "_work/tmp/"))


def tables_only(rel: str) -> bool:
    """A run folder's tables and bookkeeping, without shard tars (subset, stats readers)."""
    return not_downloads(rel) and not rel.endswith(".tar")


def locked(
    command: str,
    arg: str = "out_dir",
    existing: bool = False,
    fetch: Callable[[str], bool] | None = None,
) -> Callable[[F], F]:
    """Decorate a library call that writes into the folder passed as its argument `arg`, so
    the call holds that folder's lock (`hold_lock(folder, command)`) while it runs.

    `existing`: the call works on a folder that must already exist (`score`): when it does not,
    the call runs unlocked and reports the missing folder itself, creating nothing.
    A remote folder (s3://...) is staged on this machine (`staged`): `fetch` says
    which of its objects the call needs (all by default), and what it writes is published."""

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            given = bound.arguments[arg]
            if is_remote(given):  # staged here, locked there, published back
                with staged(str(given), command, fetch or everything) as local:
                    bound.arguments[arg] = local
                    return fn(*bound.args, **bound.kwargs)
            folder = Path(given)
            if existing and not folder.is_dir():
                return fn(*args, **kwargs)
            with hold_lock(folder, command):
                return fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap
