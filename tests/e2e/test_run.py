"""`internvid run` end to end: the output folder, failures with reasons, shards that read back."""

from __future__ import annotations

import json
import tarfile

import pyarrow.parquet as pq
import pytest

from internvid.config import RunConfig
from internvid.io.release import iter_release_rows
from internvid.io.tables import CLIP_SCHEMA, VIDEO_SCHEMA, read_clips
from internvid.run import RunError, run

# clips the default policy (min 1 s, max 10 s, still clips dropped) makes of the demo videos
EXPECTED_CLIPS = {
    "demo_a": [(0.0, 4.0), (4.0, 10.0)],  # the 0.6 s scene is too short, the blue one still
    "demo_b": [(0.0, 10.0), (10.0, 11.0), (11.0, 15.0)],  # an 11 s scene cut at 10 s
    "demo_c": [(0.0, 10.0), (10.0, 12.0)],  # one 12 s shot cut at 10 s
    "demo_d": [(2.0, 5.0), (5.6, 9.6)],  # red and green solid colours are still
}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, demo_videos, bad_files):
    """One run over the demo videos plus every kind of bad file, 2 workers, 2 videos per shard."""
    import shutil

    folder = tmp_path_factory.mktemp("mixed")
    inp = folder / "input"
    inp.mkdir()
    for p in sorted(demo_videos.glob("*.mp4")):
        shutil.copy(p, inp / p.name)
    for p in bad_files.values():
        shutil.copy(p, inp / p.name)
    cfg = RunConfig()
    cfg.workers = 2
    cfg.output.videos_per_shard = 2
    out = folder / "out"
    summary = run([str(inp)], out, cfg, progress=False)
    return out, summary


def test_output_folder_layout(mixed_run):
    out, _ = mixed_run
    for name in (
        "clips.parquet",
        "videos.parquet",
        "internvid.jsonl",
        "failures.jsonl",
        "stats.json",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    # 8 inputs sorted by name, 2 per shard: 4 shards; bad files sort between the demo videos
    tars = sorted(p.name for p in (out / "shards").glob("*.tar"))
    sidecars = sorted(p.name for p in (out / "shards").glob("*.parquet"))
    assert tars and [t[:-4] for t in tars] == [s[:-8] for s in sidecars]
    assert not list(out.rglob(".*.tmp-*")), "no temp files left"
    assert RunConfig.from_yaml(out / "config.yaml").output.videos_per_shard == 2


def test_clips_match_known_cuts(mixed_run):
    out, summary = mixed_run
    clips = read_clips(out / "clips.parquet")
    got: dict[str, list] = {}
    for c in clips:
        got.setdefault(c.video_id, []).append((round(c.start, 6), round(c.end, 6)))
    assert got == EXPECTED_CLIPS
    assert summary.clips == 9 and summary.videos == 8 and summary.videos_ok == 4
    for c in clips:
        assert c.status == "cut" and c.fps == 25.0 and (c.width, c.height) == (320, 240)
        assert c.source.endswith(f"{c.video_id}.mp4")
        assert c.clip_id.startswith(c.video_id + "_")
    assert pq.read_schema(out / "clips.parquet").remove_metadata() == CLIP_SCHEMA
    assert pq.read_schema(out / "videos.parquet").remove_metadata() == VIDEO_SCHEMA
    videos = {v["id"]: v for v in pq.read_table(out / "videos.parquet").to_pylist()}
    # every input has a row: the demo videos ok with their clips, the bad files failed
    assert {k: (v["status"], v["reason"], v["clips"]) for k, v in videos.items()} == {
        **{k: ("ok", None, len(v)) for k, v in EXPECTED_CLIPS.items()},
        "audio_only": ("failed", "no_video_stream", 0),
        "corrupt": ("failed", "corrupt", 0),
        "empty": ("failed", "empty_file", 0),
        "notes": ("failed", "not_a_video", 0),
    }
    ok = [v for v in videos.values() if v["status"] == "ok"]
    assert all(v["has_audio"] and v["codec"] == "h264" and v["fps"] == 25.0 for v in ok)
    assert all(v["codec"] is None for v in videos.values() if v["status"] == "failed")
    assert summary.videos_failed == 4 and summary.videos_dropped == 0


def test_each_bad_file_is_one_failure_with_a_reason(mixed_run):
    out, summary = mixed_run
    rows = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    got = sorted((r["item"], r["stage"], r["reason"]) for r in rows)
    assert got == [
        ("audio_only", "probe", "no_video_stream"),
        ("corrupt", "probe", "corrupt"),
        ("empty", "probe", "empty_file"),
        ("notes", "probe", "not_a_video"),
    ]
    assert all(r["message"] and r["source"].endswith(".mp4") for r in rows)
    assert summary.failures_by_reason == {
        "corrupt": 1,
        "empty_file": 1,
        "no_video_stream": 1,
        "not_a_video": 1,
    }


def test_release_jsonl_matches_clips(mixed_run):
    out, _ = mixed_run
    rows = list(iter_release_rows(out / "internvid.jsonl"))
    clips = read_clips(out / "clips.parquet")
    assert [(r.youtube_id, r.start_ms, r.end_ms) for r in rows] == [
        (c.video_id, round(c.start * 1000), round(c.end * 1000)) for c in clips
    ]
    first = json.loads((out / "internvid.jsonl").read_text().splitlines()[0])
    assert first == {
        "YoutubeID": "demo_a",
        "Start_timestamp": "00:00:00.000",
        "End_timestamp": "00:00:04.000",
    }


def test_stats(mixed_run):
    out, _ = mixed_run
    stats = json.loads((out / "stats.json").read_text())
    stages = {s["name"]: s for s in stats["stages"]}
    assert list(stages) == ["download", "probe", "collect", "split", "motion", "cut"]
    assert (stages["probe"]["in"], stages["probe"]["out"]) == (8, 4)
    assert stages["probe"]["failed"] == {
        "corrupt": 1,
        "empty_file": 1,
        "no_video_stream": 1,
        "not_a_video": 1,
    }
    assert (
        stages["split"]["dropped"] == {"clip_too_short": 2} and stages["split"]["clips_out"] == 12
    )
    assert stages["motion"]["dropped"] == {"still": 3} and stages["motion"]["out"] == 9
    assert stages["cut"]["clips_out"] == 9
    assert stats["clips"] == 9 and stats["shards"] == 4 and stats["wall_seconds"] > 0


def test_shard_members_and_sidecars(mixed_run):
    out, _ = mixed_run
    clips = {c.clip_id: c for c in read_clips(out / "clips.parquet")}
    seen = set()
    for tar_path in sorted((out / "shards").glob("*.tar")):
        side = {c.clip_id: c for c in read_clips(tar_path.with_suffix(".parquet"))}
        with tarfile.open(tar_path) as tar:
            names = tar.getnames()
            keys = sorted({n.split(".", 1)[0] for n in names})
            assert sorted(names) == sorted(f"{k}.{e}" for k in keys for e in ("mp4", "json", "txt"))
            assert sorted(side) == keys
            for k in keys:
                meta = json.loads(tar.extractfile(f"{k}.json").read())
                assert meta["clip_id"] == k and meta["shard"] == int(tar_path.stem)
                assert (meta["start"], meta["end"]) == (clips[k].start, clips[k].end)
                assert tar.extractfile(f"{k}.mp4").read(12)[4:8] == b"ftyp"
        seen |= set(keys)
    assert seen == set(clips)


def test_rerun_of_finished_run_redoes_nothing(mixed_run):
    out, _ = mixed_run
    before = (out / "clips.parquet").read_bytes()
    cfg = RunConfig()
    cfg.workers = 1  # workers may change between a run and its resume
    cfg.output.videos_per_shard = 2
    summary = run([str(out.parent / "input")], out, cfg, progress=False)
    assert summary.shards_resumed == summary.shards == 4
    assert (out / "clips.parquet").read_bytes() == before


def test_a_different_run_in_the_same_folder_is_refused(mixed_run):
    out, _ = mixed_run
    cfg = RunConfig()
    cfg.split.threshold = 40.0
    cfg.output.videos_per_shard = 2
    with pytest.raises(RunError, match="different run"):
        run([str(out.parent / "input")], out, cfg, progress=False)


def test_collection_rules(tmp_path, demo_videos):
    cfg = RunConfig()
    cfg.collect.enabled = "on"
    cfg.collect.min_duration = 13.5  # demo_a is 14 s, demo_b 15 s, demo_c 12 s, demo_d 13 s
    cfg.collect.min_height = 200
    summary = run([str(demo_videos)], tmp_path / "out", cfg, progress=False)
    collect = next(s for s in summary.stages if s["name"] == "collect")
    assert collect["dropped"] == {"too_short": 2} and collect["out"] == 2
    cfg2 = RunConfig()
    cfg2.collect.enabled = "on"  # 240p is below the paper's 360p
    summary = run([str(demo_videos)], tmp_path / "out2", cfg2, progress=False)
    assert summary.clips == 0
    assert next(s for s in summary.stages if s["name"] == "collect")["dropped"] == {
        "low_resolution": 4
    }


def test_cut_mode_none_writes_metadata_only_shards(tmp_path, demo_videos):
    cfg = RunConfig()
    cfg.cut.mode = "none"
    summary = run([str(demo_videos / "demo_a.mp4")], tmp_path / "out", cfg, progress=False)
    assert summary.clips == 2
    with tarfile.open(tmp_path / "out" / "shards" / "00000.tar") as tar:
        names = sorted(tar.getnames())
    assert names == sorted(
        f"{k}.{e}"
        for k in ("demo_a_000000000_000004000", "demo_a_000004000_000010000")
        for e in ("json", "txt")
    )
    assert {c.status for c in read_clips(tmp_path / "out" / "clips.parquet")} == {"split"}
