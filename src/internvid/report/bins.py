"""Counting for the charts: [lo, hi) buckets and their labels, top categories, score histograms."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from internvid.report.data import score_info
from internvid.report.fmt import edge_text, fmt

INF = math.inf
SCORE_BINS = 10  # bars of every score histogram
MAX_CATEGORIES = 12  # bars of a categorical chart; the rest are summed into "other"


def top_categories(counter: Counter, limit: int = MAX_CATEGORIES) -> tuple[list[str], list[int]]:
    """The `limit` most common categories (ties by name), the rest summed as "other"."""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    head = items
    if len(items) > limit:
        head = [*items[: limit - 1], ("other", sum(v for _, v in items[limit - 1 :]))]
    return [str(k) for k, _ in head], [int(v) for _, v in head]


def bucket_counts(values: Sequence[float], buckets: Sequence[tuple[float, float]]) -> list[int]:
    """How many values fall in each [lo, hi) bucket (below the first: first; NaN: none)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    edges = np.array([b[0] for b in buckets] + [buckets[-1][1]], dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(buckets) - 1)
    return [int(c) for c in np.bincount(idx, minlength=len(buckets))]


def bucket_labels(
    buckets: Sequence[tuple[float, float]], unit: str = "", integer: bool = False
) -> list[str]:
    """Labels of [lo, hi) buckets: "2-5 s", "60+ s"; integer buckets as "5-9", "1"."""
    out = []
    for lo, hi in buckets:
        if hi == INF:
            out.append(f"{fmt(lo)}+{unit}")
        elif integer and hi - lo == 1:
            out.append(f"{fmt(lo)}{unit}")
        elif integer:
            out.append(f"{fmt(lo)}-{fmt(hi - 1)}{unit}")
        else:
            out.append(f"{fmt(lo)}-{fmt(hi)}{unit}")
    return out


def score_histogram(values: list[float], name: str) -> tuple[list[str], list[str], list[int]]:
    """SCORE_BINS equal bins over the score's fixed range, else the data's min..max.

    Returns the bins' labels ("a to b"), the SCORE_BINS + 1 edges as text, and the counts.
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    fixed = score_info(name).range
    if fixed is not None:
        lo, hi = fixed
        v = np.clip(v, lo, hi)
    elif len(v):
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = 0.0, 1.0
    counts, edges = np.histogram(v, bins=SCORE_BINS, range=(lo, hi))
    # enough decimals to tell neighbouring edges apart
    decimals = min(6, max(0, 1 - math.floor(math.log10(max(hi - lo, 1e-12) / SCORE_BINS))))
    texts = [edge_text(float(e), decimals) for e in edges]
    labels = [f"{texts[i]} to {texts[i + 1]}" for i in range(SCORE_BINS)]
    return labels, texts, [int(c) for c in counts]
