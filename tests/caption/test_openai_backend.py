"""The openai backend against a local OpenAI-compatible server of tiny models (internvid serve)."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import numpy as np
import pytest
from aiohttp import web

from internvid.caption.backend import Reply, Request
from internvid.caption.factory import make_captioner
from internvid.caption.hf import HFCaptioner, model_kind
from internvid.caption.openai_api import OpenAICaptioner, chat_body, image_url
from internvid.caption.server import ChatServer, ServerThread, decode_image
from internvid.tiny.captioners import build_tiny_models

PROMPT = "Describe this image in one short sentence."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-serve")
    return {k: str(v) for k, v in build_tiny_models(root, ["blip", "chat"]).items()}


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 4 * i, 56, 3), dtype=np.uint8) for i in range(n)]


class Faulty(ChatServer):
    """A server that drops the connection of chosen requests (by arrival number, from 1)
    without an answer, and answers others 400 or 503."""

    def __init__(self, models, drop=(), reject=(), busy=(), **kw):
        super().__init__(models, **kw)
        self.drop, self.reject, self.busy = set(drop), set(reject), set(busy)

    async def _chat(self, request):
        n = self.stats.requests + 1
        if n in self.drop:
            self._count(requests=1)
            await request.read()
            request.transport.abort()  # the client sees the connection go, no status line
            await asyncio.sleep(0.05)
            return web.Response()  # written nowhere
        if n in self.reject:
            self._count(requests=1)
            return self._error(400, "refused on purpose")
        if n in self.busy:
            self._count(requests=1)
            return self._error(503, "busy on purpose")
        return await super()._chat(request)


@pytest.fixture
def server(tiny):
    started = []

    def start(cls=ChatServer, **kw):
        models = {
            "tiny-blip": HFCaptioner(tiny["blip"], batch_size=8, max_new_tokens=12),
            "tiny-chat": HFCaptioner(tiny["chat"], batch_size=8, max_new_tokens=12),
        }
        s = ServerThread(cls(models, max_batch=8, **kw)).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def client(url: str, model: str = "tiny-blip", **kw) -> OpenAICaptioner:
    kw.setdefault("max_new_tokens", 12)
    return OpenAICaptioner(url, model, api_key_env="", **kw)


def test_model_kinds(tiny):
    assert model_kind(tiny["blip"]) == "image"
    assert model_kind(tiny["chat"]) == "chat"


def test_chat_body_is_openai_shaped():
    f = frames(2)
    body = chat_body(Request(tuple(f), "say", "be brief", 7), "m", 30)
    assert body["model"] == "m" and body["max_tokens"] == 7 and body["temperature"] == 0.0
    system, user = body["messages"]
    assert system == {"role": "system", "content": "be brief"}
    kinds = [p["type"] for p in user["content"]]
    assert kinds == ["image_url", "image_url", "text"] and user["content"][2]["text"] == "say"
    back = decode_image(user["content"][0]["image_url"]["url"])
    assert back.shape == f[0].shape
    smooth = np.broadcast_to(np.linspace(0, 255, 56, dtype=np.uint8)[None, :, None], (40, 56, 3))
    # JPEG at quality 90: close pixels on a smooth image
    assert np.abs(decode_image(image_url(smooth)).astype(int) - smooth).mean() < 3
    text_only = chat_body(Request(prompt="hi"), "m", 30)
    assert text_only["messages"] == [{"role": "user", "content": "hi"}]
    assert text_only["max_tokens"] == 30


def test_captions_round_trip_through_the_server(server, tiny):
    s = server()
    f = frames(5)
    replies = client(s.url).generate([Request((x,), PROMPT) for x in f])
    assert all(r.ok for r in replies), replies
    # the server captions what it received: the JPEG-decoded frames
    local = HFCaptioner(tiny["blip"], max_new_tokens=12).generate(
        [Request((decode_image(image_url(x)),), PROMPT) for x in f]
    )
    assert [r.text for r in replies] == [r.text for r in local]
    # fusion through the same backend: a text-only request to the chat model
    (fused,) = client(s.url, "tiny-chat").generate([Request(prompt="fuse these", system="s")])
    (want,) = HFCaptioner(tiny["chat"], max_new_tokens=12).generate(
        [Request(prompt="fuse these", system="s")]
    )
    assert fused.ok and fused.text == want.text
    with urllib.request.urlopen(s.url + "/models") as r:
        assert [m["id"] for m in json.load(r)["data"]] == ["tiny-blip", "tiny-chat"]


def test_concurrency_bound_is_honoured(server):
    s = server()
    replies = client(s.url, concurrency=3).generate(
        [Request((x,), PROMPT) for x in frames(24, seed=1)]
    )
    assert all(r.ok for r in replies)
    stats = s.server.stats
    assert stats.requests == 24 and stats.answered == 24
    assert 2 <= stats.max_in_flight <= 3  # never more than the bound; it was used
    assert stats.max_batch >= 2  # requests in flight together shared a generate() call
    one = server()
    client(one.url, concurrency=1).generate([Request((x,), PROMPT) for x in frames(6)])
    assert one.server.stats.max_in_flight == 1 and one.server.stats.max_batch == 1


def test_dropped_connection_and_503_are_retried(server):
    s = server(Faulty, drop={1, 3}, busy={5})
    f = frames(6, seed=2)
    replies = client(s.url, concurrency=2, retries=3).generate([Request((x,), PROMPT) for x in f])
    assert all(r.ok for r in replies), replies
    assert s.server.stats.requests == 6 + 3  # three answered on a later attempt
    clean = client(server().url).generate([Request((x,), PROMPT) for x in f])
    assert [r.text for r in replies] == [r.text for r in clean]


def test_a_4xx_is_that_request_failure_and_not_retried(server):
    s = server(Faulty, reject={2})
    replies = client(s.url, concurrency=1, retries=3).generate(
        [Request((x,), PROMPT) for x in frames(4)]
    )
    assert [r.ok for r in replies] == [True, False, True, True]
    assert replies[1].error == "http_400" and "refused on purpose" in replies[1].message
    assert s.server.stats.requests == 4  # asked once


def test_retries_run_out_and_unknown_models_are_404(server):
    s = server(Faulty, drop={1, 2})
    (r,) = client(s.url, retries=1).generate([Request((frames(1)[0],), PROMPT)])
    assert r.error == "connection" and "after 2 attempts" in r.message
    (r,) = client(s.url, "no-such-model").generate([Request(prompt="x")])
    assert r.error == "http_404" and "does not exist" in r.message


def test_requests_a_model_cannot_answer_are_400(server):
    s = server()
    two = tuple(frames(2))
    replies = client(s.url).generate([Request(two, PROMPT), Request(prompt="no image")])
    assert [r.error for r in replies] == ["http_400", "http_400"]
    (r,) = client(s.url, "tiny-chat").generate([Request((two[0],), "an image")])
    assert r.error == "http_400" and "text model" in r.message


def test_nothing_listening_is_a_connection_failure():
    (r,) = client("http://127.0.0.1:9/v1", retries=0, timeout_s=5).generate([Request(prompt="x")])
    assert r == Reply(error="connection", message=r.message) and "after 1 attempts" in r.message


def test_the_key_comes_from_the_environment_and_is_never_shown(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    c = make_captioner(
        "openai",
        "m",
        "m",
        api=type(
            "Api",
            (),
            dict(
                api_base="http://127.0.0.1:9/v1",
                api_key_env="MY_KEY",
                concurrency=2,
                timeout_s=1,
                retries=0,
            ),
        )(),
    )
    assert c._headers() == {"Authorization": "Bearer sk-secret-123"}
    assert "secret" not in repr(c) and "secret" not in str(vars(c))


def test_prepare_loads_no_model_and_prepared_lists_split_and_join(tiny):
    """The CPU half needs only the processor; prepared elements are per request, so the stages
    can hand each sample its slice and join slices from several samples."""
    for path, reqs in (
        (tiny["blip"], [Request((x,), PROMPT) for x in frames(5, seed=3)]),
        (tiny["chat"], [Request(prompt=f"fuse {i}", system="s") for i in range(5)]),
    ):
        prep = HFCaptioner(path, max_new_tokens=8)
        parts = prep.prepare(reqs)
        assert prep.engine.model is None and len(parts) == len(reqs)
        gen = HFCaptioner(path, max_new_tokens=8)
        joined = gen.run(parts[3:] + parts[:3])
        whole = gen.generate(reqs)
        assert [r.text for r in joined] == [r.text for r in whole[3:] + whole[:3]]


def test_the_serve_command_serves_until_stopped(tiny, tmp_path):
    """`internvid serve` in its own process: binds a free port on 127.0.0.1, says where, answers."""
    import os
    import re
    import subprocess
    import sys
    import threading

    cmd = [
        sys.executable,
        "-m",
        "internvid",
        "serve",
        tiny["blip"],
        "--port",
        "0",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    watchdog = threading.Timer(60, proc.kill)  # a server that never says where it is
    watchdog.start()
    try:
        url = ""
        for line in proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the server never said where it listens"
        (r,) = client(url, tiny["blip"]).generate([Request((frames(1)[0],), PROMPT)])
        assert r.ok and isinstance(r.text, str)
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=60)
