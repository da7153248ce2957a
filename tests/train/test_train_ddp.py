"""Two-process training with torchrun (gloo, CPU) matches one process on the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from internvid.train import main

ARGS = [
    "--model", "tiny", "--frames", "4", "--image-size", "32", "--num-samples", "32",
    "--steps", "4", "--lr", "1e-3", "--warmup", "0.25", "--mask-ratio", "0.0",
    "--freeze-text", "false", "--temp-init", "0.07", "--log-every", "1", "--eps", "1e-6",
]  # fmt: skip
# no masking: its random draws are per process, so they could not match one process's.
# eps 1e-6, not the recipe's 1e-8: the attention key bias has a zero gradient up to rounding, and
# with eps 1e-8 Adam turns that rounding noise (which differs between 1 and 2 processes) into
# +-lr steps.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    single = main([*ARGS, "--batch-size", "4", "--out", str(tmp_path / "one")])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "internvid.train", *ARGS, "--batch-size", "2", "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "two" / "ckpt_0000004.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["data_position"] == 16  # 4 steps x global batch 4
    assert isinstance(ckpt["rng"], list) and len(ckpt["rng"]) == 2  # one RNG state per process
    two = ckpt["losses"]
    assert len(two) == len(single["losses"]) == 4
    assert two == pytest.approx(single["losses"], abs=1e-4)
    # same weights after 4 steps: gradients were summed over both processes' shards
    one_model = torch.load(single["checkpoint"], weights_only=True)["model"]
    for key, value in one_model.items():
        assert torch.allclose(ckpt["model"][key], value, atol=1e-4), key
