"""Duplicate groups: pairs at or above a cosine within (and across neighbouring) clusters,
joined by union-find; the keep rules that pick each group's survivor."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from internvid.records import Clip

BLOCK_ELEMENTS = 1 << 24  # most similarities computed at once (64 MB of float32)


class UnionFind:
    """Disjoint sets over 0 .. n-1; the root of a set is its smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)  # parent of each element (a root: itself)
        self.touched: set[int] = set()  # elements some union joined (the rest are alone)

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = int(parent[a])
        return int(a)

    def union(self, a: int, b: int) -> bool:
        """Join the sets of a and b; False when they were one already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        self.parent[hi] = lo
        self.touched.update((a, b))
        return True

    def groups(self) -> list[list[int]]:
        """Every set of two or more members, each sorted, ordered by its smallest member."""
        by_root: dict[int, list[int]] = {}
        for a in sorted(self.touched):
            by_root.setdefault(self.find(a), []).append(a)
        return [m for _, m in sorted(by_root.items()) if len(m) > 1]


def _pairs_between(
    x: np.ndarray, rows: np.ndarray, cols: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of `rows` x `cols` (i != j) with cosine >= threshold, blockwise."""
    out_i, out_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    if len(rows) == 0 or len(cols) == 0:
        return out_i[0], out_j[0]
    step = max(1, BLOCK_ELEMENTS // len(cols))
    xc = x[cols]
    for a in range(0, len(rows), step):
        r = rows[a : a + step]
        ii, jj = np.nonzero((x[r] @ xc.T) >= threshold)
        gi, gj = r[ii], cols[jj]
        keep = gi != gj
        out_i.append(np.minimum(gi[keep], gj[keep]))
        out_j.append(np.maximum(gi[keep], gj[keep]))
    return np.concatenate(out_i), np.concatenate(out_j)


def probe_lists(
    x: np.ndarray, assign: np.ndarray, centroids: np.ndarray, neighbours: int
) -> list[np.ndarray]:
    """For each cluster, the points it is compared with: its members and every point that has
    it among its `neighbours` nearest centroids after its own (sorted positions)."""
    k = len(centroids)
    owners = [np.arange(len(x), dtype=np.int64)]
    where = [assign.astype(np.int64)]
    m = min(max(0, neighbours), k - 1)
    if m:
        rows = max(1, BLOCK_ELEMENTS // max(k, 1))
        for a in range(0, len(x), rows):
            sims = x[a : a + rows] @ centroids.T
            sims[np.arange(len(sims)), assign[a : a + rows]] = -np.inf  # not its own again
            near = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            owners.append(np.repeat(np.arange(a, a + len(sims), dtype=np.int64), m))
            where.append(near.reshape(-1).astype(np.int64))
    owner, cluster = np.concatenate(owners), np.concatenate(where)
    order = np.lexsort((owner, cluster))
    owner, cluster = owner[order], cluster[order]
    bounds = np.searchsorted(cluster, np.arange(k + 1))
    return [owner[bounds[c] : bounds[c + 1]] for c in range(k)]


def cluster_pairs(
    x: np.ndarray,
    assign: np.ndarray,
    centroids: np.ndarray,
    threshold: float,
    neighbours: int = 2,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs (i, j), i < j, of rows of `x` (unit vectors) with cosine >= `threshold`: each
    cluster's members are compared with each other and with every point that has the cluster
    among its `neighbours` nearest centroids after its own, so a duplicate pair that k-means
    split across a boundary is found (a point's twin lies almost where it does: the twin's
    cluster is near the top of its centroids too). Each pair once, sorted. Returns (i, j,
    points compared in all: the sum of members x probes).

    With neighbours = k - 1 (or one cluster) this is the exact all-pairs search."""
    k = len(centroids)
    if len(x) == 0 or k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    members = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[members], np.arange(k + 1))
    probes = probe_lists(x, assign, centroids, neighbours)
    all_i, all_j, compared = [], [], 0
    for c in range(k):
        rows = members[bounds[c] : bounds[c + 1]]
        i, j = _pairs_between(x, rows, probes[c], threshold)
        all_i.append(i)
        all_j.append(j)
        compared += len(rows) * len(probes[c])
    key = np.unique(np.concatenate(all_i) * len(x) + np.concatenate(all_j))  # each pair once
    return key // len(x), key % len(x), compared


def duplicate_groups(n: int, pairs_i: np.ndarray, pairs_j: np.ndarray) -> list[list[int]]:
    """The connected components (two or more members) of the pairs: a chain a~b, b~c puts
    a and c in one group even when a and c are less similar than the threshold."""
    uf = UnionFind(n)
    for a, b in zip(pairs_i.tolist(), pairs_j.tolist(), strict=True):
        uf.union(a, b)
    return uf.groups()


# ------------------------------------------------------------------ keep rules


def canonical_key(clip: Clip) -> tuple:
    """The canonical clip order (subsets' too): video id, start, end, clip id."""
    return (clip.video_id, clip.start, clip.end, clip.clip_id)


def _aesthetic(clip: Clip) -> float:
    value = clip.scores.get("aesthetic")
    return float(value) if value is not None and math.isfinite(value) else -math.inf


KEEP_RULES: dict[str, Callable[[Clip], tuple]] = {  # rule -> sort key; the smallest is kept
    "aesthetic": lambda c: (-_aesthetic(c), -c.duration, *canonical_key(c)),
    "longest": lambda c: (-c.duration, *canonical_key(c)),
    "first": canonical_key,
}


@dataclass
class Group:
    """One duplicate group: its members and the one kept."""

    members: list[int]  # positions of the members, kept first, then in canonical order
    kept: int  # position of the clip the group keeps


def pick_kept(groups: Sequence[Sequence[int]], clips: Sequence[Clip], rule: str) -> list[Group]:
    """Each group's survivor by `rule` (KEEP_RULES; ties by the canonical order), groups
    ordered by their kept clip's canonical position."""
    key = KEEP_RULES[rule]
    out = []
    for g in groups:
        kept = min(g, key=lambda p: key(clips[p]))
        rest = sorted((p for p in g if p != kept), key=lambda p: canonical_key(clips[p]))
        out.append(Group([kept, *rest], kept))
    return sorted(out, key=lambda grp: canonical_key(clips[grp.kept]))
