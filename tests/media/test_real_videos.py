"""The whole run on real footage: clips at PySceneDetect's cuts, holding exactly those frames."""

from __future__ import annotations

import io
import tarfile

import av
import numpy as np
import pytest
import scenedetect

from internvid.config import RunConfig
from internvid.io.tables import read_clips
from internvid.run import run

VIDEOS = ["cosmos_clip_10s", "nasa_13013", "internvid_example1", "delayed_start", "mmaction_test"]


def decode(data) -> list[np.ndarray]:
    with av.open(data) as c:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]


@pytest.mark.integration
def test_run_on_real_videos(tmp_path, real_videos):
    cfg = RunConfig()
    cfg.split.min_clip_seconds = 0.0
    cfg.split.max_clip_seconds = None
    cfg.output.videos_per_shard = 5
    summary = run(
        [str(real_videos / f"{n}.mp4") for n in VIDEOS], tmp_path / "out", cfg, progress=False
    )
    assert summary.failures == 0 and summary.videos_ok == len(VIDEOS)
    clips = read_clips(tmp_path / "out" / "clips.parquet")
    with tarfile.open(tmp_path / "out" / "shards" / "00000.tar") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    for name in VIDEOS:
        path = real_videos / f"{name}.mp4"
        ref = scenedetect.detect(
            str(path),
            scenedetect.ContentDetector(threshold=27, min_scene_len=15),
            start_in_scene=True,
        )
        mine = [c for c in clips if c.video_id == name]
        assert [(c.meta["start_frame"], c.meta["end_frame"]) for c in mine] == [
            (s.frame_num, e.frame_num) for s, e in ref
        ]
        source = decode(str(path))
        for c in mine:
            a, b = c.meta["start_frame"], c.meta["end_frame"]
            got = decode(io.BytesIO(files[f"{c.clip_id}.mp4"]))
            assert len(got) == b - a, c.clip_id
            # the clip's first and last frames are the source's frames a and b-1
            for frame, idx in ((got[0], a), (got[-1], b - 1)):
                near = {
                    i: np.abs(source[i] - frame).mean()
                    for i in range(max(0, idx - 2), min(len(source), idx + 3))
                }
                assert near[idx] <= min(near.values()) + 1e-9, (c.clip_id, idx, near)


@pytest.mark.integration
def test_every_input_and_every_split_piece_ends_as_a_row(tmp_path, real_videos):
    """videos.parquet has each input with its status; clips.parquet + dropped.jsonl hold every
    piece the split produced (nothing counted only)."""
    import json

    import pyarrow.parquet as pq

    cfg = RunConfig()
    cfg.cut.mode = "none"
    out = tmp_path / "out"
    summary = run([str(real_videos)], out, cfg, progress=False)
    inputs = sorted(p.stem for p in real_videos.glob("*.mp4"))
    videos = {v["id"]: v for v in pq.read_table(out / "videos.parquet").to_pylist()}
    assert sorted(videos) == inputs
    status = {k: (v["status"], v["reason"]) for k, v in videos.items()}
    assert status["v2d_test_video"] == ("dropped", "still")  # a slide show: every clip frozen
    assert status["delayed_start"] == ("dropped", "clip_too_short")  # one piece, under 1 s
    assert all(v["duration"] > 0 and v["codec"] for v in videos.values())  # all probed
    kept = {c.clip_id for c in read_clips(out / "clips.parquet")}
    assert {k for k, (s, _) in status.items() if s == "ok"} == {k.rsplit("_", 2)[0] for k in kept}
    assert all(videos[k]["clips"] == 0 for k, (s, _) in status.items() if s != "ok")
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    clip_drops = [d for d in dropped if d["kind"] == "clip"]
    assert not kept & {d["item"] for d in clip_drops}
    split = next(s for s in summary.stages if s["name"] == "split")
    produced = split["clips_out"] + split["dropped"].get("clip_too_short", 0)
    assert len(kept) + len(clip_drops) == produced
    for d in clip_drops:  # each names its rule and the values it looked at
        assert d["start"] < d["end"] and d["values"] and d["source"].endswith(".mp4")
        if d["rule"] == "still":
            assert d["values"]["frozen"] > d["values"]["max_frozen"]
        if d["rule"] == "clip_too_short":
            assert d["values"]["duration"] < d["values"]["min_clip_seconds"]
    # the true length of the inputs, not of the clips
    assert summary.video_seconds == pytest.approx(sum(v["duration"] for v in videos.values()))
    assert summary.video_seconds > summary.clip_seconds
