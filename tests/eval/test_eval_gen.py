"""`internvid eval-gen`: FVD / FID / IS / CLIPSIM against straightforward references."""

from __future__ import annotations

import itertools
import json
import logging
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer
from typer.testing import CliRunner

from internvid.cli import app
from internvid.eval.extractors import (
    I3D_SOURCE,
    INCEPTION_SOURCE,
    ExtractorMissing,
    check_extractors,
    clipsim,
    i3d_features,
    i3d_input,
    inception_features,
    load_clip,
    load_torchscript,
    video_clipsims,
)
from internvid.eval.gen_metrics import (
    FeatureStats,
    feature_stats,
    frechet_distance,
    inception_score,
)
from internvid.eval.gen_videos import decode_frames, list_videos
from internvid.eval.generation import evaluate_generation

runner = CliRunner()


# ------------------------------------------------------------ tiny extractors (random weights)


class TinyI3D(torch.nn.Module):
    """The call of i3d_torchscript.pt: (N, 3, T, 224, 224) float32 in [-1, 1] -> (N, 400)
    logits with return_features, softmax otherwise; other inputs are refused."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 16, kernel_size=(2, 16, 16), stride=(2, 16, 16))
        self.fc = torch.nn.Linear(16 * 4, 400)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        if rescale or resize:
            raise RuntimeError("tiny I3D takes prepared input only")
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[3] != 224 or x.shape[4] != 224:
            raise RuntimeError("expected (N, 3, T, 224, 224)")
        if x.dtype != torch.float32 or bool(x.min() < -1.0) or bool(x.max() > 1.0):
            raise RuntimeError("expected float32 in [-1, 1]")
        h = F.adaptive_avg_pool3d(torch.relu(self.conv(x)), [1, 2, 2]).flatten(1)
        logits = self.fc(h)
        return logits if return_features else torch.softmax(logits, dim=1)


class TinyInception(torch.nn.Module):
    """The call of inception-2015-12-05.pt: (N, 3, H, W) uint8 at any size, resized to 299;
    `width` (2048 like the real one) features with return_features, else 1008 softmax
    probabilities (no_output_bias leaves the output layer's bias out)."""

    def __init__(self, width: int = 2048) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width // 16, kernel_size=13, stride=13)
        self.weight = torch.nn.Parameter(torch.randn(width, 1008) * (3.0 / width**0.5))
        self.bias = torch.nn.Parameter(torch.randn(1008))

    def forward(
        self,
        img: torch.Tensor,
        return_features: bool = False,
        use_fp16: bool = False,
        no_output_bias: bool = False,
    ) -> torch.Tensor:
        if img.dtype != torch.uint8 or img.dim() != 4 or img.shape[1] != 3:
            raise RuntimeError("expected (N, 3, H, W) uint8")
        x = img.float() / 127.5 - 1.0
        x = F.interpolate(x, size=[299, 299], mode="bilinear", align_corners=False)
        features = F.adaptive_avg_pool2d(torch.relu(self.conv(x)), [4, 4]).flatten(1)
        if return_features:
            return features
        logits = features @ self.weight
        if not no_output_bias:
            logits = logits + self.bias
        return torch.softmax(logits, dim=1)


@pytest.fixture(scope="module")
def extractors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from internvid.tiny.scorers import build_tiny_scorer_models

    root = tmp_path_factory.mktemp("extractors")
    torch.manual_seed(0)
    paths = {
        "i3d": root / "i3d_torchscript.pt",
        "inception_2048": root / "inception-2015-12-05.pt",
        # 64 features instead of 2048: a Fréchet distance in 2048 dimensions costs two 2048 x
        # 2048 eigendecompositions and an SVD, tens of seconds on a loaded 2-core machine
        "inception": root / "inception-64.pt",
    }
    torch.jit.script(TinyI3D().eval()).save(str(paths["i3d"]))
    torch.jit.script(TinyInception().eval()).save(str(paths["inception_2048"]))
    torch.jit.script(TinyInception(width=64).eval()).save(str(paths["inception"]))
    paths["clip"] = build_tiny_scorer_models(root / "scorers")["clip"]
    return paths


# name -> lavfi source of the synthetic videos (12 frames of 64x48 at 10 fps)
SOURCES = {
    "bars": "testsrc2",
    "fractal": "mandelbrot",
    "blue": "color=c=0x3050a0",
    "hd": "smptehdbars",
    "noise": "perlin=random_mode=ken",
    "grad": "gradients=c0=0xffa000:c1=0x2000c0:n=2:seed=7:speed=0.05",
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from internvid.media.synth import Segment, SynthVideo, make_video

    root = tmp_path_factory.mktemp("gen_videos")
    for i, (name, source) in enumerate(SOURCES.items()):
        folder = "gen" if i < 3 else "ref"
        spec = SynthVideo(name, (Segment(source, 1.2),), fps=10, width=64, height=48, audio=False)
        make_video(spec, root / folder / f"{name}.mp4")
    rows = [
        {"video": "gen/bars.mp4", "caption": "a test pattern with colour bars"},
        {"video": "gen/fractal.mp4", "caption": "a fractal zooming in"},
        {"video": str(root / "gen" / "blue.mp4"), "caption": "a blue screen"},
    ]
    (root / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


# ------------------------------------------------------------------- straightforward references


def _fd_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """pytorch-fid / StyleGAN-V's formula with scipy.linalg.sqrtm."""
    linalg = pytest.importorskip("scipy.linalg")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(covmean)))


def _is_numpy(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """The original Inception Score loop (Salimans et al.'s code)."""
    scores = []
    n = len(probs)
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def _decode_av(path: Path, n: int) -> np.ndarray:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(video=0), n)]
    return np.stack(frames)


def _clipsim_direct(folder: Path, clips: list[np.ndarray], prompts: list[str]) -> float:
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    per_video = []
    for clip, prompt in zip(clips, prompts, strict=True):
        inputs = processor(text=[prompt], images=list(clip), return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model(**inputs)
        per_video.append(float((out.image_embeds @ out.text_embeds.T).mean()))
    return float(np.mean(per_video))


# ---------------------------------------------------------------------------- Fréchet distance


@pytest.mark.parametrize(
    ("n", "dim"),
    [(400, 12), (6, 20), (3, 64)],  # full-rank covariances, then singular ones (n <= dim)
)
def test_frechet_distance_matches_scipy_sqrtm(n: int, dim: int) -> None:
    rng = np.random.default_rng(n)
    mix = rng.normal(size=(dim, dim))
    a = rng.normal(size=(n, dim)) @ mix
    b = rng.normal(0.5, 2.0, size=(n + 3, dim))
    ours = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert ours == pytest.approx(_fd_scipy(a, b), rel=1e-7)
    mu, sigma = feature_stats(a)
    # the same set: 0 up to float64 rounding, which the square roots of the zero eigenvalues of
    # a singular covariance lift to ~1e-8 of the trace (scipy's sqrtm does the same)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-7 * np.trace(sigma))


def test_frechet_distance_of_diagonal_gaussians_is_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 3.0]), np.array([1.0, 1.0, 0.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.0, 2.0]), np.array([9.0, 1.0, 1.0, 0.0])  # two singular
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
    assert expected == pytest.approx(1 + 4 + 9 + 4 + 1 + 1 + 2)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(mu1, np.diag(v1), mu2[:3], np.diag(v2[:3]))


def test_feature_stats_streams_batches_like_numpy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(100.0, 0.01, size=(257, 6))  # a large mean, a small spread
    stats = FeatureStats()
    for lo in range(0, len(x), 40):
        stats.add(x[lo : lo + 40])
    mean, cov = stats.mean_cov()
    assert stats.count == 257
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        feature_stats(x[:1])


# ----------------------------------------------------------------------------- Inception Score


@pytest.mark.parametrize(("n", "splits"), [(250, 10), (103, 10), (40, 3)])
def test_inception_score_matches_numpy_reference(n: int, splits: int) -> None:
    rng = np.random.default_rng(n)
    logits = rng.normal(0.0, 3.0, size=(n, 1008))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = _is_numpy(probs, splits)
    assert inception_score(logits, splits, from_logits=True) == pytest.approx(expected, rel=1e-10)
    assert inception_score(probs, splits) == pytest.approx(expected, rel=1e-10)


def test_inception_score_of_distinct_one_hot_predictions_is_the_class_count() -> None:
    probs = np.tile(np.eye(10), (4, 1))  # each split of 10 rows: one confident row per class
    assert inception_score(probs, splits=4) == pytest.approx((10.0, 0.0))
    assert inception_score(np.full((20, 5), 0.2), splits=2) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="at least 10 rows"):
        inception_score(probs[:9])


# ------------------------------------------------------------------------- inputs and decoding


def test_i3d_input_is_224_pixels_in_minus_one_to_one() -> None:
    clip = np.zeros((3, 48, 64, 3), np.uint8)
    clip[1] = 255
    clip[2, :, :32] = 51
    x = i3d_input(clip)
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    assert float(x[:, 0].max()) == -1.0 and float(x[:, 1].min()) == 1.0
    frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    direct = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False)
    torch.testing.assert_close(x, (direct / 127.5 - 1).permute(1, 0, 2, 3))


def test_decode_frames_takes_consecutive_frames_at_a_stride(videos: Path) -> None:
    path = videos / "gen" / "bars.mp4"
    every = _decode_av(path, 12)
    np.testing.assert_array_equal(decode_frames(path, 4), every[:4])
    np.testing.assert_array_equal(decode_frames(path, 4, stride=3), every[[0, 3, 6, 9]])
    with pytest.raises(ValueError, match="only 12 frames at stride 1; 16 are needed"):
        decode_frames(path, 16)


def test_list_videos_reads_folders_and_lists_with_prompts(videos: Path, tmp_path: Path) -> None:
    items = list_videos(videos / "gen.jsonl")
    assert [i.path.name for i in items] == ["bars.mp4", "fractal.mp4", "blue.mp4"]
    assert items[0].path == videos / "gen" / "bars.mp4"
    assert items[2].prompt == "a blue screen"
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("b.mp4", "a.gif", "notes.md"):
        (folder / name).write_bytes(b"")
    (folder / "b.txt").write_text("a prompt\n")
    found = list_videos(folder)
    assert [(i.path.name, i.prompt) for i in found] == [("a.gif", None), ("b.mp4", "a prompt")]
    (tmp_path / "l.txt").write_text("f/b.mp4\n\n# comment\n" + str(folder / "a.gif") + "\n")
    assert [(i.path, i.prompt) for i in list_videos(tmp_path / "l.txt")] == [
        (folder / "b.mp4", "a prompt"),
        (folder / "a.gif", None),
    ]


# ---------------------------------------------------------------------------------- extractors


def test_clipsim_matches_a_direct_clip_computation(extractors: dict[str, Path]) -> None:
    rng = np.random.default_rng(3)
    clips = [rng.integers(0, 256, (n, 40, 56, 3), dtype=np.uint8) for n in (3, 5)]
    prompts = ["a red car on the street", "a dog in the snow"]
    scorer = load_clip(str(extractors["clip"]))
    expected = _clipsim_direct(extractors["clip"], clips, prompts)
    assert clipsim(scorer, clips, prompts) == pytest.approx(expected, rel=1e-5)
    scorer.batch_size = 2  # frames are embedded in chunks: same values
    per_video = video_clipsims(scorer, clips, prompts)
    assert np.mean(per_video) == pytest.approx(expected, rel=1e-5)
    assert len(set(per_video)) == 2


def test_extractor_outputs_have_the_real_shapes(extractors: dict[str, Path]) -> None:
    rng = np.random.default_rng(4)
    clips = [rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8) for _ in range(2)]
    clips.append(rng.integers(0, 256, (4, 30, 40, 3), dtype=np.uint8))  # another frame size
    inception = load_torchscript(extractors["inception_2048"])
    pool = inception_features(inception, clips)
    probs = inception_features(inception, clips, probs=True)
    assert pool.shape == (12, 2048) and probs.shape == (12, 1008)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with torch.no_grad():
        direct = inception(torch.from_numpy(clips[2]).permute(0, 3, 1, 2), return_features=True)
    np.testing.assert_allclose(pool[8:], direct.double().numpy(), rtol=1e-6)  # order kept
    features = i3d_features(load_torchscript(extractors["i3d"]), clips[:2])
    assert features.shape == (2, 400) and not np.allclose(features[0], features[1])


def test_missing_extractor_files_are_named_with_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ExtractorMissing) as err:
        check_extractors(["fvd", "fid", "is"], tmp_path / "nope.pt", None, "x")
    text = str(err.value)
    assert f"{tmp_path / 'nope.pt'}: no such file (--i3d)" in text and I3D_SOURCE in text
    assert "FID/IS needs --inception PATH" in text and INCEPTION_SOURCE in text
    with pytest.raises(ExtractorMissing, match="no such CLIP folder"):
        check_extractors(["clipsim"], None, None, str(tmp_path / "clip"))
    check_extractors(["clipsim"], None, None, "openai/clip-vit-base-patch32")  # a hub id: later
    with pytest.raises(ExtractorMissing, match="no such file"):
        load_torchscript(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript file"):
        load_torchscript(tmp_path / "bad.pt")


def _bare_app() -> typer.Typer:
    """Only `eval-gen`, without the main callback (its logging set-up would replace caplog's)."""
    from internvid.cli.eval_gen import register

    bare = typer.Typer()

    @bare.callback()
    def _main() -> None:
        pass

    register(bare)
    return bare


@pytest.mark.allow_error_logs
def test_command_fails_clearly_on_a_missing_extractor(
    videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = ["eval-gen", str(videos / "gen"), "--reference", str(videos / "ref")]
    args += ["--metrics", "fvd", "--i3d", str(tmp_path / "i3d_torchscript.pt")]
    with caplog.at_level(logging.ERROR):
        result = runner.invoke(_bare_app(), args)
    assert result.exit_code == 2
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert str(tmp_path / "i3d_torchscript.pt") in message and "StyleGAN-V" in message


# ----------------------------------------------------------------------------------- end to end


def test_eval_gen_command_writes_the_four_metrics(
    videos: Path, extractors: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "metrics.json"
    args = ["eval-gen", str(videos / "gen.jsonl"), "--reference", str(videos / "ref")]
    args += ["--i3d", str(extractors["i3d"]), "--inception", str(extractors["inception"])]
    args += ["--clip", str(extractors["clip"]), "--frames", "8", "--splits", "4"]
    args += ["--device", "cpu", "--batch-size", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())

    # the same numbers, computed directly: PyAV frames, the TorchScript modules, scipy, CLIPModel
    gen = [_decode_av(videos / "gen" / f"{n}.mp4", 8) for n in ("bars", "fractal", "blue")]
    ref = [_decode_av(videos / "ref" / f"{n}.mp4", 8) for n in ("grad", "hd", "noise")]
    i3d = torch.jit.load(str(extractors["i3d"]))
    inception = torch.jit.load(str(extractors["inception"]))

    def i3d_feats(clips: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(clips)).float()  # (N, T, H, W, 3)
        x = x.permute(0, 1, 4, 2, 3).flatten(0, 1)  # (N T, 3, H, W)
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) / 127.5 - 1
        x = x.reshape(len(clips), 8, 3, 224, 224).permute(0, 2, 1, 3, 4)
        with torch.no_grad():
            return i3d(x, rescale=False, resize=False, return_features=True).double().numpy()

    def frames(clips: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(clips)).permute(0, 3, 1, 2).contiguous()

    with torch.no_grad():
        gen_pool = inception(frames(gen), return_features=True).double().numpy()
        ref_pool = inception(frames(ref), return_features=True).double().numpy()
        probs = inception(frames(gen), no_output_bias=True).double().numpy()
    prompts = ["a test pattern with colour bars", "a fractal zooming in", "a blue screen"]
    metrics = got["metrics"]
    assert set(metrics) == {"fvd", "fid", "is", "is_std", "clipsim"}
    assert metrics["fvd"] == pytest.approx(_fd_scipy(i3d_feats(gen), i3d_feats(ref)), rel=1e-5)
    assert metrics["fid"] == pytest.approx(_fd_scipy(gen_pool, ref_pool), rel=1e-5)
    assert (metrics["is"], metrics["is_std"]) == pytest.approx(_is_numpy(probs, 4), rel=1e-6)
    direct = _clipsim_direct(extractors["clip"], gen, prompts)
    assert metrics["clipsim"] == pytest.approx(direct, rel=1e-5)
    assert metrics["fvd"] > 0 and metrics["fid"] > 0
    assert got["generated"]["videos"] == 3 and got["generated"]["frames"] == 24
    assert got["reference"]["videos"] == 3 and got["generated"]["skipped"] == []
    assert got["settings"]["num_frames"] == 8 and got["settings"]["is_splits"] == 4


def test_reference_statistics_are_saved_and_reused(
    videos: Path, extractors: dict[str, Path], tmp_path: Path
) -> None:
    kw = dict(
        metrics=["fvd", "fid"],
        i3d=extractors["i3d"],
        inception=extractors["inception"],
        num_frames=2,
        device="cpu",
    )
    stats = tmp_path / "ref.npz"
    first = evaluate_generation(videos / "ref", videos / "ref", save_reference_stats=stats, **kw)
    assert first["metrics"]["fvd"] == pytest.approx(0.0, abs=1e-6)  # the same videos
    assert first["metrics"]["fid"] == pytest.approx(0.0, abs=1e-6)
    from_videos = evaluate_generation(videos / "gen", videos / "ref", **kw)
    from_stats = evaluate_generation(videos / "gen", stats, **kw)
    assert from_stats["metrics"] == pytest.approx(from_videos["metrics"], rel=1e-12)
    assert from_stats["reference"] == {"source": str(stats), "statistics": True}


def test_videos_too_short_are_skipped_and_reported(
    videos: Path, extractors: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    listing = tmp_path / "gen.txt"
    listing.write_text(
        f"{videos / 'gen' / 'bars.mp4'}\n{videos / 'gen' / 'blue.mp4'}\nbroken.mp4\n"
    )
    got = evaluate_generation(
        listing, metrics=["is"], inception=extractors["inception"], num_frames=6, splits=2
    )
    assert got["generated"]["videos"] == 2 and got["generated"]["frames"] == 12
    assert [s["video"] for s in got["generated"]["skipped"]] == [str(tmp_path / "broken.mp4")]
    with pytest.raises(ValueError, match="CLIPSIM needs a prompt"):
        evaluate_generation(videos / "gen", metrics=["clipsim"], clip=str(extractors["clip"]))
    with pytest.raises(ValueError, match="FVD need --reference"):
        evaluate_generation(videos / "gen", metrics=["fvd"], i3d=extractors["i3d"])


def test_help_lists_eval_gen_and_its_options() -> None:
    result = runner.invoke(app, ["eval-gen", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for opt in ("--reference", "--metrics", "--i3d", "--inception", "--clip", "--frames"):
        assert opt in text


@pytest.mark.slow
def test_fid_with_2048_features_matches_scipy(videos: Path, extractors: dict[str, Path]) -> None:
    got = evaluate_generation(
        videos / "gen",
        videos / "ref",
        metrics=["fid"],
        inception=extractors["inception_2048"],
        num_frames=8,
        device="cpu",
    )
    inception = torch.jit.load(str(extractors["inception_2048"]))

    def pool(names: tuple[str, ...], folder: str) -> np.ndarray:
        clips = [_decode_av(videos / folder / f"{n}.mp4", 8) for n in names]
        x = torch.from_numpy(np.concatenate(clips)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            return inception(x, return_features=True).double().numpy()

    gen = pool(("bars", "blue", "fractal"), "gen")  # folder order: sorted names
    ref = pool(("grad", "hd", "noise"), "ref")
    assert got["metrics"]["fid"] == pytest.approx(_fd_scipy(gen, ref), rel=1e-5)


def test_eval_gen_config_defaults_are_the_library_defaults() -> None:
    """EvalGenConfig's defaults (the command's) equal `evaluate_generation`'s."""
    import dataclasses
    import inspect

    from internvid.config import EvalGenConfig
    from internvid.eval.generation import METRICS

    params = inspect.signature(evaluate_generation).parameters
    for f in dataclasses.fields(EvalGenConfig):
        if f.name == "out":
            continue
        default = params["num_frames" if f.name == "frames" else f.name].default
        value = getattr(EvalGenConfig(), f.name)
        assert value == (list(METRICS) if f.name == "metrics" else default), f.name


def test_eval_gen_config_file_with_overrides(
    videos: Path, extractors: dict[str, Path], tmp_path: Path
) -> None:
    """--config sets the metrics and extractors, flags override it; --dtype float32 is fp32."""
    cfg = tmp_path / "gen.yaml"
    cfg.write_text(
        f"metrics: [is]\ninception: {extractors['inception']}\nframes: 2\nsplits: 3\n"
        "device: cpu\nbatch_size: 2\n"
    )
    out = tmp_path / "is.json"
    args = ["eval-gen", str(videos / "gen"), "--config", str(cfg), "--frames", "4"]
    args += ["--dtype", "float32", "-o", str(out)]
    result = runner.invoke(_bare_app(), args)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    want = evaluate_generation(
        videos / "gen", metrics=["is"], inception=extractors["inception"], num_frames=4,
        splits=3, device="cpu",
    )  # fmt: skip
    assert got["metrics"] == want["metrics"] and set(got["metrics"]) == {"is", "is_std"}
    assert got["settings"]["num_frames"] == 4 and got["settings"]["is_splits"] == 3
    cfg.write_text("metrics: [fvd, psnr]\n")
    result = runner.invoke(_bare_app(), ["eval-gen", str(videos / "gen"), "-c", str(cfg)])
    assert result.exit_code == 2 and "psnr" in result.output
