"""Whole runs through the caption backends: openai against a local server, the tiny-vl preset, vllm."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from internvid.caption.hf import HFCaptioner
from internvid.caption.server import ChatServer, ServerThread
from internvid.caption.vllm_engine import vllm_available
from internvid.cli import app
from internvid.hub import resolve_models
from internvid.tiny.captioners import build_tiny_models

runner = CliRunner()

TINY = ("tiny:blip2", "tiny:blip", "tiny:t5")  # the tiny preset's models, served by name


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend-cache")
    build_tiny_models(root / "tiny-models")
    return root


class RejectThird(ChatServer):
    """Answers the third chat completion with a 400, the others as usual."""

    async def _chat(self, request):
        if self.stats.requests == 2:
            self._count(requests=1)
            return self._error(400, "third request refused")
        return await super()._chat(request)


@pytest.fixture
def serve(cache):
    servers = []

    def start(cls=ChatServer):
        found = resolve_models(list(TINY), str(cache))
        models = {r.name: HFCaptioner(r.path, name=r.name, max_new_tokens=20) for r in found}
        s = ServerThread(cls(models, max_batch=8)).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def run(videos, out, cache, *extra):
    args = ["run", str(videos), "--out", str(out), "--cache-dir", str(cache)]
    args += ["--cut-mode", "none", "--no-progress", *extra]
    return runner.invoke(app, args)


def test_a_run_captions_through_an_openai_server(tmp_path, demo_videos, cache, serve):
    s = serve()
    out = tmp_path / "out"
    result = run(demo_videos, out, cache, "--models", "tiny", "--caption-backend", "openai")
    assert result.exit_code == 2 and "api_base" in result.output  # the URL is needed
    result = run(
        demo_videos, out, cache, "--models", "tiny", "--caption-backend", "openai",
        "--api-base", s.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    assert rows
    for row in rows:
        assert row["coarse_caption"] is not None and row["fused_caption"] is not None
        n_frames = len(range(0, round(row["duration"] * row["fps"]), round(row["fps"])))
        assert len(row["frame_captions"]) == n_frames
    stats = s.server.stats
    fine = sum(len(r["frame_captions"]) for r in rows)
    # one coarse, one per frame, one fusion per clip: all went to the server, all answered
    assert stats.answered == stats.requests == len(rows) * 2 + fine
    cfg = yaml.safe_load((out / "config.yaml").read_text())["caption"]
    assert cfg["backend"] == "openai" and cfg["api_base"] == s.url


def test_a_4xx_becomes_a_failure_row_and_the_run_goes_on(tmp_path, demo_videos, cache, serve):
    s = serve(RejectThird)
    out = tmp_path / "out"
    result = run(
        demo_videos, out, cache, "--models", "tiny", "--caption-backend", "openai",
        "--api-base", s.url, "--workers", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    (bad,) = [f for f in failures if f["reason"] == "caption_http_400"]
    assert bad["stage"] == "caption" and "third request refused" in bad["message"]
    kept = {r["clip_id"] for r in pq.read_table(out / "clips.parquet").to_pylist()}
    assert bad["item"] not in kept and kept  # that clip failed, the others were captioned


def test_the_tiny_vl_preset_runs_end_to_end(tmp_path, demo_videos, cache):
    out = tmp_path / "out"
    result = run(demo_videos, out, cache, "--models", "tiny-vl")
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    assert rows and all(r["coarse_caption"] is not None for r in rows)
    assert all(r["fused_caption"] is not None and r["frame_captions"] for r in rows)
    stats = json.loads((out / "stats.json").read_text())
    names = [st["name"] for st in stats["stages"]]
    assert names.index("caption_prep") + 1 == names.index("caption")


@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed (pip install 'internvid[vllm]' on a CUDA machine)")  # fmt: skip
def test_vllm_backend_captions_with_the_tiny_vlm(cache):
    import numpy as np

    from internvid.caption.backend import Request
    from internvid.caption.vllm_engine import VLLMCaptioner

    (r,) = resolve_models(["tiny:qwen_vl"], str(cache))
    frames = tuple(np.full((64, 96, 3), 40 * i, np.uint8) for i in range(3))
    engine = VLLMCaptioner(r.path, max_new_tokens=8, gpu_memory_utilization=0.2).load()
    replies = engine.generate([Request(frames, "describe"), Request(frames[:1], "describe")])
    assert all(x.ok and isinstance(x.text, str) for x in replies)
    again = engine.generate([Request(frames, "describe"), Request(frames[:1], "describe")])
    assert [x.text for x in again] == [x.text for x in replies]  # greedy
