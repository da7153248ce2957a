"""Small stages and a sink for engine tests (importable by spawned worker processes)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from internvid.engine import Context, Filter, Resources, Sample, Stage, StageError
from internvid.io.atomic import write_json_atomic
from internvid.records import Clip


class MakeClips(Stage):
    """Gives each sample `meta["n"]` one-second clips; fails items whose meta says so."""

    name = "make_clips"
    needs = frozenset({"video"})
    provides = frozenset({"clips"})

    def __init__(self):
        self.setup_calls = 0

    def setup(self) -> None:
        self.setup_calls += 1

    def process_one(self, sample: Sample, ctx: Context) -> Sample:
        m = sample.video.meta
        if m.get("crash"):
            os._exit(13)  # a worker dying hard (a decoder segfault)
        if m.get("fail"):
            raise StageError("broken", f"{sample.id} is broken")
        if m.get("explode"):
            raise KeyError("unexpected")
        for i in range(m.get("n", 1)):
            sample.clips.append(Clip.new(sample.id, i, i + 1.0))
        return sample


class KeepEven(Filter):
    name = "keep_even"
    needs = frozenset({"clips"})

    def keep(self, sample: Sample):
        return True if len(sample.clips) % 2 == 0 else (False, "odd_clips")


class NeedsFrames(Stage):
    name = "needs_frames"
    needs = frozenset({"frames"})


class JsonSink:
    """Writes one JSON file per shard: the clip ids."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def clear_shard(self, index, samples) -> None:
        (self.folder / f"{index:05d}.json").unlink(missing_ok=True)

    def write_shard(self, index, samples) -> dict:
        ids = [c.clip_id for s in samples for c in s.clips]
        write_json_atomic(self.folder / f"{index:05d}.json", ids)
        return {"clips": len(ids), "pid": os.getpid()}

    def committed(self, index, marker) -> None:
        pass


def read_sink(folder: str | Path) -> dict[int, list[str]]:
    return {int(p.stem): json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}


class Sleep(Stage):
    """Waits `seconds` a batch, leaving the CPU free: work whose overlap can be measured."""

    needs = frozenset({"video"})

    def __init__(self, name: str, seconds: float, resources: Resources | None = None):
        self.name = name
        self.seconds = seconds
        self.resources = resources or Resources()

    def process(self, batch: list[Sample], ctx: Context) -> list[Sample]:
        time.sleep(self.seconds)
        return batch
