"""`internvid run`: inputs -> shards -> pipeline -> clips.parquet, internvid.jsonl, shards, stats."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from internvid.caption.presets import CaptionModels, caption_models
from internvid.config import RunConfig
from internvid.engine import Pipeline, Sample, StageStats
from internvid.engine.local import LocalExecutor
from internvid.engine.shard import ShardResult
from internvid.hub import ModelsUnavailable, resolve_models
from internvid.inputs import Inputs, read_inputs
from internvid.io.atomic import (
    atomic_open,
    remove_temp_files,
    write_json_atomic,
    write_jsonl_atomic,
)
from internvid.io.lock import clear_work_dir
from internvid.io.manifest import Manifest
from internvid.io.release import ReleaseWriter, row_from_clip
from internvid.io.remote import LOCK_KEY, display, locked, store_of
from internvid.io.shards import shard_name
from internvid.io.storage import pull
from internvid.io.tables import (
    VIDEO_SCHEMA,
    concat_clip_tables,
    read_clips_table,
    row_to_clip,
    video_to_row,
    write_table_atomic,
)
from internvid.log import CountingProgress
from internvid.records import Video, parse_clip_id
from internvid.sink import SCRATCH, ShardSink
from internvid.stages.caption import CaptionPrepStage, CaptionStage, FuseStage
from internvid.stages.collect import CollectFilter
from internvid.stages.cut import CutStage
from internvid.stages.download import DownloadStage
from internvid.stages.motion import MotionFilter
from internvid.stages.probe import ProbeStage
from internvid.stages.score import ScoreModels, ScoreStage, score_models
from internvid.stages.split import SplitStage

TINY_NOTE = (
    "captions and scores come from random-weight tiny models (--models tiny): they are noise, "
    "for smoke runs only"
)

log = logging.getLogger(__name__)

MANIFEST_DIR = "manifest"  # _work/manifest: the metadata inputs' shard manifest (io/manifest.py)


class RunError(RuntimeError):
    """The run cannot start (bad inputs, an output folder holding a different run)."""


@dataclass
class RunModels:
    """Every model a run loads, and where from (resolved before any work)."""

    caption: CaptionModels | None  # captioners + fusion, None without captioning
    score: ScoreModels | None  # scorers' models, None without scores
    paths: dict[str, str]  # configured name -> folder, file or hub id for from_pretrained

    @property
    def tiny(self) -> bool:
        names = [*self.paths]
        return any(n.startswith("tiny:") for n in names)


def resolve_run_models(cfg: RunConfig) -> RunModels:
    """Find the models of the captioning and scoring stages; raise RunError naming missing ones."""
    caption = caption_models(cfg.caption)
    score = score_models(cfg.score, cfg.caption.models)
    # the openai backend's models live on its server: nothing to find here
    local_captions = caption is not None and cfg.caption.backend != "openai"
    names = (caption.names() if local_captions else []) + (score.folders() if score else [])
    files = score.files() if score else []
    try:
        found = resolve_models(
            list(dict.fromkeys(names)), cfg.caption.cache_dir, files, "captioning and scoring"
        )
    except ModelsUnavailable as e:
        raise RunError(str(e)) from e
    for r in found:
        log.info("model %s: %s (%s)", r.name, r.path, r.how)
    return RunModels(caption, score, {r.name: r.path for r in found})


def build_pipeline(cfg: RunConfig, out_dir: Path, models: RunModels | None = None) -> Pipeline:
    """The stages of `internvid run`, in order (`models` from resolve_run_models)."""
    if models is None:
        models = resolve_run_models(cfg)
    stages = [
        DownloadStage(cfg.download, out_dir / "downloads"),
        ProbeStage(),
        CollectFilter(cfg.collect),
        SplitStage(cfg.split),
        MotionFilter(cfg.motion),
    ]
    if models.caption is not None:
        stages.append(CaptionPrepStage(cfg.caption, models.caption, models.paths))
        stages.append(CaptionStage(cfg.caption, models.caption, models.paths))
        if models.caption.fusion != "none":
            stages.append(FuseStage(cfg.caption, models.caption, models.paths))
    if models.score is not None:
        stages.append(ScoreStage(cfg.score, models.score, models.paths))
    stages.append(CutStage(cfg.cut, out_dir / SCRATCH))
    return Pipeline(stages)


@dataclass
class RunSummary:
    """What a run did; also written as stats.json."""

    out_dir: str  # output folder
    videos: int  # input videos (after reading the inputs)
    videos_ok: int  # videos that gave at least one clip
    videos_dropped: int  # videos a rule removed, or all of whose clips rules removed
    videos_failed: int  # videos that failed (see failures.jsonl), incl. unreadable input rows
    clips: int  # clips written
    clip_seconds: float  # total length of the clips written
    video_seconds: float  # total length of the videos that passed probing
    failures: int  # rows in failures.jsonl
    failures_by_reason: dict[str, int]  # reason -> count
    dropped: int  # rows in dropped.jsonl (clips and videos rules removed on purpose)
    dropped_by_rule: dict[str, int]  # rule -> rows
    shards: int  # work shards in the run
    shards_resumed: int  # shards finished by an earlier, interrupted invocation
    wall_seconds: float  # this invocation's wall time
    stages: list[dict[str, Any]]  # per-stage stats, summed over shards
    notes: list[str] = field(default_factory=list)  # things a reader of the output must know

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _manifest_hash(samples: list[Sample], manifest: Manifest | None = None) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.video.id, s.video.source, [c.clip_id for c in s.clips]]).encode())
    if manifest is not None:  # the metadata's videos: the manifest file's digest stands for them
        h.update(f"manifest:{manifest.digest}".encode())
    return h.hexdigest()[:16]


def _check_identity(out_dir: Path, cfg: RunConfig, found: Inputs, overwrite: bool) -> None:
    """Refuse to mix two different runs in one folder; remember this run's identity."""
    run_file = out_dir / "_work" / "run.json"
    identity = {
        "config": cfg.fingerprint(),
        "inputs": _manifest_hash(found.samples, found.manifest),
        "videos": found.videos,
    }
    if run_file.is_file():
        old = json.loads(run_file.read_text())
        if old != identity:
            if not overwrite:
                raise RunError(
                    f"{display(out_dir)} holds a different run (other inputs or settings): pass --overwrite "
                    "to replace it, or choose another --out"
                )
            log.warning("--overwrite: removing the previous run in %s", display(out_dir))
            clear_work_dir(out_dir / "_work", keep=(MANIFEST_DIR,))  # but the lock, the manifest
            for name in ("shards", "downloads"):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            store = store_of(out_dir)
            if store is not None:  # the remote folder's copies too (its lock object stays)
                store.rm("shards", recursive=True)
                for rel in store.files("_work"):
                    if rel != LOCK_KEY:
                        store.rm(rel)
    write_json_atomic(run_file, identity)


def _fetch_for_run(rel: str) -> bool:
    """What a run on a remote folder needs of it here: bookkeeping, sidecars and tables, not
    the shard tars (already published) nor other machines' downloads and scratch."""
    # nor the manifest: a cache of this machine's inputs (rebuilt from them, never published)
    skip = ("downloads/", "_work/tmp/", f"_work/{MANIFEST_DIR}/")
    return not (rel.endswith(".tar") or rel.startswith(skip))


@locked("run", fetch=_fetch_for_run)  # one writer per output folder (io/lock.py, io/remote.py)
def run(
    inputs: list[str],
    out_dir: str | Path,
    cfg: RunConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Run the pipeline over `inputs` into `out_dir`; resumes an interrupted run of the same work."""
    t0 = time.perf_counter()
    cfg = cfg or RunConfig()
    cfg.validate()
    cannot_run: tuple[type[Exception], ...] = ()  # executor errors that stop the run cleanly
    if cfg.executor == "ray":  # before anything is written: a missing Ray stops here
        from internvid.engine.ray_executor import RayUnavailable, import_ray

        cannot_run = (RayUnavailable,)
        try:
            import_ray()
        except RayUnavailable as e:
            raise RunError(str(e)) from e
    models = resolve_run_models(cfg)  # before anything is written: missing models stop here
    notes = [TINY_NOTE] if models.tiny else []
    for note in notes:
        log.warning("%s", note)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = out_dir / "_work"
    work_dir.mkdir(exist_ok=True)
    stale = remove_temp_files(out_dir)
    if stale:
        log.info("removed %d partial file(s) left by an interrupted run", stale)

    try:
        found = read_inputs(inputs, cfg.input, work_dir / MANIFEST_DIR, cfg.output.videos_per_shard)
    except ValueError as e:
        raise RunError(str(e)) from e
    if not found.videos and not found.failures:
        raise RunError(f"no videos found in {inputs}")
    _check_identity(out_dir, cfg, found, overwrite)
    with atomic_open(out_dir / "config.yaml") as f:
        f.write(cfg.to_yaml())
    write_jsonl_atomic(  # the metadata's videos are in _work/manifest/manifest.parquet
        work_dir / "inputs.jsonl",
        [{"id": s.id, "source": s.video.source, "clips": len(s.clips)} for s in found.samples],
    )

    pipeline = build_pipeline(cfg, out_dir, models)
    store = store_of(out_dir)  # a remote run folder: shards are published as they finish
    sink = ShardSink(out_dir, keep_downloads=cfg.download.keep, store=store)
    shards = found.shards(cfg.output.videos_per_shard)
    log.info(
        "%d videos in %d shards, %s; stages: %s",
        found.videos,
        len(shards),
        f"{cfg.workers} worker(s)" if cfg.executor == "local" else "Ray executor",
        " -> ".join(pipeline.names),
    )
    executor = make_executor(cfg)
    resumed = []
    with CountingProgress("videos", found.videos, enabled=progress) as bar:

        def on_done(result: ShardResult, was_resumed: bool) -> None:
            if was_resumed:
                resumed.append(result.index)
            bar.advance(result.videos, result.summary.get("clips", 0), len(result.failures))

        try:
            results = executor.run(pipeline, sink, shards, work_dir, on_done=on_done)
        except cannot_run as e:  # the Ray cluster cannot run the stages (no GPU for one...)
            raise RunError(str(e)) from e
    if store is not None:  # sidecars of shards other machines (Ray nodes) finished
        pull(store, out_dir, lambda rel: rel.startswith("shards/") and rel.endswith(".parquet"))

    summary = finalize(
        out_dir,
        results,
        found.failures,
        found,
        len(resumed),
        time.perf_counter() - t0,
        notes,
    )
    return summary


def make_executor(cfg: RunConfig) -> Any:
    """The executor `cfg.executor` names: local worker processes, or a Ray cluster's actors."""
    if cfg.executor == "ray":
        from internvid.engine.ray_executor import RayExecutor

        r = cfg.ray
        return RayExecutor(
            r.address,
            r.cpu_actors,
            r.gpu_actors,
            r.max_attempts,
            threads_per_worker=cfg.threads_per_worker,
        )
    return LocalExecutor(cfg.workers, cfg.threads_per_worker)


def video_status(
    videos: Iterable[Video],
    results: list[ShardResult],
    input_failures: list,
    clips_per_video: Counter,
) -> list[dict[str, Any]]:
    """A `videos.parquet` row for every input: its latest facts (the sink's, else the probe's,
    else the input's), `status` (ok / dropped / failed), `reason` and `clips` kept.

    A video is ok when it kept a clip; else failed when it or one of its clips failed (the
    most frequent reason); else dropped by the most frequent rule that removed its clips, or
    the rule that removed it (a clip's rule says more than the video's `no_clips`)."""
    rows = {v.id: video_to_row(v) for v in videos}
    for r in results:
        rows.update((v["id"], v) for v in r.probed)
    for r in results:
        rows.update((v["id"], v) for v in r.summary.get("videos", []))
    failed_video: dict[str, str] = {}
    failed_clips: dict[str, Counter] = {}
    for f in [*input_failures, *(f for r in results for f in r.failures)]:
        if f.item in rows or f.stage == "input":
            failed_video.setdefault(f.item, f.reason)
            if f.item not in rows:  # an unreadable input row: no video to speak of
                rows[f.item] = {"id": f.item, "source": f.source}
        else:
            try:
                vid = parse_clip_id(f.item)[0]
            except ValueError:
                continue
            failed_clips.setdefault(vid, Counter())[f.reason] += 1
    dropped_video: dict[str, str] = {}
    dropped_clips: dict[str, Counter] = {}
    for d in (d for r in results for d in r.dropped):
        if d.kind == "video":
            dropped_video.setdefault(d.video_id, d.rule)
        else:
            dropped_clips.setdefault(d.video_id, Counter())[d.rule] += 1
    out = []
    for vid, row in rows.items():
        kept = clips_per_video.get(vid, 0)
        if kept:
            status, reason = "ok", None
        elif vid in failed_video:
            status, reason = "failed", failed_video[vid]
        elif vid in failed_clips:
            status, reason = "failed", failed_clips[vid].most_common(1)[0][0]
        elif vid in dropped_clips:
            status, reason = "dropped", dropped_clips[vid].most_common(1)[0][0]
        elif vid in dropped_video:
            status, reason = "dropped", dropped_video[vid]
        else:  # a stage let it pass without clips and said nothing: never silently
            status, reason = "failed", "no_output"
        out.append({**row, "status": status, "reason": reason, "clips": kept})
    return out


def finalize(
    out_dir: Path,
    results: list[ShardResult],
    input_failures: list,
    found: Inputs,
    resumed: int,
    wall: float,
    notes: list[str] | None = None,
) -> RunSummary:
    """Merge the shards' outputs into the run's tables (each written atomically): clips,
    videos (every input, with its status), the release jsonl, failures and drops, stats."""
    shard_dir = out_dir / "shards"
    clips_table = concat_clip_tables(
        [
            read_clips_table(shard_dir / f"{shard_name(r.index)}.parquet")
            for r in results
            if r.summary.get("clips")
        ]
    )
    write_table_atomic(clips_table, out_dir / "clips.parquet")
    clip_seconds, clip_videos = 0.0, Counter()
    with ReleaseWriter(out_dir / "internvid.jsonl") as w:
        for batch in clips_table.to_batches():
            for row in batch.to_pylist():
                clip = row_to_clip(row)
                clip_seconds += clip.duration
                clip_videos[clip.video_id] += 1
                w.write(row_from_clip(clip))
    video_rows = video_status(found.iter_videos(), results, input_failures, clip_videos)
    write_table_atomic(
        pa.Table.from_pylist(video_rows, schema=VIDEO_SCHEMA), out_dir / "videos.parquet"
    )

    failures = [f.to_json() for f in input_failures]
    failures += [f.to_json() for r in results for f in r.failures]
    write_jsonl_atomic(out_dir / "failures.jsonl", failures)
    dropped = [d.to_json() for r in results for d in r.dropped]
    write_jsonl_atomic(out_dir / "dropped.jsonl", dropped)
    status = Counter(v["status"] for v in video_rows)

    stages: dict[str, StageStats] = {}
    for r in results:
        for name, st in r.stats.items():
            stages.setdefault(name, StageStats(name, st.unit)).merge(st)
    summary = RunSummary(
        out_dir=display(out_dir),
        videos=found.videos,
        videos_ok=len(clip_videos),
        videos_dropped=status["dropped"],
        videos_failed=status["failed"],
        clips=clips_table.num_rows,
        clip_seconds=round(clip_seconds, 3),
        video_seconds=round(sum(v.get("duration") or 0.0 for v in video_rows), 3),
        failures=len(failures),
        failures_by_reason=dict(sorted(Counter(f["reason"] for f in failures).items())),
        dropped=len(dropped),
        dropped_by_rule=dict(sorted(Counter(d["rule"] for d in dropped).items())),
        shards=len(results),
        shards_resumed=resumed,
        wall_seconds=round(wall, 3),
        stages=[s.to_json() for s in stages.values()],
        notes=list(notes or []),
    )
    write_json_atomic(out_dir / "stats.json", summary.to_json())
    return summary
