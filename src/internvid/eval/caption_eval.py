"""Caption-quality regression harness (`internvid caption-eval`): a fixed clip set, caption metrics, a baseline and its checks."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CLIP_SET_FORMAT = "internvid-clip-set"  # the "format" key of a clip set file
BASELINE_FORMAT = "internvid-caption-baseline"  # the "format" key of a baseline file
FORMAT_VERSION = 1  # bump when either file's layout changes
CAPTION_KINDS_HELP = "fused (the default), coarse, or any NAME of a NAME_caption column"
SAMPLINGS = ("middle", "demo")  # ScoreConfig.viclip_sampling choices
# the metrics, in table order; "words" is a ratio check, the others absolute differences
METRICS = ("viclip_sim", "words", "empty_rate", "repetition", "distinct_2", "duplicate_rate")
_EPS = 1e-9  # a change equal to its threshold passes ("more than" the threshold fails)
_WORD = re.compile(r"\w+(?:['’]\w+)*")  # a word: letters/digits, inner apostrophes kept


class CaptionEvalError(ValueError):
    """The harness cannot start: a bad clip set, captions or baseline file, a missing model."""


class NothingScored(RuntimeError):
    """No clip of the set could be judged: no caption matched it, or no video could be read."""


# ------------------------------------------------------------------ settings


@dataclass
class Thresholds:
    """How far a metric may move from the baseline before `compare` fails it."""

    # ViCLIP similarity: fail when the mean drops by more than this (absolute cosine)
    similarity_drop: float = 0.02
    # words per caption: fail when the mean falls below this multiple of the baseline's...
    words_min_ratio: float = 0.67
    # ...or rises above this multiple
    words_max_ratio: float = 1.5
    # empty-caption rate: fail when it rises by more than this (0.02: one clip in 50)
    empty_rise: float = 0.02
    # repetition (share of repeated word 3-grams): fail when the mean rises by more than this
    repetition_rise: float = 0.05
    # distinct-2 across the set: fail when it drops by more than this
    distinct_drop: float = 0.05
    # share of captions equal to another clip's: fail when it rises by more than this
    duplicate_rise: float = 0.05

    def validate(self) -> None:
        """Raise ValueError on thresholds that cannot work."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"thresholds.{f.name} must be a number >= 0, got {value!r}")
        if not self.words_min_ratio <= 1.0 <= self.words_max_ratio:
            raise ValueError("thresholds: words_min_ratio <= 1 <= words_max_ratio is needed")


@dataclass
class CaptionEvalConfig:
    """`internvid caption-eval`: which captions, which ViCLIP, the thresholds, the set size."""

    # the caption column of a run folder's clips.parquet: fused, coarse (NAME -> NAME_caption)
    caption_kind: str = "fused"
    # auto or real (the official ViCLIP-L/14), or tiny (random weights built locally: tests)
    models: str = "auto"
    # ViCLIP checkpoint: a .pth / .safetensors file or OWNER/REPO/FILE ("" = by models)
    viclip: str = ""
    # ViCLIP frames: middle (middle frame of 8 segments, the viclip_sim default) or demo
    viclip_sampling: str = "middle"
    # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # auto, fp32, fp16, bf16
    dtype: str = "auto"
    # clips per model call
    batch_size: int = 32
    # Hugging Face cache folder for the model ("" = HF_HOME's)
    cache_dir: str = ""
    # clips drawn into a new clip set (--make-set)
    clips: int = 32
    # seed of that draw
    seed: int = 0
    # how far each metric may move from the baseline
    thresholds: Thresholds = field(default_factory=Thresholds)

    def validate(self) -> None:
        """Raise ValueError on settings that cannot work."""
        from internvid.hub import MODEL_CHOICES

        if self.models not in MODEL_CHOICES:
            raise ValueError(f"models must be one of {', '.join(MODEL_CHOICES)}")
        if self.viclip_sampling not in SAMPLINGS:
            raise ValueError(f"viclip_sampling must be one of {', '.join(SAMPLINGS)}")
        if self.batch_size < 1 or self.clips < 1:
            raise ValueError("batch_size and clips must be >= 1")
        if not re.fullmatch(r"[a-z0-9_]+", self.caption_kind):
            raise ValueError(f"caption_kind {self.caption_kind!r}: {CAPTION_KINDS_HELP}")
        self.thresholds.validate()


# ------------------------------------------------------------------ the clip set


@dataclass
class SetClip:
    """One clip of a clip set: which video, which span."""

    clip_id: str  # the clip's id (as in the run's clips.parquet and a captions JSONL)
    video: str  # the video file as written in the set; a relative path resolves against the root
    start: float  # seconds from the start of the video: the clip's first frame
    end: float  # seconds, exclusive
    fps: float | None = None  # the video's frame rate (None: probed when needed)
    start_frame: int | None = None  # the split's first frame (exact), None: from `start` x fps
    end_frame: int | None = None  # the split's end frame (exclusive), None: from `end` x fps

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ClipSet:
    """A small fixed list of clips to caption and judge, always the same ones."""

    clips: list[SetClip]  # in file order
    root: Path  # where relative video paths resolve (the set file's folder unless given)
    source: str = ""  # the run folder the clips were drawn from ("" when unknown)
    seed: int | None = None  # the seed of that draw

    @property
    def digest(self) -> str:
        """16 hex digits of sha256 over the clips (ids, videos as written, times, frames): a
        baseline is only compared against the set it was made on."""
        rows = [c.to_json() for c in self.clips]
        for r in rows:
            r.pop("fps", None)  # not the span
        text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def video_path(self, clip: SetClip) -> Path:
        """The clip's video file on this machine."""
        path = Path(clip.video).expanduser()
        return path if path.is_absolute() else self.root / path

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CLIP_SET_FORMAT,
            "version": FORMAT_VERSION,
            "source": self.source,
            "seed": self.seed,
            "clips": [c.to_json() for c in self.clips],
        }


def clip_set_from_run(
    run: str | Path, n: int, seed: int = 0, root: str | Path | None = None
) -> ClipSet:
    """A deterministic choice of `n` kept clips of the finished run in `run` (all of them when
    it has fewer): the clips sorted by id, `random.Random(seed).sample` of them, in id order.
    Only clips whose source video is a local file are eligible. Videos under `root` are written
    relative to it (a set that travels with its videos), the others as absolute paths."""
    from internvid.io.tables import read_clips
    from internvid.rescore import video_rows

    run = Path(run)
    if not (run / "clips.parquet").is_file():
        raise CaptionEvalError(f"{run} holds no finished run (no clips.parquet)")
    if n < 1:
        raise CaptionEvalError("a clip set needs at least one clip")
    videos = video_rows(run)
    base = Path(root).expanduser().resolve() if root is not None else None
    eligible: list[SetClip] = []
    for clip in sorted(read_clips(run / "clips.parquet"), key=lambda c: c.clip_id):
        row = videos.get(clip.video_id) or {}
        found = next(
            (Path(p) for p in (row.get("path"), clip.source) if p and Path(p).is_file()), None
        )
        if found is None:
            log.debug("%s: its video is not a local file here, not eligible", clip.clip_id)
            continue
        found = found.resolve()
        video = str(found)
        if base is not None and found.is_relative_to(base):
            video = found.relative_to(base).as_posix()
        meta = clip.meta or {}
        eligible.append(
            SetClip(
                clip_id=clip.clip_id,
                video=video,
                start=round(float(clip.start), 6),
                end=round(float(clip.end), 6),
                fps=row.get("fps") or clip.fps,
                start_frame=meta.get("start_frame"),
                end_frame=meta.get("end_frame"),
            )
        )
    if not eligible:
        raise CaptionEvalError(f"{run}: no clip whose video is a local file here")
    if len(eligible) < n:
        log.warning(
            "%s has %d eligible clips, fewer than %d: the set takes them all", run, len(eligible), n
        )
    chosen = random.Random(seed).sample(range(len(eligible)), min(n, len(eligible)))
    clips = [eligible[i] for i in sorted(chosen)]
    return ClipSet(clips, base or Path.cwd(), source=str(run), seed=seed)


def write_clip_set(clip_set: ClipSet, path: str | Path) -> None:
    """Write `clip_set` as JSON (atomically)."""
    from internvid.io.atomic import write_json_atomic

    write_json_atomic(path, clip_set.to_json())


def load_clip_set(path: str | Path, root: str | Path | None = None) -> ClipSet:
    """The clip set in the JSON file `path`; relative video paths resolve against `root`, else
    the file's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CaptionEvalError(f"{path}: not a readable clip set ({e})") from e
    if not isinstance(data, dict) or data.get("format") != CLIP_SET_FORMAT:
        raise CaptionEvalError(f'{path}: not a clip set (no "format": "{CLIP_SET_FORMAT}")')
    clips, seen = [], set()
    known = {f.name for f in fields(SetClip)}
    for k, row in enumerate(data.get("clips") or []):
        try:
            clip = SetClip(**{key: v for key, v in row.items() if key in known})
            clip.start, clip.end = float(clip.start), float(clip.end)
        except (TypeError, ValueError, AttributeError) as e:
            raise CaptionEvalError(f"{path}: clip {k}: {e}") from e
        if not clip.clip_id or not clip.video or not clip.end > clip.start:
            raise CaptionEvalError(f"{path}: clip {k}: needs clip_id, video and end > start")
        if clip.clip_id in seen:
            raise CaptionEvalError(f"{path}: clip {clip.clip_id} is listed twice")
        seen.add(clip.clip_id)
        clips.append(clip)
    if not clips:
        raise CaptionEvalError(f"{path}: the clip set lists no clip")
    base = Path(root).expanduser() if root is not None else path.resolve().parent
    return ClipSet(clips, base, source=data.get("source") or "", seed=data.get("seed"))


# ------------------------------------------------------------------ captions to judge


def read_captions(source: str | Path, kind: str = "fused") -> dict[str, str]:
    """Clip id -> caption: the `KIND_caption` column of a run folder's clips.parquet, or the
    rows `{"clip_id": ..., "caption": ...}` of a JSONL file (null: ""; a repeated id: the last)."""
    source = Path(source)
    if source.is_dir():
        from internvid.io.tables import read_clips_table

        clips_path = source / "clips.parquet"
        if not clips_path.is_file():
            raise CaptionEvalError(f"{source} holds no finished run (no clips.parquet)")
        table = read_clips_table(clips_path)
        column = f"{kind}_caption"
        if column not in table.column_names:
            have = [c[: -len("_caption")] for c in table.column_names if c.endswith("_caption")]
            raise CaptionEvalError(
                f"{clips_path} has no {column} column; caption kinds there: {', '.join(have)}"
            )
        ids, texts = table.column("clip_id").to_pylist(), table.column(column).to_pylist()
        return {i: t or "" for i, t in zip(ids, texts, strict=True)}
    if not source.is_file():
        raise CaptionEvalError(f"{source}: neither a run folder nor a captions JSONL file")
    captions: dict[str, str] = {}
    with open(source, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                clip_id, text = row["clip_id"], row.get("caption")
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise CaptionEvalError(
                    f'{source}:{line_no}: expected {{"clip_id": ..., "caption": ...}} ({e})'
                ) from e
            if not isinstance(clip_id, str) or not (text is None or isinstance(text, str)):
                raise CaptionEvalError(f"{source}:{line_no}: clip_id and caption must be text")
            if clip_id in captions:
                log.warning(
                    "%s:%d: %s given again: the last caption counts", source, line_no, clip_id
                )
            captions[clip_id] = text or ""
    return captions


# ------------------------------------------------------------------ text metrics (pure)


def words(caption: str) -> list[str]:
    """The caption's words, lower-cased: runs of letters and digits (inner apostrophes kept)."""
    return _WORD.findall(caption.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """The word n-grams of `tokens`, in order."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition(caption: str) -> float:
    """Share of the caption's word 3-grams that repeat an earlier one of the same caption
    (1 - distinct / all); 0.0 for captions under 3 words."""
    grams = ngrams(words(caption), 3)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_n(captions: list[str], n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams over the captions (n-grams within a caption);
    0.0 when they hold none."""
    grams = [g for c in captions for g in ngrams(words(c), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def duplicate_flags(captions: list[str]) -> list[bool]:
    """For each caption: does another caption of the list read exactly the same (outer
    whitespace aside)? Empty captions are never duplicates."""
    counts = Counter(c.strip() for c in captions if c.strip())
    return [bool(c.strip()) and counts[c.strip()] > 1 for c in captions]


@dataclass
class Metrics:
    """The means over a clip set (None: no caption to take it over)."""

    viclip_sim: float | None = None  # mean ViCLIP video-caption cosine, over non-empty captions
    words: float | None = None  # mean words per caption, over non-empty captions
    empty_rate: float | None = None  # share of the set's clips whose caption is blank or missing
    repetition: float | None = None  # mean share of repeated word 3-grams, non-empty captions
    distinct_2: float | None = None  # distinct / all word bigrams over the set's captions
    duplicate_rate: float | None = None  # share of non-empty captions equal to another clip's

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(**{k: _number(data.get(k)) for k in METRICS})


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CaptionEvalError(f"a metric must be a number or null, got {value!r}")
    return float(value)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def text_metrics(captions: list[str], sims: list[float | None] | None = None) -> Metrics:
    """The set's means from its captions (one per clip, "" for none) and, when given, each
    clip's ViCLIP similarity (None where it has none)."""
    kept = [c for c in captions if c.strip()]
    dup = [d for c, d in zip(captions, duplicate_flags(captions), strict=True) if c.strip()]
    return Metrics(
        viclip_sim=_mean([s for s in sims or [] if s is not None]),
        words=_mean([float(len(words(c))) for c in kept]),
        empty_rate=round(1.0 - len(kept) / len(captions), 6) if captions else None,
        repetition=_mean([repetition(c) for c in kept]),
        distinct_2=round(distinct_n(kept, 2), 6) if captions else None,
        duplicate_rate=_mean([float(d) for d in dup]),
    )


# ------------------------------------------------------------------ scoring a set


@dataclass
class ClipResult:
    """One clip's caption and what the harness measured of it."""

    clip_id: str  # the clip
    caption: str  # the caption judged ("" when blank or missing)
    missing: bool  # the captions source has no entry for the clip
    words: int  # words in the caption
    repetition: float  # share of its word 3-grams that repeat
    duplicate: bool  # another clip of the set has the same caption
    viclip_sim: float | None  # ViCLIP cosine with the clip's frames (None: empty or unreadable)


@dataclass
class EvalResult:
    """The captions of one clip set, judged."""

    metrics: Metrics  # the means
    clips: list[ClipResult]  # per clip, in the set's order
    clip_set: str  # the clip set's digest
    model: str  # the ViCLIP checkpoint the similarity came from
    viclip_sampling: str  # how its frames were picked (middle, demo)
    captions: str  # where the captions came from (run folder or JSONL, + the kind)
    missing: int  # clips of the set the captions source has no entry for
    unreadable: int  # clips whose frames could not be decoded (no similarity)
    notes: list[str] = field(default_factory=list)  # things a reader must know
    seconds: float = 0.0  # wall time of the evaluation


def _fps(path: Path, clip: SetClip) -> float:
    if clip.fps:
        return float(clip.fps)
    from internvid.media.probe import probe

    return probe(path).fps or 25.0


def _similarities(
    clip_set: ClipSet, captions: list[str], cfg: CaptionEvalConfig
) -> tuple[list[float | None], int, str, list[str]]:
    """Each clip's ViCLIP similarity through the viclip_sim scorer of `internvid score`: its
    frames from the source span (rescore.frames_for_video, the scorer's own frame needs), its
    model resolved and loaded by the score stage. (sims, unreadable clips, model ref, notes)."""
    from internvid.config import ScoreConfig
    from internvid.engine import Sample
    from internvid.hub import ModelsUnavailable, resolve_models
    from internvid.media.onepass import OnePass
    from internvid.records import Clip, Video
    from internvid.rescore import frames_for_video
    from internvid.stages.score import ScoreStage, score_models

    score_cfg = ScoreConfig(
        scores=["viclip_sim"],
        models=cfg.models,
        viclip=cfg.viclip,
        viclip_sampling=cfg.viclip_sampling,
        device=cfg.device,
        dtype=cfg.dtype,
        batch_size=cfg.batch_size,
    )
    models = score_models(score_cfg)
    ref = models.get("viclip")
    try:
        found = resolve_models(models.folders(), cfg.cache_dir, models.files(), "caption-eval")
    except ModelsUnavailable as e:
        raise CaptionEvalError(str(e)) from e
    notes = []
    if any(r.how == "tiny" for r in found):
        notes.append("similarity from the random-weight tiny ViCLIP: noise, for tests only")
    stage = ScoreStage(score_cfg, models, {r.name: r.path for r in found})
    onepass = OnePass(None, 1, None, stage.frame_needs, fast_decode=True)

    per_video: dict[Path, list[tuple[int, Clip]]] = {}
    for k, (sc, text) in enumerate(zip(clip_set.clips, captions, strict=True)):
        path = clip_set.video_path(sc)
        meta = (
            {}
            if sc.start_frame is None or sc.end_frame is None
            else {"start_frame": sc.start_frame, "end_frame": sc.end_frame}
        )
        clip = Clip(
            clip_id=sc.clip_id,
            video_id=path.stem,
            start=sc.start,
            end=sc.end,
            source=str(path),
            fps=sc.fps,
            captions={"fused": text},
            meta=meta,
        )
        per_video.setdefault(path, []).append((k, clip))
    sims: list[float | None] = [None] * len(captions)
    unreadable = 0
    samples, order = [], []
    with tempfile.TemporaryDirectory(prefix="internvid-caption-eval-") as tmp:
        for path, items in per_video.items():
            vclips = [c for _, c in items]
            if not path.is_file():
                log.warning("%s: no such video (%d clips unreadable)", path, len(vclips))
                unreadable += len(vclips)
                continue
            try:
                row = {"path": str(path), "fps": _fps(path, clip_set.clips[items[0][0]])}
            except Exception as e:  # probing failed: the clips are unreadable
                log.warning("%s: cannot be read (%s: %s)", path, type(e).__name__, e)
                unreadable += len(vclips)
                continue
            # no shards in tmp: a video that fails to decode leaves its clips without frames
            frames, failed = frames_for_video(Path(tmp), row, vclips, onepass, Path(tmp))
            for clip, reason, message in failed:
                log.warning("%s: no frames (%s: %s, %s)", clip.clip_id, reason, message, path)
            unreadable += len(failed)
            kept = [c for c in vclips if c.clip_id in frames]
            if kept:
                sample = Sample(Video(id=path.stem, source=str(path), path=str(path)), kept)
                sample.payload["frames"] = frames
                samples.append(sample)
                order += [k for k, c in items if c.clip_id in frames]
    if unreadable == len(captions):
        raise NothingScored(
            f"no video of the clip set could be read (root {clip_set.root}: pass --root?)"
        )
    if samples:
        stage.setup()  # the model loads once the frames are there
        failures: list = []
        stage.run_batch(samples, stage.new_stats(), failures)
        for f in failures:
            log.warning("%s: not scored (%s: %s)", f.item, f.reason, f.message)
        scored = [c for s in samples for c in s.clips]
        for k, clip in zip(order, scored, strict=True):
            sims[k] = clip.scores.get("viclip_sim")
    return sims, unreadable, ref, notes


def evaluate_captions(
    clip_set: ClipSet, captions: Mapping[str, str], cfg: CaptionEvalConfig, source: str = ""
) -> EvalResult:
    """Judge `captions` (clip id -> caption) of the clips of `clip_set`: the text metrics, and
    ViCLIP similarity of each caption with its clip's frames. A clip without an entry counts as
    an empty caption. Raises NothingScored when no clip has an entry or no video can be read."""
    t0 = time.perf_counter()
    texts = [(captions.get(c.clip_id) or "").strip() for c in clip_set.clips]
    missing = sum(c.clip_id not in captions for c in clip_set.clips)
    if missing == len(clip_set.clips):
        raise NothingScored(
            f"no clip of the set has a caption in {source or 'the captions'} (the clip ids "
            f"differ: is it the set's run, or a JSONL of these clips?)"
        )
    if missing:
        log.warning(
            "%d of %d clips have no caption in %s: counted as empty",
            missing,
            len(texts),
            source or "the captions",
        )
    sims, unreadable, model, notes = _similarities(clip_set, texts, cfg)
    metrics = text_metrics(texts, sims)
    dup = duplicate_flags(texts)
    clips = [
        ClipResult(
            c.clip_id, t, c.clip_id not in captions, len(words(t)), round(repetition(t), 6), d, s
        )
        for c, t, d, s in zip(clip_set.clips, texts, dup, sims, strict=True)
    ]
    if unreadable:
        notes.append(f"{unreadable} clip(s) could not be read: no similarity for them")
    return EvalResult(
        metrics,
        clips,
        clip_set.digest,
        model,
        cfg.viclip_sampling,
        source,
        missing,
        unreadable,
        notes,
        round(time.perf_counter() - t0, 3),
    )


# ------------------------------------------------------------------ baselines and checks


@dataclass
class Baseline:
    """The means a later evaluation of the same clip set is held to."""

    metrics: Metrics  # the means
    clip_set: str  # digest of the clip set they were measured on
    model: str  # the ViCLIP checkpoint of the similarity
    viclip_sampling: str  # its frame sampling
    clips: int = 0  # clips in the set
    captions: str = ""  # where the captions came from
    created: str = ""  # when (local time, ISO 8601)

    def to_json(self) -> dict[str, Any]:
        data = {"format": BASELINE_FORMAT, "version": FORMAT_VERSION, **asdict(self)}
        data["metrics"] = self.metrics.to_json()
        return data

    @classmethod
    def of(cls, result: EvalResult) -> Baseline:
        return cls(
            result.metrics,
            result.clip_set,
            result.model,
            result.viclip_sampling,
            len(result.clips),
            result.captions,
            time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )


def write_baseline(result: EvalResult, path: str | Path) -> Baseline:
    """Write the means of `result` as a baseline JSON (atomically)."""
    from internvid.io.atomic import write_json_atomic

    baseline = Baseline.of(result)
    write_json_atomic(path, baseline.to_json())
    return baseline


def load_baseline(path: str | Path) -> Baseline:
    """The baseline in the JSON file `path`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CaptionEvalError(f"{path}: not a readable baseline ({e})") from e
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise CaptionEvalError(f'{path}: not a baseline (no "format": "{BASELINE_FORMAT}")')
    try:
        return Baseline(
            metrics=Metrics.from_json(data.get("metrics") or {}),
            clip_set=str(data["clip_set"]),
            model=str(data.get("model", "")),
            viclip_sampling=str(data.get("viclip_sampling", "")),
            clips=int(data.get("clips", 0)),
            captions=str(data.get("captions", "")),
            created=str(data.get("created", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CaptionEvalError(f"{path}: a baseline needs a clip_set digest and metrics") from e


@dataclass
class Check:
    """One metric against its baseline."""

    metric: str  # one of METRICS
    current: float | None  # this evaluation's value
    baseline: float | None  # the baseline's (None: it has none: not checked)
    passed: bool  # within its threshold (or not checked)
    rule: str  # what passing means, e.g. "drop <= 0.02"
    note: str = ""  # why it failed or was not checked


def _as_dict(m: Metrics | Mapping[str, float | None]) -> dict[str, float | None]:
    return m.to_json() if isinstance(m, Metrics) else dict(m)


def compare(
    current: Metrics | Mapping[str, float | None],
    baseline: Metrics | Mapping[str, float | None],
    thresholds: Thresholds | None = None,
) -> list[Check]:
    """Check each metric of `current` against `baseline` (both Metrics or metric -> value):
    similarity and distinct-2 fail on a drop of more than their threshold, words outside its
    ratio band, the empty, repetition and duplicate rates on a rise of more than theirs. A metric
    the baseline lacks is not checked; one the baseline has and `current` lacks fails."""
    t = thresholds or Thresholds()
    cur, base = _as_dict(current), _as_dict(baseline)
    rules = {  # metric -> (rule text, passes(current, baseline))
        "viclip_sim": (f"drop <= {t.similarity_drop:g}", lambda c, b: b - c <= t.similarity_drop + _EPS),
        "words": (
            f"{t.words_min_ratio:g}x-{t.words_max_ratio:g}x",
            lambda c, b: (
                c == b if b == 0 else t.words_min_ratio - _EPS <= c / b <= t.words_max_ratio + _EPS
            ),
        ),
        "empty_rate": (f"rise <= {t.empty_rise:g}", lambda c, b: c - b <= t.empty_rise + _EPS),
        "repetition": (f"rise <= {t.repetition_rise:g}", lambda c, b: c - b <= t.repetition_rise + _EPS),
        "distinct_2": (f"drop <= {t.distinct_drop:g}", lambda c, b: b - c <= t.distinct_drop + _EPS),
        "duplicate_rate": (f"rise <= {t.duplicate_rise:g}", lambda c, b: c - b <= t.duplicate_rise + _EPS),
    }  # fmt: skip
    checks = []
    for metric in METRICS:
        rule, passes = rules[metric]
        c, b = cur.get(metric), base.get(metric)
        if b is None:
            checks.append(Check(metric, c, b, True, rule, "no baseline value: not checked"))
        elif c is None:
            checks.append(Check(metric, c, b, False, rule, "no value now"))
        else:
            ok = passes(c, b)
            checks.append(Check(metric, c, b, ok, rule, "" if ok else _change(metric, c, b)))
    return checks


def _change(metric: str, c: float, b: float) -> str:
    if metric == "words":
        return f"{c / b:.2f}x the baseline" if b else "the baseline has 0"
    return f"{c - b:+.4f}"


@dataclass
class Report:
    """An evaluation and, when a baseline was given, its checks."""

    result: EvalResult  # the evaluation
    baseline: Baseline | None = None  # what it was held to
    checks: list[Check] = field(default_factory=list)  # one per metric (empty: no baseline)

    @property
    def failed(self) -> list[str]:
        """The metrics that failed their check."""
        return [c.metric for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "clip_set": r.clip_set,
            "captions": r.captions,
            "model": r.model,
            "viclip_sampling": r.viclip_sampling,
            "clips": len(r.clips),
            "missing": r.missing,
            "unreadable": r.unreadable,
            "metrics": r.metrics.to_json(),
            "baseline": self.baseline.to_json() if self.baseline else None,
            "checks": [asdict(c) for c in self.checks],
            "passed": not self.failed,
            "failed": self.failed,
            "notes": r.notes,
            "seconds": r.seconds,
            "per_clip": [asdict(c) for c in r.clips],
        }


def _same_model(a: str, b: str) -> bool:
    """The same checkpoint: equal references, or local files of the same name."""
    return a == b or (Path(a).suffix != "" and Path(a).name == Path(b).name)


def check_baseline(
    result: EvalResult, baseline: Baseline, thresholds: Thresholds | None = None
) -> list[Check]:
    """`compare` of `result` against `baseline`, after making sure both are of the same clip
    set (else CaptionEvalError); a similarity from another ViCLIP or sampling fails."""
    if baseline.clip_set != result.clip_set:
        raise CaptionEvalError(
            f"the baseline was measured on clip set {baseline.clip_set}, this is {result.clip_set}"
            ": write a new baseline for this set (--write-baseline)"
        )
    checks = compare(result.metrics, baseline.metrics, thresholds)
    other = not _same_model(baseline.model, result.model) or (
        baseline.viclip_sampling and baseline.viclip_sampling != result.viclip_sampling
    )
    if other and baseline.metrics.viclip_sim is not None:
        sim = checks[METRICS.index("viclip_sim")]
        sim.passed = False
        sim.note = (
            f"baseline from {baseline.model} ({baseline.viclip_sampling}), now "
            f"{result.model} ({result.viclip_sampling}): not comparable"
        )
    return checks


def caption_eval(
    clip_set: ClipSet,
    captions: str | Path,
    cfg: CaptionEvalConfig,
    baseline: str | Path | None = None,
) -> Report:
    """`internvid caption-eval`'s library call: judge the captions of `captions` (a run folder,
    its `cfg.caption_kind` column, or a JSONL) on `clip_set`, and check them against the
    `baseline` file when given."""
    base = load_baseline(baseline) if baseline is not None else None  # a bad file: fail first
    source = Path(captions)
    label = f"{source} ({cfg.caption_kind})" if source.is_dir() else str(source)
    result = evaluate_captions(clip_set, read_captions(source, cfg.caption_kind), cfg, label)
    m = result.metrics
    log.info(
        "%d clips judged in %.1f s: similarity %s, %s words, %s empty, %s repetition, "
        "distinct-2 %s, %s duplicates",
        len(result.clips),
        result.seconds,
        m.viclip_sim,
        m.words,
        m.empty_rate,
        m.repetition,
        m.distinct_2,
        m.duplicate_rate,
    )
    checks = check_baseline(result, base, cfg.thresholds) if base is not None else []
    return Report(result, base, checks)
