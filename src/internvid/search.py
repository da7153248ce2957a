"""`internvid search DIR "text"`: text-to-clip retrieval over a finished run with ViCLIP."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from internvid.hub import TINY_VICLIP, viclip_ref
from internvid.io.atomic import atomic_open, temp_name, write_json_atomic
from internvid.records import Clip

log = logging.getLogger(__name__)

SEARCH_DIR = "search"  # folder of the index, inside the run folder
INDEX_FILE = "index.faiss"  # faiss flat inner-product index (faiss installed)
MATRIX_FILE = "index.npy"  # the (N, D) float32 matrix fallback (faiss not installed)
IDS_FILE = "ids.json"  # clip ids in index order
META_FILE = "meta.json"  # model reference, dim, clip count, created time, clip-set digest
INDEX_VERSION = 1  # bump when the index layout changes: older indexes are rebuilt
NEED = "search_viclip"  # the frame need: 8 frames at 224x224, ViCLIP's evaluation sampling
NUM_FRAMES = 8  # frames per clip of the released ViCLIP models
FRAME_SIZE = 224  # frame side of the released ViCLIP models


class SearchError(RuntimeError):
    """The search cannot run: no finished run, a missing model, a broken index."""


# ------------------------------------------------------------------ the index (pure functions)


class MatrixIndex:
    """Exact inner-product search over an (N, D) float32 matrix; the part of faiss's
    `IndexFlatIP` API this module uses (`d`, `ntotal`, `add`, `search`, `reconstruct_n`)."""

    def __init__(self, d: int) -> None:
        self.d = d  # embedding dimension
        self.xb = np.zeros((0, d), dtype=np.float32)  # the stored vectors, one row each

    @property
    def ntotal(self) -> int:
        return self.xb.shape[0]

    def add(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, self.d)
        self.xb = np.concatenate([self.xb, x])

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(q, dtype=np.float32).reshape(-1, self.d)
        sims = q @ self.xb.T  # (Q, N)
        k = min(k, self.ntotal)
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k else np.zeros((len(q), 0), int)
        top = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        pos = np.take_along_axis(part, order, axis=1).astype(np.int64)
        return np.take_along_axis(sims, pos, axis=1), pos

    def reconstruct_n(self, start: int, n: int) -> np.ndarray:
        return self.xb[start : start + n].copy()


def _faiss_loader_at_debug(record: logging.LogRecord) -> bool:
    """faiss.loader's INFO lines ("Loading faiss with AVX2 support.") as DEBUG records: shown
    only when that logger is enabled for DEBUG (-v)."""
    if record.levelno == logging.INFO:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True


def _faiss() -> Any | None:
    loader = logging.getLogger("faiss.loader")
    if _faiss_loader_at_debug not in loader.filters:
        loader.addFilter(_faiss_loader_at_debug)
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def build_index(embeddings: np.ndarray, use_faiss: bool | None = None) -> Any:
    """A flat inner-product index of `embeddings` (N, D) (rows L2-normalised: cosine).

    faiss's `IndexFlatIP` when faiss is importable (or `use_faiss`), else a `MatrixIndex`.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    faiss = _faiss() if use_faiss is not False else None
    if use_faiss and faiss is None:
        raise ImportError("faiss is not installed (pip install faiss-cpu)")
    index = faiss.IndexFlatIP(x.shape[1]) if faiss is not None else MatrixIndex(x.shape[1])
    if len(x):
        index.add(x)
    return index


def search_index(index: Any, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` rows for each query, best first: (scores, positions).

    `query_emb` (D,) gives 1-D arrays, (Q, D) gives (Q, k') arrays; k' = min(k, index size).
    """
    q = np.ascontiguousarray(query_emb, dtype=np.float32)
    single = q.ndim == 1
    q = q.reshape(-1, index.d)
    k = max(0, min(int(k), index.ntotal))
    if k == 0:
        scores = np.zeros((len(q), 0), dtype=np.float32)
        pos = np.zeros((len(q), 0), dtype=np.int64)
    else:
        scores, pos = index.search(q, k)
        scores, pos = np.asarray(scores, dtype=np.float32), np.asarray(pos, dtype=np.int64)
    return (scores[0], pos[0]) if single else (scores, pos)


def index_vectors(index: Any) -> np.ndarray:
    """The (N, D) vectors stored in `index`."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def save_index(index: Any, folder: Path) -> str:
    """Write `index` into `folder` atomically; returns its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(index, MatrixIndex):
        with atomic_open(folder / MATRIX_FILE, "wb") as f:
            np.save(f, index.xb)
        return MATRIX_FILE
    faiss = _faiss()
    path = folder / INDEX_FILE
    tmp = temp_name(path)
    try:
        faiss.write_index(index, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return INDEX_FILE


def load_index(folder: Path, file: str) -> Any:
    """The index `save_index` wrote as `folder/file`."""
    path = folder / file
    if file == MATRIX_FILE:
        xb = np.load(path)
        index = MatrixIndex(xb.shape[1])
        index.add(xb)
        return index
    faiss = _faiss()
    if faiss is None:
        raise SearchError(f"{path} is a faiss index but faiss is not installed")
    return faiss.read_index(str(path))


# ------------------------------------------------------------------ models and embeddings


@dataclass
class LoadedModel:
    """A ViCLIP ready to embed, with the reference the index records."""

    ref: str  # the configured checkpoint: tiny:viclip, OWNER/REPO/FILE or a local file
    model: Any  # internvid.models.ViCLIP, eval mode
    device: str  # where it runs
    tiny: bool  # random weights: the results are noise


def load_model(ref: str, cache_dir: str = "", device: str = "auto", dtype: str = "auto"):
    """Resolve (clear error when missing) and load the ViCLIP checkpoint `ref`."""
    from internvid.hub import ModelsUnavailable, load_viclip, pick_device

    dev = pick_device(device)
    try:
        model = load_viclip(ref, cache_dir, dev, dtype, what="search")
    except ModelsUnavailable as e:
        raise SearchError(str(e)) from e
    tiny = ref == TINY_VICLIP
    if tiny:
        log.warning("searching with the random-weight tiny ViCLIP: the ranking is noise")
    return LoadedModel(ref, model, dev, tiny)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _encode_batch(lm: LoadedModel, batch: list[list[np.ndarray]]) -> np.ndarray:
    import torch

    from internvid.models import frames_to_tensor

    model = lm.model
    size = model.config.image_size
    x = torch.stack([frames_to_tensor(fr, size) for fr in batch])  # (B, 8, 3, S, S)
    with torch.inference_mode():
        emb = model.encode_video(x.to(lm.device, model.dtype), normalize=True)
    return _normalise(emb.float().cpu().numpy())


def embed_clips(
    out_dir: Path, clips: list[Clip], lm: LoadedModel, batch_size: int = 32
) -> tuple[list[str], np.ndarray, list[str]]:
    """Embed every clip's 8 frames with the video tower: (clip ids, (N, D) rows, failed ids).

    Frames come from the source video when it is still there, else the clip's own file in its
    shard (as `internvid score` reads them).
    """
    from internvid.media.onepass import FrameNeed, OnePass
    from internvid.rescore import frames_for_video, video_rows

    need = FrameNeed(NEED, "segments", NUM_FRAMES, width=FRAME_SIZE, height=FRAME_SIZE)
    onepass = OnePass(None, 1, None, (need,), fast_decode=True)
    videos = video_rows(out_dir)
    per_video: dict[str, list[Clip]] = {}
    for clip in clips:
        per_video.setdefault(clip.video_id, []).append(clip)
    ids: list[str] = []
    rows: list[np.ndarray] = []
    failed: list[str] = []
    pending: list[tuple[str, list[np.ndarray]]] = []

    def flush() -> None:
        if pending:
            rows.append(_encode_batch(lm, [fr for _, fr in pending]))
            ids.extend(cid for cid, _ in pending)
            pending.clear()

    with tempfile.TemporaryDirectory(prefix="internvid-search-") as tmp:
        for vid, vclips in per_video.items():
            frames, bad = frames_for_video(out_dir, videos.get(vid), vclips, onepass, Path(tmp))
            for clip, reason, message in bad:
                log.warning("%s: not indexed: %s: %s", clip.clip_id, reason, message)
                failed.append(clip.clip_id)
            for clip in vclips:
                if clip.clip_id not in frames:  # failed above
                    continue
                got = frames[clip.clip_id].get(NEED)
                if not got:
                    log.warning("%s: not indexed: no frames", clip.clip_id)
                    failed.append(clip.clip_id)
                    continue
                pending.append((clip.clip_id, got))
                if len(pending) >= batch_size:
                    flush()
            log.debug("%s: %d clips read", vid, len(vclips))
        flush()
    dim = lm.model.config.embed_dim if not rows else rows[0].shape[1]
    matrix = np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return ids, matrix, failed


def embed_text(lm: LoadedModel, query: str) -> np.ndarray:
    """The (D,) normalised text-tower embedding of `query`."""
    import torch

    from internvid.models import tokenize

    ids = tokenize([query], context_length=lm.model.config.context_length).to(lm.device)
    with torch.inference_mode():
        emb = lm.model.encode_text(ids, normalize=True)
    return _normalise(emb.float().cpu().numpy())[0]


# ------------------------------------------------------------------ the run's index


def _clip_set_digest(clip_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(clip_ids)).encode()).hexdigest()[:16]


@dataclass
class RunIndex:
    """A run's index with its clip ids (index order) and meta.json."""

    index: Any  # faiss IndexFlatIP or MatrixIndex
    ids: list[str]  # clip id of each row
    meta: dict[str, Any]  # what meta.json holds
    built: bool  # embedded in this call (False: reused from disk)


def _stale_reason(folder: Path, ref: str, digest: str) -> str | None:
    """Why the index in `folder` cannot serve (None: it can)."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return "no index yet"
    if meta.get("version") != INDEX_VERSION:
        return "index format changed"
    if meta.get("model") != ref:
        return f"model changed ({meta.get('model')} -> {ref})"
    if meta.get("clip_set") != digest:
        return "the run's clips changed"
    if (
        not (folder / meta.get("index_file", INDEX_FILE)).is_file()
        or not (folder / IDS_FILE).is_file()
    ):
        return "index files missing"
    if meta.get("index_file") == INDEX_FILE and _faiss() is None:
        return "faiss index but faiss is not installed"
    return None


def ensure_index(
    out_dir: Path, clips: list[Clip], lm: LoadedModel, rebuild: bool = False, batch_size: int = 32
) -> RunIndex:
    """The run's index for model `lm`: reused from `DIR/search/` unless stale or `rebuild`."""
    folder = out_dir / SEARCH_DIR
    digest = _clip_set_digest([c.clip_id for c in clips])
    reason = "--rebuild" if rebuild else _stale_reason(folder, lm.ref, digest)
    if reason is None:
        meta = json.loads((folder / META_FILE).read_text())
        ids = json.loads((folder / IDS_FILE).read_text())
        index = load_index(folder, meta["index_file"])
        if index.ntotal != len(ids):
            reason = "index and ids.json disagree"
        else:
            log.info("reusing the index in %s (%d clips)", folder, len(ids))
            return RunIndex(index, ids, meta, built=False)
    log.info("building the search index of %d clips (%s)", len(clips), reason)
    t0 = time.perf_counter()
    ids, matrix, failed = embed_clips(out_dir, clips, lm, batch_size=batch_size)
    index = build_index(matrix)
    index_file = save_index(index, folder)
    for stale in {INDEX_FILE, MATRIX_FILE} - {index_file}:
        (folder / stale).unlink(missing_ok=True)
    write_json_atomic(folder / IDS_FILE, ids)
    meta = {
        "version": INDEX_VERSION,
        "model": lm.ref,
        "tiny": lm.tiny,
        "dim": int(matrix.shape[1]),
        "clips": len(ids),
        "not_indexed": failed,
        "clip_set": digest,
        "index_file": index_file,
        "backend": "matrix" if index_file == MATRIX_FILE else "faiss",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embed_seconds": round(time.perf_counter() - t0, 3),
    }
    write_json_atomic(folder / META_FILE, meta)  # last: its presence marks a complete index
    log.info("indexed %d clips in %.1f s", len(ids), meta["embed_seconds"])
    return RunIndex(index, ids, meta, built=True)


@dataclass
class Hit:
    """One search result."""

    rank: int  # 1 = best
    score: float  # cosine of the query and clip embeddings
    clip_id: str
    video_id: str
    start: float  # seconds
    end: float  # seconds
    caption: str  # best caption: fused > release > coarse ("" when none)


@dataclass
class SearchResult:
    """What `internvid search` found."""

    query: str
    model: str  # the ViCLIP checkpoint used
    indexed: int  # clips in the index
    index_built: bool  # the index was (re)built by this search
    hits: list[Hit]
    notes: list[str] = field(default_factory=list)  # things a reader must know

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def search_folder(
    out_dir: str | Path,
    query: str,
    top: int = 10,
    models: str = "auto",
    viclip: str | None = None,
    rebuild: bool = False,
    cache_dir: str = "",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 32,
) -> SearchResult:
    """Rank the clips of the finished run in `out_dir` against the text `query` (a remote run
    folder is fetched here, but its downloads; the index it builds is published there)."""
    from internvid.io.remote import not_downloads, staged
    from internvid.io.storage import is_remote
    from internvid.io.tables import read_clips

    if is_remote(out_dir):
        with staged(out_dir, "search", not_downloads) as local:
            return search_folder(
                local, query, top, models, viclip, rebuild, cache_dir, device, dtype, batch_size
            )
    out_dir = Path(out_dir)
    clips_path = out_dir / "clips.parquet"
    if not clips_path.is_file():
        raise SearchError(f"{out_dir} holds no finished run (no clips.parquet)")
    if not query.strip():
        raise SearchError("the query is empty")
    if top < 1:
        raise SearchError("--top must be at least 1")
    try:
        ref = viclip_ref(models, viclip)
    except ValueError as e:
        raise SearchError(str(e)) from e
    lm = load_model(ref, cache_dir, device, dtype)
    clips = read_clips(clips_path)
    ri = ensure_index(out_dir, clips, lm, rebuild=rebuild, batch_size=batch_size)
    scores, pos = search_index(ri.index, embed_text(lm, query), top)
    by_id = {c.clip_id: c for c in clips}
    hits = []
    for rank, (s, p) in enumerate(zip(scores.tolist(), pos.tolist(), strict=True), start=1):
        clip = by_id[ri.ids[p]]
        hits.append(
            Hit(rank, round(float(s), 6), clip.clip_id, clip.video_id, clip.start, clip.end,
                clip.best_caption())
        )  # fmt: skip
    notes = ["random-weight tiny ViCLIP: the ranking is noise"] if lm.tiny else []
    if ri.meta.get("not_indexed"):
        notes.append(f"{len(ri.meta['not_indexed'])} clips could not be read and are not indexed")
    return SearchResult(query, lm.ref, len(ri.ids), ri.built, hits, notes)


# ------------------------------------------------------------------ command line


def print_table(result: SearchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.query!r}: {len(result.hits)} of {result.indexed} clips")
    for name, justify in [("#", "right"), ("score", "right"), ("clip", "left"),
                          ("video", "left"), ("time", "right"), ("caption", "left")]:  # fmt: skip
        table.add_column(name, justify=justify)
    for h in result.hits:
        table.add_row(str(h.rank), f"{h.score:.4f}", h.clip_id, h.video_id,
                      f"{h.start:.2f}-{h.end:.2f} s", h.caption)  # fmt: skip
    console = Console()
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
