"""clips.parquet loads as it is in datasets, pandas, polars and DuckDB, filtered by score name."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from internvid.config import RunConfig
from internvid.io.tables import (
    clip_schema,
    clips_table,
    concat_clip_tables,
    is_legacy,
    read_clips,
    read_clips_table,
    row_to_clip,
)
from internvid.records import Clip
from internvid.run import run


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, demo_videos):
    """A run with tiny captioners and two tiny scores: every caption and score column filled."""
    out = tmp_path_factory.mktemp("flat") / "out"
    cfg = RunConfig()
    cfg.caption.models = "tiny"
    cfg.score.scores = ["viclip_sim", "aesthetic"]
    cfg.cut.mode = "none"
    run([str(demo_videos)], out, cfg, progress=False)
    return out


def test_the_table_has_no_map_columns_and_a_column_per_score(scored_run):
    schema = pq.read_schema(scored_run / "clips.parquet")
    assert not any(pa.types.is_map(f.type) for f in schema)
    for name in ("motion", "frozen", "viclip_sim", "viclip_sim_pct", "viclip_sim_cal", "umt"):
        assert schema.field(name).type == pa.float64(), name
    for name in ("caption", "fused_caption", "coarse_caption", "release_caption"):
        assert schema.field(name).type == pa.string(), name
    assert schema.field("frame_captions").type == pa.list_(pa.string())
    clips = read_clips(scored_run / "clips.parquet")
    assert clips and all({"viclip_sim", "aesthetic", "motion"} <= set(c.scores) for c in clips)
    assert all(c.captions.get("fused") and c.frame_captions for c in clips)


def test_four_libraries_load_it_and_filter_on_a_score_by_name(scored_run):
    import datasets
    import duckdb
    import pandas as pd
    import polars as pl

    path = str(scored_run / "clips.parquet")
    clips = read_clips(path)
    cut = sorted(c.scores["motion"] for c in clips)[len(clips) // 2]  # a median: some each side
    want = sorted(c.clip_id for c in clips if c.scores["motion"] < cut)
    assert 0 < len(want) < len(clips)

    ds = datasets.load_dataset("parquet", data_files=path, split="train")
    assert ds.num_rows == len(clips)
    assert sorted(ds.filter(lambda r: r["motion"] < cut)["clip_id"]) == want
    assert ds[0]["caption"] == clips[0].best_caption()

    df = pd.read_parquet(path)
    assert sorted(df[df["motion"] < cut]["clip_id"]) == want
    assert sorted(df.query(f"motion < {cut}")["clip_id"]) == want

    frame = pl.read_parquet(path)
    assert sorted(frame.filter(pl.col("motion") < cut)["clip_id"].to_list()) == want

    got = duckdb.sql(f"SELECT clip_id FROM read_parquet('{path}') WHERE motion < {cut}").fetchall()
    assert sorted(r[0] for r in got) == want
    # the values every library sees are the records' own
    by_id = {c.clip_id: c for c in clips}
    for row in ds:
        clip = by_id[row["clip_id"]]
        assert math.isclose(row["viclip_sim"], clip.scores["viclip_sim"])
        assert row["fused_caption"] == clip.captions["fused"]
        assert row["frame_captions"] == clip.frame_captions


def test_rows_round_trip_and_extra_scores_get_columns():
    a = Clip.new("v", 0.0, 1.5, captions={"release": "a dog"}, scores={"umt": 0.4, "zz_new": 2.0})
    b = Clip.new("v", 1.5, 3.0, captions={"coarse": "a cat", "other": "x"}, scores={"motion": 3})
    table = clips_table([a, b])
    assert table.schema.field("zz_new").type == pa.float64()
    assert table.schema.field("other_caption").type == pa.string()
    assert table.column("caption").to_pylist() == ["a dog", "a cat"]
    back = [row_to_clip(r) for r in table.to_pylist()]
    assert [(c.captions, c.scores) for c in back] == [
        ({"release": "a dog"}, {"umt": 0.4, "zz_new": 2.0}),
        ({"coarse": "a cat", "other": "x"}, {"motion": 3.0}),
    ]
    # shards with different extra columns concatenate to their union, nulls where absent
    merged = concat_clip_tables([clips_table([a]), clips_table([b])])
    assert merged.schema == clip_schema({"zz_new"}, {"other"})
    assert merged.column("zz_new").to_pylist() == [2.0, None]
    with pytest.raises(ValueError, match="clash"):
        clips_table([Clip.new("v", 0, 1, scores={"start": 1.0})])


def test_a_legacy_table_with_map_columns_is_read_and_converted(tmp_path):
    legacy = pa.schema(
        [
            ("clip_id", pa.string()),
            ("video_id", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("captions", pa.map_(pa.string(), pa.string())),
            ("scores", pa.map_(pa.string(), pa.float64())),
            ("meta", pa.string()),
        ]
    )
    rows = [
        {
            "clip_id": "v_000000000_000001000",
            "video_id": "v",
            "start": 0.0,
            "end": 1.0,
            "captions": [("fused", "a dog runs")],
            "scores": [("aesthetic", 4.5), ("motion", 2.0)],
            "meta": "{}",
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=legacy), tmp_path / "old.parquet")
    assert is_legacy(pq.read_schema(tmp_path / "old.parquet"))
    (clip,) = read_clips(tmp_path / "old.parquet")
    assert clip.captions == {"fused": "a dog runs"}
    assert clip.scores == {"aesthetic": 4.5, "motion": 2.0}
    flat = read_clips_table(tmp_path / "old.parquet")
    assert not is_legacy(flat.schema)
    assert flat.column("aesthetic").to_pylist() == [4.5]
    assert flat.column("caption").to_pylist() == ["a dog runs"]
