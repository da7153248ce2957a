"""Per-clip scorers: LAION aesthetic heads and max-over-frames, CLIPScore, text overlay coverage."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from internvid.tiny.scorers import MARKER, TINY_SCORER_MODELS, build_tiny_scorer_models

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from internvid.scores.aesthetic import (  # noqa: E402  (after the skips)
    AestheticScorer,
    HeadFormatError,
    load_head,
    resolve_head_path,
)
from internvid.scores.clipscore import ClipScorer, clipscore_from_cosine  # noqa: E402

log = logging.getLogger(__name__)

# The official state-dict layouts, written out here independently of the code under test.
LINEAR_SHAPES = {"weight": (1, 768), "bias": (1,)}
MLP_SHAPES = {
    "layers.0.weight": (1024, 768),
    "layers.0.bias": (1024,),
    "layers.2.weight": (128, 1024),
    "layers.2.bias": (128,),
    "layers.4.weight": (64, 128),
    "layers.4.bias": (64,),
    "layers.6.weight": (16, 64),
    "layers.6.bias": (16,),
    "layers.7.weight": (1, 16),
    "layers.7.bias": (1,),
}
# Absolute tolerance between batched and one-by-one scores (fp32 matmuls of other shapes).
ATOL = 1e-4
# Frames sampled per video in the real-video test (the paper's aesthetic rule uses 4).
REAL_FRAMES = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_tiny_scorer_models(tmp_path_factory.mktemp("tiny") / "scorers")


@pytest.fixture(scope="module")
def mlp_scorer(tiny: dict[str, Path]) -> AestheticScorer:
    return AestheticScorer(str(tiny["clip"]), tiny["aesthetic-mlp"], batch_size=3)


@pytest.fixture(scope="module")
def clip_scorer(tiny: dict[str, Path]) -> ClipScorer:
    return ClipScorer(str(tiny["clip"]), batch_size=2)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """Random RGB frames of a few different sizes."""
    rng = np.random.default_rng(seed)
    sizes = [(48, 64), (40, 40), (72, 56)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(count)]


# ------------------------------------------------------------------------------ tiny models


def test_tiny_build_is_complete_small_and_idempotent(tiny: dict[str, Path]):
    folder = tiny["clip"].parent
    assert set(tiny) == set(TINY_SCORER_MODELS)
    assert all(path.parent == folder for path in tiny.values())
    assert (folder / MARKER).is_file()
    assert (tiny["clip"] / "config.json").is_file()
    assert (tiny["clip"] / "model.safetensors").is_file()
    assert tiny["aesthetic-linear"].is_file() and tiny["aesthetic-mlp"].is_file()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 6_000_000, f"tiny scorer models take {size} bytes"
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert build_tiny_scorer_models(folder) == tiny
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a complete build was redone"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "tmp folder left"


def test_tiny_build_is_deterministic(tiny: dict[str, Path], tmp_path: Path):
    again = build_tiny_scorer_models(tmp_path / "again")
    for key in ("aesthetic-linear", "aesthetic-mlp"):
        first = torch.load(tiny[key], weights_only=True)
        second = torch.load(again[key], weights_only=True)
        assert all(torch.equal(first[k], second[k]) for k in first)
    model_a = (tiny["clip"] / "model.safetensors").read_bytes()
    assert (again["clip"] / "model.safetensors").read_bytes() == model_a


def test_incomplete_tiny_folder_is_rebuilt(tmp_path: Path):
    partial = tmp_path / "scorers"
    partial.mkdir()
    (partial / "config.json").write_text("{}")  # an interrupted copy: no marker
    paths = build_tiny_scorer_models(partial)
    assert (partial / MARKER).is_file() and paths["aesthetic-mlp"].is_file()
    assert not (partial / "config.json").exists(), "the partial copy was kept"


# ------------------------------------------------------------------------------ aesthetic heads


@pytest.mark.parametrize(
    ("key", "fmt", "shapes"),
    [("aesthetic-linear", "linear", LINEAR_SHAPES), ("aesthetic-mlp", "mlp", MLP_SHAPES)],
)
def test_head_files_use_the_official_layout(tiny: dict[str, Path], key, fmt, shapes):
    state = torch.load(tiny[key], map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == shapes
    found, module = load_head(tiny[key])
    assert found == fmt
    assert not module.training


def test_heads_compute_the_published_function(tiny: dict[str, Path]):
    """Linear: x W^T + b. Improved MLP: its five Linear layers in a row (Dropout is a no-op in
    eval and the published MLP has no activations)."""
    x = torch.nn.functional.normalize(
        torch.randn(5, 768, generator=torch.Generator().manual_seed(0))
    )
    lin = torch.load(tiny["aesthetic-linear"], weights_only=True)
    _, head = load_head(tiny["aesthetic-linear"])
    with torch.inference_mode():
        torch.testing.assert_close(head(x), x @ lin["weight"].T + lin["bias"])
    mlp = torch.load(tiny["aesthetic-mlp"], weights_only=True)
    _, head = load_head(tiny["aesthetic-mlp"])
    expected = x
    for i in (0, 2, 4, 6, 7):
        expected = expected @ mlp[f"layers.{i}.weight"].T + mlp[f"layers.{i}.bias"]
    with torch.inference_mode():
        torch.testing.assert_close(head(x), expected)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "extra.weight"),
        (lambda s: s.update({"layers.8.weight": torch.zeros(1, 1)}), "layers.8.weight"),
        (lambda s: s.update({"0.weight": s.pop("layers.0.weight")}), "0.weight"),
        (lambda s: s.pop("layers.7.bias"), "layers.7.bias"),
        (lambda s: s.update({"layers.2.weight": torch.zeros(64, 1024)}), "layers.2.weight"),
    ],
    ids=["extra", "extra-layer", "renamed", "missing", "shape"],
)
def test_malformed_mlp_head_fails_naming_the_key(
    tiny: dict[str, Path], tmp_path: Path, edit, named
):
    state = dict(torch.load(tiny["aesthetic-mlp"], weights_only=True))
    edit(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(HeadFormatError, match=named.replace(".", r"\.")):
        load_head(path)


def test_linear_head_with_extra_key_or_unknown_keys_fails(tiny: dict[str, Path], tmp_path: Path):
    state = dict(torch.load(tiny["aesthetic-linear"], weights_only=True))
    torch.save({**state, "scale": torch.ones(1)}, tmp_path / "extra.pth")
    with pytest.raises(HeadFormatError, match="scale"):
        load_head(tmp_path / "extra.pth")
    torch.save({"fc.weight": state["weight"]}, tmp_path / "unknown.pth")
    with pytest.raises(HeadFormatError, match=r"fc\.weight"):
        load_head(tmp_path / "unknown.pth")


def test_head_width_must_match_the_clip(tiny: dict[str, Path], tmp_path: Path):
    torch.save(torch.nn.Linear(512, 1).state_dict(), tmp_path / "b32.pth")
    assert load_head(tmp_path / "b32.pth")[0] == "linear"  # a valid head, for ViT-B/32
    with pytest.raises(HeadFormatError, match="512"):
        AestheticScorer(str(tiny["clip"]), tmp_path / "b32.pth")


def test_head_from_a_hub_reference(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub

    calls = []

    def fake_download(repo_id: str, filename: str, cache_dir=None) -> str:
        calls.append((repo_id, filename))
        return str(tiny["aesthetic-mlp"])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    fmt, _ = load_head("someone/aesthetic/sub/head.pth")
    assert (fmt, calls) == ("mlp", [("someone/aesthetic", "sub/head.pth")])

    def offline(**kwargs) -> str:
        raise OSError("hub unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(FileNotFoundError, match="could not be fetched"):
        resolve_head_path("someone/aesthetic/head.pth")
    for local in ("missing.pth", "./heads/missing.pth", "/abs/missing.pth"):
        with pytest.raises(FileNotFoundError, match="not a file"):
            resolve_head_path(local)


# ------------------------------------------------------------------------------ aesthetic scorer


def test_embeddings_are_l2_normalised_clip_image_embeds(mlp_scorer: AestheticScorer):
    frames = _frames(4)
    emb = mlp_scorer.embed(frames)
    assert emb.shape == (4, 768)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4))
    pixels = mlp_scorer.processor(images=frames, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        raw = mlp_scorer.model(pixel_values=pixels).image_embeds
    torch.testing.assert_close(emb, raw / raw.norm(dim=-1, keepdim=True), atol=ATOL, rtol=0)


def test_clip_score_is_the_max_over_its_frames(mlp_scorer: AestheticScorer):
    frames = _frames(8, seed=1)
    clips = [frames[:1], frames[1:4], frames[4:8]]  # batches of 3 straddle the clips
    singles = [mlp_scorer.score_frames([f])[0] for f in frames]
    assert len(set(np.round(singles, 4))) > 1, "random frames should score differently"
    batched = mlp_scorer.score_frames(frames)
    np.testing.assert_allclose(batched, singles, atol=ATOL)
    expected = [max(singles[:1]), max(singles[1:4]), max(singles[4:8])]
    np.testing.assert_allclose(mlp_scorer.score_clips(clips), expected, atol=ATOL)
    # the order of clips and of frames inside a clip does not matter
    reordered = mlp_scorer.score_clips([frames[4:8][::-1], frames[:1]])
    np.testing.assert_allclose(reordered, [expected[2], expected[0]], atol=ATOL)


def test_linear_head_scorer_matches_the_manual_formula(tiny: dict[str, Path]):
    scorer = AestheticScorer(str(tiny["clip"]), tiny["aesthetic-linear"])
    assert scorer.head_format == "linear"
    frames = _frames(3, seed=2)
    state = torch.load(tiny["aesthetic-linear"], weights_only=True)
    expected = scorer.embed(frames) @ state["weight"].T + state["bias"]
    np.testing.assert_allclose(scorer.score_frames(frames), expected.squeeze(-1), atol=ATOL)


def test_clip_without_frames_is_rejected(mlp_scorer: AestheticScorer):
    with pytest.raises(ValueError, match=r"\[1\]"):
        mlp_scorer.score_clips([_frames(1), []])
    assert mlp_scorer.score_clips([]) == []


# ------------------------------------------------------------------------------ CLIPScore


CAPTIONS = ["a man with a dog in the snow", "a red car on the street", "slide with white text"]


def test_clipscore_is_a_cosine_and_batching_does_not_change_it(clip_scorer: ClipScorer):
    frames = _frames(3, seed=3)
    matrix = np.array([clip_scorer.score([f] * 3, CAPTIONS) for f in frames])
    assert matrix.shape == (3, 3)
    assert np.all(np.abs(matrix) <= 1.0)
    assert np.unique(np.round(matrix, 5)).size > 1
    own = clip_scorer.score(frames, CAPTIONS)  # batches of 2: pairs (0,1) then (2)
    np.testing.assert_allclose(own, np.diag(matrix), atol=ATOL)
    single = [clip_scorer.score([f], [c])[0] for f, c in zip(frames, CAPTIONS, strict=True)]
    np.testing.assert_allclose(own, single, atol=ATOL)


def test_clipscore_truncates_captions_to_77_tokens(clip_scorer: ClipScorer):
    assert clip_scorer.max_tokens == 77
    head = " ".join(["a man with a dog in the snow"] * 20)  # far beyond 77 tokens
    frame = _frames(1, seed=4)
    long_a = clip_scorer.score(frame, [head + " and a red car"])[0]
    long_b = clip_scorer.score(frame, [head + " but nothing else at all"])[0]
    assert long_a == pytest.approx(long_b, abs=1e-6), "text past 77 tokens changed the score"
    short = clip_scorer.score(frame, ["a man with a dog"])[0]
    assert short != pytest.approx(long_a, abs=1e-6)


def test_clipscore_helpers_and_errors(clip_scorer: ClipScorer):
    assert clipscore_from_cosine(0.3) == pytest.approx(0.75)
    assert clipscore_from_cosine(-0.2) == 0.0
    with pytest.raises(ValueError, match="one per frame"):
        clip_scorer.score(_frames(2), ["only one"])
    assert clip_scorer.score([], []) == []


# ------------------------------------------------------------------------------ text overlay


@pytest.fixture(scope="module")
def text_scorer():
    pytest.importorskip("rapidocr_onnxruntime", reason="text overlay needs rapidocr-onnxruntime")
    from internvid.scores.text_overlay import TextOverlayScorer

    return TextOverlayScorer()


def _text_frame(height: int = 360, width: int = 640) -> np.ndarray:
    """A dark frame with three lines of large white text."""
    import cv2

    frame = np.full((height, width, 3), 30, np.uint8)
    for i, line in enumerate(["BREAKING NEWS", "Subtitles here", "www.example.com"]):
        cv2.putText(
            frame, line, (30, 80 + 100 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (255, 255, 255), 4
        )
    return frame


def _natural_frame(height: int = 360, width: int = 640, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with blurred blotches and fine grain, no text."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200, y / height * 180 + 40, (x + y) / (width + height) * 160 + 60], -1
    )
    blotches = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)).astype(np.float32), (0, 0), 8)
    grain = rng.normal(0, 6, (height, width, 3))
    return np.clip(base + blotches + grain, 0, 255).astype(np.uint8)


def test_text_frame_scores_far_above_natural_and_blank(text_scorer):
    text = text_scorer.coverage(_text_frame())
    natural = [text_scorer.coverage(_natural_frame(seed=s)) for s in (0, 1)]
    blank = text_scorer.coverage(np.zeros((360, 640, 3), np.uint8))
    log.info("text overlay coverage: text %.4f, natural %s, blank %.4f", text, natural, blank)
    assert 0.1 < text < 0.6
    assert max(natural) < 0.02
    assert blank == pytest.approx(0.0, abs=1e-3)
    assert text_scorer.coverage(_text_frame()) == text, "not deterministic"


def test_text_boxes_are_in_frame_pixels_and_clips_take_the_max(text_scorer):
    small = _text_frame()[::2, ::2].copy()  # 180x320: upscaled for detection
    boxes = text_scorer.boxes(small)
    assert len(boxes) >= 3
    for box in boxes:
        assert box.shape == (4, 2)
        assert box[:, 0].min() >= 0 and box[:, 0].max() <= small.shape[1]
        assert box[:, 1].min() >= 0 and box[:, 1].max() <= small.shape[0]
    blank = np.zeros((90, 160, 3), np.uint8)
    text = text_scorer.coverage(small)
    assert text > 0.1
    assert text_scorer.score_clips([[blank, small, blank], [blank]]) == [text, 0.0]
    with pytest.raises(ValueError, match="RGB uint8"):
        text_scorer.coverage(np.zeros((10, 10), np.uint8))


def test_missing_ocr_package_is_named(monkeypatch: pytest.MonkeyPatch):
    from internvid.scores import text_overlay

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(ImportError, match="pip install rapidocr-onnxruntime"):
        text_overlay.TextOverlayScorer()


def _sample_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` RGB frames at the middles of `count` equal spans of the video (PyAV seeks)."""
    av = pytest.importorskip("av")
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base)
        for i in range(count):
            t = (i + 0.5) * duration / count
            container.seek(int(t / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= t - 1e-3:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
    assert len(frames) == count, f"decoded {len(frames)} of {count} frames from {path.name}"
    return frames


@pytest.mark.integration
def test_slide_video_is_covered_by_text_film_is_not(text_scorer, real_videos: Path):
    slides = text_scorer.score_frames(
        _sample_frames(real_videos / "v2d_test_video.mp4", REAL_FRAMES)
    )
    film = text_scorer.score_frames(
        _sample_frames(real_videos / "cosmos_clip_10s.mp4", REAL_FRAMES)
    )
    log.info("text coverage: slides %s, film %s", np.round(slides, 4), np.round(film, 4))
    assert min(slides) > 0.05, slides  # every sampled slide carries text
    assert max(film) < 0.03, film  # at most the small title card of the film
    assert float(np.mean(slides)) > 5 * float(np.mean(film)) + 0.02
