"""Config: YAML maps onto the dataclasses, unknown keys and bad values fail early."""

from __future__ import annotations

import pytest

from internvid.config import RunConfig


def test_defaults_follow_the_paper():
    c = RunConfig()
    assert c.split.threshold == 27.0 and c.split.min_scene_len == 15
    assert (c.collect.min_duration, c.collect.max_duration, c.collect.min_height) == (
        10.0,
        1800.0,
        360,
    )
    assert c.cut.max_height == 720 and c.download.max_height == 720
    c.validate()


def test_yaml_round_trip(tmp_path):
    c = RunConfig()
    c.split.max_clip_seconds = None
    c.split.threshold = 30
    c.workers = 3
    p = tmp_path / "c.yaml"
    p.write_text(c.to_yaml())
    back = RunConfig.from_yaml(p)
    assert back == c
    assert back.split.max_clip_seconds is None


def test_partial_yaml_and_int_for_float(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("split:\n  threshold: 30\n  min_clip_seconds: 2\noutput:\n  videos_per_shard: 4\n")
    c = RunConfig.from_yaml(p)
    assert c.split.threshold == 30.0 and isinstance(c.split.threshold, float)
    assert c.split.min_clip_seconds == 2.0 and c.output.videos_per_shard == 4
    assert c.cut == RunConfig().cut


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"split": {"treshold": 27}}, "unknown key"),
        ({"bogus": 1}, "unknown key"),
        ({"split": {"threshold": "high"}}, "expected float"),
        ({"split": 3}, "expected a mapping"),
        ({"workers": True}, "expected int"),
        ({"input": {"extensions": ".mp4"}}, "expected a list"),
    ],
)
def test_bad_config_rejected(data, msg):
    with pytest.raises(ValueError, match=msg):
        RunConfig.from_dict(data)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: setattr(c.cut, "mode", "fast"),
        lambda c: setattr(c.collect, "enabled", "yes"),
        lambda c: setattr(c.split, "max_clip_seconds", 0.5),
        lambda c: setattr(c, "workers", 0),
        lambda c: setattr(c.caption, "models", "huge"),
        lambda c: setattr(c.caption, "fusion", "vote"),
        lambda c: setattr(c.caption, "dtype", "int4"),
        lambda c: setattr(c.caption, "batch_size", 0),
        lambda c: setattr(c.caption, "collapse_similarity", 1.5),
    ],
)
def test_validate_rejects_impossible_settings(change):
    c = RunConfig()
    change(c)
    with pytest.raises(ValueError):
        c.validate()


def test_fingerprint_ignores_workers_only():
    a, b = RunConfig(), RunConfig()
    b.workers = 8
    assert a.fingerprint() == b.fingerprint()
    b.split.threshold = 20.0
    assert a.fingerprint() != b.fingerprint()


def test_fingerprint_ignores_where_models_run_not_which():
    a, b = RunConfig(), RunConfig()
    b.caption.device, b.caption.batch_size, b.caption.cache_dir = "cuda:1", 64, "/cache"
    assert a.fingerprint() == b.fingerprint() and b.caption.device == "cuda:1"
    b.caption.models = "lite"
    assert a.fingerprint() != b.fingerprint()
