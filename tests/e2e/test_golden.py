"""Behaviour is unchanged by refactoring: every command's outputs on fixed inputs equal the
recorded digest (tests/e2e/golden.json, written by `python tests/e2e/golden.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from golden import SHARED_VIDEOS, produce

GOLDEN = Path(__file__).with_name("golden.json")


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where two digests differ, as readable paths (empty: equal)."""
    if type(want) is not type(got):
        return [f"{path}: {want!r:.80} != {got!r:.80}"]
    if isinstance(want, dict):
        out = [
            f"{path}/{k}: only in {'golden' if k in want else 'this run'}"
            for k in want.keys() ^ got.keys()
        ]
        for k in sorted(want.keys() & got.keys()):
            out += differences(want[k], got[k], f"{path}/{k}")
        return out
    if isinstance(want, list):
        out = [f"{path}: {len(want)} items != {len(got)}"] if len(want) != len(got) else []
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    return [] if want == got else [f"{path}: {want!r:.80} != {got!r:.80}"]


def test_outputs_equal_the_recorded_ones(tmp_path):
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"sample videos not found at {SHARED_VIDEOS} (set INTERNVID_SHARED_DATA)")
    digest = produce(tmp_path / "work")
    diff = differences(json.loads(GOLDEN.read_text()), json.loads(json.dumps(digest)))
    assert not diff, "outputs changed:\n" + "\n".join(diff[:40])
