"""Zero-shot retrieval and classification metrics: R@K and ranks, top-k, plain and dual softmax."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and numpy load inside the functions: `internvid --help` stays fast
    import numpy as np
    import torch

log = logging.getLogger(__name__)

RECALL_KS = (1, 5, 10)  # retrieval recall cut-offs (R@K), as in the ViCLIP/CLIP4Clip papers
TOPK = (1, 5)  # classification accuracy cut-offs
DEFAULT_CHUNK = 1024  # query rows per similarity block: at most chunk x N scores in memory
# Dual softmax (the official `evaluation_video_clip`): scores s * softmax(s / T) over the other
# axis, on the raw cosines: T = 1 (its `get_sim` default; no logit scale).
DSL_TEMPERATURE = 1.0


def _as_tensor(x: Any) -> torch.Tensor:
    import numpy as np
    import torch

    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()


def _rank_stats(ranks: torch.Tensor, prefix: str, ks: Iterable[int]) -> dict[str, float]:
    """R@K (percent), median and mean rank of 1-based ranks."""
    import numpy as np

    r = ranks.double()
    out = {f"{prefix}_r{k}": float((r <= k).double().mean() * 100.0) for k in ks}
    out[f"{prefix}_medr"] = float(np.median(r.numpy()))  # numpy: the mean of the middle two
    out[f"{prefix}_meanr"] = float(r.mean())
    return out


def _column_log_norms(
    queries: torch.Tensor, keys: torch.Tensor, chunk: int, temperature: float
) -> torch.Tensor:
    """(K,) float64: log sum_q exp(q . k / T) over all queries q, for each key k: the log
    denominators of a softmax over the query axis, accumulated `chunk` queries at a time."""
    import torch

    out = torch.full((keys.shape[0],), float("-inf"), dtype=torch.float64)
    for start in range(0, queries.shape[0], chunk):
        sims = (queries[start : start + chunk] @ keys.T).double() / temperature  # (c, K)
        out = torch.logaddexp(out, torch.logsumexp(sims, dim=0))
    return out


def _scores(sims: torch.Tensor, log_norms: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """Plain scores, or dual softmax `s * exp(s / T - log_norm[column])` (float64)."""
    import torch

    if log_norms is None:
        return sims
    s = sims.double()
    return s * torch.exp(s / temperature - log_norms[None, :])


def retrieval_metrics(
    video_emb: torch.Tensor | np.ndarray,
    text_emb: torch.Tensor | np.ndarray,
    text_to_video: Sequence[int] | np.ndarray | torch.Tensor,
    chunk: int = DEFAULT_CHUNK,
    *,
    dual_softmax: bool = False,
    temperature: float = DSL_TEMPERATURE,
) -> dict[str, float]:
    """Text-to-video and video-to-text R@1/5/10 (percent), median and mean rank.

    Scores are dot products (pass normalised embeddings for cosine). T2V: the rank of each
    caption's video among all V videos. V2T: for each video, the best rank among its captions
    over all T captions (videos without a caption are left out). A rank is 1 + the number of
    candidates scoring *strictly* higher than the ground truth, so ties are counted in the
    query's favour (optimistic), the usual protocol. Similarities are computed `chunk` query rows
    at a time: never more than chunk x max(V, T) scores at once; results do not depend on it.

    `dual_softmax`: the official code's second score (`evaluation_video_clip`): with S the
    (V, T) similarities, video-to-text ranks S * softmax(S / T, over videos) and text-to-video
    ranks S^T * softmax(S^T / T, over texts), T = `temperature` (1 there: raw cosines). Each
    candidate's score is scaled by how much it prefers this query over the other queries.
    """
    import numpy as np
    import torch

    video, text = _as_tensor(video_emb), _as_tensor(text_emb)
    t2v = torch.as_tensor(np.asarray(text_to_video), dtype=torch.long).reshape(-1)
    num_v, num_t = video.shape[0], text.shape[0]
    if video.ndim != 2 or text.ndim != 2 or video.shape[1] != text.shape[1]:
        raise ValueError(f"embeddings must be (V, D) and (T, D): {video.shape}, {text.shape}")
    if t2v.numel() != num_t:
        raise ValueError(f"text_to_video has {t2v.numel()} entries for {num_t} texts")
    if num_t == 0 or num_v == 0:
        raise ValueError("retrieval needs at least one video and one text")
    if int(t2v.min()) < 0 or int(t2v.max()) >= num_v:
        raise ValueError(f"text_to_video indices must lie in [0, {num_v})")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    chunk = max(1, int(chunk))
    # softmax denominators: per video over all texts (T2V), per text over all videos (V2T)
    per_video = _column_log_norms(text, video, chunk, temperature) if dual_softmax else None
    per_text = _column_log_norms(video, text, chunk, temperature) if dual_softmax else None

    t2v_ranks = torch.empty(num_t, dtype=torch.long)
    for start in range(0, num_t, chunk):
        sims = _scores(text[start : start + chunk] @ video.T, per_video, temperature)  # (c, V)
        gt = sims.gather(1, t2v[start : start + chunk, None])  # (c, 1)
        t2v_ranks[start : start + chunk] = (sims > gt).sum(1) + 1

    # the best rank among a video's captions is the rank of its highest-scoring caption
    has_caption = torch.zeros(num_v, dtype=torch.bool)
    has_caption[t2v] = True
    v2t_ranks = torch.empty(num_v, dtype=torch.long)
    for start in range(0, num_v, chunk):
        sims = _scores(video[start : start + chunk] @ text.T, per_text, temperature)  # (c, T)
        own = t2v[None, :] == torch.arange(start, start + sims.shape[0])[:, None]  # (c, T)
        best = sims.masked_fill(~own, float("-inf")).amax(1, keepdim=True)  # (c, 1)
        v2t_ranks[start : start + chunk] = (sims > best).sum(1) + 1
    v2t_ranks = v2t_ranks[has_caption]
    if int((~has_caption).sum()) and not dual_softmax:  # warned once, on the plain pass
        log.warning(
            "%d videos have no caption; left out of video-to-text", int((~has_caption).sum())
        )

    out = {**_rank_stats(t2v_ranks, "t2v", RECALL_KS), **_rank_stats(v2t_ranks, "v2t", RECALL_KS)}
    out["t2v_rmean"] = float(np.mean([out[f"t2v_r{k}"] for k in RECALL_KS]))
    out["v2t_rmean"] = float(np.mean([out[f"v2t_r{k}"] for k in RECALL_KS]))
    out["rsum"] = float(sum(out[f"{d}_r{k}"] for d in ("t2v", "v2t") for k in RECALL_KS))
    out["num_videos"] = float(num_v)
    out["num_texts"] = float(num_t)
    return out


def classification_metrics(
    video_emb: torch.Tensor | np.ndarray,
    class_emb: torch.Tensor | np.ndarray,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    chunk: int = DEFAULT_CHUNK,
    *,
    dual_softmax: bool = False,
    temperature: float = DSL_TEMPERATURE,
) -> dict[str, float]:
    """Top-1, top-5 accuracy (percent) and their mean of dot-product zero-shot classification.

    A clip's rank is 1 + the number of classes scoring strictly higher than its true class (ties
    optimistic, as in `retrieval_metrics`); top-k counts ranks <= k. `dual_softmax`: the
    official code scores classification like video-to-text retrieval, so its second number
    ranks s * softmax(s / T, over all clips) per class (it needs the whole evaluation set).
    """
    import numpy as np
    import torch

    video, classes = _as_tensor(video_emb), _as_tensor(class_emb)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if video.ndim != 2 or classes.ndim != 2 or video.shape[1] != classes.shape[1]:
        raise ValueError(f"embeddings must be (N, D) and (C, D): {video.shape}, {classes.shape}")
    if y.numel() != video.shape[0] or y.numel() == 0:
        raise ValueError(f"need one label per clip: {y.numel()} labels, {video.shape[0]} clips")
    if int(y.min()) < 0 or int(y.max()) >= classes.shape[0]:
        raise ValueError(f"labels must lie in [0, {classes.shape[0]})")
    chunk = max(1, int(chunk))
    per_class = _column_log_norms(video, classes, chunk, temperature) if dual_softmax else None
    ranks = torch.empty(y.numel(), dtype=torch.long)
    for start in range(0, y.numel(), chunk):
        logits = _scores(video[start : start + chunk] @ classes.T, per_class, temperature)
        gt = logits.gather(1, y[start : start + chunk, None])
        ranks[start : start + chunk] = (logits > gt).sum(1) + 1
    out = {f"top{k}": float((ranks <= k).double().mean() * 100.0) for k in TOPK}
    out["mean_top1_top5"] = (out["top1"] + out["top5"]) / 2.0
    out["num_videos"] = float(y.numel())
    out["num_classes"] = float(classes.shape[0])
    return out
