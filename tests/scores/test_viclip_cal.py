"""viclip_sim_cal: the percentile against the shipped caption bank, the same in every sharding."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.scores import describe
from internvid.scores.viclip_sim import calibrated_percentiles, reference_captions

runner = CliRunner()


def test_the_bank_is_1000_distinct_captions():
    bank = reference_captions()
    assert len(bank) == 1000 and len(set(bank)) == 1000
    assert all(c == c.strip() and len(c.split()) >= 3 for c in bank)
    assert describe("viclip_sim_cal")[1] == (0.0, 1.0)


def test_calibrated_percentiles_count_the_bank_below_ties_half():
    own = np.array([0.30, 0.10, 0.25])
    bank = np.array(
        [
            [0.1, 0.2, 0.3, 0.4],  # two below, one tie: 2.5 / 4
            [0.2, 0.3, 0.4, 0.5],  # none below: 0
            [0.1, 0.1, 0.1, 0.1],  # all below: 1
        ]
    )
    assert calibrated_percentiles(own, bank).tolist() == [0.625, 0.0, 1.0]


def _run(videos, out, cache, per_shard: int) -> dict[str, dict]:
    args = ["run", str(videos), "--out", str(out), "--models", "tiny", "--scores", "viclip_sim"]
    args += ["--cache-dir", str(cache), "--cut-mode", "none", "--no-progress"]
    args += ["--videos-per-shard", str(per_shard)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {r["clip_id"]: r for r in pq.read_table(out / "clips.parquet").to_pylist()}


@pytest.fixture(scope="module")
def two_shardings(demo_videos, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiny_cache")
    base = tmp_path_factory.mktemp("cal")
    one = _run(demo_videos, base / "one", cache, 1)
    eight = _run(demo_videos, base / "eight", cache, 8)
    return one, eight


def test_calibrated_score_is_identical_with_1_and_8_videos_per_shard(two_shardings):
    one, eight = two_shardings
    assert one.keys() == eight.keys() and len(one) >= 4
    assert len({r["video_id"] for r in one.values()}) >= 2
    for clip_id, r in one.items():
        assert r["viclip_sim_cal"] is not None and 0.0 <= r["viclip_sim_cal"] <= 1.0
        assert r["viclip_sim_cal"] == eight[clip_id]["viclip_sim_cal"], clip_id
        assert r["viclip_sim"] == eight[clip_id]["viclip_sim"], clip_id
    # the in-shard percentile compares a clip with its shard's other clips, so it moves
    pct_one = [r["viclip_sim_pct"] for r in one.values()]
    pct_eight = [eight[k]["viclip_sim_pct"] for k in one]
    assert pct_one != pct_eight
