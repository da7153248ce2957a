"""`internvid run` and `internvid score` exit with outcome.py's codes (real subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from internvid.outcome import EXIT_FAILURE_RATE, EXIT_NOTHING, EXIT_OK, EXIT_USAGE


def internvid(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "internvid", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def run(inputs: list, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return internvid("run", *inputs, "--out", out, "--no-progress", *extra)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [ln.split("ERROR", 1)[1].strip() for ln in result.stderr.splitlines() if "ERROR" in ln]


def test_a_missing_input_produces_nothing(tmp_path):
    result = run([tmp_path / "missing.mp4"], tmp_path / "o")
    assert result.returncode == EXIT_NOTHING, result.stderr
    assert error_lines(result) == ["no clips produced: all 1 input(s) failed"]
    assert "0 clips" in result.stderr  # the summary is still printed
    (row,) = [json.loads(x) for x in (tmp_path / "o" / "failures.jsonl").read_text().splitlines()]
    assert (row["stage"], row["reason"]) == ("input", "missing_file")


def test_every_input_corrupt_produces_nothing(tmp_path):
    for name in ("x.mp4", "y.mp4"):
        (tmp_path / name).write_bytes(b"not a video at all " * 64)
    result = run([tmp_path / "x.mp4", tmp_path / "y.mp4"], tmp_path / "o")
    assert result.returncode == EXIT_NOTHING, result.stderr
    assert error_lines(result) == ["no clips produced: all 2 input(s) failed"]


def test_metadata_whose_every_row_is_missing_produces_nothing(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"YoutubeID": vid, "Start_timestamp": "00:00:01.000",
                        "End_timestamp": "00:00:03.000", "Caption": "a dog"}) + "\n"
            for vid in ("abc", "def")
        )
    )  # fmt: skip
    template = str(tmp_path / "videos" / "{YoutubeID}.mp4")
    result = run([rows], tmp_path / "o", "--path-template", template)
    assert result.returncode == EXIT_NOTHING, result.stderr
    assert error_lines(result) == ["no clips produced: all 2 input(s) failed"]


def test_a_clean_run_exits_0(tmp_path, demo_videos):
    result = run([demo_videos / "demo_c.mp4"], tmp_path / "o", "--max-failure-rate", "0")
    assert result.returncode == EXIT_OK, result.stderr
    assert error_lines(result) == []
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["clips"] == 2


def test_a_partial_run_exits_0_within_the_failure_rate_and_3_above(tmp_path, demo_videos):
    inputs = [demo_videos / "demo_c.mp4", tmp_path / "missing.mp4"]
    out = tmp_path / "o"
    result = run(inputs, out)  # no limit: some clips, one of two inputs failed
    assert result.returncode == EXIT_OK, result.stderr
    assert error_lines(result) == []
    result = run(inputs, out, "--max-failure-rate", "0.4")  # the same run, resumed: 50% > 40%
    assert result.returncode == EXIT_FAILURE_RATE, result.stderr
    assert error_lines(result) == ["1 of 2 input(s) failed (50.0%), above --max-failure-rate 40.0%"]
    assert "2 clips" in result.stderr  # the summary is still printed
    result = run(inputs, out, "--max-failure-rate", "0.5")  # 50% is not above 50%
    assert result.returncode == EXIT_OK, result.stderr


def test_a_failure_rate_outside_0_1_cannot_start(tmp_path, demo_videos):
    result = run([demo_videos / "demo_c.mp4"], tmp_path / "o", "--max-failure-rate", "1.5")
    assert result.returncode == EXIT_USAGE
    assert "--max-failure-rate" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_score_exit_codes_follow_the_clips_scored(tmp_path, demo_videos):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("demo_a.mp4", "demo_c.mp4"):  # 2 + 2 clips; no clip files: frames from sources
        shutil.copy(demo_videos / name, videos / name)
    out = tmp_path / "o"
    assert run([videos], out, "--cut-mode", "none").returncode == EXIT_OK
    assert json.loads((out / "stats.json").read_text())["clips"] == 4
    score = ("score", out, "--models", "tiny", "--scores", "aesthetic")
    result = internvid(*score)
    assert result.returncode == EXIT_OK, result.stderr
    (videos / "demo_c.mp4").unlink()  # its 2 clips cannot be read any more
    result = internvid(*score, "--max-failure-rate", "0.2")
    assert result.returncode == EXIT_FAILURE_RATE, result.stderr
    assert error_lines(result) == ["2 of 4 input(s) failed (50.0%), above --max-failure-rate 20.0%"]
    assert internvid(*score, "--max-failure-rate", "0.6").returncode == EXIT_OK
    (videos / "demo_a.mp4").unlink()
    result = internvid(*score)
    assert result.returncode == EXIT_NOTHING, result.stderr
    assert error_lines(result) == ["no scores produced: all 4 input(s) failed"]


def test_score_of_a_folder_without_a_run_cannot_start(tmp_path):
    result = internvid("score", tmp_path, "--models", "tiny", "--scores", "aesthetic")
    assert result.returncode == EXIT_USAGE
    assert "no clips.parquet" in result.stderr
