"""Tests of zero-shot ViCLIP evaluation: metrics, WiSE-FT and the `internvid eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from internvid.evaluate import (
    KINETICS_TEMPLATES,
    TEMPLATE_SETS,
    classification_metrics,
    load_eval_set,
    retrieval_metrics,
    wise_ft,
)


def _one_hot(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_retrieval_known_ranks() -> None:
    video = torch.eye(3)  # video i = e_i
    # texts 0,1 -> video 0; text 2 -> video 1; text 3 -> video 2
    text = _one_hot(
        [
            [1.0, 0.0, 0.0],  # t2v rank 1
            [0.2, 0.9, 0.0],  # its video 0 scores 0.2 < 0.9: rank 2
            [0.0, 0.5, 0.5],  # tie with video 2: optimistic rank 1
            [0.9, 0.8, 0.1],  # rank 3
        ]
    )
    t2v = [0, 0, 1, 2]
    m = retrieval_metrics(video, text, t2v)
    assert m["t2v_r1"] == pytest.approx(50.0)
    assert m["t2v_r5"] == m["t2v_r10"] == 100.0
    assert m["t2v_medr"] == 1.5 and m["t2v_meanr"] == pytest.approx(7 / 4)
    # V2T: video 0 scores texts (1, .2, 0, .9): best own (text 0) rank 1.
    # video 1 scores (0, .9, .5, .8): own text 2 (.5) has 2 above: rank 3.
    # video 2 scores (0, 0, .5, .1): own text 3 (.1) has text 2 above: rank 2.
    assert m["v2t_r1"] == pytest.approx(100 / 3)
    assert m["v2t_medr"] == 2.0 and m["v2t_meanr"] == pytest.approx(2.0)
    assert m["v2t_r5"] == 100.0
    assert m["num_videos"] == 3 and m["num_texts"] == 4
    assert m["rsum"] == pytest.approx(
        sum(m[f"{d}_r{k}"] for d in ("t2v", "v2t") for k in (1, 5, 10))
    )


def test_retrieval_chunking_is_exact() -> None:
    gen = torch.Generator().manual_seed(0)
    video = torch.nn.functional.normalize(torch.randn(37, 8, generator=gen), dim=-1)
    t2v = np.repeat(np.arange(37), 3)[:100]  # several captions per video; the last has fewer
    text = torch.nn.functional.normalize(
        video[t2v] + 0.8 * torch.randn(len(t2v), 8, generator=gen), dim=-1
    )
    text[5] = text[4]  # exact duplicate captions: ties
    full = retrieval_metrics(video, text, t2v, chunk=10_000)
    for chunk in (1, 7, 36):
        assert retrieval_metrics(video, text, t2v, chunk=chunk) == full
    assert retrieval_metrics(video.numpy(), text.numpy(), list(t2v), chunk=5) == full


def test_retrieval_perfect_and_errors() -> None:
    video = torch.eye(4)
    m = retrieval_metrics(video, video.clone(), [0, 1, 2, 3], chunk=3)
    assert m["t2v_r1"] == m["v2t_r1"] == 100.0 and m["t2v_meanr"] == 1.0
    with pytest.raises(ValueError):
        retrieval_metrics(video, video, [0, 1, 2])
    with pytest.raises(ValueError):
        retrieval_metrics(video, video, [0, 1, 2, 4])


def test_classification_metrics() -> None:
    classes = torch.eye(6)
    video = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # label 0: rank 1
            [0.0, 0.5, 0.9, 0.8, 0.7, 0.6],  # label 1: rank 5 (top-5, not top-1)
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],  # label 5: rank 6
            [0.5, 0.5, 0.0, 0.0, 0.0, 0.0],  # label 1: tie with class 0 -> rank 1
        ]
    )
    m = classification_metrics(video, classes, [0, 1, 5, 1], chunk=3)
    assert m["top1"] == 50.0 and m["top5"] == 75.0 and m["mean_top1_top5"] == 62.5
    assert m["num_classes"] == 6
    with pytest.raises(ValueError):
        classification_metrics(video, classes, [0, 1, 6, 1])


def test_wise_ft_arithmetic_and_exclusion() -> None:
    key_t = "vision_encoder.temporal_positional_embedding"
    a = {"w": torch.full((2,), 2.0), key_t: torch.ones(1, 8, 4), "n": torch.tensor(3)}
    a["h"] = torch.ones(2, dtype=torch.float16)
    b = {"w": torch.full((2,), 4.0), key_t: torch.zeros(1, 8, 4), "n": torch.tensor(9)}
    b["h"] = torch.full((2,), 3.0)
    out = wise_ft(a, b, 0.25)
    assert torch.equal(out["w"], torch.full((2,), 2.5))
    assert torch.equal(out[key_t], a[key_t])  # excluded
    assert int(out["n"]) == 3  # integer buffers are kept
    assert out["h"].dtype == torch.float16 and torch.equal(out["h"], torch.full((2,), 1.5).half())
    assert torch.equal(wise_ft(a, b, 0.0)["w"], a["w"])
    assert torch.equal(wise_ft(a, b, 1.0, exclude=())[key_t], b[key_t])
    assert torch.equal(wise_ft(a, {"w": torch.ones(3)}, 0.5)["w"], a["w"])  # shape mismatch
    with pytest.raises(ValueError):
        wise_ft(a, b, 1.5)


def test_load_eval_set_groups_captions(tmp_path: Path) -> None:
    ann = tmp_path / "ann.csv"
    ann.write_text('video,caption\na.mp4,one\nb.mp4,two\na.mp4,three\nc.mp4,"[""x"", ""y""]"\n')
    data = load_eval_set(ann)
    assert [p.name for p in data.videos] == ["a.mp4", "b.mp4", "c.mp4"]
    assert data.texts == ["one", "two", "three", "x", "y"]
    assert data.text_to_video == [0, 1, 0, 2, 2]
    assert all(p.parent == tmp_path for p in data.videos)


def test_kinetics_templates() -> None:
    assert len(KINETICS_TEMPLATES) == 28 and len(set(KINETICS_TEMPLATES)) == 28
    assert all(t.count("{}") == 1 for t in KINETICS_TEMPLATES)
    assert KINETICS_TEMPLATES[:2] == ("A photo of action {}.", "A video of action {}.")
    assert KINETICS_TEMPLATES[-1] == "A demonstration of a person practicing {}."
    clip = TEMPLATE_SETS["clip"]
    assert len(clip) == 28 and clip[0] == "a photo of {}." and "a video of a person {}." in clip


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from internvid.media.synth import Segment, SynthVideo, make_video
    from internvid.models.tiny import build_tiny_viclip

    root = tmp_path_factory.mktemp("eval")
    build_tiny_viclip(root)
    sources = {"red": "color=c=red", "bars": "testsrc2", "noise": "mandelbrot"}
    for name, source in sources.items():
        spec = SynthVideo(name, (Segment(source, 1.0),), fps=10, width=64, height=64, audio=False)
        make_video(spec, root / "videos" / f"{name}.mp4")
    rows = [
        {"video": "videos/red.mp4", "caption": "a red screen"},
        {"video": "videos/red.mp4", "caption": "something red"},
        {"video": "videos/bars.mp4", "captions": ["colour bars", "a test pattern"]},
        {"video": str(root / "videos" / "noise.mp4"), "caption": "a fractal"},
    ]
    (root / "ret.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = [("red", "red"), ("bars", "test pattern"), ("noise", "fractal")]
    cls = [{"video": f"videos/{v}.mp4", "label": lab} for v, lab in labels]
    (root / "cls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cls))
    return root


def _app() -> typer.Typer:
    from internvid.evaluate import register

    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        pass

    register(app)
    return app


def test_cli_retrieval(eval_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    args = ["eval", str(eval_dir / "ret.jsonl"), "--model", str(eval_dir / "viclip-tiny.pth")]
    args += ["--arch", "tiny", "--out", str(out), "--chunk", "2", "--batch-size", "2"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    info = json.loads(out.read_text())
    m = info["metrics"]
    assert info["task"] == "retrieval" and m["num_videos"] == 3 and m["num_texts"] == 5
    for d in ("t2v", "v2t"):
        for k in (1, 5, 10):
            assert 0.0 <= m[f"{d}_r{k}"] <= 100.0
        assert m[f"{d}_r10"] == 100.0  # only 3 videos / 5 texts
        assert 1.0 <= m[f"{d}_medr"] <= 5 and 1.0 <= m[f"{d}_meanr"] <= 5


def test_cli_classification_wise_ft(eval_dir: Path, tmp_path: Path) -> None:
    from internvid.models.tiny import build_tiny_viclip

    other = build_tiny_viclip(tmp_path, seed=1)
    out = tmp_path / "cls.json"
    args = ["eval", str(eval_dir / "cls.jsonl"), "-m", str(eval_dir / "viclip-tiny.pth")]
    args += ["--arch", "tiny", "-o", str(out), "--sampling", "demo", "--templates", "single"]
    args += ["--wise-ft", str(other), "--alpha", "0.5"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    info = json.loads(out.read_text())
    m = info["metrics"]
    assert info["task"] == "classification" and info["wise_ft"]["alpha"] == 0.5
    assert m["num_classes"] == 3 and m["top5"] == 100.0
    assert 0.0 <= m["top1"] <= 100.0 and m["mean_top1_top5"] == (m["top1"] + 100.0) / 2


@pytest.mark.allow_error_logs
def test_cli_missing_video(eval_dir: Path, tmp_path: Path) -> None:
    ann = tmp_path / "bad.jsonl"
    ann.write_text(json.dumps({"video": "nope.mp4", "caption": "x"}) + "\n")
    args = ["eval", str(ann), "-m", str(eval_dir / "viclip-tiny.pth"), "--arch", "tiny"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2


@pytest.mark.parametrize("mode", ["middle", "demo"])
def test_decode_clip_matches_full_decode(eval_dir: Path, mode: str) -> None:
    from internvid.evaluate import _decode_all, decode_clip
    from internvid.models.preprocess import sample_indices

    path = eval_dir / "videos" / "bars.mp4"
    clip = decode_clip(path, 8, mode, 32)
    assert clip.shape == (8, 3, 32, 32)
    full = _decode_all(path, lambda n: sample_indices(n, 8, mode), 32)  # type: ignore[arg-type]
    assert torch.equal(clip, full)


def _naive_ranks(sims: np.ndarray, text_to_video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-matrix reference: rank = 1 + candidates scoring strictly higher (ties optimistic)."""
    n_videos, n_texts = sims.shape
    t2v = np.array([1 + (sims[:, j] > sims[text_to_video[j], j]).sum() for j in range(n_texts)])
    v2t = []
    for i in range(n_videos):
        own = np.flatnonzero(text_to_video == i)
        if len(own):
            v2t.append(min(1 + (sims[i] > sims[i, j]).sum() for j in own))
    return t2v, np.array(v2t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_equals_naive_full_matrix_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_videos, dim = 40, 8
    # several captions per video, some videos without any, and ties from quantised embeddings
    text_to_video = rng.integers(0, n_videos - 3, size=120)
    videos = np.round(rng.normal(size=(n_videos, dim)), 0).astype(np.float32)
    texts = np.round(videos[text_to_video] + rng.normal(size=(120, dim)), 0).astype(np.float32)
    texts[5] = texts[4]  # identical captions
    sims = videos @ texts.T
    assert (sims[:, :, None] == sims[:, None, :]).any()  # there are ties
    t2v, v2t = _naive_ranks(sims, text_to_video)
    got = retrieval_metrics(videos, texts, text_to_video, chunk=7)
    for name, ranks in (("t2v", t2v), ("v2t", v2t)):
        for k in (1, 5, 10):
            assert got[f"{name}_r{k}"] == pytest.approx(100.0 * (ranks <= k).mean())
        assert got[f"{name}_medr"] == pytest.approx(float(np.median(ranks)))
        assert got[f"{name}_meanr"] == pytest.approx(float(ranks.mean()))


def test_classification_equals_naive_reference() -> None:
    rng = np.random.default_rng(3)
    videos = np.round(rng.normal(size=(200, 6)), 0).astype(np.float32)
    classes = np.round(rng.normal(size=(12, 6)), 0).astype(np.float32)
    labels = rng.integers(0, 12, size=200)
    sims = videos @ classes.T
    ranks = 1 + (sims > sims[np.arange(200), labels][:, None]).sum(1)
    got = classification_metrics(videos, classes, labels, chunk=13)
    assert got["top1"] == pytest.approx(100.0 * (ranks <= 1).mean())
    assert got["top5"] == pytest.approx(100.0 * (ranks <= 5).mean())
    assert got["mean_top1_top5"] == pytest.approx((got["top1"] + got["top5"]) / 2)
