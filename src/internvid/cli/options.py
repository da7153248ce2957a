"""Option types and help texts every command shares: --config, --device, --dtype, --models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from internvid.config import DTYPE_ALIASES, DTYPES, apply_overrides, load_config
from internvid.hub import MODEL_CHOICES as MODELS  # noqa: F401 (the commands import it here)
from internvid.outcome import EXIT_CODES, EXIT_FAILURE_RATE, EXIT_NOTHING, EXIT_OK, EXIT_USAGE
from internvid.scores.base import score_names

T = TypeVar("T")

SCORE_LIST = ", ".join(score_names())  # the registered scores, for help texts
DEVICE_HELP = "Model device: auto (cuda when there is one), cpu, cuda, cuda:N."
DTYPE_HELP = "Model weights: auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16, bf16."
MODELS_HELP = (
    "Models: auto, real (the released checkpoints), tiny (random weights built locally: "
    "smoke runs only)."
)
CONFIG_HELP = (
    "YAML config file (keys: the command's config fields, the options here with _ for -); "
    "options given here override it."
)
DEVICES = ("auto", "cpu", "cuda")  # plus cuda:N

MAX_FAILURE_RATE_HELP = (
    "Exit with code 3 when more than this fraction (0-1) of the inputs failed, even though "
    "some work was produced."
)
# the exit codes of the commands that produce data (run, score), for their --help
DATA_EXIT_CODES = (EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_FAILURE_RATE)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)]
DeviceOption = Annotated[str | None, typer.Option(help=DEVICE_HELP)]
DtypeOption = Annotated[str | None, typer.Option(help=DTYPE_HELP)]
ModelsOption = Annotated[str | None, typer.Option(help=MODELS_HELP)]
CACHE_DIR_HELP = "Hugging Face cache folder for the models."
CacheDirOption = Annotated[str | None, typer.Option(help=CACHE_DIR_HELP)]
MaxFailureRateOption = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help=MAX_FAILURE_RATE_HELP, show_default="none: no limit"),
]
ViclipOption = Annotated[
    str | None,
    typer.Option(help="ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE."),
]


def command_config(cls: type[T], config: Path | None, given: dict[tuple[str, ...], Any]) -> T:
    """A command's config: the --config file (else the defaults), then the options given on
    the command line (None: not given), then its `validate()` if it has one. A bad file, key
    or value is a usage error naming --config."""
    try:
        cfg = load_config(cls, config) if config else cls()
        apply_overrides(cfg, given)
        validate = getattr(cfg, "validate", None)
        if validate is not None:
            validate()
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--config") from e
    return cfg


def check_device(device: str | None) -> str | None:
    """The --device vocabulary: auto, cpu, cuda, cuda:N (None: not given)."""
    if device is None or device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise typer.BadParameter(f"{device!r}: choose auto, cpu, cuda or cuda:N", param_hint="--device")


def check_choice(value: str | None, choices: tuple[str, ...], option: str) -> str | None:
    """`value` when it is one of `choices` (None: not given), else a usage error."""
    if value is None or value in choices:
        return value
    raise typer.BadParameter(f"{value!r}: choose one of {', '.join(choices)}", param_hint=option)


def check_dtype(dtype: str | None) -> str | None:
    """The --dtype vocabulary, also reading torch's names (float32, float16, bfloat16)."""
    if dtype is None:
        return None
    return check_choice(DTYPE_ALIASES.get(dtype, dtype), DTYPES, "--dtype")


def score_list(text: str | None) -> list[str] | None:
    """ "a, b,c" -> ["a", "b", "c"]; None stays None."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def exit_codes_epilog(codes: tuple[int, ...] = DATA_EXIT_CODES) -> str:
    """The "Exit codes" paragraph of a command's --help, in outcome.EXIT_CODES' words."""
    return "Exit codes: " + "; ".join(f"{c} {EXIT_CODES[c]}" for c in codes) + "."
