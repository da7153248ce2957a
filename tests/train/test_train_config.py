"""TrainConfig: the one typed loader (keys and types, tuples from lists, .json), the shipped
configs, device / dtype, and the train / train-frames command lines built from the fields."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import TrainConfig, TrainFramesConfig, config_from_dict, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_config_rejects_unknown_and_loads_yaml(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bogus'\]"):
        TrainConfig.from_dict({"bogus": 1})
    path = tmp_path / "c.yaml"
    path.write_text("model: tiny\nsteps: 5\nbetas: [0.9, 0.95]\nmodel_extra: 1\n")
    with pytest.raises(ValueError, match="model_extra"):
        TrainConfig.from_file(path)
    path.write_text("model: {vision_layers: 1, text_layers: 1}\nsteps: 5\nbetas: [0.9, 0.95]\n")
    cfg = TrainConfig.from_file(path)
    assert cfg.betas == (0.9, 0.95) and cfg.total_steps == 5
    assert cfg.model_config().vision_layers == 1
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 2, "num_samples": 10}))
    assert TrainConfig.from_file(tmp_path / "c.json").total_steps == 5


def test_every_shipped_config_loads() -> None:
    configs = sorted((CONFIGS).glob("*.yaml"))
    assert {p.name for p in configs} >= {"shapes.yaml", "viclip_b16_finish.yaml"}
    for path in configs:
        cfg = TrainConfig.from_file(path)
        cfg.model_config()  # the model section is valid too
    finish = TrainConfig.from_file(configs[0].parent / "viclip_b16_finish.yaml")
    assert (finish.mask_ratio, finish.lr, finish.epochs, finish.subset) == (0.0, 4e-6, 1, 0.5)


def test_shipped_configs_carry_the_official_recipe() -> None:
    folder = CONFIGS
    common = dict(
        betas=(0.9, 0.98), eps=1e-8, weight_decay=0.2, min_lr_multi=0.01, drop_path=0.1,
        freeze_text=True, dtype="bf16", pre_text=True, min_caption_words=2, frames=8,
        image_size=224,
    )  # fmt: skip
    pretrain = dict(epochs=10, warmup=0.05, mask_ratio=0.9, batch_size=512, subset=1.0)
    finish = dict(
        epochs=1, subset=0.5, subset_seed=42, warmup=0.2, lr=4e-6, mask_ratio=0.0, batch_size=32
    )
    expected = {
        "viclip_b16_pretrain.yaml": {**common, **pretrain, "lr": 2e-4, "model": "b16"},
        "viclip_l14_pretrain.yaml": {**common, **pretrain, "lr": 4e-4, "model": "l14"},
        "viclip_b16_finish.yaml": {**common, **finish, "model": "b16", "wise_ft": 0.5},
        "viclip_l14_finish.yaml": {**common, **finish, "model": "l14", "wise_ft": 0.5},
    }
    for name, values in expected.items():
        cfg = TrainConfig.from_file(folder / name)
        assert {k: getattr(cfg, k) for k in values} == values, name
        model_cfg = cfg.model_config()
        assert model_cfg.drop_path_rate == 0.1 and model_cfg.mask_ratio == values["mask_ratio"]
    assert TrainConfig.from_file(folder / "viclip_l14_pretrain.yaml").grad_checkpointing
    assert not TrainConfig.from_file(folder / "viclip_b16_pretrain.yaml").grad_checkpointing
    shapes = TrainConfig.from_file(folder / "shapes.yaml")  # the documented proof's settings
    assert (shapes.drop_path, shapes.min_lr_multi, shapes.eps) == (0.0, 0.0, 1e-6)
    assert shapes.model_config().drop_path_rate == 0.0


def test_loader_checks_types_naming_the_key() -> None:
    for data, key in (
        ({"steps": "5"}, "config.steps"),
        ({"lr": "fast"}, "config.lr"),
        ({"freeze_text": 1}, "config.freeze_text"),
        ({"betas": [0.9]}, "config.betas"),
        ({"betas": [0.9, "x"]}, "config.betas"),
        ({"betas": 0.9}, "config.betas"),
        ({"model": [1, 2]}, "config.model"),
        ({"extra": "notes"}, "config.extra"),
    ):
        with pytest.raises(ValueError, match=re.escape(key)):
            TrainConfig.from_dict(data)
    cfg = config_from_dict(TrainConfig, {"betas": [0.5, 1], "model": {"preset": "tiny"}})
    assert cfg.betas == (0.5, 1.0) and isinstance(cfg.betas, tuple)
    assert cfg.model == {"preset": "tiny"} and cfg.lr == 2e-4


def test_coerce_reads_lists_as_tuples() -> None:
    @dataclasses.dataclass
    class Demo:
        pair: tuple[float, int] = (0.0, 0)  # fixed length, one type per place
        many: tuple[str, ...] = ()  # any length
        table: dict[str, int] = dataclasses.field(default_factory=dict)  # str -> int

    demo = config_from_dict(Demo, {"pair": [1, 2], "many": ["a", "b", "c"], "table": {"x": 1}})
    assert (demo.pair, demo.many, demo.table) == ((1.0, 2), ("a", "b", "c"), {"x": 1})
    assert type(demo.pair[0]) is float and config_from_dict(Demo, {"many": []}).many == ()
    for bad, key in (
        ({"pair": [1, 2, 3]}, "expected 2 items"),
        ({"pair": [1, 2.5]}, "expected int"),
        ({"many": "abc"}, "expected a list"),
        ({"table": {"x": "1"}}, "config.table.x"),
    ):
        with pytest.raises(ValueError, match=re.escape(key)):
            config_from_dict(Demo, bad)


def test_json_config_reads_exponents_as_numbers(tmp_path: Path) -> None:
    """A run's config.json (json.dumps writes 1e-08, which YAML 1.1 reads as a string)."""
    written = TrainConfig(eps=1e-8, lr=4e-6, betas=(0.9, 0.95), model={"preset": "tiny"})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(written.to_dict(), indent=2))
    assert "1e-08" in path.read_text()
    assert TrainConfig.from_file(path) == written == load_config(TrainConfig, path)


def test_old_bf16_key_reads_as_dtype(tmp_path: Path) -> None:
    assert TrainConfig.from_dict({"bf16": True}).dtype == "bf16"
    assert TrainConfig.from_dict({"bf16": False}).dtype == "fp32"
    with pytest.raises(ValueError, match="both dtype and the old bf16"):
        TrainConfig.from_dict({"bf16": True, "dtype": "bf16"})
    with pytest.raises(ValueError, match=r"config\.bf16"):
        TrainConfig.from_dict({"bf16": "yes"})


def test_device_and_dtype_are_checked() -> None:
    assert (TrainConfig().device, TrainConfig().dtype) == ("auto", "fp32")
    for device in ("auto", "cpu", "cuda", "cuda:3"):
        assert TrainConfig(device=device).device == device
    for bad in ("gpu", "cuda:x", "cuda:"):
        with pytest.raises(ValueError, match="device must be"):
            TrainConfig(device=bad)
    with pytest.raises(ValueError, match=r"fp16 is not supported for training.*loss scaling"):
        TrainConfig(dtype="fp16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        TrainConfig(dtype="float16")


def test_device_and_autocast_picked_for_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from internvid.train.loop import autocast_dtype, pick_device

    assert pick_device("cpu", distributed=False) == torch.device("cpu")
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16  # CPU bf16 works (slow)
    assert autocast_dtype("auto", torch.device("cpu")) is None
    monkeypatch.setenv("LOCAL_RANK", "1")
    if torch.cuda.is_available():
        assert pick_device("auto", distributed=True) == torch.device("cuda", 1)
        assert pick_device("cuda", distributed=True) == torch.device("cuda", 1)
        assert pick_device("cuda:0", distributed=False) == torch.device("cuda", 0)
        with pytest.raises(ValueError, match="under torchrun every process"):
            pick_device("cuda:0", distributed=True)
    else:
        assert pick_device("auto", distributed=True) == torch.device("cpu")
        for spec in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match="finds no GPU"):
                pick_device(spec, distributed=False)


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))


def test_train_help_lists_every_field_with_its_comment_and_default() -> None:
    from internvid.cli.train import field_comments

    text = _help("train")
    comments = field_comments(TrainConfig)
    assert (
        comments["betas"] == "AdamW betas" and comments["extra"] == "free-form notes, stored as is"
    )
    assert comments["device"].startswith("auto (each process's GPU")
    shown = {"betas": "0.9,0.98", "freeze_text": "true", "wise_ft_with": '""', "eps": "1e-08"}
    for f in dataclasses.fields(TrainConfig):
        assert comments.get(f.name), f"{f.name} has no comment"
        if f.name in ("extra", "device", "dtype"):
            continue
        as_flag = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        default = shown.get(f.name, as_flag)
        line = f"--{f.name.replace('_', '-')} "
        assert line in text and f"{comments[f.name]} (default: {default})" in text, f.name
    # device and dtype: the shared options, their training meaning and defaults in the text
    assert "--device auto (the default)" in text and "fp32 (the default: none)" in text


def test_train_flags_parse_as_the_field_types(tmp_path: Path) -> None:
    from internvid.train.args import build_config, parse_args

    cfg, args = parse_args(["--betas", "0.8,0.9", "--freeze-text", "no", "--steps", "7",
                            "--model", '{"preset": "tiny", "vision_layers": 1}', "--resume"])  # fmt: skip
    assert (cfg.betas, cfg.freeze_text, cfg.steps, args.resume) == ((0.8, 0.9), False, 7, True)
    assert cfg.model == {"preset": "tiny", "vision_layers": 1}
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\nbf16: true\nlr: 1.0e-3\n")
    cfg = build_config(path, {"lr": "2e-3", "dtype": "fp32"})  # flags override the file
    assert (cfg.steps, cfg.lr, cfg.dtype) == (5, 2e-3, "fp32")
    with pytest.raises(ValueError):
        build_config(None, {"steps": "many"})


def test_train_command_refuses_bad_settings_before_training(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for args, message in (
        (["--dtype", "fp16"], "loss scaling"),
        (["--steps", "many"], "many"),
        (["--warmup", "1.5"], "warmup"),
        (["--bogus", "1"], "--bogus"),
    ):
        result = CliRunner().invoke(app, ["train", *args, "--out", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert message in re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output)), args
    assert not out.exists()


def test_train_frames_config_is_checked(tmp_path: Path) -> None:
    assert dataclasses.asdict(TrainFramesConfig()) == {
        "frames": 16,
        "short_side": 256,
        "quality": 90,
    }
    path = tmp_path / "f.yaml"
    missing, out = str(tmp_path / "missing"), str(tmp_path / "o")
    for text, key in (("quality: 101\n", "quality"), ("short_side: 8\n", "short_side"),
                      ("frames: 4\nfps: 1\n", "fps")):  # fmt: skip
        path.write_text(text)
        result = CliRunner().invoke(app, ["train-frames", missing, out, "-c", str(path)])
        assert result.exit_code == 2 and key in result.output, result.output
    assert not Path(out).exists()
