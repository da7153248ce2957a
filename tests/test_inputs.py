"""Input readers: folders, globs, files, URL/path lists (txt, csv, jsonl) and InternVid metadata.

The readers only look at names and whether files exist (probing comes later), so the "videos"
here are small placeholder files; nothing is decoded and nothing is fetched.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from internvid.config import InputConfig
from internvid.engine import Failure
from internvid.inputs import Inputs, read_inputs, youtube_id
from internvid.records import is_safe_id, make_video_id

YT_A = "pDq9UzfCtGw"  # the YouTube ids of the metadata tests (11 characters, like real ones)
YT_B = "abc_DEF-123"
YT_MISSING = "zzzzzzzzzz9"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypisom placeholder")
    return path


def ids(inputs: Inputs) -> list[str]:
    return [s.video.id for s in inputs.samples]


def reasons(inputs: Inputs) -> list[tuple[str, str]]:
    return [(f.item, f.reason) for f in inputs.failures]


def by_id(inputs: Inputs) -> dict:
    return {s.video.id: s for s in inputs.samples}


# --- folders, files, globs ------------------------------------------------------------------


def test_folder_is_scanned_recursively_for_video_files_only_in_sorted_order(tmp_path: Path):
    root = tmp_path / "videos"
    files = [
        touch(root / "b.mp4"),
        touch(root / "a.MKV"),  # extensions match whatever their case
        touch(root / "sub" / "c.webm"),
        touch(root / "sub" / "deeper" / "d.mov"),
    ]
    for other in ("notes.txt", "cover.jpg", "sub/list.csv", "sub/e.mp4.part"):
        touch(root / other)

    got = read_inputs([str(root)], InputConfig())

    assert got.failures == []
    assert ids(got) == ["a", "b", "c", "d"]
    expected_sources = [str(p) for p in sorted(files)]
    assert [s.video.source for s in got.samples] == expected_sources
    for s in got.samples:
        assert s.video.path == s.video.source  # a local file is its own path
        assert s.video.meta == {"origin": "local"}
        assert s.clips == []


def test_folder_scan_honours_configured_extensions(tmp_path: Path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "b.webm")
    got = read_inputs([str(tmp_path)], InputConfig(extensions=[".webm"]))
    assert ids(got) == ["b"]


def test_folder_without_videos_gives_no_samples_and_no_failure(tmp_path: Path):
    touch(tmp_path / "readme.md")
    got = read_inputs([str(tmp_path)], InputConfig())
    assert got.samples == [] and got.failures == []


def test_same_stem_in_two_folders_gets_distinct_stable_salted_ids(tmp_path: Path):
    root = tmp_path / "videos"
    x = touch(root / "x" / "intro.mp4")
    y = touch(root / "y" / "intro.mp4")
    touch(root / "outro.mp4")

    got = read_inputs([str(root)], InputConfig())

    assert len(got.samples) == 3  # both intros kept
    samples = {s.video.source: s for s in got.samples}
    id_x, id_y = samples[str(x)].video.id, samples[str(y)].video.id
    assert id_x != id_y
    assert id_x.startswith("intro-") and id_y.startswith("intro-")
    assert id_x == make_video_id("intro", salt=str(x))
    assert id_y == make_video_id("intro", salt=str(y))
    assert all(is_safe_id(i) for i in ids(got))
    assert samples[str(root / "outro.mp4")].video.id == "outro"  # a unique stem stays as it is
    # stable: reading the same inputs again gives the same ids, in the same order
    assert ids(read_inputs([str(root)], InputConfig())) == ids(got)


def test_same_file_given_twice_is_one_sample(tmp_path: Path):
    root = tmp_path / "videos"
    a = touch(root / "a.mp4")
    touch(root / "b.mp4")
    lists = tmp_path / "lists"
    lists.mkdir()
    # the same file again: relative to the list's folder (through ..) and absolute
    (lists / "again.txt").write_text(f"../videos/a.mp4\n{a.resolve()}\n", encoding="utf-8")

    got = read_inputs([str(root), str(a), str(a), str(lists / "again.txt")], InputConfig())

    assert got.failures == []
    assert ids(got) == ["a", "b"]  # one sample each, and "a" is not salted as a duplicate


def test_a_single_file_of_any_extension_is_taken(tmp_path: Path):
    f = touch(tmp_path / "clip.bin")  # named explicitly: taken whatever its extension
    got = read_inputs([str(f)], InputConfig())
    assert ids(got) == ["clip"]
    assert got.samples[0].video.path == str(f)


def test_glob_pattern_and_missing_path(tmp_path: Path):
    root = tmp_path / "videos"
    touch(root / "b.mp4")
    touch(root / "a.mp4")
    touch(root / "a.webm")
    touch(root / "sub" / "c.webm")
    missing = str(tmp_path / "nope.mp4")
    no_match = str(tmp_path / "empty" / "*.mp4")

    got = read_inputs(
        [str(root / "*.mp4"), missing, str(root / "**" / "*.webm"), no_match], InputConfig()
    )

    assert [Path(s.video.source).relative_to(root).as_posix() for s in got.samples] == [
        "a.mp4",
        "b.mp4",
        "a.webm",
        "sub/c.webm",
    ]
    # "a" twice (a.mp4 and a.webm): both salted apart; b and c untouched
    assert ids(got)[1] == "b" and ids(got)[3] == "c"
    assert ids(got)[0] != ids(got)[2] and ids(got)[0].startswith("a-")
    assert reasons(got) == [(missing, "missing_file"), (no_match, "missing_file")]
    for f in got.failures:
        assert isinstance(f, Failure)
        assert f.stage == "input"
        assert f.source == f.item


# --- lists: txt, csv, jsonl -----------------------------------------------------------------


def test_text_list(tmp_path: Path):
    a = touch(tmp_path / "videos" / "a.mp4")
    b = touch(tmp_path / "lists" / "sub" / "b.mp4")
    c = touch(tmp_path / "elsewhere" / "c.mkv")
    lst = tmp_path / "lists" / "inputs.txt"
    lst.write_text(
        "\n".join(
            [
                "# my videos",  # 1
                "",  # 2
                "../videos/a.mp4",  # 3: relative to the list's folder, not to the cwd
                "   sub/b.mp4   ",  # 4: surrounding blanks are stripped
                str(c),  # 5: absolute
                "https://example.com/media/talk-01.mp4?x=1",  # 6
                "https://www.youtube.com/watch?v=pDq9UzfCtGw",  # 7
                "  # an indented comment",  # 8
                "missing.mp4",  # 9
                "",
            ]
        ),
        encoding="utf-8",
    )

    got = read_inputs([str(lst)], InputConfig())

    assert ids(got) == ["a", "b", "c", "talk-01", "pDq9UzfCtGw"]
    local = got.samples[:3]
    for s, f in zip(local, (a, b, c), strict=True):
        assert Path(s.video.path).resolve() == f.resolve()
        assert s.video.path == s.video.source
        assert s.video.meta["origin"] == "local"
    for s, url in zip(
        got.samples[3:],
        (
            "https://example.com/media/talk-01.mp4?x=1",
            "https://www.youtube.com/watch?v=pDq9UzfCtGw",
        ),
        strict=True,
    ):
        assert s.video.source == url
        assert s.video.path is None  # fetched later by the download stage
        assert s.video.meta == {"origin": "url"}
    assert reasons(got) == [("inputs.txt:9", "missing_file")]
    assert got.failures[0].stage == "input"
    assert got.failures[0].source == str(tmp_path / "lists" / "missing.mp4")


def test_csv_list(tmp_path: Path):
    touch(tmp_path / "videos" / "a.mp4")
    lst = tmp_path / "lists" / "inputs.csv"
    lst.parent.mkdir()
    with open(lst, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "url", "title", "lang"])
        w.writerow(["", "../videos/a.mp4", "Alpha", "en"])  # line 2: no id: the file stem
        w.writerow(["talk_1", "https://example.com/v/xyz.mp4", "Beta, with a comma", "de"])
        w.writerow(["../../etc", "https://example.com/v/evil.mp4", "Evil", ""])  # line 4
        w.writerow(["", "", "no source", ""])  # line 5
        w.writerow(["", "https://youtu.be/pDq9UzfCtGw", "", ""])  # line 6

    got = read_inputs([str(lst)], InputConfig())

    assert ids(got) == ["a", "talk_1", "pDq9UzfCtGw"]
    s = by_id(got)
    assert s["a"].video.meta == {"origin": "local", "title": "Alpha", "lang": "en"}
    assert Path(s["a"].video.path).resolve() == (tmp_path / "videos" / "a.mp4").resolve()
    assert s["talk_1"].video.source == "https://example.com/v/xyz.mp4"
    assert s["talk_1"].video.path is None
    assert s["talk_1"].video.meta == {"origin": "url", "title": "Beta, with a comma", "lang": "de"}
    assert reasons(got) == [("../../etc", "unsafe_id"), ("inputs.csv:5", "malformed_input")]
    assert got.failures[0].source == "https://example.com/v/evil.mp4"
    assert all(f.stage == "input" for f in got.failures)
    assert "etc" not in " ".join(ids(got))


def test_csv_list_with_path_column(tmp_path: Path):
    touch(tmp_path / "v" / "one.mp4")
    lst = tmp_path / "list.csv"
    lst.write_text("path,query\nv/one.mp4,cooking\n", encoding="utf-8")
    got = read_inputs([str(lst)], InputConfig())
    assert ids(got) == ["one"]
    assert got.samples[0].video.meta == {"origin": "local", "query": "cooking"}


def test_csv_list_without_a_source_column_fails_as_malformed(tmp_path: Path):
    lst = tmp_path / "list.csv"
    lst.write_text("name,title\na,b\n", encoding="utf-8")
    got = read_inputs([str(lst)], InputConfig())
    assert got.samples == []
    assert reasons(got) == [("list.csv", "malformed_input")]


def test_jsonl_list(tmp_path: Path):
    touch(tmp_path / "videos" / "a.mp4")
    lst = tmp_path / "lists" / "inputs.jsonl"
    lst.parent.mkdir()
    lines = [
        json.dumps({"path": "../videos/a.mp4", "title": "Alpha", "tags": ["x", "y"]}),  # 1
        json.dumps({"url": "https://youtu.be/pDq9UzfCtGw", "id": "custom_id", "lang": "en"}),
        '{"url": "https://example.com/broken.mp4"',  # 3: malformed
        "",  # 4: blank
        json.dumps({"url": "https://example.com/x.mp4", "id": "../../etc"}),  # 5: unsafe id
        json.dumps({"title": "no source"}),  # 6: no url/path
        json.dumps({"url": "https://www.youtube.com/shorts/abcdefghijk", "id": 42}),  # 7
        json.dumps(["not", "an", "object"]),  # 8
    ]
    lst.write_text("\n".join(lines) + "\n", encoding="utf-8")

    got = read_inputs([str(lst)], InputConfig())

    assert ids(got) == ["a", "custom_id", "42"]
    s = by_id(got)
    assert s["a"].video.meta == {"origin": "local", "title": "Alpha", "tags": ["x", "y"]}
    assert s["custom_id"].video.meta == {"origin": "url", "lang": "en"}
    assert s["custom_id"].video.path is None
    assert s["42"].video.source == "https://www.youtube.com/shorts/abcdefghijk"
    assert reasons(got) == [
        ("inputs.jsonl:3", "malformed_input"),
        ("../../etc", "unsafe_id"),
        ("inputs.jsonl:6", "malformed_input"),
        ("inputs.jsonl:8", "malformed_input"),
    ]
    assert "invalid JSON" in got.failures[0].message
    assert got.failures[0].source == str(lst)
    assert all(f.stage == "input" for f in got.failures)


def test_gzipped_jsonl_list(tmp_path: Path):
    lst = tmp_path / "inputs.jsonl.gz"
    with gzip.open(lst, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"url": "https://example.com/a/clip.webm"}) + "\n")
    got = read_inputs([str(lst)], InputConfig())
    assert ids(got) == ["clip"]


# --- URL ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=pDq9UzfCtGw",
        "https://www.youtube.com/watch?feature=share&v=pDq9UzfCtGw&t=30s",
        "https://m.youtube.com/watch?v=pDq9UzfCtGw",
        "http://youtube.com/watch?v=pDq9UzfCtGw",
        "https://youtu.be/pDq9UzfCtGw",
        "https://youtu.be/pDq9UzfCtGw?si=abcdef&t=3",
        "https://www.youtube.com/shorts/pDq9UzfCtGw",
        "https://www.youtube.com/shorts/pDq9UzfCtGw?feature=share",
        "https://www.youtube.com/embed/pDq9UzfCtGw",
    ],
)
def test_youtube_url_forms_give_the_11_char_id(url: str):
    assert youtube_id(url) == "pDq9UzfCtGw"
    assert ids(read_inputs([url], InputConfig())) == ["pDq9UzfCtGw"]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=short",  # not 11 characters
        "https://www.youtube.com/watch?v=../../etc/x",
        "https://www.youtube.com/channel/UCabcdefghijk",
        "https://notyoutube.example.com/watch?v=pDq9UzfCtGw",
        "https://example.com/shorts/pDq9UzfCtGw",
    ],
)
def test_not_a_youtube_video_url(url: str):
    assert youtube_id(url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/videos/lecture-01.mp4", "lecture-01"),
        ("https://example.com/videos/lecture.part.2.mp4?token=x", "lecture_part_2"),
        ("https://cdn.example.org/a/My%20Talk%20(final).webm", None),  # any safe id
        ("https://example.com/", "video"),
        ("https://www.youtube.com/watch?v=bad", "watch"),
    ],
)
def test_other_urls_get_a_safe_id_from_the_path_stem(url: str, expected: str | None):
    got = read_inputs([url], InputConfig())
    (sample,) = got.samples
    assert is_safe_id(sample.video.id)
    if expected is not None:
        assert sample.video.id == expected
    assert sample.video.path is None
    assert sample.video.meta == {"origin": "url"}


# --- InternVid metadata ---------------------------------------------------------------------


def release_row(vid: str, start: str, end: str, caption: str, **extra: object) -> dict:
    """A row in the exact release format."""
    return {
        "YoutubeID": vid,
        "Start_timestamp": start,
        "End_timestamp": end,
        "Caption": caption,
        "Aesthetic_Score": 4.285156,
        "UMT_Score": 0.375732,
        **extra,
    }


def write_release(path: Path) -> Path:
    a1 = release_row(YT_A, "00:08:14.520", "00:08:37.120", "a man talks at a conference")
    lines = [
        json.dumps(a1),  # 1
        json.dumps(release_row(YT_B, "00:00:01.000", "00:00:04.000", "a dog runs")),  # 2
        json.dumps(release_row(YT_A, "00:00:01.000", "00:00:03.500", "an earlier clip")),  # 3
        '{"YoutubeID": "pDq9UzfCtGw", "Start_timestamp": ',  # 4: malformed
        json.dumps(a1),  # 5: the same row again
        json.dumps(release_row("../x", "00:00:01.000", "00:00:02.000", "escape")),  # 6
        json.dumps(release_row(YT_MISSING, "00:00:00.000", "00:00:05.000", "no file")),  # 7
        "",  # 8
        json.dumps(  # 9: UMT-SIM spelling and an extra key
            {
                "YoutubeID": YT_A,
                "Start_timestamp": "01:02:03.004",
                "End_timestamp": "01:02:09.000",
                "Caption": "the last clip",
                "Aesthetic_Score": 5.5,
                "UMT-SIM": 0.5,
                "Lang": "en",
            }
        ),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, Path]:
    """(metadata file, folder of local videos named by YoutubeID; YT_MISSING has none)."""
    (tmp_path / "meta").mkdir()
    meta = write_release(tmp_path / "meta" / "release.jsonl")
    yt = tmp_path / "yt"
    touch(yt / f"{YT_A}.mp4")
    touch(yt / f"{YT_B}.mp4")
    return meta, yt


def test_metadata_with_a_local_path_template(release: tuple[Path, Path]):
    meta, yt = release
    got = read_inputs([str(meta)], InputConfig(path_template=str(yt) + "/{YoutubeID}.mp4"))

    assert ids(got) == [YT_A, YT_B]  # one sample per id, in order of first appearance
    a, b = got.samples
    assert a.video.source == a.video.path == str(yt / f"{YT_A}.mp4")
    assert a.video.meta == {"origin": "metadata"}
    # clips in row order (not sorted by time), ids carry the timestamps, the duplicate dropped
    assert [c.clip_id for c in a.clips] == [
        f"{YT_A}_000814520_000837120",
        f"{YT_A}_000001000_000003500",
        f"{YT_A}_010203004_010209000",
    ]
    c1, c2, c3 = a.clips
    assert (c1.start, c1.end) == (494.52, 517.12)
    assert c1.captions == {"release": "a man talks at a conference"}
    assert c1.scores == {"aesthetic": 4.285156, "umt": 0.375732}
    assert c2.captions == {"release": "an earlier clip"}
    assert c3.scores == {"aesthetic": 5.5, "umt": 0.5}
    assert c3.meta["release_umt_key"] == "UMT-SIM"
    assert c3.meta["release_extra"] == {"Lang": "en"}
    for c in a.clips:
        assert c.video_id == YT_A
        assert c.source == a.video.source
    assert [c.clip_id for c in b.clips] == [f"{YT_B}_000001000_000004000"]

    assert reasons(got) == [
        ("release.jsonl:4", "invalid_json"),
        ("release.jsonl:6", "unsafe_id"),
        (YT_MISSING, "missing_file"),
    ]
    assert all(f.stage == "input" for f in got.failures)
    assert got.failures[0].source == str(meta)
    assert got.failures[2].source == str(yt / f"{YT_MISSING}.mp4")


def test_metadata_with_a_url_template_gives_url_samples(release: tuple[Path, Path]):
    meta, _ = release
    template = "https://www.youtube.com/watch?v={YoutubeID}"
    got = read_inputs([str(meta)], InputConfig(path_template=template))

    assert ids(got) == [YT_A, YT_B, YT_MISSING]  # no local file needed for a URL
    for s in got.samples:
        assert s.video.source == f"https://www.youtube.com/watch?v={s.video.id}"
        assert s.video.path is None
        assert s.video.meta == {"origin": "metadata"}
    assert [len(s.clips) for s in got.samples] == [3, 1, 1]
    assert reasons(got) == [("release.jsonl:4", "invalid_json"), ("release.jsonl:6", "unsafe_id")]


def test_metadata_id_placeholder_and_gzip(tmp_path: Path, release: tuple[Path, Path]):
    meta, yt = release
    gz = tmp_path / "release.jsonl.gz"
    gz.write_bytes(gzip.compress(meta.read_bytes()))
    got = read_inputs([str(gz)], InputConfig(path_template=str(yt / "{id}.mp4")))
    assert ids(got) == [YT_A, YT_B]
    assert [len(s.clips) for s in got.samples] == [3, 1]


@pytest.mark.parametrize("template", [None, "", "/data/videos/fixed.mp4"])
def test_metadata_without_a_path_template_raises(release: tuple[Path, Path], template):
    meta, _ = release
    with pytest.raises(ValueError, match="--path-template"):
        read_inputs([str(meta)], InputConfig(path_template=template))


def test_metadata_whose_first_line_is_malformed_is_still_metadata(tmp_path: Path):
    touch(tmp_path / f"{YT_A}.mp4")
    meta = tmp_path / "release.jsonl"
    row = release_row(YT_A, "00:00:01.000", "00:00:02.000", "x")
    meta.write_text('{"YoutubeID": "trunc\n' + json.dumps(row) + "\n", encoding="utf-8")

    with pytest.raises(ValueError, match="--path-template"):
        read_inputs([str(meta)], InputConfig())
    got = read_inputs([str(meta)], InputConfig(path_template=str(tmp_path / "{YoutubeID}.mp4")))
    assert ids(got) == [YT_A]
    assert reasons(got) == [("release.jsonl:1", "invalid_json")]


# --- limit ----------------------------------------------------------------------------------


def test_limit_takes_the_first_samples_after_sorting(tmp_path: Path):
    for name in ("d", "b", "c", "a"):
        touch(tmp_path / "v" / f"{name}.mp4")
    missing = str(tmp_path / "missing.mp4")
    got = read_inputs([str(tmp_path / "v"), missing], InputConfig(limit=2))
    assert ids(got) == ["a", "b"]
    assert reasons(got) == [(missing, "missing_file")]  # failures are all kept
    assert ids(read_inputs([str(tmp_path / "v")], InputConfig(limit=0))) == []
    assert len(read_inputs([str(tmp_path / "v")], InputConfig(limit=10)).samples) == 4
