"""The sampler: div_choice / choice_runs / uniform_choice equal NumPy's own draw, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from subset_data import release_draw

from internvid.subsets import Rng, choice_runs, div_choice, reference_choice, uniform_choice


@pytest.mark.parametrize("chunk_rows", [1 << 22, 1000, 129])
def test_div_choice_is_numpys_draw(chunk_rows: int) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 60, 2000)
    weights = np.repeat(1.0 / counts, counts)
    for size in (1, 5000, int(counts.sum()) - 3):  # the last needs many rounds
        got = div_choice(counts, size, 42, chunk_rows=chunk_rows)  # default: legacy
        np.testing.assert_array_equal(got, release_draw(weights, size, 42))  # order too
        got = div_choice(counts, size, 42, "generator", chunk_rows=chunk_rows)
        want = np.random.default_rng(42).choice(
            weights.size, size, replace=False, p=weights / weights.sum()
        )
        np.testing.assert_array_equal(got, want)


def test_div_choice_is_the_release_draw_on_skewed_counts() -> None:
    """100k rows, clips per video from 1 to hundreds; seeds and sizes up to N = rows - 3."""
    rng = np.random.default_rng(11)
    popularity = rng.lognormal(0.0, 1.5, 15_000)
    counts = rng.multinomial(100_000 - 15_000, popularity / popularity.sum()) + 1
    assert counts.sum() == 100_000 and counts.min() == 1 and counts.max() > 150
    weights = np.repeat(1.0 / counts, counts)
    for seed, size in ((42, 10_000), (0, 1), (7, 60_000), (2**32 - 1, 99_997)):
        got = div_choice(counts, size, seed, chunk_rows=1 << 14)
        np.testing.assert_array_equal(got, release_draw(weights, size, seed), err_msg=str(seed))
    with pytest.raises(ValueError, match="seeds"):
        div_choice(counts, 5, 2**32)
    assert div_choice(counts, 5, 2**32, Rng.generator).size == 5


def test_choice_runs_general_weights_and_uniform() -> None:
    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 30, 500)  # empty runs too
    values = rng.random(500) * 10.0 ** rng.integers(-3, 3, 500)
    weights = np.repeat(values, lengths)
    got = choice_runs(lengths, values, 3000, 7, chunk_rows=777)
    np.testing.assert_array_equal(got, release_draw(weights, 3000, 7))
    np.testing.assert_array_equal(got, reference_choice(weights, 3000, 7))
    got = choice_runs(lengths, values, 3000, 7, "generator", chunk_rows=777)
    np.testing.assert_array_equal(got, reference_choice(weights, 3000, 7, "generator"))
    got = uniform_choice(50_000, 20_000, 9, chunk_rows=4096)
    np.testing.assert_array_equal(got, release_draw(np.ones(50_000), 20_000, 9))
    assert uniform_choice(10, 0).size == 0
    with pytest.raises(ValueError):
        uniform_choice(10, 11)
