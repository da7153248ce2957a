"""Bounded input lines: an overlong metadata or list line is one failure row, read past in
chunks; an overlong caption fails its row; `python -m internvid run` stays small doing it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from internvid.config import InputConfig
from internvid.inputs import read_inputs
from internvid.io.release import MalformedRow, bounded_lines, iter_release_rows

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
MB = 1 << 20
RSS_LIMIT_KB = 500 * 1024  # the brief: peak RSS of the command under 500 MB
ROW = {"YoutubeID": "demo_a", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:03.000"}

# runs its arguments as a command and prints the largest RSS (KiB) of any process it waited for:
# a fresh parent, so no earlier test's subprocess is counted
PEAK_RSS = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""


class Recording(io.BytesIO):
    """A binary file that remembers the longest piece any readline call returned."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.longest = max(self.longest, len(line))
        return line


def test_bounded_lines_never_hold_an_overlong_line() -> None:
    data = b"a" * 100 + b"\n" + b"b" * 300_000 + b"\n" + b"c" * 101 + b"\n" + b"d" * 100
    f = Recording(data)
    assert list(bounded_lines(f, 100)) == [b"a" * 100 + b"\n", None, None, b"d" * 100]
    assert f.longest == 1 << 16  # a 300 KB line is skipped 64 KiB at a time, never held whole
    assert list(bounded_lines(io.StringIO("xy\n" + "z" * 9 + "\nw"), 4)) == ["xy\n", None, "w"]


def test_release_reader_fails_an_overlong_line_and_a_long_caption() -> None:
    good = json.dumps(ROW)
    long_line = json.dumps({**ROW, "pad": "x" * 5000})
    long_caption = json.dumps({**ROW, "Caption": "y" * 300})
    data = "\n".join([good, long_line, long_caption, good]) + "\n"
    seen: list[tuple[int, str, str]] = []
    rows = list(
        iter_release_rows(
            io.BytesIO(data.encode()),
            on_error=lambda n, e, raw: seen.append((n, e.reason, raw)),
            max_line_bytes=4096,
            max_caption_chars=200,
        )
    )
    assert len(rows) == 2 and rows[0].to_json() == ROW
    assert [(n, reason) for n, reason, _ in seen] == [(2, "line_too_long"), (3, "caption_too_long")]
    assert seen[0][2] == ""  # the overlong line is never handed out
    # exactly at the limits: read
    at_limit = json.dumps({**ROW, "Caption": "z" * 200})
    [row] = iter_release_rows(io.BytesIO(at_limit.encode()), max_line_bytes=len(at_limit),
                              max_caption_chars=200)  # fmt: skip
    assert row.caption == "z" * 200
    with pytest.raises(MalformedRow, match=r"<stream>:1: line longer than 4096 bytes"):
        list(iter_release_rows(io.StringIO(long_line), max_line_bytes=4096))


def test_list_lines_over_the_limit_are_failure_rows(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    cfg = InputConfig(max_line_bytes=1024)
    txt = tmp_path / "l.txt"
    txt.write_bytes(b"v.mp4\n" + b"q" * 5000 + b"\n\xff\xfe\n")
    csv_list = tmp_path / "l.csv"
    csv_list.write_text("path,id\nv.mp4,one\n" + "z" * 2000 + ",two\n")
    jsonl = tmp_path / "l.jsonl"
    jsonl.write_text(json.dumps({"path": "v.mp4"}) + "\n" + json.dumps({"path": "p" * 3000}) + "\n")
    for path, failures in (
        (txt, [("l.txt:2", "line_too_long"), ("l.txt:3", "malformed_input")]),
        (csv_list, [("l.csv:3", "line_too_long")]),
        (jsonl, [("l.jsonl:2", "line_too_long")]),
    ):
        got = read_inputs([str(path)], cfg)
        assert [s.video.path for s in got.samples] == [str(video)], path
        assert [(f.item, f.reason) for f in got.failures] == failures, path


def peak_run(args: list[str], cwd: Path) -> tuple[int, int]:
    """(exit code, peak RSS in KiB) of `python -m internvid ARGS`."""
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "internvid", "-q", *args],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    rss, rc = proc.stdout.split()[-2:]
    return int(rc), int(rss)


def failure_reasons(out: Path) -> list[tuple[str, str]]:
    rows = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    return [(r["item"], r["reason"]) for r in rows]


def test_run_with_a_50_mb_line_and_a_5_mb_caption(tmp_path: Path, demo_videos: Path) -> None:
    meta = tmp_path / "rows.jsonl"
    with open(meta, "w") as f:  # line 1: 50 MB of one JSON object; line 2: a good row
        f.write('{"YoutubeID": "demo_a", "Start_timestamp": "00:00:01.000", "pad": "')
        for _ in range(50):
            f.write("x" * MB)
        f.write('", "End_timestamp": "00:00:02.000"}\n' + json.dumps(ROW) + "\n")
    captions = tmp_path / "captions.jsonl"
    captions.write_text(json.dumps({**ROW, "Caption": "c" * (5 * MB)}) + "\n" + json.dumps(
        {**ROW, "Start_timestamp": "00:00:04.000", "End_timestamp": "00:00:06.000"}) + "\n")  # fmt: skip
    big_lines = tmp_path / "big_lines.yaml"
    big_lines.write_text(f"input:\n  max_line_bytes: {8 * MB}\n")
    common = ["--path-template", f"{demo_videos}/{{YoutubeID}}.mp4", "--collect", "off",
              "--models", "none", "--no-progress"]  # fmt: skip

    rc, rss = peak_run(["run", str(meta), "--out", "a", *common], tmp_path)
    assert rc == 0
    assert failure_reasons(tmp_path / "a") == [("rows.jsonl:1", "line_too_long")]
    assert len((tmp_path / "a" / "internvid.jsonl").read_text().splitlines()) == 1
    assert rss < RSS_LIMIT_KB, f"peak RSS {rss} KiB"

    # the 5 MB caption: over the default line limit it is a line_too_long row; with the line
    # limit raised, the row is read and fails on its caption (never truncated)
    rc, rss = peak_run(["run", str(captions), "--out", "b", *common], tmp_path)
    assert rc == 0 and failure_reasons(tmp_path / "b") == [("captions.jsonl:1", "line_too_long")]
    assert rss < RSS_LIMIT_KB, f"peak RSS {rss} KiB"
    rc, rss = peak_run(
        ["run", str(captions), "--out", "c", "-c", str(big_lines), *common], tmp_path
    )
    assert rc == 0
    assert failure_reasons(tmp_path / "c") == [("captions.jsonl:1", "caption_too_long")]
    [kept] = [json.loads(x) for x in (tmp_path / "c" / "internvid.jsonl").read_text().splitlines()]
    assert kept["Start_timestamp"] == "00:00:04.000"
    assert rss < RSS_LIMIT_KB, f"peak RSS {rss} KiB"
