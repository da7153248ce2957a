"""Records: clip ids carry their timestamps, ids are safe, timecodes round-trip."""

from __future__ import annotations

import pytest

from internvid.records import (
    Clip,
    check_id,
    format_timecode,
    is_safe_id,
    make_clip_id,
    make_video_id,
    parse_clip_id,
    parse_timecode,
    seconds_to_ms,
)


def test_clip_id_carries_timestamps():
    assert make_clip_id("pDq9UzfCtGw", 494520, 517120) == "pDq9UzfCtGw_000814520_000837120"
    assert parse_clip_id("pDq9UzfCtGw_000814520_000837120") == ("pDq9UzfCtGw", 494520, 517120)
    # ids with underscores and dashes, hours > 99
    cid = make_clip_id("a_b-c", 0, 360_000_001)
    assert cid == "a_b-c_000000000_1000000001"
    assert parse_clip_id(cid) == ("a_b-c", 0, 360_000_001)


def test_clip_new_is_deterministic_and_keyable():
    c = Clip.new("vid", 4.0, 10.0)
    assert c.clip_id == "vid_000004000_000010000"
    assert "." not in c.clip_id  # WebDataset splits keys at the first dot
    assert c.duration == 6.0
    assert Clip.new("vid", 190.567, 191.2).clip_id == "vid_000310567_000311200"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "a b", "x" * 129, "é", "a.b", "x\n"])
def test_unsafe_ids_rejected(bad):
    assert not is_safe_id(bad)
    with pytest.raises(ValueError):
        check_id(bad)
    with pytest.raises(ValueError):
        make_clip_id(bad, 0, 1000)


def test_make_video_id_sanitises_and_salts():
    assert make_video_id("my video (1)") == "my_video_1"
    assert make_video_id("../../etc/passwd") == "etc_passwd"
    salted = make_video_id("intro", salt="/a/intro.mp4")
    assert salted.startswith("intro-") and salted == make_video_id("intro", salt="/a/intro.mp4")
    assert salted != make_video_id("intro", salt="/b/intro.mp4")
    assert is_safe_id(make_video_id("...")) and is_safe_id(salted)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("00:00:00.000", 0),
        ("00:03:10.567", 190567),
        ("00:08:14.520", 494520),
        ("12:34:56.789", 45296789),
    ],
)
def test_timecode_round_trip(text, ms):
    assert parse_timecode(text) == ms
    assert format_timecode(ms) == text


@pytest.mark.parametrize(
    "bad", ["0:03:10.567", "00:03:10", "00:60:00.000", "00:03:10.5670", "x", 12]
)
def test_bad_timecodes(bad):
    with pytest.raises(ValueError):
        parse_timecode(bad)


def test_seconds_to_ms_rounds():
    assert seconds_to_ms(190.567) == 190567
    assert seconds_to_ms(0.1 + 0.2) == 300
