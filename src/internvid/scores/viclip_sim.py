"""ViCLIP video-text similarity of a clip and its caption, its in-batch and calibrated percentiles."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from internvid.scores.base import Loaded, ModelRef, ScoreItem, Scorer, register

NEED_VICLIP = "score_viclip"  # 8 frames at 224x224 (no crop), ViCLIP's sampling
# The fixed caption bank of viclip_sim_cal (scores/data/, written by
# scripts/make_reference_captions.py): 700 Kinetics-700 action captions + 300 scene captions.
REFERENCE_CAPTIONS = "reference_captions.txt"


@cache
def reference_captions() -> tuple[str, ...]:
    """The shipped reference captions, in file order."""
    text = resources.files("internvid.scores").joinpath("data", REFERENCE_CAPTIONS).read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def calibrated_percentiles(own: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """For each clip i, the fraction of the reference captions that match its video less than
    its own caption does (`own[i]`: video i against its caption; `bank[i, j]`: video i against
    reference caption j; ties count half). It depends on the clip alone, never on the others."""
    own = own[:, None]
    return ((bank < own).sum(1) + 0.5 * (bank == own).sum(1)) / bank.shape[1]


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
    any absolute cosine level. `viclip_sim_cal`: where it ranks among a fixed bank of 1,000
    reference captions shipped with the package, so one threshold means the same in every run
    and every sharding."""

    name = "viclip_sim"
    description = "ViCLIP video-caption cosine similarity"
    columns = ("viclip_sim", "viclip_sim_pct", "viclip_sim_cal")
    column_info: ClassVar[dict[str, tuple[str, tuple[float, float] | None]]] = {
        "viclip_sim_pct": (
            "share of the shard's other captions the clip's caption beats",
            (0.0, 1.0),
        ),
        "viclip_sim_cal": (
            "share of the 1,000 shipped reference captions the clip's caption beats",
            (0.0, 1.0),
        ),
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
        self.bank = self._encode_bank()  # (M, D) float64 NumPy

    def _encode_bank(self) -> Any:
        """The reference captions' text embeddings, once per load, in fixed batches (so they
        are the same bits whatever clips the worker scores later)."""
        import torch

        from internvid.models import tokenize

        captions = reference_captions()
        bs = max(1, self.cfg.batch_size)
        out = []
        with torch.inference_mode():
            for i in range(0, len(captions), bs):
                ids = tokenize(list(captions[i : i + bs])).to(self.device)
                out.append(self.model.encode_text(ids, normalize=True).float())  # (B, D)
        return torch.cat(out).cpu().double().numpy()

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
            # in float64, row by row, so a clip's values never depend on the clips beside it
            v64, t64 = v.cpu().double().numpy(), t.cpu().double().numpy()
            own = np.einsum("nd,nd->n", v64, t64)  # (N,) each video against its own caption
            bank = np.stack([self.bank @ row for row in v64])  # (N videos, M references)
        pct = caption_percentiles(sims)
        cal = calibrated_percentiles(own, bank)
        out = []
        for k in range(len(items)):
            values = {"viclip_sim": round(float(sims[k, k]), 4)}
            if pct[k] is not None:
                values["viclip_sim_pct"] = round(pct[k], 4)
            values["viclip_sim_cal"] = round(float(cal[k]), 4)
            out.append(values)
        return out
