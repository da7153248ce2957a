"""A run over InternVid metadata rows: the rows' clips are cut as given, captions and scores kept."""

from __future__ import annotations

import io
import json
import tarfile

import av

from internvid.config import RunConfig
from internvid.io.tables import read_clips
from internvid.run import run

ROWS = [
    {"YoutubeID": "demo_a", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:03.000", "Caption": "a test pattern moves", "Aesthetic_Score": 4.589844, "UMT_Score": 0.397949},
    {"YoutubeID": "demo_a", "Start_timestamp": "00:00:04.000", "End_timestamp": "00:00:09.520", "Caption": "a fractal zooms in", "Aesthetic_Score": 5.0, "UMT_Score": 0.41},
    {"YoutubeID": "demo_d", "Start_timestamp": "00:00:05.600", "End_timestamp": "00:00:09.600", "Caption": "colourful fractal"},
    {"YoutubeID": "demo_d", "Start_timestamp": "00:00:12.000", "End_timestamp": "00:00:20.000", "Caption": "beyond the end"},
    {"YoutubeID": "missing1234", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000", "Caption": "no file"},
    {"YoutubeID": "demo_a", "Start_timestamp": "00:00:02.000", "End_timestamp": "00:00:02.000", "Caption": "zero length"},
    {"YoutubeID": "demo_a", "Start_timestamp": "00:00:05.000", "End_timestamp": "00:00:05.500", "Caption": "under a second"},
]  # fmt: skip


def test_run_over_release_rows(tmp_path, demo_videos):
    meta = tmp_path / "rows.jsonl"
    lines = [json.dumps(r) for r in ROWS]
    lines.insert(
        2,
        '{"YoutubeID": "../../etc", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000"}',
    )
    lines.insert(3, "not json")
    meta.write_text("\n".join(lines) + "\n")
    cfg = RunConfig()
    cfg.input.path_template = str(demo_videos) + "/{YoutubeID}.mp4"
    cfg.collect.enabled = "off"  # the demo videos are 240p
    out = tmp_path / "out"
    summary = run([str(meta)], out, cfg, progress=False)

    clips = read_clips(out / "clips.parquet")
    assert [(c.video_id, c.start, c.end) for c in clips] == [
        ("demo_a", 1.0, 3.0),
        ("demo_a", 4.0, 9.52),
        ("demo_d", 5.6, 9.6),
    ]
    assert clips[0].captions == {"release": "a test pattern moves"}
    assert clips[0].scores == {
        "aesthetic": 4.589844,
        "umt": 0.397949,
        "motion": clips[0].scores["motion"],
        "frozen": 0.0,
    }
    assert clips[0].scores["motion"] > 1.0  # testsrc2 moves
    # the rows come back out exactly as they went in
    written = [json.loads(line) for line in (out / "internvid.jsonl").read_text().splitlines()]
    assert written == ROWS[:3]

    failures = sorted(
        (f["item"], f["reason"])
        for f in map(json.loads, (out / "failures.jsonl").read_text().splitlines())
    )
    assert failures == [
        ("demo_a_000002000_000002000", "empty_range"),  # not a 1-frame clip
        ("demo_d_000012000_000020000", "clip_out_of_range"),
        ("missing1234", "missing_file"),
        ("rows.jsonl:3", "unsafe_id"),
        ("rows.jsonl:4", "invalid_json"),
    ]
    assert summary.clips == 3
    # a given clip under split.min_clip_seconds is dropped with its values, like a split's piece
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    assert [(d["item"], d["rule"], d["values"]) for d in dropped] == [
        (
            "demo_a_000005000_000005500",
            "clip_too_short",
            {"duration": 0.5, "min_clip_seconds": 1.0},
        )
    ]

    # the clips hold exactly the frames of the given times, the caption is KEY.txt
    with tarfile.open(next((out / "shards").glob("*.tar"))) as tar:
        data = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert data["demo_a_000001000_000003000.txt"] == b"a test pattern moves"
    for c in clips:
        with av.open(io.BytesIO(data[f"{c.clip_id}.mp4"])) as f:
            assert sum(1 for _ in f.decode(video=0)) == round((c.end - c.start) * 25)
