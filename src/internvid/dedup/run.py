"""`internvid dedup RUN`'s library: embed, cluster, group, keep one per group, write dedup/."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from internvid.config import DedupConfig
from internvid.dedup.cluster import auto_clusters, kmeans
from internvid.dedup.embed import DEFAULT_THRESHOLDS, DedupError, Embedded, NoClips, embed
from internvid.dedup.groups import canonical_key, cluster_pairs, duplicate_groups, pick_kept
from internvid.io.atomic import atomic_open, remove_temp_files, write_json_atomic
from internvid.io.remote import locked, not_downloads
from internvid.records import Clip, is_safe_id

log = logging.getLogger(__name__)

DEDUP_DIR = "dedup"  # folder of the outputs, inside the run folder
GROUPS_FILE = "groups.parquet"  # one row per clip of a duplicate group
KEEP_FILE = "keep.txt"  # every clip id to keep, one a line (subset --keep-list)
SUMMARY_FILE = "dedup.json"  # settings, counts, timing
VERSION = 1  # of the dedup/ layout


@dataclass
class DedupSummary:
    """What `internvid dedup` did (dedup.json holds the same)."""

    out_dir: str  # the run folder
    embedder: str  # viclip | text | frames
    model: str  # what embedded (checkpoint, model folder, "frames")
    threshold: float  # the cosine used
    keep: str  # the keep rule
    clips: int  # clips of the run
    embedded: int  # clips compared
    not_embedded: dict[str, int]  # reason -> clips not compared (kept)
    clusters: int  # k-means clusters
    kmeans: str  # faiss | numpy | none
    pairs: int  # pairs at or above the threshold
    groups: int  # duplicate groups
    in_groups: int  # clips in a duplicate group
    dropped: int  # clips not in keep.txt
    kept: int  # lines of keep.txt
    seconds: dict[str, float]  # embed, cluster, pairs, total
    notes: list[str] = field(default_factory=list)  # things a reader must know
    paths: dict[str, str] = field(default_factory=dict)  # groups, keep, summary files


def _groups_table(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    schema = pa.schema(
        [
            pa.field("group", pa.int64()),  # 0 .. groups-1, in the canonical order of the kept
            pa.field("clip_id", pa.string()),
            pa.field("video_id", pa.string()),
            pa.field("kept", pa.bool_()),  # the clip the group keeps
            pa.field("cosine", pa.float64()),  # to the kept clip (1 for the kept one)
            pa.field("embedder", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _check_ids(clips: list[Clip]) -> None:
    bad = [c.clip_id for c in clips if not isinstance(c.clip_id, str) or not is_safe_id(c.clip_id)]
    if bad:
        raise DedupError(
            f"{len(bad)} clip id(s) of clips.parquet are not safe ids (A-Z a-z 0-9 _ -), e.g. "
            f"{bad[0]!r}: refusing to write them"
        )


def _signal(emb: Embedded) -> Embedded:
    """Rows without any signal (a zero vector) are not compared: moved to `missing`."""
    norms = np.linalg.norm(emb.vectors, axis=1) if len(emb.ids) else np.zeros(0)
    zero = norms < 1e-6
    if not zero.any():
        return emb
    missing = dict(emb.missing)
    for i in np.flatnonzero(zero):
        missing[emb.ids[i]] = "no_signal"
    ids = [cid for cid, z in zip(emb.ids, zero, strict=True) if not z]
    return Embedded(ids, emb.vectors[~zero], missing, emb.model, emb.notes)


# one writer per run folder (io/remote.py); a remote one is fetched without its downloads
@locked("dedup", existing=True, fetch=not_downloads)
def dedup_folder(out_dir: str | Path, cfg: DedupConfig) -> DedupSummary:
    """Find the near-duplicate clips of the finished run in `out_dir` and write
    dedup/groups.parquet, dedup/keep.txt and dedup/dedup.json."""
    from internvid.io.tables import read_clips, write_table_atomic

    t0 = time.perf_counter()
    cfg.validate()
    out_dir = Path(out_dir)
    clips_path = out_dir / "clips.parquet"
    if not clips_path.is_file():
        raise DedupError(f"{out_dir} holds no finished run (no clips.parquet)")
    clips = sorted(read_clips(clips_path), key=canonical_key)
    if not clips:
        raise NoClips(f"the run in {out_dir} has no clips: nothing to deduplicate")
    _check_ids(clips)
    if len({c.clip_id for c in clips}) != len(clips):
        raise DedupError(f"{clips_path} holds a clip id twice")
    folder = out_dir / DEDUP_DIR
    if folder.is_dir() and remove_temp_files(folder):
        log.info("removed the temp files of an interrupted dedup in %s", folder)
    threshold = cfg.threshold if cfg.threshold is not None else DEFAULT_THRESHOLDS[cfg.embedder]

    log.info("dedup of %d clips by %s (cosine >= %g)", len(clips), cfg.embedder, threshold)
    emb, embed_s = embed(out_dir, clips, cfg)
    emb = _signal(emb)
    for note in emb.notes:
        log.warning("note: %s", note)
    t1 = time.perf_counter()
    k = cfg.clusters or auto_clusters(len(emb.ids))
    result = kmeans(emb.vectors, k, cfg.iterations, cfg.seed)
    t2 = time.perf_counter()
    pi, pj, compared = cluster_pairs(
        emb.vectors, result.assign, result.centroids, threshold, cfg.neighbours
    )
    by_id = {c.clip_id: c for c in clips}
    emb_clips = [by_id[cid] for cid in emb.ids]
    groups = pick_kept(duplicate_groups(len(emb.ids), pi, pj), emb_clips, cfg.keep)
    t3 = time.perf_counter()

    rows: list[dict[str, Any]] = []
    dropped: set[str] = set()
    for g, group in enumerate(groups):
        kept_vec = emb.vectors[group.kept]
        cosines = emb.vectors[group.members] @ kept_vec
        for p, cos in zip(group.members, cosines.tolist(), strict=True):
            clip = emb_clips[p]
            is_kept = p == group.kept
            if not is_kept:
                dropped.add(clip.clip_id)
            rows.append(
                {"group": g, "clip_id": clip.clip_id, "video_id": clip.video_id,
                 "kept": is_kept, "cosine": 1.0 if is_kept else round(float(cos), 6),
                 "embedder": cfg.embedder}
            )  # fmt: skip
    keep_ids = [c.clip_id for c in clips if c.clip_id not in dropped]
    not_embedded: dict[str, int] = {}
    for reason in emb.missing.values():
        not_embedded[reason] = not_embedded.get(reason, 0) + 1

    folder.mkdir(parents=True, exist_ok=True)
    write_table_atomic(_groups_table(rows), folder / GROUPS_FILE)
    with atomic_open(folder / KEEP_FILE) as f:
        f.writelines(cid + "\n" for cid in keep_ids)
    notes = list(emb.notes)
    if cfg.keep == "aesthetic" and not any("aesthetic" in c.scores for c in emb_clips):
        notes.append("no clip has an aesthetic score: each group kept its longest clip")
        log.warning("note: %s", notes[-1])
    total = time.perf_counter() - t0
    summary = DedupSummary(
        out_dir=str(out_dir),
        embedder=cfg.embedder,
        model=emb.model,
        threshold=float(threshold),
        keep=cfg.keep,
        clips=len(clips),
        embedded=len(emb.ids),
        not_embedded=dict(sorted(not_embedded.items())),
        clusters=len(result.centroids),
        kmeans=result.backend,
        pairs=len(pi),
        groups=len(groups),
        in_groups=len(rows),
        dropped=len(dropped),
        kept=len(keep_ids),
        seconds={
            "embed": round(embed_s, 3),
            "cluster": round(t2 - t1, 3),
            "pairs": round(t3 - t2, 3),
            "total": round(total, 3),
        },
        notes=notes,
        paths={
            "groups": str(folder / GROUPS_FILE),
            "keep": str(folder / KEEP_FILE),
            "summary": str(folder / SUMMARY_FILE),
        },
    )
    from internvid.search import _clip_set_digest

    write_json_atomic(
        folder / SUMMARY_FILE,
        {
            "version": VERSION,
            **{k: v for k, v in asdict(summary).items() if k not in ("out_dir", "paths")},
            "settings": asdict(cfg),
            "similarities_computed": compared,
            "clip_set": _clip_set_digest([c.clip_id for c in clips]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )  # last: its presence marks complete outputs
    log.info(
        "dedup: %d clips, %d compared, %d groups, %d dropped, %d kept (%s, %d clusters) in %.1f s",
        summary.clips,
        summary.embedded,
        summary.groups,
        summary.dropped,
        summary.kept,
        cfg.embedder,
        summary.clusters,
        total,
    )
    return summary
