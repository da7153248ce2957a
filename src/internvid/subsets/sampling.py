"""The subsets' draws: NumPy's weighted choice without replacement, bit for bit, in bounded memory."""

from __future__ import annotations

import enum
import functools
import logging
from typing import TYPE_CHECKING, Any

# numpy is imported where it is used: `internvid --help` stays fast
if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42  # the seed the release drew InternVid-10M-DIV with
CHUNK_ROWS = 1 << 22  # rows of the weight vector the sampler expands at a time (32 MiB of float64)


class Rng(enum.StrEnum):
    """Which NumPy random stream the DIV and random draws use."""

    # np.random.seed(seed); np.random.choice(...): the legacy global RandomState (MT19937,
    # random_sample), what the release's Data/InternVid/div_sampling.py drew DIV with
    legacy = "legacy"
    generator = "generator"  # np.random.default_rng(seed).choice(...): PCG64's Generator.random


DEFAULT_RNG = Rng.legacy  # the release's DIV draw (np.random.seed(42); np.random.choice)
LEGACY_SEED_MAX = 2**32 - 1  # RandomState / np.random.seed take seeds 0 .. 2**32 - 1


def reference_choice(
    weights: np.ndarray, size: int, seed: int = DEFAULT_SEED, rng: Rng | str = DEFAULT_RNG
) -> np.ndarray:
    """NumPy's own draw: `choice(n, size, replace=False, p=w / w.sum())` of a fresh stream.

    rng "legacy": `np.random.RandomState(seed).choice`, the same stream as the release's
    `np.random.seed(seed); np.random.choice(...)` (without touching NumPy's global state);
    "generator": `np.random.default_rng(seed).choice`. Holds four n-row float64 arrays at its
    peak (the weights, p, NumPy's copy of p, its cdf); `choice_runs` returns the same indices,
    in the same order, in bounded memory.
    """
    import numpy as np

    w = np.asarray(weights, dtype=np.float64)
    chooser = np.random.RandomState(seed) if Rng(rng) is Rng.legacy else np.random.default_rng(seed)
    return chooser.choice(w.size, size=size, replace=False, p=w / w.sum())


def _uniforms(rng: Rng | str, seed: int) -> Any:
    """`k -> k uniforms in [0, 1)`: the draws NumPy's weighted choice makes each round.

    Legacy `RandomState.choice` calls `self.rand(k)` (= `random_sample(k)`: MT19937, 53-bit
    doubles) and `Generator.choice` calls `self.random(k)`; the rest of the two algorithms is
    the same (numpy/random/mtrand.pyx and _generator.pyx).
    """
    import numpy as np

    if Rng(rng) is Rng.legacy:
        if not 0 <= int(seed) <= LEGACY_SEED_MAX:
            raise ValueError(f"the legacy stream takes seeds 0 .. {LEGACY_SEED_MAX}, got {seed}")
        return np.random.RandomState(int(seed)).random_sample
    return np.random.default_rng(seed).random


def div_choice(
    video_counts: Any,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """DIV: rows grouped by video (counts in row order), each row weighted 1 / its video's count.

    Equals `reference_choice(np.repeat(1.0 / counts, counts), size, seed, rng)`: with the
    default legacy stream, the release's `np.random.seed(42); np.random.choice(len(data), N,
    replace=False, p=w / w.sum())` over the same rows in the same order.
    """
    import numpy as np

    counts = np.asarray(video_counts, dtype=np.int64)
    if counts.size and counts.min() <= 0:
        raise ValueError("video counts must be positive")
    return choice_runs(counts, 1.0 / counts, size, seed, rng, chunk_rows=chunk_rows)


def uniform_choice(
    n: int,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """`size` of `n` rows uniformly: `reference_choice(np.ones(n), size, seed, rng)`.

    That is the weighted algorithm with equal weights (NumPy's `choice(n, size, replace=False)`
    without p would take `permutation(n)[:size]` instead: n int64s, a different sample).
    """
    return choice_runs([n], [1.0], size, seed, rng, chunk_rows=chunk_rows)


def choice_runs(
    lengths: Any,
    values: Any,
    size: int,
    seed: int = DEFAULT_SEED,
    rng: Rng | str = DEFAULT_RNG,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """`reference_choice(np.repeat(values, lengths), size, seed, rng)`, bit for bit, in bounded
    memory.

    NumPy's `choice(n, size, replace=False, p=p)` — legacy `RandomState.choice`
    (numpy/random/mtrand.pyx) and `Generator.choice` (_generator.pyx) alike — is not a one-pass
    algorithm: it copies p, then repeats rounds until it has `size` distinct indices: draw
    `k = size - found` uniforms (`rand(k)`, MT19937's `random_sample`, for the legacy stream;
    `random(k)` for the Generator), zero p at the indices found so far,
    `cdf = cumsum(p); cdf /= cdf[-1]`, map each uniform to `cdf.searchsorted(x, 'right')`, and
    keep the new indices in order of first occurrence (`np.unique(return_index=True)`). The two
    differ only in where the uniforms come from (`_uniforms`).

    This function makes the same random draws and the same floating-point operations, but
    never holds the n-row weight vector: weights are runs (a value repeated `lengths[i]`
    times: one run per video for DIV), expanded `chunk_rows` at a time. Exactness rests on:
    - `w.sum()`: NumPy sums a contiguous float64 array pairwise (halves rounded down to a
      multiple of 8 until 128 elements or fewer). We recurse the same way and let `np.sum`
      do the blocks, so the total is the same double. A self-test checks this NumPy's sum
      splits that way; if not, the weights are expanded once to sum them (8 bytes a row).
    - `p = w / total` per run: the same division as elementwise.
    - the cumsum is sequential, so a chunk continues it exactly when the running total is
      added to its first element; one pass finds `cdf[-1]`, a second maps the sorted uniforms.
    Memory: O(runs) for the run arrays (4 x 8 bytes a run: lengths, ends, weights, p) +
    O(chunk_rows) + O(size) for the draws (x, its sort order, the hits, `found`, np.unique's
    temporaries: about 10 x 8 bytes a drawn row in the first round), never O(n); the stream
    (MT19937's 2.5 KB state or PCG64's) adds nothing. For the full release (234M clips of 7.1M
    videos, DIV of 10,647,458) it peaked at 905 MB RSS (benchmarks/RESULTS.md); NumPy's own
    call holds the weights, p, its copy of p and the cdf, 1.9 GB each: ~7.9 GB for the legacy
    call (extrapolated from 10M and 20M rows), 9.3 GB measured for the Generator's. Time: two
    passes over n rows a round, a handful of rounds (each round redraws only the repeats of
    the one before: p is zeroed at the rows found, so only a round's own duplicates are
    redrawn).
    """
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if lengths.shape != values.shape:
        raise ValueError("lengths and values must have the same size")
    if (lengths < 0).any():
        raise ValueError("run lengths must be non-negative")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("weights must be finite and non-negative")
    keep = lengths > 0  # empty runs add no rows
    lengths, values = lengths[keep], values[keep]
    n = int(lengths.sum())
    if size < 0:
        raise ValueError("negative sample size")
    if size > n:
        raise ValueError(f"cannot take {size:,} of {n:,} rows without replacement")
    if n == 0 or size == 0:
        return np.zeros(0, dtype=np.int64)
    chunk_rows = max(int(chunk_rows), 1)
    ends = np.cumsum(lengths)
    total = _pairwise_total(_Runs(ends, lengths, values), n, chunk_rows)
    p_runs = values / total  # (w / w.sum())[i] for every row i of the run
    if not np.isfinite(p_runs).all():
        raise ValueError("weights sum to zero")
    if int(lengths[p_runs > 0].sum()) < size:  # NumPy's own check
        raise ValueError("Fewer non-zero entries in p than size")
    p = _Runs(ends, lengths, p_runs)
    uniforms = _uniforms(rng, seed)
    found = np.zeros(size, dtype=np.int64)
    n_uniq = rounds = 0
    while n_uniq < size:
        x = uniforms(size - n_uniq)
        new = _search_round(p, n, np.sort(found[:n_uniq]), x, chunk_rows)
        _, first = np.unique(new, return_index=True)
        first.sort()
        new = new.take(first)
        found[n_uniq : n_uniq + new.size] = new
        n_uniq += new.size
        rounds += 1
    logger.debug("drew %d of %d rows in %d rounds", size, n, rounds)
    return found


class _Runs:
    """A float64 vector stored as runs: `values[i]` repeated `lengths[i]` times."""

    def __init__(self, ends: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> None:
        # cumulative run lengths: run i covers rows [ends[i] - lengths[i], ends[i])
        self.ends = ends
        self.lengths = lengths  # rows per run (all > 0)
        self.values = values  # the value of every row of the run

    def expand(self, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) as a new contiguous float64 array."""
        import numpy as np

        r0 = int(np.searchsorted(self.ends, lo, side="right"))
        r1 = int(np.searchsorted(self.ends, hi - 1, side="right")) + 1
        ends = self.ends[r0:r1]
        reps = np.minimum(ends, hi) - np.maximum(ends - self.lengths[r0:r1], lo)
        return np.repeat(self.values[r0:r1], reps)


@functools.cache
def _numpy_sum_is_pairwise() -> bool:
    """True when np.sum of a contiguous float64 array splits the way `_split_sum` does."""
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (129, 1000, 5003, 40_000):
        a = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)
        runs = _Runs(np.arange(1, n + 1), np.ones(n, np.int64), a)
        if np.sum(a) != _split_sum(runs, 0, n, 128):
            return False
    return True


def _split_sum(runs: _Runs, lo: int, m: int, leaf: int) -> Any:
    """NumPy's pairwise sum of rows [lo, lo + m): its own halving, np.sum on blocks <= leaf rows."""
    import numpy as np

    if m <= max(leaf, 128):  # numpy sums blocks of <= 128 rows with 8 accumulators, not halving
        return np.sum(runs.expand(lo, lo + m))
    half = m // 2
    half -= half % 8  # numpy: "divide by two but avoid non-multiples of unroll factor"
    return _split_sum(runs, lo, half, leaf) + _split_sum(runs, lo + half, m - half, leaf)


def _pairwise_total(runs: _Runs, n: int, chunk_rows: int) -> Any:
    """`np.sum(runs expanded)`, bit for bit, expanding at most max(chunk_rows, 128) rows at once."""
    import numpy as np

    if n <= max(chunk_rows, 128) or _numpy_sum_is_pairwise():
        return _split_sum(runs, 0, n, chunk_rows)
    logger.warning("this NumPy does not sum pairwise as expected: expanding %d weights once", n)
    return np.sum(runs.expand(0, n))


def _search_round(
    p: _Runs, n: int, zeroed: np.ndarray, x: np.ndarray, chunk_rows: int
) -> np.ndarray:
    """One round of NumPy's loop: `cdf.searchsorted(x, 'right')` with p zeroed at `zeroed`."""
    import numpy as np

    def cdf_chunks() -> Any:  # yields (lo, cumsum(p)[lo:hi]) with the same doubles as NumPy
        carry = 0.0
        for lo in range(0, n, chunk_rows):
            hi = min(lo + chunk_rows, n)
            c = p.expand(lo, hi)
            a, b = np.searchsorted(zeroed, (lo, hi))
            c[zeroed[a:b] - lo] = 0.0
            c[0] += carry
            np.cumsum(c, out=c)
            carry = c[-1]
            yield lo, c

    for _, c in cdf_chunks():
        last = c[-1]  # cdf[-1]: what NumPy divides by
    order = np.argsort(x, kind="stable")
    xs = x[order]
    hits = np.empty(x.size, dtype=np.int64)
    prev = -np.inf
    for lo, c in cdf_chunks():
        c /= last
        a, b = np.searchsorted(xs, (prev, c[-1]), side="left")  # the x in [prev, c[-1])
        if b > a:
            hits[a:b] = lo + np.searchsorted(c, xs[a:b], side="right")
        prev = c[-1]
    new = np.empty_like(hits)
    new[order] = hits
    return new
