"""Timestamps in the InternVid release format (`HH:MM:SS.mmm`) and integer milliseconds."""

from __future__ import annotations

import re

_TIMECODE = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$")


def parse_timecode(text: str) -> int:
    """`"00:08:14.520"` -> 494520 milliseconds; raises ValueError on anything else."""
    m = _TIMECODE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not a HH:MM:SS.mmm timestamp: {text!r}")
    h, mi, s, ms = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def format_timecode(ms: int) -> str:
    """494520 milliseconds -> `"00:08:14.520"`."""
    if ms < 0:
        raise ValueError(f"negative timestamp: {ms} ms")
    s, ms = divmod(int(ms), 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def seconds_to_ms(seconds: float) -> int:
    """Seconds -> the nearest whole millisecond."""
    return round(seconds * 1000.0)
