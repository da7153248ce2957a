"""Inline SVG charts of the report: vertical bars (histograms) and horizontal bars (categories)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from internvid.report.fmt import esc, fmt, pct, short

# SVG chart geometry, pixels
CHART_W = 640  # width of every chart
CHART_H = 240  # plot area height of a vertical bar chart
ROW_H = 22  # row height of a horizontal bar chart
MARGIN = 12  # outer margin


def nice_step(top: float, ticks: int = 4) -> float:
    """A 1/2/5 x 10^k step that splits 0..top into about `ticks` parts."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def svg_vbars(
    plot: str,
    labels: Sequence[str],
    counts: Sequence[float],
    *,
    title: str,
    x_title: str,
    y_title: str = "clips",
    refs: dict[int, float] | None = None,
    edges: Sequence[str] | None = None,
) -> str:
    """A vertical bar chart (histogram) as inline SVG: one `rect.bar` per label, zero bars too.

    `refs` maps a bar index to a reference share of the total (drawn as a dashed mark);
    `edges` (one more than the bars) are written at the bar boundaries instead of the labels.
    """
    n = len(labels)
    total = float(sum(counts))
    refs = refs or {}
    tops = [*counts, *(s * total for s in refs.values())]
    step = max(1.0, nice_step(max(tops, default=0) or 1))  # counts: whole-number ticks
    ymax = step * math.ceil((max(tops, default=0) or 1) / step)
    left, top_pad = 48, 36
    right = 2 * MARGIN  # room for the last edge label
    slot = (CHART_W - left - right) / max(n, 1)
    shown = edges if edges is not None else labels
    slanted = max((len(s) for s in shown), default=0) * 6.5 > slot * (1.9 if edges else 0.95)
    bottom = 74 if slanted else 40
    height = top_pad + CHART_H + bottom
    y0 = top_pad + CHART_H

    def y(v: float) -> float:
        return y0 - CHART_H * v / ymax

    parts = [
        f'<svg class="chart" data-plot="{esc(plot)}" width="{CHART_W}" height="{height}" '
        f'viewBox="0 0 {CHART_W} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{left}" y="16" font-weight="600">{esc(title)}</text>',
    ]
    t = 0.0
    while t <= ymax + 1e-9:
        parts.append(
            f'<line class="grid" x1="{left}" x2="{CHART_W - right}" y1="{y(t):.1f}" '
            f'y2="{y(t):.1f}"/><text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">'
            f"{esc(fmt(t))}</text>"
        )
        t += step
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = left + i * slot + slot * 0.12
        w = slot * 0.76
        h = y0 - y(count)
        tip = f"{label}: {fmt(count)} ({pct(count, total)})"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y0 - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'data-label="{esc(label)}" data-count="{esc(fmt(count))}"><title>{esc(tip)}</title>'
            "</rect>"
        )
        if count:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{y0 - h - 3:.1f}" text-anchor="middle">'
                f"{esc(fmt(count))}</text>"
            )
        cx = x + w / 2
        if edges is None and slanted:
            parts.append(
                f'<text x="{cx:.1f}" y="{y0 + 12}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {y0 + 12})">{esc(label)}</text>'
            )
        elif edges is None:
            parts.append(
                f'<text x="{cx:.1f}" y="{y0 + 14}" text-anchor="middle">{esc(label)}</text>'
            )
        if i in refs:
            ry = y(refs[i] * total)
            parts.append(
                f'<line class="refmark" x1="{x - 2:.1f}" x2="{x + w + 2:.1f}" y1="{ry:.1f}" '
                f'y2="{ry:.1f}"><title>{esc(f"paper: {refs[i]:.0%} of captions")}</title></line>'
            )
    for i, text in enumerate(edges or []):
        ex = left + i * slot
        parts.append(
            f'<line class="axis" x1="{ex:.1f}" x2="{ex:.1f}" y1="{y0}" y2="{y0 + 4}"/>'
            + (
                f'<text x="{ex:.1f}" y="{y0 + 12}" text-anchor="end" '
                f'transform="rotate(-35 {ex:.1f} {y0 + 12})">{esc(text)}</text>'
                if slanted
                else f'<text x="{ex:.1f}" y="{y0 + 15}" text-anchor="middle">{esc(text)}</text>'
            )
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{CHART_W - right}" y1="{y0}" y2="{y0}"/>'
        f'<text x="{(left + CHART_W) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        f"{esc(x_title)}</text>"
        f'<text x="12" y="{y0 - CHART_H / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {y0 - CHART_H / 2:.0f})">{esc(y_title)}</text></svg>'
    )
    return "".join(parts)


def svg_hbars(
    plot: str, labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = ""
) -> str:
    """A horizontal bar chart (categories) as inline SVG: one `rect.bar` per label."""
    n = len(labels)
    shown = [short(s) for s in labels]
    left = min(16 + 6.6 * max((len(s) for s in shown), default=4), CHART_W / 2)
    right = 70
    top_pad = 26
    height = top_pad + ROW_H * n + MARGIN
    vmax = max(values, default=0) or 1
    total = float(sum(values))
    width = CHART_W - left - right
    parts = [
        f'<svg class="chart" data-plot="{esc(plot)}" width="{CHART_W}" height="{height}" '
        f'viewBox="0 0 {CHART_W} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{MARGIN}" y="16" font-weight="600">{esc(title)}</text>',
    ]
    for i, (label, label_shown, v) in enumerate(zip(labels, shown, values, strict=True)):
        yy = top_pad + i * ROW_H
        w = width * v / vmax
        value = f"{fmt(v)}{unit}"
        tip = f"{label}: {value} ({pct(v, total)})"
        parts.append(
            f'<text x="{left - 6:.1f}" y="{yy + ROW_H * 0.65:.1f}" text-anchor="end">'
            f"{esc(label_shown)}</text>"
            f'<rect class="bar" x="{left:.1f}" y="{yy + 3:.1f}" width="{w:.1f}" '
            f'height="{ROW_H - 6}" data-label="{esc(label)}" data-count="{esc(fmt(v))}">'
            f"<title>{esc(tip)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{yy + ROW_H * 0.65:.1f}">{esc(value)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left:.1f}" x2="{left:.1f}" y1="{top_pad}" '
        f'y2="{top_pad + ROW_H * n}"/></svg>'
    )
    return "".join(parts)
