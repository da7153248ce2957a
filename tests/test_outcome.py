"""The exit-code rule shared by run, download, score and subset."""

import pytest

from internvid.outcome import (
    EXIT_FAILURE_RATE,
    EXIT_NOTHING,
    EXIT_OK,
    outcome,
)


def test_clean_partial_and_empty_runs():
    assert outcome(10, 5, 0).code == EXIT_OK
    assert outcome(10, 5, 2).code == EXIT_OK  # partial: no limit given
    assert outcome(0, 0, 0).code == EXIT_NOTHING
    got = outcome(0, 3, 3)
    assert got.code == EXIT_NOTHING and "all 3 input(s) failed" in got.message
    assert outcome(0, 3, 1).code == EXIT_NOTHING  # some failed, the rest were all dropped


def test_max_failure_rate_is_a_strict_upper_bound():
    assert outcome(4, 4, 1, max_failure_rate=0.25).code == EXIT_OK
    got = outcome(4, 4, 2, max_failure_rate=0.25)
    assert got.code == EXIT_FAILURE_RATE and "2 of 4" in got.message
    assert outcome(4, 4, 0, max_failure_rate=0.0).code == EXIT_OK
    with pytest.raises(ValueError, match="within 0-1"):
        outcome(1, 1, 0, max_failure_rate=1.5)
