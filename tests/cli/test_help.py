"""Every command speaks one vocabulary: --config everywhere, the same --device / --dtype /
--models wording and choices wherever models load (read from each command's --help)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.cli.options import CONFIG_HELP, DEVICE_HELP, DTYPE_HELP, MODELS_HELP

runner = CliRunner()
# commands without any setting to configure: a path in, facts out
NO_SETTINGS = {"version", "probe", "demo-videos"}
# commands that load models, and which of the shared model options each has
MODEL_OPTIONS = {
    "run": ("--device", "--dtype", "--models"),
    "score": ("--device", "--dtype", "--models"),
    "search": ("--device", "--dtype", "--models"),
    "eval": ("--device", "--dtype", "--models"),
    "eval-gen": ("--device", "--dtype"),
    "train": ("--device", "--dtype"),
    "caption-eval": ("--device", "--dtype", "--models"),
    "serve": ("--device", "--dtype"),
    "dedup": ("--device", "--dtype", "--models"),
}
HELP_OF = {"--device": DEVICE_HELP, "--dtype": DTYPE_HELP, "--models": MODELS_HELP}


def _commands() -> list[str]:
    """Every command, sub-commands of groups as "group sub" (ids import, queries build)."""
    out = [c.name or c.callback.__name__ for c in app.registered_commands]
    for g in app.registered_groups:
        out += [
            f"{g.name} {c.name or c.callback.__name__}"
            for c in g.typer_instance.registered_commands
        ]
    return sorted(out)


def _help(command: str) -> str:
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"[│╭╮╰╯─┃┏┓┗┛━]", " ", result.output)  # rich's boxes
    return re.sub(r"\s+", " ", text)


def test_every_command_is_checked():
    assert set(MODEL_OPTIONS) | NO_SETTINGS <= set(_commands())
    assert {"subset", "report", "download", "train-frames", "collect"} <= set(_commands())
    assert {"queries build"} <= set(_commands())
    assert {"ids import", "ids overlap", "ids list"} <= set(_commands())


@pytest.mark.parametrize("command", [c for c in _commands() if c not in NO_SETTINGS])
def test_every_command_takes_a_config_file(command):
    text = _help(command)
    assert "--config" in text and CONFIG_HELP in text, text


@pytest.mark.parametrize("command", sorted(MODEL_OPTIONS))
def test_model_options_share_one_vocabulary(command):
    text = _help(command)
    for option in MODEL_OPTIONS[command]:
        assert f"{option} " in text, f"{command} has no {option}"
        assert HELP_OF[option] in text, f"{command} {option}: not the shared help text"


@pytest.mark.parametrize("command", sorted(MODEL_OPTIONS))
def test_model_options_refuse_other_words(command, tmp_path):
    for option, bad in (("--device", "gpu0"), ("--dtype", "float33")):
        if option not in MODEL_OPTIONS[command]:
            continue
        result = runner.invoke(app, [command, *_positional(command, tmp_path), option, bad])
        assert result.exit_code == 2, (command, option, result.output)
        assert bad in result.output


def _positional(command: str, tmp_path) -> list[str]:
    """Arguments that get a command past its own checks to the option checks."""
    a = str(tmp_path / "missing")
    return {
        "run": [a, "--out", str(tmp_path / "o")],
        "score": [a],
        "dedup": [a],
        "search": [a, "query"],
        "eval": [a, "-m", a],
        "eval-gen": [a, "--reference", a],
        "train": [],
        "caption-eval": [a, "--captions", a],
        "serve": ["tiny:blip"],
    }[command]
