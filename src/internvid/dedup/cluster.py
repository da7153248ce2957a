"""Spherical k-means over unit vectors: faiss.Kmeans when faiss is installed, else NumPy Lloyd's."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ASSIGN_ROWS = 1 << 15  # rows per block when points are assigned to their nearest centroid


@dataclass
class Clusters:
    """A k-means result."""

    assign: np.ndarray  # (N,) int64: the cluster of each point
    centroids: np.ndarray  # (k, D) float32, unit rows
    backend: str  # "faiss" | "numpy"


def auto_clusters(n: int) -> int:
    """The number of clusters when none is asked for: about sqrt(n), within 1 .. n."""
    return max(1, min(n, round(math.sqrt(n))))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N,) the centroid of highest cosine for each row (ties: the lowest index)."""
    out = np.empty(len(x), dtype=np.int64)
    for a in range(0, len(x), ASSIGN_ROWS):
        out[a : a + ASSIGN_ROWS] = np.argmax(x[a : a + ASSIGN_ROWS] @ centroids.T, axis=1)
    return out


def _plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: the first centre uniformly, each next one with probability
    proportional to the squared distance to the nearest centre chosen (2 - 2 cos)."""
    n = len(x)
    chosen = [int(rng.integers(n))]
    d2 = np.maximum(2.0 - 2.0 * (x @ x[chosen[0]]), 0.0).astype(np.float64)
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # every point sits on a centre: take the first ones not chosen
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen.append(int(rest[0]))
        else:
            chosen.append(int(rng.choice(n, p=d2 / total)))
        d2 = np.minimum(d2, np.maximum(2.0 - 2.0 * (x @ x[chosen[-1]]), 0.0))
    return x[chosen].copy()


def kmeans_numpy(x: np.ndarray, k: int, iterations: int = 20, seed: int = 0) -> Clusters:
    """Spherical Lloyd's: k-means++ seeding (`seed`), then assign by cosine and move each
    centre to its members' normalised mean, until nothing moves or `iterations` rounds; an
    empty cluster takes the point farthest from its own centre."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    centroids = _plusplus(x, k, rng)
    assign = nearest_centroid(x, centroids)
    for _ in range(iterations):
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, x)
        counts = np.bincount(assign, minlength=k)
        for c in np.flatnonzero(counts == 0):  # reseed an empty cluster
            own = np.einsum("ij,ij->i", x, centroids[assign])
            far = int(np.argmin(own))
            sums[c] = x[far]
            counts[c] = 1
            assign[far] = c
        centroids = _unit(sums)
        new = nearest_centroid(x, centroids)
        if np.array_equal(new, assign):
            break
        assign = new
    return Clusters(assign, centroids, "numpy")


def _faiss() -> Any | None:
    from internvid.search import _faiss as faiss_module

    return faiss_module()


def kmeans(
    x: np.ndarray, k: int, iterations: int = 20, seed: int = 0, use_faiss: bool | None = None
) -> Clusters:
    """Cluster the unit rows of `x` into `k` clusters (at most one per row) by cosine.

    faiss.Kmeans (spherical, seeded) when faiss is importable and `use_faiss` is not False,
    else `kmeans_numpy`. k = 1 (or a single row) needs no clustering."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    k = max(1, min(int(k), n))
    if n == 0:
        return Clusters(np.zeros(0, np.int64), np.zeros((0, x.shape[1]), np.float32), "none")
    if k == 1:
        return Clusters(np.zeros(n, np.int64), _unit(x.mean(axis=0, keepdims=True)), "none")
    faiss = _faiss() if use_faiss is not False else None
    if use_faiss and faiss is None:
        raise ImportError("faiss is not installed (pip install faiss-cpu)")
    if faiss is None:
        return kmeans_numpy(x, k, iterations, seed)
    km = faiss.Kmeans(
        x.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False,
        min_points_per_centroid=1,  # few points per cluster is expected: no warning
    )  # fmt: skip
    km.train(x)
    centroids = _unit(np.asarray(km.centroids, dtype=np.float32))
    return Clusters(nearest_centroid(x, centroids), centroids, "faiss")
