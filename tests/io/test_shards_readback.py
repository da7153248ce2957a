"""Our WebDataset shards load with the `webdataset` library and with Hugging Face `datasets`."""

from __future__ import annotations

import io
import json

import av
import pytest

from internvid.config import RunConfig
from internvid.io.tables import read_clips
from internvid.run import run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, demo_videos):
    out = tmp_path_factory.mktemp("wds") / "out"
    cfg = RunConfig()
    cfg.output.videos_per_shard = 2
    run([str(demo_videos)], out, cfg, progress=False)
    return out


def test_webdataset_library_reads_every_clip(demo_run):
    import webdataset as wds

    tars = sorted(str(p) for p in (demo_run / "shards").glob("*.tar"))
    assert len(tars) == 2
    clips = {c.clip_id: c for c in read_clips(demo_run / "clips.parquet")}
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))
    assert sorted(s["__key__"] for s in samples) == sorted(clips)
    for s in samples:
        assert set(s) >= {"__key__", "mp4", "json", "txt"}
        meta = json.loads(s["json"])
        clip = clips[s["__key__"]]
        assert meta["clip_id"] == clip.clip_id and meta["video_id"] == clip.video_id
        assert (meta["start"], meta["end"], meta["fps"]) == (clip.start, clip.end, clip.fps)
        assert s["txt"] == b""  # no caption yet in this slice
        with av.open(io.BytesIO(s["mp4"])) as c:
            n = sum(1 for _ in c.decode(video=0))
        assert n == round(clip.duration * clip.fps)


def test_webdataset_decoded_pipeline(demo_run):
    import webdataset as wds

    tars = sorted(str(p) for p in (demo_run / "shards").glob("*.tar"))
    ds = (
        wds.WebDataset(tars, shardshuffle=False, empty_check=False)
        .decode()
        .to_tuple("__key__", "json", "txt")
    )
    rows = list(ds)
    assert len(rows) == 9
    key, meta, txt = rows[0]
    assert isinstance(meta, dict) and meta["clip_id"] == key and txt == ""


def test_huggingface_datasets_loads_shards(demo_run):
    datasets = pytest.importorskip("datasets")
    tars = sorted(str(p) for p in (demo_run / "shards").glob("*.tar"))
    ds = datasets.load_dataset(
        "webdataset", data_files={"train": tars}, split="train", streaming=True
    )
    assert isinstance(ds.features["mp4"], datasets.Video) and isinstance(
        ds.features["txt"], datasets.Value
    )
    # datasets decodes mp4 with torchcodec, which needs system FFmpeg libraries: take the bytes
    rows = list(ds.cast_column("mp4", datasets.Video(decode=False)))
    clips = {c.clip_id: c for c in read_clips(demo_run / "clips.parquet")}
    assert sorted(r["__key__"] for r in rows) == sorted(clips)
    for r in rows:
        assert r["json"]["clip_id"] == r["__key__"]
        assert r["json"]["start"] == clips[r["__key__"]].start
        assert r["txt"] == ""
        assert r["mp4"]["bytes"][4:8] == b"ftyp"
