"""`internvid subset --keep-list FILE`: only the listed clip ids, before --where and the rule;
the ids are data to DuckDB (a registered Arrow table), never SQL text."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import SubsetConfig
from internvid.io.tables import clips_table, write_table_atomic
from internvid.records import Clip
from internvid.subsets import SubsetError, make_subset

runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path):
    clips = [
        Clip.new(f"v{v}", float(s), float(s + 2 + v), scores={"aesthetic": 3.0 + v})
        for v in range(4)
        for s in (0, 10)
    ]
    folder = tmp_path / "run"
    folder.mkdir()
    write_table_atomic(clips_table(clips), folder / "clips.parquet")
    return folder, [c.clip_id for c in clips]


def _ids(prefix) -> list[str]:
    return pq.read_table(f"{prefix}.parquet").column("clip_id").to_pylist()


def test_keep_list_restricts_rows_before_where_and_rule(run_dir, tmp_path):
    folder, ids = run_dir
    keep = tmp_path / "keep.txt"
    hostile = ["x' OR 1=1 --", "'); DROP TABLE src; --", "v0_000000000_000002000' OR 'a'='a"]
    keep.write_text(
        "# kept clips\n\n" + "\n".join([ids[0], f"  {ids[3]}  ", ids[5], ids[5], *hostile]) + "\n"
    )
    r = make_subset(folder, tmp_path / "a", SubsetConfig(rule="where", keep_list=str(keep)))
    assert _ids(tmp_path / "a") == [ids[0], ids[3], ids[5]]  # canonical order, once each
    assert r.rows_in == len(ids) and r.steps[0].label == "keep list keep.txt"
    assert r.steps[0].after == 3
    # --where and the rule come after it: aes keeps aesthetic >= 4 (v1 and later)
    cfg = SubsetConfig(rule="aes", keep_list=str(keep), where="duration >= 3")
    r = make_subset(folder, tmp_path / "b", cfg)
    assert [s.label for s in r.steps] == [
        "keep list keep.txt",
        "where duration >= 3",
        "aesthetic >= 4",
    ]
    assert _ids(tmp_path / "b") == [ids[3], ids[5]]
    # a draw draws among the kept clips only
    make_subset(folder, tmp_path / "c", SubsetConfig(rule="random", size=2, keep_list=str(keep)))
    assert set(_ids(tmp_path / "c")) <= {ids[0], ids[3], ids[5]}
    with pytest.raises(SubsetError, match="only 3"):
        make_subset(folder, tmp_path / "d", SubsetConfig(rule="div", size=4, keep_list=str(keep)))


def test_keep_list_cli_and_a_missing_file(run_dir, tmp_path):
    folder, ids = run_dir
    keep = tmp_path / "keep.txt"
    keep.write_text("\n".join(ids[2:5]) + "\n")
    args = ["subset", "where", str(folder), "-o", str(tmp_path / "s"), "--keep-list", str(keep)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _ids(tmp_path / "s") == ids[2:5]
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing\n")
    args[-1] = str(empty)
    assert runner.invoke(app, args).exit_code == 1  # an empty subset
    args[-1] = str(tmp_path / "missing.txt")
    with pytest.raises(SubsetError, match="no such file"):
        make_subset(folder, tmp_path / "m", SubsetConfig(rule="where", keep_list=args[-1]))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
