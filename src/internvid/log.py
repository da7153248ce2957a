"""Logging set-up for the CLI: rich output on stderr, and the progress bar of long commands."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rich.console import Console
from rich.logging import RichHandler

console = Console(stderr=True)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    quiet_noisy_loggers(level)


def quiet_noisy_loggers(level: int) -> None:
    """Libraries that log every file at INFO (PySceneDetect's "Detecting scenes...", botocore's
    "Found credentials in environment variables")."""
    for noisy in ("pyscenedetect", "urllib3", "filelock", "botocore", "aiobotocore", "s3fs"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class CountingProgress:
    """A rich progress bar over `unit`s that also shows the clips written and the items failed
    so far (`enabled=False`: does nothing). `eta` adds the time remaining."""

    def __init__(self, unit: str, total: int | None, enabled: bool = True, eta: bool = False):
        self.unit, self.total, self.enabled, self.eta = unit, total, enabled, eta
        self.clips = self.failed = 0

    def __enter__(self) -> CountingProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = [
                TextColumn(f"[bold]{self.unit}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
            ]
            if self.eta:
                columns.append(TimeRemainingColumn())
            self.bar = Progress(*columns, console=console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task(self.unit, total=self.total, info="")
        return self

    def advance(self, items: int, clips: int = 0, failed: int = 0) -> None:
        """`items` more done, of which `clips` clips were written and `failed` items failed."""
        self.clips += clips
        self.failed += failed
        if self.enabled and (items or clips or failed):
            info = f"{self.clips} clips, {self.failed} failed"
            self.bar.update(self.task, advance=items, info=info)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


PROGRESS_EVERY_S = 10.0  # seconds between two progress log lines of `progress_ticker`


def progress_ticker(what: str, total: int, unit: str = "") -> Callable[[int], None]:
    """A `tick(done)` that logs "what: done/total unit (seconds)" at most every
    PROGRESS_EVERY_S and at the end: progress of long loops that run without a console bar."""
    start = last = time.monotonic()
    suffix = f" {unit}" if unit else ""

    def tick(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= PROGRESS_EVERY_S:
            last = now
            logging.getLogger("internvid").info(
                "%s: %d/%d%s (%.1f s)", what, done, total, suffix, now - start
            )

    return tick
