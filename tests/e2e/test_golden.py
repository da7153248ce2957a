"""Behaviour is unchanged by refactoring: every command's outputs on fixed inputs equal the
recorded digest (tests/e2e/golden.json, written by `python tests/e2e/golden.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from golden import SHARED_VIDEOS, produce

GOLDEN = Path(__file__).with_name("golden.json")


# Encoded media vary by a few bytes between CPUs (swscale's and the encoder's SIMD paths): a
# shard member of these kinds is equal within this share of its size
MEDIA = (".mp4", ".webm", ".mkv", ".jpg", ".jpeg", ".png")
MEDIA_SIZE_TOLERANCE = 0.02
# floats are recorded at 6 decimals; model arithmetic differs in the last one between CPUs
FLOAT_TOLERANCE = 2e-6


def _media_member(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0].lower().endswith(MEDIA)
        and isinstance(value[1], int)
    )


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where two digests differ, as readable paths (empty: equal)."""
    if _media_member(want) and _media_member(got) and want[0] == got[0]:
        a, b = want[1], got[1]
        close = abs(a - b) <= MEDIA_SIZE_TOLERANCE * max(a, b)
        return [] if close else [f"{path}: {a} != {b} bytes (beyond {MEDIA_SIZE_TOLERANCE:.0%})"]
    if isinstance(want, float) and isinstance(got, float):
        return [] if abs(want - got) <= FLOAT_TOLERANCE else [f"{path}: {want!r} != {got!r}"]
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
