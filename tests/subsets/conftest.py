"""Fixtures of the subset tests: synthetic run folders (100k clips each, written once a module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from subset_data import synthetic, write_parquet


@pytest.fixture(scope="module")
def skewed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    """100k clips of 13,828 videos, 1 to several hundred clips each."""
    folder = tmp_path_factory.mktemp("skewed")
    c = synthetic(seed=5, videos=20_000, skew=1.5)
    clip_ids = write_parquet(c, folder / "clips.parquet")
    return c, clip_ids, folder


@pytest.fixture(scope="module")
def table(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    folder = tmp_path_factory.mktemp("run")
    c = synthetic()
    clip_ids = write_parquet(c, folder / "clips.parquet")
    return c, clip_ids, folder
