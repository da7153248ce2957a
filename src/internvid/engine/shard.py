"""Work shards: process one shard through a pipeline into a sink, then write its completion marker."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from internvid.engine.pipeline import Pipeline
from internvid.engine.sample import Dropped, Failure, Probed, Sample
from internvid.engine.stage import StageStats
from internvid.io.atomic import write_json_atomic

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a finished shard's samples go (shard files); shared by every executor."""

    def clear_shard(self, index: int, samples: list[Sample]) -> None:
        """Remove whatever an interrupted attempt at this shard left behind."""

    def write_shard(self, index: int, samples: list[Sample]) -> dict[str, Any]:
        """Write the shard's outputs atomically; return a JSON-able summary for the marker."""

    def committed(self, index: int, marker: Path) -> None:
        """The shard's marker is written (a remote folder's sink publishes it)."""


@dataclass
class ShardResult:
    """What a finished shard reports; stored as its completion marker."""

    index: int  # shard number
    videos: int  # samples the shard started with
    stats: dict[str, StageStats]  # per stage
    failures: list[Failure]  # items that failed in this shard
    summary: dict[str, Any] = field(default_factory=dict)  # the sink's summary (clips written...)
    seconds: float = 0.0  # wall time of the shard
    dropped: list[Dropped] = field(default_factory=list)  # clips and videos rules removed
    probed: list[dict[str, Any]] = field(default_factory=list)  # videos.parquet rows, as probed

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "videos": self.videos,
            "seconds": round(self.seconds, 3),
            "stats": [s.to_json() for s in self.stats.values()],
            "failures": [f.to_json() for f in self.failures],
            "dropped": [d.to_json() for d in self.dropped],
            "probed": self.probed,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardResult:
        stats = [StageStats.from_json(s) for s in d["stats"]]
        return cls(
            index=d["index"],
            videos=d["videos"],
            stats={s.name: s for s in stats},
            failures=[Failure(**f) for f in d["failures"]],
            summary=d["summary"],
            seconds=d["seconds"],
            dropped=[Dropped(**x) for x in d.get("dropped", [])],  # markers before 0.2 lack them
            probed=d.get("probed", []),
        )


def marker_path(work_dir: str | Path, index: int) -> Path:
    return Path(work_dir) / f"{index:05d}.done.json"


def load_marker(work_dir: str | Path, index: int) -> ShardResult | None:
    path = marker_path(work_dir, index)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return ShardResult.from_json(json.load(f))


def finished_shards(work_dir: str | Path, count: int) -> dict[int, ShardResult]:
    """The shards among `count` whose completion marker exists (an earlier run finished them)."""
    found = {}
    for i in range(count):
        result = load_marker(work_dir, i)
        if result is not None:
            found[i] = result
    return found


def resume_shards(
    work_dir: str | Path,
    count: int,
    on_done: Callable[[ShardResult, bool], None] | None = None,
) -> tuple[dict[int, ShardResult], list[int]]:
    """An executor's start: (results of shards finished earlier, indices still to do).

    `on_done(result, True)` is called for each finished one; resuming is logged.
    """
    results = finished_shards(work_dir, count)
    todo = [i for i in range(count) if i not in results]
    if on_done:
        for found in results.values():
            on_done(found, True)
    if results:
        log.info("resuming: %d of %d shards already finished", len(results), count)
    return results, todo


def process_shard(
    pipeline: Pipeline, sink: Sink, index: int, samples: list[Sample], work_dir: str | Path
) -> ShardResult:
    """Run one shard end to end. The marker is written last: it is the commit point.

    Stages change samples in place, so the shard works on a copy: a retried shard starts from
    the same input as the first attempt.
    """
    t0 = time.perf_counter()
    samples = copy.deepcopy(samples)
    sink.clear_shard(index, samples)
    stats = pipeline.new_stats()
    failures: list[Failure] = []
    out = pipeline.run(samples, stats, failures)
    return commit_shard(sink, index, len(samples), out, stats, failures, work_dir, t0)


def commit_shard(
    sink: Sink,
    index: int,
    videos: int,
    out: list[Sample],
    stats: dict[str, StageStats],
    failures: list[Failure],
    work_dir: str | Path,
    t0: float,
) -> ShardResult:
    """Write the shard's outputs, then its marker (after this the shard is never redone).
    `failures` is the stages' trail: Failure, Dropped and Probed records."""
    summary = sink.write_shard(index, out)
    result = ShardResult(
        index,
        videos,
        stats,
        [f for f in failures if isinstance(f, Failure)],
        summary,
        time.perf_counter() - t0,
        dropped=[d for d in failures if isinstance(d, Dropped)],
        probed=[p.row for p in failures if isinstance(p, Probed)],
    )
    marker = marker_path(work_dir, index)
    write_json_atomic(marker, result.to_json())
    sink.committed(index, marker)
    return result


def give_up_shard(
    pipeline: Pipeline,
    sink: Sink,
    index: int,
    samples: list[Sample],
    work_dir: str | Path,
    message: str,
) -> ShardResult:
    """Record every item of a shard whose worker keeps dying as failed, and mark it done."""
    failures = [Failure(s.id, "worker", "worker_crashed", message, s.video.source) for s in samples]
    sink.clear_shard(index, samples)
    return commit_shard(
        sink,
        index,
        len(samples),
        [],
        pipeline.new_stats(),
        failures,
        work_dir,
        time.perf_counter(),
    )
