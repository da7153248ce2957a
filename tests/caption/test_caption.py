"""Captioning: tiny models through from_pretrained, batching, fusion input, offline errors, a run."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.caption.captioner import ImageCaptioner
from internvid.caption.fusion import CHAT_PROMPT, Fuser, FusionInput, fusion_input
from internvid.caption.presets import PRESETS, caption_models
from internvid.cli import app
from internvid.config import CaptionConfig
from internvid.engine import Sample, StageStats
from internvid.hub import ModelsUnavailable, resolve_models
from internvid.io.tables import row_to_clip
from internvid.records import Clip, Video
from internvid.stages.caption import FuseStage
from internvid.tiny.captioners import build_tiny_models

runner = CliRunner()


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> object:
    """Cache folder with the tiny models built once per session (what --models tiny does)."""
    root = tmp_path_factory.mktemp("model_cache")
    build_tiny_models(root / "tiny-models")
    return root


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48 + 8 * i, 64, 3), dtype=np.uint8) for i in range(n)]


# --- model resolution -----------------------------------------------------------------------------


def test_tiny_names_resolve_to_local_folders(tiny_root):
    found = resolve_models(["tiny:blip", "tiny:t5"], str(tiny_root))
    assert [r.how for r in found] == ["tiny", "tiny"]
    assert all((tiny_root / "tiny-models" / n).is_dir() for n in ("blip", "t5"))
    # a local folder is used as is
    (local,) = resolve_models([found[0].path], "")
    assert local.how == "local" and local.path == found[0].path


def test_missing_models_are_all_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: unreachable
    with pytest.raises(ModelsUnavailable) as e:
        resolve_models(["org/model-a", "org/model-b", str(tmp_path / "nope"), "tiny:nosuch"], "")
    msg = str(e.value)
    for name in ("org/model-a", "org/model-b", "nope", "tiny:nosuch", "--models tiny"):
        assert name in msg


def test_presets_and_overrides():
    m = caption_models(CaptionConfig(models="lite"))
    assert m.coarse == m.fine == PRESETS["lite"].coarse and m.fusion == "chat"
    assert m.names() == [PRESETS["lite"].coarse, PRESETS["lite"].fusion_model]
    m = caption_models(CaptionConfig(models="paper", fusion="none", fine_model="/x/y"))
    assert m.fine == "/x/y" and m.fusion_model == "" and m.names()[-1] == "/x/y"
    assert caption_models(CaptionConfig()) is None  # default: no captioning


# --- captioners -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["blip", "blip2"])
def test_batched_captions_equal_one_at_a_time(tiny_root, name):
    (r,) = resolve_models([f"tiny:{name}"], str(tiny_root))
    imgs = frames(5)
    batched = ImageCaptioner(r.path, batch_size=4, max_new_tokens=6).caption(imgs)
    single = [ImageCaptioner(r.path, batch_size=1, max_new_tokens=6).caption([i])[0] for i in imgs]
    assert len(batched) == 5 and all(isinstance(t, str) for t in batched)
    assert batched == single


# --- fusion ---------------------------------------------------------------------------------------


def test_fusion_input_keeps_order_and_collapses_repeats():
    caps = ["a dog runs on grass", "a dog runs on grass", "a dog runs on the grass", "a cat sits"]
    inp = fusion_input(caps, "a dog in a park")
    assert inp == FusionInput(("a dog runs on grass", "a cat sits"), "a dog in a park")


@pytest.mark.parametrize("mode,model", [("chat", "tiny:chat"), ("seq2seq", "tiny:t5")])
def test_fusion_model_reads_frame_captions_in_order_and_the_middle_caption(
    tiny_root, monkeypatch, mode, model
):
    (r,) = resolve_models([model], str(tiny_root))
    cfg = CaptionConfig(models="tiny", fusion=mode, fusion_model=model, fusion_max_new_tokens=8)
    stage = FuseStage(cfg, caption_models(cfg), {model: r.path})
    stage.setup()
    seen: list[str] = []
    tok = stage._fuser.engine.tokenizer  # the hf backend's Fuser
    original = type(tok).__call__

    def spy(self, text, *a, **kw):
        seen.extend([text] if isinstance(text, str) else text)
        return original(self, text, *a, **kw)

    monkeypatch.setattr(type(tok), "__call__", spy)
    video = Video(id="v", source="v.mp4", path="v.mp4", duration=20.0, fps=25.0)
    clips = [Clip.new("v", 0.0, 4.0), Clip.new("v", 4.0, 8.0)]
    clips[0].frame_captions = [
        "a dog runs on grass",
        "a dog runs on grass",
        "a red ball flies",
        "a dog catches the ball",
    ]
    clips[0].captions["coarse"] = "a dog playing in a park"
    clips[1].frame_captions = ["a city street at night"]
    clips[1].captions["coarse"] = "cars on a road"
    out = stage.run_batch([Sample(video, clips=clips)], StageStats("fuse"), [])
    assert len(seen) == 2
    first = seen[0]
    order = [first.index(t) for t in ("a dog runs", "a red ball", "a dog catches")]
    assert order == sorted(order)  # temporal order
    assert first.count("a dog runs on grass") == 1  # identical neighbours collapsed
    assert "a dog playing in a park" in first and "cars on a road" in seen[1]
    if mode == "chat":
        assert CHAT_PROMPT.splitlines()[0] in first  # the chat template wraps the one prompt
    else:
        assert first.startswith("summarize: ")
    for clip in out[0].clips:
        assert isinstance(clip.captions["fused"], str) and "caption_lang" in clip.meta


def test_fuser_prompts_are_the_texts_the_model_reads(tiny_root):
    (r,) = resolve_models(["tiny:chat"], str(tiny_root))
    fuser = Fuser(r.path, "chat", max_new_tokens=4).load()
    (p,) = fuser.prompts([FusionInput(("one", "two"), "mid")])
    assert "1. one\n2. two" in p and "Caption of the middle frame: mid" in p
    assert p.rstrip().endswith("assistant")  # ends with the generation prompt


# --- whole runs -----------------------------------------------------------------------------------


def test_run_with_tiny_models_writes_every_caption(tmp_path, demo_videos, tiny_root):
    out = tmp_path / "out"
    args = ["run", str(demo_videos), "--out", str(out), "--models", "tiny"]
    args += ["--cache-dir", str(tiny_root), "--cut-mode", "none", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    assert rows
    for row in rows:
        assert row["coarse_caption"] is not None and row["fused_caption"] is not None
        assert row["caption"] == row_to_clip(row).best_caption()  # fused, else coarse
        n_frames = len(range(0, round(row["duration"] * row["fps"]), round(row["fps"])))
        assert len(row["frame_captions"]) == n_frames  # one per second
        meta = json.loads(row["meta"])
        assert len(meta["frame_caption_times"]) == n_frames and "caption_lang" in meta
    lines = [json.loads(x) for x in (out / "internvid.jsonl").read_text().splitlines()]
    assert [x["Caption"] for x in lines] == [r["fused_caption"] for r in rows]
    stats = json.loads((out / "stats.json").read_text())
    assert any("tiny" in n and "noise" in n for n in stats["notes"])
    assert [s["name"] for s in stats["stages"]][-3:] == ["caption", "fuse", "cut"]


@pytest.mark.allow_error_logs
def test_offline_run_with_missing_models_stops_at_once(tmp_path, demo_videos, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    out = tmp_path / "out"
    t0 = time.perf_counter()
    result = runner.invoke(app, ["run", str(demo_videos), "--out", str(out), "--models", "lite"])
    assert time.perf_counter() - t0 < 10
    assert result.exit_code == 2
    for name in {PRESETS["lite"].coarse, PRESETS["lite"].fusion_model}:
        assert name in result.output
    assert not out.exists() or not any(out.iterdir())
