"""`internvid dedup` over a run of the sample videos plus re-encoded copies of two of them: the
copies are grouped with their originals and dropped from keep.txt, the sample clips are not;
the viclip embedder runs end to end; subset --keep-list reads keep.txt."""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import DedupConfig
from internvid.dedup.embed import embed_frames, embed_viclip
from internvid.dedup.groups import canonical_key
from internvid.io.lock import lock_path
from internvid.io.tables import clips_table, read_clips, write_table_atomic
from internvid.outcome import EXIT_LOCKED, EXIT_NOTHING, EXIT_USAGE
from internvid.records import Clip
from shared_data import REAL_VIDEOS

log = logging.getLogger(__name__)
runner = CliRunner()

ORIGINALS = ["cosmos_clip_10s", "fades", "internvid_example1", "mmaction_test", "nasa_13013"]
# copy name -> (original, ffmpeg arguments): each re-encoded differently; "zz_" sorts them
# after every original, so keep rule `first` keeps the originals
COPIES = {
    "zz_cosmos_small.mkv": (  # 0.75 scale, x264 at CRF 32, Matroska
        "cosmos_clip_10s",
        ["-vf", "scale=640:360", "-c:v", "libx264", "-crf", "32", "-preset", "ultrafast"],
    ),
    "zz_mmaction_15fps.avi": (  # half the frame rate, MPEG-4 part 2 at q 8, AVI
        "mmaction_test",
        ["-r", "15", "-c:v", "mpeg4", "-q:v", "8"],
    ),
}


def _video(clip_id: str) -> str:
    return clip_id.rsplit("_", 2)[0]


def _overlap(a: Clip, b: Clip) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`internvid run` (no captions, no clip files) over 5 sample videos + 2 re-encodes."""
    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real sample videos not found at {REAL_VIDEOS} (set INTERNVID_SHARED_DATA)")
    import imageio_ffmpeg

    base = tmp_path_factory.mktemp("dedup_run")
    videos = base / "videos"
    videos.mkdir()
    for name in ORIGINALS:
        shutil.copy(REAL_VIDEOS / f"{name}.mp4", videos / f"{name}.mp4")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    for name, (original, args) in COPIES.items():
        src = REAL_VIDEOS / f"{original}.mp4"
        cmd = [ffmpeg, "-v", "error", "-y", "-i", str(src), *args, "-an", str(videos / name)]
        subprocess.run(cmd, check=True, timeout=120)
    out = base / "out"
    result = runner.invoke(app, ["run", str(videos), "--out", str(out), "--cut-mode", "none"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run (tests write dedup/ and search/)."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out, ignore=shutil.ignore_patterns("dedup", "search"))
    return out


def _cosines(x: np.ndarray, clips: list[Clip]) -> dict[str, list[float]]:
    """Cosines of copy vs its original's matching clip, of clips of different sample videos,
    and of different clips of one video."""
    copy_of = {Path(n).stem: o for n, (o, _) in COPIES.items()}
    sims = x @ x.T
    out: dict[str, list[float]] = {"copy": [], "different_videos": [], "same_video": []}
    for i, a in enumerate(clips):
        for j in range(i + 1, len(clips)):
            b = clips[j]
            va, vb = copy_of.get(a.video_id, a.video_id), copy_of.get(b.video_id, b.video_id)
            if va != vb:
                out["different_videos"].append(float(sims[i, j]))
            elif a.video_id == b.video_id:
                out["same_video"].append(float(sims[i, j]))
            elif _overlap(a, b) > 0.5 * min(a.duration, b.duration):
                out["copy"].append(float(sims[i, j]))
    return out


def test_copies_are_grouped_with_their_originals_and_dropped(run_dir):
    clips = sorted(read_clips(run_dir / "clips.parquet"), key=canonical_key)
    originals = [c for c in clips if not c.video_id.startswith("zz_")]
    copies = [c for c in clips if c.video_id.startswith("zz_")]
    assert {c.video_id for c in originals} == set(ORIGINALS)
    assert {c.video_id for c in copies} == {Path(n).stem for n in COPIES}

    result = runner.invoke(app, ["dedup", str(run_dir), "--embedder", "frames", "--keep", "first"])
    assert result.exit_code == 0, result.output
    folder = run_dir / "dedup"
    rows = pq.read_table(folder / "groups.parquet").to_pylist()
    keep = (folder / "keep.txt").read_text().splitlines()
    summary = json.loads((folder / "dedup.json").read_text())
    assert not list(folder.glob(".*.tmp-*"))

    group_of = {r["clip_id"]: r["group"] for r in rows}
    copy_of = {Path(n).stem: o for n, (o, _) in COPIES.items()}
    for copy in copies:  # each copy clip is grouped with the original's matching clip
        twin = max(
            (c for c in originals if c.video_id == copy_of[copy.video_id]),
            key=lambda c: _overlap(c, copy),
        )
        assert copy.clip_id in group_of, f"{copy.clip_id} not grouped"
        assert group_of[copy.clip_id] == group_of.get(twin.clip_id), (copy.clip_id, twin.clip_id)
    for g in set(group_of.values()):  # no group joins two different sample videos
        members = [r["clip_id"] for r in rows if r["group"] == g]
        assert len({copy_of.get(_video(m), _video(m)) for m in members}) == 1, members
        kept = [r for r in rows if r["group"] == g and r["kept"]]
        assert len(kept) == 1 and not kept[0]["clip_id"].startswith("zz_")
    assert all(r["cosine"] >= summary["threshold"] for r in rows if not r["kept"])
    # keep.txt: every original clip, no copy, in canonical order
    assert keep == [c.clip_id for c in originals]
    assert summary["clips"] == len(clips) and summary["dropped"] == len(copies)
    assert summary["groups"] == len(copies) and summary["kept"] == len(originals)
    assert summary["embedder"] == "frames" and summary["settings"]["keep"] == "first"
    assert set(summary["seconds"]) == {"embed", "cluster", "pairs", "total"}

    # the measured margins (the report quotes them)
    emb = embed_frames(run_dir, clips, DedupConfig())
    cos = _cosines(emb.vectors, clips)
    log.info(
        "frames: copy %s, different videos max %.3f, same video max %.3f",
        np.round(cos["copy"], 3).tolist(), max(cos["different_videos"]), max(cos["same_video"]),
    )  # fmt: skip
    assert len(cos["copy"]) == len(copies)
    assert min(cos["copy"]) >= 0.95 and max(cos["different_videos"]) <= 0.6


def test_viclip_dedup_runs_end_to_end_and_reuses_the_search_index(run_dir, tmp_path):
    cache = tmp_path / "cache"
    args = ["dedup", str(run_dir), "--models", "tiny", "--cache-dir", str(cache), "--json"]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    clips = sorted(read_clips(run_dir / "clips.parquet"), key=canonical_key)
    assert summary["embedder"] == "viclip" and summary["model"] == "tiny:viclip"
    assert summary["embedded"] == len(clips) and summary["threshold"] == 0.95
    assert any("tiny" in n for n in summary["notes"])
    assert (run_dir / "search" / "meta.json").is_file()  # the index `internvid search` uses
    table = pq.read_table(run_dir / "dedup" / "groups.parquet")
    assert table.schema.names == ["group", "clip_id", "video_id", "kept", "cosine", "embedder"]
    rows = table.to_pylist()
    keep = (run_dir / "dedup" / "keep.txt").read_text().splitlines()
    dropped = {r["clip_id"] for r in rows if not r["kept"]}
    assert keep == [c.clip_id for c in clips if c.clip_id not in dropped]
    assert summary["kept"] == len(keep) == len(clips) - len(dropped)
    # the tiny random-weight ViCLIP does not tell the sample videos apart: measured here
    emb = embed_viclip(run_dir, clips, DedupConfig(models="tiny", cache_dir=str(cache)))
    cos = _cosines(emb.vectors, clips)
    log.info(
        "tiny viclip: copy min %.3f, different videos min %.3f max %.3f",
        min(cos["copy"]), min(cos["different_videos"]), max(cos["different_videos"]),
    )  # fmt: skip
    assert min(cos["copy"]) > 0.99  # copies look alike to it too ...

    # subset --keep-list: only the kept clips, before the rule
    prefix = tmp_path / "sub"
    result = runner.invoke(
        app,
        ["subset", "where", str(run_dir), "-o", str(prefix),
         "--keep-list", str(run_dir / "dedup" / "keep.txt")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(pq.read_table(f"{prefix}.parquet").column("clip_id").to_pylist()) == sorted(keep)


@pytest.mark.allow_error_logs
def test_no_run_no_clips_unsafe_ids_and_a_held_lock(tmp_path, run_dir):
    assert runner.invoke(app, ["dedup", str(tmp_path / "nothing")]).exit_code == EXIT_USAGE
    assert not (tmp_path / "nothing").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    write_table_atomic(clips_table([]), empty / "clips.parquet")
    assert runner.invoke(app, ["dedup", str(empty), "--embedder", "frames"]).exit_code == (
        EXIT_NOTHING
    )
    gone = tmp_path / "gone"  # a clip whose source and clip file are both gone
    gone.mkdir()
    write_table_atomic(clips_table([Clip.new("gone", 0.0, 2.0)]), gone / "clips.parquet")
    result = runner.invoke(app, ["dedup", str(gone), "--embedder", "frames", "--json"])
    assert result.exit_code == EXIT_NOTHING
    assert json.loads(result.stdout)["not_embedded"] == {"no_source": 1}
    assert (gone / "dedup" / "keep.txt").read_text() == "gone_000000000_000002000\n"  # kept
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    bad = Clip("ok_000000000_000001000\n../../x", "ok", 0.0, 1.0)
    write_table_atomic(clips_table([bad]), hostile / "clips.parquet")
    result = runner.invoke(app, ["dedup", str(hostile), "--embedder", "frames"])
    assert result.exit_code == EXIT_USAGE
    assert not (hostile / "dedup").exists() and not (tmp_path / "x").exists()
    # a second writer of the run folder exits 4 at once
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = runner.invoke(app, ["dedup", str(run_dir), "--embedder", "frames"])
        assert result.exit_code == EXIT_LOCKED
    assert not (run_dir / "dedup").exists()
    assert runner.invoke(app, ["dedup", str(run_dir), "--threshold", "1.5"]).exit_code == 2


def test_help_speaks_the_shared_vocabulary():
    import re

    from internvid.cli.options import CONFIG_HELP, DEVICE_HELP, DTYPE_HELP, MODELS_HELP

    result = runner.invoke(app, ["dedup", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))
    for words in (CONFIG_HELP, DEVICE_HELP, DTYPE_HELP, MODELS_HELP, "--keep-list"):
        assert words in text, words
    for option, bad in (("--device", "gpu0"), ("--dtype", "float33"), ("--embedder", "clip")):
        result = runner.invoke(app, ["dedup", "somewhere", option, bad])
        assert result.exit_code == 2 and bad in result.output, (option, result.output)
