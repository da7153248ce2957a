"""Build the action-query vocabulary: read sources, normalise, deduplicate with provenance, write.

Sources, in the order they are read (the first one to bring a phrase gives its display form):
the shipped label lists (`data/SOURCES.json`: Kinetics-400/600/700, UCF101, the ATUS activity
lexicon), Something-Something v2 templates from a user's `labels.json`, plain text files (one
phrase a line), verb-object phrases a language model extracts from a text corpus, and last
InternVid's released `queries.jsonl` (its Chinese `search_word` becomes `zh` of every query it
matches). `build_queries` merges phrases on `normalize.dedup_key`; every query keeps the list
names it came from, in order, and how often each one gave it.
"""

from __future__ import annotations

import json
import logging
import re
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from internvid.queries.normalize import camel_words, dedup_key, normalize

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"  # the shipped lists and SOURCES.json
RELEASED = "released"  # source name of InternVid's queries.jsonl
SSV2 = "ssv2"  # source name of Something-Something v2 templates
LLM = "llm"  # source name of the phrases a language model extracted
MAX_LINE_CHARS = 4096  # a longer input line is skipped (counted as dropped), never truncated

# ATUS lexicon examples carry the survey's own context: who the activity is for (hh: household
# member, nonhh: someone outside the household) and what it is part of. These are not part of
# what a video shows; InternVid's queries drop them ("organizing activities for child").
ATUS_QUALIFIERS = re.compile(
    r"\s*\((?:volunteer|voluteer|main job|other job|part of job|class for [^)]*|degree[^)]*|"
    r"personal int\.?|pers\. interest)\)",
    re.IGNORECASE,
)
ATUS_HOUSEHOLD = re.compile(r"\b(?:non-?hh|hh)\b\s*", re.IGNORECASE)

# The LLM extraction prompt, in one place (docs/queries.md shows it)
LLM_SYSTEM = "You list the actions that videos could show."
LLM_PROMPT = (
    "Texts follow, one per line.\n{texts}\n\n"
    "Write the short action phrases these texts describe: a verb with its object, 1 to 6 words "
    'each, such as "feeding ducks" or "play guitar". One phrase per line, lower case, no '
    "numbering, nothing else."
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u00b7>]+|\(?\d{1,3}\s*[.):]|\(?[a-z]\s*[.)])\s*")


@dataclass
class Source:
    """One list of raw phrases, in order, with what was skipped while reading it."""

    name: str  # provenance: a shipped list name, "released", "ssv2", "llm" or a file stem
    phrases: list[str]  # raw phrases (normalised when they are added)
    zh: list[str] | None = None  # Chinese of each phrase (the released file), else None
    dropped: int = 0  # lines read that gave no phrase (blank, comment, unreadable, too long)
    path: str = ""  # where it was read from


@dataclass
class Query:
    """One deduplicated query."""

    phrase: str  # the first display form seen, normalised
    key: str  # normalize.dedup_key: what its variants share
    sources: list[str] = field(default_factory=list)  # source names, in the order they came
    zh: str = ""  # Chinese search word from the released file ("" when unmatched)
    counts: dict[str, int] = field(default_factory=dict)  # per source: phrases read with this key

    def to_row(self) -> dict[str, Any]:
        return {
            "phrase": self.phrase,
            "key": self.key,
            "sources": list(self.sources),
            "zh": self.zh or None,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class SourceStats:
    """What one source added: phrases read, new keys, duplicates of earlier ones, lines dropped."""

    name: str
    read: int
    new: int
    duplicates: int
    dropped: int


@dataclass(frozen=True)
class Coverage:
    """How much of one source (the released list) the other sources bring too."""

    source: str  # the source measured
    rows: int  # its phrases read
    keys: int  # its distinct dedup keys
    covered_keys: int  # of those, keys another source has too
    covered_rows: int  # its phrases whose key another source has


@dataclass
class BuildResult:
    """What `build` made: the queries, per-source stats, the released list's coverage."""

    queries: list[Query]
    stats: list[SourceStats]
    coverage: Coverage | None  # None without the released file
    out: str  # the file written


# ------------------------------------------------------------------ the shipped lists


@cache
def shipped() -> dict[str, dict[str, Any]]:
    """SOURCES.json: list name -> {name, file, format, source_url, licence, count, notes}."""
    entries = json.loads((DATA_DIR / "SOURCES.json").read_text(encoding="utf-8"))["lists"]
    return {e["name"]: e for e in entries}


def list_names() -> tuple[str, ...]:
    return tuple(shipped())


def read_shipped(name: str) -> Source:
    """One shipped list as a Source (its format decides how a line becomes a phrase)."""
    lists = shipped()
    if name not in lists:
        raise ValueError(f"unknown query list {name!r}; shipped: {', '.join(lists)}")
    entry = lists[name]
    path = DATA_DIR / entry["file"]
    reader = _FORMATS[entry["format"]]
    return Source(name, reader(path.read_text(encoding="utf-8")), path=str(path))


def _lines(text: str) -> list[str]:
    return [s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")]


def _classind(text: str) -> list[str]:
    """UCF101 classInd.txt: "1 ApplyEyeMakeup" -> "Apply Eye Makeup"."""
    return [camel_words(line.split(maxsplit=1)[-1]) for line in _lines(text)]


def _atus(text: str) -> list[str]:
    """The ATUS lexicon: each activity title (not the n.e.c. catch-alls) and its examples,
    without the survey's qualifiers (ATUS_QUALIFIERS, hh/nonhh)."""
    out = []
    for line in _lines(text):
        _code, title, examples = [*line.split("\t"), "", ""][:3]
        phrases = [] if "n.e.c." in title else [title]
        phrases += [e for e in examples.split("|") if e.strip()]
        out += [atus_clean(p) for p in phrases]
    return [p for p in out if p]


def atus_clean(phrase: str) -> str:
    """An ATUS phrase without its survey context: "(volunteer)", "(main job)", "hh ", ..."""
    phrase = ATUS_HOUSEHOLD.sub("", ATUS_QUALIFIERS.sub("", phrase)).replace("w/", "with ")
    return " ".join(phrase.split())


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "lines": _lines,
    "classind": _classind,
    "atus": _atus,
}


# ------------------------------------------------------------------ user files


def _read_text_lines(path: str | Path) -> tuple[list[str], int]:
    """Non-blank lines of a UTF-8 text file (lines over MAX_LINE_CHARS skipped): (lines, dropped)."""
    lines, dropped = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            if len(s) > MAX_LINE_CHARS:
                dropped += 1
                continue
            lines.append(s)
    return lines, dropped


def read_extra(path: str | Path, name: str = "") -> Source:
    """A plain text file, one phrase a line ("#" comments and blank lines skipped); its
    provenance is the file stem unless `name` is given."""
    lines, dropped = _read_text_lines(path)
    phrases = [s for s in lines if not s.startswith("#")]
    return Source(name or Path(path).stem, phrases, dropped=dropped, path=str(path))


def read_released(path: str | Path) -> Source:
    """InternVid's queries.jsonl: `search_word_id` (English) and `search_word` (Chinese)."""
    phrases, zh, dropped = [], [], 0
    for line in _read_text_lines(path)[0]:
        try:
            row = json.loads(line)
            en, cn = row["search_word_id"], row.get("search_word") or ""
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            dropped += 1
            continue
        if not isinstance(en, str) or not isinstance(cn, str):
            dropped += 1
            continue
        phrases.append(en)
        zh.append(cn)
    return Source(RELEASED, phrases, zh=zh, dropped=dropped, path=str(path))


def read_ssv2(path: str | Path) -> Source:
    """Something-Something v2 templates from the user's files: labels.json (template -> class
    id, in id order), or train/validation.json (rows with "template": each template once)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        items = sorted(data.items(), key=lambda kv: _int_or(kv[1], len(data)))
        templates = [k for k, _ in items]
    elif isinstance(data, list):
        templates = [r.get("template", "") if isinstance(r, dict) else r for r in data]
    else:
        raise ValueError(f"{path}: expected SSv2 labels.json (an object) or a list of rows")
    seen: dict[str, None] = {}
    dropped = 0
    for t in templates:
        if isinstance(t, str) and t.strip():
            seen.setdefault(t.strip(), None)
        else:
            dropped += 1
    return Source(SSV2, list(seen), dropped=dropped, path=str(path))


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ------------------------------------------------------------------ LLM extraction


def read_corpus(path: str | Path, limit: int = 0) -> list[str]:
    """The texts of a corpus: lines of a text file, or the "caption"/"Caption"/"text" field of
    each row of a .jsonl file; the first `limit` (0: all)."""
    lines, _ = _read_text_lines(path)
    texts = lines
    if str(path).endswith(".jsonl"):
        texts = []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                t = next((row[k] for k in ("caption", "Caption", "text") if k in row), None)
                if isinstance(t, str) and t.strip():
                    texts.append(t.strip())
    return texts[:limit] if limit else texts


def llm_prompt(texts: Sequence[str]) -> str:
    """The user message asking for the action phrases of `texts`."""
    return LLM_PROMPT.format(texts="\n".join(" ".join(t.split()) for t in texts))


def parse_llm_reply(text: str, max_words: int = 6) -> list[str]:
    """The action phrases of a reply: one a line, bullets and numbering and quotes stripped,
    preambles ("Here are ...:") skipped, normalised, 1 to `max_words` words, each once."""
    out: dict[str, None] = {}
    for line in text.splitlines():
        s = _BULLET.sub("", line).strip().strip("\"'`").strip()
        if not s or s.endswith(":") or s.lower().startswith(("here are", "here is", "sure")):
            continue
        phrase = normalize(s)
        n = len(phrase.split())
        if 1 <= n <= max_words and any(c.isalpha() for c in phrase):
            out.setdefault(phrase, None)
    return list(out)


def extract_phrases(
    texts: Sequence[str],
    captioner: Any,
    texts_per_request: int = 8,
    max_words: int = 6,
    max_new_tokens: int = 0,
) -> tuple[list[str], int]:
    """Ask `captioner` (a caption.backend Captioner with a chat LM behind it) for the action
    phrases of `texts`, `texts_per_request` texts a request: (phrases in order, failed requests)."""
    from internvid.caption.backend import Request

    step = max(1, texts_per_request)
    requests = [
        Request(prompt=llm_prompt(texts[i : i + step]), system=LLM_SYSTEM,
                max_new_tokens=max_new_tokens)
        for i in range(0, len(texts), step)
    ]  # fmt: skip
    phrases: list[str] = []
    failed = 0
    for reply in captioner.generate(requests) if requests else []:
        if not reply.ok:
            failed += 1
            log.warning("LLM request failed: %s %s", reply.error, reply.message)
            continue
        phrases += parse_llm_reply(reply.text, max_words)
    return phrases, failed


def make_llm(cfg: Any) -> Any:
    """The Captioner of cfg.llm_model (QueriesConfig): found by the hub for hf/vllm, by name on
    the server for openai."""
    from internvid.caption.factory import make_captioner
    from internvid.hub import pick_device, pick_dtype, resolve_models

    if cfg.llm_backend == "openai":
        api = types.SimpleNamespace(
            api_base=cfg.api_base, api_key_env=cfg.api_key_env, concurrency=cfg.llm_batch_size,
            timeout_s=120.0, retries=3,
        )  # fmt: skip
        return make_captioner("openai", cfg.llm_model, cfg.llm_model, api=api,
                              max_new_tokens=cfg.llm_max_new_tokens)  # fmt: skip
    (found,) = resolve_models([cfg.llm_model], cfg.cache_dir, what="query extraction")
    device = pick_device(cfg.device)
    return make_captioner(
        cfg.llm_backend, cfg.llm_model, found.path, device=device,
        dtype=pick_dtype(cfg.dtype, device), batch_size=cfg.llm_batch_size,
        max_new_tokens=cfg.llm_max_new_tokens, cache_dir=cfg.cache_dir,
    )  # fmt: skip


def read_llm(cfg: Any, captioner: Any = None) -> Source:
    """The phrases the configured LLM extracts from cfg.llm_corpus (`captioner`: one made
    already, e.g. a test's fake)."""
    texts = read_corpus(cfg.llm_corpus, cfg.llm_max_texts)
    llm = captioner if captioner is not None else make_llm(cfg)
    phrases, failed = extract_phrases(
        texts, llm, cfg.llm_texts_per_request, cfg.max_words, cfg.llm_max_new_tokens
    )
    return Source(LLM, phrases, dropped=failed, path=str(cfg.llm_corpus))


# ------------------------------------------------------------------ merging


def build_queries(sources: Iterable[Source]) -> list[Query]:
    """One Query per dedup key over all sources, in first-seen order (see the module docstring)."""
    table: dict[str, Query] = {}
    for src in sources:
        for i, raw in enumerate(src.phrases):
            phrase = normalize(raw)
            if not phrase:
                continue
            key = dedup_key(phrase)
            q = table.get(key)
            if q is None:
                q = table[key] = Query(phrase, key)
            if src.name not in q.counts:
                q.sources.append(src.name)
                q.counts[src.name] = 0
            q.counts[src.name] += 1
            if src.zh is not None and not q.zh and src.zh[i].strip():
                q.zh = src.zh[i].strip()
    return list(table.values())


def source_stats(queries: Sequence[Query], sources: Sequence[Source]) -> list[SourceStats]:
    """Per source: phrases read, keys it was first to bring, duplicates, lines dropped."""
    read = {s.name: 0 for s in sources}
    new = dict.fromkeys(read, 0)
    for q in queries:
        new[q.sources[0]] += 1
        for name, n in q.counts.items():
            read[name] += n
    empty = {s.name: sum(1 for p in s.phrases if not normalize(p)) for s in sources}
    return [
        SourceStats(s.name, read[s.name], new[s.name], read[s.name] - new[s.name],
                    s.dropped + empty[s.name])
        for s in sources
    ]  # fmt: skip


def coverage(queries: Sequence[Query], source: str = RELEASED) -> Coverage | None:
    """How many of `source`'s phrases (and keys) some other source brings too."""
    mine = [q for q in queries if source in q.counts]
    if not mine:
        return None
    covered = [q for q in mine if len(q.sources) > 1]
    return Coverage(
        source,
        rows=sum(q.counts[source] for q in mine),
        keys=len(mine),
        covered_keys=len(covered),
        covered_rows=sum(q.counts[source] for q in covered),
    )


# ------------------------------------------------------------------ output


def write_queries(queries: Sequence[Query], out: str | Path) -> Path:
    """One row per query to .parquet or .jsonl, under a temp name then renamed."""
    from internvid.io.atomic import atomic_open, write_jsonl_atomic

    out = Path(out)
    rows = [q.to_row() for q in queries]
    if out.suffix == ".jsonl":
        write_jsonl_atomic(out, rows)
        return out
    if out.suffix != ".parquet":
        raise ValueError(f"{out}: the output is .parquet or .jsonl")
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("phrase", pa.string()), ("key", pa.string()), ("sources", pa.list_(pa.string())),
        ("zh", pa.string()), ("counts", pa.map_(pa.string(), pa.int64())),
    ])  # fmt: skip
    for r in rows:
        r["counts"] = list(r["counts"].items())
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_open(out, "wb") as f:
        pq.write_table(table, f)
    return out


def read_queries(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a file `write_queries` wrote (counts as a dict)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for r in rows:
        r["counts"] = dict(r["counts"])
    return rows


# ------------------------------------------------------------------ the command's library call


def sources_of(cfg: Any, captioner: Any = None) -> list[Source]:
    """The sources a QueriesConfig names, in reading order (released last); extra files whose
    stem repeats an earlier name get a numeric suffix."""
    sources = [read_shipped(name) for name in cfg.lists]
    if cfg.ssv2:
        sources.append(read_ssv2(cfg.ssv2))
    for path in cfg.extra:
        sources.append(read_extra(path))
    if cfg.llm_corpus:
        sources.append(read_llm(cfg, captioner))
    if cfg.released:
        sources.append(read_released(cfg.released))
    seen: set[str] = set()
    for s in sources:
        base, n = s.name, 1
        while s.name in seen:
            n += 1
            s.name = f"{base}_{n}"
        seen.add(s.name)
    return sources


def build(cfg: Any, captioner: Any = None) -> BuildResult:
    """`internvid queries build`: read the configured sources, merge them, write cfg.out."""
    sources = sources_of(cfg, captioner)
    queries = build_queries(sources)
    out = write_queries(queries, cfg.out)
    return BuildResult(queries, source_stats(queries, sources), coverage(queries), str(out))


def print_summary(result: BuildResult) -> None:
    """The per-source table (read, new, duplicates, dropped) and the released list's coverage."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(result.queries)} queries -> {result.out}")
    for name in ("source", "read", "new", "duplicates", "dropped"):
        table.add_column(name, justify="left" if name == "source" else "right")
    for s in result.stats:
        table.add_row(s.name, str(s.read), str(s.new), str(s.duplicates), str(s.dropped))
    console = Console()
    console.print(table)
    c = result.coverage
    if c is not None:
        console.print(
            f"{c.source}: {c.covered_keys} of its {c.keys} distinct queries "
            f"({100 * c.covered_keys / max(c.keys, 1):.1f}%; {c.covered_rows} of {c.rows} rows) "
            "are also in the other sources"
        )
