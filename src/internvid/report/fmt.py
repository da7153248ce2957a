"""Numbers and text for the report page: escaping, short numbers, shares, shortened labels."""

from __future__ import annotations

import html
import math
from typing import Any

MAX_LABEL = 36  # characters of a category label before it is shortened


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped (quotes too)."""
    return html.escape(str(value), quote=True)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for people: integers as such, else `digits` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 else f"{x:.2e}"


def pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "-"


def short(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def edge_text(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
