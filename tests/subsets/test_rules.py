"""The registries a subset reads: rules (a new rule is one registration), score columns (a new
scorer's column is usable in --where and as FLT's --score), caption priority (records'), and the
command's --config."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from subset_data import out_ids
from typer.testing import CliRunner

from internvid.cli import app
from internvid.io.release import row_from_clip
from internvid.io.tables import clips_table, known_scores, row_to_clip, write_table_atomic
from internvid.records import Clip, pick_caption
from internvid.subsets import (
    Draw,
    Rule,
    SubsetConfig,
    SubsetError,
    Top,
    make_subset,
    register_rule,
    rule_names,
    unregister_rule,
)
from internvid.subsets.source import WHITESPACE, create_source, view_score_columns

TOY_SCORER_DIR = Path(__file__).resolve().parents[1] / "scores"
runner = CliRunner()


def _toy_clips() -> list[Clip]:
    """40 clips of 8 videos, 0.5-10 s long; every 7th lacks toy_red, the others differ."""
    clips = []
    for i in range(40):
        start = 20.0 * i
        scores = {"aesthetic": 3.0 + (i * 0.37) % 3, "viclip_sim": 0.2 + (i * 0.013) % 0.2}
        if i % 7:
            scores["toy_red"] = round((i * 37.3) % 255, 4)
        clips.append(
            Clip.new(
                f"vid{i % 8}",
                start,
                start + 0.5 + (i * 1.9) % 9.5,
                captions={"coarse": f"clip {i}"},
                scores=scores,
            )
        )
    return clips


@pytest.fixture
def toy_run(tmp_path: Path) -> tuple[list[Clip], Path]:
    """A run folder whose clips.parquet has a toy_red score in its scores map."""
    run = tmp_path / "run"
    run.mkdir()
    clips = _toy_clips()
    write_table_atomic(clips_table(clips), run / "clips.parquet")
    return clips, run


def _help(code: str) -> str:
    """`internvid subset --help` in a fresh interpreter after running `code`."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; from internvid.cli import app; app()", "subset", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    return " ".join(out.split())


# --- score columns from the scorer registry -------------------------------------------------------


def test_view_score_columns_are_the_tables_known_scores() -> None:
    # the built-in scores, then the registry's columns: io.tables.known_scores()
    want = (
        "motion",
        "frozen",
        "aesthetic",
        "umt",
        "viclip_sim",
        "viclip_sim_pct",
        "viclip_sim_cal",
    )
    want = (*want, "clipscore")
    assert view_score_columns() == (*want, "text_overlay") == known_scores()


def test_a_registered_score_is_a_where_column_and_an_flt_score(toy, toy_run, tmp_path) -> None:
    clips, run = toy_run
    assert view_score_columns()[-1] == "toy_red"
    result = make_subset(run, tmp_path / "w", SubsetConfig(rule="where", where="toy_red > 100"))
    want = {c.clip_id for c in clips if c.scores.get("toy_red", 0) > 100}
    assert 5 < len(want) < 30 and set(out_ids(tmp_path / "w")) == want
    assert result.summary() == f"where toy_red > 100: -{40 - len(want)}"

    # FLT --score toy_red: duration 1-120 s, has toy_red, the top 30% by it; -n k keeps them all
    kept = [c for c in clips if 1 <= c.duration <= 120 and "toy_red" in c.scores]
    k = -(-3 * len(kept) // 10)  # ceil(30%), exactly
    top = sorted(kept, key=lambda c: -c.scores["toy_red"])[:k]
    args = [
        "subset",
        "flt",
        str(run),
        "-n",
        str(k),
        "--score",
        "toy_red",
        "-o",
        str(tmp_path / "f"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert set(out_ids(tmp_path / "f")) == {c.clip_id for c in top}
    n_in_range = sum(1 <= c.duration <= 120 for c in clips)
    assert res.stdout.startswith(
        f"duration 1-120 s: -{40 - n_in_range}; no toy_red: -{n_in_range - len(kept)}; "
        f"top 30% by toy_red: -{len(kept) - k}; DIV {k} of {k} -> "
    )


def test_a_runs_own_score_column_needs_no_registration(toy_run, tmp_path) -> None:
    """The table is flat: a score column a run wrote (a plugin's, now unregistered) is a --where
    column and an FLT score, and the subset's parquet keeps it."""
    clips, run = toy_run
    assert "toy_red" not in view_score_columns()
    result = make_subset(run, tmp_path / "w", SubsetConfig(rule="where", where="toy_red > 100"))
    want = {c.clip_id for c in clips if c.scores.get("toy_red", 0) > 100}
    assert result.rows == len(want) > 5 and set(out_ids(tmp_path / "w")) == want
    table = pq.read_table(tmp_path / "w.parquet")
    assert table.schema == pq.read_schema(run / "clips.parquet")
    assert [row_to_clip(r) for r in table.to_pylist()] == sorted(
        (c for c in clips if c.clip_id in want), key=lambda c: (c.video_id, c.start)
    )
    make_subset(run, tmp_path / "f", SubsetConfig(rule="flt", size=2, score="toy_red"))
    assert len(out_ids(tmp_path / "f")) == 2

    # a name that is no column: a SubsetError naming it and the columns, before DuckDB runs it
    with pytest.raises(SubsetError, match=r"no column 'blue_score'; the columns are .*toy_red"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="where", where="blue_score > 1"))
    with pytest.raises(SubsetError, match=r"--score 'blue_score': no such column; .*toy_red"):
        make_subset(run, tmp_path / "x", SubsetConfig(rule="flt", size=2, score="blue_score"))
    assert not (tmp_path / "x.jsonl").exists()


def test_a_registered_score_is_in_the_subset_help() -> None:
    text = _help(f"import sys; sys.path.insert(0, {str(TOY_SCORER_DIR)!r}); import toy_scorer")
    assert "text_overlay, toy_red and the run's other score columns (NULL when absent)" in text
    assert "clipscore, text_overlay, toy_red, umt / UMT_Score / UMT-SIM" in text, text


# --- caption priority: records.pick_caption -------------------------------------------------------


def test_whitespace_is_what_python_strips() -> None:
    assert set(WHITESPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}
    con = duckdb.connect()
    blank = con.execute(
        "SELECT i FROM range(1, 1114112) t(i) WHERE (i < 55296 OR i > 57343) "
        "AND trim(chr(CAST(i AS INTEGER)) || chr(CAST(i AS INTEGER)), ?) = ''",
        [WHITESPACE],
    ).fetchall()
    assert {chr(i) for (i,) in blank} == set(WHITESPACE)


CAPTIONS = [
    {"fused": "a dog runs", "release": "r", "coarse": "c"},
    {"fused": "   ", "release": "the release", "coarse": "c"},
    {"fused": "\t\n", "coarse": "a coarse one"},
    {"fused": "\u3000", "release": "\u00a0", "coarse": "\u2028"},  # all blank: the first, fused
    {"release": "", "coarse": ""},  # both empty: ""
    {"coarse": " padded "},  # kept as it is, not trimmed
    {"release": "only release"},
    {"fused": "", "release": " x"},
    {},  # none: NULL, no Caption key in the release line
    {"frame": "not a caption source", "coarse": "\x1c\x1d\x1e\x1f"},
]


def test_the_caption_column_is_best_caption(tmp_path: Path) -> None:
    clips = [Clip.new("v", i, i + 1.5, captions=caps) for i, caps in enumerate(CAPTIONS)]
    write_table_atomic(clips_table(clips), tmp_path / "clips.parquet")
    con = duckdb.connect()
    create_source(con, "parquet", tmp_path / "clips.parquet", False, tmp_path)
    got = dict(con.execute("SELECT clip_id, caption FROM src").fetchall())
    want = {c.clip_id: c.best_caption() if c.captions else None for c in clips}
    assert got == want and list(want.values())[3:5] == ["", ""] and want[clips[8].clip_id] is None

    # the release lines are io.release's rows of the same clips: pick_caption, which differs
    # from the caption column (best_caption) only where every caption is blank: the blank text)
    make_subset(tmp_path, tmp_path / "all", SubsetConfig(rule="where", where="true"))
    rows = pq.read_table(tmp_path / "all.parquet").to_pylist()
    lines = (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [
        json.dumps(row_from_clip(row_to_clip(r)).to_json(), ensure_ascii=False) for r in rows
    ]
    assert json.loads(lines[3])["Caption"] == pick_caption(CAPTIONS[3]) == "\u3000"
    assert rows[3]["caption"] == "" and "Caption" not in json.loads(lines[8])


# --- rules: one registration each -----------------------------------------------------------------


def test_the_paper_rules_are_registered() -> None:
    assert rule_names() == ("div", "flt", "aes", "random", "where")
    with pytest.raises(SubsetError, match=r"unknown rule 'nope': one of \['div', 'flt'"):
        make_subset(".", "x", SubsetConfig(rule="nope"))


@pytest.fixture
def short_rule():
    """A rule registered from outside: clips under 2 s, with a ranking by aesthetic."""
    rule = Rule(
        "short",
        "clips under 2 s, the best half by aesthetic.",
        Draw.optional,
        filters=lambda cfg, kind: [("under 2 s", "duration < 2")],
        top=lambda cfg, kind: Top("aesthetic", "aesthetic", 0.5),
    )
    register_rule(rule)
    yield rule
    unregister_rule("short")


def test_a_new_rule_is_one_registration(short_rule, toy_run, tmp_path) -> None:
    clips, run = toy_run
    short = sorted((c for c in clips if c.duration < 2), key=lambda c: -c.scores["aesthetic"])
    k = math.ceil(len(short) / 2)
    assert k >= 2
    result = make_subset(run, tmp_path / "s", SubsetConfig(rule="short"))
    assert set(out_ids(tmp_path / "s")) == {c.clip_id for c in short[:k]}
    assert (
        result.summary()
        == f"under 2 s: -{40 - len(short)}; top 50% by aesthetic: -{len(short) - k}"
    )
    # with -n: a uniform draw of the ranked rows (Draw.optional)
    result = make_subset(run, tmp_path / "n", SubsetConfig(rule="short", size=2, seed=1))
    assert result.steps[-1].label == "random" and result.rows == 2
    assert set(out_ids(tmp_path / "n")) <= {c.clip_id for c in short[:k]}


def test_a_new_rule_is_a_cli_choice() -> None:
    register = (
        "from internvid.subsets import Draw, Rule, register_rule; "
        "register_rule(Rule('short', 'clips under 2 s.', Draw.uniform))"
    )
    text = _help(register)
    assert "<div|flt|aes|random|where|short>" in text, text
    assert "where: only --where. short: clips under 2 s." in text, text
    assert "Clips to draw (div, flt, random, short; aes/where: sample N)." in text, text


# --- the command's --config -----------------------------------------------------------------------


def test_config_file_and_flags(toy_run, tmp_path: Path) -> None:
    _, run = toy_run
    cfg = tmp_path / "subset.yaml"
    cfg.write_text("size: 7\nseed: 3\nrng: generator\nmemory_limit: 1GB\nthreads: 1\n")
    res = runner.invoke(app, ["subset", "div", str(run), "-c", str(cfg), "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    make_subset(run, tmp_path / "b", SubsetConfig(rule="div", size=7, seed=3, rng="generator"))
    assert out_ids(tmp_path / "a") == out_ids(tmp_path / "b") and len(out_ids(tmp_path / "a")) == 7
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()

    # flags override the file
    args = ["subset", "div", str(run), "-c", str(cfg), "-n", "4", "--rng", "legacy"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    make_subset(run, tmp_path / "d", SubsetConfig(rule="div", size=4, seed=3))
    assert out_ids(tmp_path / "c") == out_ids(tmp_path / "d")

    cfg.write_text("size: 7\nsample: 3\n")
    res = runner.invoke(app, ["subset", "div", str(run), "-c", str(cfg), "-o", str(tmp_path / "e")])
    assert res.exit_code == 2 and "sample" in res.output
    assert not (tmp_path / "e.jsonl").exists()
