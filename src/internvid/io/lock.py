"""One writer per output folder: an advisory flock on OUT/_work/lock naming its holder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORK_DIR = "_work"  # the folder of a run's bookkeeping, inside the output folder
LOCK_NAME = "lock"  # the lock file inside it


# folders this process holds the lock of (resolved path -> depth), so a nested call re-enters
_held: dict[str, int] = {}
_held_guard = threading.Lock()


class FolderLocked(Exception):
    """Another process holds the output folder's lock (its pid, host, command are in `holder`).

    Deliberately neither OSError nor ValueError: commands turn those into EXIT_USAGE, while this
    one becomes EXIT_LOCKED in the CLI."""

    def __init__(self, out_dir: Path, holder: dict[str, Any]) -> None:
        self.out_dir = out_dir  # the folder asked for
        self.holder = holder  # the lock file's JSON: pid, host, command, started ({} unreadable)
        pid = holder.get("pid", "?")
        host = holder.get("host", "?")
        command = holder.get("command", "?")
        since = holder.get("started", "?")
        super().__init__(
            f"{out_dir} is in use by `internvid {command}` (pid {pid} on {host}, since {since}): "
            "wait for it to finish, or choose another output folder"
        )


def lock_path(out_dir: str | Path) -> Path:
    """Where the lock of output folder `out_dir` lives."""
    return Path(out_dir) / WORK_DIR / LOCK_NAME


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_holder(out_dir: str | Path) -> dict[str, Any] | None:
    """The holder of `out_dir`'s lock when some process holds it now, else None (a lock file
    left by a killed process is not held: the kernel released its flock)."""
    path = lock_path(out_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold_lock(out_dir: str | Path, command: str) -> Iterator[dict[str, Any]]:
    """Hold the lock of `out_dir` (created, with its _work folder) for the `with` block, or
    raise FolderLocked at once when another process holds it. Yields the holder record.

    The lock is `fcntl.flock` on OUT/_work/lock, so the kernel drops it when the holder's
    process ends however it ends (SIGKILL included): a lock file left behind never blocks a
    resume. The file holds the holder's JSON while held and is emptied on release. A process
    that already holds the folder's lock re-enters without locking again."""
    out_dir = Path(out_dir)
    path = lock_path(out_dir)
    created = [p for p in (out_dir, path.parent) if not p.exists()]  # removed again if left empty
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield {"pid": os.getpid(), "command": command}
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderLocked(out_dir, _read_holder(fd)) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        with _held_guard:
            _held[key] = 1
        log.debug("holding the lock of %s for %s", out_dir, command)
        try:
            yield holder
        finally:
            with _held_guard:
                _held.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # still held: no one reads a half-cleared file
            if created:  # a call that stopped before writing anything leaves no folder behind
                _remove_if_only_lock(path, created)
    finally:
        os.close(fd)  # releases the flock


def _remove_if_only_lock(path: Path, created: list[Path]) -> None:
    """Undo the folders hold_lock created when the lock file is all they hold."""
    if any(p.name != LOCK_NAME for p in path.parent.iterdir()):
        return
    path.unlink(missing_ok=True)
    for folder in reversed(created):
        with contextlib.suppress(OSError):  # not empty: something else was written there
            folder.rmdir()


def clear_work_dir(work_dir: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Remove everything in `work_dir` but the lock file (which the caller holds: deleting it
    would let a second process create and lock a new one beside the held one) and `keep`."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return
    for p in work_dir.iterdir():
        if p.name == LOCK_NAME or p.name in keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
