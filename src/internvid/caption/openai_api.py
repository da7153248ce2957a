"""The `openai` captioner backend: any OpenAI-compatible chat endpoint, async, bounded, retried."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from internvid.caption.backend import Reply, Request

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})  # worth another try
BACKOFF_S = 0.25  # first retry's wait; doubles per attempt (with jitter), at most BACKOFF_MAX_S
BACKOFF_MAX_S = 8.0


def image_url(frame: np.ndarray, quality: int = 90) -> str:
    """An RGB frame (H x W x 3 uint8) as a JPEG data URL, the way OpenAI-style APIs take images."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chat_body(r: Request, model: str, max_tokens: int, quality: int = 90) -> dict[str, Any]:
    """The /v1/chat/completions body of one request: images first (in order), then the prompt;
    greedy (temperature 0), one choice."""
    messages: list[dict[str, Any]] = []
    if r.system:
        messages.append({"role": "system", "content": r.system})
    if r.frames:
        content: Any = [
            {"type": "image_url", "image_url": {"url": image_url(f, quality)}} for f in r.frames
        ]
        content.append({"type": "text", "text": r.prompt})
    else:
        content = r.prompt
    messages.append({"role": "user", "content": content})
    return {
        "model": model,
        "messages": messages,
        "max_tokens": r.max_new_tokens or max_tokens,
        "temperature": 0.0,
        "n": 1,
    }


class OpenAICaptioner:
    """Captions and fusions from an OpenAI-compatible server (vLLM's `vllm serve`, SGLang, TGI,
    `internvid serve`, a hosted API): one chat completion per request, at most `concurrency`
    in flight, each given `timeout_s`; a dropped connection, a timeout, 429 or 5xx is retried
    up to `retries` times with exponential backoff; any other 4xx is that request's failure
    (Reply.error `http_<status>`), and the other requests go on. The API key is read from the
    environment variable `api_key_env` and sent as a bearer token, never logged.
    """

    def __init__(
        self,
        api_base: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        retries: int = 3,
        max_new_tokens: int = 30,
        jpeg_quality: int = 90,
    ):
        self.api_base = api_base.rstrip("/")  # e.g. http://127.0.0.1:8000/v1
        self.name = model  # the model name the server knows
        self.api_key_env = api_key_env  # environment variable with the key ("" or unset: none)
        self.concurrency = max(1, concurrency)  # requests in flight at once
        self.timeout_s = timeout_s  # per attempt, connect to last byte
        self.retries = max(0, retries)  # further attempts after a retryable failure
        self.max_new_tokens = max_new_tokens  # max_tokens of a request that sets none
        self.jpeg_quality = jpeg_quality  # JPEG quality of the frames sent

    def load(self) -> OpenAICaptioner:
        return self  # nothing to load: the server holds the model

    def __repr__(self) -> str:  # never the key
        return f"OpenAICaptioner({self.api_base!r}, model={self.name!r})"

    def prepare(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        """The CPU part: request bodies with the frames as JPEG data URLs."""
        return [chat_body(r, self.name, self.max_new_tokens, self.jpeg_quality) for r in requests]

    def run(self, bodies: Sequence[dict[str, Any]]) -> list[Reply]:
        """Send prepared bodies, `concurrency` at a time; one Reply per body, in order."""
        if not bodies:
            return []
        return asyncio.run(self._send_all(list(bodies)))

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return self.run(self.prepare(requests))

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _send_all(self, bodies: list[dict[str, Any]]) -> list[Reply]:
        import aiohttp

        gate = asyncio.Semaphore(self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(
            headers=self._headers(), timeout=timeout, connector=connector
        ) as session:
            return list(await asyncio.gather(*(self._send(session, gate, b) for b in bodies)))

    async def _send(self, session: Any, gate: asyncio.Semaphore, body: dict[str, Any]) -> Reply:
        import aiohttp

        url = f"{self.api_base}/chat/completions"
        last = Reply(error="connection", message="not sent")
        for attempt in range(self.retries + 1):
            if attempt:
                wait = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1))
                await asyncio.sleep(wait * (0.5 + random.random()))
            try:
                async with gate, session.post(url, json=body) as resp:
                    text = await resp.text()
                    if resp.status == 200:
                        return _parse(text)
                    last = Reply(error=f"http_{resp.status}", message=_short(text))
                    if resp.status not in RETRY_STATUS:
                        return last  # a client error: asking again gives the same answer
            except TimeoutError:
                last = Reply(error="timeout", message=f"no answer in {self.timeout_s:g} s")
            except aiohttp.ClientError as e:  # refused, reset, dropped mid-answer
                last = Reply(error="connection", message=f"{type(e).__name__}: {e}")
            log.debug("%s attempt %d: %s %s", url, attempt + 1, last.error, last.message)
        return Reply(
            error=last.error,
            message=f"{last.message} (after {self.retries + 1} attempts)",
        )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _parse(text: str) -> Reply:
    """The first choice's message of a chat completion; a malformed answer is a failure."""
    import json

    try:
        data = json.loads(text)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Reply(error="bad_response", message=_short(text))
    if not isinstance(content, str):
        return Reply(error="bad_response", message=_short(text))
    return Reply(text=content)
