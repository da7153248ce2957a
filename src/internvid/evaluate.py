"""Zero-shot evaluation of ViCLIP: video-text retrieval and video classification (`internvid eval`)."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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
VIDEO_KEYS = ("video", "path", "video_path", "clip")  # annotation columns naming the video file
DTYPES = ("float32", "float16", "bfloat16")  # --dtype choices: torch dtype names

# Zero-shot prompts for Kinetics-style action classes.
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


def retrieval_metrics(
    video_emb: torch.Tensor | np.ndarray,
    text_emb: torch.Tensor | np.ndarray,
    text_to_video: Sequence[int] | np.ndarray | torch.Tensor,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """Text-to-video and video-to-text R@1/5/10 (percent), median and mean rank.

    Scores are dot products (pass normalised embeddings for cosine). T2V: the rank of each
    caption's video among all V videos. V2T: for each video, the best rank among its captions
    over all T captions (videos without a caption are left out). A rank is 1 + the number of
    candidates scoring *strictly* higher than the ground truth, so ties are counted in the
    query's favour (optimistic), the usual protocol. Similarities are computed `chunk` query rows
    at a time: never more than chunk x max(V, T) scores at once; results do not depend on it.
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
    chunk = max(1, int(chunk))

    t2v_ranks = torch.empty(num_t, dtype=torch.long)
    for start in range(0, num_t, chunk):
        sims = text[start : start + chunk] @ video.T  # (c, V)
        gt = sims.gather(1, t2v[start : start + chunk, None])  # (c, 1)
        t2v_ranks[start : start + chunk] = (sims > gt).sum(1) + 1

    # the best rank among a video's captions is the rank of its highest-scoring caption
    has_caption = torch.zeros(num_v, dtype=torch.bool)
    has_caption[t2v] = True
    v2t_ranks = torch.empty(num_v, dtype=torch.long)
    for start in range(0, num_v, chunk):
        sims = video[start : start + chunk] @ text.T  # (c, T)
        own = t2v[None, :] == torch.arange(start, start + sims.shape[0])[:, None]  # (c, T)
        best = sims.masked_fill(~own, float("-inf")).amax(1, keepdim=True)  # (c, 1)
        v2t_ranks[start : start + chunk] = (sims > best).sum(1) + 1
    v2t_ranks = v2t_ranks[has_caption]
    if int((~has_caption).sum()):
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
) -> dict[str, float]:
    """Top-1, top-5 accuracy (percent) and their mean of dot-product zero-shot classification.

    A clip's rank is 1 + the number of classes scoring strictly higher than its true class (ties
    optimistic, as in `retrieval_metrics`); top-k counts ranks <= k.
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
    ranks = torch.empty(y.numel(), dtype=torch.long)
    for start in range(0, y.numel(), max(1, int(chunk))):
        logits = video[start : start + chunk] @ classes.T  # (c, C)
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


@dataclass
class EvalSet:
    """Videos and their texts: captions (retrieval) or labels (classification)."""

    videos: list[Path]  # unique video files in order of first appearance
    texts: list[str] = field(default_factory=list)  # retrieval: every caption
    text_to_video: list[int] = field(default_factory=list)  # retrieval: caption -> video index
    labels: list[str | int] = field(default_factory=list)  # classification: one per video


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The records of a .jsonl, .json (a list) or .csv annotation file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return [dict(row) for row in csv.DictReader(f)]
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of records")
        return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _captions(row: Mapping[str, Any]) -> list[str]:
    value = row.get("captions")
    if value is None:
        value = row.get("caption")
    if isinstance(value, str) and value.lstrip().startswith("["):  # a JSON list in a csv cell
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if value is None or value == "":
        return []
    return [str(c) for c in value] if isinstance(value, list) else [str(value)]


def load_eval_set(path: str | Path, task: str = "retrieval") -> EvalSet:
    """Group an annotation file's rows by video; relative video paths are relative to the file."""
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no records")
    index: dict[Path, int] = {}
    data = EvalSet(videos=[])
    for i, row in enumerate(rows):
        name = next((row[k] for k in VIDEO_KEYS if row.get(k)), None)
        if name is None:
            raise ValueError(f"{path}: record {i} has no video column ({', '.join(VIDEO_KEYS)})")
        video = Path(str(name)).expanduser()
        video = video if video.is_absolute() else path.parent / video
        if task == "classification":
            if row.get("label") in (None, ""):
                raise ValueError(f"{path}: record {i} has no label")
            data.videos.append(video)
            data.labels.append(row["label"])
            continue
        if video not in index:
            index[video] = len(data.videos)
            data.videos.append(video)
        for caption in _captions(row):
            data.texts.append(caption)
            data.text_to_video.append(index[video])
    if task == "retrieval" and not data.texts:
        raise ValueError(f"{path}: no captions (columns 'caption' or 'captions')")
    return data


# ------------------------------------------------------------------------------ video encoding


def decode_clip(
    path: str | Path, num_frames: int = 8, mode: str = "middle", size: int = 224
) -> torch.Tensor:
    """Decode a video with PyAV -> its (num_frames, 3, size, size) ViCLIP input.

    When the container states its frame count, only the sampled frames are converted to RGB
    arrays (memory stays small for long videos); if the decoded count disagrees, every frame is
    kept and the indices are taken from the true count.
    """
    import av

    from internvid.models.preprocess import frames_to_tensor, sample_indices

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
        return _decode_all(path, pick, size)
    return frames_to_tensor([kept[i] for i in pick(count)], size=size)


def _decode_all(path: str | Path, pick: Callable[[int], list[int]], size: int) -> torch.Tensor:
    import av

    from internvid.models.preprocess import frames_to_tensor

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames_to_tensor([frames[i] for i in pick(len(frames))], size=size)


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
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
) -> torch.Tensor:
    """(V, D) normalised float32 embeddings of videos (decoded in `workers` threads)."""
    import torch

    cfg = model.config
    tick = _progress("videos", len(paths))
    out = []

    def load(p: Path) -> torch.Tensor:
        return decode_clip(p, cfg.num_frames, mode, cfg.image_size)

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
    """(N, D) normalised float32 embeddings of texts."""
    import torch

    from internvid.models.tokenizer import tokenize

    out = []
    for start in range(0, len(texts), batch_size):
        ids = tokenize(list(texts[start : start + batch_size]), model.config.context_length)
        out.append(model.encode_text(ids.to(model.device), normalize=True).float().cpu())
    return torch.cat(out)


def class_embeddings(
    model: Any, classnames: Sequence[str], templates: Sequence[str]
) -> torch.Tensor:
    """(C, D): per class, the mean of its normalised prompt embeddings, renormalised."""
    import torch

    prompts = [t.format(c) for c in classnames for t in templates]
    emb = encode_texts(model, prompts).reshape(len(classnames), len(templates), -1)
    return torch.nn.functional.normalize(emb.mean(1), dim=-1)


def load_templates(spec: str) -> tuple[str, ...]:
    """A named template set (kinetics, single) or a file with one "{}" template per line."""
    if spec in TEMPLATE_SETS:
        return TEMPLATE_SETS[spec]
    lines = [ln.strip() for ln in Path(spec).read_text(encoding="utf-8").splitlines()]
    templates = tuple(ln for ln in lines if ln)
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"{spec}: templates must be non-empty lines containing '{{}}'")
    return templates


def resolve_labels(
    labels: Sequence[str | int], classes_file: Path | None
) -> tuple[list[str], list[int]]:
    """Class names and integer labels: names from `classes_file` (one per line) or the labels."""
    if classes_file is not None:
        names = [ln.strip() for ln in classes_file.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n]
    else:
        names = sorted({str(x) for x in labels})
    lookup = {n: i for i, n in enumerate(names)}
    out = []
    for x in labels:
        s = str(x).strip()
        if s in lookup:
            out.append(lookup[s])
        elif s.lstrip("-").isdigit() and classes_file is not None and 0 <= int(s) < len(names):
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


def load_model(
    path: Path,
    arch: str = "auto",
    device: str = "cpu",
    dtype: str = "float32",
    wise_ft_path: Path | None = None,
    alpha: float = 0.5,
) -> Any:
    """A ViCLIP in eval mode, optionally weight-averaged with another state dict (WiSE-FT)."""
    import torch

    from internvid.models.viclip import load_viclip, read_state_dict

    source: Any = path
    if wise_ft_path is not None:
        state = wise_ft(read_state_dict(path), read_state_dict(wise_ft_path), alpha)
        log.info("wise-ft: averaged with %s (alpha %.2f)", wise_ft_path, alpha)
        source = state
    return load_viclip(source, resolve_config(arch), device=device, dtype=getattr(torch, dtype))


# ---------------------------------------------------------------------------------------- run


def evaluate(
    annotations: Path,
    model_path: Path,
    *,
    task: str = "auto",
    arch: str = "auto",
    classes: Path | None = None,
    templates: str = "kinetics",
    sampling: str = "middle",
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = DEFAULT_BATCH,
    workers: int = 2,
    chunk: int = DEFAULT_CHUNK,
    wise_ft_path: Path | None = None,
    alpha: float = 0.5,
) -> dict[str, Any]:
    """Run one zero-shot evaluation; returns {"task", "metrics", ...settings}."""
    if task == "auto":
        first = read_rows(annotations)[:1]
        task = "classification" if first and "label" in first[0] else "retrieval"
    if task not in ("retrieval", "classification"):
        raise ValueError(f"unknown task {task!r}")
    data = load_eval_set(annotations, task)
    model = load_model(model_path, arch, device, dtype, wise_ft_path, alpha)
    start = time.monotonic()
    video_emb = encode_videos(
        model, data.videos, mode=sampling, batch_size=batch_size, workers=workers
    )
    info: dict[str, Any] = {"task": task, "annotations": str(annotations)}
    if task == "retrieval":
        text_emb = encode_texts(model, data.texts)
        metrics = retrieval_metrics(video_emb, text_emb, data.text_to_video, chunk=chunk)
    else:
        names, labels = resolve_labels(data.labels, classes)
        prompts = load_templates(templates)
        class_emb = class_embeddings(model, names, prompts)
        metrics = classification_metrics(video_emb, class_emb, labels, chunk=chunk)
        info["templates"] = len(prompts)
    info.update(
        model=str(model_path),
        config=model.config.name,
        sampling=sampling,
        num_frames=model.config.num_frames,
        image_size=model.config.image_size,
        wise_ft=None if wise_ft_path is None else {"path": str(wise_ft_path), "alpha": alpha},
        seconds=round(time.monotonic() - start, 3),
        metrics=metrics,
    )
    return info


def summary_line(result: Mapping[str, Any]) -> str:
    """One log line with the headline numbers."""
    m = result["metrics"]
    if result["task"] == "retrieval":
        return (
            f"T2V R@1/5/10 {m['t2v_r1']:.1f}/{m['t2v_r5']:.1f}/{m['t2v_r10']:.1f} "
            f"MdR {m['t2v_medr']:g} MnR {m['t2v_meanr']:.1f} | "
            f"V2T R@1/5/10 {m['v2t_r1']:.1f}/{m['v2t_r5']:.1f}/{m['v2t_r10']:.1f} "
            f"MdR {m['v2t_medr']:g} MnR {m['v2t_meanr']:.1f} "
            f"({int(m['num_videos'])} videos, {int(m['num_texts'])} captions)"
        )
    return (
        f"top-1 {m['top1']:.1f} top-5 {m['top5']:.1f} mean {m['mean_top1_top5']:.1f} "
        f"({int(m['num_videos'])} videos, {int(m['num_classes'])} classes)"
    )


def register(app: typer.Typer) -> None:
    """Add `internvid eval` to the command line."""

    @app.command("eval")
    def eval_command(
        annotations: Annotated[
            Path,
            typer.Argument(
                help="Annotation .jsonl/.json/.csv: 'video' (path, relative to this file) and "
                "'caption' (one row per caption) or 'captions' (a list) for retrieval; 'video' "
                "and 'label' for classification."
            ),
        ],
        model: Annotated[
            Path, typer.Option("--model", "-m", help="ViCLIP checkpoint (.pth or .safetensors).")
        ],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write the metrics JSON here.")
        ] = None,
        task: Annotated[
            str, typer.Option(help="retrieval, classification, or auto (label column present).")
        ] = "auto",
        arch: Annotated[
            str,
            typer.Option(
                help="Model config: auto (from the checkpoint), b16, l14, tiny, or a JSON."
            ),
        ] = "auto",
        classes: Annotated[
            Path | None,
            typer.Option(help="Class names, one per line (default: the sorted distinct labels)."),
        ] = None,
        templates: Annotated[
            str,
            typer.Option(help="Prompt templates: kinetics, clip, single, or a file of '{}' lines."),
        ] = "kinetics",
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
            Path | None,
            typer.Option(
                "--wise-ft", help="Average the weights with this ViCLIP-layout state dict."
            ),
        ] = None,
        alpha: Annotated[
            float,
            typer.Option(min=0.0, max=1.0, help="Weight of the --wise-ft state dict (0: none)."),
        ] = 0.5,
    ) -> None:
        """Zero-shot ViCLIP evaluation: retrieval R@K / ranks or classification top-1/top-5."""
        if sampling not in ("middle", "demo"):
            raise typer.BadParameter("--sampling must be middle or demo")
        if dtype not in DTYPES:
            raise typer.BadParameter(f"--dtype must be one of {', '.join(DTYPES)}")
        try:
            result = evaluate(
                annotations,
                model,
                task=task,
                arch=arch,
                classes=classes,
                templates=templates,
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
