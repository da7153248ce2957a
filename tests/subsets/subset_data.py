"""Synthetic clip tables for the subset tests, and the draws the release's code makes on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from internvid.io.tables import clips_table
from internvid.records import Clip, format_timecode
from shared_data import SHARED_DATA

N_CLIPS = 100_000  # clips in the synthetic table
N_VIDEOS = 5_000  # videos they come from
SAMPLE_ROWS = SHARED_DATA / "internvid" / "sample_rows.jsonl"  # three real release rows


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 11-character YouTube-like ids."""
    alphabet = np.frombuffer(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "S1"
    )
    ids = alphabet[rng.integers(0, 64, (n, 11))].view("S11").ravel().astype(str)
    assert len(set(ids)) == n
    return ids


def synthetic(
    seed: int = 0, n: int = N_CLIPS, videos: int = N_VIDEOS, skew: float = 0.0
) -> dict[str, np.ndarray]:
    """Columns of a synthetic clip table; NaN marks an absent score, "" an absent caption.

    `skew` > 0: clips per video spread like the release's (lognormal popularity of that sigma:
    most videos have a few clips, some hundreds); 0: about n / videos each.
    """
    rng = np.random.default_rng(seed)
    if skew > 0:
        popularity = rng.lognormal(0.0, skew, videos)
        vids = _ids(rng, videos)[rng.choice(videos, n, p=popularity / popularity.sum())]
    else:
        vids = _ids(rng, videos)[rng.integers(0, videos, n)]
    start_ms = rng.permutation(n).astype(np.int64) * 10  # distinct: clip ids stay unique
    dur_ms = np.clip(np.exp(rng.normal(1.8, 1.3, n)) * 1000, 100, 600_000).astype(np.int64)
    cols = {
        "video_id": vids,
        "start_ms": start_ms,
        "end_ms": start_ms + dur_ms,
        "viclip_sim": rng.normal(0.35, 0.05, n).round(6),
        "aesthetic": rng.normal(4.6, 0.7, n).round(6),
        "clipscore": rng.normal(0.3, 0.04, n).round(6),
        "text_overlay": rng.random(n).round(4),
    }
    for name, frac in (("viclip_sim", 0.05), ("aesthetic", 0.03), ("clipscore", 0.5)):
        cols[name][rng.random(n) < frac] = np.nan
    words = np.array(["a dog", "a man", "the sea", "cooking", "dancing", 'say "hi"', "über"])
    captions = np.char.add(
        np.char.add(words[rng.integers(0, 7, n)], " and "), words[rng.integers(0, 7, n)]
    )
    captions[rng.random(n) < 0.02] = ""
    captions[:3] = ["ctl \x1f \x0b char", "tab\there\nnewline", "漢字 😀 \\ slash/"]
    cols["caption"] = captions
    return cols


def _clip_ids(c: dict[str, np.ndarray]) -> np.ndarray:
    def hms(ms: np.ndarray) -> list[str]:
        return [format_timecode(int(x)).replace(":", "").replace(".", "") for x in ms]

    return np.array(
        [
            f"{v}_{a}_{b}"
            for v, a, b in zip(c["video_id"], hms(c["start_ms"]), hms(c["end_ms"]), strict=True)
        ]
    )


def clips_of(c: dict[str, np.ndarray]) -> list[Clip]:
    """The synthetic table as Clip records: scores present where not NaN, the caption fused
    (coarse on every 10th row), meta release_umt_key UMT-SIM on every 7th."""
    n = len(c["video_id"])
    score_keys = ["aesthetic", "clipscore", "text_overlay", "viclip_sim"]
    clips = []
    for i in range(n):
        scores = {k: float(c[k][i]) for k in score_keys if not np.isnan(c[k][i])}
        caption = str(c["caption"][i])
        captions = {("coarse" if i % 10 == 0 else "fused"): caption} if caption else {}
        vid = str(c["video_id"][i])
        clips.append(
            Clip.new(
                vid,
                int(c["start_ms"][i]) / 1000,
                int(c["end_ms"][i]) / 1000,
                source=f"/videos/{vid}",
                fps=30.0,
                width=640,
                height=360,
                captions=captions,
                scores=scores,
                meta={"release_umt_key": "UMT-SIM"} if i % 7 == 0 else {},
                status="split",
            )
        )
    return clips


def write_parquet(c: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The synthetic table as a clips.parquet (io.tables.clips_table); returns the clip ids."""
    clips = clips_of(c)
    pq.write_table(clips_table(clips), path)
    clip_ids = np.array([x.clip_id for x in clips])
    assert (clip_ids == _clip_ids(c)).all()
    return clip_ids


# the clips.parquet schema before internvid 0.2: captions and scores as MAP columns
LEGACY_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("end", pa.float64(), nullable=False),
        pa.field("duration", pa.float64(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("captions", pa.map_(pa.string(), pa.string())),
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field("frame_captions", pa.list_(pa.string())),
        pa.field("meta", pa.string()),
        pa.field("status", pa.string()),
        pa.field("shard", pa.int32()),
    ]
)


def write_legacy_parquet(clips: list[Clip], path: Path) -> None:
    """Clips as a clips.parquet of internvid before 0.2 (MAP columns, sorted keys)."""
    rows = [
        {
            "clip_id": x.clip_id,
            "video_id": x.video_id,
            "start": x.start,
            "end": x.end,
            "duration": x.end - x.start,
            "source": x.source,
            "fps": x.fps,
            "width": x.width,
            "height": x.height,
            "captions": sorted(x.captions.items()),
            "scores": sorted(x.scores.items()),
            "frame_captions": list(x.frame_captions),
            "meta": json.dumps(x.meta, sort_keys=True),
            "status": x.status,
            "shard": x.shard,
        }
        for x in clips
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=LEGACY_SCHEMA), path)


def release_lines(c: dict[str, np.ndarray], rows: np.ndarray) -> list[str]:
    """Release JSON lines of `rows`, even rows with UMT_Score, odd ones with UMT-SIM."""
    lines = []
    for i in rows:
        obj = {
            "YoutubeID": str(c["video_id"][i]),
            "Start_timestamp": format_timecode(int(c["start_ms"][i])),
            "End_timestamp": format_timecode(int(c["end_ms"][i])),
        }
        if c["caption"][i]:
            obj["Caption"] = str(c["caption"][i])
        if not np.isnan(c["aesthetic"][i]):
            obj["Aesthetic_Score"] = float(c["aesthetic"][i])
        if not np.isnan(c["viclip_sim"][i]):
            obj["UMT_Score" if i % 2 == 0 else "UMT-SIM"] = float(c["viclip_sim"][i])
        lines.append(json.dumps(obj, ensure_ascii=False))
    return lines


def canonical(c: dict[str, np.ndarray], clip_ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`rows` in the documented order: video_id, start, end, clip_id."""
    keys = (clip_ids[rows], c["end_ms"][rows], c["start_ms"][rows], c["video_id"][rows])
    return rows[np.lexsort(keys)]


def div_reference(
    c: dict[str, np.ndarray],
    clip_ids: np.ndarray,
    rows: np.ndarray,
    size: int,
    seed: int = 42,
    generator: bool = False,
) -> set[str]:
    """The clip ids the release's DIV draw picks from candidate `rows` (in canonical order);
    `generator`: what `np.random.default_rng(seed).choice` picks instead."""
    rows = canonical(c, clip_ids, rows)
    _, inverse, counts = np.unique(c["video_id"][rows], return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    if generator:
        p = weights / weights.sum()
        picked = np.random.default_rng(seed).choice(weights.size, size, replace=False, p=p)
    else:
        picked = release_draw(weights, size, seed)
    return set(clip_ids[rows[picked]])


def release_draw(weights: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Data/InternVid/div_sampling.py's draw, as it is written there: NumPy's global legacy
    generator (`np.random.seed`, then `np.random.choice` with p = w / w.sum())."""
    state = np.random.get_state()  # leave NumPy's global stream as we found it
    try:
        np.random.seed(seed)
        p = weights / weights.sum()
        return np.random.choice(len(weights), size, replace=False, p=p)
    finally:
        np.random.set_state(state)


def out_ids(prefix: Path) -> list[str]:
    return pq.read_table(prefix.with_name(prefix.name + ".parquet"), columns=["clip_id"])[
        "clip_id"
    ].to_pylist()
