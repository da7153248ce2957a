"""The install: torch stays pinned, vLLM stays an optional extra that make setup / make test never pull."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from internvid.caption.presets import PRESETS
from internvid.config import CAPTION_PRESETS

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_vllm_is_only_an_optional_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "vllm" not in _names(project["dependencies"])
    assert [e for e, reqs in extras.items() if "vllm" in _names(reqs)] == ["vllm"]
    assert "torch" not in _names(project["dependencies"])  # installed first, pinned, by make


def test_setup_pins_torch_and_never_installs_the_vllm_extra():
    make = (ROOT / "Makefile").read_text()
    setup = make[make.index("$(STAMP):") : make.index("\ndemo:")]
    assert "torch==2.13.0" in setup and "-c constraints.txt" in setup
    assert "vllm" not in setup
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_preset_is_a_config_choice():
    assert set(CAPTION_PRESETS) == {"none", *PRESETS}
