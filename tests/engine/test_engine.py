"""Engine: pipeline validation, failure isolation, filters with reasons, stats, shard markers."""

from __future__ import annotations

import pytest

from internvid.engine import Dropped, Failure, Pipeline, PipelineError, Sample
from internvid.engine.local import LocalExecutor
from internvid.engine.shard import load_marker, marker_path
from internvid.records import Video
from toy_stages import JsonSink, KeepEven, MakeClips, NeedsFrames, read_sink


def samples(*metas: dict) -> list[Sample]:
    return [
        Sample(Video(id=f"v{i}", source=f"/x/v{i}.mp4", meta=dict(m))) for i, m in enumerate(metas)
    ]


def test_validation_names_the_missing_need():
    with pytest.raises(PipelineError, match=r"'needs_frames'.*\['frames'\]"):
        Pipeline([MakeClips(), NeedsFrames()])
    with pytest.raises(PipelineError, match="needs"):
        Pipeline([KeepEven(), MakeClips()])  # wrong order
    with pytest.raises(PipelineError, match="two stages"):
        Pipeline([MakeClips(), MakeClips()])
    Pipeline([MakeClips(), KeepEven()])


@pytest.mark.allow_error_logs
def test_failures_are_isolated_and_counted():
    p = Pipeline([MakeClips(), KeepEven()])
    stats, failures = p.new_stats(), []
    out = p.run(
        samples({"n": 2}, {"fail": True}, {"n": 3}, {"explode": True}, {"n": 4}), stats, failures
    )
    assert [s.id for s in out] == ["v0", "v4"]
    trail, failures = failures, [f for f in failures if isinstance(f, Failure)]
    assert [(f.item, f.stage, f.reason) for f in failures] == [
        ("v1", "make_clips", "broken"),
        ("v3", "make_clips", "error"),
    ]
    drops = [d for d in trail if isinstance(d, Dropped)]  # the filter's verdict, one row
    assert [(d.item, d.kind, d.stage, d.rule) for d in drops] == [
        ("v2", "video", "keep_even", "odd_clips")
    ]
    assert "KeyError" in failures[1].message and failures[0].source == "/x/v1.mp4"
    mk, ke = stats["make_clips"], stats["keep_even"]
    assert (mk.items_in, mk.items_out, mk.clips_out, dict(mk.failed)) == (
        5,
        3,
        9,
        {"broken": 1, "error": 1},
    )
    assert (ke.items_in, ke.items_out, ke.clips_out, dict(ke.dropped)) == (
        3,
        2,
        6,
        {"odd_clips": 1},
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_executor_writes_markers_and_resumes(tmp_path, workers):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    shards = [samples({"n": 2}), samples({"n": 4}, {"n": 1}), samples({"n": 2})]
    seen = []
    results = LocalExecutor(workers).run(
        Pipeline([MakeClips(), KeepEven()]),
        JsonSink(str(out)),
        shards,
        work,
        on_done=lambda r, old: seen.append((r.index, old)),
    )
    assert [r.index for r in results] == [0, 1, 2]
    assert sorted(seen) == [(0, False), (1, False), (2, False)]
    assert read_sink(out)[1] == [
        "v0_000000000_000001000",
        "v0_000001000_000002000",
        "v0_000002000_000003000",
        "v0_000003000_000004000",
    ]
    assert results[1].stats["keep_even"].dropped == {"odd_clips": 1}
    assert all(marker_path(work, i).is_file() for i in range(3))

    # resume: shard 1 lost its marker (killed before the commit point); only it is redone
    marker_path(work, 1).unlink()
    before = {i: marker_path(work, i).stat().st_mtime_ns for i in (0, 2)}
    seen.clear()
    again = LocalExecutor(workers).run(
        Pipeline([MakeClips(), KeepEven()]),
        JsonSink(str(out)),
        shards,
        work,
        on_done=lambda r, old: seen.append((r.index, old)),
    )
    assert sorted(seen) == [(0, True), (1, False), (2, True)]
    assert {i: marker_path(work, i).stat().st_mtime_ns for i in (0, 2)} == before
    assert [r.to_json()["stats"] for r in again] == [r.to_json()["stats"] for r in results]


@pytest.mark.allow_error_logs
def test_dead_worker_loses_only_its_shard(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    shards = [
        samples({"n": 2}),
        samples({"crash": True}, {"n": 2}),
        samples({"n": 2}),
        samples({"n": 4}),
    ]
    results = LocalExecutor(2).run(
        Pipeline([MakeClips(), KeepEven()]), JsonSink(str(out)), shards, work
    )
    assert [r.summary["clips"] for r in results] == [2, 0, 2, 4]
    crashed = results[1]
    assert [(f.item, f.reason) for f in crashed.failures] == [
        ("v0", "worker_crashed"),
        ("v1", "worker_crashed"),
    ]
    assert load_marker(work, 1).failures == crashed.failures
