"""Input readers: folders, globs, files, URL/path lists (txt, csv, jsonl) and InternVid metadata."""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from urllib.request import url2pathname

from internvid.config import InputConfig
from internvid.engine.sample import Failure, Sample
from internvid.io.manifest import Manifest, build_manifest
from internvid.io.release import bounded_lines
from internvid.io.storage import StorageError, StorageUnavailable, is_remote, iter_remote_files
from internvid.records import Video, is_safe_id, make_video_id
from internvid.stages.download import is_url

log = logging.getLogger(__name__)

LIST_KEYS = ("url", "path", "source", "video", "file")  # columns a list may name its entries by
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")  # an entry that is a URL of some scheme


class UnsupportedSource(ValueError):
    """An entry with a URL scheme other than http(s) and file:// on this host."""


def local_source(entry: str) -> str:
    """`entry` as the run reads it: http(s) URLs and plain paths as they are, a file:// URL of
    this host as its local path; raises UnsupportedSource for any other scheme."""
    m = _SCHEME.match(entry)
    if m is None or is_url(entry):
        return entry
    if m.group(1).lower() == "file":
        u = urlparse(entry)
        if u.netloc not in ("", "localhost"):
            raise UnsupportedSource(f"file URL of another host ({u.netloc}): {entry}")
        return url2pathname(u.path)
    raise UnsupportedSource(
        f"unsupported scheme {m.group(1)!r}: inputs are local paths, file:// or http(s) URLs"
    )


@dataclass
class Inputs:
    """What the readers found: samples in a stable order, and input lines that failed."""

    samples: list[Sample] = field(default_factory=list)  # one per distinct source video
    failures: list[Failure] = field(default_factory=list)  # unreadable inputs, malformed rows
    # the videos of InternVid metadata inputs, after `samples`, read a shard at a time
    manifest: Manifest | None = None

    @property
    def videos(self) -> int:
        return len(self.samples) + (self.manifest.videos if self.manifest else 0)

    def shards(self, per_shard: int) -> ShardList:
        """The work shards: `samples` cut every `per_shard`, then the manifest's shards."""
        return ShardList(self.samples, per_shard, self.manifest)

    def iter_videos(self) -> Iterator[Video]:
        """Every input video: the samples', then the manifest's (streamed)."""
        for s in self.samples:
            yield s.video
        if self.manifest is not None:
            yield from self.manifest.iter_videos()


class ShardList(Sequence):
    """Work shards as a sequence an executor indexes: in-memory samples cut into shards, then
    the manifest's shards, each read from disk when asked for."""

    def __init__(self, samples: list[Sample], per_shard: int, manifest: Manifest | None):
        self.chunks = [samples[i : i + per_shard] for i in range(0, len(samples), per_shard)]
        self.manifest = manifest
        if manifest is not None and manifest.per_shard != per_shard:
            raise ValueError(
                f"the manifest has {manifest.per_shard} videos a shard, not {per_shard}"
            )

    def __len__(self) -> int:
        return len(self.chunks) + (len(self.manifest) if self.manifest else 0)

    def __getitem__(self, k):  # an int: one shard (a slice is not needed by the executors)
        if not 0 <= k < len(self):
            raise IndexError(k)
        if k < len(self.chunks):
            return self.chunks[k]
        return self.manifest.shard(k - len(self.chunks))


def youtube_id(url: str) -> str | None:
    """The 11-character id of a YouTube watch/shorts/youtu.be URL, else None."""
    u = urlparse(url)
    host = (u.hostname or "").lower()
    cand = None
    if host.endswith("youtu.be"):
        cand = u.path.strip("/").split("/")[0]
    elif host.endswith("youtube.com"):
        if u.path == "/watch":
            cand = (parse_qs(u.query).get("v") or [None])[0]
        elif u.path.startswith(("/shorts/", "/embed/", "/live/")):
            cand = u.path.split("/")[2]
    return cand if cand and is_safe_id(cand) and len(cand) == 11 else None


def _id_for(source: str) -> str:
    if is_remote(source):
        return make_video_id(Path(urlparse(source).path).stem or "video")
    if is_url(source):
        return youtube_id(source) or make_video_id(Path(urlparse(source).path).stem or "video")
    return make_video_id(Path(source).stem)


class _Collector:
    def __init__(self, cfg: InputConfig):
        self.cfg = cfg
        self.out = Inputs()
        self.by_source: dict[str, Sample] = {}
        self.release_files: list[Path] = []  # InternVid metadata files, read last

    def fail(self, item: str, reason: str, message: str, source: str = "") -> None:
        self.out.failures.append(self.failure(item, reason, message, source))

    def add(
        self, source: str, origin: str, vid: str | None = None, meta: dict | None = None
    ) -> Sample | None:
        # one sample per file however it was named (relative, absolute, through "..", a link)
        remote = is_url(source) or is_remote(source)
        key = source if remote else os.path.realpath(source)
        if key in self.by_source:
            return self.by_source[key]
        if vid is not None and not is_safe_id(vid):
            self.fail(vid, "unsafe_id", f"id {vid!r} may only hold A-Z a-z 0-9 _ -", source)
            return None
        video = Video(
            id=vid or _id_for(source),
            source=source,
            path=None if remote else source,
            meta={"origin": origin, **(meta or {})},
        )
        sample = Sample(video=video)
        self.by_source[key] = sample
        self.out.samples.append(sample)
        return sample

    # --- one reader per kind of input ---

    def read(self, entry: str) -> None:
        if is_remote(entry):
            self.read_remote(entry)
            return
        try:
            entry = local_source(entry)
        except UnsupportedSource as e:
            self.fail(entry, "unsupported_scheme", str(e), entry)
            return
        if "\x00" in entry:
            self.fail(repr(entry), "malformed_input", "a NUL byte in a path", repr(entry))
            return
        if is_url(entry):
            self.add(entry, "url")
            return
        p = Path(entry)
        if p.is_dir():
            exts = {e.lower() for e in self.cfg.extensions}
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
            if not files:
                log.warning("no video files (%s) under %s", ", ".join(sorted(exts)), p)
            for f in files:
                self.add(str(f), "local")
        elif p.is_file():
            name = p.name.lower()
            if name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
                if _is_release_file(p, self.cfg.max_line_bytes):
                    self.read_metadata(p)
                else:
                    self.read_jsonl_list(p)
            elif name.endswith(".csv"):
                self.read_csv_list(p)
            elif name.endswith((".txt", ".list")):
                self.read_text_list(p)
            else:
                self.add(str(p), "local")
        elif glob.has_magic(entry):
            matches = sorted(glob.glob(entry, recursive=True))
            if not matches:
                self.fail(entry, "missing_file", "the pattern matches no file", entry)
            for m in matches:
                if Path(m).is_file():
                    self.add(m, "local")
        else:
            self.fail(entry, "missing_file", f"no such file or folder: {entry}", entry)

    def read_remote(self, url: str) -> None:
        """Object storage: a prefix (folder), a glob or one object; videos are read from there
        by the download stage."""
        exts = {e.lower() for e in self.cfg.extensions}
        try:
            found = list(iter_remote_files(url, exts))
        except StorageError as e:  # a scheme fsspec has no backend for
            self.fail(url, "unsupported_scheme", str(e)[:500], url)
            return
        except StorageUnavailable as e:  # no credentials, an unreachable endpoint
            self.fail(url, "storage_error", str(e)[:500], url)
            return
        except (OSError, ValueError) as e:  # no such bucket or prefix, access denied
            self.fail(url, "missing_file", f"{type(e).__name__}: {e}"[:500], url)
            return
        if not found:
            self.fail(url, "missing_file", "no video objects under this URL", url)
        for source in found:
            self.add(source, "remote")

    def _list_entry(
        self, value: str, base: Path, where: str, vid: str | None = None, meta: dict | None = None
    ) -> None:
        value = value.strip()
        if not value:
            self.fail(where, "malformed_input", "empty entry")
            return
        try:
            value = local_source(value)
        except UnsupportedSource as e:
            self.fail(where, "unsupported_scheme", str(e), value[:200])
            return
        if "\x00" in value:
            self.fail(where, "malformed_input", "a NUL byte in a path", repr(value[:200]))
            return
        if is_url(value):
            self.add(value, "url", vid, meta)
            return
        path = Path(value)
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            self.fail(where, "missing_file", f"no such file: {path}", str(path))
            return
        self.add(str(path), "local", vid, meta)

    def lines(self, p: Path, f: io.BufferedIOBase) -> Iterator[tuple[int, str]]:
        """(line number, text) of a list file's lines, each read bounded (cfg.max_line_bytes);
        an overlong or non-UTF-8 line becomes one failure row and is left out."""
        limit = self.cfg.max_line_bytes
        for n, raw in enumerate(bounded_lines(f, limit), 1):
            where = f"{p.name}:{n}"
            if raw is None:
                self.fail(where, "line_too_long", f"line longer than {limit} bytes", str(p))
                continue
            try:
                yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                self.fail(where, "malformed_input", f"not UTF-8: {e}", str(p))

    def read_text_list(self, p: Path) -> None:
        with open(p, "rb") as f:
            for n, line in self.lines(p, f):
                line = line.strip()
                if line and not line.startswith("#"):
                    self._list_entry(line, p.parent, f"{p.name}:{n}")

    def read_csv_list(self, p: Path) -> None:
        with open(p, "rb") as f:
            # overlong / undecodable lines are failure rows already: the reader never sees them
            text = (line if line.endswith("\n") else line + "\n" for _, line in self.lines(p, f))
            reader = csv.DictReader(_csv_lines(text, self.cfg.max_line_bytes))
            key = next((k for k in LIST_KEYS if k in (reader.fieldnames or [])), None)
            if key is None:
                self.fail(
                    p.name,
                    "malformed_input",
                    f"a CSV list needs one of the columns {LIST_KEYS}",
                    str(p),
                )
                return
            n = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # a field over the limit, a NUL byte...
                    self.fail(f"{p.name}:{reader.line_num}", "malformed_input", str(e), str(p))
                    continue
                n += 1
                meta = {k: v for k, v in row.items() if k not in (key, "id") and k is not None}
                self._list_entry(
                    row.get(key) or "", p.parent, f"{p.name}:{n}", row.get("id") or None, meta
                )

    def read_jsonl_list(self, p: Path) -> None:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rb") as f:
            for n, line in self.lines(p, f):
                if not line.strip():
                    continue
                where = f"{p.name}:{n}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    self.fail(where, "malformed_input", f"invalid JSON: {e}", str(p))
                    continue
                key = next(
                    (k for k in LIST_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), str)),
                    None,
                )
                if key is None:
                    self.fail(
                        where,
                        "malformed_input",
                        f"a JSONL list row needs one of {LIST_KEYS}",
                        str(p),
                    )
                    continue
                vid = obj.get("id")
                meta = {k: v for k, v in obj.items() if k not in (key, "id")}
                self._list_entry(
                    obj[key], p.parent, where, str(vid) if vid is not None else None, meta
                )

    def read_metadata(self, p: Path) -> None:
        """InternVid release rows: their videos become a shard manifest (`build_manifest`),
        after the other inputs."""
        template = self.cfg.path_template
        if not template or ("{YoutubeID}" not in template and "{id}" not in template):
            raise ValueError(
                f"{p} is InternVid metadata: say where each row's video is with --path-template, "
                "e.g. '/data/youtube/{YoutubeID}.mp4' (local files) or "
                "'https://www.youtube.com/watch?v={YoutubeID}' (downloaded whole with yt-dlp)"
            )
        self.release_files.append(p)

    def source_of(self, vid: str) -> tuple[str | None, Failure | None, bool]:
        """A metadata video's source from the path template: (source, None, is a URL), or
        (None, its failure row, False) when there is none."""
        # the id is a safe id (checked by the reader), so it cannot leave the template's folder
        template = self.cfg.path_template or ""
        source = template.replace("{YoutubeID}", vid).replace("{id}", vid)
        try:
            source = local_source(source)
        except UnsupportedSource as e:
            return None, self.failure(vid, "unsupported_scheme", str(e), source), False
        if is_url(source):
            return source, None, True
        if not Path(source).is_file():
            message = f"no local file for {vid}: {source}"
            return None, self.failure(vid, "missing_file", message, source), False
        return source, None, False

    def failure(self, item: str, reason: str, message: str, source: str) -> Failure:
        log.warning("input %s: %s: %s", item, reason, message)
        return Failure(item, "input", reason, message, source)


def _is_release_file(p: Path, max_line_bytes: int) -> bool:
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rb") as f:
        for line in bounded_lines(f, max_line_bytes):
            if line is not None and line.strip():  # an overlong line tells nothing: read past it
                try:
                    obj = json.loads(line.decode("utf-8", errors="replace"))
                except json.JSONDecodeError:
                    continue  # a malformed line (a truncated first row): the first good one tells
                return isinstance(obj, dict) and "YoutubeID" in obj
    return False


def _csv_lines(lines: Iterator[str], max_line_bytes: int) -> Iterator[str]:
    """The lines of a CSV list for csv.DictReader, its fields allowed up to the line limit."""
    csv.field_size_limit(max(csv.field_size_limit(), max_line_bytes))
    yield from lines


def read_inputs(
    entries: list[str], cfg: InputConfig, manifest_dir: Path | None = None, per_shard: int = 8
) -> Inputs:
    """Expand every input entry into samples (stable order, one per distinct source).

    InternVid metadata becomes a shard manifest in `manifest_dir` (`Inputs.manifest`, its
    videos after the other inputs', `per_shard` to a shard), so a metadata file of any size is
    never held in memory. Without `manifest_dir` (small inputs, tests) the manifest is built in
    a temporary folder and its videos join `samples`."""
    c = _Collector(cfg)
    for entry in entries:
        c.read(entry)
    samples = c.out.samples
    # the same id from different sources (two "intro.mp4" in different folders): salt with the source
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.video.id] = counts.get(s.video.id, 0) + 1
    for s in samples:
        if counts[s.video.id] > 1:
            s.video.id = make_video_id(s.video.id, salt=s.video.source)
    if cfg.limit is not None:
        c.out.samples = samples = samples[: cfg.limit]
    if not c.release_files:
        return c.out
    if manifest_dir is None:
        with tempfile.TemporaryDirectory(prefix="internvid-manifest-") as tmp:
            found = _read_release(c, samples, Path(tmp), per_shard)
            found.samples = [*found.samples, *(s for shard in found.manifest for s in shard)]
            found.manifest = None
            return found
    return _read_release(c, samples, manifest_dir, per_shard)


def _read_release(c: _Collector, samples: list[Sample], folder: Path, per_shard: int) -> Inputs:
    cfg = c.cfg
    limit = None if cfg.limit is None else max(0, cfg.limit - len(samples))
    manifest = build_manifest(
        c.release_files,
        folder,
        c.source_of,
        per_shard=per_shard,
        settings={
            "path_template": cfg.path_template,
            "max_line_bytes": cfg.max_line_bytes,
            "max_caption_chars": cfg.max_caption_chars,
        },
        limit=limit,
        max_line_bytes=cfg.max_line_bytes,
        max_caption_chars=cfg.max_caption_chars,
    )
    c.out.failures.extend(manifest.iter_failures())
    # another input named like a metadata video (an "abc.mp4" beside YoutubeID abc): salt it
    clash = manifest.ids_among([s.video.id for s in samples])
    for s in samples:
        if s.video.id in clash:
            s.video.id = make_video_id(s.video.id, salt=s.video.source)
    c.out.manifest = manifest
    return c.out
