"""Stages: units of work that declare what they need and provide, their resources and batch size."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from internvid.engine.sample import Dropped, Failure, Probed, Sample

log = logging.getLogger(__name__)


class StageError(Exception):
    """An item failed in a stage for a known reason; it becomes one row of failures.jsonl."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # short slug, e.g. "no_video_stream"
        self.message = message


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs from the machine (the Ray executor sizes actors by it)."""

    cpus: float = 1.0  # CPU cores per instance
    gpus: float = 0.0  # GPUs per instance (fractions share a GPU)
    cpu_fallback: bool = False  # runs on CPUs alone where there is no GPU (device "auto")

    @classmethod
    def for_device(cls, device: str, cpus: float = 1.0) -> Resources:
        """A model stage's needs: one GPU unless its device is the CPU ("auto" may be a GPU)."""
        gpu = device.startswith("cuda") or device == "auto"
        return cls(cpus=cpus, gpus=1.0 if gpu else 0.0, cpu_fallback=device == "auto")


@dataclass
class StageStats:
    """Per-stage counters: items in and out, dropped and failed by reason, seconds spent."""

    name: str  # stage name
    unit: str = "video"  # what in/out count: "video" or "clip"
    items_in: int = 0  # items the stage received
    items_out: int = 0  # items it passed on
    clips_out: int = 0  # clips in the samples it passed on
    dropped: Counter = field(default_factory=Counter)  # reason -> items removed on purpose
    failed: Counter = field(default_factory=Counter)  # reason -> items that failed
    seconds: float = 0.0  # wall time inside the stage

    def merge(self, other: StageStats) -> None:
        self.items_in += other.items_in
        self.items_out += other.items_out
        self.clips_out += other.clips_out
        self.dropped.update(other.dropped)
        self.failed.update(other.failed)
        self.seconds += other.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "in": self.items_in,
            "out": self.items_out,
            "clips_out": self.clips_out,
            "dropped": dict(sorted(self.dropped.items())),
            "failed": dict(sorted(self.failed.items())),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageStats:
        return cls(
            name=d["name"],
            unit=d["unit"],
            items_in=d["in"],
            items_out=d["out"],
            clips_out=d["clips_out"],
            dropped=Counter(d["dropped"]),
            failed=Counter(d["failed"]),
            seconds=d["seconds"],
        )


class Context:
    """Handed to `Stage.process`: where a stage records drops and failures of its items."""

    def __init__(self, stage: Stage, stats: StageStats, failures: list):
        self.stage = stage
        self.stats = stats
        self.failures = failures  # the shard's trail: Failure, Dropped and Probed records

    def drop(
        self,
        reason: str,
        count: int = 1,
        sample: Sample | None = None,
        clip: Any = None,
        values: dict[str, Any] | None = None,
        span: tuple[float, float] | None = None,
        item: str | None = None,
    ) -> None:
        """Count `count` items removed on purpose (a filter said no). With `sample`, also note
        one `dropped.jsonl` row: of `clip` (a Clip), of the piece `item` at `span` (start, end
        seconds), or of the whole video; `values` are what the rule looked at."""
        self.stats.dropped[reason] += count
        if sample is None:
            return
        if clip is not None:
            item, span = clip.clip_id, (clip.start, clip.end)
        kind = "clip" if item is not None else "video"
        self.failures.append(
            Dropped(
                item=item or sample.id,
                kind=kind,
                video_id=sample.id,
                stage=self.stage.name,
                rule=reason,
                values=dict(values or {}),
                start=None if span is None else round(span[0], 6),
                end=None if span is None else round(span[1], 6),
                source=sample.video.source,
            )
        )

    def probed(self, sample: Sample) -> None:
        """Note the sample's probe facts for its `videos.parquet` row."""
        self.failures.append(Probed(sample.video.to_row()))

    def fail(self, sample: Sample, reason: str, message: str, item: str | None = None) -> None:
        """Record a failed item (the whole video, or one clip of it when `item` is a clip id)."""
        self.stats.failed[reason] += 1
        self.failures.append(
            Failure(
                item=item or sample.id,
                stage=self.stage.name,
                reason=reason,
                message=message,
                source=sample.video.source,
            )
        )
        log.warning("%s failed in %s: %s: %s", item or sample.id, self.stage.name, reason, message)


class Stage:
    """Base class of every pipeline step.

    Subclasses set `name`, `needs` and `provides` (names of the sample fields a stage reads and
    fills in, checked by `Pipeline.validate`), `unit` ("video" or "clip": what its in/out count),
    `resources` and `batch_size`. A stage is cheap to build and picklable: heavy things (models,
    decoders) load in `setup()`, which runs once per worker before the first batch.

    A stage that reads decoded frames declares them as `frame_needs` (FrameNeed: which frames of
    each clip, at what size); the split serves them from its single decode pass.

    Override `process_one` for item-at-a-time work (an exception fails that item only), or
    `process` for batched work (a GPU model over many clips).
    """

    name: ClassVar[str] = "stage"
    needs: ClassVar[frozenset[str]] = frozenset()
    provides: ClassVar[frozenset[str]] = frozenset()
    unit: ClassVar[str] = "video"
    resources: Resources = Resources()
    batch_size: int = 1
    frame_needs: tuple = ()  # FrameNeed(s) this stage reads from sample.payload["frames"][clip_id]

    def request_frames(self, needs: tuple) -> None:
        """Called on the stage that provides "frames" with every later stage's frame needs."""
        raise NotImplementedError(f"{self.name} provides frames but cannot serve them")

    def setup(self) -> None:
        """Load heavy things. Called once per worker process, before the first batch."""

    def process_one(self, sample: Sample, ctx: Context) -> Sample | None:
        """Process one sample; return it (possibly changed) or None after ctx.drop/ctx.fail."""
        raise NotImplementedError

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        """Process a batch. The default calls `process_one` per sample and isolates failures."""
        out = []
        for sample in batch:
            try:
                result = self.process_one(sample, ctx)
            except StageError as e:
                ctx.fail(sample, e.reason, e.message)
                continue
            except Exception as e:
                log.exception("unexpected error in %s on %s", self.name, sample.id)
                ctx.fail(sample, "error", f"{type(e).__name__}: {e}")
                continue
            if result is not None:
                out.append(result)
        return out

    def count(self, batch: list[Sample]) -> int:
        """Items in a batch, in this stage's unit."""
        return len(batch) if self.unit == "video" else sum(len(s.clips) for s in batch)

    def run_batch(
        self, batch: list[Sample], stats: StageStats, failures: list[Failure]
    ) -> list[Sample]:
        """Process a batch and account for it in `stats` (used by every executor)."""
        ctx = Context(self, stats, failures)
        stats.items_in += self.count(batch)
        t0 = time.perf_counter()
        out = self.process(batch, ctx) if batch else []
        stats.seconds += time.perf_counter() - t0
        stats.items_out += self.count(out)
        stats.clips_out += sum(len(s.clips) for s in out)
        return out

    def new_stats(self) -> StageStats:
        return StageStats(name=self.name, unit=self.unit)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Filter(Stage):
    """A stage that keeps or drops whole samples: `keep()` answers True, False or (False, rule[, values])."""

    def keep(self, sample: Sample) -> bool | tuple[bool, str] | tuple[bool, str, dict[str, Any]]:
        """True to keep; (False, rule) or (False, rule, values looked at) to drop."""
        raise NotImplementedError

    def process_one(self, sample: Sample, ctx: Context) -> Sample | None:
        verdict = self.keep(sample)
        if isinstance(verdict, tuple):
            ok, reason, values = verdict[0], verdict[1], verdict[2] if len(verdict) > 2 else {}
        else:
            ok, reason, values = verdict, self.name, {}
        if ok:
            return sample
        ctx.drop(reason, sample=sample, values=values)
        return None
