"""ViCLIP: official checkpoint layout and strict loading, encoders, masking, SDPA, preprocessing."""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import internvid.models.viclip as viclip_mod
from internvid.models import (
    CheckpointError,
    ViCLIP,
    ViCLIPConfig,
    check_state_dict,
    count_parameters,
    frames_to_tensor,
    infer_config,
    load_viclip,
    preprocess_clip,
    read_state_dict,
    sample_indices,
    save_official,
)
from internvid.models.viclip import SelfAttention, drop_tokens

ROOT = Path(__file__).resolve().parents[2]
BLOCK_KEYS = {  # per residual block, as nn.MultiheadAttention + CLIP's MLP name them
    "attn.in_proj_weight": lambda w: (3 * w, w),
    "attn.in_proj_bias": lambda w: (3 * w,),
    "attn.out_proj.weight": lambda w: (w, w),
    "attn.out_proj.bias": lambda w: (w,),
    "ln_1.weight": lambda w: (w,),
    "ln_1.bias": lambda w: (w,),
    "mlp.c_fc.weight": lambda w: (4 * w, w),
    "mlp.c_fc.bias": lambda w: (4 * w,),
    "mlp.c_proj.weight": lambda w: (w, 4 * w),
    "mlp.c_proj.bias": lambda w: (w,),
    "ln_2.weight": lambda w: (w,),
    "ln_2.bias": lambda w: (w,),
}


def official_shapes(cfg: ViCLIPConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official ViClip-InternVid-10M-FLT.pth "model" dict, from the spec."""
    w, wt, p, d = cfg.vision_width, cfg.text_width, cfg.patch_size, cfg.embed_dim
    n = (cfg.image_size // p) ** 2
    shapes: dict[str, tuple[int, ...]] = {
        "temp": (),
        "vision_encoder.class_embedding": (w,),
        "vision_encoder.positional_embedding": (n + 1, w),
        "vision_encoder.temporal_positional_embedding": (1, cfg.num_frames, w),
        "vision_encoder.conv1.weight": (w, 3, 1, p, p),
        "vision_encoder.ln_pre.weight": (w,),
        "vision_encoder.ln_pre.bias": (w,),
        "vision_encoder.ln_post.weight": (w,),
        "vision_encoder.ln_post.bias": (w,),
        "vision_encoder.proj": (w, d),
        "text_encoder.token_embedding.weight": (cfg.vocab_size, wt),
        "text_encoder.positional_embedding": (cfg.context_length, wt),
        "text_encoder.ln_final.weight": (wt,),
        "text_encoder.ln_final.bias": (wt,),
        "text_encoder.text_projection": (wt, d),
    }
    for tower, width, layers in (
        ("vision_encoder", w, cfg.vision_layers),
        ("text_encoder", wt, cfg.text_layers),
    ):
        for i in range(layers):
            for key, shape in BLOCK_KEYS.items():
                shapes[f"{tower}.transformer.resblocks.{i}.{key}"] = shape(width)
    return shapes


def fabricate(cfg: ViCLIPConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random-valued checkpoint with exactly the official names and shapes."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(cfg).items():
        t = torch.randn(shape, generator=gen) * 0.05
        if key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight")):
            t += 1.0
        state[key] = t
    state["temp"] = torch.tensor(0.01)
    return state


@pytest.fixture(scope="module")
def cfg() -> ViCLIPConfig:
    return ViCLIPConfig.tiny()


@pytest.fixture(scope="module")
def ckpt(cfg: ViCLIPConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("viclip") / "ViClip-tiny.pth"
    torch.save({"model": fabricate(cfg), "epoch": 3}, path)  # extra top-level entries are fine
    return path


@pytest.fixture(scope="module")
def model(cfg: ViCLIPConfig, ckpt: Path) -> ViCLIP:
    return load_viclip(ckpt, config=cfg)


def video(cfg: ViCLIPConfig, batch: int = 2, frames: int | None = None, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    t = frames or cfg.num_frames
    return torch.randn(batch, t, 3, cfg.image_size, cfg.image_size, generator=gen)


def ids_for(texts: list[str]) -> torch.Tensor:
    from internvid.models import tokenize

    return tokenize(texts)


# ----------------------------------------------------------------------- official layout


@pytest.mark.parametrize(
    ("preset", "millions"), [(ViCLIPConfig.b16, 149.6), (ViCLIPConfig.l14, 427.6)]
)
def test_full_size_models_have_the_official_layout(preset, millions: float):
    cfg = preset()
    with torch.device("meta"):
        model = ViCLIP(cfg)
    expected = official_shapes(cfg)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    assert round(count_parameters(model) / 1e6, 1) == millions
    # a meta "checkpoint" with those names and shapes: config inferred, strict check passes
    with torch.device("meta"):
        meta_state = {k: torch.empty(s) for k, s in expected.items()}
    assert infer_config(meta_state) == cfg
    check_state_dict(model, meta_state)


def test_l14_sizes_match_the_released_file():
    cfg = ViCLIPConfig.l14()
    shapes = official_shapes(cfg)
    assert shapes["vision_encoder.positional_embedding"] == (257, 1024)
    assert shapes["vision_encoder.conv1.weight"] == (1024, 3, 1, 14, 14)
    assert ViCLIPConfig.b16().num_patches + 1 == 197
    params = sum(math.prod(s) for s in shapes.values())
    assert abs(params * 4 / 1e9 - 1.71) < 0.01  # fp32 bytes of the 1.71 GB checkpoint


def test_loads_fabricated_checkpoint_strictly(cfg: ViCLIPConfig, ckpt: Path, model: ViCLIP):
    state = fabricate(cfg)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert model.dtype == torch.float32


@pytest.mark.parametrize("prefix", ["module.", "model."])
def test_prefixes_and_bare_dicts(cfg: ViCLIPConfig, model: ViCLIP, prefix: str):
    state = {prefix + k: v for k, v in fabricate(cfg).items()}
    again = load_viclip(state, config=cfg)
    x = video(cfg)
    assert torch.equal(again.encode_video(x), model.encode_video(x))
    assert set(read_state_dict({"model": state})) == set(official_shapes(cfg))


def test_safetensors_hf_layout(cfg: ViCLIPConfig, model: ViCLIP, tmp_path: Path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in fabricate(cfg).items()}, str(path))
    again = load_viclip(path, config=cfg)
    ids = ids_for(["a cat"])
    assert torch.equal(again.encode_text(ids), model.encode_text(ids))


def test_pickled_extras_need_weights_only_false(cfg: ViCLIPConfig, tmp_path: Path):
    path = tmp_path / "train.pth"  # a training checkpoint with a pickled config object
    torch.save({"model": fabricate(cfg), "config": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(CheckpointError, match="weights_only=False"):
        load_viclip(path, config=cfg)
    assert load_viclip(path, config=cfg, weights_only=False).temp.item() == pytest.approx(0.01)


def _raises_naming(state, cfg, *names: str) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_viclip(state, config=cfg)
    assert isinstance(info.value, ValueError)
    for name in names:
        assert name in str(info.value)
    return info.value


def test_missing_key_is_named(cfg: ViCLIPConfig):
    state = fabricate(cfg)
    del state["vision_encoder.transformer.resblocks.1.mlp.c_fc.bias"]
    err = _raises_naming(
        state, cfg, "missing", "vision_encoder.transformer.resblocks.1.mlp.c_fc.bias"
    )
    assert err.missing == ["vision_encoder.transformer.resblocks.1.mlp.c_fc.bias"]


def test_unexpected_key_is_named(cfg: ViCLIPConfig):
    state = fabricate(cfg)
    state["vision_encoder.extra_token"] = torch.zeros(3)
    err = _raises_naming(state, cfg, "unexpected", "vision_encoder.extra_token")
    assert err.unexpected == ["vision_encoder.extra_token"] and not err.missing


def test_misshaped_key_is_named(cfg: ViCLIPConfig):
    state = fabricate(cfg)
    state["text_encoder.positional_embedding"] = torch.zeros(77, cfg.text_width)
    err = _raises_naming(state, cfg, "text_encoder.positional_embedding", "(77, 32)")
    assert err.mismatched == ["text_encoder.positional_embedding"]
    with pytest.raises(CheckpointError, match=re.escape("text_encoder.token_embedding.weight")):
        infer_config({k: v for k, v in fabricate(cfg).items() if "token_embedding" not in k})


def test_round_trip_save_official(cfg: ViCLIPConfig, tmp_path: Path):
    torch.manual_seed(3)
    model = ViCLIP(cfg).eval()
    x, ids = video(cfg), ids_for(["a dog runs", "two cats"])
    for name in ("out.pth", "out.safetensors"):
        path = save_official(model, tmp_path / name)
        if name.endswith(".pth"):
            raw = torch.load(path, map_location="cpu", weights_only=True)
            assert set(raw) == {"model"} and set(raw["model"]) == set(official_shapes(cfg))
        again = load_viclip(path, config=cfg)
        assert torch.equal(again.encode_video(x), model.encode_video(x))
        assert torch.equal(again.encode_text(ids), model.encode_text(ids))


def test_config_json_round_trip(tmp_path: Path):
    for cfg in (ViCLIPConfig.b16(), ViCLIPConfig.l14(), ViCLIPConfig.tiny(mask_ratio=0.9)):
        assert ViCLIPConfig.from_json(cfg.to_json()) == cfg
        cfg.to_json(tmp_path / "c.json")
        assert ViCLIPConfig.from_json(tmp_path / "c.json") == cfg
    l14 = ViCLIPConfig.l14()
    assert (l14.vision_width, l14.vision_layers, l14.vision_heads, l14.patch_size) == (
        1024,
        24,
        16,
        14,
    )
    assert (l14.text_width, l14.text_layers, l14.text_heads, l14.embed_dim) == (768, 12, 12, 768)
    assert (l14.num_frames, l14.image_size, l14.context_length, l14.vocab_size) == (
        8,
        224,
        32,
        49408,
    )
    assert ViCLIPConfig().mask_ratio == 0.0 and not ViCLIPConfig().grad_checkpointing
    with pytest.raises(ValueError, match="bogus"):
        ViCLIPConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        ViCLIPConfig.tiny(vision_heads=3)
    with pytest.raises(ValueError):
        ViCLIPConfig.tiny(mask_ratio=1.0)


# ------------------------------------------------------------------------------- encoders


def test_encoder_shapes_and_normalisation(cfg: ViCLIPConfig, model: ViCLIP):
    x, ids = video(cfg, batch=3), ids_for(["a cat", "a dog", "people dancing", "rain"])
    with torch.no_grad():
        v, t = model.encode_video(x), model.encode_text(ids)
        vn, tn = model.encode_video(x, normalize=True), model.encode_text(ids, normalize=True)
        logits_v, logits_t = model(x, ids)
    assert v.shape == (3, cfg.embed_dim) and t.shape == (4, cfg.embed_dim)
    assert torch.allclose(vn.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(tn.norm(dim=-1), torch.ones(4), atol=1e-6)
    assert torch.allclose(vn, v / v.norm(dim=-1, keepdim=True), atol=1e-6)
    assert logits_v.shape == (3, 4) and torch.equal(logits_t, logits_v.T)
    assert torch.allclose(logits_v, 100.0 * vn @ tn.T, atol=1e-4)
    assert torch.allclose(model.encode_text(["a cat", "a dog"]), t[:2])


def test_text_uses_eot_and_is_causal(cfg: ViCLIPConfig, model: ViCLIP):
    ids = ids_for(["a cat on a mat"])  # EOT at position 7
    with torch.no_grad():
        full = model.encode_text(ids)
        short = model.encode_text(ids[:, :8])  # positions after EOT cannot matter
        noisy = ids.clone()
        noisy[0, 8:] = 500  # later tokens (still < EOT id) do not reach the EOT feature
        assert torch.allclose(model.encode_text(noisy), full, atol=1e-6)
    assert torch.allclose(short, full, atol=1e-6)


def test_temporal_embedding_for_other_clip_lengths(cfg: ViCLIPConfig, model: ViCLIP):
    vis = model.vision_encoder
    emb = vis.temporal_positional_embedding
    assert torch.equal(vis.temporal_embedding(8), emb)
    assert torch.allclose(vis.temporal_embedding(1), emb.mean(1, keepdim=True))
    assert torch.equal(vis.temporal_embedding(4), emb[:, :4])
    up = vis.temporal_embedding(16)
    ref = nn.functional.interpolate(emb.transpose(1, 2), size=16, mode="linear").transpose(1, 2)
    assert up.shape == (1, 16, cfg.vision_width) and torch.allclose(up, ref)
    for frames in (1, 4, 16):
        assert model.encode_video(video(cfg, frames=frames)).shape == (2, cfg.embed_dim)
    with pytest.raises(ValueError, match="pixels"):
        model.encode_video(torch.zeros(1, 8, 3, 48, 48))


def test_bf16_inference(cfg: ViCLIPConfig, ckpt: Path, model: ViCLIP):
    low = load_viclip(ckpt, config=cfg, dtype=torch.bfloat16)
    x, ids = video(cfg), ids_for(["a cat", "a dog"])
    with torch.no_grad():
        v, t = low.encode_video(x, normalize=True), low.encode_text(ids, normalize=True)
        v32, t32 = model.encode_video(x, normalize=True), model.encode_text(ids, normalize=True)
    assert v.dtype == t.dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(v.float(), v32).min() > 0.99
    assert torch.nn.functional.cosine_similarity(t.float(), t32).min() > 0.99
    half = ViCLIP(cfg).eval().to(torch.bfloat16)  # model.to(dtype) works as well
    assert half.encode_video(x).dtype == torch.bfloat16


# ---------------------------------------------------------------------- masking, training


def test_masking_drops_tokens_keeps_cls(cfg: ViCLIPConfig, model: ViCLIP):
    seen: list[torch.Tensor] = []
    hook = model.vision_encoder.transformer.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone())
    )
    patches = cfg.num_frames * cfg.num_patches  # 8 x 16 = 128
    masked = ViCLIP(cfg.replace(mask_ratio=0.9))
    masked.load_state_dict(model.state_dict())
    masked.vision_encoder.transformer.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone())
    )
    try:
        x = video(cfg, batch=3)
        with torch.no_grad():
            model.encode_video(x)  # eval, config 0: everything
            model.encode_video(x, mask_ratio=0.5)  # explicitly asked, even in eval
            masked.eval().encode_video(x)  # eval: masking off
            masked.train().encode_video(x)  # training: 90 % dropped
    finally:
        hook.remove()
        masked.eval()
    lengths = [s.shape[1] for s in seen]
    assert lengths == [1 + patches, 1 + patches - 64, 1 + patches, 1 + patches - int(0.9 * patches)]
    vis = model.vision_encoder
    cls = vis.ln_pre(vis.class_embedding + vis.positional_embedding[0])
    for s in seen:
        assert torch.allclose(s[:, 0], cls.expand(3, -1), atol=1e-6)  # CLS first, every sample


def test_drop_tokens_keeps_an_ordered_subset():
    tokens = torch.arange(2 * 50, dtype=torch.float32).view(2, 50, 1).expand(2, 50, 4)
    kept = drop_tokens(tokens, 0.9)
    assert kept.shape == (2, 5, 4)
    for row in range(2):
        values = kept[row, :, 0]
        assert torch.all(values[1:] > values[:-1])  # order kept, no repeats
        assert torch.all((values >= 50 * row) & (values < 50 * (row + 1)))  # own sample only
    assert drop_tokens(tokens, 0.0) is tokens


def test_grad_checkpointing_only_when_training(cfg: ViCLIPConfig, model: ViCLIP, monkeypatch):
    calls = []
    real = viclip_mod.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(viclip_mod, "checkpoint", counting)
    x, ids = video(cfg), ids_for(["a cat", "a dog"])

    def grads(m: ViCLIP) -> dict[str, torch.Tensor]:
        m.zero_grad()
        torch.manual_seed(0)
        logits, _ = m(x, ids)
        logits.logsumexp(dim=1).sum().backward()
        return {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}

    plain = ViCLIP(cfg)
    plain.load_state_dict(model.state_dict())
    ckpt_model = ViCLIP(cfg.replace(grad_checkpointing=True))
    ckpt_model.load_state_dict(model.state_dict())
    ckpt_model.eval()
    with torch.no_grad():
        ckpt_model.encode_video(x)
    assert not calls  # eval: off
    g_plain, g_ckpt = grads(plain.train()), grads(ckpt_model.train())
    assert len(calls) == cfg.vision_layers + cfg.text_layers
    assert g_plain.keys() == g_ckpt.keys() and len(g_plain) == len(list(plain.parameters()))
    for k in g_plain:
        assert torch.allclose(g_plain[k], g_ckpt[k], atol=1e-6), k


def test_temperature(cfg: ViCLIPConfig):
    m = ViCLIP(cfg)
    assert m.temp.shape == () and m.temp.item() == pytest.approx(0.01)
    assert m.logit_scale.item() == pytest.approx(100.0)
    with torch.no_grad():
        m.temp.fill_(0.001)
    assert m.logit_scale.item() == pytest.approx(100.0)  # clamped at 1/100
    m.train()(video(cfg), ids_for(["a"]))
    assert m.temp.item() == pytest.approx(0.01)  # training forward clamps in place


# ---------------------------------------------------------------------------- attention


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_attention_equals_multihead_attention(causal: bool):
    torch.manual_seed(0)
    width, heads, length, batch = 64, 4, 33, 3
    ours = SelfAttention(width, heads)
    with torch.no_grad():
        ours.in_proj_bias.normal_(std=0.1)
        ours.out_proj.bias.normal_(std=0.1)
    mha = nn.MultiheadAttention(width, heads)  # the official module: (L, B, W) inputs
    mha.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(batch, length, width)
    mask = None
    if causal:
        mask = torch.full((length, length), float("-inf")).triu_(1)
    with torch.no_grad():
        seq_first = x.transpose(0, 1)
        expected = mha(seq_first, seq_first, seq_first, need_weights=False, attn_mask=mask)[0]
        got = ours(x, causal=causal)
    assert torch.allclose(got, expected.transpose(0, 1), atol=1e-5, rtol=0)


def test_video_tower_equals_official_style_reference(cfg: ViCLIPConfig):
    spec = importlib.util.spec_from_file_location(
        "bench_viclip", ROOT / "benchmarks/bench_viclip.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ours, ref = bench.build_pair(cfg.replace(vision_layers=3), "cpu", torch.float32)
    x = video(cfg, batch=3)
    with torch.no_grad():
        assert torch.allclose(ours.encode_video(x), ref(x), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- preprocessing


def test_sample_indices():
    assert sample_indices(8) == list(range(8))
    assert sample_indices(20) == [0, 2, 4, 6, 8, 10, 12, 14]  # frames[::20 // 8][:8]
    assert sample_indices(17) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sample_indices(100) == [0, 12, 24, 36, 48, 60, 72, 84]
    with pytest.raises(ValueError, match="at least 8"):
        sample_indices(7)  # the demo asserts len >= 8 (its step would be 0)
    assert sample_indices(16, mode="middle") == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sample_indices(100, mode="middle") == [5, 18, 30, 43, 55, 68, 80, 93]
    assert sample_indices(5, mode="middle") == [0, 1, 2, 3, 4, 4, 4, 4]  # padded with the last
    assert sample_indices(1, mode="middle") == [0] * 8
    with pytest.raises(ValueError):
        sample_indices(10, mode="random")
    with pytest.raises(ValueError):
        sample_indices(0, mode="middle")


def test_frames_to_tensor_matches_the_demo():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(3)]
    out = frames_to_tensor(frames)
    assert out.shape == (3, 3, 224, 224) and out.dtype == torch.float32
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 1, 3)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 1, 3)
    for i, frame in enumerate(frames):  # the demo: cv2.resize(bgr[:, :, ::-1], (224, 224))
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        demo = (cv2.resize(bgr[:, :, ::-1], (224, 224)) / 255.0 - mean) / std
        expected = torch.from_numpy(demo.transpose(2, 0, 1)).float()
        assert torch.equal(out[i], expected)
        assert torch.equal(frames_to_tensor([bgr], bgr=True)[0], expected)
    flat = np.full((50, 70, 3), (255, 128, 0), dtype=np.uint8)  # no crop: constant stays constant
    got = frames_to_tensor(flat)[0]
    want = (torch.tensor([255, 128, 0]) / 255.0 - torch.tensor(mean.ravel())) / torch.tensor(
        std.ravel()
    )
    assert torch.allclose(got, want.float().view(3, 1, 1).expand(3, 224, 224), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_tensor([np.zeros((10, 10, 3), dtype=np.float32)])


def test_preprocess_clip_feeds_the_model(cfg: ViCLIPConfig, model: ViCLIP):
    frames = np.stack([np.full((40, 60, 3), i * 10, dtype=np.uint8) for i in range(24)])
    clip = preprocess_clip(frames, size=cfg.image_size)
    assert clip.shape == (8, 3, cfg.image_size, cfg.image_size)
    first_values = clip[:, 0, 0, 0]  # frames 0, 3, 6, ... (step 24 // 8)
    expected = (torch.arange(0, 24, 3) * 10 / 255.0 - 0.485) / 0.229
    assert torch.allclose(first_values, expected.float(), atol=1e-6)
    assert model.encode_video(clip.unsqueeze(0)).shape == (1, cfg.embed_dim)
