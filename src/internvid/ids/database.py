"""`IdDatabase`: one DuckDB file of (YouTube id, dataset) pairs and the files imported into it.

InternVid kept no video whose YouTube id an earlier public dataset already held, and curators
ask how much of dataset A dataset B holds. The database answers both from one file:

    ids      (id VARCHAR, dataset VARCHAR)     unique pairs (kept so by the inserts: no index)
    imports  (dataset, source, format, column_name, rows_read, ids_added, malformed, seconds,
              imported_at)                      one row per imported file

Bounded memory. DuckDB reads a file itself (`read_csv` / `read_parquet`, a JSON-lines file as
lines parsed by `json_extract_string`; the path a bound parameter, a column name only once it is
known to be one of the file's, then quoted) in one streamed pass that yields each row's id (NULL:
malformed) and its bucket, `hash(id) % BUCKETS`. The ids go to a spool: one text file a bucket
in a scratch folder. Then the buckets are merged into the table a group at a time (at most
GROUP_ROWS ids a statement): the distinct ids of the group, less the ones the dataset already
holds (an anti-join with the same buckets of the dataset, spooled the same way when the file
has more than one group). So no hash table ever holds more than a group, whatever the size of the
file, and DuckDB's buffer pool stays under `IdsConfig.memory_limit`. Overlaps of two large
datasets run bucket group by bucket group the same way. Numbers: docs/ids.md.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from internvid.config import IdsConfig

log = logging.getLogger(__name__)

# a YouTube video id: 11 characters of the URL-safe base64 alphabet
ID_PATTERN = r"[A-Za-z0-9_-]{11}"
# a value that is an id, blanks around it allowed (RE2 and Python `re` read it alike)
BARE_PATTERN = r"^[ \t\r\n]*([A-Za-z0-9_-]{11})[ \t\r\n]*$"
# an id inside a YouTube URL: watch?v= (also &v=), youtu.be/, shorts/, embed/, live/, v/, e/
URL_PATTERN = (
    r"(?:^|[/.@])(?i:youtube(?:-nocookie)?\.com/(?:watch/?\?(?:[^#]*&)?v=|shorts/|embed/|live/"
    r"|v/|e/)|youtu\.be/)([A-Za-z0-9_-]{11})(?:[^A-Za-z0-9_-]|$)"
)
_ID_RX = re.compile(ID_PATTERN)
_BARE_RX = re.compile(BARE_PATTERN)
_URL_RX = re.compile(URL_PATTERN)

# columns that hold the id, by name (case-insensitive), in order of preference; after them, the
# first column whose name contains one of URL_HINTS (its URLs' ids)
ID_COLUMNS = ("youtube_id", "youtubeid", "videoid", "video_id", "ytid", "id")
URL_HINTS = ("url", "link")
# file suffix -> format (a trailing .gz / .zst is read through, as DuckDB does)
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",  # JSON lines under a .json name; a JSON array is refused
    ".txt": "txt",
}
_COMPRESSED = (".gz", ".zst")
_LINE = "line"  # the one column of a .txt list (an id or URL a line) and of a jsonl file's lines
_SEP = "\x01"  # the delimiter of line-wise reads: a byte no id, URL or JSON text holds raw
MAX_LINE_BYTES = 1 << 20  # longest line of a text file; a longer one is skipped (malformed)
JSON_SAMPLE_LINES = 1000  # a jsonl file's columns: the keys of its first lines
MAX_DATASET_CHARS = 200  # longest dataset name
BUCKETS = 256  # spool files a side: ids go to bucket hash(id) % BUCKETS
GROUP_ROWS = 100_000  # most ids (new + held) one merge statement reads: DuckDB's working set
MAX_LEVEL = 3  # a bucket over GROUP_ROWS is split by the hash's next 8 bits, this many times
FETCH_ROWS = 20_000  # rows fetched from DuckDB at a time while spooling
CHUNK = 100_000  # ids of an iterable per statement (add, contains)
PARQUET_SLACK = 8 << 20  # memory beyond a thread's compressed chunk that reading Parquet needs

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ids (id VARCHAR NOT NULL, dataset VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS imports (dataset VARCHAR NOT NULL, source VARCHAR NOT NULL, "
    "format VARCHAR NOT NULL, column_name VARCHAR NOT NULL, rows_read BIGINT NOT NULL, "
    "ids_added BIGINT NOT NULL, malformed BIGINT NOT NULL, seconds DOUBLE NOT NULL, "
    "imported_at TIMESTAMP NOT NULL)",
)
_IDS_COLUMNS = ["id", "dataset"]


class IdsError(ValueError):
    """A usage error: a bad dataset name, file format or column, an unknown dataset."""


class NoIdColumn(IdsError):
    """No column of the file holds YouTube ids (or the one asked for is not there)."""

    def __init__(self, message: str, columns: list[str]) -> None:
        super().__init__(message)
        self.columns = columns


class UnknownDataset(IdsError):
    """A dataset the database holds no ids of and has no import of."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.known = sorted(known)
        listed = ", ".join(repr(k) for k in self.known) or "none yet"
        super().__init__(f"unknown dataset {name!r}; the database holds {listed}")


@dataclass(frozen=True)
class ImportStats:
    """What one import_file read and added."""

    dataset: str  # the dataset the ids went to
    source: str  # the file, as an absolute path
    format: str  # csv, tsv, parquet, jsonl or txt
    column: str  # the column (jsonl: the key) the ids came from; "line" for a .txt list
    rows: int  # rows read (lines DuckDB could not split into the header's fields included)
    added: int  # new (id, dataset) pairs
    malformed: int  # rows without a YouTube id (bad or missing value, unparseable line)
    seconds: float  # wall time of the import
    imported_at: datetime  # when it finished (UTC)

    @property
    def duplicates(self) -> int:
        """Rows with a valid id that added nothing: repeated in the file or already held."""
        return self.rows - self.malformed - self.added

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["imported_at"] = self.imported_at.isoformat()
        d["duplicates"] = self.duplicates
        return d


@dataclass(frozen=True)
class Overlap:
    """How much of dataset a dataset b holds, and the other way round."""

    a: str  # the first dataset
    b: str  # the second dataset
    in_a: int  # ids of a
    in_b: int  # ids of b
    in_both: int  # ids of a that b holds too
    a_in_b: float  # share of a's ids that b holds: in_both / in_a (0.0 when a is empty)
    b_in_a: float  # share of b's ids that a holds: in_both / in_b (0.0 when b is empty)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def youtube_id(text: object) -> str | None:
    """The YouTube id `text` holds: the text itself when it is one (blanks around it allowed),
    else the id of a YouTube URL in it (watch?v=, youtu.be/, shorts/, embed/, live/, v/); None
    otherwise. The same patterns run inside DuckDB for imported files (`id_expression`)."""
    if not isinstance(text, str):
        return None
    m = _BARE_RX.search(text) or _URL_RX.search(text)
    return m.group(1) if m else None


def is_youtube_id(text: object) -> bool:
    """True for exactly 11 characters of A-Z a-z 0-9 _ -."""
    return isinstance(text, str) and _ID_RX.fullmatch(text) is not None


def file_format(path: str | os.PathLike[str]) -> str:
    """The format of a file by its suffix (FORMATS; .gz / .zst read through); IdsError else."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSED
    if compressed:
        suffixes.pop()
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise IdsError(f"{path}: unknown file format; expected one of {known} (or .gz of them)")
    if fmt == "parquet" and compressed:
        raise IdsError(f"{path}: a compressed Parquet file; Parquet compresses inside")
    return fmt


def id_column(columns: list[str], given: str | None = None) -> str:
    """The column of `columns` that holds the ids: `given` (exactly, else the one column equal to
    it but for case), else the first of ID_COLUMNS, else the first with a URL_HINTS name.
    NoIdColumn, listing the columns, when there is none."""
    listed = ", ".join(repr(c) for c in columns) or "none"
    if given is not None:
        if given in columns:
            return given
        same = [c for c in columns if c.lower() == given.lower()]
        if len(same) == 1:
            return same[0]
        raise NoIdColumn(f"no column {given!r} in the file; its columns are {listed}", columns)
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(c.lower(), c)
    for name in ID_COLUMNS:
        if name in lower:
            return lower[name]
    for c in columns:
        if any(h in c.lower() for h in URL_HINTS):
            return c
    names = ", ".join(ID_COLUMNS)
    raise NoIdColumn(
        f"no YouTube id column found (by name: {names}, or a url/link column); the file's "
        f"columns are {listed}; name one with --column",
        columns,
    )


def check_dataset(name: object) -> str:
    """A dataset name as given: a non-blank string of printable characters, at most
    MAX_DATASET_CHARS long (stored as data, never part of SQL); IdsError else."""
    if not isinstance(name, str) or not name.strip():
        raise IdsError(f"dataset name {name!r}: give a non-empty name")
    if len(name) > MAX_DATASET_CHARS:
        raise IdsError(f"dataset name of {len(name)} characters; at most {MAX_DATASET_CHARS}")
    if not name.isprintable():
        raise IdsError(f"dataset name {name!r}: control characters are not allowed")
    return name


def quote_identifier(name: str) -> str:
    """`name` as a DuckDB identifier: in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def json_pointer(key: str) -> str:
    """The JSON pointer (RFC 6901) of a top-level key: "/" + key, ~ and / escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def id_expression(value_sql: str) -> str:
    """SQL: the YouTube id of a value, as `youtube_id` finds it; NULL when it holds none."""
    v = f"CAST({value_sql} AS VARCHAR)"
    return (
        f"coalesce(nullif(regexp_extract({v}, {_literal(BARE_PATTERN)}, 1), ''), "
        f"nullif(regexp_extract({v}, {_literal(URL_PATTERN)}, 1), ''))"
    )


_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def _size_bytes(text: str) -> int:
    """Bytes of a DuckDB size setting such as "22.8 MiB" or "24MB"."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise IdsError(f"memory size {text!r}: expected e.g. 24MB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _bucket(column_sql: str, level: int = 0) -> str:
    """SQL: the spool bucket of a value at a split level (8 bits of its hash a level)."""
    shift = f" // {BUCKETS**level}" if level else ""
    return f"CAST(hash({column_sql}){shift} % {BUCKETS} AS INTEGER)"


_TEXT_OPTIONS = f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {MAX_LINE_BYTES}"


def _reader(fmt: str, rejects: bool = False) -> str:
    """SQL: the table function that reads a file of `fmt` from the parameter $path ($delim: tsv,
    txt, jsonl). CSV-like files are read as text with small buffers, lines that do not split
    into the header's fields (or are longer than MAX_LINE_BYTES) skipped, and recorded in
    DuckDB's reject tables when `rejects`; text lines are read whole, blank ones dropped."""
    keep = ", store_rejects = true" if rejects else ""
    if fmt in ("csv", "tsv"):
        delim = ", delim = $delim" if fmt == "tsv" else ""
        return (
            f"read_csv($path, header = true, all_varchar = true, ignore_errors = true, "
            f"{_TEXT_OPTIONS}{delim}{keep})"
        )
    if fmt in ("txt", "jsonl"):
        return (
            f"(SELECT {_LINE} FROM read_csv($path, header = false, columns = "
            f"{{{_literal(_LINE)}: 'VARCHAR'}}, delim = $delim, quote = '', escape = '', "
            f"ignore_errors = true, {_TEXT_OPTIONS}{keep}) WHERE trim({_LINE}) <> '')"
        )
    if fmt == "parquet":
        return "read_parquet($path)"
    raise IdsError(f"unknown format {fmt!r}")


def _readable(src: Path, folder: Path) -> str:
    """The path DuckDB is given for `src`: itself, or, when it holds characters DuckDB reads
    as a glob (* ? [ {), a link to it in the scratch folder under a plain name."""
    if not any(c in str(src) for c in "*?[{"):
        return str(src)
    link = folder / ("input" + "".join(s.lower() for s in src.suffixes[-2:]))
    link.symlink_to(src.resolve())
    return str(link)


def _spool_reader(param: str) -> str:
    """SQL: the ids of the spool files in the list parameter `param`."""
    return (
        f"read_csv(${param}, header = false, columns = {{'id': 'VARCHAR'}}, delim = $delim, "
        f"quote = '', escape = '', {_TEXT_OPTIONS})"
    )


def _params(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB refuses unused ones)."""
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def _chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class _Spool:
    """A set of ids split into BUCKETS text files (one id a line) by the bucket DuckDB gave each
    (`_bucket` at `level`), so that it can be handled a group of buckets at a time."""

    def __init__(self, folder: Path, name: str, level: int = 0) -> None:
        self.folder, self.name, self.level = folder, name, level
        self.counts = [0] * BUCKETS
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, bucket: int) -> Path:
        return self.folder / f"{self.name}-{bucket:03d}.txt"

    @property
    def total(self) -> int:
        return sum(self.counts)

    def feed(self, result: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """Write the (bucket, id) rows of a DuckDB result (streamed); returns the rows read and
        how many had no id (NULL)."""
        rows = missing = 0
        while batch := result.fetchmany(FETCH_ROWS):
            rows += len(batch)
            lines: list[list[str]] = [[] for _ in range(BUCKETS)]
            for bucket, vid in batch:
                if vid is None:
                    missing += 1
                else:
                    lines[bucket].append(vid)
            for bucket, ids in enumerate(lines):
                if ids:
                    self.counts[bucket] += len(ids)
                    ids.append("")
                    with self.path(bucket).open("a", encoding="ascii", newline="\n") as f:
                        f.write("\n".join(ids))
        return rows, missing

    def files(self, lo: int, hi: int) -> list[str]:
        return [str(self.path(b)) for b in range(lo, hi) if self.counts[b]]

    def split(self, bucket: int, con: duckdb.DuckDBPyConnection) -> _Spool:
        """The ids of one bucket as a spool of the next level (the bucket's file is removed)."""
        sub = _Spool(self.folder / f"{self.name}-{bucket:03d}", self.name, self.level + 1)
        if self.counts[bucket]:
            sql = f"SELECT {_bucket('id', sub.level)}, id FROM {_spool_reader('f')}"
            sub.feed(con.execute(sql, {"f": [str(self.path(bucket))], "delim": _SEP}))
            self.path(bucket).unlink()
        return sub


def _splits(lo: int, hi: int, *spools: _Spool) -> bool:
    """Whether the group [lo, hi) is one bucket too large for a statement that can be split."""
    size = sum(s.counts[b] for s in spools for b in range(lo, hi))
    return hi - lo == 1 and size > GROUP_ROWS and spools[0].level < MAX_LEVEL


def _groups(*spools: _Spool | None) -> list[tuple[int, int]]:
    """Consecutive bucket ranges [lo, hi) holding at most GROUP_ROWS ids of all spools together
    (one bucket over it stands alone)."""
    sizes = [sum(s.counts[b] for s in spools if s is not None) for b in range(BUCKETS)]
    groups, lo, size = [], 0, 0
    for b, n in enumerate(sizes):
        if b > lo and size + n > GROUP_ROWS:
            groups.append((lo, b))
            lo, size = b, 0
        size += n
    groups.append((lo, BUCKETS))
    return groups


class IdDatabase:
    """One DuckDB file of (YouTube id, dataset) pairs and the imports that filled it.

    `IdDatabase(path)` or `IdDatabase.open(path)` opens the file, creating it (and its folder)
    when missing; `read_only=True` opens an existing one without taking the writer's lock
    (DuckDB: one writing process, or any number of reading ones). A context manager; `close()`.
    Scratch files (spools, DuckDB's spill) go to `config.temp_dir`, else beside the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: IdsConfig | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self.config = config or IdsConfig()
        self.config.validate()
        self.path = Path(path).expanduser()
        self.read_only = read_only
        if read_only and not self.path.is_file():
            raise FileNotFoundError(2, "no such id database", str(self.path))
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {
            "memory_limit": self.config.memory_limit,
            "preserve_insertion_order": False,  # inserts need not keep the file's order
            "autoinstall_known_extensions": False,  # nothing fetched or loaded on demand
            "autoload_known_extensions": False,
        }
        if self.config.threads:
            settings["threads"] = self.config.threads
        if self.config.temp_dir:
            settings["temp_directory"] = self.config.temp_dir
        self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(
            str(self.path), read_only=read_only, config=settings
        )
        try:
            self._con.execute("SET enable_progress_bar = false")
            if not read_only:
                for statement in _SCHEMA:
                    self._con.execute(statement)
            self._check_schema()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        config: IdsConfig | None = None,
        *,
        read_only: bool = False,
    ) -> IdDatabase:
        """The database at `path` (created when missing, unless read_only)."""
        return cls(path, config, read_only=read_only)

    def __enter__(self) -> IdDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (a second close does nothing)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __repr__(self) -> str:
        return f"IdDatabase({str(self.path)!r})"

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (for queries of your own over the tables ids and imports)."""
        if self._con is None:
            raise IdsError(f"{self.path}: the id database is closed")
        return self._con

    def _check_schema(self) -> None:
        rows = self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'ids' ORDER BY column_index"
        ).fetchall()
        if [r[0] for r in rows] != _IDS_COLUMNS:
            raise IdsError(f"{self.path}: not an id database (no table ids(id, dataset))")

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A scratch folder for spools (removed afterwards, whatever happens)."""
        where = Path(self.config.temp_dir) if self.config.temp_dir else self.path.parent
        where.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.spool-", dir=where))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- writing ----------------------------------------------------------------------------

    def import_file(
        self, path: str | os.PathLike[str], dataset: str, column: str | None = None
    ) -> ImportStats:
        """Add the YouTube ids of a file to `dataset`.

        Formats by suffix: .csv, .tsv (a header row), .parquet, .jsonl / .ndjson / .json (JSON
        lines, e.g. an InternVid release file: YoutubeID), .txt (an id or URL a line); .gz / .zst
        read through. The column (jsonl: the top-level key) is `column` or found by name
        (`id_column`); a value is an id, or a YouTube URL whose id is taken. Other values, empty
        ones and unparseable lines count as malformed. Importing the same file again adds
        nothing. Raises FileNotFoundError, IdsError (format, dataset name), NoIdColumn (lists
        the columns); duckdb.Error on a file DuckDB cannot read at all.
        """
        t0 = time.perf_counter()
        dataset = check_dataset(dataset)
        src = Path(path).expanduser()
        if not src.is_file():
            raise FileNotFoundError(2, "no such file", str(src))
        fmt = file_format(src)
        with self._scratch() as folder:
            new = _Spool(folder / "new", "new")
            if src.stat().st_size == 0:  # no rows, no columns: nothing to find
                col, rows, malformed = column or "", 0, 0
            else:
                col, rows, malformed = self._spool_file(src, fmt, column, folder, new)
            con = self.con
            con.begin()
            try:
                added = self._merge(new, dataset, folder)
                now = datetime.now(UTC)
                stats = ImportStats(
                    dataset=dataset,
                    source=str(src.resolve()),
                    format=fmt,
                    column=col,
                    rows=rows,
                    added=added,
                    malformed=malformed,
                    seconds=time.perf_counter() - t0,
                    imported_at=now,
                )
                con.execute(
                    "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [stats.dataset, stats.source, stats.format, stats.column, stats.rows,
                     stats.added, stats.malformed, stats.seconds, now.replace(tzinfo=None)],
                )  # fmt: skip
                con.commit()
            except BaseException:
                con.rollback()
                raise
        log.debug(
            "%s -> %s: %s rows, %s new ids, %s malformed (column %s, %.1f s)",
            src, dataset, f"{stats.rows:,}", f"{stats.added:,}", f"{stats.malformed:,}", col,
            stats.seconds,
        )  # fmt: skip
        return stats

    def _spool_file(
        self, src: Path, fmt: str, column: str | None, folder: Path, new: _Spool
    ) -> tuple[str, int, int]:
        """Read a file's ids into `new`: returns the column, the rows read, the malformed."""
        values = {"path": _readable(src, folder), "delim": "\t" if fmt == "tsv" else _SEP}
        if fmt == "txt":
            if column not in (None, _LINE):
                raise NoIdColumn(f"{src}: a .txt list has no columns (one id or URL a line)", [])
            col, value = _LINE, _LINE
        elif fmt == "jsonl":
            col = id_column(self._json_keys(src, values), column)
            values["key"] = json_pointer(col)
            value = f"try(json_extract_string({_LINE}, $key))"
        else:
            col = id_column(self._columns(_reader(fmt), values), column)
            value = quote_identifier(col)
        sql = (
            f"SELECT {_bucket('vid')}, vid "
            f"FROM (SELECT {id_expression(value)} AS vid FROM {_reader(fmt, rejects=True)})"
        )
        before = self._reject_scan()
        with self._parquet_memory(fmt, values, col):
            rows, malformed = new.feed(self.con.execute(sql, _params(sql, values)))
        if fmt != "parquet":
            rejected = self._rejected_since(before)
            rows, malformed = rows + rejected, malformed + rejected
        return col, rows, malformed

    @contextlib.contextmanager
    def _parquet_memory(self, fmt: str, values: dict[str, Any], column: str) -> Iterator[None]:
        """While a Parquet file is read: a memory_limit that holds its largest compressed chunk
        of the id column on every thread (a row group is read whole), when the configured one
        does not; the configured one again afterwards."""
        if fmt != "parquet":
            yield
            return
        (chunk,) = self.con.execute(
            "SELECT coalesce(max(total_compressed_size), 0) FROM parquet_metadata($path) "
            "WHERE path_in_schema = $col",
            {"path": values["path"], "col": column},
        ).fetchall()[0]
        threads = int(self.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        needed = threads * int(chunk) + PARQUET_SLACK
        limit = _size_bytes(
            self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        )
        if needed <= limit:
            yield
            return
        log.info(
            "%s: row groups of %.0f MB in column %s; memory_limit %.0f MB while reading it",
            values["path"], chunk / 1e6, column, needed / 1e6,
        )  # fmt: skip
        self.con.execute("SET memory_limit = $m", {"m": f"{needed}B"})
        try:
            yield
        finally:
            self.con.execute("SET memory_limit = $m", {"m": self.config.memory_limit})

    def _columns(self, reader: str, values: dict[str, Any]) -> list[str]:
        sql = f"DESCRIBE SELECT * FROM {reader}"
        return [r[0] for r in self.con.execute(sql, _params(sql, values)).fetchall()]

    def _json_keys(self, src: Path, values: dict[str, Any]) -> list[str]:
        """The top-level keys of the first JSON_SAMPLE_LINES lines of a jsonl file, in order of
        first appearance. A JSON array (not lines) is refused."""
        sql = f"SELECT {_LINE} FROM {_reader('jsonl')} LIMIT {JSON_SAMPLE_LINES}"  # the sample's lines, then their keys
        keys_sql = (
            "SELECT k FROM (SELECT row_number() OVER () AS i, "
            f"unnest(json_keys(try(CAST({_LINE} AS JSON)))) AS k FROM ({sql})) "
            "GROUP BY k ORDER BY min(i), k"
        )
        keys = [r[0] for r in self.con.execute(keys_sql, _params(keys_sql, values)).fetchall()]
        if not keys:
            first = self.con.execute(
                f"SELECT {_LINE} FROM {_reader('jsonl')} LIMIT 1", _params(sql, values)
            ).fetchall()
            if first and first[0][0].lstrip().startswith("["):
                raise IdsError(
                    f"{src}: a JSON array, not JSON lines; convert it first, e.g. "
                    f"jq -c '.[]' {src.name} > {src.stem}.jsonl"
                )
        return keys

    def _reject_scan(self) -> int:
        """The last scan id of DuckDB's reject tables (0 before the first)."""
        try:
            (last,) = self.con.execute(
                "SELECT coalesce(max(scan_id), 0) FROM reject_scans"
            ).fetchall()[0]
        except duckdb.CatalogException:
            return 0
        return int(last)

    def _rejected_since(self, scan: int) -> int:
        """Lines the scans after `scan` skipped (one count a line, whatever its errors)."""
        try:
            (n,) = self.con.execute(
                "SELECT count(DISTINCT (scan_id, file_id, line)) FROM reject_errors "
                "WHERE scan_id > ?",
                [scan],
            ).fetchall()[0]
        except duckdb.CatalogException:
            return 0
        return int(n)

    def _merge(self, new: _Spool, dataset: str, folder: Path) -> int:
        """Insert the spooled ids the dataset does not hold yet (inside the caller's
        transaction); returns how many. Ids that fit one statement are anti-joined with the
        dataset in the table; more are merged group by group with the dataset's ids spooled
        into the same buckets."""
        if new.total == 0:
            return 0
        held = self._count(dataset)
        if held and new.total <= GROUP_ROWS:
            sql = (
                "INSERT INTO ids (id, dataset) SELECT n.id, $dataset FROM "
                f"(SELECT DISTINCT id FROM {_spool_reader('new')}) n "
                "ANTI JOIN (SELECT id FROM ids WHERE dataset = $dataset) o ON n.id = o.id"
            )
            values = {"new": new.files(0, BUCKETS), "dataset": dataset, "delim": _SEP}
            return int(self.con.execute(sql, values).fetchall()[0][0])
        old = None
        if held:
            old = _Spool(folder / "held", "held")
            sql = f"SELECT {_bucket('id')}, id FROM ids WHERE dataset = $dataset"
            old.feed(self.con.execute(sql, {"dataset": dataset}))
        return self._merge_spools(new, old, dataset)

    def _merge_spools(self, new: _Spool, old: _Spool | None, dataset: str) -> int:
        added = 0
        for lo, hi in _groups(new, old):
            if not new.files(lo, hi):
                continue
            if _splits(lo, hi, *(s for s in (new, old) if s is not None)):
                sub_old = old.split(lo, self.con) if old is not None else None
                added += self._merge_spools(new.split(lo, self.con), sub_old, dataset)
                continue
            values: dict[str, Any] = {"new": new.files(lo, hi), "dataset": dataset, "delim": _SEP}
            sql = (
                "INSERT INTO ids (id, dataset) SELECT n.id, $dataset FROM "
                f"(SELECT DISTINCT id FROM {_spool_reader('new')}) n"
            )
            if old is not None and old.files(lo, hi):
                values["old"] = old.files(lo, hi)
                sql += f" ANTI JOIN {_spool_reader('old')} o ON n.id = o.id"
            added += int(self.con.execute(sql, values).fetchall()[0][0])
        return added

    def add(self, ids: Iterable[str], dataset: str) -> int:
        """Add ids to `dataset`; returns the new (id, dataset) pairs. Strings that are no YouTube
        id (`is_youtube_id`: 11 characters of A-Z a-z 0-9 _ -, nothing around them) are
        malformed and skipped, as in import_file. Any number of ids, in bounded memory (spooled
        as import_file's); all or nothing (one transaction)."""
        dataset = check_dataset(dataset)
        sql = f"SELECT {_bucket('id')}, id FROM (SELECT unnest($ids) AS id)"
        skipped = 0
        with self._scratch() as folder:
            new = _Spool(folder / "new", "new")
            for chunk in _chunks(ids):
                good = [i for i in chunk if is_youtube_id(i)]
                skipped += len(chunk) - len(good)
                if good:
                    new.feed(self.con.execute(sql, {"ids": good}))
            con = self.con
            con.begin()
            try:
                added = self._merge(new, dataset, folder)
                con.commit()
            except BaseException:
                con.rollback()
                raise
        if skipped:
            log.debug("add to %s: skipped %d strings that are no YouTube id", dataset, skipped)
        return added

    # -- reading ----------------------------------------------------------------------------

    def _count(self, dataset: str) -> int:
        sql = "SELECT count(*) FROM ids WHERE dataset = ?"
        return int(self.con.execute(sql, [dataset]).fetchall()[0][0])

    def _known(self, names: Iterable[str]) -> dict[str, int]:
        """The datasets(), after checking that every one of `names` is among them."""
        known = self.datasets()
        for name in names:
            if name not in known:
                raise UnknownDataset(name, known)
        return known

    def contains(self, ids: Iterable[str], datasets: Iterable[str] | None = None) -> set[str]:
        """The ids of `ids` the database holds, in any dataset or in one of `datasets` (each must
        be known: UnknownDataset else). Strings that are no id are simply not held."""
        where, params = "", {}
        if datasets is not None:
            wanted = list(datasets)
            self._known(wanted)
            where, params = " WHERE list_contains($datasets, dataset)", {"datasets": wanted}
        held: set[str] = set()
        sql = (
            "SELECT DISTINCT p.id FROM (SELECT unnest($ids) AS id) p "
            f"SEMI JOIN (SELECT id FROM ids{where}) i ON p.id = i.id"
        )
        for chunk in _chunks(ids):
            strings = [i for i in chunk if isinstance(i, str)]
            if strings:
                rows = self.con.execute(sql, {**params, "ids": strings}).fetchall()
                held.update(r[0] for r in rows)
        return held

    def datasets(self) -> dict[str, int]:
        """Dataset -> ids it holds, by name; a dataset imported without any id counts 0."""
        counts = dict(
            self.con.execute("SELECT dataset, count(*) FROM ids GROUP BY dataset").fetchall()
        )
        for (name,) in self.con.execute("SELECT DISTINCT dataset FROM imports").fetchall():
            counts.setdefault(name, 0)
        return {k: int(counts[k]) for k in sorted(counts)}

    def imports(self) -> list[ImportStats]:
        """Every import, oldest first."""
        rows = self.con.execute(
            "SELECT dataset, source, format, column_name, rows_read, ids_added, malformed, "
            "seconds, imported_at FROM imports ORDER BY imported_at, rowid"
        ).fetchall()
        return [ImportStats(*r[:8], imported_at=r[8].replace(tzinfo=UTC)) for r in rows]

    def overlap(self, a: str, b: str) -> Overlap:
        """How many ids datasets a and b share, and what share of each the other holds."""
        known = self._known((a, b))
        in_a, in_b = known[a], known[b]
        both = in_a if a == b else sum(n for n, _ in self._shared(a, b, in_a, in_b, count=True))
        return Overlap(
            a=a,
            b=b,
            in_a=in_a,
            in_b=in_b,
            in_both=both,
            a_in_b=both / in_a if in_a else 0.0,
            b_in_a=both / in_b if in_b else 0.0,
        )

    def export_overlap(self, a: str, b: str, path: str | os.PathLike[str]) -> int:
        """Write the ids a and b share to a Parquet file (one column `id`: sorted, or, when
        both datasets are large, sorted within each bucket group), under a temp name then
        renamed; returns how many. Streamed: one bucket group in memory at a time."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        known = self._known((a, b))
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        schema = pa.schema([("id", pa.string())])
        written = 0
        try:
            with pq.ParquetWriter(tmp, schema) as writer:
                for _, table in self._shared(a, b, known[a], known[b], count=False):
                    writer.write_table(table.cast(schema))
                    written += table.num_rows
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return written

    def _shared(
        self, a: str, b: str, in_a: int, in_b: int, count: bool
    ) -> Iterator[tuple[int, Any]]:
        """The ids a and b share, a statement at a time: (count, None) when `count`, else
        (rows, an Arrow table sorted by id). When the smaller side has at most GROUP_ROWS ids
        it is hashed and the larger one scanned, in one statement; else both are spooled and
        joined bucket group by bucket group."""
        small, big = (a, b) if in_a <= in_b else (b, a)
        head = "SELECT count(*)" if count else "SELECT g.id"
        tail = "" if count else " ORDER BY g.id"
        if min(in_a, in_b) <= GROUP_ROWS:
            sql = (
                f"{head} FROM (SELECT id FROM ids WHERE dataset = $big) g "
                f"SEMI JOIN (SELECT id FROM ids WHERE dataset = $small) s ON g.id = s.id{tail}"
            )
            yield self._run_shared(sql, {"big": big, "small": small}, count)
            return
        with self._scratch() as folder:
            spools = []
            for name in (small, big):
                spool = _Spool(folder / f"side{len(spools)}", f"side{len(spools)}")
                sql = f"SELECT {_bucket('id')}, id FROM ids WHERE dataset = $d"
                spool.feed(self.con.execute(sql, {"d": name}))
                spools.append(spool)
            yield from self._shared_spools(spools[0], spools[1], head, tail, count)

    def _shared_spools(
        self, s: _Spool, g: _Spool, head: str, tail: str, count: bool
    ) -> Iterator[tuple[int, Any]]:
        for lo, hi in _groups(s, g):
            s_files, g_files = s.files(lo, hi), g.files(lo, hi)
            if not s_files or not g_files:
                continue
            if _splits(lo, hi, s, g):
                sub_s, sub_g = s.split(lo, self.con), g.split(lo, self.con)
                yield from self._shared_spools(sub_s, sub_g, head, tail, count)
                continue
            sql = (
                f"{head} FROM {_spool_reader('g')} g "
                f"SEMI JOIN {_spool_reader('s')} s ON g.id = s.id{tail}"
            )
            yield self._run_shared(sql, {"g": g_files, "s": s_files, "delim": _SEP}, count)

    def _run_shared(self, sql: str, params: dict[str, Any], count: bool) -> tuple[int, Any]:
        if count:
            return int(self.con.execute(sql, params).fetchall()[0][0]), None
        table = self.con.sql(sql, params=params).to_arrow_table()
        return table.num_rows, table
