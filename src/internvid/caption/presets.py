"""Caption model presets: which captioners and fusion model each preset uses, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass

from internvid.config import CaptionConfig


@dataclass(frozen=True)
class Preset:
    """The models of one captioning preset (hub ids, or names of locally built tiny models)."""

    name: str  # preset name, as given to --models
    coarse: str  # clip-level captioner: the middle frame, or coarse_frames frames (a VLM)
    fine: str  # per-frame (1 fps) captioner ("" none)
    fusion_model: str  # language model that fuses the captions ("" none)
    fusion: str  # "seq2seq", "chat" or "none"
    about: str  # one line for the docs and the logs
    coarse_frames: int = 1  # frames the coarse captioner reads (1: the middle frame)


PRESETS: dict[str, Preset] = {
    # The paper's recipe: BLIP-2 for the middle frame, a per-frame captioner (Tag2Text in the
    # paper; transformers has no Tag2Text, so BLIP large stands in) and a T5 summariser.
    "paper": Preset(
        name="paper",
        coarse="Salesforce/blip2-opt-2.7b",
        fine="Salesforce/blip-image-captioning-large",
        fusion_model="google/flan-t5-large",
        fusion="seq2seq",
        about="BLIP-2 OPT-2.7B (3.9B) + BLIP large (470M) + FLAN-T5 large (780M); a GPU",
    ),
    # Small models that caption on a laptop CPU: one BLIP base for both scales (loaded once)
    # and a 0.5B instruction-tuned LM for the fusion.
    "lite": Preset(
        name="lite",
        coarse="Salesforce/blip-image-captioning-base",
        fine="Salesforce/blip-image-captioning-base",
        fusion_model="Qwen/Qwen2.5-0.5B-Instruct",
        fusion="chat",
        about="BLIP base (250M) at both scales + Qwen2.5-0.5B-Instruct; runs on a CPU",
    ),
    # Random-weight models built locally in a second (internvid.tiny.captioners): they exercise
    # every code path offline and caption nothing. For tests and smoke runs only.
    "tiny": Preset(
        name="tiny",
        coarse="tiny:blip2",
        fine="tiny:blip",
        fusion_model="tiny:t5",
        fusion="seq2seq",
        about="random-weight tiny BLIP-2, BLIP and T5 built locally: smoke runs only, "
        "the captions are noise",
    ),
    # A video VLM captions each clip from 8 of its frames in one request (the middle frames of 8
    # equal segments, in order): one caption a clip, no frame captions, no fusion.
    "vlm": Preset(
        name="vlm",
        coarse="Qwen/Qwen2.5-VL-7B-Instruct",
        fine="",
        fusion_model="",
        fusion="none",
        coarse_frames=8,
        about="Qwen2.5-VL-7B-Instruct over 8 frames of the clip, one caption; a GPU (vllm: best)",
    ),
    # InternVid's recipe with today's models: the VLM captions the clip (8 frames) and every
    # frame at 1 fps, a 7B instruction-tuned LM fuses them.
    "internvid-vl": Preset(
        name="internvid-vl",
        coarse="Qwen/Qwen2.5-VL-7B-Instruct",
        fine="Qwen/Qwen2.5-VL-7B-Instruct",
        fusion_model="Qwen/Qwen2.5-7B-Instruct",
        fusion="chat",
        coarse_frames=8,
        about="Qwen2.5-VL-7B-Instruct (clip over 8 frames + frames at 1 fps) fused by "
        "Qwen2.5-7B-Instruct; GPUs",
    ),
    # The internvid-vl code path on random-weight tiny models (a tiny Qwen2.5-VL and a chat
    # LM built locally): for tests and smoke runs only.
    "tiny-vl": Preset(
        name="tiny-vl",
        coarse="tiny:qwen_vl",
        fine="tiny:qwen_vl",
        fusion_model="tiny:chat",
        fusion="chat",
        coarse_frames=4,
        about="random-weight tiny Qwen2.5-VL (4 frames + 1 fps) and chat LM: smoke runs only",
    ),
}


@dataclass(frozen=True)
class CaptionModels:
    """The models a run will use: the preset's, with the config's overrides applied."""

    preset: str  # preset name
    coarse: str  # clip-level captioner
    fine: str  # per-frame captioner ("" none)
    fusion_model: str  # fusion language model ("" when fusion is "none")
    fusion: str  # "seq2seq", "chat" or "none"
    coarse_frames: int = 1  # frames the coarse captioner reads per clip (1: the middle frame)

    def names(self) -> list[str]:
        """Every distinct model to load, in loading order."""
        out: list[str] = []
        for name in (self.coarse, self.fine, self.fusion_model):
            if name and name not in out:
                out.append(name)
        return out


def caption_models(cfg: CaptionConfig) -> CaptionModels | None:
    """The models `cfg` asks for; None when captioning is off."""
    if cfg.models == "none":
        return None
    p = PRESETS[cfg.models]
    fusion = cfg.fusion or p.fusion
    return CaptionModels(
        preset=p.name,
        coarse=cfg.coarse_model or p.coarse,
        fine=cfg.fine_model or p.fine,
        fusion_model="" if fusion == "none" else (cfg.fusion_model or p.fusion_model),
        fusion=fusion,
        coarse_frames=cfg.coarse_frames or p.coarse_frames,
    )
