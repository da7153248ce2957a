"""Scores in a run and in `internvid score`: every clip gets its columns; text overlay on real video."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import RunConfig, ScoreConfig
from internvid.hub import OFFICIAL_CLIP, OFFICIAL_VICLIP
from internvid.io.tables import read_clips, row_to_clip
from internvid.run import run
from internvid.scores.aesthetic import AESTHETIC_HEADS
from internvid.scores.viclip_sim import caption_percentiles
from internvid.stages.score import score_models

runner = CliRunner()
ALL = "viclip_sim,aesthetic,clipscore,text_overlay"


def test_caption_percentiles():
    sims = np.array(
        [
            [0.9, 0.1, 0.2],  # own caption best: 1.0
            [0.5, 0.3, 0.3],  # below one, tied with one: 0.25
            [0.1, 0.2, 0.3],  # best: 1.0
        ]
    )
    assert caption_percentiles(sims) == [1.0, 0.25, 1.0]
    assert caption_percentiles(np.array([[0.4]])) == [None]


def test_score_models_follow_the_preset():
    real = score_models(ScoreConfig(scores=["viclip_sim", "aesthetic"]), "lite")
    assert (real.get("viclip"), real.get("clip"), real.get("aesthetic_head")) == (
        OFFICIAL_VICLIP,
        OFFICIAL_CLIP,
        AESTHETIC_HEADS["mlp"],
    )
    tiny = score_models(ScoreConfig(scores=["clipscore"], models="auto"), "tiny")
    assert (tiny.get("viclip"), tiny.get("clip"), tiny.get("aesthetic_head")) == (
        "",
        "tiny:clip",
        "",
    )
    assert score_models(ScoreConfig(), "tiny") is None
    own = score_models(ScoreConfig(scores=["aesthetic"], aesthetic_head="/h.pth", models="tiny"))
    assert own.get("aesthetic_head") == "/h.pth" and own.get("clip") == "tiny:clip"


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_cache")


def _scored(out):
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    return rows, [row_to_clip(r).scores for r in rows]


def test_run_with_every_score(tmp_path, demo_videos, tiny_cache):
    out = tmp_path / "out"
    args = ["run", str(demo_videos), "--out", str(out), "--models", "tiny", "--scores", ALL]
    args += ["--cache-dir", str(tiny_cache), "--cut-mode", "none", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows, scores = _scored(out)
    assert rows
    for s in scores:
        assert {"viclip_sim", "aesthetic", "clipscore", "text_overlay"} <= set(s)
        assert -1.0 <= s["viclip_sim"] <= 1.0 and -1.0 <= s["clipscore"] <= 1.0
        assert 0.0 <= s["text_overlay"] <= 1.0 and 0.0 <= s["viclip_sim_pct"] <= 1.0
    release = [json.loads(x) for x in (out / "internvid.jsonl").read_text().splitlines()]
    assert [r["UMT_Score"] for r in release] == [s["viclip_sim"] for s in scores]
    assert [r["Aesthetic_Score"] for r in release] == [s["aesthetic"] for s in scores]
    stages = [s["name"] for s in json.loads((out / "stats.json").read_text())["stages"]]
    assert stages[-3:] == ["fuse", "score", "cut"]


def test_score_command_fills_columns_of_a_finished_run(tmp_path, demo_videos, tiny_cache):
    out = tmp_path / "out"
    args = ["run", str(demo_videos), "--out", str(out), "--models", "tiny"]
    args += ["--cache-dir", str(tiny_cache), "--no-progress"]  # cut exact: clip files
    assert runner.invoke(app, args).exit_code == 0
    before, _ = _scored(out)
    args = ["score", str(out), "--scores", ALL, "--models", "tiny", "--cache-dir", str(tiny_cache)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    after, scores = _scored(out)
    assert [r["clip_id"] for r in after] == [r["clip_id"] for r in before]
    for r0, r1, s in zip(before, after, scores, strict=True):
        assert {"viclip_sim", "aesthetic", "clipscore", "text_overlay"} <= set(s)
        assert row_to_clip(r1).captions == row_to_clip(r0).captions  # nothing else recomputed
        assert r1["frame_captions"] == r0["frame_captions"]
        assert s["motion"] == r0["motion"]
    sidecars = sorted((out / "shards").glob("*.parquet"))
    side = [c.scores for p in sidecars for c in read_clips(p)]
    assert sorted(x["aesthetic"] for x in side) == sorted(x["aesthetic"] for x in scores)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["score_command"]["scored"] == len(after)


def test_score_command_reads_clip_files_when_sources_are_gone(tmp_path, demo_videos, tiny_cache):
    import shutil

    src = tmp_path / "videos"
    shutil.copytree(demo_videos, src)
    out = tmp_path / "out"
    args = ["run", str(src), "--out", str(out), "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    shutil.rmtree(src)
    args = ["score", str(out), "--scores", "aesthetic,text_overlay", "--models", "tiny"]
    result = runner.invoke(app, [*args, "--cache-dir", str(tiny_cache)])
    assert result.exit_code == 0, result.output
    _, scores = _scored(out)
    assert scores and all({"aesthetic", "text_overlay"} <= set(s) for s in scores)


@pytest.mark.integration
def test_text_overlay_flags_the_slide_video(real_videos, tmp_path):
    cfg = RunConfig()
    cfg.motion.enabled = False  # the slides would be dropped as still
    cfg.cut.mode = "none"
    cfg.score.scores = ["text_overlay"]
    cfg.split.max_clip_seconds = 40.0  # the 2-minute slide video in 4 clips, not 13: less OCR
    vids = [real_videos / n for n in ("v2d_test_video.mp4", "cosmos_clip_10s.mp4")]
    vids.append(real_videos / "nasa_13013.mp4")
    run([str(v) for v in vids], tmp_path / "out", cfg, progress=False)
    rows = pq.read_table(tmp_path / "out" / "clips.parquet").to_pylist()
    by_video: dict[str, list[float]] = {}
    for r in rows:
        by_video.setdefault(r["video_id"], []).append(r["text_overlay"])
    slides = np.mean(by_video["v2d_test_video"])
    camera = max(np.mean(by_video["cosmos_clip_10s"]), np.mean(by_video["nasa_13013"]))
    assert slides > 5 * camera and slides > 0.05, by_video
