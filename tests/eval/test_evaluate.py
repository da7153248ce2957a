"""Tests of zero-shot ViCLIP evaluation: metrics, WiSE-FT and the `internvid eval` command."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from internvid.eval.encode import average_prompts
from internvid.eval.metrics import classification_metrics, retrieval_metrics
from internvid.eval.prompts import (
    KINETICS_TEMPLATES,
    OFFICIAL_TEMPLATES,
    TEMPLATE_SETS,
    class_prompts,
    load_templates,
    normalise_texts,
)
from internvid.eval.sets import load_eval_set, resolve_labels
from internvid.eval.zero_shot import evaluate
from internvid.models.resize import eval_frames_to_tensor, resize_uint8
from internvid.models.text import pre_text
from internvid.models.wise_ft import wise_ft


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
    from internvid.tiny.viclip import build_tiny_viclip

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
    from internvid.cli.eval import register

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
    # the official protocol by default; dual softmax reported beside the plain cosine
    assert info["text_norm"] == "official" and info["resize"] == "bicubic"
    assert info["sampling"] == "middle" and info["dsl_temperature"] == 1.0
    assert set(info["metrics_dsl"]) == set(m) and info["metrics_dsl"]["num_texts"] == 5


def test_evaluate_matches_a_hand_wired_official_run(eval_dir: Path, tmp_path: Path) -> None:
    """`evaluate` on a JSFusion-format csv equals the pieces run by hand: pre_text'ed captions,
    bicubic frames, plain and dual-softmax metrics of the same embeddings."""
    from internvid.eval.encode import decode_clip, encode_texts
    from internvid.eval.model import load_model

    ann = tmp_path / "MSRVTT_JSFUSION_test.csv"
    ann.write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr0,red,A RED screen!\nret1,msr1,bars,colour-bars / test pattern\n"
        "ret2,msr2,noise,a fractal (mandelbrot)\n"
    )
    ckpt = eval_dir / "viclip-tiny.pth"
    got = evaluate(ann, ckpt, arch="tiny", videos=eval_dir / "videos", chunk=2)
    model = load_model(ckpt, "tiny")
    clips = torch.stack(
        [
            decode_clip(eval_dir / "videos" / f"{v}.mp4", 8, "middle", 32)
            for v in ("red", "bars", "noise")
        ]
    )
    with torch.no_grad():
        video = model.encode_video(clips, normalize=True).float()
    captions = ["a red screen", "colour bars test pattern", "a fractal mandelbrot"]
    assert normalise_texts(["A RED screen!", "colour-bars / test pattern"]) == captions[:2]
    text = encode_texts(model, captions)
    assert got["metrics"] == retrieval_metrics(video, text, [0, 1, 2])
    assert got["metrics_dsl"] == retrieval_metrics(video, text, [0, 1, 2], dual_softmax=True)
    raw = evaluate(ann, ckpt, arch="tiny", videos=eval_dir / "videos", text_norm="raw")
    raw_text = encode_texts(
        model, ["A RED screen!", "colour-bars / test pattern", "a fractal (mandelbrot)"]
    )
    assert raw["metrics"] == retrieval_metrics(video, raw_text, [0, 1, 2])


def test_cli_classification_wise_ft(eval_dir: Path, tmp_path: Path) -> None:
    from internvid.tiny.viclip import build_tiny_viclip

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
    assert info["templates"] == "single" and info["num_templates"] == 1
    assert info["metrics_dsl"]["top5"] == 100.0


def test_classification_defaults_are_official(eval_dir: Path) -> None:
    from internvid.eval.encode import class_embeddings, decode_clip, encode_texts
    from internvid.eval.model import load_model

    ckpt = eval_dir / "viclip-tiny.pth"
    got = evaluate(eval_dir / "cls.jsonl", ckpt, arch="tiny")
    assert got["templates"] == "official" and got["num_templates"] == 16
    assert got["prompt_average"] == "official" and got["text_norm"] == "official"
    model = load_model(ckpt, "tiny")
    names = ["fractal", "red", "test pattern"]  # the sorted distinct labels
    # by hand: every prompt pre_text'ed and encoded, the 16 cosines of each class averaged
    prompts = [pre_text(t.format(c)) for c in names for t in OFFICIAL_TEMPLATES]
    per_prompt = encode_texts(model, prompts).reshape(3, 16, -1)
    clips = torch.stack(
        [
            decode_clip(eval_dir / "videos" / f"{v}.mp4", 8, "middle", 32)
            for v in ("red", "bars", "noise")
        ]
    )
    with torch.no_grad():
        video = model.encode_video(clips, normalize=True).float()
    cos = torch.einsum("nd,cpd->ncp", video, per_prompt).mean(-1)  # (N, C) mean prompt cosine
    emb = class_embeddings(model, names, OFFICIAL_TEMPLATES)
    assert torch.allclose(video @ emb.T, cos, atol=1e-6)
    labels = [1, 2, 0]  # red, test pattern, fractal
    assert got["metrics"] == classification_metrics(video, emb, labels)
    assert got["metrics_dsl"] == classification_metrics(video, emb, labels, dual_softmax=True)


@pytest.mark.allow_error_logs
def test_cli_missing_video(eval_dir: Path, tmp_path: Path) -> None:
    ann = tmp_path / "bad.jsonl"
    ann.write_text(json.dumps({"video": "nope.mp4", "caption": "x"}) + "\n")
    args = ["eval", str(ann), "-m", str(eval_dir / "viclip-tiny.pth"), "--arch", "tiny"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2


@pytest.mark.parametrize("mode", ["middle", "demo"])
def test_decode_clip_matches_full_decode(eval_dir: Path, mode: str) -> None:
    from internvid.eval.encode import _decode_all, decode_clip
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


# ------------------------------------------------------------- the official formulas, written out


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _official_itm_recalls(
    i2t: np.ndarray, t2i: np.ndarray, txt2img: list[int], img2txt: list[list[int]]
) -> dict[str, float]:
    """The official `itm_eval`: 0-based position in the descending argsort, best over a
    video's captions; R@K = share of positions < K."""
    v2t = []
    for i, score in enumerate(i2t):
        order = np.argsort(score)[::-1]
        v2t.append(min(int(np.where(order == j)[0][0]) for j in img2txt[i]))
    t2v = []
    for i, score in enumerate(t2i):
        order = np.argsort(score)[::-1]
        t2v.append(int(np.where(order == txt2img[i])[0][0]))
    out = {}
    for name, ranks in (("v2t", np.array(v2t)), ("t2v", np.array(t2v))):
        for k in (1, 5, 10):
            out[f"{name}_r{k}"] = 100.0 * float((ranks < k).mean())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plain_and_dual_softmax_recalls_equal_the_official_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_videos, dim = 30, 6
    caps_per_video = rng.integers(1, 5, size=n_videos)  # 1-4 captions each (MSVD-like)
    txt2img = [v for v in range(n_videos) for _ in range(caps_per_video[v])]
    rng.shuffle(txt2img)
    img2txt = [[t for t, v in enumerate(txt2img) if v == i] for i in range(n_videos)]
    # unnormalised, so scores span several units and the softmax reorders candidates
    videos = (1.5 * rng.normal(size=(n_videos, dim))).astype(np.float32)
    texts = (videos[txt2img] + 1.5 * rng.normal(size=(len(txt2img), dim))).astype(np.float32)
    sims = videos.astype(np.float64) @ texts.astype(np.float64).T  # (V, T): the official i2t
    plain = _official_itm_recalls(sims, sims.T, txt2img, img2txt)
    # evaluation_video_clip: i2t * softmax(i2t, dim=0) and i2t.T * softmax(i2t.T, dim=0)
    dsl = _official_itm_recalls(
        sims * _softmax(sims, 0), sims.T * _softmax(sims.T, 0), txt2img, img2txt
    )
    assert plain != dsl  # the two protocols differ on these matrices
    for chunk in (7, 10_000):
        got = retrieval_metrics(videos, texts, txt2img, chunk=chunk)
        got_dsl = retrieval_metrics(videos, texts, txt2img, chunk=chunk, dual_softmax=True)
        for key in plain:
            assert got[key] == pytest.approx(plain[key]), key
            assert got_dsl[key] == pytest.approx(dsl[key]), key
    # a temperature sharpens the softmax: T -> 0 scales each score by its row/column winner
    hot = retrieval_metrics(videos, texts, txt2img, dual_softmax=True, temperature=0.5)
    ref = _official_itm_recalls(
        sims * _softmax(sims / 0.5, 0), sims.T * _softmax(sims.T / 0.5, 0), txt2img, img2txt
    )
    assert all(hot[k] == pytest.approx(ref[k]) for k in ref)


def test_classification_dual_softmax_equals_the_official_formula() -> None:
    rng = np.random.default_rng(4)
    videos = (2 * rng.normal(size=(120, 5))).astype(np.float32)
    classes = (2 * rng.normal(size=(9, 5))).astype(np.float32)
    labels = rng.integers(0, 9, size=120)
    s = videos.astype(np.float64) @ classes.astype(np.float64).T
    scores = s * _softmax(s, 0)  # softmax over the clips, per class
    ranks = 1 + (scores > scores[np.arange(120), labels][:, None]).sum(1)
    got = classification_metrics(videos, classes, labels, chunk=11, dual_softmax=True)
    assert got["top1"] == pytest.approx(100.0 * (ranks <= 1).mean())
    assert got["top5"] == pytest.approx(100.0 * (ranks <= 5).mean())
    plain = classification_metrics(videos, classes, labels)
    assert (plain["top1"], plain["top5"]) != (got["top1"], got["top5"])


# ------------------------------------------------------------------------------- texts, prompts


PRE_TEXT_TABLE = [
    ("A man, riding a horse.", None, "a man riding a horse"),
    ("Someone's dog (a puppy) runs!", None, "someones dog a puppy runs"),
    ("A well-known T-shirt", None, "a well known t shirt"),
    ("cats/dogs playing", None, "cats dogs playing"),
    ("<person> kicks a ball", None, "person kicks a ball"),
    ("<PERSON>-<person> hug", None, "person person hug"),  # lower-cased first
    ("two   spaces  here ", None, "two spaces here"),
    ("a - b", None, "a b"),  # the hyphen's spaces collapse
    ("Q: what? #1 ~approx; *star*", None, "q what 1 approx star"),
    ('"quoted" text', None, "quoted text"),
    ("Hello... world!!!", None, "hello world"),
    ("trailing newline\n", None, "trailing newline"),
    ("a\tb", None, "a\tb"),  # one tab is not a run of whitespace: kept, as the official regex
    ("50% off & more [x] {y} @home", None, "50% off & more [x] {y} @home"),  # not in the set
    ("État: café", None, "état café"),
    ("one two three four", 2, "one two"),
    ("one, two, three", 10, "one two three"),
    ("one two three", 0, "one two three"),  # 0: no cut
]


@pytest.mark.parametrize(("text", "max_words", "expected"), PRE_TEXT_TABLE)
def test_pre_text_table(text: str, max_words: int | None, expected: str) -> None:
    assert pre_text(text, max_words) == expected


def test_normalise_texts_modes() -> None:
    texts = [t for t, _, _ in PRE_TEXT_TABLE]
    assert normalise_texts(texts) == [pre_text(t) for t in texts]
    assert normalise_texts(texts, "raw") == texts
    with pytest.raises(ValueError):
        normalise_texts(texts, "lower")


def test_official_templates_and_prompts() -> None:
    assert OFFICIAL_TEMPLATES == (
        "a photo of action {}",
        "a picture of action {}",
        "Human action of {}",
        "{}, an action",
        "{} this is an action",
        "{}, a video of action",
        "Playing action of {}",
        "{}",
        "Playing a kind of action, {}",
        "Doing a kind of action, {}",
        "Look, the human is {}",
        "Can you recognize the action of {}?",
        "Video classification of {}",
        "A video of {}",
        "The man is {}",
        "The woman is {}",
    )
    assert load_templates("official") is OFFICIAL_TEMPLATES and TEMPLATE_SETS["official"]
    assert inspect.signature(evaluate).parameters["templates"].default == "official"
    prompts = class_prompts(
        ["passing American football (in game)", "air drumming"], OFFICIAL_TEMPLATES
    )
    assert len(prompts) == 32  # class-major
    assert prompts[3] == "passing american football in game an action"
    assert prompts[11] == "can you recognize the action of passing american football in game"
    assert prompts[16 + 7] == "air drumming"
    raw = class_prompts(["air drumming"], OFFICIAL_TEMPLATES, "raw")
    assert raw[11] == "Can you recognize the action of air drumming?"
    with pytest.raises(ValueError, match="neither"):
        load_templates("no-such-set")


def test_prompt_averaging_official_is_the_mean_cosine() -> None:
    gen = torch.Generator().manual_seed(0)
    prompts = torch.nn.functional.normalize(torch.randn(5, 16, 8, generator=gen), dim=-1)
    # class 0's prompts agree (long mean), class 1's scatter (short mean)
    prompts[0] = torch.nn.functional.normalize(prompts[0] * 0.1 + prompts[0, :1], dim=-1)
    video = torch.nn.functional.normalize(torch.randn(40, 8, generator=gen), dim=-1)
    official = average_prompts(prompts, "official")
    mean_cos = torch.einsum("nd,cpd->ncp", video, prompts).mean(-1)
    assert torch.allclose(video @ official.T, mean_cos, atol=1e-6)
    renorm = average_prompts(prompts, "renorm")
    assert torch.allclose(renorm.norm(dim=-1), torch.ones(5))
    assert not torch.allclose(official.norm(dim=-1), torch.ones(5))  # not renormalised
    # and that changes decisions: renormalising favours the class with scattered prompts
    assert not torch.equal((video @ official.T).argmax(1), (video @ renorm.T).argmax(1))
    with pytest.raises(ValueError):
        average_prompts(prompts, "max")


def test_resolve_labels_with_class_lists() -> None:
    names = ["abseiling", "air drumming", "passing American football (in game)"]
    got = resolve_labels(
        ["air_drumming", '"abseiling"', "Passing american football (in game)", 2], names
    )
    assert got == (names, [1, 0, 2, 2])
    assert resolve_labels(["b", "a", "b"]) == (["a", "b"], [1, 0, 1])
    with pytest.raises(ValueError, match="zumba"):
        resolve_labels(["zumba"], names)


# ------------------------------------------------------------------------------------- resizing


def _keys_cubic(x: float, a: float) -> float:
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bicubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """torch/torchvision bicubic without antialias, as documented: half-pixel centres
    (align_corners=False), Keys' a = -0.75, 4 taps, edge pixels repeated; the source position in
    float32 as the kernel computes it."""
    w = np.zeros((n_out, n_in))
    scale = np.float32(n_in) / np.float32(n_out)
    for i in range(n_out):
        src = np.float32(scale * np.float32(i + 0.5) - np.float32(0.5))
        i0 = min(int(np.floor(src)), n_in - 1)
        t = float(min(max(np.float32(src - np.float32(i0)), 0.0), 1.0))
        for k in range(-1, 3):
            w[i, min(max(i0 + k, 0), n_in - 1)] += _keys_cubic(k - t, -0.75)
    return w


def _bicubic_aa_weights(n_in: int, n_out: int) -> np.ndarray:
    """Antialiased bicubic (PIL's resampling, which torch's antialias=True follows): a = -0.5,
    the filter stretched by the downscale factor, taps within the support, weights normalised."""
    w = np.zeros((n_out, n_in))
    scale = n_in / n_out
    support, inv = (2.0 * scale, 1.0 / scale) if scale >= 1 else (2.0, 1.0)
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        taps = np.array([_keys_cubic((j - centre + 0.5) * inv, -0.5) for j in range(lo, hi)])
        w[i, lo:hi] = taps / taps.sum()
    return w


def test_resize_uint8_exact_values() -> None:
    # 4 -> 2 columns: taps (v0, v0, v1, v2) and (v1, v2, v3, v3), weights
    # (-0.09375, 0.59375, 0.59375, -0.09375): 14.5 and 49.5, rounded half to even
    row = torch.tensor([[[0, 32, 48, 48]]], dtype=torch.uint8)  # (1, 1, 4)
    assert resize_uint8(row, (1, 2)).tolist() == [[[14, 50]]]
    # overshoot is clamped: (0, 0, 255, 255) -> -23.9 and 278.9
    edge = torch.tensor([[0, 0, 255, 255]], dtype=torch.uint8)
    assert resize_uint8(edge, (1, 2)).tolist() == [[0, 255]]
    frames = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    assert torch.equal(resize_uint8(frames, (5, 7)), frames)  # same size: unchanged
    assert resize_uint8(frames, 4).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError):
        resize_uint8(frames.float(), 4)


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize(
    ("h", "w", "oh", "ow"),
    [(37, 53, 224, 224), (480, 640, 224, 224), (300, 200, 224, 224), (7, 9, 20, 3)],
)
def test_resize_uint8_matches_reference(h: int, w: int, oh: int, ow: int, antialias: bool) -> None:
    rng = np.random.default_rng(h * w)
    img = rng.integers(0, 256, size=(3, h, w)).astype(np.uint8)
    weights = _bicubic_aa_weights if antialias else _bicubic_weights
    ref = weights(h, oh) @ img.astype(np.float64) @ weights(w, ow).T  # (3, oh, ow)
    ref = np.clip(ref, 0, 255)
    expected = np.rint(ref)  # clamp, round half to even
    got = resize_uint8(torch.from_numpy(img), (oh, ow), antialias=antialias).numpy()
    diff = got.astype(int) - expected.astype(int)
    # float32 arithmetic may land on the other side of a .5 boundary, nowhere else
    near_half = np.abs(ref - np.floor(ref) - 0.5) < 0.02
    assert np.abs(diff).max() <= 1
    assert not (diff != 0)[~near_half].any()
    assert (diff != 0).mean() < 0.002


def test_eval_frames_to_tensor_modes() -> None:
    from internvid.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, frames_to_tensor

    grey = np.full((48, 64, 3), 128, dtype=np.uint8)
    x = eval_frames_to_tensor([grey, grey], size=32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    for c in range(3):
        want = (np.float32(128) / np.float32(255) - np.float32(IMAGENET_MEAN[c])) / np.float32(
            IMAGENET_STD[c]
        )
        assert torch.all(x[:, c] == torch.tensor(want))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(30, 40, 3)).astype(np.uint8)
    bicubic = eval_frames_to_tensor(frame, 16)
    resized = resize_uint8(torch.from_numpy(frame).permute(2, 0, 1), 16).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert torch.allclose(bicubic[0], (resized - mean) / torch.tensor(IMAGENET_STD).view(3, 1, 1))
    assert torch.equal(eval_frames_to_tensor(frame, 16, "bilinear"), frames_to_tensor(frame, 16))
    assert not torch.allclose(bicubic, frames_to_tensor(frame, 16))
    with pytest.raises(ValueError):
        eval_frames_to_tensor(frame, 16, "lanczos")


# --------------------------------------------------------------------------------- WiSE-FT, CLIP


def test_wise_ft_with_a_clip_folder(eval_dir: Path, tmp_path: Path) -> None:
    """`--wise-ft CLIP`: the official zero-shot scripts' average with the CLIP initialisation."""
    transformers = pytest.importorskip("transformers")
    from internvid.eval.model import load_model
    from internvid.models.viclip import ViCLIPConfig, read_state_dict
    from internvid.train import clip_to_viclip_state

    common = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    cfg = transformers.CLIPConfig(
        text_config=dict(
            **common, vocab_size=49408, max_position_embeddings=77, eos_token_id=49407
        ),
        vision_config=dict(**common, image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(cfg).save_pretrained(tmp_path / "clip")
    clip_state = transformers.CLIPModel.from_pretrained(tmp_path / "clip").state_dict()
    clip = clip_to_viclip_state(clip_state, ViCLIPConfig.tiny())
    ckpt = read_state_dict(eval_dir / "viclip-tiny.pth")
    model = load_model(
        eval_dir / "viclip-tiny.pth", "tiny", wise_ft_path=tmp_path / "clip", alpha=0.5
    )
    got = model.state_dict()
    for key in (
        "vision_encoder.conv1.weight",
        "text_encoder.text_projection",
        "vision_encoder.proj",
    ):
        assert torch.allclose(got[key], 0.5 * ckpt[key] + 0.5 * clip[key], atol=1e-6), key
    key_t = "vision_encoder.temporal_positional_embedding"
    assert torch.equal(got[key_t], ckpt[key_t])  # excluded, as the official keys_to_exclude


# ------------------------------------------------------------------------- config and --models


def test_eval_config_defaults_are_the_library_defaults() -> None:
    """EvalConfig's defaults (the command's) equal `evaluate`'s keyword defaults."""
    from internvid.config import EvalConfig

    params = inspect.signature(evaluate).parameters
    names = {"format": "fmt", "wise_ft": "wise_ft_path", "model": "model_path"}
    for f in dataclasses.fields(EvalConfig):
        if f.name == "out":
            continue
        default = params[names.get(f.name, f.name)].default
        value = getattr(EvalConfig(), f.name)
        assert value == default or (f.name == "model" and (value, default) == ("", None)), f.name


def test_cli_config_file_with_overrides(eval_dir: Path, tmp_path: Path) -> None:
    """--config sets the evaluation, flags override it; --dtype still takes float32."""
    ckpt = eval_dir / "viclip-tiny.pth"
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(
        f"model: {ckpt}\narch: tiny\ntemplates: single\nsampling: demo\nchunk: 2\n"
        f"out: {tmp_path / 'from_config.json'}\n"
    )
    out = tmp_path / "cls.json"
    args = ["eval", str(eval_dir / "cls.jsonl"), "--config", str(cfg), "--sampling", "middle"]
    args += ["--dtype", "float32", "-o", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "from_config.json").exists()  # -o overrides the file's out
    got = json.loads(out.read_text())
    want = evaluate(eval_dir / "cls.jsonl", ckpt, arch="tiny", templates="single")
    assert got["templates"] == "single" and got["sampling"] == "middle"
    assert got["metrics"] == want["metrics"] and got["metrics_dsl"] == want["metrics_dsl"]
    assert got["model"] == str(ckpt)


def test_cli_refuses_bad_config_values(eval_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    for text, word in (("sampling: sideways\n", "sideways"), ("dtype: float33\n", "float33")):
        cfg.write_text(f"model: {eval_dir / 'viclip-tiny.pth'}\n{text}")
        result = CliRunner().invoke(_app(), ["eval", str(eval_dir / "ret.jsonl"), "-c", str(cfg)])
        assert result.exit_code == 2 and word in result.output, result.output
    cfg.write_text("no_such_key: 1\n")
    result = CliRunner().invoke(_app(), ["eval", str(eval_dir / "ret.jsonl"), "-c", str(cfg)])
    assert result.exit_code == 2 and "no_such_key" in result.output


def test_cli_models_tiny_picks_the_tiny_checkpoint(
    eval_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without -m, --models tiny evaluates tiny:viclip (built in the cache) with its config."""
    from internvid.hub import resolve_models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "tiny.json"
    args = ["eval", str(eval_dir / "ret.jsonl"), "--models", "tiny", "-o", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    built = resolve_models([], files=["tiny:viclip"])[0].path
    assert Path(built).is_relative_to(tmp_path / "cache")
    want = evaluate(eval_dir / "ret.jsonl", built, arch="tiny")
    assert got["model"] == "tiny:viclip" and got["config"] == want["config"]
    assert got["metrics"] == want["metrics"] and got["metrics_dsl"] == want["metrics_dsl"]
