"""Files that appear under their final name only when complete: write to a temp name, then rename."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temp_name(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed onto `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file beside `path`; on success fsync and rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    kwargs = {"encoding": "utf-8"} if "b" not in mode else {}
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def write_jsonl_atomic(
    path: str | Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]
) -> int:
    n = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def remove_temp_files(folder: str | Path) -> int:
    """Delete temp files a killed run left behind (`.NAME.tmp-PID`); returns how many."""
    n = 0
    for p in Path(folder).rglob(".*.tmp-*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
