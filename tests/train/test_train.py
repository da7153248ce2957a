"""ViCLIP training: smoke, loss falls, bitwise resume, CLIP init equivalence, config."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from internvid.config import TrainConfig
from internvid.models.tokenizer import tokenize
from internvid.models.viclip import ViCLIP, ViCLIPConfig
from internvid.train import (
    ShapesDataset,
    init_from_clip,
    latest_checkpoint,
    main,
    param_groups,
    warmup_cosine,
)

TINY = ["--model", "tiny", "--frames", "4", "--image-size", "32", "--batch-size", "4"]


def test_smoke_two_steps(tmp_path: Path) -> None:
    result = main([*TINY, "--steps", "2", "--out", str(tmp_path)])
    assert len(result["losses"]) == 2 and all(math.isfinite(x) for x in result["losses"])
    ckpt = torch.load(result["checkpoint"], weights_only=True)
    assert ckpt["step"] == 2 and ckpt["data_position"] == 8
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "losses"}
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_checkpoint_format_is_stable(tmp_path: Path) -> None:
    """The keys a resume reads (checkpoints written before the train/ package still resume)."""
    result = main([*TINY, "--steps", "1", "--out", str(tmp_path), "--log-every", "0"])
    ckpt = torch.load(result["checkpoint"], weights_only=True)
    assert set(ckpt) == {
        "model", "optimizer", "scheduler", "step", "data_position", "losses", "rng", "config",
    }  # fmt: skip
    assert set(ckpt["rng"]) == {"torch", "numpy", "python"} | (
        {"cuda"} if torch.cuda.is_available() else set()
    )
    assert set(ckpt["optimizer"]) == {"state", "param_groups"}
    assert ckpt["config"] == TrainConfig.from_file(tmp_path / "config.json").to_dict()
    assert ckpt["config"]["dtype"] == "fp32" and "bf16" not in ckpt["config"]


def test_loss_falls(tmp_path: Path) -> None:
    args = [*TINY, "--steps", "40", "--lr", "2e-3", "--warmup", "0.1", "--mask-ratio", "0.5"]
    losses = main([*args, "--num-samples", "64", "--out", str(tmp_path)])["losses"]
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < first - 0.1, (first, last)


def test_resume_is_bitwise(tmp_path: Path) -> None:
    args = [*TINY, "--steps", "6", "--ckpt-every", "3", "--num-samples", "10", "--lr", "1e-3"]
    full = main([*args, "--out", str(tmp_path / "a")])["losses"]
    step3 = tmp_path / "a" / "ckpt_0000003.pt"
    assert step3.is_file() and latest_checkpoint(tmp_path / "a").name == "ckpt_0000006.pt"
    (tmp_path / "b").mkdir()
    shutil.copy(step3, tmp_path / "b" / step3.name)
    resumed = main([*args, "--out", str(tmp_path / "b"), "--resume"])
    assert resumed["step"] == 6
    assert resumed["losses"][:3] == full[:3]
    assert resumed["losses"][3:] == full[3:]  # bitwise: floats compared exactly


def test_shapes_dataset_deterministic() -> None:
    data = ShapesDataset(8, frames=4, size=32, seed=1)
    (v1, c1), (v2, c2) = data[3], data[3]
    assert v1.shape == (4, 3, 32, 32) and torch.equal(v1, v2) and c1 == c2
    assert c1.startswith("a ") and " moving " in c1
    assert not torch.equal(v1[0], v1[-1])  # it moves


def _tiny_clip(act: str = "quick_gelu", image_size: int = 32) -> Any:
    transformers = pytest.importorskip("transformers")
    common = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2)
    cfg = transformers.CLIPConfig(
        text_config=dict(
            **common,
            num_attention_heads=2,
            vocab_size=49408,
            max_position_embeddings=77,
            hidden_act=act,
            eos_token_id=49407,
        ),
        vision_config=dict(
            **common, num_attention_heads=2, image_size=image_size, patch_size=8, hidden_act=act
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    clip = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():  # non-trivial norms and embeddings
        for name, p in clip.named_parameters():
            if "norm" in name or "class_embedding" in name:
                p.add_(0.1 * torch.randn_like(p))
    return clip


def _features(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output  # type: ignore[attr-defined]


def test_init_from_clip_matches_clip_features() -> None:
    clip = _tiny_clip()
    model = ViCLIP(ViCLIPConfig.tiny(num_frames=4)).eval()
    init_from_clip(model, clip)
    assert torch.count_nonzero(model.vision_encoder.temporal_positional_embedding) == 0
    assert torch.allclose(model.logit_scale, torch.tensor(math.exp(2.6592)))
    torch.manual_seed(1)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ours = model.encode_video(images[:, None], normalize=True)  # (3, D): T = 1
        theirs = F.normalize(_features(clip.get_image_features(pixel_values=images)), dim=-1)
        assert (ours - theirs).abs().max() < 1e-5
        ids = tokenize(["a red circle moving left", "a blue square", "x"])  # (3, 32)
        ours_t = model.encode_text(ids, normalize=True)
        theirs_t = F.normalize(_features(clip.get_text_features(input_ids=ids)), dim=-1)
        assert (ours_t - theirs_t).abs().max() < 1e-5


def test_init_from_clip_resizes_positions_and_refuses_gelu() -> None:
    model = ViCLIP(ViCLIPConfig.tiny(num_frames=2, image_size=48))
    init_from_clip(model, _tiny_clip())  # 4x4 grid -> 6x6 grid
    assert model.vision_encoder.positional_embedding.shape == (37, 32)
    with torch.no_grad():
        assert torch.isfinite(model.encode_video(torch.randn(1, 2, 3, 48, 48))).all()
    with pytest.raises(ValueError, match="QuickGELU"):
        init_from_clip(ViCLIP(ViCLIPConfig.tiny()), _tiny_clip(act="gelu"))


def test_main_inits_from_clip_folder(tmp_path: Path) -> None:
    clip = _tiny_clip()
    clip.save_pretrained(tmp_path / "clip")
    result = main([*TINY, "--steps", "1", "--init", str(tmp_path / "clip"), "--out", str(tmp_path)])
    state = torch.load(result["checkpoint"], weights_only=True)["model"]
    text = state["text_encoder.token_embedding.weight"]  # frozen: still CLIP's
    assert torch.equal(text, clip.text_model.embeddings.token_embedding.weight)


def test_heldout_scores_count_ties_against_the_model() -> None:
    from internvid.train import evaluate_shapes

    model = ViCLIP(ViCLIPConfig.tiny(num_frames=4))
    with torch.no_grad():  # a collapsed video tower: every clip has the same embedding
        model.vision_encoder.proj.zero_()
        model.vision_encoder.ln_post.bias.fill_(1.0)
    scores = evaluate_shapes(model, frames=4, size=32, sets=1)
    assert scores == {"t2v_r1": 0.0, "direction_acc": 0.0, "clips": 48.0}


def test_shapes_single_frames_do_not_tell_the_direction() -> None:
    """Over many clips, the shape's mean position in any one frame is the same for every
    direction (it wraps around): only the order of frames tells the direction."""
    data = ShapesDataset(400, frames=4, size=32, seed=3)
    by_dir: dict[str, list[torch.Tensor]] = {}
    for i in range(len(data)):
        video, caption = data[i]
        by_dir.setdefault(caption.split()[-1], []).append(video.std(dim=1))  # (T, S, S) edges
    means = {d: torch.stack(v).mean(0) for d, v in by_dir.items()}  # (T, S, S) per direction
    for t in range(4):
        frames = [means[d][t] for d in sorted(means)]
        spread = max(float((a - b).abs().mean()) for a in frames for b in frames)
        assert spread < 0.25 * float(frames[0].mean()), t


def test_cli_train_with_config_writes_wise_ft_and_inits_from_a_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from internvid.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: tiny\nframes: 4\nimage_size: 32\nbatch_size: 2\nsteps: 2\n")
    first = tmp_path / "first"
    result = CliRunner().invoke(app, ["train", "--config", str(cfg), "--out", str(first)])
    assert result.exit_code == 0, result.output
    assert latest_checkpoint(first).name == "ckpt_0000002.pt"
    second = tmp_path / "second"
    args = ["train", "--config", str(cfg), "--out", str(second), "--init", str(first)]
    result = CliRunner().invoke(app, [*args, "--wise-ft", "0.5", "--lr", "0"])
    assert result.exit_code == 0, result.output
    trained = torch.load(latest_checkpoint(first), weights_only=True)["model"]
    averaged = torch.load(second / "wise_ft.pth", weights_only=True)["model"]
    # lr 0: the second run's weights are its init, so the average equals the first run's
    for key, value in trained.items():
        assert torch.allclose(averaged[key], value, atol=1e-6), key
    bad = CliRunner().invoke(app, ["train", "--config", str(cfg), "--bogus", "1"])
    assert bad.exit_code != 0


# ------------------------------------------------------------------ the official recipe, point by point


def _official_lr_lambda(
    step: int, num_warmup_steps: float, num_training_steps: float, min_lr_multi: float
) -> float:
    """OpenGVLab's get_cosine_schedule_with_warmup(num_cycles=0.5) lr_lambda, transcribed."""
    num_cycles = 0.5
    if step < num_warmup_steps:
        return max(min_lr_multi, float(step) / float(max(1, num_warmup_steps)))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(min_lr_multi, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


@pytest.mark.parametrize(
    ("steps_per_epoch", "epochs", "warmup_epochs"),
    [(37, 10, 0.5), (100, 10, 0.5), (25, 1, 0.2), (7, 3, 0.0), (3, 1, 0.1)],
)
def test_schedule_is_the_official_formula_at_every_step(
    steps_per_epoch: int, epochs: int, warmup_epochs: float
) -> None:
    total = steps_per_epoch * epochs  # the official num_training_steps
    warmup = steps_per_epoch * warmup_epochs  # num_warmup_steps: a float, not rounded
    ours = warmup_cosine(total, warmup, 0.01)
    for step in range(total + 1):
        assert ours(step) == _official_lr_lambda(step, warmup, total, 0.01), step
    assert ours(0) == (0.01 if warmup > 0 else 1.0)  # warm-up starts at the floor, not 1/warmup
    assert min(ours(s) for s in range(total)) == 0.01  # and the cosine floors there


def test_main_runs_the_official_schedule_and_optimizer(tmp_path: Path) -> None:
    args = [*TINY, "--steps", "5", "--lr", "1e-3", "--warmup", "0.4", "--num-samples", "8"]
    ckpt = torch.load(main([*args, "--out", str(tmp_path)])["checkpoint"], weights_only=True)
    # 5 steps, warm-up 0.4 x 5 = 2 steps; the scheduler has stepped 5 times
    assert ckpt["scheduler"]["_last_lr"][0] == 1e-3 * _official_lr_lambda(5, 2.0, 5, 0.01)
    groups = ckpt["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.2, 0.0]
    assert all(g["betas"] == (0.9, 0.98) and g["eps"] == 1e-8 for g in groups)


def test_weight_decay_groups_are_the_official_rule() -> None:
    """utils/optimizer.py add_weight_decay: no decay for 1-D params, biases and the names of
    ViCLIP.no_weight_decay(); frozen parameters are not in the optimiser at all."""
    model = ViCLIP(ViCLIPConfig.tiny())
    model.freeze_text()
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ({names[id(p)] for p in g["params"]} for g in param_groups(model, 0.2))
    vision = {n for n, p in model.named_parameters() if p.requires_grad}
    assert decay | no_decay == vision and not any(n.startswith("text_") for n in vision)
    blk = "vision_encoder.transformer.resblocks.0."
    assert decay == {
        "vision_encoder.conv1.weight",
        "vision_encoder.proj",
        *(f"vision_encoder.transformer.resblocks.{i}.{k}" for i in range(2) for k in (
            "attn.in_proj_weight", "attn.out_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"
        )),
    }  # fmt: skip
    assert {"temp", "vision_encoder.positional_embedding", blk + "ln_1.weight"} <= no_decay
    assert "vision_encoder.temporal_positional_embedding" in no_decay  # 3-D, by name
    # an unfrozen text tower: the official names are modules, so the token embedding decays
    text = ViCLIP(ViCLIPConfig.tiny())
    text_names = {id(p): n for n, p in text.named_parameters()}
    decay_t, no_decay_t = (
        {text_names[id(p)] for p in g["params"]} for g in param_groups(text, 0.2)
    )
    assert "text_encoder.token_embedding.weight" in decay_t
    assert "text_encoder.text_projection" in decay_t
    assert {"text_encoder.positional_embedding", "text_encoder.ln_final.weight"} <= no_decay_t


def test_drop_path_rates_per_block_and_identity_in_eval() -> None:
    cfg = ViCLIPConfig.tiny(vision_layers=4, num_frames=4, drop_path_rate=0.1)
    model = ViCLIP(cfg)
    blocks = model.vision_encoder.transformer.resblocks
    official = [x.item() for x in torch.linspace(0, 0.1, 4)]  # the official per-block rule
    assert [b.drop_path1.rate for b in blocks] == official == [b.drop_path2.rate for b in blocks]
    assert official[0] == 0.0 and official[-1] == pytest.approx(0.1)
    assert all(b.drop_path1.rate == 0.0 for b in model.text_encoder.transformer.resblocks)
    plain = ViCLIP(ViCLIPConfig.tiny(vision_layers=4, num_frames=4))
    assert plain.state_dict().keys() == model.state_dict().keys()  # no new weights to load
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    video = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        reference = plain.eval().encode_video(video)
        assert torch.equal(model.eval().encode_video(video), reference)  # eval: identity
        assert torch.equal(plain.train().encode_video(video), reference)  # mask_ratio 0
        torch.manual_seed(1)
        assert not torch.equal(model.train().encode_video(video), reference)  # train: active


def test_drop_path_mask_is_per_token_position_shared_by_the_batch() -> None:
    """The official blocks see (L, B, W) tokens, so timm's per-first-dim mask drops token
    positions for the whole batch; ours, on (B, L, W), draws the same (1, L, 1) mask."""
    from internvid.models.viclip import DropPath

    drop = DropPath(0.25).train()
    torch.manual_seed(0)
    out = drop(torch.ones(3, 4000, 5))
    assert torch.equal(out, out[:1].expand_as(out))  # the same for every clip ...
    assert torch.equal(out, out[..., :1].expand_as(out))  # ... and every channel
    assert out.unique().tolist() == [0.0, torch.tensor(1 / 0.75).item()]  # float32 1 / keep
    dropped = float((out[0, :, 0] == 0).float().mean())
    assert abs(dropped - 0.25) < 0.03  # 4000 positions: 3 standard deviations is 0.02
    assert torch.equal(drop.eval()(out), out) and torch.equal(DropPath(0.0).train()(out), out)


@pytest.mark.slow
def test_shapes_config_learns_motion_an_image_model_cannot(tmp_path: Path) -> None:
    """The documented proof (configs/shapes.yaml, ~1.5 min on 2 CPU cores)."""
    config = Path(__file__).resolve().parents[2] / "configs" / "shapes.yaml"
    base = ["--config", str(config), "--log-every", "0"]
    video = main([*base, "--out", str(tmp_path / "video")])["heldout"]
    image = main([*base, "--frames", "1", "--out", str(tmp_path / "image")])["heldout"]
    assert video["t2v_r1"] >= 5 * 100 / 48, video  # at least 5x chance
    assert video["direction_acc"] >= 40.0 and image["direction_acc"] <= 35.0, (video, image)
