"""ViCLIP video-text similarity of a clip and its caption, and the caption's in-batch percentile."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from internvid.scores.base import Loaded, ModelRef, ScoreItem, Scorer, register

NEED_VICLIP = "score_viclip"  # 8 frames at 224x224 (no crop), ViCLIP's sampling


def caption_percentiles(sims: np.ndarray) -> list[float | None]:
    """For each clip i, the fraction of the other clips' captions that match its video less
    than its own caption does (`sims[i, j]`: video i against caption j; ties count half).
    1.0: its caption beats every other caption of the shard; None when there is no other."""
    n = sims.shape[0]
    if n < 2:
        return [None] * n
    own = np.diag(sims)[:, None]
    others = ~np.eye(n, dtype=bool)
    below = ((sims < own) & others).sum(1) + 0.5 * ((sims == own) & others).sum(1)
    return [float(x) for x in below / (n - 1)]


@register
class ViclipSim(Scorer):
    """Cosine of ViCLIP's video and caption embeddings (8 frames at 224x224); the release's
    `UMT_Score` comes from it. `viclip_sim_pct`: where the clip's own caption ranks among the
    captions of the other clips scored with it (a shard), a percentile that means the same at
    any absolute cosine level."""

    name = "viclip_sim"
    description = "ViCLIP video-caption cosine similarity"
    columns = ("viclip_sim", "viclip_sim_pct")
    column_info: ClassVar[dict[str, tuple[str, tuple[float, float] | None]]] = {
        "viclip_sim_pct": (
            "share of the shard's other captions the clip's caption beats",
            (0.0, 1.0),
        )
    }
    needs_caption = True
    order = 10

    def frame_needs(self) -> tuple[Any, ...]:
        from internvid.media.onepass import FrameNeed

        kind = "segments" if self.cfg.viclip_sampling == "middle" else "strided"
        return (FrameNeed(NEED_VICLIP, kind, 8, width=224, height=224),)

    def models(self, tiny: bool) -> dict[str, ModelRef]:
        from internvid.hub import OFFICIAL_VICLIP, TINY_VICLIP

        return {
            "viclip": ModelRef(
                self.cfg.viclip or (TINY_VICLIP if tiny else OFFICIAL_VICLIP), "file"
            )
        }

    def load(self, ctx: Loaded) -> None:
        from internvid.hub import load_viclip

        ref = ctx.refs["viclip"].ref
        self.model = load_viclip(
            ref, device=ctx.device, dtype=ctx.dtype, resolved=ctx.path("viclip")
        )
        self.device = ctx.device

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        import torch

        from internvid.models import frames_to_tensor, tokenize

        model = self.model
        dtype = next(model.parameters()).dtype
        videos, texts = [], []
        bs = self.cfg.batch_size
        size = model.config.image_size  # frames are served at 224x224
        with torch.inference_mode():
            for i in range(0, len(items), bs):
                chunk = items[i : i + bs]
                x = torch.stack([frames_to_tensor(it.frames[NEED_VICLIP], size) for it in chunk])
                videos.append(
                    model.encode_video(x.to(self.device, dtype), normalize=True)
                )  # (B, D)
                ids = tokenize([it.caption for it in chunk]).to(self.device)
                texts.append(model.encode_text(ids, normalize=True))  # (B, D)
            v = torch.cat(videos).float()
            t = torch.cat(texts).float()
            sims = (v @ t.T).cpu().numpy()  # (N videos, N captions)
        pct = caption_percentiles(sims)
        out = []
        for k in range(len(items)):
            values = {"viclip_sim": round(float(sims[k, k]), 4)}
            if pct[k] is not None:
                values["viclip_sim_pct"] = round(pct[k], 4)
            out.append(values)
        return out
