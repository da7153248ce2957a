"""Subsets as training data: WebDataset shards and a Hugging Face folder, exact clips, resumable."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import RunConfig
from internvid.io.shards import sample_json
from internvid.io.tables import read_clips, read_clips_table, row_to_clip, write_table_atomic
from internvid.run import run
from internvid.subsets.export import ExportError, export_subset

SRC = Path(__file__).resolve().parents[2] / "src"
PICK = [7, 0, 3, 5, 2, 8]  # rows of the run's clips.parquet the subsets take (not in run order)


def _run(videos: Path, out: Path, mode: str) -> Path:
    cfg = RunConfig()
    cfg.cut.mode = mode
    cfg.output.videos_per_shard = 2  # 4 demo videos -> 2 source tars
    run([str(videos)], out, cfg, progress=False)
    return out


@pytest.fixture(scope="module")
def copy_run(demo_videos, tmp_path_factory) -> Path:
    """A run of the demo videos, clips stream-copied (9 clips in 2 tars)."""
    return _run(demo_videos, tmp_path_factory.mktemp("copy") / "run", "copy")


@pytest.fixture(scope="module")
def bare_run(demo_videos, tmp_path_factory) -> Path:
    """The same run with cut.mode none: no clip files in the tars."""
    return _run(demo_videos, tmp_path_factory.mktemp("bare") / "run", "none")


def _subset(run_dir: Path, path: Path, pick: list[int] = PICK) -> list[str]:
    """Write the rows `pick` of the run's clips.parquet as a subset parquet; their clip ids."""
    table = read_clips_table(run_dir / "clips.parquet").take(pick)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table_atomic(table, path)
    return table.column("clip_id").to_pylist()


def _members(tar_path: Path) -> dict[str, bytes]:
    with tarfile.open(tar_path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def _run_members(run_dir: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for p in sorted((run_dir / "shards").glob("*.tar")):
        out.update(_members(p))
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(folder: Path) -> dict[str, str]:
    """sha256 of every file of an export but its state folder (markers name the paths)."""
    return {
        str(p.relative_to(folder)): _sha(p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".export" not in p.parts
    }


def test_wds_export_holds_exactly_the_chosen_clips(copy_run, tmp_path):
    import webdataset

    chosen = _subset(copy_run, tmp_path / "sub.parquet")
    target = tmp_path / "sub"
    result = export_subset(copy_run, tmp_path / "sub.parquet", target, clips_per_shard=4)
    assert (result.clips, result.shards, result.failures, result.clip_files) == (6, 2, 0, True)
    urls = [str(p) for p in sorted((target / "shards").glob("*.tar"))]
    assert [Path(u).name for u in urls] == ["00000.tar", "00001.tar"]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False, empty_check=False))
    run_order = [c.clip_id for c in read_clips(copy_run / "clips.parquet")]
    keys = [s["__key__"] for s in samples]
    assert keys == [c for c in run_order if c in chosen]  # exactly the chosen, in the run's order
    source = _run_members(copy_run)
    by_id = {c.clip_id: c for c in read_clips(copy_run / "clips.parquet")}
    for i, s in enumerate(samples):
        assert set(s) - {"__key__", "__url__", "__local_path__"} == {"mp4", "json", "txt"}
        assert _sha(s["mp4"]) == _sha(source[f"{s['__key__']}.mp4"])  # copied, not re-encoded
        clip = by_id[s["__key__"]]
        clip.shard = i // 4
        assert json.loads(s["json"]) == sample_json(clip)
        assert s["txt"].decode() == clip.best_caption()
    # a run-like folder: sidecars and clips.parquet with the new shard numbers
    rows = pq.read_table(target / "clips.parquet").to_pylist()
    assert [r["clip_id"] for r in rows] == keys
    assert [r["shard"] for r in rows] == [0, 0, 0, 0, 1, 1]
    side = [c.clip_id for k in (0, 1) for c in read_clips(target / f"shards/0000{k}.parquet")]
    assert side == keys
    assert [json.loads(x) for x in (target / "failures.jsonl").read_text().splitlines()] == []


def test_hf_export_loads_with_datasets(copy_run, tmp_path):
    import datasets

    chosen = _subset(copy_run, tmp_path / "sub.parquet")
    target = tmp_path / "hf"
    result = export_subset(copy_run, tmp_path / "sub.parquet", target, clips_per_shard=4, fmt="hf")
    assert (result.clips, result.shards) == (6, 2)
    ds = datasets.load_dataset(str(target), split="train", cache_dir=str(tmp_path / "cache"))
    assert sorted(ds["clip_id"]) == sorted(chosen)
    assert ds.features["mp4"] == datasets.Value("binary")
    source = _run_members(copy_run)
    by_id = {c.clip_id: c for c in read_clips(copy_run / "clips.parquet")}
    for row in ds:
        assert _sha(row["mp4"]) == _sha(source[f"{row['clip_id']}.mp4"])
        clip = row_to_clip({k: v for k, v in row.items() if k != "mp4"})
        want = by_id[row["clip_id"]]
        assert (clip.captions, clip.scores, clip.meta) == (want.captions, want.scores, want.meta)
        assert (clip.start, clip.end, clip.source) == (want.start, want.end, want.source)


def test_a_run_without_clip_files_exports_metadata_only(bare_run, tmp_path, caplog):
    import datasets
    import webdataset

    chosen = _subset(bare_run, tmp_path / "sub.parquet", [1, 4, 6])
    result = export_subset(bare_run, tmp_path / "sub.parquet", tmp_path / "wds")
    assert (result.clips, result.shards, result.clip_files) == (3, 1, False)
    assert any("no clip files" in n for n in result.notes)
    assert "no clip files" in caplog.text  # says so in the log too
    samples = list(
        webdataset.WebDataset(str(tmp_path / "wds/shards/00000.tar"), shardshuffle=False)
    )
    assert sorted(s["__key__"] for s in samples) == sorted(chosen)
    assert all(
        set(s) - {"__key__", "__url__", "__local_path__"} == {"json", "txt"} for s in samples
    )
    export_subset(bare_run, tmp_path / "sub.parquet", tmp_path / "hf", fmt="hf")
    ds = datasets.load_dataset(str(tmp_path / "hf"), split="train", cache_dir=str(tmp_path / "c"))
    assert sorted(ds["clip_id"]) == sorted(chosen) and "mp4" not in ds.features


def test_rows_that_cannot_be_exported_become_failures(copy_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(copy_run, run_dir)
    (run_dir / "shards" / "00001.tar").unlink()  # the clips of demo_c and demo_d lose their files
    table = read_clips_table(run_dir / "clips.parquet")
    ids = table.column("clip_id").to_pylist()
    stranger = table.take([0]).to_pylist()[0] | {"clip_id": "other_000000000_000001000"}
    import pyarrow as pa

    sub = pa.concat_tables([table.take([0, 6]), pa.Table.from_pylist([stranger], table.schema)])
    write_table_atomic(sub, tmp_path / "sub.parquet")
    result = export_subset(run_dir, tmp_path / "sub.parquet", tmp_path / "out")
    assert (result.inputs, result.clips, result.failures) == (3, 1, 2)
    failures = [json.loads(x) for x in (tmp_path / "out/failures.jsonl").read_text().splitlines()]
    assert [(f["item"], f["stage"], f["reason"]) for f in failures] == [
        ("other_000000000_000001000", "export", "not_in_run"),
        (ids[6], "export", "no_shard"),
    ]
    assert list(_members(tmp_path / "out/shards/00000.tar")) == [
        f"{ids[0]}.mp4",
        f"{ids[0]}.json",
        f"{ids[0]}.txt",
    ]


def test_targets_that_are_not_this_export_are_refused(copy_run, tmp_path):
    _subset(copy_run, tmp_path / "sub.parquet")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an export"):
        export_subset(copy_run, tmp_path / "sub.parquet", tmp_path / "busy")
    export_subset(copy_run, tmp_path / "sub.parquet", tmp_path / "out")
    with pytest.raises(ExportError, match="holds a wds export"):
        export_subset(copy_run, tmp_path / "sub.parquet", tmp_path / "out", fmt="hf")
    with pytest.raises(ExportError, match="not a run folder"):
        export_subset(tmp_path, tmp_path / "sub.parquet", tmp_path / "x")
    with pytest.raises(ExportError, match="at least 1"):
        export_subset(copy_run, tmp_path / "sub.parquet", tmp_path / "x", clips_per_shard=0)


def test_a_smaller_subset_replaces_the_shards_of_a_larger_one(copy_run, tmp_path):
    _subset(copy_run, tmp_path / "big.parquet", list(range(9)))
    export_subset(copy_run, tmp_path / "big.parquet", tmp_path / "out", clips_per_shard=2)
    assert len(list((tmp_path / "out/shards").glob("*.tar"))) == 5
    chosen = _subset(copy_run, tmp_path / "small.parquet", [8, 1, 4])
    result = export_subset(
        copy_run, tmp_path / "small.parquet", tmp_path / "out", clips_per_shard=2
    )
    assert result.resumed == 0  # the first shard holds other clips now: rewritten
    export_subset(copy_run, tmp_path / "small.parquet", tmp_path / "ref", clips_per_shard=2)
    assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")
    rows = pq.read_table(tmp_path / "out/clips.parquet").column("clip_id").to_pylist()
    assert sorted(rows) == sorted(chosen)


KILLER = """
import os, signal, sys
from internvid.io import shards
from internvid.subsets import export

calls = 0
real = shards.add_member

def add_member(tar, name, data, size=None):
    global calls
    if size is not None:  # an mp4 streamed from the run's tar
        calls += 1
        if calls == int(sys.argv[4]):  # half of this member's bytes, then SIGKILL
            tar.fileobj.write(data.read(size // 2))
            tar.fileobj.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real(tar, name, data, size)

shards.add_member = add_member
export.export_subset(sys.argv[1], sys.argv[2], sys.argv[3], clips_per_shard=2)
"""


def test_killed_export_resumes_to_identical_bytes(copy_run, tmp_path):
    _subset(copy_run, tmp_path / "sub.parquet", list(range(9)))
    ref = tmp_path / "ref"
    export_subset(copy_run, tmp_path / "sub.parquet", ref, clips_per_shard=2)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-c", KILLER, str(copy_run), str(tmp_path / "sub.parquet"), str(out)]
    proc = subprocess.run([*args, "6"], env=env, timeout=120)  # killed in shard 2's 2nd mp4
    assert proc.returncode == -signal.SIGKILL
    tars = sorted((out / "shards").glob("*.tar"))
    assert [p.name for p in tars] == ["00000.tar", "00001.tar"]  # shard 2 only under a temp name
    assert len(list((out / "shards").glob(".00002.tar.tmp-*"))) == 1
    for p in tars:  # whatever is under a final name is whole, and as the reference has it
        assert _sha(p.read_bytes()) == _sha((ref / "shards" / p.name).read_bytes())
    kept = {p.name: p.stat().st_mtime_ns for p in tars}
    result = export_subset(copy_run, tmp_path / "sub.parquet", out, clips_per_shard=2)
    assert result.resumed == 2 and result.clips == 9
    assert {p.name: p.stat().st_mtime_ns for p in tars} == kept  # finished shards not redone
    assert _tree(out) == _tree(ref)  # byte-identical, temp file gone
    assert not list(out.rglob("*.tmp-*"))


@pytest.mark.allow_error_logs
def test_subset_command_exports(copy_run, tmp_path):
    prefix = tmp_path / "subs" / "rand"
    args = ["subset", "random", str(copy_run), "-o", str(prefix), "-n", "5", "--shards"]
    result = CliRunner().invoke(app, [*args, "--clips-per-shard", "2"])
    assert result.exit_code == 0, result.output
    chosen = pq.read_table(prefix.with_suffix(".parquet")).column("clip_id").to_pylist()
    exported = pq.read_table(prefix / "clips.parquet").column("clip_id").to_pylist()
    assert sorted(exported) == sorted(chosen) and len(chosen) == 5
    assert len(list((prefix / "shards").glob("*.tar"))) == 3
    result = CliRunner().invoke(app, [*args[:-1], "--format", "hf"])
    assert result.exit_code == 2  # the wds folder is not an hf export
    hf = ["subset", "random", str(copy_run), "-o", str(tmp_path / "h"), "-n", "5", "--format", "hf"]
    result = CliRunner().invoke(app, hf)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "h" / "data").glob("*.parquet"))) == 1


@pytest.mark.allow_error_logs
def test_subset_command_refuses_export_of_release_input(tmp_path):
    rows = tmp_path / "rel.jsonl"
    rows.write_text(
        json.dumps(
            {
                "YoutubeID": "abcdefghijk",
                "Start_timestamp": "00:00:00.000",
                "End_timestamp": "00:00:05.000",
                "Caption": "a dog",
                "UMT_Score": 0.4,
                "Aesthetic_Score": 5.0,
            }
        )
        + "\n"
    )
    args = ["subset", "where", str(rows), "-o", str(tmp_path / "s"), "--where", "true", "--shards"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert not (tmp_path / "s").exists()
