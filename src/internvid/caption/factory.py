"""Which Captioner backend runs a model: hf, vllm or openai, by name."""

from __future__ import annotations

from typing import Any

from internvid.caption.backend import Captioner
from internvid.config import CAPTION_BACKENDS


def make_captioner(
    backend: str,
    name: str,
    path: str,
    *,
    device: str = "cpu",
    dtype: Any = None,
    batch_size: int = 16,
    max_new_tokens: int = 30,
    num_beams: int = 1,
    cache_dir: str = "",
    api: Any = None,
) -> Captioner:
    """The backend `backend` for model `name` (found at `path`; `api`: an ApiConfig-like object
    with the openai backend's settings, `caption` config or the like)."""
    if backend == "hf":
        from internvid.caption.hf import HFCaptioner

        return HFCaptioner(
            path,
            name=name,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            cache_dir=cache_dir,
        )
    if backend == "vllm":
        from internvid.caption.vllm_engine import VLLMCaptioner

        return VLLMCaptioner(
            path,
            name=name,
            dtype=dtype,
            max_new_tokens=max_new_tokens,
            gpu_memory_utilization=getattr(api, "gpu_memory_utilization", 0.4),
            max_model_len=getattr(api, "max_model_len", 8192),
        )
    if backend == "openai":
        from internvid.caption.openai_api import OpenAICaptioner

        if api is None or not getattr(api, "api_base", ""):
            raise ValueError("caption.backend openai needs caption.api_base (the server's URL)")
        return OpenAICaptioner(
            api.api_base,
            model=name,
            api_key_env=api.api_key_env,
            concurrency=api.concurrency,
            timeout_s=api.timeout_s,
            retries=api.retries,
            max_new_tokens=max_new_tokens,
        )
    raise ValueError(f"caption backend must be one of {CAPTION_BACKENDS}, not {backend!r}")
