"""Caption model presets: which captioners and fusion model each preset uses, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass

from internvid.config import CaptionConfig


@dataclass(frozen=True)
class Preset:
    """The models of one captioning preset (hub ids, or names of locally built tiny models)."""

    name: str  # preset name, as given to --models
    coarse: str  # middle-frame captioner
    fine: str  # per-frame (1 fps) captioner
    fusion_model: str  # language model that fuses the captions
    fusion: str  # "seq2seq" or "chat"
    about: str  # one line for the docs and the logs


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
}


@dataclass(frozen=True)
class CaptionModels:
    """The models a run will use: the preset's, with the config's overrides applied."""

    preset: str  # preset name
    coarse: str  # middle-frame captioner
    fine: str  # per-frame captioner
    fusion_model: str  # fusion language model ("" when fusion is "none")
    fusion: str  # "seq2seq", "chat" or "none"

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
    )
