"""The collect journal: every platform request's result, appended and synced, so a rerun asks nothing twice."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Journal:
    """An append-only JSONL file of finished requests: `{"kind": "search", "key": ..., "result":
    ...}`. Each line is written, flushed and fsynced before the next request, so after a kill
    every finished request is on disk; a line cut short by the kill is ignored (and that request
    runs again). One writer: the run folder's lock."""

    def __init__(self, path: Path):
        self.path = path
        self._done: dict[tuple[str, str], Any] = {}
        if path.exists():
            self._load()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def _load(self) -> None:
        good = 0
        with open(self.path, "rb") as f:
            data = f.read()
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                self._done[(rec["kind"], rec["key"])] = rec["result"]
                good += len(raw) + 1
            except (ValueError, KeyError, TypeError):
                break  # the kill's half line: it and anything after it are dropped
        if good < len(data):
            log.info("journal: dropping a cut-off last line of %s", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._done

    def get(self, kind: str, key: str) -> Any:
        return self._done.get((kind, key))

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self._done if k == kind)

    def put(self, kind: str, key: str, result: Any) -> None:
        """Record a finished request (durably, before the caller goes on)."""
        line = json.dumps({"kind": kind, "key": key, "result": result}, ensure_ascii=False)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._done[(kind, key)] = result

    def close(self) -> None:
        self._file.close()
