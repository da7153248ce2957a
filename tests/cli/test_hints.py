"""Help and hints tell the truth: run --help shows every default, the missing-model hint of a
command names only that command's options and valid `hf download` lines, faiss stays quiet."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.cli.run import OPTION_FIELDS, shown_default
from internvid.config import RunConfig, TrainConfig
from internvid.hub import OFFICIAL_CLIP, OFFICIAL_VICLIP
from internvid.outcome import EXIT_CODES, EXIT_USAGE

runner = CliRunner()
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _help(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))


def _options(command: str) -> set[str]:
    return set(FLAG.findall(_help(command)))


def _option_line(text: str, option: str) -> str:
    """The help of one option: from its flag to the next option's flag."""
    start = text.index(f" {option} ")
    flags = FLAG.finditer(text, start + len(option) + 2)
    nxt = next((m for m in flags if m.group() != f"--no-{option[2:]}"), None)  # its off switch
    return text[start : nxt.start() if nxt else len(text)]


def test_run_help_shows_the_config_default_of_every_option():
    text = _help("run")
    expected = {  # the values of RunConfig(), as --help writes them
        "--workers": "1", "--executor": "local", "--videos-per-shard": "8", "--collect": "auto",
        "--min-clip": "1", "--max-clip": "10", "--detector": "content", "--cut-mode": "exact",
        "--threshold": "27", "--max-height": "720", "--models": "none", "--device": "auto",
        "--dtype": "auto", "--caption-batch-size": "16", "--aesthetic-head": "mlp",
        "--viclip": OFFICIAL_VICLIP, "--clip-model": OFFICIAL_CLIP, "--limit": "all",
        "--coarse-model": "the preset's", "--overwrite": "no-overwrite", "--no-progress": "off",
        "--max-failure-rate": "none: no limit", "--config": "none",
    }  # fmt: skip
    for option, default in expected.items():
        assert f"[default: {default}]" in _option_line(text, option).replace("(", "").replace(
            ")", ""
        ), option
    options = _options("run")
    switches = {f"--no-{o[2:]}" for o in options}  # --no-overwrite: the other name of --overwrite
    for option in sorted(options - switches - {"--out", "--help"}):
        assert "[default: " in _option_line(text, option), f"{option} shows no default"
    d = RunConfig()
    assert shown_default("threshold") == "27" and d.split.threshold == 27.0
    assert shown_default("videos_per_shard") == str(d.output.videos_per_shard)
    assert set(OPTION_FIELDS) >= {"workers", "min_clip", "max_clip", "cut_mode", "scores"}


@pytest.mark.parametrize("command", ["run", "score"])
def test_exit_codes_are_in_the_help_of_run_and_score(command):
    text = _help(command)
    assert "Exit codes:" in text
    for code in (0, 1, 2, 3):
        assert f"{code} {EXIT_CODES[code]}" in text, code
    assert "--max-failure-rate" in _options(command)


def _offline(tmp_path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache"),
            "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "400", "NO_COLOR": "1"}  # fmt: skip


def _hint(command: str, args: list[str], tmp_path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "internvid", command, *args],
        capture_output=True, text=True, env=_offline(tmp_path), timeout=300,
    )  # fmt: skip
    assert result.returncode == EXIT_USAGE, result.stderr
    text = re.sub(r"\s+", " ", result.stderr)
    assert "models are missing" in text and "Supply them" in text, text
    return text


def test_the_search_hint_names_only_search_options(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "clips.parquet").write_bytes(b"")  # search finds the model before the clips
    text = _hint("search", [str(run_dir), "a dog", "--models", "real"], tmp_path)
    named = set(FLAG.findall(text)) - {"--cache-dir", "--local-dir"}  # hf's own, in the lines
    assert named and named <= _options("search"), named - _options("search")
    assert {"--viclip", "--models"} <= named
    assert "--clip-model" not in text and "--coarse-model" not in text
    assert "hf download OpenGVLab/ViCLIP ViClip-InternVid-10M-FLT.pth --cache-dir CACHE" in text
    assert "ViCLIP/ViClip-InternVid-10M-FLT.pth --" not in text  # not OWNER/REPO/FILE to hf


def test_the_score_hint_names_only_score_options(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "clips.parquet").write_bytes(b"")
    text = _hint("score", [str(run_dir), "--models", "real", "--scores", "aesthetic"], tmp_path)
    named = set(FLAG.findall(text)) - {"--local-dir"}
    assert named <= _options("score"), named - _options("score")
    assert {"--clip-model", "--aesthetic-head", "--cache-dir", "--models"} <= named
    assert f"hf download {OFFICIAL_CLIP} --cache-dir CACHE" in text


def test_the_run_hint_names_run_options(tmp_path, demo_videos):
    args = [str(demo_videos / "demo_c.mp4"), "--out", str(tmp_path / "o"), "--models", "real"]
    text = _hint("run", args, tmp_path)
    named = set(FLAG.findall(text)) - {"--local-dir"}
    assert named <= _options("run"), named - _options("run")
    assert {"--coarse-model", "--fine-model", "--fusion-model", "--models"} <= named
    assert not (tmp_path / "o" / "clips.parquet").exists()


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss is not installed")
@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_faiss_import_lines_are_debug(level, shown):
    code = (
        f"import logging; logging.basicConfig(level=logging.{level}, format='%(levelname)s "
        "%(name)s %(message)s'); from internvid.search import _faiss; assert _faiss()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.split(" ")[1:2] == ["faiss.loader"]]
    assert bool(lines) is shown, result.stderr
    assert all(ln.startswith("DEBUG ") for ln in lines)


def test_readme_exit_codes_are_outcome_codes():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0].replace("`", "")
    rows = dict(re.findall(r"^\| (\d) \| (.+?) \|$", section, re.M))
    assert sorted(rows) == ["0", "1", "2", "3"]
    for code, meaning in rows.items():
        assert meaning.startswith(EXIT_CODES[int(code)]), code


def test_train_help_lists_every_train_config_field():
    options = _options("train")
    fields = {f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)}
    assert "--lr" in options and "--wise-ft-with" in options
    assert fields - {"--extra"} <= options, fields - options
