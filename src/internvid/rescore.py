"""`internvid score DIR`s library: add score columns to a finished run, recomputing nothing else."""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from internvid.config import RunConfig, ScoreConfig
from internvid.engine import Failure, Sample, StageStats
from internvid.hub import ModelsUnavailable, resolve_models
from internvid.io.atomic import remove_temp_files, temp_name, write_json_atomic, write_jsonl_atomic
from internvid.io.release import ReleaseWriter, row_from_clip
from internvid.io.remote import locked, not_downloads
from internvid.io.shards import add_member, metadata_members, shard_name
from internvid.io.tables import clips_table, read_clips, write_table_atomic
from internvid.media.onepass import OnePass
from internvid.records import Clip, Video
from internvid.run import RunError
from internvid.stages.score import ScoreStage, score_models

log = logging.getLogger(__name__)


@dataclass
class ScoreSummary:
    """What `internvid score` did; merged into stats.json as the "score" stage."""

    out_dir: str  # the run folder
    clips: int  # clips in clips.parquet
    scored: int  # clips that got at least one new score
    failures: int  # clips whose frames could not be read
    failures_by_reason: dict[str, int]  # reason -> count
    scores: list[str]  # the scores computed
    wall_seconds: float  # wall time
    notes: list[str] = field(default_factory=list)  # things a reader must know


def video_rows(out_dir: Path) -> dict[str, dict[str, Any]]:
    path = out_dir / "videos.parquet"
    if not path.is_file():
        return {}
    return {r["id"]: r for r in pq.read_table(path).to_pylist()}


def _clip_file(out_dir: Path, clip: Clip, tmp: Path) -> Path | None:
    """The clip's own file from its shard (exact or copy mode), extracted to `tmp`."""
    if clip.shard is None:
        return None
    tar_path = out_dir / "shards" / f"{shard_name(clip.shard)}.tar"
    if not tar_path.is_file():
        return None
    with tarfile.open(tar_path) as tar:
        try:
            member = tar.getmember(f"{clip.clip_id}.mp4")
        except KeyError:
            return None
        target = tmp / f"{clip.clip_id}.mp4"
        with tar.extractfile(member) as src, open(target, "wb") as dst:
            dst.write(src.read())
    return target


def rewrite_shard(tar_path: Path, clips: list[Clip]) -> bool:
    """Rewrite a shard's KEY.json (and KEY.txt) members from `clips`, streaming every other
    member (the mp4s) across unchanged; the new tar replaces the old one in one rename, so a
    kill leaves it old or new. Returns False (and leaves the tar alone) when nothing changed."""
    by_key = {c.clip_id: c for c in clips}
    fresh: dict[str, dict[str, bytes]] = {}  # clip id -> its new KEY.json / KEY.txt
    tmp = temp_name(tar_path)
    changed = False
    try:
        with tarfile.open(tar_path, "r:") as src, open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as out:
                for member in src:
                    key, _, ext = member.name.partition(".")  # clip ids hold no dot
                    clip = by_key.get(key) if member.isfile() else None
                    if clip is not None and key not in fresh:
                        fresh[key] = metadata_members(clip)
                    new = fresh[key].get(ext) if clip is not None else None
                    if new is None:
                        stream = src.extractfile(member) if member.isfile() else None
                        out.addfile(member, stream)
                        continue
                    with src.extractfile(member) as old:
                        changed |= old.read() != new
                    add_member(out, member.name, new)
            f.flush()
            os.fsync(f.fileno())
        if changed:
            os.replace(tmp, tar_path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


def frames_for_video(
    out_dir: Path,
    video: dict[str, Any] | None,
    clips: list[Clip],
    onepass: OnePass,
    tmp: Path,
) -> tuple[dict[str, dict], list[tuple[Clip, str, str]]]:
    """Frames per clip id, from the source video when it is still there, else from each clip's
    own file in its shard; and (clip, reason, message) for the clips that got none."""
    frames: dict[str, dict] = {}
    failed: list[tuple[Clip, str, str]] = []
    source = Path(video["path"]) if video and video.get("path") else None
    if source is not None and source.is_file():
        fps = video.get("fps") or 25.0
        try:
            result = onepass.run_given(source, [c.frame_range(fps) for c in clips])
            for clip, pc in zip(clips, result.clips, strict=True):
                frames[clip.clip_id] = pc.frames
            return frames, failed
        except Exception as e:  # a broken source: try the clip files below
            log.warning("%s: decoding failed (%s), using the clip files", source, e)
    for clip in clips:
        path = _clip_file(out_dir, clip, tmp)
        if path is None:
            failed.append((clip, "no_source", "neither the source video nor a clip file is left"))
            continue
        fps = clip.fps or 25.0
        a, b = clip.frame_range(fps)
        skip = round(float(clip.meta.get("start_shift", 0.0)) * fps)  # copy mode starts earlier
        try:
            result = onepass.run_given(path, [(skip, skip + b - a)])
            frames[clip.clip_id] = result.clips[0].frames
        except Exception as e:
            failed.append((clip, "decode_error", f"{type(e).__name__}: {e}"))
        finally:
            path.unlink(missing_ok=True)
    return frames, failed


# one writer per run folder (io/remote.py); a remote one is fetched without its downloads
@locked("score", existing=True, fetch=not_downloads)
def score_folder(
    out_dir: str | Path, cfg: ScoreConfig, cache_dir: str = "", progress: bool = True
) -> ScoreSummary:
    """Compute `cfg.scores` for every clip of the run in `out_dir` and rewrite its tables."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    clips_path = out_dir / "clips.parquet"
    if not clips_path.is_file():
        raise RunError(f"{out_dir} holds no finished run (no clips.parquet)")
    if not cfg.scores:
        raise RunError("no scores asked for (--scores viclip_sim,aesthetic,clipscore,text_overlay)")
    run_cfg = RunConfig.from_yaml(out_dir / "config.yaml") if (out_dir / "config.yaml").is_file() \
        else RunConfig()  # fmt: skip
    models = score_models(cfg, run_cfg.caption.models)
    try:
        found = resolve_models(models.folders(), cache_dir, models.files(), "scoring")
    except ModelsUnavailable as e:
        raise RunError(str(e)) from e
    stage = ScoreStage(cfg, models, {r.name: r.path for r in found})
    notes = []
    if any(r.how == "tiny" for r in found):
        notes.append("scores come from random-weight tiny models: noise, for smoke runs only")
        log.warning("%s", notes[-1])
    stage.setup()
    if remove_temp_files(out_dir / "shards"):  # the half-written tars of a killed score
        log.info("removed the temp files of an interrupted score in %s", out_dir / "shards")
    onepass = OnePass(None, 1, None, stage.frame_needs, fast_decode=True)

    clips = read_clips(clips_path)
    videos = video_rows(out_dir)
    by_shard: dict[Any, dict[str, list[Clip]]] = {}
    for clip in clips:
        by_shard.setdefault(clip.shard, {}).setdefault(clip.video_id, []).append(clip)
    stats, failures = stage.new_stats(), []
    fail_rows: list[Failure] = []
    before = {c.clip_id: dict(c.scores) for c in clips}
    with tempfile.TemporaryDirectory(prefix="internvid-score-") as tmp:
        for shard, per_video in by_shard.items():
            samples = []
            for vid, vclips in per_video.items():
                row = videos.get(vid)
                frames, failed = frames_for_video(out_dir, row, vclips, onepass, Path(tmp))
                for clip, reason, message in failed:
                    fail_rows.append(Failure(clip.clip_id, "score", reason, message, clip.source))
                    log.warning("%s: %s: %s", clip.clip_id, reason, message)
                video = Video(
                    id=vid, source=vclips[0].source, path=row.get("path") if row else None
                )
                sample = Sample(video, clips=[c for c in vclips if c.clip_id in frames])
                sample.payload["frames"] = frames
                samples.append(sample)
            stage.run_batch(samples, stats, failures)
            log.info("shard %s: %d clips scored", shard, sum(len(s.clips) for s in samples))
    fail_rows += failures
    scored = sum(1 for c in clips if c.scores != before[c.clip_id])

    # rewrite the tables: clips.parquet, the shard sidecars, internvid.jsonl, failures, stats
    write_table_atomic(clips_table(clips), clips_path)
    per_shard: dict[int, list[Clip]] = {}
    for clip in clips:
        if clip.shard is not None:
            per_shard.setdefault(clip.shard, []).append(clip)
    rewritten = 0
    for shard, shard_clips in sorted(per_shard.items()):
        sidecar = out_dir / "shards" / f"{shard_name(shard)}.parquet"
        if sidecar.is_file():
            write_table_atomic(clips_table(shard_clips), sidecar)
        tar_path = sidecar.with_suffix(".tar")
        if tar_path.is_file():  # KEY.json holds the new scores too
            rewritten += rewrite_shard(tar_path, shard_clips)
    log.info("%d shard tar(s) rewritten with the new scores", rewritten)
    with ReleaseWriter(out_dir / "internvid.jsonl") as w:
        for clip in clips:
            w.write(row_from_clip(clip))
    fpath = out_dir / "failures.jsonl"
    old = [json.loads(x) for x in fpath.read_text().splitlines()] if fpath.is_file() else []
    write_jsonl_atomic(fpath, old + [f.to_json() for f in fail_rows])
    summary = ScoreSummary(
        out_dir=str(out_dir),
        clips=len(clips),
        scored=scored,
        failures=len(fail_rows),
        failures_by_reason=dict(sorted(Counter(f.reason for f in fail_rows).items())),
        scores=list(cfg.scores),
        wall_seconds=round(time.perf_counter() - t0, 3),
        notes=notes,
    )
    _merge_stats(out_dir / "stats.json", stats, summary)
    return summary


def _merge_stats(path: Path, stats: StageStats, summary: ScoreSummary) -> None:
    """Put the score stage's counters into the run's stats.json (replacing an earlier one)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    stages = [s for s in data.get("stages", []) if s.get("name") != "score"]
    data["stages"] = [*stages, stats.to_json()]
    data["score_command"] = asdict(summary)
    notes = [n for n in data.get("notes", []) if n not in summary.notes]
    data["notes"] = notes + summary.notes
    write_json_atomic(path, data)
