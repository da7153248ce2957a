"""The action-query vocabulary: normalisation, dedup with provenance, the shipped lists, the
released list's coverage, SSv2 templates, LLM extraction (a canned reply and tiny:chat), the CLI."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from internvid.caption.backend import Reply
from internvid.cli import app
from internvid.cli.options import CONFIG_HELP
from internvid.config import QueriesConfig
from internvid.queries.build import (
    DATA_DIR,
    LLM_SYSTEM,
    Source,
    atus_clean,
    build,
    build_queries,
    coverage,
    extract_phrases,
    list_names,
    parse_llm_reply,
    read_queries,
    read_released,
    read_shipped,
    read_ssv2,
    shipped,
    source_stats,
)
from internvid.queries.normalize import dedup_key, normalize, singular
from shared_data import RELEASE_DATA

ROOT = Path(__file__).resolve().parents[2]
RELEASED_QUERIES = RELEASE_DATA / "queries.jsonl"
runner = CliRunner()

# --- normalisation ---------------------------------------------------------------------------

NORMALIZE_CASES = [
    ("seal-with", "seal with"),  # hyphens
    ("doing Brazilian jiu-jitsu", "doing brazilian jiu jitsu"),
    ("snake_case_phrase", "snake case phrase"),  # underscores
    ("  Playing \t  GUITAR  ", "playing guitar"),  # case, whitespace collapsed
    ("ｐｌａｙｉｎｇ ｃｈｅｓｓ", "playing chess"),  # NFKC: full-width letters
    ("climb\xa0over road railing", "climb over road railing"),  # NFKC: no-break space
    ("tying knot (not on a tie)", "tying knot not on a tie"),  # ( ) content kept as words
    ("Putting [something] into [something]", "putting something into something"),  # template
    ("pick pitaya/harvest pitaya", "pick pitaya harvest pitaya"),  # punctuation
    ("turn (e.g., a screwdriver)", "turn e g a screwdriver"),
    ("massaging person's head", "massaging person's head"),  # an apostrophe inside a word
    ("blow one 's nose", "blow one's nose"),  # a detached possessive attached again
    ("putting up \u201cfor sale\u201d signs", "putting up for sale signs"),
    ("-- !!", ""),
]


@pytest.mark.parametrize("text,expected", NORMALIZE_CASES)
def test_normalize(text, expected):
    assert normalize(text) == expected


SINGULAR_CASES = [
    ("dogs", "dog"),
    ("puppies", "puppy"),
    ("boxes", "box"),
    ("watches", "watch"),
    ("dishes", "dish"),
    ("glasses", "glass"),
    ("horses", "horse"),
    ("movies", "movie"),
    ("knives", "knife"),
    ("children", "child"),
    ("buses", "bus"),
    # not plurals: unchanged
    ("glass", "glass"),
    ("bus", "bus"),
    ("tennis", "tennis"),
    ("chess", "chess"),
    ("news", "news"),
    ("this", "this"),
    ("is", "is"),
    ("was", "was"),
    ("aerobics", "aerobics"),
    ("playing", "playing"),
]


@pytest.mark.parametrize("word,expected", SINGULAR_CASES)
def test_singular(word, expected):
    assert singular(word) == expected


KEY_CASES = [
    ("Walking the dogs", "walking the dog"),  # an article inside a phrase stays
    ("the dog", "dog"),  # a leading article does not
    ("A puppy", "puppy"),
    ("an apple", "apple"),
    ("Boxes", "box"),
    ("playing tennis", "playing tennis"),
    ("clipping cat's claws", "clipping cat claw"),  # possessive dropped
    ("push-up", "push up"),
    ("the", "the"),  # a lone article is the phrase
]


@pytest.mark.parametrize("text,expected", KEY_CASES)
def test_dedup_key(text, expected):
    assert dedup_key(text) == expected


@pytest.mark.parametrize(
    "a,b",
    [("dogs", "dog"), ("the box", "boxes"), ("Seal-With", "seal with"), ("pull ups", "pull-up")],
)
def test_variants_share_a_key(a, b):
    assert dedup_key(a) == dedup_key(b)


@pytest.mark.parametrize(
    "a,b", [("playing guitar", "play guitar"), ("glass", "glasses case"), ("walking", "walk")]
)
def test_verb_forms_are_not_merged(a, b):
    assert dedup_key(a) != dedup_key(b)


# --- dedup with provenance ---------------------------------------------------------------------


def test_dedup_keeps_first_form_and_provenance():
    sources = [
        Source("a", ["Walking the dog", "dogs", "feeding ducks", "  "]),
        Source("b", ["walking the dogs", "Cats", "Feeding-Ducks", "feeding duck"]),
        Source("released", ["cats", "new one"], zh=["猫", "新"]),
    ]
    queries = build_queries(sources)
    by_key = {q.key: q for q in queries}
    assert [q.phrase for q in queries] == [
        "walking the dog", "dogs", "feeding ducks", "cats", "new one",
    ]  # fmt: skip
    walk = by_key["walking the dog"]
    assert walk.sources == ["a", "b"] and walk.counts == {"a": 1, "b": 1} and walk.zh == ""
    ducks = by_key["feeding duck"]
    assert ducks.phrase == "feeding ducks" and ducks.counts == {"a": 1, "b": 2}
    cats = by_key["cat"]
    assert cats.sources == ["b", "released"] and cats.zh == "猫"
    stats = {s.name: s for s in source_stats(queries, sources)}
    assert (stats["a"].read, stats["a"].new, stats["a"].duplicates, stats["a"].dropped) == (
        3, 3, 0, 1,
    )  # fmt: skip
    assert (stats["b"].read, stats["b"].new, stats["b"].duplicates) == (4, 1, 3)
    assert (stats["released"].read, stats["released"].new) == (2, 1)
    cov = coverage(queries)
    assert (cov.rows, cov.keys, cov.covered_keys, cov.covered_rows) == (2, 2, 1, 1)


# --- the shipped lists ---------------------------------------------------------------------------

KNOWN_SIZES = {"kinetics400": 400, "kinetics600": 600, "kinetics700": 700, "ucf101": 101}


def test_shipped_lists_match_sources_json_and_the_known_sizes():
    entries = shipped()
    assert list(entries) == ["kinetics400", "kinetics600", "kinetics700", "ucf101", "atus"]
    for name, entry in entries.items():
        phrases = read_shipped(name).phrases
        assert len(phrases) == entry["count"], name
        for k in ("file", "source_url", "licence", "notes"):
            assert entry[k], (name, k)
        if name in KNOWN_SIZES:
            assert entry["count"] == KNOWN_SIZES[name]
            assert len({normalize(p) for p in phrases}) == KNOWN_SIZES[name]  # all distinct
    assert "ssv2" in {e["name"] for e in json.loads((DATA_DIR / "SOURCES.json").read_text())[
        "not_shipped"]}  # fmt: skip
    assert not list(DATA_DIR.glob("*something*")) and not list(DATA_DIR.glob("*ssv2*"))


def test_shipped_list_formats():
    ucf = read_shipped("ucf101").phrases
    assert ucf[0] == "Apply Eye Makeup" and normalize(ucf[-1]) == "yo yo"
    assert "table tennis shot" in {normalize(p) for p in ucf}
    atus = {normalize(p) for p in read_shipped("atus").phrases}
    assert {"sleeping", "feeding ducks", "raking leaves", "organizing activities for child"} <= atus
    assert not any("n e c" in p or " hh " in f" {p} " for p in atus)
    assert atus_clean("being a docent/museum guide (volunteer)") == "being a docent/museum guide"
    assert atus_clean("making holiday decorations w/hh child") == (
        "making holiday decorations with child"
    )
    assert atus_clean("putting up Christmas lights (inside)") == (
        "putting up Christmas lights (inside)"
    )


def test_package_data_ships_every_list():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["internvid.queries"]
    for path in DATA_DIR.iterdir():
        rel = f"data/{path.name}"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


# --- the released list ---------------------------------------------------------------------------

# measured: 6244 rows (6243 distinct strings, 6231 distinct keys); the shipped lists bring
# 1230 of those keys (1240 rows)
RELEASED_ROWS, RELEASED_KEYS, COVERED_KEYS, COVERED_ROWS = 6244, 6231, 1230, 1240


@pytest.fixture(scope="module")
def released() -> Source:
    if not RELEASED_QUERIES.is_file():
        pytest.skip(f"InternVid's queries.jsonl not found at {RELEASED_QUERIES} "
                    "(set INTERNVID_SHARED_DATA)")  # fmt: skip
    return read_released(RELEASED_QUERIES)


def test_released_list_coverage_by_the_shipped_lists(released):
    sources = [read_shipped(n) for n in list_names()] + [released]
    queries = build_queries(sources)
    cov = coverage(queries)
    assert (cov.rows, cov.keys) == (RELEASED_ROWS, RELEASED_KEYS)
    assert (cov.covered_keys, cov.covered_rows) == (COVERED_KEYS, COVERED_ROWS)
    by_key = {q.key: q for q in queries}
    ducks = by_key[dedup_key("feeding ducks")]
    assert ducks.sources == ["atus", "released"] and ducks.zh == "喂鸭子"
    assert by_key["abseiling"].sources == ["kinetics400", "kinetics600", "kinetics700", "released"]
    assert all(q.zh for q in queries if "released" in q.sources)


# --- SSv2 templates from the user's file ------------------------------------------------------------


def test_ssv2_labels_become_phrases(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({
        "Putting [something] into [something]": "1",
        "Approaching [something] with your camera": "0",
        "Pushing [something] so that it slightly moves": "2",
    }))  # fmt: skip
    src = read_ssv2(labels)
    assert [normalize(p) for p in src.phrases] == [
        "approaching something with your camera",
        "putting something into something",
        "pushing something so that it slightly moves",
    ]
    rows = tmp_path / "train.json"
    rows.write_text(json.dumps([{"id": "1", "template": "Putting [something] into [something]"},
                                {"id": "2", "template": "Putting [something] into [something]"},
                                {"id": "3"}]))  # fmt: skip
    src = read_ssv2(rows)
    assert src.phrases == ["Putting [something] into [something]"] and src.dropped == 1


# --- LLM extraction ---------------------------------------------------------------------------------

CANNED = """Here are the action phrases:
1. Feeding ducks
- play guitar
* "slicing onions"
2) Feeding ducks
this line has far too many words to be one short action phrase
"""


def test_parse_llm_reply():
    assert parse_llm_reply(CANNED) == ["feeding ducks", "play guitar", "slicing onions"]
    assert parse_llm_reply("a b c d e f g", max_words=6) == []
    assert parse_llm_reply("", 6) == [] and parse_llm_reply("1.\n---\n") == []


class FakeCaptioner:
    """A Captioner whose replies are canned: records the requests it got."""

    name = "fake"

    def __init__(self, replies):
        self.replies = replies
        self.requests = []

    def load(self):
        return self

    def generate(self, requests):
        self.requests += list(requests)
        return [self.replies[i % len(self.replies)] for i in range(len(requests))]


def test_extract_phrases_through_a_captioner():
    fake = FakeCaptioner([Reply(text=CANNED), Reply(error="timeout", message="slow")])
    texts = ["A man feeds ducks.", "Kids play guitar.", "A cook slices onions."]
    phrases, failed = extract_phrases(texts, fake, texts_per_request=2)
    assert len(fake.requests) == 2 and failed == 1
    assert phrases == ["feeding ducks", "play guitar", "slicing onions"]
    first = fake.requests[0]
    assert first.system == LLM_SYSTEM and not first.frames
    assert "A man feeds ducks." in first.prompt and "Kids play guitar." in first.prompt
    assert "A cook slices onions." in fake.requests[1].prompt


def test_llm_source_through_the_config(tmp_path):
    corpus = tmp_path / "captions.jsonl"
    corpus.write_text("\n".join(json.dumps({"caption": c}) for c in ["one", "two", "three"]))
    cfg = QueriesConfig(out=str(tmp_path / "q.jsonl"), lists=["ucf101"],
                        llm_corpus=str(corpus), llm_model="fake", llm_max_texts=2)  # fmt: skip
    fake = FakeCaptioner([Reply(text="Play Guitar\nbalance beam")])
    result = build(cfg, captioner=fake)
    assert len(fake.requests) == 1 and "three" not in fake.requests[0].prompt
    rows = {r["key"]: r for r in read_queries(cfg.out)}
    assert rows["play guitar"]["sources"] == ["llm"]
    assert rows["balance beam"]["sources"] == ["ucf101", "llm"]
    assert {s.name: s.new for s in result.stats} == {"ucf101": 101, "llm": 1}


def test_tiny_chat_model_plumbing(tmp_path):
    """tiny:chat through the hub and the hf backend: its output is noise, the plumbing is not."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("A man is feeding ducks.\nTwo kids play guitar.\n")
    cfg = QueriesConfig(out=str(tmp_path / "q.parquet"), lists=[], llm_corpus=str(corpus),
                        llm_model="tiny:chat", llm_texts_per_request=1, llm_max_new_tokens=8,
                        cache_dir=str(tmp_path / "cache"), device="cpu")  # fmt: skip
    result = build(cfg)
    (stats,) = result.stats
    assert stats.name == "llm" and stats.dropped == 0  # both requests answered
    for row in read_queries(cfg.out):
        assert row["sources"] == ["llm"] and 1 <= len(row["phrase"].split()) <= cfg.max_words


# --- the command ----------------------------------------------------------------------------------


def test_cli_end_to_end(tmp_path):
    extra = tmp_path / "my_actions.txt"
    extra.write_text("# mine\nplaying guitar\nFolding Paper\n\nflying drones\n")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"Putting [something] into [something]": "0"}))
    out = tmp_path / "q.jsonl"
    args = ["queries", "build", "--out", str(out), "--lists", "kinetics400,ucf101",
            "--extra", str(extra), "--ssv2", str(labels)]  # fmt: skip
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "kinetics400" in result.output and "my_actions" in result.output
    rows = {r["key"]: r for r in read_queries(out)}
    assert rows["playing guitar"]["sources"] == ["kinetics400", "ucf101", "my_actions"]
    assert rows["playing guitar"]["counts"] == {"kinetics400": 1, "ucf101": 1, "my_actions": 1}
    assert rows["flying drone"]["phrase"] == "flying drones"
    assert rows["putting something into something"]["sources"] == ["ssv2"]
    assert len(rows) == 400 + 101 - 21 + 1 + 1  # 21 UCF101 classes are Kinetics-400 ones too


def test_cli_config_file_and_parquet(tmp_path):
    cfg = tmp_path / "q.yaml"
    out = tmp_path / "q.parquet"
    cfg.write_text(yaml.safe_dump({"out": str(out), "lists": ["ucf101"]}))
    result = runner.invoke(app, ["queries", "build", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert len(read_queries(out)) == 101


def test_cli_help_has_the_shared_vocabulary():
    result = runner.invoke(app, ["queries", "build", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "--config" in text and CONFIG_HELP in text
    for option in ("--released", "--ssv2", "--extra", "--llm-corpus", "--llm-model", "--lists"):
        assert option in text


@pytest.mark.allow_error_logs
def test_cli_refuses_bad_settings(tmp_path):
    bad_out = runner.invoke(app, ["queries", "build", "--out", str(tmp_path / "q.csv")])
    assert bad_out.exit_code == 2 and ".parquet or .jsonl" in bad_out.output
    unknown = runner.invoke(app, ["queries", "build", "--out", str(tmp_path / "q.jsonl"),
                                  "--lists", "kinetics9000"])  # fmt: skip
    assert unknown.exit_code == 2 and not (tmp_path / "q.jsonl").exists()
    missing = runner.invoke(app, ["queries", "build", "--out", str(tmp_path / "q.jsonl"),
                                  "--extra", str(tmp_path / "nope.txt")])  # fmt: skip
    assert missing.exit_code == 2
    no_model = runner.invoke(app, ["queries", "build", "--out", str(tmp_path / "q.jsonl"),
                                   "--llm-corpus", str(tmp_path / "c.txt")])  # fmt: skip
    assert no_model.exit_code == 2 and "--llm-model" in no_model.output
