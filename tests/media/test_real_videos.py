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
