"""`internvid search`: the index over a finished run, its reuse, and exact top-k retrieval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from internvid import search as S
from internvid.cli import app
from internvid.config import RunConfig
from internvid.io.tables import read_clips
from internvid.run import run

runner = CliRunner()
QUERY = "a dog catching a frisbee"


APP = app  # the real command line


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> Path:
    """A finished run of the demo videos (no captions, no clip files: fast)."""
    out = tmp_path_factory.mktemp("search_run") / "out"
    cfg = RunConfig()
    cfg.cut.mode = "none"
    run([str(demo_videos)], out, cfg, progress=False)
    return out


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run (tests write its index)."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out, ignore=shutil.ignore_patterns(S.SEARCH_DIR))
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("search_cache")


def _search(run_dir: Path, cache: Path, *extra: str) -> dict:
    args = ["search", str(run_dir), QUERY, "--models", "tiny", "--cache-dir", str(cache)]
    result = runner.invoke(APP, [*args, "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_search_builds_index_and_scores_are_exact_cosines(run_dir, cache):
    out = _search(run_dir, cache, "--top", "5")
    folder = run_dir / S.SEARCH_DIR
    meta = json.loads((folder / S.META_FILE).read_text())
    ids = json.loads((folder / S.IDS_FILE).read_text())
    clips = read_clips(run_dir / "clips.parquet")
    assert (folder / meta["index_file"]).is_file()
    assert meta["index_file"] == (S.INDEX_FILE if S._faiss() else S.MATRIX_FILE)
    assert sorted(ids) == sorted(c.clip_id for c in clips) and meta["clips"] == len(ids)
    assert meta["model"] == S.TINY_VICLIP and meta["dim"] == 16 and meta["created"]
    assert not list(folder.glob(".*.tmp-*"))  # written atomically
    assert out["index_built"] and out["indexed"] == len(ids)
    hits = out["hits"]
    assert len(hits) == min(5, len(ids))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # brute force over the saved embeddings
    vectors = S.index_vectors(S.load_index(folder, meta["index_file"]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    lm = S.load_model(S.TINY_VICLIP, str(cache), device="cpu")
    cos = vectors @ S.embed_text(lm, QUERY)
    want = np.argsort(-cos, kind="stable")[: len(hits)]
    assert np.allclose(scores, cos[want], atol=1e-5)
    by_id = {c.clip_id: c for c in clips}
    for h in hits:
        assert h["score"] == pytest.approx(cos[ids.index(h["clip_id"])], abs=1e-5)
        assert h["video_id"] == by_id[h["clip_id"]].video_id
        assert h["start"] == by_id[h["clip_id"]].start and h["end"] == by_id[h["clip_id"]].end


def test_second_search_reuses_the_index_and_rebuild_reembeds(run_dir, cache, monkeypatch):
    first = _search(run_dir, cache)
    assert first["index_built"]
    embed = S.embed_clips

    def boom(*a, **k):
        raise AssertionError("re-embedded although the index is current")

    monkeypatch.setattr(S, "embed_clips", boom)
    second = _search(run_dir, cache)
    assert not second["index_built"] and second["hits"] == first["hits"]

    calls = []
    monkeypatch.setattr(S, "embed_clips", lambda *a, **k: calls.append(1) or embed(*a, **k))
    third = _search(run_dir, cache, "--rebuild")
    assert calls == [1] and third["index_built"]
    assert [h["clip_id"] for h in third["hits"]] == [h["clip_id"] for h in first["hits"]]


def test_changed_clip_set_or_model_rebuilds(run_dir, cache, monkeypatch):
    _search(run_dir, cache)
    folder = run_dir / S.SEARCH_DIR
    meta = json.loads((folder / S.META_FILE).read_text())
    meta["clip_set"] = "something else"
    (folder / S.META_FILE).write_text(json.dumps(meta))
    assert _search(run_dir, cache)["index_built"]
    meta = json.loads((folder / S.META_FILE).read_text())
    meta["model"] = "OpenGVLab/ViCLIP/other.pth"
    (folder / S.META_FILE).write_text(json.dumps(meta))
    assert _search(run_dir, cache)["index_built"]


def test_table_output_and_matrix_fallback(run_dir, cache, monkeypatch):
    monkeypatch.setattr(S, "_faiss", lambda: None)  # as without faiss installed
    args = ["search", str(run_dir), QUERY, "--models", "tiny", "--cache-dir", str(cache)]
    result = runner.invoke(APP, [*args, "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "score" in result.stdout and "tiny" in result.stdout
    meta = json.loads((run_dir / S.SEARCH_DIR / S.META_FILE).read_text())
    assert meta["index_file"] == S.MATRIX_FILE and meta["backend"] == "matrix"


@pytest.mark.allow_error_logs
def test_missing_model_or_run_exits_2(run_dir, tmp_path, cache):
    args = ["search", str(run_dir), QUERY, "--viclip", str(tmp_path / "nope.pth")]
    result = runner.invoke(APP, [*args, "--cache-dir", str(cache)])
    assert result.exit_code == 2
    args = ["search", str(tmp_path / "empty"), QUERY, "--models", "tiny"]
    assert runner.invoke(APP, [*args, "--cache-dir", str(cache)]).exit_code == 2
    assert not (run_dir / S.SEARCH_DIR).exists()


@pytest.mark.parametrize("use_faiss", [False, True])
def test_pure_index_matches_numpy_topk(use_faiss):
    if use_faiss and S._faiss() is None:
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((4, 32)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    index = S.build_index(x, use_faiss=use_faiss)
    assert index.ntotal == 500 and index.d == 32
    scores, pos = S.search_index(index, q, 10)
    sims = q @ x.T
    want = np.argsort(-sims, axis=1)[:, :10]
    assert pos.shape == (4, 10) and (pos == want).all()
    assert np.allclose(scores, np.take_along_axis(sims, want, axis=1), atol=1e-5)
    s1, p1 = S.search_index(index, q[0], 10)  # one query: 1-D results
    assert p1.shape == (10,) and (p1 == want[0]).all() and np.allclose(s1, scores[0])
    s_all, p_all = S.search_index(index, q[0], 10_000)  # k beyond the size: all rows
    assert len(p_all) == 500 and sorted(p_all.tolist()) == list(range(500))
    assert np.all(np.diff(s_all) <= 1e-6)
    assert np.allclose(S.index_vectors(index), x)
    empty = S.build_index(np.zeros((0, 32), np.float32), use_faiss=use_faiss)
    s0, p0 = S.search_index(empty, q[0], 5)
    assert s0.shape == (0,) and p0.shape == (0,)


def test_index_save_and_load_round_trip(tmp_path):
    x = np.eye(6, 8, dtype=np.float32)
    for use_faiss in [False, True] if S._faiss() else [False]:
        index = S.build_index(x, use_faiss=use_faiss)
        name = S.save_index(index, tmp_path / str(use_faiss))
        back = S.load_index(tmp_path / str(use_faiss), name)
        assert np.allclose(S.index_vectors(back), x)
        _, pos = S.search_index(back, x[3], 1)
        assert pos.tolist() == [3]


def test_each_clip_is_found_first_by_its_own_caption(run_dir, cache, monkeypatch):
    """An index of known embeddings: every clip's caption finds that clip first, through the
    real index, its saved ids and the CLI (tiny models are random, so embeddings are given)."""
    clips = read_clips(run_dir / "clips.parquet")
    assert len(clips) >= 3
    rng = np.random.default_rng(0)
    dim = 16
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]  # orthonormal rows
    known = {c.clip_id: basis[i % dim] * (1 if i < dim else -1) for i, c in enumerate(clips)}
    captions = {f"the clip {cid} in words": cid for cid in known}

    def fake_embed_clips(out_dir, clips_, lm, batch_size=32):
        ids = [c.clip_id for c in reversed(clips_)]  # index order differs from table order
        return ids, np.stack([known[i] for i in ids]).astype(np.float32), []

    def fake_embed_text(lm, query):
        vec = known[captions[query]] + 0.05 * rng.normal(size=dim)  # a noisy copy
        return (vec / np.linalg.norm(vec)).astype(np.float32)

    monkeypatch.setattr(S, "embed_clips", fake_embed_clips)
    monkeypatch.setattr(S, "embed_text", fake_embed_text)
    for caption, cid in captions.items():
        args = ["search", str(run_dir), caption, "--models", "tiny", "--cache-dir", str(cache)]
        result = runner.invoke(APP, [*args, "--json", "--top", "3"])
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)["hits"]
        assert hits[0]["clip_id"] == cid and hits[0]["score"] > 0.8
        assert hits[1]["score"] < 0.5
