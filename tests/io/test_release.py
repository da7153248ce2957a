"""Tests of the InternVid release metadata reader and writer (internvid.io.release)."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import random
import string
import tracemalloc
from pathlib import Path

import pytest

from internvid.io.release import (
    MalformedRow,
    ReleaseRow,
    ReleaseWriter,
    clip_from_row,
    iter_release_rows,
    row_from_clip,
    write_release_rows,
)
from internvid.records import Clip, format_timecode

# ../shared/data/internvid next to the repository (read-only, never copied into the repo)
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "internvid" / "sample_rows.jsonl"

GOOD = {
    "YoutubeID": "pDq9UzfCtGw",
    "Start_timestamp": "00:08:14.520",
    "End_timestamp": "00:08:37.120",
    "Caption": "in october, 2019, in lviv, there was a conference",
    "Aesthetic_Score": 4.285156,
    "UMT_Score": 0.375732,
}


def line_of(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def with_(**changes: object) -> dict:
    row = dict(GOOD)
    for key, value in changes.items():
        key = key.replace("__", "-")
        if value is ...:
            row.pop(key, None)
        else:
            row[key] = value
    return row


@pytest.fixture
def sample_path() -> Path:
    if not SAMPLE.exists():
        pytest.skip(f"InternVid sample rows not found at {SAMPLE} (shared data not mounted)")
    return SAMPLE


# --- round trips --------------------------------------------------------------------------


def test_sample_rows_round_trip_byte_exact(sample_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    n = write_release_rows(iter_release_rows(sample_path), out)
    original = sample_path.read_bytes()
    assert n == len(original.splitlines()) == 3
    assert out.read_bytes() == original


def test_sample_rows_field_exact(sample_path: Path) -> None:
    lines = sample_path.read_text(encoding="utf-8").splitlines()
    rows = list(iter_release_rows(sample_path))
    assert len(rows) == len(lines)
    for row, line in zip(rows, lines, strict=True):
        obj = json.loads(line)
        assert row.youtube_id == obj["YoutubeID"]
        assert row.caption == obj["Caption"]
        assert row.aesthetic_score == obj["Aesthetic_Score"]
        assert repr(row.aesthetic_score) == repr(obj["Aesthetic_Score"])
        assert row.umt_score == obj["UMT_Score"]
        assert row.umt_key == "UMT_Score"
        assert row.extra == {}
        assert row.to_json() == obj
        assert list(row.to_json()) == list(obj)
    first = rows[0]
    assert (first.youtube_id, first.start_ms, first.end_ms) == ("HdYoyzCSWyw", 190567, 191200)
    assert first.aesthetic_score == 4.589844
    assert line_of(first.to_json()) == lines[0]


def test_umt_sim_alias_kept(tmp_path: Path) -> None:
    obj = with_(UMT_Score=..., UMT__SIM=0.41)
    assert list(obj)[-1] == "UMT-SIM"
    row = ReleaseRow.from_json(obj)
    assert row.umt_score == 0.41
    assert row.umt_key == "UMT-SIM"
    assert row.extra == {}
    out = tmp_path / "alias.jsonl"
    write_release_rows([row], out)
    assert out.read_text(encoding="utf-8") == line_of(obj) + "\n"


def test_both_umt_keys_first_is_score_other_kept(tmp_path: Path) -> None:
    obj = with_(UMT__SIM=0.5)  # UMT_Score first, then UMT-SIM
    row = ReleaseRow.from_json(obj)
    assert (row.umt_key, row.umt_score) == ("UMT_Score", 0.375732)
    assert row.extra == {"UMT-SIM": 0.5}
    assert row.to_json() == obj


def test_rows_without_scores_or_caption_are_valid(tmp_path: Path) -> None:
    bare = with_(Caption=..., Aesthetic_Score=..., UMT_Score=...)
    no_scores = with_(Aesthetic_Score=..., UMT_Score=...)
    src = tmp_path / "full_set.jsonl"
    src.write_text("".join(line_of(o) + "\n" for o in (bare, no_scores)), encoding="utf-8")
    rows = list(iter_release_rows(src))
    assert [r.caption for r in rows] == [None, GOOD["Caption"]]
    assert all(r.aesthetic_score is None and r.umt_score is None for r in rows)
    assert list(rows[0].to_json()) == ["YoutubeID", "Start_timestamp", "End_timestamp"]
    out = tmp_path / "out.jsonl"
    write_release_rows(rows, out)
    assert out.read_bytes() == src.read_bytes()


def test_null_scores_and_caption_read_as_absent() -> None:
    row = ReleaseRow.from_json(with_(Caption=None, Aesthetic_Score=None, UMT_Score=None))
    assert (row.caption, row.aesthetic_score, row.umt_score) == (None, None, None)
    assert "Aesthetic_Score" not in row.to_json()
    assert None not in row.to_json().values()


def test_integer_scores_accepted_and_written_back_as_integers() -> None:
    row = ReleaseRow.from_json(with_(Aesthetic_Score=5, UMT_Score=0))
    assert row.aesthetic_score == 5 and row.umt_score == 0
    assert line_of(row.to_json()).endswith('"Aesthetic_Score": 5, "UMT_Score": 0}')


def test_extras_preserved_in_order(tmp_path: Path) -> None:
    obj = {
        "zeta": 1,
        "YoutubeID": "abc_DEF-123",
        "Start_timestamp": "00:00:01.000",
        "nested": {"b": [1, 2], "a": None},
        "End_timestamp": "00:00:02.500",
        "alpha": "ü – unicode",
        "Caption": "a dog",
    }
    row = ReleaseRow.from_json(obj)
    assert list(row.extra) == ["zeta", "nested", "alpha"]
    assert row.extra["nested"] == {"b": [1, 2], "a": None}
    written = row.to_json()
    assert list(written) == [
        "YoutubeID",
        "Start_timestamp",
        "End_timestamp",
        "Caption",
        "zeta",
        "nested",
        "alpha",
    ]
    assert written == obj
    out = tmp_path / "extras.jsonl"
    write_release_rows([row], out)
    text = out.read_text(encoding="utf-8")
    assert "ü – unicode" in text  # ensure_ascii=False
    [back] = iter_release_rows(out)
    assert back == row and list(back.extra) == ["zeta", "nested", "alpha"]


def test_extra_key_clashing_with_a_field_is_refused() -> None:
    row = ReleaseRow("abc", 0, 1, extra={"Caption": "x"})
    with pytest.raises(ValueError, match="clashes"):
        row.to_json()


def test_text_file_object_and_blank_lines() -> None:
    text = "\n" + line_of(GOOD) + "\n   \n\n" + line_of(with_(YoutubeID="other")) + "\n\n"
    rows = list(iter_release_rows(io.StringIO(text)))
    assert [r.youtube_id for r in rows] == ["pDq9UzfCtGw", "other"]
    # line numbers count the blank lines too
    bad = "\n\n" + "{oops\n"
    seen: list[int] = []
    assert (
        list(iter_release_rows(io.StringIO(bad), on_error=lambda n, e, raw: seen.append(n))) == []
    )
    assert seen == [3]
    # binary file objects too (e.g. an open gzip stream)
    data = gzip.compress((line_of(GOOD) + "\n").encode() * 3)
    with gzip.open(io.BytesIO(data), "rb") as f:
        assert len(list(iter_release_rows(f))) == 3


def test_crlf_and_bom_tolerated(tmp_path: Path) -> None:
    src = tmp_path / "crlf.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + (line_of(GOOD) + "\r\n").encode() * 2)
    rows = list(iter_release_rows(src))
    assert len(rows) == 2 and rows[0] == ReleaseRow.from_json(GOOD)


def test_gzip_round_trip(sample_path: Path, tmp_path: Path) -> None:
    gz = tmp_path / "rows.jsonl.gz"
    n = write_release_rows(iter_release_rows(sample_path), gz)
    assert n == 3
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == sample_path.read_bytes()
    assert list(iter_release_rows(gz)) == list(iter_release_rows(sample_path))
    plain = tmp_path / "back.jsonl"
    write_release_rows(iter_release_rows(gz), plain)
    assert plain.read_bytes() == sample_path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.jsonl", "rows.jsonl.gz"]


def test_writer_accepts_dicts_and_validates_them(tmp_path: Path) -> None:
    out = tmp_path / "dicts.jsonl"
    with ReleaseWriter(out) as w:
        w.write(GOOD)
        w.write(ReleaseRow("abc", 0, 10))
        assert w.count == 2
    assert out.read_text(encoding="utf-8").splitlines() == [
        line_of(GOOD),
        line_of(
            {"YoutubeID": "abc", "Start_timestamp": "00:00:00.000", "End_timestamp": "00:00:00.010"}
        ),
    ]
    with pytest.raises(MalformedRow) as info, ReleaseWriter(tmp_path / "bad.jsonl") as w:
        w.write(with_(YoutubeID="../x"))
    assert info.value.reason == "unsafe_id"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dicts.jsonl"]


# --- malformed rows -------------------------------------------------------------------------

MALFORMED = [
    ("invalid_json", "{not json"),
    ("invalid_json", '{"YoutubeID": "abc", '),
    ("invalid_json", line_of(GOOD).replace("4.285156", "NaN")),
    ("not_an_object", "[1, 2, 3]"),
    ("not_an_object", '"pDq9UzfCtGw"'),
    ("not_an_object", "42"),
    ("missing_field", line_of(with_(YoutubeID=...))),
    ("missing_field", line_of(with_(Start_timestamp=...))),
    ("missing_field", line_of(with_(End_timestamp=...))),
    ("bad_timestamp", line_of(with_(Start_timestamp="8:14.520"))),
    ("bad_timestamp", line_of(with_(Start_timestamp="00:08:14"))),
    ("bad_timestamp", line_of(with_(End_timestamp="00:61:00.000"))),
    ("bad_timestamp", line_of(with_(End_timestamp="00:08:37,120"))),
    ("bad_timestamp", line_of(with_(Start_timestamp=494.52))),
    ("bad_timestamp", line_of(with_(Start_timestamp=None))),
    ("bad_type", line_of(with_(Aesthetic_Score="4.28"))),
    ("bad_type", line_of(with_(Aesthetic_Score=True))),
    ("bad_type", line_of(with_(UMT_Score=[0.3]))),
    ("bad_type", line_of(with_(UMT_Score=..., UMT__SIM="high"))),
    ("bad_type", line_of(with_(Caption=5))),
    ("bad_type", line_of(with_(Caption=["a", "b"]))),
    ("bad_type", line_of(with_(YoutubeID=12345678901))),
    ("bad_type", line_of(with_(YoutubeID=None))),
    ("unsafe_id", line_of(with_(YoutubeID="../x"))),
    ("unsafe_id", line_of(with_(YoutubeID="a/b"))),
    ("unsafe_id", line_of(with_(YoutubeID=".."))),
    ("unsafe_id", line_of(with_(YoutubeID=""))),
    ("unsafe_id", line_of(with_(YoutubeID="has space"))),
    ("unsafe_id", line_of(with_(YoutubeID="x" * 129))),
    ("unsafe_id", line_of(with_(YoutubeID="C:\\evil"))),
    ("end_before_start", line_of(with_(End_timestamp="00:08:14.519"))),
]


@pytest.mark.parametrize(
    ("reason", "line"), MALFORMED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(MALFORMED)]
)
def test_malformed_line_reason_and_line_number(tmp_path: Path, reason: str, line: str) -> None:
    src = tmp_path / "mixed.jsonl"
    good2 = with_(YoutubeID="second")
    src.write_text(f"{line_of(GOOD)}\n\n{line}\n{line_of(good2)}\n", encoding="utf-8")

    errors: list[tuple[int, MalformedRow, str]] = []
    rows = list(iter_release_rows(src, on_error=lambda n, e, raw: errors.append((n, e, raw))))
    assert [r.youtube_id for r in rows] == ["pDq9UzfCtGw", "second"]  # continued past it
    assert len(errors) == 1
    line_no, error, raw = errors[0]
    assert (line_no, error.reason, error.line_no, raw) == (3, reason, 3, line)
    assert isinstance(error, ValueError)

    with pytest.raises(MalformedRow) as info:
        list(iter_release_rows(src))
    assert info.value.reason == reason
    assert info.value.line_no == 3
    assert f"{src}:3:" in str(info.value)


def test_malformed_reasons_from_json_directly() -> None:
    for reason, line in MALFORMED:
        if reason in ("invalid_json",):
            continue
        with pytest.raises(MalformedRow) as info:
            ReleaseRow.from_json(json.loads(line))
        assert info.value.reason == reason, line
        assert info.value.message and str(info.value) == info.value.message


def test_many_malformed_lines_all_reported_in_order(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    lines = [line for _, line in MALFORMED]
    src.write_text("\n".join([line_of(GOOD), *lines, line_of(GOOD)]) + "\n", encoding="utf-8")
    seen: list[tuple[int, str]] = []
    rows = list(iter_release_rows(src, on_error=lambda n, e, raw: seen.append((n, e.reason))))
    assert len(rows) == 2
    assert seen == [(i + 2, reason) for i, (reason, _) in enumerate(MALFORMED)]


def test_non_utf8_line_is_invalid_json_and_skipped(tmp_path: Path) -> None:
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(b'{"YoutubeID": "caf\xe9"}\n' + (line_of(GOOD) + "\n").encode())
    seen: list[tuple[int, str]] = []
    rows = list(iter_release_rows(src, on_error=lambda n, e, raw: seen.append((n, e.reason))))
    assert seen == [(1, "invalid_json")] and len(rows) == 1


def test_unsafe_ids_rejected_everywhere(tmp_path: Path) -> None:
    for bad in ("../x", "../../etc/passwd", "x/..", "a b", "a.b", "é", "x\n"):
        with pytest.raises(MalformedRow) as info:
            ReleaseRow.from_json(with_(YoutubeID=bad))
        assert info.value.reason == "unsafe_id"
        with pytest.raises(MalformedRow) as info:
            ReleaseRow(bad, 0, 1).to_json()
        assert info.value.reason == "unsafe_id"
    with pytest.raises(MalformedRow):
        write_release_rows([ReleaseRow("ok", 0, 1), ReleaseRow("../x", 0, 1)], tmp_path / "o.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_malformed_row_pickles() -> None:
    err = MalformedRow("bad_type", "x:3: Caption must be a string", line_no=3)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.message, back.line_no, str(back)) == (
        "bad_type",
        err.message,
        3,
        str(err),
    )


# --- atomic writer --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_writer_leaves_nothing_on_exception(tmp_path: Path, name: str) -> None:
    out = tmp_path / name

    def rows():
        for i in range(50_000):  # more than the write buffer: some bytes reach the temp file
            if i == 40_000:
                raise RuntimeError("source died mid-way")
            yield with_(YoutubeID=f"vid{i}")

    with pytest.raises(RuntimeError, match="mid-way"):
        write_release_rows(rows(), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_writer_keeps_old_file_on_exception(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old content\n")
    with pytest.raises(KeyError), ReleaseWriter(out) as w:
        w.write(GOOD)
        assert w.tmp_path.exists() and w.tmp_path.parent == tmp_path
        assert w.tmp_path.name.startswith(".out.jsonl.tmp-")
        raise KeyError("boom")
    assert out.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_writer_replaces_atomically_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old content\n")
    with ReleaseWriter(out) as w:
        w.write(GOOD)
        assert out.read_text() == "old content\n"  # untouched until the end
    assert out.read_text(encoding="utf-8") == line_of(GOOD) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_writer_needs_open() -> None:
    with pytest.raises(ValueError, match="not open"):
        ReleaseWriter("never.jsonl").write(GOOD)


# --- clips ------------------------------------------------------------------------------------

CLIP_ROWS = [
    ReleaseRow("HdYoyzCSWyw", 190567, 191200, "woman using a computer mouse", 4.589844, 0.397949),
    ReleaseRow("pDq9UzfCtGw", 494520, 517120, "a conference", 4.285156, 0.375732, "UMT-SIM"),
    ReleaseRow("abc", 45296789, 45301001),  # 12:34:56.789, no caption, no scores
    ReleaseRow("abc", 442800001, 442800999, None, 5.0, None),  # 123:00:00.001
    ReleaseRow("x-y_z", 0, 0, "", None, 0.1, extra={"Source": "yt", "n": [1, 2]}),
    ReleaseRow("v", 1, 2, "c", 3, 0),  # integer scores
]


@pytest.mark.parametrize("row", CLIP_ROWS, ids=lambda r: f"{r.youtube_id}-{r.start_ms}")
def test_clip_round_trip(row: ReleaseRow) -> None:
    clip = clip_from_row(row, source="https://youtu.be/x")
    assert isinstance(clip, Clip)
    assert clip.video_id == row.youtube_id
    assert clip.source == "https://youtu.be/x"
    assert clip.start == row.start_ms / 1000 and clip.end == row.end_ms / 1000
    assert clip.meta["release_umt_key"] == row.umt_key
    assert ("release_extra" in clip.meta) == bool(row.extra)
    back = row_from_clip(clip)
    assert back == row
    assert line_of(back.to_json()) == line_of(row.to_json())


def test_clip_from_row_fields() -> None:
    row = ReleaseRow.from_json(
        with_(Start_timestamp="00:03:10.567", End_timestamp="01:00:00.001", UMT_Score=0.25)
    )
    clip = clip_from_row(row)
    assert clip.clip_id == "pDq9UzfCtGw_000310567_010000001"
    assert clip.start == 190.567 and clip.end == 3600.001
    assert clip.captions == {"release": GOOD["Caption"]}
    assert clip.scores == {"aesthetic": 4.285156, "umt": 0.25}
    assert clip.status == "split"
    assert clip_from_row(ReleaseRow("v", 0, 1)).captions == {}
    assert clip_from_row(ReleaseRow("v", 0, 1)).scores == {}


def test_clip_sample_rows_round_trip(sample_path: Path) -> None:
    for row in iter_release_rows(sample_path):
        assert row_from_clip(clip_from_row(row)) == row


def test_row_from_clip_caption_and_score_preference() -> None:
    clip = Clip.new("vid", 1.5, 3.25)
    clip.captions = {"coarse": "c", "release": "r", "fused": "f"}
    clip.scores = {"viclip_sim": 0.2, "umt": 0.3, "aesthetic": 4.0}
    row = row_from_clip(clip)
    assert (row.caption, row.umt_score, row.aesthetic_score) == ("f", 0.3, 4.0)
    assert (row.start_ms, row.end_ms, row.umt_key, row.extra) == (1500, 3250, "UMT_Score", {})
    del clip.captions["fused"]
    del clip.scores["umt"]
    row = row_from_clip(clip)
    assert (row.caption, row.umt_score) == ("r", 0.2)  # viclip_sim stands in for umt
    del clip.captions["release"]
    del clip.scores["viclip_sim"]
    row = row_from_clip(clip)
    assert (row.caption, row.umt_score) == ("c", None)
    assert "UMT_Score" not in row.to_json()
    clip.captions.clear()
    clip.scores.clear()
    assert list(row_from_clip(clip).to_json()) == ["YoutubeID", "Start_timestamp", "End_timestamp"]


def test_row_from_clip_rounds_float_seconds() -> None:
    clip = Clip.new("vid", 190.567, 3723.4560000001)
    row = row_from_clip(clip)
    assert (row.start_ms, row.end_ms) == (190567, 3723456)
    assert row.to_json()["End_timestamp"] == "01:02:03.456"


# --- streaming --------------------------------------------------------------------------------


def _write_synthetic(path: Path, n: int) -> None:
    """`n` realistic lines, drawn from a pool of 1,009 distinct rows (fast to write)."""
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + "_-"
    words = ["a", "man", "dog", "playing", "guitar", "in", "the", "park", "city", "river"]
    pool = []
    for i in range(1009):
        start = rng.randrange(0, 3_600_000)
        obj = {
            "YoutubeID": "".join(rng.choices(alphabet, k=11)),
            "Start_timestamp": format_timecode(start),
            "End_timestamp": format_timecode(start + rng.randrange(1000, 60_000)),
            "Caption": " ".join(rng.choices(words, k=10 + i % 11)),
            "Aesthetic_Score": round(rng.uniform(3, 6), 6),
            "UMT_Score": round(rng.uniform(0.2, 0.5), 6),
        }
        pool.append(json.dumps(obj, ensure_ascii=False) + "\n")
    with path.open("w", encoding="utf-8") as f:
        f.writelines(pool[i % len(pool)] for i in range(n))


def test_streaming_memory_is_flat(tmp_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    n = 200_000
    _write_synthetic(src, n)
    size = src.stat().st_size
    assert size > 20_000_000

    tracemalloc.start()
    try:
        count = 0
        for row in iter_release_rows(src):
            count += 1
            last = row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert last.end_ms >= last.start_ms
    assert peak < 0.05 * size, f"peak {peak} bytes for a {size}-byte file"
    assert peak < 1_000_000  # a few rows and the read buffer, not the file
