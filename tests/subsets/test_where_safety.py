"""--where is one checked expression: injections are refused and touch no file; filters work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from subset_data import out_ids

from internvid.io.tables import clips_table, row_to_clip, write_table_atomic
from internvid.records import Clip
from internvid.subsets import SubsetConfig, SubsetError, make_subset
from internvid.subsets.make import _lock
from internvid.subsets.where import allowed_functions, check_where

COLUMNS = ["clip_id", "caption", "aesthetic", "width", "frame_captions", "meta", "end"]

# (the --where text, what the refusal names)
INJECTIONS = [
    ("true); COPY (SELECT 42) TO 'PWNED.csv'; SELECT (1", "not one SQL expression"),
    ("true; COPY (SELECT 42) TO 'PWNED.csv'", "not one SQL expression"),
    ("true; SELECT 1", "2 statements"),
    ("length((SELECT string_agg(content,'') FROM read_text('/etc/hostname')))>0", "a subquery"),
    ("exists (SELECT * FROM read_csv('/etc/passwd'))", "a subquery"),
    ("clip_id IN (SELECT content FROM read_text('PWNED.csv'))", "a subquery"),
    ("true) UNION SELECT * FROM read_parquet('x.parquet') WHERE (true", "not one SQL expression"),
    ("true FROM read_text('/etc/hostname')", "not one SQL expression"),
    ("true ORDER BY 1", "not one SQL expression"),
    ("true; ATTACH 'PWNED.db' AS p", "not one SQL expression"),
    ("true; INSTALL httpfs; LOAD httpfs", "not one SQL expression"),
    ("true; PRAGMA enable_profiling", "not one SQL expression"),
    ("true; SET enable_external_access = true", "not one SQL expression"),
    ("current_setting('temp_directory') <> ''", "current_setting() is not allowed"),
    ("getenv('HOME') <> ''", "getenv() is not allowed"),
    ("nextval('s') > 0", "nextval() is not allowed"),
    ("read_text('/etc/hostname') IS NOT NULL", "read_text() is not allowed"),
    ("glob('/etc/*') IS NOT NULL", "glob() is not allowed"),
    ("count(*) > 0", "count_star() is not allowed"),
    ("sum(aesthetic) OVER () > 0", "a window function"),
    ("main.lower(caption) = 'x'", "qualified function names"),
    ("$1 > 0", "a prepared-statement parameter"),
    ("COLUMNS(*) IS NOT NULL", "COLUMNS"),
    ("", "empty"),
]


@pytest.mark.parametrize(("text", "why"), INJECTIONS)
def test_check_where_refuses(text: str, why: str) -> None:
    with pytest.raises(SubsetError, match="--where") as e:
        check_where(text, COLUMNS)
    assert why in str(e.value)


def test_no_file_function_is_allowed() -> None:
    names = allowed_functions()
    assert {"lower", "regexp_matches", "json_extract", "len", "~~*", "list_filter"} <= names
    for name in ("read_text", "read_blob", "read_csv", "read_csv_auto", "read_parquet", "glob",
                 "read_json", "read_json_auto", "query", "query_table", "current_setting",
                 "getenv", "setseed", "nextval", "pg_sleep", "json_serialize_sql"):  # fmt: skip
        assert name not in names, name


def test_check_where_renders_one_expression() -> None:
    # DuckDB's own rendering: comments and trailing text are gone, the text is parenthesised
    assert check_where("aesthetic > 4 -- ) OR (true", COLUMNS) == "(aesthetic > 4)"
    assert check_where("caption ILIKE '%dog%' /* x */", COLUMNS) == "(caption ~~* '%dog%')"
    assert check_where('"end" > 2 and width in (1, 2)', COLUMNS) == (
        '(("end" > 2) AND (width IN (1, 2)))'
    )
    # a lambda's parameter is no column; a quoted text stays a string
    assert check_where("len(list_filter(frame_captions, x -> x ILIKE '%;%')) > 0", COLUMNS)
    assert check_where("caption = 'a''; DROP TABLE x; --'", COLUMNS) == (
        "(caption = 'a''; DROP TABLE x; --')"
    )
    with pytest.raises(SubsetError, match="no column 'nope'; the columns are aesthetic, caption"):
        check_where("nope > 1", COLUMNS)
    assert check_where("nope > 1") == "(nope > 1)"  # columns=None: names are not checked


def _clips() -> list[Clip]:
    """12 clips, every column type varied: captions, scores (some absent), sizes, frame
    captions, JSON meta."""
    clips = []
    for i in range(12):
        clips.append(
            Clip.new(
                f"vid{i % 4}",
                10.0 * i,
                10.0 * i + 1 + i,
                source=f"/v/vid{i % 4}.mp4",
                fps=30.0 if i % 2 else 25.0,
                width=640 if i % 3 else 1280,
                height=360,
                captions={"fused": ["a dog runs", "a cat; sleeps", "Dog's day"][i % 3]},
                scores={"aesthetic": 3.5 + 0.25 * i, **({"viclip_sim": 0.3} if i % 4 else {})},
                frame_captions=[f"frame {j}" for j in range(i % 5)],
                meta={"lang": "en" if i % 2 else "de", "n": i},
                status="split",
            )
        )
    return clips


@pytest.fixture
def small_run(tmp_path: Path) -> tuple[list[Clip], Path]:
    run = tmp_path / "run"
    run.mkdir()
    clips = _clips()
    write_table_atomic(clips_table(clips), run / "clips.parquet")
    return clips, run


FILTERS = [  # (--where, the same filter over Clip records)
    ("caption ilike '%dog%'", lambda c: "dog" in c.best_caption().lower()),
    ("regexp_matches(caption, '^a (dog|cat)')", lambda c: c.best_caption()[:5] in ("a dog", "a cat")),
    ("aesthetic > 4.5 and duration <= 9", lambda c: c.scores["aesthetic"] > 4.5 and c.duration <= 9),
    ("width = 1280 or fps < 26", lambda c: c.width == 1280 or c.fps < 26),
    ("len(frame_captions) > 2", lambda c: len(c.frame_captions) > 2),
    ("json_extract_string(meta, '$.lang') = 'en'", lambda c: c.meta["lang"] == "en"),
    ("CAST(json_extract(meta, '$.n') AS INTEGER) IN (1, 5, 7)", lambda c: c.meta["n"] in (1, 5, 7)),
    ("viclip_sim IS NULL", lambda c: "viclip_sim" not in c.scores),
    ("start_ms BETWEEN 20000 AND 60000", lambda c: 20 <= c.start <= 60),
    ("video_id IN ('vid1', 'vid2') AND NOT (caption LIKE 'a%')",
     lambda c: c.video_id in ("vid1", "vid2") and not c.best_caption().startswith("a")),
    ("\"end\" - start > 5", lambda c: c.end - c.start > 5),
    ("caption = 'a cat; sleeps'", lambda c: c.best_caption() == "a cat; sleeps"),
    ("list_contains(frame_captions, 'frame 3')", lambda c: "frame 3" in c.frame_captions),
]  # fmt: skip


@pytest.mark.parametrize(("where", "keep"), FILTERS)
def test_ordinary_filters_work(small_run, tmp_path: Path, where, keep) -> None:
    clips, run = small_run
    want = {c.clip_id for c in clips if keep(c)}
    assert 0 < len(want) < len(clips)
    result = make_subset(run, tmp_path / "w", SubsetConfig(rule="where", where=where))
    assert set(out_ids(tmp_path / "w")) == want and result.rows == len(want)
    got = [row_to_clip(r) for r in pq.read_table(tmp_path / "w.parquet").to_pylist()]
    assert {c.clip_id: c for c in got} == {c.clip_id: c for c in clips if keep(c)}


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize(
    "where",
    [
        "true); COPY (SELECT 42) TO 'PWNED.csv'; SELECT (1",
        "length((SELECT string_agg(content,'') FROM read_text('/etc/hostname')))>0",
        "clip_id IN (SELECT * FROM read_csv('PWNED.csv'))",
        "true; ATTACH 'PWNED.db' AS p; COPY (SELECT 1) TO 'PWNED.csv'",
        "true; INSTALL httpfs; LOAD httpfs",
    ],
)
def test_the_command_refuses_injections_and_writes_nothing(small_run, tmp_path, where) -> None:
    """The issue's commands, as a user types them: exit 2, a clear message, no file anywhere."""
    _, run = small_run
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = _tree(tmp_path)
    env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": "200"}
    args = ["subset", "where", str(run), "-o", str(cwd / "w" / "x"), "--where", where]
    res = subprocess.run(
        [sys.executable, "-m", "internvid", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--where" in res.stderr and "not" in res.stderr, res.stderr
    assert _tree(tmp_path) - before <= {cwd / "w"}, "the command created files"
    assert not (cwd / "w").exists() or not list((cwd / "w").iterdir())
    assert not list(Path.cwd().glob("PWNED*"))


def test_duckdb_is_locked_before_user_text(small_run, tmp_path: Path) -> None:
    """Even text that got past check_where could read no other file, write none, install or
    load nothing, and not unlock: make._lock, as make_subset applies it."""
    _, run = small_run
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    path = str((run / "clips.parquet").resolve())
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{path}')")
    _lock(con, (path,))
    assert con.execute("SELECT count(*) FROM src").fetchone() == (12,)  # the input: allowed
    refused = [
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM read_csv('{secret}')",
        f"COPY (SELECT 42) TO '{tmp_path / 'PWNED.csv'}'",
        f"ATTACH '{tmp_path / 'PWNED.db'}' AS p",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ]
    for sql in refused:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    con.close()
    assert not list(tmp_path.glob("PWNED*"))


def test_the_checked_where_reaches_the_summary(small_run, tmp_path: Path) -> None:
    clips, run = small_run
    where = "caption ilike '%dog%' -- dogs only"
    result = make_subset(run, tmp_path / "w", SubsetConfig(rule="where", where=where))
    assert (
        result.summary()
        == f"where {where}: -{sum('dog' not in c.best_caption().lower() for c in clips)}"
    )
    lines = (tmp_path / "w.jsonl").read_text(encoding="utf-8").splitlines()
    assert all("dog" in json.loads(x)["Caption"].lower() for x in lines) and lines
