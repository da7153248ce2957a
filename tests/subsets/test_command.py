"""`internvid subset` as a user runs it: exit codes, FLT's rounding on a small run, legacy run
folders, and what a killed subset leaves behind (the next one into the same prefix removes it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from subset_data import clips_of, out_ids, synthetic, write_legacy_parquet, write_parquet

from internvid.io.tables import clips_table, upgrade_table, write_table_atomic
from internvid.records import Clip
from internvid.subsets import SubsetConfig, make_subset
from internvid.subsets.make import remove_leftovers


def _subset(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "internvid", "subset", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def five(tmp_path: Path) -> tuple[list[Clip], Path]:
    """A run of 5 clips, 2-6 s long, viclip_sim 0.1 .. 0.5."""
    run = tmp_path / "run"
    run.mkdir()
    clips = [
        Clip.new(f"v{i % 2}", 10.0 * i, 10.0 * i + 2 + i, scores={"viclip_sim": 0.1 * (i + 1)})
        for i in range(5)
    ]
    write_table_atomic(clips_table(clips), run / "clips.parquet")
    return clips, run


def test_flt_keeps_at_least_ceil_30_percent(five, tmp_path: Path) -> None:
    """ceil(0.3 x 5) = 2: `flt -n 2` works on a 5-clip run (floor kept 1 and failed)."""
    clips, run = five
    res = _subset("flt", str(run), "-n", "2", "-o", str(tmp_path / "f"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(
        "duration 1-120 s: -0; no viclip_sim: -0; top 30% by viclip_sim: -3; DIV 2 of 2 -> "
    )
    best = sorted(clips, key=lambda c: -c.scores["viclip_sim"])[:2]
    assert set(out_ids(tmp_path / "f")) == {c.clip_id for c in best}
    # 0.28 x 25 = 7 exactly (7.000000000000001 in floats): 7, not 8
    more = [Clip.new("w", 10.0 * i, 10.0 * i + 2, scores={"viclip_sim": i / 25}) for i in range(25)]
    (tmp_path / "run25").mkdir()
    write_table_atomic(clips_table(more), tmp_path / "run25" / "clips.parquet")
    cfg = SubsetConfig(rule="flt", size=7, top_fraction=0.28)
    result = make_subset(tmp_path / "run25", tmp_path / "g", cfg)
    assert [s.after for s in result.steps] == [25, 25, 7, 7]
    assert set(out_ids(tmp_path / "g")) == {c.clip_id for c in more[-7:]}


def test_exit_codes(five, tmp_path: Path) -> None:
    _, run = five
    ok = _subset("div", str(run), "-n", "3", "-o", str(tmp_path / "ok"))
    assert ok.returncode == 0 and "(3 rows)" in ok.stdout, ok.stderr

    empty = _subset("where", str(run), "--where", "duration > 100", "-o", str(tmp_path / "e"))
    assert empty.returncode == 1, empty.stderr
    assert "(0 rows)" in empty.stdout and "the where subset is empty" in empty.stderr
    assert (tmp_path / "e.jsonl").read_bytes() == b"" and pq.read_table(
        tmp_path / "e.parquet"
    ).num_rows == 0

    bad = [
        ["where", str(run), "--where", "no_such_column > 1"],  # --where names no column
        ["where", str(run), "--where", "true; SELECT 1"],  # not one expression
        ["where", str(tmp_path / "missing")],  # no run folder
        ["where", str(tmp_path)],  # a folder without clips.parquet
        ["div", str(run)],  # div needs -n
        ["nope", str(run)],  # no such rule
        ["flt", str(run), "-n", "5", "--score", "no_such_score"],
    ]
    for i, args in enumerate(bad):
        res = _subset(*args, "-o", str(tmp_path / "bad" / f"b{i}"))
        assert res.returncode == 2, (args, res.stdout, res.stderr)
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_a_legacy_run_folder_is_converted_on_read(tmp_path: Path) -> None:
    """A clips.parquet with the MAP columns of internvid < 0.2: the same subset, byte for byte in
    the jsonl, and the parquet of io.tables.upgrade_table."""
    clips = clips_of(synthetic(seed=3, n=3000, videos=400))
    (tmp_path / "flat").mkdir()
    (tmp_path / "legacy").mkdir()
    write_table_atomic(clips_table(clips), tmp_path / "flat" / "clips.parquet")
    write_legacy_parquet(clips, tmp_path / "legacy" / "clips.parquet")
    legacy = pq.read_table(tmp_path / "legacy" / "clips.parquet")
    assert "captions" in legacy.schema.names and "fused_caption" not in legacy.schema.names
    for name, cfg in (
        ("div", SubsetConfig(rule="div", size=700)),
        ("flt", SubsetConfig(rule="flt", size=200)),
        ("where", SubsetConfig(rule="where", where="aesthetic > 4.5 and caption ilike '%dog%'")),
    ):
        a = make_subset(tmp_path / "flat", tmp_path / f"{name}-flat", cfg)
        b = make_subset(tmp_path / "legacy", tmp_path / f"{name}-legacy", cfg)
        assert a.summary() == b.summary() and a.rows == b.rows > 0
        jsonl = [(tmp_path / f"{name}-{k}.jsonl").read_bytes() for k in ("flat", "legacy")]
        assert jsonl[0] == jsonl[1], name
        got = pq.read_table(tmp_path / f"{name}-legacy.parquet")
        assert got.equals(pq.read_table(tmp_path / f"{name}-flat.parquet"))
        ids = got["clip_id"].to_pylist()
        upgraded = upgrade_table(legacy).to_pylist()
        by_id = {r["clip_id"]: r for r in upgraded}
        assert got.to_pylist() == [by_id[i] for i in ids]
        assert got.schema == upgrade_table(legacy).schema
    assert not [p for p in tmp_path.glob(".*")], "the converted table was left behind"


def test_remove_leftovers_keeps_a_running_subsets_files(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        gone = int(dead.stdout)
        for pid in (gone, sleeper.pid):
            (tmp_path / f".x.jsonl.tmp-{pid}").write_text("partial")
            (tmp_path / f".x.parquet.tmp-{pid}").write_text("partial")
            (tmp_path / f".x.subset-tmp-{pid}" / "spill").mkdir(parents=True)
            (tmp_path / f".x.subset-tmp-{pid}" / "work.duckdb").write_text("db")
        (tmp_path / f".other.jsonl.tmp-{gone}").write_text("not ours")
        (tmp_path / ".x.jsonl.tmp-notapid").write_text("not a temp name")
        assert remove_leftovers(tmp_path / "x", tmp_path) == 3
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(
            [f".x.jsonl.tmp-{sleeper.pid}", f".x.parquet.tmp-{sleeper.pid}",
             f".x.subset-tmp-{sleeper.pid}", f".other.jsonl.tmp-{gone}", ".x.jsonl.tmp-notapid"]
        )  # fmt: skip
    finally:
        sleeper.kill()
        sleeper.wait()


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*"))


@pytest.mark.slow
def test_a_killed_subset_leaves_nothing_after_the_next_one(tmp_path: Path) -> None:
    """SIGKILL `internvid subset` while it writes PREFIX.jsonl / .parquet (100k clips): its temp
    files stay; the next subset into the same prefix removes them and writes what an
    uninterrupted run writes."""
    run = tmp_path / "run"
    run.mkdir()
    c = synthetic(seed=7)
    c["caption"] = np.char.multiply(c["caption"], 12)  # long captions: a longer write
    write_parquet(c, run / "clips.parquet")
    out = tmp_path / "out"
    out.mkdir()
    args = ["where", str(run), "--where", "duration > 0.5", "--threads", "1", "-o", str(out / "x")]
    caught = False
    for _ in range(6):  # kill it once its output temp files exist (mid-write)
        proc = subprocess.Popen(
            [sys.executable, "-m", "internvid", "subset", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None:
            if list(out.glob(".x.parquet.tmp-*")):  # opened after the jsonl's: both exist
                proc.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.001)
        proc.wait()
        if caught:
            break
        for p in out.glob("x.*"):  # it finished first: try again from nothing
            p.unlink()
    assert caught, "the subset finished before its temp files could be seen, 6 times"
    left = _leftovers(out)
    assert {p.name.rsplit("-", 1)[0] for p in left} >= {".x.parquet.tmp", ".x.subset-tmp"}, left
    assert not (out / "x.parquet").exists()

    res = _subset(*args)
    assert res.returncode == 0, res.stderr
    assert "leftover(s) of an interrupted subset" in res.stderr
    assert _leftovers(out) == []
    clean = tmp_path / "clean"
    assert _subset(*args[:-1], str(clean / "x")).returncode == 0
    assert (out / "x.jsonl").read_bytes() == (clean / "x.jsonl").read_bytes()
    assert pq.read_table(out / "x.parquet").equals(pq.read_table(clean / "x.parquet"))
