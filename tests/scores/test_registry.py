"""Adding a score is one file: a toy scorer shows up in the config, the CLI help, a run's table,
the subset columns and the report without any other edit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.config import RunConfig
from internvid.scores import score_columns, score_names, scorers

HERE = Path(__file__).resolve().parent
runner = CliRunner()


def test_the_builtin_scores_are_registered_in_order():
    assert score_names() == ("viclip_sim", "clipscore", "aesthetic", "text_overlay")
    assert score_columns() == (
        "viclip_sim",
        "viclip_sim_pct",
        "viclip_sim_cal",
        "clipscore",
        "aesthetic",
        "text_overlay",
    )
    for cls in scorers().values():
        assert cls.description and cls.__doc__


def test_a_registered_score_is_accepted_by_the_config(toy):
    assert "toy_red" in score_names() and "toy_red" in score_columns()
    cfg = RunConfig()
    cfg.score.scores = ["toy_red", "aesthetic"]
    cfg.validate()
    cfg.score.scores = ["no_such_score"]
    with pytest.raises(ValueError, match="toy_red"):
        cfg.validate()


def test_a_registered_score_is_listed_in_the_help():
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import toy_scorer; "
        "from internvid.cli import app; app()"
    )
    for command in ("run", "score"):
        out = subprocess.run(
            [sys.executable, "-c", code, command, "--help"],
            capture_output=True,
            text=True,
            env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
            check=True,
        ).stdout
        assert "toy_red" in out and "viclip_sim" in out, out


def test_a_registered_score_is_computed_by_a_run_and_described_by_the_report(
    toy, tmp_path, demo_videos
):
    import html

    from internvid.cli import app
    from internvid.report import write_report
    from internvid.report.data import GENERIC_SCORE, score_table

    assert score_table()["toy_red"] == (toy.ToyRed.description, (0.0, 255.0))

    out = tmp_path / "out"
    args = ["run", str(demo_videos), "--out", str(out), "--scores", "toy_red"]
    result = runner.invoke(app, [*args, "--cut-mode", "none", "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    assert rows
    values = [r["toy_red"] for r in rows]  # a registered score is a column of its own
    assert all(0.0 <= v <= 255.0 for v in values) and len(set(values)) > 1
    write_report(out, out / "report.html", samples=0)
    page = (out / "report.html").read_text()
    assert html.escape(toy.ToyRed.description) in page
    assert html.escape(GENERIC_SCORE.description) not in page
