"""`internvid serve`: one Hugging Face model behind an OpenAI-compatible chat endpoint, requests batched."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from internvid.caption.backend import Captioner, Reply, Request

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024 * 1024  # bytes of one request body (frames as data URLs)


class BadRequest(ValueError):
    """A request the server refuses with 400 (its message goes back to the client)."""


@dataclass
class ServerStats:
    """Counters served at GET /stats."""

    requests: int = 0  # chat completions received
    answered: int = 0  # chat completions answered with 200
    refused: int = 0  # answered with a 4xx
    in_flight: int = 0  # received, not answered yet
    max_in_flight: int = 0  # the most in flight at one moment
    batches: int = 0  # generate() calls
    max_batch: int = 0  # the most requests in one generate() call
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "lock"}


def decode_image(url: str) -> np.ndarray:
    """A `data:image/...;base64,` URL as an RGB frame. Remote URLs are refused: the server
    fetches nothing."""
    from PIL import Image, UnidentifiedImageError

    head, _, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise BadRequest("image_url must be a data:image/...;base64 URL (nothing is fetched)")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            return np.asarray(im.convert("RGB"))
    except (binascii.Error, UnidentifiedImageError, OSError) as e:
        raise BadRequest(f"image_url holds no readable image: {e}") from e


def parse_chat(body: Any) -> Request:
    """A chat completion body as a Request (system text, the user's images and text)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    system, prompt, frames = [], [], []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise BadRequest("each message needs a role: system, user or assistant")
        content = m.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise BadRequest("content must be a string or a list of parts")
        for p in parts:
            kind = p.get("type") if isinstance(p, dict) else None
            if kind == "text" and isinstance(p.get("text"), str):
                (system if m["role"] == "system" else prompt).append(p["text"])
            elif kind == "image_url" and isinstance(p.get("image_url"), dict):
                frames.append(decode_image(str(p["image_url"].get("url", ""))))
            else:
                raise BadRequest(f"unsupported content part: {kind!r}")
    cap = body.get("max_tokens", body.get("max_completion_tokens", 0)) or 0
    if not isinstance(cap, int) or cap < 0:
        raise BadRequest("max_tokens must be a positive integer")
    return Request(tuple(frames), "\n".join(prompt), "\n".join(system), cap)


class ChatServer:
    """Serves captioners (any Captioner; `internvid serve` gives hf ones), each under its name,
    at /v1/chat/completions, /v1/models, /health and /stats. Requests for a model that arrive
    while it generates wait and go together into its next generate() call (up to `max_batch`),
    so concurrent clients share the model the way a serving engine batches them.
    """

    def __init__(self, models: dict[str, Captioner], max_batch: int = 16):
        if not models:
            raise ValueError("a server needs at least one model")
        self.models = dict(models)  # the name clients ask for -> its captioner
        self.max_batch = max(1, max_batch)  # requests per generate() call
        self.stats = ServerStats()
        self._queues: dict[str, asyncio.Queue] = {}  # per model: (request, future) waiting
        self._tasks: list[asyncio.Task] = []  # per model: its batcher
        self._pool: ThreadPoolExecutor | None = None  # the one thread that runs generate()

    def app(self) -> Any:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        app.on_startup.append(self._start_batcher)
        app.on_cleanup.append(self._stop_batcher)
        return app

    async def _start_batcher(self, app: Any) -> None:
        # one thread runs every generate() call: models take turns, as on one accelerator
        pool = ThreadPoolExecutor(1, thread_name_prefix="generate")
        tasks = []
        for name in self.models:
            self._queues[name] = asyncio.Queue()
            tasks.append(asyncio.create_task(self._batcher(name, pool)))
        self._tasks, self._pool = tasks, pool

    async def _stop_batcher(self, app: Any) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False)

    async def _batcher(self, name: str, pool: ThreadPoolExecutor) -> None:
        queue, captioner = self._queues[name], self.models[name]
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            while len(jobs) < self.max_batch and not queue.empty():
                jobs.append(queue.get_nowait())
            requests = [r for r, _ in jobs]
            with self.stats.lock:
                self.stats.batches += 1
                self.stats.max_batch = max(self.stats.max_batch, len(jobs))
            try:
                replies = await loop.run_in_executor(pool, captioner.generate, requests)
            except Exception as e:  # the model broke: every waiting request hears it
                log.exception("generate failed")
                replies = [Reply(error="server_error", message=str(e))] * len(jobs)
            for (_, fut), reply in zip(jobs, replies, strict=True):
                if not fut.done():
                    fut.set_result(reply)

    def _count(self, **delta: int) -> None:
        with self.stats.lock:
            for k, v in delta.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        self._count(requests=1, in_flight=1)
        try:
            try:
                body = await request.json()
            except ValueError:
                return self._error(400, "the body is not JSON")
            model = body.get("model") if isinstance(body, dict) else None
            if model not in self.models:
                return self._error(404, f"the model {model!r} does not exist")
            try:
                req = parse_chat(body)
            except BadRequest as e:
                return self._error(400, str(e))
            fut = asyncio.get_running_loop().create_future()
            await self._queues[model].put((req, fut))
            reply: Reply = await fut
            if not reply.ok:
                status = 400 if reply.error == "unsupported_request" else 500
                return self._error(status, reply.message)
            self._count(answered=1)
            return web.json_response(self._completion(model, reply.text))
        finally:
            self._count(in_flight=-1)

    def _completion(self, model: str, text: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }

    def _error(self, status: int, message: str) -> Any:
        from aiohttp import web

        if status < 500:
            self._count(refused=1)
        err = {"message": message, "type": "invalid_request_error", "code": status}
        return web.json_response({"error": err}, status=status)

    async def _models(self, request: Any) -> Any:
        from aiohttp import web

        data = [{"id": m, "object": "model", "owned_by": "internvid"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _health(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"status": "ok"})

    async def _stats(self, request: Any) -> Any:
        from aiohttp import web

        with self.stats.lock:
            return web.json_response(self.stats.as_dict())


class ServerThread:
    """A ChatServer on its own event loop in a daemon thread (tests, notebooks): `start()`
    binds `host:port` (0: a free port) and returns once it listens; `stop()` shuts it down."""

    def __init__(self, server: ChatServer, host: str = "127.0.0.1", port: int = 0):
        self.server = server
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self.server.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the bound port when 0 was asked

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


def serve(models: dict[str, Captioner], host: str, port: int, max_batch: int) -> None:
    """Serve until interrupted (the `internvid serve` command); logs the bound address."""
    from aiohttp import web

    async def main() -> None:
        runner = web.AppRunner(ChatServer(models, max_batch).app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]
        names = ", ".join(models)
        log.info(
            "serving %s at http://%s:%d/v1 (batches of up to %d)", names, host, bound, max_batch
        )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        log.info("stopped")
