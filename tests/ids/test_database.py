"""The video-id database (internvid.ids): ids out of URLs, every file format, malformed rows,
idempotent imports, exact overlaps, contains, the spooled large-file path (small groups here),
hostile names and values, and `internvid ids` end to end."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.config import IdsConfig
from internvid.ids import database as iddb
from internvid.ids.database import (
    IdDatabase,
    IdsError,
    NoIdColumn,
    UnknownDataset,
    id_column,
    id_expression,
    youtube_id,
)
from shared_data import RELEASE_DATA

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
V = "dQw4w9WgXcQ"  # an id for the URL table


def vid(i: int) -> str:
    """The i-th of a run of distinct valid ids."""
    s, n = "", i
    for _ in range(11):
        n, r = divmod(n, 64)
        s += ALPHABET[r]
    return s


@pytest.fixture
def db(tmp_path: Path):
    with IdDatabase.open(tmp_path / "ids.duckdb") as d:
        yield d


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


# -- ids out of values ------------------------------------------------------------------------

URLS = [
    (V, V),
    (f"  {V}\n", V),
    (f"https://www.youtube.com/watch?v={V}", V),
    (f"https://youtube.com/watch?feature=share&v={V}&t=10", V),
    (f"http://m.youtube.com/watch?v={V}#t=3", V),
    (f"https://music.youtube.com/watch?v={V}&list=RDAMVM", V),
    (f"HTTPS://WWW.YOUTUBE.COM/WATCH?V={V}", V),
    (f"https://youtu.be/{V}?t=42", V),
    (f"youtu.be/{V}", V),
    (f"www.youtube.com/watch?v={V}", V),
    (f"https://www.youtube.com/shorts/{V}", V),
    (f"https://www.youtube.com/embed/{V}?autoplay=1", V),
    (f"https://www.youtube-nocookie.com/embed/{V}", V),
    (f"https://www.youtube.com/live/{V}?si=x", V),
    (f"https://www.youtube.com/v/{V}", V),
    ("a-_0123456Z", "a-_0123456Z"),
    (f"https://www.youtube.com/watch?v={V[:10]}", None),  # 10 characters
    (f"https://www.youtube.com/watch?v={V}Q", None),  # 12
    (f"https://vimeo.com/watch?v={V}", None),  # not YouTube
    (f"https://notyoutube.com/watch?v={V}", None),
    (f"https://www.youtube.com/channel/UC{V}", None),
    (f"https://www.youtube.com/watch?list={V}", None),
    (V[:10] + "!", None),
    (f"{V} {V}", None),
    ("", None),
    ("'); DROP TABLE ids; --", None),
]


@pytest.mark.parametrize(("text", "expected"), URLS)
def test_youtube_id_of_a_value_in_python_and_in_duckdb(db, text, expected):
    assert youtube_id(text) == expected
    sql = f"SELECT {id_expression('$v')}"
    assert db.con.execute(sql, {"v": text}).fetchall() == [(expected,)]


def test_the_url_column_of_a_file(db, tmp_path):
    values = [t for t, _ in URLS]
    pq.write_table(pa.table({"n": list(range(len(values))), "link": values}), tmp_path / "u.pq")
    stats = db.import_file(tmp_path / "u.pq", "urls")  # found by name: a link column
    good = {e for _, e in URLS if e}
    assert (stats.column, stats.rows) == ("link", len(URLS))
    assert stats.malformed == sum(e is None for _, e in URLS)
    assert stats.added == len(good)
    assert db.contains([V, "a-_0123456Z", "zzzzzzzzzzz"]) == good


def test_the_id_column_is_found_by_name():
    assert id_column(["x", "url", "video_id", "YoutubeID"]) == "YoutubeID"
    assert id_column(["id", "ytid"]) == "ytid"
    assert id_column(["ID", "page_url"]) == "ID"
    assert id_column(["a", "contentUrl"]) == "contentUrl"
    assert id_column(["a", "video_id"], "A") == "a"  # given, but for case
    with pytest.raises(NoIdColumn, match="'a', 'b'") as e:
        id_column(["a", "b"])
    assert e.value.columns == ["a", "b"]
    with pytest.raises(NoIdColumn, match="no column 'c'"):
        id_column(["a", "b"], "c")


# -- formats ----------------------------------------------------------------------------------


def test_every_format_reads_the_same_ids(db, tmp_path):
    ids = [vid(i) for i in range(6)]
    rows = [{"YoutubeID": v, "Caption": f"clip {i}, with a comma"} for i, v in enumerate(ids)]
    jsonl = "".join(json.dumps(r) + "\n" for r in rows)
    files = {
        "a.csv": "\n".join(
            ["video_id,caption", *(f'{v},"clip {i}, x"' for i, v in enumerate(ids))]
        ),
        "a.tsv": "\n".join(["caption\tytid", *(f"clip {i}, x\t{v}" for i, v in enumerate(ids))]),
        "a.jsonl": jsonl,
        "a.ndjson": jsonl,
        "a.json": jsonl,
        "a.txt": "\n".join(f"https://youtu.be/{v}" for v in ids) + "\n\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(jsonl)
    with gzip.open(tmp_path / "a.csv.gz", "wt", encoding="utf-8") as f:
        f.write(files["a.csv"] + "\n")
    pq.write_table(pa.table({"views": [1] * 6, "youtube_id": ids}), tmp_path / "a.parquet")
    expect = {
        "a.csv": ("csv", "video_id"),
        "a.tsv": ("tsv", "ytid"),
        "a.jsonl": ("jsonl", "YoutubeID"),
        "a.ndjson": ("jsonl", "YoutubeID"),
        "a.json": ("jsonl", "YoutubeID"),
        "a.txt": ("txt", "line"),
        "a.jsonl.gz": ("jsonl", "YoutubeID"),
        "a.csv.gz": ("csv", "video_id"),
        "a.parquet": ("parquet", "youtube_id"),
    }
    for name, (fmt, column) in expect.items():
        stats = db.import_file(tmp_path / name, name)
        assert (stats.format, stats.column) == (fmt, column), name
        assert (stats.rows, stats.added, stats.malformed) == (6, 6, 0), name
        assert db.overlap(name, "a.csv").in_both == 6
    assert db.datasets() == {name: 6 for name in expect}


def test_the_release_sample_rows(db):
    sample = RELEASE_DATA / "sample_rows.jsonl"
    if not sample.is_file():
        pytest.skip(f"{sample} not found (set INTERNVID_SHARED_DATA)")
    stats = db.import_file(sample, "internvid")
    assert (stats.column, stats.rows, stats.added, stats.malformed) == ("YoutubeID", 3, 3, 0)
    assert db.contains(["HdYoyzCSWyw", "pDq9UzfCtGw", "9VlPZ9heX70"], ["internvid"]) == {
        "HdYoyzCSWyw", "pDq9UzfCtGw", "9VlPZ9heX70"
    }  # fmt: skip


def test_unknown_formats_and_json_arrays_are_refused(db, tmp_path):
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(IdsError, match="unknown file format"):
        db.import_file(tmp_path / "a.xlsx", "x")
    (tmp_path / "arr.json").write_text(json.dumps([{"YoutubeID": V}]))
    with pytest.raises(IdsError, match="JSON array"):
        db.import_file(tmp_path / "arr.json", "x")
    with pytest.raises(FileNotFoundError):
        db.import_file(tmp_path / "missing.csv", "x")
    with pytest.raises(NoIdColumn, match="'a', 'b'"):
        db.import_file(write_csv(tmp_path / "n.csv", "a,b", ["1,2"]), "x")


# -- malformed rows, idempotence --------------------------------------------------------------


def test_malformed_rows_are_counted_not_stored(db, tmp_path):
    lines = [
        f"{vid(1)},1",
        f"{vid(2)},2",
        "short,3",  # not an id
        ",4",  # empty
        f"{vid(1)},5",  # repeated
        f"{vid(3)},6,extra",  # a field too many: DuckDB skips the line
        f"https://youtu.be/{vid(4)},7",
        "'; DROP TABLE ids; --,8",
    ]
    stats = db.import_file(write_csv(tmp_path / "m.csv", "youtube_id,n", lines), "m")
    assert (stats.rows, stats.added, stats.malformed, stats.duplicates) == (8, 3, 4, 1)
    assert db.contains([vid(i) for i in range(6)]) == {vid(1), vid(2), vid(4)}
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"YoutubeID": vid(5)}),
                "not json {",
                json.dumps({"YoutubeID": None}),
                json.dumps({"YoutubeID": 123}),
                json.dumps({"other": vid(6)}),
                "",  # blank lines are no rows
                json.dumps({"YoutubeID": vid(7), "Caption": "x" * 100}),
                json.dumps([vid(8)]),
            ]
        )
        + "\n"
    )
    stats = db.import_file(jsonl, "j")
    assert (stats.rows, stats.added, stats.malformed) == (7, 2, 5)
    assert db.datasets() == {"j": 2, "m": 3}


def test_reimporting_a_file_adds_nothing(db, tmp_path):
    f = write_csv(tmp_path / "r.csv", "id", [vid(i % 7) for i in range(20)])
    first = db.import_file(f, "r")
    again = db.import_file(f, "r")
    assert (first.rows, first.added, first.duplicates) == (20, 7, 13)
    assert (again.rows, again.added, again.duplicates) == (20, 0, 20)
    assert db.datasets() == {"r": 7}
    assert [(i.added, i.rows) for i in db.imports()] == [(7, 20), (0, 20)]
    assert db.imports()[0].source == str(f.resolve())
    assert db.con.execute("SELECT count(*) FROM ids").fetchall() == [(7,)]


def test_a_file_without_ids_still_names_its_dataset(db, tmp_path):
    db.import_file(write_csv(tmp_path / "e.csv", "id", ["nope"]), "empty")
    (tmp_path / "zero.jsonl").write_bytes(b"")
    for f in (write_csv(tmp_path / "h.csv", "youtube_id", []), tmp_path / "zero.jsonl"):
        stats = db.import_file(f, "empty")
        assert (stats.rows, stats.added, stats.malformed) == (0, 0, 0)
    db.add([vid(1)], "full")
    assert db.datasets() == {"empty": 0, "full": 1}
    o = db.overlap("empty", "full")
    assert (o.in_a, o.in_b, o.in_both, o.a_in_b, o.b_in_a) == (0, 1, 0, 0.0, 0.0)


# -- add, contains, overlap -------------------------------------------------------------------


def test_add_and_contains(db):
    assert db.add([vid(i) for i in range(5)], "a") == 5
    assert db.add([vid(i) for i in range(3, 8)] * 2, "a") == 3
    assert db.add([vid(0)], "b") == 1
    assert db.add([vid(20), "bad", f" {vid(21)}", 7, None], "a") == 1  # malformed: skipped
    assert db.add(["bad"], "c") == 0
    assert db.datasets() == {"a": 9, "b": 1}
    probe = [vid(0), vid(7), vid(9), "bad", 3]
    assert db.contains(probe) == {vid(0), vid(7)}
    assert db.contains(iter([vid(20)] * 3)) == {vid(20)}
    assert db.contains(probe, ["b"]) == {vid(0)}
    assert db.contains(probe, []) == set()
    with pytest.raises(UnknownDataset, match="'nope'; the database holds 'a', 'b'"):
        db.contains(probe, ["nope"])


def test_overlap_numbers_are_exact(db, tmp_path):
    a = [vid(i) for i in range(10)]
    b = [vid(i) for i in range(6, 10)] + [vid(i) for i in range(100, 106)]
    db.import_file(write_csv(tmp_path / "a.csv", "youtube_id", a + a[:3]), "A")
    db.import_file(write_csv(tmp_path / "b.csv", "videoid", ["bad", *b]), "B")
    o = db.overlap("A", "B")
    assert (o.in_a, o.in_b, o.in_both) == (10, 10, 4)
    assert (o.a_in_b, o.b_in_a) == (0.4, 0.4)
    db.add([vid(100)], "C")
    o = db.overlap("B", "C")
    assert (o.in_a, o.in_b, o.in_both, o.a_in_b, o.b_in_a) == (10, 1, 1, 0.1, 1.0)
    assert db.overlap("A", "A").in_both == 10
    assert db.export_overlap("A", "B", tmp_path / "out" / "shared.parquet") == 4
    table = pq.read_table(tmp_path / "out" / "shared.parquet")
    assert table.column_names == ["id"]
    assert table.column("id").to_pylist() == sorted(a[6:])
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "shared.parquet"]
    with pytest.raises(UnknownDataset):
        db.overlap("A", "nope")


def test_large_sets_go_bucket_group_by_bucket_group(tmp_path, monkeypatch):
    """8 buckets, statements of at most 300 ids: a file spooled into groups, buckets split once
    (the held ids spooled too on a re-import): the same answers as set arithmetic."""
    monkeypatch.setattr(iddb, "BUCKETS", 8)
    monkeypatch.setattr(iddb, "GROUP_ROWS", 300)
    a = [vid(i) for i in range(0, 1_200)]
    b = [vid(i) for i in range(900, 2_000)]
    statements = []
    execute = iddb.IdDatabase._merge_spools

    def counted(self, new, old, dataset):
        statements.append(new.level)
        return execute(self, new, old, dataset)

    monkeypatch.setattr(iddb.IdDatabase, "_merge_spools", counted)
    with IdDatabase.open(tmp_path / "big.duckdb") as db:
        stats = db.import_file(write_csv(tmp_path / "a.csv", "id", a + a[::7]), "A")
        assert (stats.rows, stats.added) == (len(a) + len(a[::7]), len(a))
        assert db.import_file(tmp_path / "a.csv", "A").added == 0
        assert db.add(b, "B") == len(b)
        assert db.add(a[:100] + b[:100], "B") == 100
        assert db.datasets() == {"A": 1_200, "B": 1_200}
        assert 0 in statements and 1 in statements  # grouped, then split
        o = db.overlap("A", "B")
        assert o.in_both == len(set(a) & (set(b) | set(a[:100]))) == 400
        n = db.export_overlap("A", "B", tmp_path / "s.parquet")
        got = pq.read_table(tmp_path / "s.parquet").column("id").to_pylist()
        assert n == len(got) == len(set(got)) == 400
        assert set(got) == set(a) & (set(b) | set(a[:100]))
        counts = db.con.execute("SELECT count(*), count(DISTINCT (id, dataset)) FROM ids")
        assert counts.fetchall() == [(2_400, 2_400)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "big.duckdb", "s.parquet"]


def test_a_parquet_file_gets_the_memory_its_row_groups_need(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(iddb, "PARQUET_SLACK", 40 << 20)  # more than the limit below
    pq.write_table(pa.table({"id": [vid(i) for i in range(1000)]}), tmp_path / "p.parquet")
    with IdDatabase.open(tmp_path / "p.duckdb", IdsConfig(memory_limit="20MB")) as db:
        with caplog.at_level(logging.INFO, logger="internvid.ids.database"):
            assert db.import_file(tmp_path / "p.parquet", "p").added == 1000
        assert "while reading it" in caplog.text
        limit = db.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert iddb._size_bytes(limit) < 20 * 10**6  # the configured one again


# -- names and values that look like SQL ------------------------------------------------------


def test_sql_in_names_and_values_is_data_or_refused(db, tmp_path):
    evil = "x'); DROP TABLE ids; --"
    assert db.add([vid(1)], evil) == 1
    assert db.add([vid(2)], 'a"b') == 1
    assert db.datasets() == {'a"b': 1, evil: 1}
    assert db.overlap(evil, 'a"b').in_both == 0
    f = write_csv(tmp_path / "it's.csv", '"a""b; DROP TABLE ids",other', [f"{vid(3)},x"])
    with pytest.raises(NoIdColumn):
        db.import_file(f, "q")  # no column of the candidate names
    with pytest.raises(NoIdColumn, match="no column"):
        db.import_file(f, "q", column='other" FROM ids; --')
    stats = db.import_file(f, "q", column='a"b; DROP TABLE ids')
    assert (stats.column, stats.added) == ('a"b; DROP TABLE ids', 1)
    write_csv(tmp_path / "g1.csv", "id", [vid(9)])  # what the glob g[12].csv would match
    glob = write_csv(tmp_path / "g[12] *.csv", "id", [vid(3), vid(8)])
    assert (db.import_file(glob, "glob").added, db.contains([vid(9)])) == (2, set())
    j = tmp_path / "k.jsonl"
    j.write_text(json.dumps({"a/b~'\"": vid(4)}) + "\n")
    with pytest.raises(NoIdColumn, match="columns are 'a/b~"):
        db.import_file(j, "k")  # no id key by name...
    assert db.import_file(j, "k2", column="a/b~'\"").added == 1  # ...given: a JSON pointer
    for bad in ("", "   ", "tab\there", "x" * 201):
        with pytest.raises(IdsError):
            db.add([vid(5)], bad)
    assert db.con.execute("SELECT count(*) FROM ids").fetchall() == [(6,)]


def test_open_refuses_what_is_not_an_id_database(tmp_path):
    import duckdb

    with pytest.raises(FileNotFoundError):
        IdDatabase.open(tmp_path / "none.duckdb", read_only=True)
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    con.execute("CREATE TABLE ids (x INTEGER)")
    con.close()
    with pytest.raises(IdsError, match="not an id database"):
        IdDatabase.open(tmp_path / "other.duckdb")
    d = IdDatabase.open(tmp_path / "ok.duckdb")
    d.close()
    d.close()
    with pytest.raises(IdsError, match="closed"):
        d.datasets()


# -- the command ------------------------------------------------------------------------------

runner = CliRunner()


def ids_cli(*args: str):
    return runner.invoke(app, ["ids", *map(str, args)], env={"COLUMNS": "200"})


@pytest.mark.allow_error_logs
def test_the_ids_command_end_to_end(tmp_path):
    db = tmp_path / "db" / "ids.duckdb"
    a = write_csv(tmp_path / "a.csv", "url", [f"https://youtu.be/{vid(i)}" for i in range(8)])
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"YoutubeID": vid(i)}) + "\n" for i in range(6, 10)))
    r = ids_cli("import", db, a, "--dataset", "A")
    assert r.exit_code == 0, r.output
    assert "8 rows, 8 new ids" in r.output and "(column url" in r.output
    r = ids_cli("import", db, a, "-d", "A", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["added"] == 0 and json.loads(r.output)["dataset_ids"] == 8
    assert ids_cli("import", db, b, "-d", "B", "--column", "YoutubeID").exit_code == 0

    r = ids_cli("list", db)
    assert r.exit_code == 0, r.output
    assert [line.split() for line in r.output.splitlines()[1:]] == [
        ["A", "8", "2"],
        ["B", "4", "1"],
    ]
    listed = json.loads(ids_cli("list", db, "--json").output)
    assert listed["datasets"] == {"A": 8, "B": 4} and len(listed["imports"]) == 3

    r = ids_cli("overlap", db, "A", "B", "--json", "--out", tmp_path / "s.parquet")
    assert r.exit_code == 0, r.output
    o = json.loads(r.output)
    assert (o["in_a"], o["in_b"], o["in_both"], o["a_in_b"], o["b_in_a"]) == (8, 4, 2, 0.25, 0.5)
    assert o["exported"] == 2
    assert pq.read_table(tmp_path / "s.parquet").column("id").to_pylist() == [vid(6), vid(7)]
    r = ids_cli("overlap", db, "B", "A")
    assert "'B': 4 ids, 2 of them in 'A' (50.00%)" in r.output

    cfg = tmp_path / "ids.yaml"
    cfg.write_text("memory_limit: 64MB\nthreads: 2\n")
    assert ids_cli("list", db, "--config", cfg).exit_code == 0
    cfg.write_text("memory_limits: 64MB\n")
    assert ids_cli("list", db, "--config", cfg).exit_code == 2


@pytest.mark.allow_error_logs
def test_the_ids_command_errors(tmp_path, caplog):
    db = tmp_path / "ids.duckdb"
    none = write_csv(tmp_path / "none.csv", "youtube_id", ["nope", "x"])
    cols = write_csv(tmp_path / "cols.csv", "name,views", ["a,1"])

    def fails(code: int, *args: str, says: str) -> None:
        caplog.clear()
        r = ids_cli(*args)
        assert r.exit_code == code, (args, r.output)
        said = " ".join((caplog.text + r.output).split())  # rich wraps at the terminal's width
        assert says in said, (says, caplog.text, r.output)

    fails(2, "list", db, says="no such id database")
    fails(2, "import", db, tmp_path / "missing.csv", "-d", "x", says="no such file")
    fails(2, "import", db, cols, "-d", "x", says="the file's columns are 'name', 'views'")
    fails(2, "import", db, cols, "-d", "x", "--column", "id", says="no column 'id'")
    fails(2, "import", db, cols, "-d", "", says="non-empty name")
    fails(1, "import", db, none, "-d", "none", says="no YouTube id in")
    (tmp_path / "zero.csv").write_bytes(b"")
    fails(1, "import", db, tmp_path / "zero.csv", "-d", "none", says="(0 rows, 0 malformed)")
    r = ids_cli("list", db)  # a dataset of 0 ids is still a dataset
    assert r.exit_code == 0 and r.output.splitlines()[1].split() == ["none", "0", "2"]
    fails(2, "overlap", db, "none", "nope", says="unknown dataset 'nope'")
    fails(1, "overlap", db, "none", "none", "-o", tmp_path / "s.parquet", says="share no id")
    fails(2, "import", db, none, "-d", "x", "--memory-limit", "lots", says="memory")
    empty = tmp_path / "empty.duckdb"
    IdDatabase.open(empty).close()
    fails(1, "list", empty, says="holds no dataset yet")
