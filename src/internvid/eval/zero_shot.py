"""Zero-shot evaluation of ViCLIP: video-text retrieval and video classification (`internvid eval`)."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from internvid import eval_sets
from internvid.eval_sets import EvalSet, read_generic, read_rows

__all__ = ["EvalSet", "read_rows"]  # re-exported: the annotation readers live in eval_sets

if TYPE_CHECKING:  # torch and numpy load inside the functions: `internvid --help` stays fast
    import numpy as np
    import torch

log = logging.getLogger(__name__)

RECALL_KS = (1, 5, 10)  # retrieval recall cut-offs (R@K), as in the ViCLIP/CLIP4Clip papers
TOPK = (1, 5)  # classification accuracy cut-offs
DEFAULT_CHUNK = 1024  # query rows per similarity block: at most chunk x N scores in memory
DEFAULT_BATCH = 16  # clips per encode_video batch
TEXT_BATCH = 256  # captions / prompts per encode_text batch
PROGRESS_EVERY_S = 10.0  # seconds between progress log lines
# State-dict keys `wise_ft` never averages: the temporal positional embedding has no counterpart
# in an image-CLIP initialisation (the official zero-shot scripts skip it too).
WISE_FT_EXCLUDE = ("vision_encoder.temporal_positional_embedding",)
DTYPES = ("float32", "float16", "bfloat16")  # --dtype choices: torch dtype names
TEXT_NORMS = ("official", "raw")  # --text-norm: `pre_text` before tokenising (official), or not
PROMPT_AVERAGES = ("official", "renorm")  # --prompt-average: mean of prompt cosines / renormalised
# Dual softmax (the official `evaluation_video_clip`): scores s * softmax(s / T) over the other
# axis, on the raw cosines: T = 1 (its `get_sim` default; no logit scale).
DSL_TEMPERATURE = 1.0

# "official": the ViCLIP zero-shot classification prompts, `kinetics_templates_action_clip` of
# the official code (dataset/text_prompt.py, imported by dataset/caption_dataset.py): ActionCLIP's
# 16 text augmentations (Wang et al., 2021, utils/Text_Prompt.py), whose name it carries. The
# official file itself is not in the sources we could read; these are ActionCLIP's strings, of
# which SPEC quotes "a photo of action {}" and "A video of {}". Each prompt goes through
# `pre_text` (so case and punctuation do not matter) and the per-prompt cosines are averaged.
OFFICIAL_TEMPLATES: tuple[str, ...] = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

# Other prompt sets for Kinetics-style action classes.
# "kinetics": the 28 action prompts of the InternVideo family's zero-shot code (its
# `kinetics_templates`, starting "A photo of action {}.", "A video of action {}.", the prompt SPEC
# section 3 quotes), seen in InternVid-related public code; whether the ViCLIP release scripts
# used exactly this list is not verified here.
_ACTION_PROMPTS = (
    "A photo of action {}.",
    "A video of action {}.",
    "He or she is {}.",
    "A person is doing {}.",
    "Look, the human is {}.",
    "Human action of {}.",
    "Playing action of {}.",
    "Video classification of {}.",
    "Doing a kind of action, {}.",
    "Playing a kind of action, {}.",
    "Can you recognize the action of {}?",
    "{}, an action.",
    "{} this is an action.",
    "{}, a video of action.",
    "An action of {} is in the video.",
    "There is a person doing {} in the video.",
)
KINETICS_TEMPLATES: tuple[str, ...] = _ACTION_PROMPTS + tuple(
    f"A {medium} of a person {verb} {{}}."
    for medium in ("photo", "video", "example", "demonstration")
    for verb in ("doing", "performing", "practicing")
)
# "clip": CLIP's Kinetics-700 prompt list (Radford et al., 2021), 4 openings x 7 endings.
CLIP_KINETICS_TEMPLATES: tuple[str, ...] = tuple(
    f"{prefix} {body}."
    for prefix in ("a photo of", "a video of", "a example of", "a demonstration of")
    for body in (
        "{}",
        "a person {}",
        "a person using {}",
        "a person doing {}",
        "a person during {}",
        "a person performing {}",
        "a person practicing {}",
    )
)
SINGLE_TEMPLATES: tuple[str, ...] = ("a video of {}.",)  # the one-prompt baseline
TEMPLATE_SETS = {
    "official": OFFICIAL_TEMPLATES,
    "kinetics": KINETICS_TEMPLATES,
    "clip": CLIP_KINETICS_TEMPLATES,
    "single": SINGLE_TEMPLATES,
}


# ----------------------------------------------------------------------------------- metrics


def _no_grad(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`@torch.no_grad()` that imports torch only when the function runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper


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


# ------------------------------------------------------------------------------------- WiSE-FT


def wise_ft(
    state_a: Mapping[str, torch.Tensor],
    state_b: Mapping[str, torch.Tensor],
    alpha: float,
    exclude: Iterable[str] = WISE_FT_EXCLUDE,
) -> dict[str, torch.Tensor]:
    """Weight-space ensemble: `(1 - alpha) * a + alpha * b`, key by key, in a's dtype.

    Keys of a that are in `exclude`, missing from b, differently shaped or not floating point
    keep a's value (the last two with a warning); keys only in b are ignored.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    skip = set(exclude)
    out: dict[str, torch.Tensor] = {}
    missing, mismatched = [], []
    for key, a in state_a.items():
        b = state_b.get(key)
        if key in skip or not a.is_floating_point():
            out[key] = a
        elif b is None:
            missing.append(key)
            out[key] = a
        elif b.shape != a.shape:
            mismatched.append(key)
            out[key] = a
        else:
            mixed = (1.0 - alpha) * a.float() + alpha * b.to(a.device).float()
            out[key] = mixed.to(a.dtype)
    if missing:
        log.warning(
            "wise-ft: %d keys missing from the other state dict: %s", len(missing), missing[:5]
        )
    if mismatched:
        log.warning("wise-ft: %d keys differ in shape, kept: %s", len(mismatched), mismatched[:5])
    return out


# --------------------------------------------------------------------------------- annotations


def load_eval_set(path: str | Path, task: str = "retrieval") -> EvalSet:
    """A generic annotation file (`eval_sets.read_generic`): rows grouped by video; relative video
    paths are relative to the file."""
    return read_generic(path, task)


def normalise_texts(texts: Sequence[str], mode: str = "official") -> list[str]:
    """Texts as the text tower gets them: "official" through `pre_text` (lower-case, strip
    ,.'!?"()*#:;~, `-` and `/` to spaces, `<person>` to person, one space), "raw" unchanged."""
    if mode == "raw":
        return list(texts)
    if mode != "official":
        raise ValueError(f"unknown text normalisation {mode!r} (expected official or raw)")
    from internvid.models.text import pre_text

    return [pre_text(t) for t in texts]


# ------------------------------------------------------------------------------ video encoding


def decode_clip(
    path: str | Path,
    num_frames: int = 8,
    mode: str = "middle",
    size: int = 224,
    resize: str = "bicubic",
) -> torch.Tensor:
    """Decode a video with PyAV -> its (num_frames, 3, size, size) ViCLIP input.

    `resize` (`models.resize.RESIZE_MODES`): "bicubic" is the official test transform
    (torchvision bicubic on uint8, no antialiasing), "bilinear" the demo's cv2 resize. When the
    container states its frame count, only the sampled frames are converted to RGB arrays
    (memory stays small for long videos); if the decoded count disagrees, every frame is kept
    and the indices are taken from the true count.
    """
    import av

    from internvid.models.preprocess import sample_indices
    from internvid.models.resize import eval_frames_to_tensor

    def pick(total: int) -> list[int]:
        return sample_indices(total, n=num_frames, mode=mode)  # type: ignore[arg-type]

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stated = int(stream.frames or 0)
        wanted = set(pick(stated)) if stated >= (num_frames if mode == "demo" else 1) else None
        kept: dict[int, np.ndarray] = {}
        count = 0
        for count, frame in enumerate(container.decode(stream), 1):
            if wanted is None or count - 1 in wanted:
                kept[count - 1] = frame.to_ndarray(format="rgb24")
    if count == 0:
        raise ValueError(f"{path}: no video frames decoded")
    if wanted is not None and count != stated:
        log.debug("%s: %d frames stated, %d decoded; decoding again", path, stated, count)
        return _decode_all(path, pick, size, resize)
    return eval_frames_to_tensor([kept[i] for i in pick(count)], size=size, mode=resize)


def _decode_all(
    path: str | Path, pick: Callable[[int], list[int]], size: int, resize: str = "bicubic"
) -> torch.Tensor:
    import av

    from internvid.models.resize import eval_frames_to_tensor

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return eval_frames_to_tensor([frames[i] for i in pick(len(frames))], size=size, mode=resize)


def _progress(what: str, total: int) -> Callable[[int], None]:
    start = last = time.monotonic()

    def tick(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= PROGRESS_EVERY_S:
            last = now
            log.info("%s: %d/%d (%.1f s)", what, done, total, now - start)

    return tick


@_no_grad
def encode_videos(
    model: Any,
    paths: Sequence[Path],
    *,
    mode: str = "middle",
    resize: str = "bicubic",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
) -> torch.Tensor:
    """(V, D) normalised float32 embeddings of videos (decoded in `workers` threads)."""
    import torch

    cfg = model.config
    tick = _progress("videos", len(paths))
    out = []

    def load(p: Path) -> torch.Tensor:
        return decode_clip(p, cfg.num_frames, mode, cfg.image_size, resize)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        clips = pool.map(load, paths)
        batch: list[torch.Tensor] = []
        for i, clip in enumerate(clips, 1):
            batch.append(clip)
            if len(batch) == batch_size or i == len(paths):
                x = torch.stack(batch).to(model.device, model.dtype)  # (B, T, 3, H, W)
                out.append(model.encode_video(x, normalize=True).float().cpu())
                batch = []
                tick(i)
    return torch.cat(out)


@_no_grad
def encode_texts(model: Any, texts: Sequence[str], batch_size: int = TEXT_BATCH) -> torch.Tensor:
    """(N, D) normalised float32 embeddings of texts, tokenised as given (see `normalise_texts`)."""
    import torch

    from internvid.models.tokenizer import tokenize

    out = []
    for start in range(0, len(texts), batch_size):
        ids = tokenize(list(texts[start : start + batch_size]), model.config.context_length)
        out.append(model.encode_text(ids.to(model.device), normalize=True).float().cpu())
    return torch.cat(out)


def class_prompts(
    classnames: Sequence[str], templates: Sequence[str], text_norm: str = "official"
) -> list[str]:
    """The C x P prompts, class-major: each template filled with the class name, then (official)
    the whole prompt through `pre_text`, as the official `build_data_act_rec`."""
    return normalise_texts([t.format(c) for c in classnames for t in templates], text_norm)


def average_prompts(prompt_emb: torch.Tensor, average: str = "official") -> torch.Tensor:
    """(C, P, D) normalised prompt embeddings -> (C, D) class embeddings.

    "official": their plain mean, so a video's score is the mean of its P prompt cosines (the
    official `get_sim` with (C, P, D) text features: cosines per prompt, then `.mean(1)`);
    "renorm": the mean renormalised to unit length (CLIP's recipe: the cosine with the mean).
    """
    import torch

    mean = prompt_emb.mean(1)
    if average == "official":
        return mean
    if average == "renorm":
        return torch.nn.functional.normalize(mean, dim=-1)
    raise ValueError(f"unknown prompt averaging {average!r} (expected official or renorm)")


def class_embeddings(
    model: Any,
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    average: str = "official",
    text_norm: str = "official",
) -> torch.Tensor:
    """(C, D) class embeddings: every prompt encoded (normalised), averaged per class."""
    prompts = class_prompts(classnames, templates, text_norm)
    emb = encode_texts(model, prompts).reshape(len(classnames), len(templates), -1)
    return average_prompts(emb, average)


def load_templates(spec: str) -> tuple[str, ...]:
    """A named template set (official, kinetics, clip, single) or a file of "{}" lines."""
    if spec in TEMPLATE_SETS:
        return TEMPLATE_SETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"--templates {spec!r}: neither a set ({', '.join(TEMPLATE_SETS)}) nor a file"
        )
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    templates = tuple(ln for ln in lines if ln)
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"{spec}: templates must be non-empty lines containing '{{}}'")
    return templates


def resolve_labels(
    labels: Sequence[str | int], names: Sequence[str] | None = None
) -> tuple[list[str], list[int]]:
    """Class names and integer labels. `names`: the class list (labels are matched by
    `eval_sets.label_key`: case, quotes and `_`/space do not matter; integer labels index it);
    without it, the sorted distinct labels."""
    given = bool(names)
    names = list(names) if names else sorted({str(x).strip() for x in labels})
    lookup = {eval_sets.label_key(n): i for i, n in enumerate(names)}
    out = []
    for x in labels:
        s = str(x).strip()
        if eval_sets.label_key(s) in lookup:
            out.append(lookup[eval_sets.label_key(s)])
        elif given and s.lstrip("-").isdigit() and 0 <= int(s) < len(names):
            out.append(int(s))
        else:
            raise ValueError(f"label {x!r} is not a known class")
    return names, out


# --------------------------------------------------------------------------------------- model


def resolve_config(arch: str) -> Any:
    """None (infer from the checkpoint), a preset (b16, l14, tiny) or a config JSON file."""
    from internvid.models.viclip import ViCLIPConfig

    presets = {"b16": ViCLIPConfig.b16, "l14": ViCLIPConfig.l14, "tiny": ViCLIPConfig.tiny}
    if arch == "auto":
        return None
    if arch in presets:
        return presets[arch]()
    return ViCLIPConfig.from_json(Path(arch))


def _other_state(spec: str | Path, state: Mapping[str, torch.Tensor], arch: str) -> dict:
    """The WiSE-FT partner: a ViCLIP state dict file, or (what the official zero-shot scripts
    average with) a CLIP / run folder / hub id that `train.load_init` turns into a ViCLIP of the
    checkpoint's shape: patch weights inflated, temporal positions zero."""
    from internvid.models.viclip import ViCLIP, infer_config, read_state_dict

    if Path(spec).is_file():
        return read_state_dict(spec)
    from internvid.train import load_init

    model = ViCLIP(resolve_config(arch) or infer_config(state))
    load_init(model, str(spec))
    return model.state_dict()


def load_model(
    path: Path,
    arch: str = "auto",
    device: str = "cpu",
    dtype: str = "float32",
    wise_ft_path: str | Path | None = None,
    alpha: float = 0.5,
) -> Any:
    """A ViCLIP in eval mode, optionally weight-averaged with another state dict (WiSE-FT):
    `(1 - alpha) x checkpoint + alpha x other`, temporal positions kept from the checkpoint."""
    import torch

    from internvid.models.viclip import load_viclip, read_state_dict

    source: Any = path
    if wise_ft_path is not None:
        state = read_state_dict(path)
        state = wise_ft(state, _other_state(wise_ft_path, state, arch), alpha)
        log.info("wise-ft: averaged with %s (alpha %.2f)", wise_ft_path, alpha)
        source = state
    return load_viclip(source, resolve_config(arch), device=device, dtype=getattr(torch, dtype))


# ---------------------------------------------------------------------------------------- run


def evaluate(
    annotations: Path,
    model_path: Path,
    *,
    task: str = "auto",
    fmt: str = "auto",
    videos: Path | None = None,
    split_list: Path | None = None,
    paragraphs: bool | None = None,
    skip_missing: bool = False,
    arch: str = "auto",
    classes: Path | None = None,
    templates: str = "official",
    text_norm: str = "official",
    prompt_average: str = "official",
    resize: str = "bicubic",
    sampling: str = "middle",
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
    chunk: int = DEFAULT_CHUNK,
    wise_ft_path: str | Path | None = None,
    alpha: float = 0.5,
) -> dict[str, Any]:
    """Run one zero-shot evaluation; returns {"task", "metrics" (plain cosine), "metrics_dsl"
    (dual softmax), ...settings}. The defaults are the official protocol."""
    from internvid.models.resize import RESIZE_MODES

    if task not in ("auto", "retrieval", "classification"):
        raise ValueError(f"unknown task {task!r}")
    if text_norm not in TEXT_NORMS:
        raise ValueError(f"unknown text normalisation {text_norm!r}")
    if prompt_average not in PROMPT_AVERAGES:
        raise ValueError(f"unknown prompt averaging {prompt_average!r}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize {resize!r} (expected one of {', '.join(RESIZE_MODES)})")
    ids = eval_sets.read_id_list(split_list) if split_list is not None else None
    data = eval_sets.load(
        annotations, fmt, task=task, videos=videos, ids=ids, classes=classes, paragraphs=paragraphs
    )
    if task != "auto" and data.task != task:
        raise ValueError(f"{annotations}: a {data.task} set, not {task}")
    task = data.task
    if skip_missing:
        data, dropped = data.drop_missing()
        if dropped:
            log.warning("%d videos not found, left out (--skip-missing)", dropped)
        if not data.videos:
            raise ValueError(f"{annotations}: none of the videos exist")
    prompts: tuple[str, ...] = ()
    if task == "classification":  # fail on bad labels / templates before loading the model
        names, labels = resolve_labels(data.labels, data.classes or None)
        prompts = load_templates(templates)
    model = load_model(model_path, arch, device, dtype, wise_ft_path, alpha)
    start = time.monotonic()
    video_emb = encode_videos(
        model, data.videos, mode=sampling, resize=resize, batch_size=batch_size, workers=workers
    )
    info: dict[str, Any] = {"task": task, "annotations": str(annotations)}
    if task == "retrieval":
        text_emb = encode_texts(model, normalise_texts(data.texts, text_norm))
        metrics = retrieval_metrics(video_emb, text_emb, data.text_to_video, chunk=chunk)
        metrics_dsl = retrieval_metrics(
            video_emb, text_emb, data.text_to_video, chunk=chunk, dual_softmax=True
        )
    else:
        class_emb = class_embeddings(
            model, names, prompts, average=prompt_average, text_norm=text_norm
        )
        metrics = classification_metrics(video_emb, class_emb, labels, chunk=chunk)
        metrics_dsl = classification_metrics(
            video_emb, class_emb, labels, chunk=chunk, dual_softmax=True
        )
        info.update(
            templates=templates if templates in TEMPLATE_SETS else str(templates),
            num_templates=len(prompts),
            prompt_average=prompt_average,
        )
    info.update(
        model=str(model_path),
        config=model.config.name,
        text_norm=text_norm,
        sampling=sampling,
        resize=resize,
        num_frames=model.config.num_frames,
        image_size=model.config.image_size,
        wise_ft=None if wise_ft_path is None else {"path": str(wise_ft_path), "alpha": alpha},
        dsl_temperature=DSL_TEMPERATURE,
        seconds=round(time.monotonic() - start, 3),
        metrics=metrics,
        metrics_dsl=metrics_dsl,
    )
    return info


def _retrieval_line(m: Mapping[str, float]) -> str:
    return (
        f"T2V R@1/5/10 {m['t2v_r1']:.1f}/{m['t2v_r5']:.1f}/{m['t2v_r10']:.1f} "
        f"MdR {m['t2v_medr']:g} MnR {m['t2v_meanr']:.1f} | "
        f"V2T R@1/5/10 {m['v2t_r1']:.1f}/{m['v2t_r5']:.1f}/{m['v2t_r10']:.1f} "
        f"MdR {m['v2t_medr']:g} MnR {m['v2t_meanr']:.1f}"
    )


def summary_line(result: Mapping[str, Any]) -> str:
    """One log line with the headline numbers: plain cosine, then dual softmax (DSL)."""
    m, d = result["metrics"], result.get("metrics_dsl")
    if result["task"] == "retrieval":
        line = _retrieval_line(m)
        if d:
            line += f" || DSL {_retrieval_line(d)}"
        return line + f" ({int(m['num_videos'])} videos, {int(m['num_texts'])} captions)"
    line = f"top-1 {m['top1']:.1f} top-5 {m['top5']:.1f} mean {m['mean_top1_top5']:.1f}"
    if d:
        line += (
            f" || DSL top-1 {d['top1']:.1f} top-5 {d['top5']:.1f} mean {d['mean_top1_top5']:.1f}"
        )
    return line + f" ({int(m['num_videos'])} videos, {int(m['num_classes'])} classes)"


def register(app: typer.Typer) -> None:
    """Add `internvid eval` to the command line."""

    @app.command("eval")
    def eval_command(
        annotations: Annotated[
            Path,
            typer.Argument(
                help="Annotation file: MSR-VTT (JSFusion csv, MSRVTT_data.json), MSVD "
                "(raw-captions.pkl or the corpus csv), DiDeMo test_data.json, ActivityNet "
                "val_1.json, LSMDC tsv, Kinetics val.csv, or generic .jsonl/.json/.csv rows of "
                "'video' + 'caption'/'captions' (retrieval) or 'label' (classification)."
            ),
        ],
        model: Annotated[
            Path, typer.Option("--model", "-m", help="ViCLIP checkpoint (.pth or .safetensors).")
        ],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write the metrics JSON here.")
        ] = None,
        fmt: Annotated[
            str,
            typer.Option("--format", help=f"Annotation format: {', '.join(eval_sets.FORMATS)}."),
        ] = "auto",
        videos: Annotated[
            Path | None,
            typer.Option(help="Folder of the videos (searched recursively; default: the file's)."),
        ] = None,
        split_list: Annotated[
            Path | None,
            typer.Option(
                help="Video ids of the split (test_list.txt, or a csv's video_id column) for "
                "msrvtt-json, msvd, didemo."
            ),
        ] = None,
        paragraphs: Annotated[
            bool | None,
            typer.Option(
                "--paragraphs/--sentences",
                help="One caption per video (its sentences joined) or one per sentence; default: "
                "paragraphs for DiDeMo / ActivityNet, sentences for generic caption lists.",
            ),
        ] = None,
        skip_missing: Annotated[
            bool, typer.Option(help="Leave out videos whose file is missing (else an error).")
        ] = False,
        task: Annotated[
            str, typer.Option(help="retrieval, classification, or auto (from the file).")
        ] = "auto",
        arch: Annotated[
            str,
            typer.Option(
                help="Model config: auto (from the checkpoint), b16, l14, tiny, or a JSON."
            ),
        ] = "auto",
        classes: Annotated[
            Path | None,
            typer.Option(
                help="Class names (.txt one per line, .csv 'name' column, .json); default: the "
                "sorted distinct labels."
            ),
        ] = None,
        templates: Annotated[
            str,
            typer.Option(
                help="Prompts: official (ViCLIP's 16), kinetics (28), clip, single, or a file "
                "of '{}' lines."
            ),
        ] = "official",
        text_norm: Annotated[
            str, typer.Option(help="official (pre_text before tokenising) or raw.")
        ] = "official",
        prompt_average: Annotated[
            str,
            typer.Option(help="official (mean of prompt cosines) or renorm (renormalised mean)."),
        ] = "official",
        resize: Annotated[
            str,
            typer.Option(
                help="Frame resize: bicubic (official), bicubic-aa (torchvision >= 0.17), "
                "bilinear (the demo's cv2)."
            ),
        ] = "bicubic",
        sampling: Annotated[
            str, typer.Option(help="Frame sampling: middle (of 8 segments) or demo.")
        ] = "middle",
        device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
        dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16.")] = "float32",
        batch_size: Annotated[int, typer.Option(min=1, help="Clips per batch.")] = DEFAULT_BATCH,
        workers: Annotated[int, typer.Option(min=1, help="Video decoding threads.")] = 2,
        chunk: Annotated[
            int, typer.Option(min=1, help="Query rows per similarity block.")
        ] = DEFAULT_CHUNK,
        wise_ft_path: Annotated[
            str | None,
            typer.Option(
                "--wise-ft",
                help="Average the weights with this ViCLIP state dict, or with a CLIP (folder or "
                "hub id: what the official zero-shot scripts do, at --alpha 0.5).",
            ),
        ] = None,
        alpha: Annotated[
            float,
            typer.Option(min=0.0, max=1.0, help="Weight of the --wise-ft weights (0: none)."),
        ] = 0.5,
    ) -> None:
        """Zero-shot ViCLIP evaluation: retrieval R@K / ranks or classification top-1/top-5,
        plain cosine and dual softmax; the official protocol by default."""
        from internvid.models.resize import RESIZE_MODES

        choices = {
            "--sampling": (sampling, ("middle", "demo")),
            "--dtype": (dtype, DTYPES),
            "--format": (fmt, eval_sets.FORMATS),
            "--text-norm": (text_norm, TEXT_NORMS),
            "--prompt-average": (prompt_average, PROMPT_AVERAGES),
            "--resize": (resize, RESIZE_MODES),
        }
        for flag, (value, allowed) in choices.items():
            if value not in allowed:
                raise typer.BadParameter(f"{flag} must be one of {', '.join(allowed)}")
        try:
            result = evaluate(
                annotations,
                model,
                task=task,
                fmt=fmt,
                videos=videos,
                split_list=split_list,
                paragraphs=paragraphs,
                skip_missing=skip_missing,
                arch=arch,
                classes=classes,
                templates=templates,
                text_norm=text_norm,
                prompt_average=prompt_average,
                resize=resize,
                sampling=sampling,
                device=device,
                dtype=dtype,
                batch_size=batch_size,
                workers=workers,
                chunk=chunk,
                wise_ft_path=wise_ft_path,
                alpha=alpha,
            )
        except (OSError, ValueError) as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
        log.info("%s", summary_line(result))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            log.info("wrote %s", out)
