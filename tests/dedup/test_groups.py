"""Dedup's parts on known data: k-means (NumPy and faiss), cluster pairs, union-find, keep rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from internvid.dedup.cluster import auto_clusters, kmeans, kmeans_numpy, nearest_centroid
from internvid.dedup.embed import frames_signature, normalise
from internvid.dedup.groups import (
    KEEP_RULES,
    UnionFind,
    canonical_key,
    cluster_pairs,
    duplicate_groups,
    pick_kept,
)
from internvid.records import Clip
from internvid.search import _faiss


def _blobs(seed: int = 0, blobs: int = 30, dim: int = 48, noise: float = 0.02):
    """Unit vectors around `blobs` random directions, 1-4 per blob, shuffled; the true groups
    are the blobs with two or more members."""
    rng = np.random.default_rng(seed)
    centres = normalise(rng.normal(size=(blobs, dim)))
    sizes = rng.integers(1, 5, size=blobs)
    label = np.repeat(np.arange(blobs), sizes)
    x = centres[label] + noise * rng.normal(size=(len(label), dim))
    order = rng.permutation(len(label))
    x, label = normalise(x[order]), label[order]
    truth = sorted(
        sorted(np.flatnonzero(label == b).tolist()) for b in range(blobs) if sizes[b] > 1
    )
    return x, truth


def _brute_groups(x: np.ndarray, threshold: float) -> list[list[int]]:
    sims = x @ x.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return duplicate_groups(len(x), i, j)


def test_union_find_joins_chains_and_roots_at_the_smallest():
    uf = UnionFind(8)
    assert uf.union(5, 3) and uf.union(3, 7) and uf.union(1, 6)
    assert not uf.union(7, 5)  # one set already
    assert uf.find(7) == 3 and uf.find(6) == 1
    assert uf.groups() == [[1, 6], [3, 5, 7]]  # singletons 0, 2, 4 are no group
    # a chain a~b~c is one group, whatever order the pairs come in
    assert duplicate_groups(5, np.array([3, 0]), np.array([4, 3])) == [[0, 3, 4]]
    assert duplicate_groups(3, np.zeros(0, int), np.zeros(0, int)) == []


def test_cluster_pairs_with_every_neighbour_is_the_exact_search():
    x, truth = _blobs(seed=1)
    result = kmeans_numpy(x, 6, seed=0)
    i, j, _ = cluster_pairs(x, result.assign, result.centroids, 0.9, neighbours=5)
    assert np.all(i < j)
    sims = x @ x.T
    want = {(a, b) for a, b in zip(*np.nonzero(np.triu(sims >= 0.9, k=1)), strict=True)}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == want
    assert duplicate_groups(len(x), i, j) == truth == _brute_groups(x, 0.9)


def test_neighbouring_clusters_find_a_pair_split_across_a_boundary():
    # two near-identical points put in different clusters on purpose
    x = normalise(np.array([[1.0, 0.0, 0.0], [0.99, 0.05, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    centroids = normalise(np.array([[1.0, -0.1, 0.0], [1.0, 0.2, 0.0], [0, 1.0, 0], [0, 0, 1.0]]))
    assign = np.array([0, 1, 2, 3])
    i, _, _ = cluster_pairs(x, assign, centroids, 0.95, neighbours=0)
    assert len(i) == 0  # within clusters only: missed
    i, j, _ = cluster_pairs(x, assign, centroids, 0.95, neighbours=1)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1)]


def test_numpy_kmeans_is_seeded_and_converges_on_separable_data():
    x, truth = _blobs(seed=2)
    a = kmeans_numpy(x, 8, seed=3)
    b = kmeans_numpy(x, 8, seed=3)
    assert np.array_equal(a.assign, b.assign) and a.backend == "numpy"
    assert np.allclose(np.linalg.norm(a.centroids, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a.assign, nearest_centroid(x, a.centroids))  # converged
    assert len(np.unique(a.assign)) == 8  # no empty cluster
    # every blob's points share one cluster (the blobs are far apart)
    for g in truth:
        assert len(set(a.assign[g].tolist())) == 1


@pytest.mark.skipif(_faiss() is None, reason="faiss is not installed (pip install faiss-cpu)")
@pytest.mark.parametrize("seed", [0, 4])
def test_numpy_and_faiss_kmeans_give_the_same_groups(seed):
    x, truth = _blobs(seed=seed, blobs=40)
    k = auto_clusters(len(x))
    groups = {}
    for use in (False, True):
        c = kmeans(x, k, seed=seed, use_faiss=use)
        assert c.backend == ("faiss" if use else "numpy") and len(c.centroids) == k
        i, j, _ = cluster_pairs(x, c.assign, c.centroids, 0.9, neighbours=2)
        groups[use] = duplicate_groups(len(x), i, j)
    assert groups[False] == groups[True] == truth


def test_kmeans_edge_cases():
    assert auto_clusters(0) == 1 and auto_clusters(1) == 1 and auto_clusters(100) == 10
    x, _ = _blobs(seed=5, blobs=3)
    one = kmeans(x, 1)
    assert one.backend == "none" and set(one.assign.tolist()) == {0}
    many = kmeans(x, 10_000, use_faiss=False)  # more clusters than points: one per point
    assert len(many.centroids) == len(x)
    empty = kmeans(np.zeros((0, 4), np.float32), 3)
    assert len(empty.assign) == 0


def _clip(vid: str, start: float, end: float, aesthetic: float | None = None) -> Clip:
    scores = {} if aesthetic is None else {"aesthetic": aesthetic}
    return Clip.new(vid, start, end, scores=scores)


def test_keep_rules_and_their_ties():
    clips = [
        _clip("b", 0, 4, aesthetic=5.0),  # 0
        _clip("a", 3, 5, aesthetic=6.5),  # 1: best aesthetic, short
        _clip("a", 0, 6, aesthetic=6.5),  # 2: same aesthetic, longer
        _clip("c", 0, 6),  # 3: no aesthetic, as long as 2
    ]
    group = [[0, 1, 2, 3]]
    assert pick_kept(group, clips, "aesthetic")[0].kept == 2  # 6.5, then the longer
    assert pick_kept(group, clips, "longest")[0].kept == 2  # 6 s twice: "a" before "c"
    assert pick_kept(group, clips, "first")[0].kept == 2  # a/0 is first in canonical order
    no_scores = [_clip("z", 0, 3), _clip("y", 0, 3), _clip("x", 1, 2)]
    g = pick_kept([[0, 1, 2]], no_scores, "aesthetic")[0]
    assert g.kept == 1 and g.members == [1, 2, 0]  # kept first, the rest canonical
    for rule in KEEP_RULES:  # the pick never depends on the order members come in
        picks = {
            pick_kept([list(p)], clips, rule)[0].kept for p in itertools.permutations(range(4))
        }
        assert len(picks) == 1, rule
    # groups come in the canonical order of their kept clip
    two = pick_kept([[0], [3]], clips, "first")
    assert [canonical_key(clips[g.kept]) for g in two] == sorted(
        canonical_key(clips[p]) for p in (0, 3)
    )


def test_frames_signature_keeps_fades_and_ignores_a_brightness_offset():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 200, size=(16, 16, 3), dtype=np.uint8) for _ in range(20)]
    sig = frames_signature(frames)
    assert sig.shape == (8 * 16 * 16,)
    brighter = frames_signature([np.minimum(f.astype(int) + 30, 255) for f in frames])
    cos = sig @ brighter / np.linalg.norm(sig) / np.linalg.norm(brighter)
    assert cos > 0.999
    fade = [np.full((16, 16, 3), 10 * t, np.uint8) for t in range(20)]  # flat frames, a fade
    assert np.linalg.norm(frames_signature(fade)) > 0
    still = [np.full((16, 16, 3), 90, np.uint8)] * 3  # no variation at all: no signal
    assert np.linalg.norm(frames_signature(still)) == 0
    assert frames_signature(frames[:3]).shape == sig.shape  # fewer frames than segments
