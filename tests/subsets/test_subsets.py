"""Subsets: DIV / random equal NumPy's own draw, FLT / Aes / --where counts, both inputs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from subset_data import (
    N_CLIPS,
    SAMPLE_ROWS,
    canonical,
    div_reference,
    out_ids,
    release_lines,
)
from typer.testing import CliRunner

from internvid.cli.subset import register
from internvid.config import SubsetConfig
from internvid.io.release import ReleaseRow, clip_from_row, iter_release_rows, row_from_clip
from internvid.io.tables import CLIP_SCHEMA, clips_table, row_to_clip
from internvid.subsets import SubsetError, make_subset, reference_choice

# --- rules on a clips.parquet ---------------------------------------------------------------------


def test_div_selects_the_reference_draw(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    result = make_subset(run, tmp_path / "div", SubsetConfig(rule="div", size=10_000))
    got = out_ids(tmp_path / "div")
    assert len(got) == len(set(got)) == result.rows == 10_000
    assert set(got) == div_reference(c, clip_ids, np.arange(N_CLIPS), 10_000)
    assert result.summary() == f"DIV 10,000 of {N_CLIPS:,}"
    assert got == list(clip_ids[canonical(c, clip_ids, np.flatnonzero(np.isin(clip_ids, got)))])
    assert not list(tmp_path.glob(".*")), "temp files or the work folder were left behind"

    # the release lines are what ReleaseWriter would write for the same clips
    rows = pq.read_table(tmp_path / "div.parquet").to_pylist()
    lines = (tmp_path / "div.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [
        json.dumps(row_from_clip(row_to_clip(r)).to_json(), ensure_ascii=False) for r in rows
    ]


def test_div_is_the_release_draw_on_a_skewed_run(skewed, tmp_path: Path) -> None:
    """`internvid subset div --seed 42` picks the clips `np.random.seed(42); np.random.choice`
    picks over the same rows: 100k clips, 1 to hundreds a video, N up to all but 5."""
    c, clip_ids, run = skewed
    counts = np.unique(c["video_id"], return_counts=True)[1]
    assert counts.size > 13_000 and counts.min() == 1 and counts.max() > 100
    everything = np.arange(N_CLIPS)
    out = tmp_path / "cli"
    args = ["subset", "div", str(run), "-n", "10000", "--seed", "42", "-o", str(out)]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    assert set(out_ids(out)) == div_reference(c, clip_ids, everything, 10_000, 42)
    for seed, size in ((3, 1), (9, 50_000), (123, N_CLIPS - 5)):  # the last: many rounds
        make_subset(run, tmp_path / f"s{seed}", SubsetConfig(rule="div", size=size, seed=seed))
        want = div_reference(c, clip_ids, everything, size, seed)
        assert set(out_ids(tmp_path / f"s{seed}")) == want, seed
    # --rng generator: np.random.default_rng(42).choice, a different sample of the same rows
    res = CliRunner().invoke(_app(), [*args[:-1], str(tmp_path / "gen"), "--rng", "generator"])
    assert res.exit_code == 0, res.output
    generated = set(out_ids(tmp_path / "gen"))
    assert generated == div_reference(c, clip_ids, everything, 10_000, 42, generator=True)
    assert generated != set(out_ids(out))


def test_flt_counts_and_draw(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    spec = SubsetConfig(rule="flt", size=5_000)
    result = make_subset(run / "clips.parquet", tmp_path / "flt", spec)
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    in_range = (dur >= 1) & (dur <= 120)
    scored = in_range & ~np.isnan(c["viclip_sim"])
    k = -(-3 * int(scored.sum()) // 10)  # at least 30%: ceil(3/10 n), exactly
    rows = np.flatnonzero(scored)
    ranked = rows[
        np.lexsort(
            (
                clip_ids[rows],
                c["end_ms"][rows],
                c["start_ms"][rows],
                c["video_id"][rows],
                -c["viclip_sim"][rows],
            )
        )
    ]
    top = ranked[:k]
    assert [(s.label, s.removed) for s in result.steps] == [
        ("duration 1-120 s", N_CLIPS - in_range.sum()),
        ("no viclip_sim", in_range.sum() - scored.sum()),
        ("top 30% by viclip_sim", scored.sum() - k),
        ("DIV", k - 5_000),
    ]
    assert result.summary().endswith(f"DIV 5,000 of {k:,}")
    assert set(out_ids(tmp_path / "flt")) == div_reference(c, clip_ids, top, 5_000)


def test_flt_other_score(table, tmp_path: Path) -> None:
    c, _, run = table
    result = make_subset(
        run, tmp_path / "f", SubsetConfig(rule="flt", size=100, score="clipscore", top_fraction=0.5)
    )
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    scored = ((dur >= 1) & (dur <= 120) & ~np.isnan(c["clipscore"])).sum()
    assert result.steps[2].label == "top 50% by clipscore"
    assert result.steps[2].after == math.ceil(scored / 2)


def test_aes_counts(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    result = make_subset(run, tmp_path / "aes", SubsetConfig(rule="aes"))
    keep = c["aesthetic"] >= 4  # NaN (absent) compares False
    assert result.rows == keep.sum()
    assert set(out_ids(tmp_path / "aes")) == set(clip_ids[keep])
    assert result.summary() == f"aesthetic >= 4: -{N_CLIPS - keep.sum():,}"

    result = make_subset(
        run, tmp_path / "aes2", SubsetConfig(rule="aes", min_aesthetic=4.5, max_text_overlay=0.2)
    )
    keep2 = (c["aesthetic"] >= 4.5) & (c["text_overlay"] <= 0.2)
    assert [s.after for s in result.steps] == [(c["aesthetic"] >= 4.5).sum(), keep2.sum()]
    assert set(out_ids(tmp_path / "aes2")) == set(clip_ids[keep2])


def test_where_and_random(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    where = "duration < 5 AND caption LIKE 'a dog%' AND viclip_sim > 0.3"
    result = make_subset(run, tmp_path / "w", SubsetConfig(rule="where", where=where))
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    keep = (dur < 5) & np.char.startswith(c["caption"], "a dog") & (c["viclip_sim"] > 0.3)
    assert result.rows == keep.sum() > 0
    assert set(out_ids(tmp_path / "w")) == set(clip_ids[keep])
    assert make_subset(run, tmp_path / "none", SubsetConfig(rule="where", where="false")).rows == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""
    assert pq.read_table(tmp_path / "none.parquet").schema == CLIP_SCHEMA
    assert pq.read_schema(run / "clips.parquet") == CLIP_SCHEMA

    # random: uniform over the rows left by --where, in canonical order
    result = make_subset(
        run, tmp_path / "r", SubsetConfig(rule="random", size=500, where="duration < 5", seed=1)
    )
    rows = canonical(c, clip_ids, np.flatnonzero(dur < 5))
    expected = clip_ids[rows[reference_choice(np.ones(rows.size), 500, 1)]]
    assert set(out_ids(tmp_path / "r")) == set(expected)
    assert (
        result.summary()
        == f"where duration < 5: -{(dur >= 5).sum():,}; random 500 of {rows.size:,}"
    )


# --- release metadata input -----------------------------------------------------------------------


def test_release_jsonl_input(table, tmp_path: Path) -> None:
    c, clip_ids, _ = table
    rows = np.arange(20_000)
    lines = release_lines(c, rows)
    lines.insert(
        5,
        '{"YoutubeID": "bad id!", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000"}',
    )
    lines.insert(
        9, '{"YoutubeID": "x", "Start_timestamp": "0:00:01.000", "End_timestamp": "00:00:02.000"}'
    )
    src = tmp_path / "release.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = make_subset(src, tmp_path / "div", SubsetConfig(rule="div", size=2_000))
    assert result.rows_in == 20_002
    assert [(s.label, s.removed) for s in result.steps[:1]] == [("malformed rows", 2)]
    assert set(out_ids(tmp_path / "div")) == div_reference(c, clip_ids, rows, 2_000)
    out_lines = (tmp_path / "div.jsonl").read_text(encoding="utf-8").splitlines()
    assert set(out_lines) <= set(lines)  # byte-identical rows, with the UMT key each row used
    assert any('"UMT-SIM"' in x for x in out_lines) and any('"UMT_Score"' in x for x in out_lines)
    assert [r.youtube_id for r in iter_release_rows(tmp_path / "div.jsonl")] == pq.read_table(
        tmp_path / "div.parquet"
    )["video_id"].to_pylist()

    # FLT on release input ranks by the UMT score, whichever key spelled it
    result = make_subset(src, tmp_path / "flt", SubsetConfig(rule="flt", size=500))
    dur = (c["end_ms"][rows] - c["start_ms"][rows]) / 1000
    scored = ((dur >= 1) & (dur <= 120) & ~np.isnan(c["viclip_sim"][rows])).sum()
    assert result.steps[3].label == "top 30% by umt" and result.steps[3].after == -(
        -3 * int(scored) // 10
    )

    result = make_subset(src, tmp_path / "aes", SubsetConfig(rule="aes"))
    assert result.rows == (c["aesthetic"][rows] >= 4).sum()
    with pytest.raises(SubsetError, match="viclip_sim"):
        make_subset(src, tmp_path / "x", SubsetConfig(rule="flt", size=5, score="viclip_sim"))


def test_release_sample_rows_round_trip(tmp_path: Path) -> None:
    if not SAMPLE_ROWS.is_file():
        pytest.skip(f"{SAMPLE_ROWS} not found")
    src = tmp_path / "sample.jsonl.gz"
    src.write_bytes(gzip.compress(SAMPLE_ROWS.read_bytes()))
    result = make_subset(src, tmp_path / "out", SubsetConfig(rule="aes"))
    assert result.rows == 3
    expected = sorted(
        SAMPLE_ROWS.read_text(encoding="utf-8").splitlines(),
        key=lambda x: json.loads(x)["YoutubeID"],
    )
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines() == expected
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    first = ReleaseRow.from_json(json.loads(expected[0]))
    assert rows[0]["clip_id"] == "9VlPZ9heX70_000231651_000341121"
    # the flat row io.tables writes for io.release's clip of the row
    assert pq.read_schema(tmp_path / "out.parquet") == CLIP_SCHEMA
    assert rows[0] == clips_table([clip_from_row(first)]).to_pylist()[0] | {"status": "split"}
    assert (rows[0]["aesthetic"], rows[0]["umt"]) == (first.aesthetic_score, first.umt_score)
    assert rows[0]["release_caption"] == rows[0]["caption"] == first.caption


# --- errors and the command -----------------------------------------------------------------------


def test_bad_options(table, tmp_path: Path) -> None:
    _, _, run = table
    with pytest.raises(SubsetError, match="-n"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="div"))
    with pytest.raises(SubsetError, match="only"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="div", size=N_CLIPS + 1))
    with pytest.raises(SubsetError, match="seeds 0"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="div", size=5, seed=2**32))
    with pytest.raises(SubsetError, match="--rng"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="div", size=5, rng="mt"))
    with pytest.raises(SubsetError, match="no such file"):
        make_subset(tmp_path / "missing.jsonl", tmp_path / "x", SubsetConfig(rule="aes"))
    assert not list(tmp_path.iterdir())


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_cli(table, tmp_path: Path) -> None:
    _, _, run = table
    out = tmp_path / "sub" / "div"
    res = CliRunner().invoke(
        _app(),
        [
            "subset",
            "div",
            str(run),
            "-n",
            "1000",
            "--out",
            str(out),
            "--memory-limit",
            "1GB",
            "--threads",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"DIV 1,000 of {N_CLIPS:,}" in res.output
    assert len(out_ids(out)) == 1000 and out.with_suffix(".jsonl").is_file()


@pytest.mark.allow_error_logs
def test_cli_bad_input_exits_2(table, tmp_path: Path) -> None:
    _, _, run = table
    app = _app()
    res = CliRunner().invoke(
        app,
        ["subset", "where", str(run), "--where", "no_such_column > 1", "-o", str(tmp_path / "x")],
    )
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["subset", "flt", str(run), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert not list(tmp_path.iterdir())
