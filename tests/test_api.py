"""The Python API: a light import, run's overrides, the run folder read back, docs/api.md's example."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import internvid as iv
from internvid.config import RunConfig
from internvid.outcome import EXIT_FAILURE_RATE, EXIT_OK

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_internvid_loads_neither_torch_nor_the_api():
    code = (
        "import sys, internvid as iv\n"
        "assert 'torch' not in sys.modules and 'internvid.api' not in sys.modules, 'heavy'\n"
        "assert iv.open.__module__ == 'internvid.api' and 'internvid.api' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'the api imports torch'\n"
        "try:\n    iv.no_such_thing\nexcept AttributeError as e:\n    print(e)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "module 'internvid' has no attribute 'no_such_thing'"


@pytest.mark.parametrize(
    "first", ["import internvid.run", "import internvid", "import internvid.cli"]
)
def test_iv_run_is_the_callable_run_module_in_any_import_order(first):
    code = (
        f"{first}\nimport sys, internvid as iv\nimport internvid.run as m\n"
        "from internvid.run import RunError\n"
        "assert m is sys.modules['internvid.run'] is iv.run and callable(iv.run)\n"
        "assert iv.run.RunError is RunError\n"
        "try:\n    iv.run([], '/nonexistent/x', workers=0)\nexcept ValueError as e:\n    print(e)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "workers must be >= 1"


def test_run_config_lays_overrides_over_the_config(tmp_path):
    cfg = iv.run_config(
        models="real", scores="aesthetic, clipscore", device="cpu", workers=3,
        split={"min_clip_seconds": 2.0}, **{"cut.mode": "none", "split.threshold": 30},
    )  # fmt: skip
    assert (cfg.caption.models, cfg.score.scores) == ("paper", ["aesthetic", "clipscore"])
    assert (cfg.caption.device, cfg.score.device, cfg.workers) == ("cpu", "cpu", 3)
    assert (cfg.split.min_clip_seconds, cfg.split.threshold, cfg.cut.mode) == (2.0, 30.0, "none")
    assert cfg.split.max_clip_seconds == 10.0  # the rest of the section keeps its values
    base = RunConfig()
    base.cut.max_height = 360
    cfg = iv.run_config(base, **{"cut.crf": 30})
    assert (cfg.cut.max_height, cfg.cut.crf, base.cut.crf) == (360, 30, 20)  # base untouched
    path = tmp_path / "c.yaml"
    path.write_text("split:\n  min_clip_seconds: 3.0\n")
    assert iv.run_config(path, workers=2).split.min_clip_seconds == 3.0
    assert iv.run_config({"output": {"videos_per_shard": 2}}).output.videos_per_shard == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"split": {"treshold": 3}}, "unknown key(s) ['treshold']"),
        ({"split.min_clip_seconds": "long"}, "config.split.min_clip_seconds: expected float"),
        ({"split.treshold.x": 1}, "split.treshold.x: 'treshold' is not a section"),
        ({"models": "huge"}, "caption.models must be one of"),
    ],
)
def test_run_config_refuses_bad_overrides_naming_them(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        iv.run_config(**overrides)


def test_open_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no clips\.parquet"):
        iv.open(tmp_path)


def test_a_partial_run_read_back(tmp_path, demo_videos):
    missing = tmp_path / "missing.mp4"
    summary = iv.run([demo_videos / "demo_c.mp4", missing], tmp_path / "o")
    assert (summary.clips, summary.videos_ok) == (2, 1)
    run = iv.open(tmp_path / "o")
    assert run.failures[["item", "stage", "reason"]].values.tolist() == [
        [str(missing), "input", "missing_file"]
    ]
    assert (
        run.clips["clip_id"].tolist()
        == [c.clip_id for c in run.records()]
        == [
            "demo_c_000000000_000010000",
            "demo_c_000010000_000012000",
        ]
    )
    assert len(run) == 2 and run.stats["clips"] == 2 and run.config.caption.models == "none"
    assert run.duckdb().filter("duration > 5").count("*").fetchall() == [(1,)]
    assert iv.run_outcome(summary) == iv.run_outcome(summary, 0.5)
    assert iv.run_outcome(summary).code == EXIT_OK
    assert iv.run_outcome(summary, 0.4).code == EXIT_FAILURE_RATE


def _doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/api.md has one python example"
    return blocks[0]


def test_the_docs_example_runs(tmp_path, demo_videos, monkeypatch):
    (tmp_path / "videos").mkdir()
    shutil.copy(demo_videos / "demo_c.mp4", tmp_path / "videos" / "demo_c.mp4")  # 10 s + 2 s
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(_doc_example(), str(DOC), "exec"), ns)
    summary, run, records = ns["summary"], ns["run"], ns["records"]
    assert summary.videos == 1 and summary.clips == len(ns["clips"]) == len(records) == 2
    assert ns["clips"]["caption"].notna().all()  # tiny captions: noise, but there
    keys = [s["__key__"] for s in run.shards()]
    assert keys == [c.clip_id for c in records]  # one tar member set per clip, in order
    assert ns["meta"]["clip_id"] == ns["first"]["__key__"]
    assert ns["longest"].fetchall() == [("demo_c", 10.0)]
    assert ns["picked"].rows == 2
    chosen = [json.loads(x) for x in Path("subsets/sample.jsonl").read_text().splitlines()]
    assert len(chosen) == 2
    assert ns["text"].shape[0] == 1


@pytest.mark.slow
def test_the_docs_example_on_the_real_sample_videos(tmp_path, real_videos, monkeypatch):
    (tmp_path / "videos").symlink_to(real_videos, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(_doc_example(), str(DOC), "exec"), ns)
    assert ns["summary"].videos == len(list(real_videos.glob("*.mp4")))
    assert ns["summary"].clips == len(ns["records"]) > 0
