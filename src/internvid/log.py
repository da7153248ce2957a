"""Logging set-up for the CLI: rich output on stderr."""

from __future__ import annotations

import logging

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
    """Libraries that log every file at INFO (PySceneDetect's "Detecting scenes...")."""
    for noisy in ("pyscenedetect", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
