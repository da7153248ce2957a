"""The `internvid` CLI: documented options, a run, clear errors."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from internvid.cli import app

runner = CliRunner()


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_run_help_documents_every_option():
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = plain(result.output)
    options = [
        "--out", "--config", "--workers", "--videos-per-shard", "--collect", "--min-clip", "--max-clip",
        "--threshold",
        "--detector",
        "--cut-mode", "--max-height", "--path-template", "--limit", "--overwrite", "--no-progress",
        "--models", "--coarse-model", "--fine-model", "--fusion-model", "--fusion ", "--device",
        "--dtype", "--caption-batch-size", "--cache-dir",
    ]  # fmt: skip
    for opt in options:
        line = next((ln for ln in text.splitlines() if opt in ln), None)
        assert line is not None, opt
        assert len(line.split(opt, 1)[1].strip()) > 10, f"{opt} has no help text"


def test_run_command_with_config_file(tmp_path, demo_videos):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "split:\n  max_clip_seconds: null\n  min_clip_seconds: 0.5\nmotion:\n  enabled: false\n"
        "cut:\n  max_height: 120\n"
    )
    out = tmp_path / "out"
    args = [
        "-q",
        "run",
        str(demo_videos / "demo_a.mp4"),
        "--out",
        str(out),
        "--config",
        str(cfg),
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["clips"] == 4  # min 0.5 s keeps the 0.6 s scene; still clips are kept too
    clip = json.loads((out / "internvid.jsonl").read_text().splitlines()[2])
    assert (clip["Start_timestamp"], clip["End_timestamp"]) == ("00:00:10.000", "00:00:10.600")
    from internvid.io.tables import read_clips

    assert {(c.width, c.height) for c in read_clips(out / "clips.parquet")} == {(160, 120)}


def test_cli_overrides_config(tmp_path, demo_videos):
    out = tmp_path / "out"
    args = [
        "-q",
        "run",
        str(demo_videos / "demo_c.mp4"),
        "--out",
        str(out),
        "--max-clip",
        "0",
        "--no-progress",
    ]
    assert runner.invoke(app, args).exit_code == 0
    assert json.loads((out / "stats.json").read_text())["clips"] == 1  # 12 s shot kept whole


@pytest.mark.allow_error_logs
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "{cfg_bad}"], "unknown key"),
        (["--collect", "maybe"], "collect.enabled"),
    ],
)
def test_bad_settings_fail_before_work(tmp_path, demo_videos, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  treshold: 3\n")
    args = [a.replace("{cfg_bad}", str(bad)) for a in args]
    result = runner.invoke(app, ["run", str(demo_videos), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in plain(result.output) or message in str(result.exception or "")
    assert not (tmp_path / "o" / "clips.parquet").exists()


@pytest.mark.allow_error_logs
def test_metadata_without_template_is_a_clear_error(tmp_path):
    meta = tmp_path / "rows.jsonl"
    meta.write_text(
        '{"YoutubeID": "abc", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000"}\n'
    )
    result = runner.invoke(app, ["run", str(meta), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2
    assert "--path-template" in plain(result.output)


def test_probe_and_demo_videos(tmp_path, bad_files):
    assert runner.invoke(app, ["demo-videos", str(tmp_path / "v")]).exit_code == 0
    assert len(list((tmp_path / "v").glob("*.mp4"))) == 4
    assert json.loads((tmp_path / "v" / "cuts.json").read_text())["demo_a"]["cut_frames"] == [
        100,
        250,
        265,
    ]
    result = runner.invoke(app, ["probe", str(tmp_path / "v" / "demo_a.mp4")])
    assert result.exit_code == 0 and json.loads(result.output)["fps"] == 25.0
    assert runner.invoke(app, ["probe", str(bad_files["audio_only"])]).exit_code == 1
