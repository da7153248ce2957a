"""Shard manifests of release metadata: same samples as grouping in memory, bounded partitions,
failures with line numbers, reuse, and shards read one at a time by the executors."""

from __future__ import annotations

import itertools
import json
import random
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import pytest

import internvid.io.manifest as manifest_mod
from internvid.config import InputConfig
from internvid.engine import Pipeline
from internvid.engine.local import LocalExecutor
from internvid.inputs import read_inputs
from internvid.io.manifest import Manifest, build_manifest
from internvid.io.release import clip_from_row, iter_release_rows
from internvid.records import format_timecode
from toy_stages import JsonSink, MakeClips

URL = "https://www.youtube.com/watch?v={YoutubeID}"


def write_rows(path: Path, n_videos: int, seed: int = 0, dup_every: int = 0) -> list[str]:
    """Release rows of `n_videos` videos, their rows interleaved; returns the file's lines."""
    rng = random.Random(seed)
    rows = []
    for v in range(n_videos):
        vid = f"vid{v:05d}_{rng.randrange(10**4):04d}"[:11].ljust(11, "x")
        for c in range(rng.randint(1, 7)):
            start = c * 10_000 + rng.randrange(1000)
            row = {
                "YoutubeID": vid,
                "Start_timestamp": format_timecode(start),
                "End_timestamp": format_timecode(start + rng.randrange(500, 9000)),
                "Caption": f"clip {c} of {vid}",
                "Aesthetic_Score": round(rng.uniform(3, 6), 6),
                "UMT_Score": round(rng.uniform(0.2, 0.5), 6),
            }
            if rng.random() < 0.1:
                row["extra_key"] = {"n": c}
            rows.append(row)
    rng.shuffle(rows)
    lines = [json.dumps(r) for r in rows]
    if dup_every:
        lines += lines[::dup_every]  # the same clips again: merged, the first row wins
    path.write_text("\n".join(lines) + "\n")
    return lines


def reference(path: Path) -> OrderedDict[str, list]:
    """Grouping in memory: videos in first-row order, clips in row order, duplicates merged."""
    groups: OrderedDict[str, list] = OrderedDict()
    for row in iter_release_rows(path):
        clips = groups.setdefault(row.youtube_id, [])
        clip = clip_from_row(row, URL.replace("{YoutubeID}", row.youtube_id))
        if clip.clip_id not in {c.clip_id for c in clips}:
            clips.append(clip)
    return groups


def url_source(vid: str):
    return URL.replace("{YoutubeID}", vid), None, True


def build(path: Path, folder: Path, per_shard: int = 4, **kw) -> Manifest:
    return build_manifest(
        [path],
        folder,
        kw.pop("source_of", url_source),
        per_shard=per_shard,
        settings={"t": URL},
        max_line_bytes=1 << 20,
        max_caption_chars=16384,
        **kw,
    )


def test_one_partition_gives_the_samples_of_grouping_in_memory(tmp_path):
    src = tmp_path / "rows.jsonl"
    write_rows(src, 60, dup_every=5)
    m = build(src, tmp_path / "m", per_shard=7)
    ref = reference(src)
    got = [s for shard in m for s in shard]
    assert [s.id for s in got] == list(ref)  # first-row order
    for s in got:
        assert s.clips == ref[s.id]
        assert s.video.source == URL.replace("{YoutubeID}", s.id) and s.video.path is None
        assert s.video.meta == {"origin": "metadata"}
    assert [len(m.shard(k)) for k in range(m.shards)] == [7] * 8 + [4]
    assert (m.videos, m.shards, m.failures) == (60, 9, 0)


def test_many_partitions_and_splits_keep_every_video_whole(tmp_path, monkeypatch):
    # partitions of 20 kB: the first split gives a handful, each split again (a second seed)
    monkeypatch.setattr(manifest_mod, "PARTITION_BYTES", 20_000)
    monkeypatch.setattr(manifest_mod, "MAX_FANOUT", 3)
    src = tmp_path / "rows.jsonl"
    write_rows(src, 300, seed=1, dup_every=7)
    splits = []
    real = manifest_mod._partition
    monkeypatch.setattr(
        manifest_mod, "_partition", lambda *a, **k: splits.append(k["seed"]) or real(*a, **k)
    )
    m = build(src, tmp_path / "m", per_shard=8)
    assert max(splits) >= 2  # partitions were split again, twice over
    ref = reference(src)
    got = [s for shard in m for s in shard]
    assert sorted(s.id for s in got) == sorted(ref) and len(got) == len(ref)
    for s in got:
        assert s.clips == ref[s.id]  # a video's rows all in one place, in input order
    assert [len(m.shard(k)) for k in range(m.shards)] == [8] * 37 + [4]
    # a part file per partition, and shards whose videos span two of them read whole
    assert len(m.parts) > 3 and any(a[1] == b[0] for a, b in itertools.pairwise(m.parts))
    assert m.rows == sum(1 for _ in iter_release_rows(src))  # duplicates are merged on reading
    # the same input builds the same manifest (a run resumes on its digest)
    again = build(src, tmp_path / "m2", per_shard=8)
    assert again.digest == m.digest


def test_bad_rows_and_missing_files_become_failure_rows(tmp_path):
    src = tmp_path / "rows.jsonl"
    lines = write_rows(src, 5)
    lines.insert(2, '{"YoutubeID": "x", "Start_timestamp": "bad"')
    lines.insert(4, "")
    lines.insert(
        5,
        '{"YoutubeID": "../../etc", "Start_timestamp": "00:00:00.000", '
        '"End_timestamp": "00:00:01.000"}',
    )
    src.write_text("\n".join(lines) + "\n")
    have = sorted({json.loads(x)["YoutubeID"] for x in lines if x.startswith('{"YoutubeID": "vid')})
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in have[:3]:
        (videos / f"{vid}.mp4").write_bytes(b"x")
    found = read_inputs(
        [str(src)], InputConfig(path_template=str(videos / "{YoutubeID}.mp4")), tmp_path / "m"
    )
    failures = sorted((f.item, f.reason) for f in found.failures)
    assert failures == sorted(
        [("rows.jsonl:3", "invalid_json"), ("rows.jsonl:6", "unsafe_id")]
        + [(vid, "missing_file") for vid in have[3:]]
    )
    assert sorted(v.id for v in found.iter_videos()) == have[:3]
    assert all(v.path == str(videos / f"{v.id}.mp4") for v in found.iter_videos())


def test_limit_keeps_the_first_videos_and_reuse_skips_the_rebuild(tmp_path):
    src = tmp_path / "rows.jsonl"
    write_rows(src, 20)
    m = build(src, tmp_path / "m", limit=9)
    assert [s.id for shard in m for s in shard] == list(reference(src))[:9]

    def stamp(m) -> int:
        return (Path(m.folder) / "manifest.json").stat().st_mtime_ns

    first = stamp(m)
    assert stamp(build(src, tmp_path / "m", limit=9)) == first  # reused
    assert build(src, tmp_path / "m", limit=10).videos == 10  # other settings: rebuilt
    src.write_text(src.read_text() + src.read_text().splitlines()[0] + "\n")  # file changed
    assert stamp(build(src, tmp_path / "m", limit=10)) != first


def test_other_inputs_come_first_and_a_clashing_name_is_salted(tmp_path):
    src = tmp_path / "rows.jsonl"
    write_rows(src, 6)
    first = next(iter(reference(src)))
    local = tmp_path / "local"
    local.mkdir()
    (local / f"{first}.mp4").write_bytes(b"x")  # a file named like a metadata video
    (local / "other.mp4").write_bytes(b"x")
    cfg = InputConfig(path_template=URL)
    found = read_inputs([str(src), str(local)], cfg, tmp_path / "m", per_shard=4)
    by_name = {Path(s.video.source).name: s for s in found.samples}
    assert sorted(by_name) == sorted([f"{first}.mp4", "other.mp4"])
    assert by_name[f"{first}.mp4"].id != first and by_name["other.mp4"].id == "other"
    shards = found.shards(4)
    assert len(shards) == 1 + 2  # the two local files, then the manifest's six videos
    assert shards[1][0].id == first
    assert found.videos == 8
    # without a manifest folder (small inputs, tests) the metadata's videos join the samples
    inline = read_inputs([str(src), str(local)], cfg)
    assert [s.id for s in inline.samples][2:] == list(reference(src))
    assert inline.manifest is None


class CountingShards(Sequence):
    """Shards that note when each is read, to check that an executor reads them as it goes."""

    def __init__(self, shards, log):
        self.shards, self.log = shards, log

    def __len__(self):
        return len(self.shards)

    def __getitem__(self, k):
        self.log.append(("read", k))
        return self.shards[k]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_local_executor_reads_shards_as_it_submits_them(tmp_path, workers):
    src = tmp_path / "rows.jsonl"
    write_rows(src, 40)
    m = build(src, tmp_path / "m", per_shard=2)
    events: list = []
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    shards = CountingShards([list(m.shard(k)) for k in range(m.shards)], events)
    results = LocalExecutor(workers).run(
        Pipeline([MakeClips()]),
        JsonSink(str(out)),
        shards,
        work,
        on_done=lambda r, old: events.append(("done", r.index)),
    )
    assert [r.index for r in results] == list(range(20))
    in_flight = peak = 0
    for kind, _ in events:
        in_flight += 1 if kind == "read" else -1
        peak = max(peak, in_flight)
    assert peak <= 2 * workers  # never all 20 shards in memory at once
