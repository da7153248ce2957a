"""The trainer's arguments: --config FILE, --resume, --resume-from, any field as --field VALUE."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from internvid.config import TrainConfig

# the TrainConfig fields the command line sets (`extra` only from a config file)
FIELDS = tuple(f for f in dataclasses.fields(TrainConfig) if f.name != "extra")


def parse_args(argv: Sequence[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    """`--config FILE`, `--resume`, `--resume-from FILE`, and `--<field> VALUE` overrides."""
    parser = argparse.ArgumentParser(
        prog="internvid-train", description="Train ViCLIP (python -m internvid.train, torchrun)."
    )
    parser.add_argument("--config", help="a TrainConfig .json / .yaml")
    parser.add_argument("--resume", action="store_true", help="continue from out/ckpt_*.pt")
    parser.add_argument("--resume-from", help="continue from this checkpoint file")
    for f in FIELDS:
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None)
    args = parser.parse_args(list(argv) if argv is not None else None)
    given = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name) is not None}
    return build_config(args.config, given), args


def build_config(path: str | Path | None, given: Mapping[str, str]) -> TrainConfig:
    """The config file's settings (defaults without one), then the fields `given` on the
    command line as strings (`parse_value` reads them as the field's type)."""
    base = TrainConfig.from_file(path).to_dict() if path else {}
    types = {f.name: f.type for f in FIELDS}
    for name, raw in given.items():
        if name not in types:
            raise ValueError(f"--{name.replace('_', '-')}: not a TrainConfig field")
        base[name] = parse_value(raw, types[name])
    return TrainConfig.from_dict(base)


def parse_value(raw: str, type_name: Any) -> Any:
    """A CLI string as the field's type: bools, numbers, JSON (dicts, lists), or the string."""
    tn = str(type_name)
    if tn == "bool":
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"expected a boolean, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if tn == "int":
        return int(raw)
    if tn == "float":
        return float(raw)
    if tn.startswith("tuple"):
        return tuple(float(x) for x in raw.strip("()[]").split(","))
    if raw.lstrip().startswith("{"):
        return json.loads(raw)
    return raw
