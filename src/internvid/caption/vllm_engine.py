"""The `vllm` captioner backend: vLLM's offline engine (continuous batching) on the GPU."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from internvid.caption.backend import Reply, Request

log = logging.getLogger(__name__)

INSTALL = (
    "the vllm backend needs vLLM: `pip install 'internvid[vllm]'` on a CUDA machine, into an "
    "environment whose torch is the one that vLLM release pins (see docs/captioning.md)"
)


def vllm_available() -> bool:
    """True where `import vllm` works."""
    try:
        import vllm  # noqa: F401
    except Exception:
        return False
    return True


class VLLMCaptioner:
    """A chat vision-language model (Qwen2.5-VL, InternVL, ...), a chat LM (fusion) or BLIP-2
    through `vllm.LLM`: the prompt is the model's own chat template (its Hugging Face
    processor's), the frames go as `multi_modal_data` images in order, every request of a call
    goes to the engine at once and vLLM schedules them (continuous batching). Greedy decoding.
    Models vLLM cannot run (BLIP, T5) are refused with a clear error at load.
    """

    def __init__(
        self,
        path: str,
        name: str = "",
        dtype: Any = None,
        max_new_tokens: int = 30,
        gpu_memory_utilization: float = 0.4,
        max_model_len: int = 8192,
        max_images: int = 16,
    ):
        self.path = path  # hub id or folder
        self.name = name or path  # the model as configured
        self.dtype = dtype  # torch dtype (None: the engine's auto)
        self.max_new_tokens = max_new_tokens  # token cap of a request that sets none
        self.gpu_memory_utilization = gpu_memory_utilization  # share of GPU memory for the engine
        self.max_model_len = max_model_len  # longest prompt + answer, tokens
        self.max_images = max_images  # images one request may carry
        self.kind = ""  # vlm, chat or blip2, after load()
        self.llm: Any = None
        self.processor: Any = None

    def load(self) -> VLLMCaptioner:
        """The processor, then the engine (once per process)."""
        if self.llm is not None:
            return self
        self.load_processor()
        from vllm import LLM

        from internvid.hub import load_once

        dtype = str(self.dtype).replace("torch.", "") if self.dtype is not None else "auto"

        def engine() -> Any:
            return LLM(
                model=self.path,
                dtype=dtype,
                gpu_memory_utilization=self.gpu_memory_utilization,
                max_model_len=self.max_model_len,
                limit_mm_per_prompt={"image": self.max_images} if self.kind != "chat" else None,
                seed=0,
            )

        self.llm = load_once("vllm", self.path, "cuda", dtype, engine)
        return self

    def load_processor(self) -> VLLMCaptioner:
        """The model's kind and its chat template (all `prepare` needs: no GPU)."""
        if self.kind:
            return self
        if not vllm_available():
            raise RuntimeError(INSTALL)
        from transformers import AutoConfig, AutoTokenizer

        from internvid.caption.hf import model_kind
        from internvid.caption.vlm import load_processor

        kind = model_kind(self.path)  # image, vlm, seq2seq or chat
        if kind == "image" and AutoConfig.from_pretrained(self.path).model_type == "blip-2":
            kind = "blip2"
        if kind not in ("blip2", "vlm", "chat"):  # BLIP, T5: not models vLLM runs
            raise RuntimeError(
                f"vLLM does not run {self.name} ({kind}); caption it with backend hf"
            )
        if kind == "chat":
            self.processor = AutoTokenizer.from_pretrained(self.path)
        elif kind == "vlm":
            self.processor = load_processor(self.path)
        self.kind = kind
        return self

    def _prompt(self, r: Request) -> str:
        if self.kind == "blip2":
            return r.prompt if r.prompt.startswith("Question:") else ""
        if self.kind == "chat":
            messages = [{"role": "system", "content": r.system}] if r.system else []
            messages.append({"role": "user", "content": r.prompt})
        else:
            from internvid.caption.vlm import messages as vlm_messages

            messages = vlm_messages(len(r.frames), r.prompt, r.system)
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def prepare(self, requests: Sequence[Request]) -> list[dict[str, Any] | Reply]:
        """The CPU part: prompts from the chat template, frames as PIL images."""
        from PIL import Image

        self.load_processor()
        out: list[dict[str, Any] | Reply] = []
        for r in requests:
            if self.kind == "chat" and r.frames:
                out.append(
                    Reply(error="unsupported_request", message="a text model reads no images")
                )
                continue
            if self.kind != "chat" and not r.frames:
                out.append(Reply(error="unsupported_request", message="no frames to caption"))
                continue
            if len(r.frames) > self.max_images:
                msg = f"{len(r.frames)} frames; at most {self.max_images} a request"
                out.append(Reply(error="unsupported_request", message=msg))
                continue
            item: dict[str, Any] = {"prompt": self._prompt(r), "cap": r.max_new_tokens}
            if r.frames:
                images = [Image.fromarray(f) for f in r.frames]
                item["multi_modal_data"] = {"image": images if len(images) > 1 else images[0]}
            out.append(item)
        return out

    def run(self, prepared: Sequence[dict[str, Any] | Reply]) -> list[Reply]:
        """The GPU part: every prepared request into the engine at once."""
        from vllm import SamplingParams

        self.load()
        todo = [i for i, p in enumerate(prepared) if not isinstance(p, Reply)]
        replies: list[Reply] = [p if isinstance(p, Reply) else Reply() for p in prepared]
        if not todo:
            return replies
        prompts, params = [], []
        for i in todo:
            p = dict(prepared[i])  # type: ignore[arg-type]
            cap = p.pop("cap") or self.max_new_tokens
            prompts.append(p)
            params.append(SamplingParams(temperature=0.0, max_tokens=cap))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for i, o in zip(todo, outputs, strict=True):
            replies[i] = Reply(text=o.outputs[0].text.strip())
        return replies

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return self.run(self.prepare(requests))
