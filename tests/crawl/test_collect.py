"""internvid collect against a fake platform (yt-dlp extractors of our own + a loopback server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from fake_platform import EXTRACTORS

from internvid.config import CollectConfig, CrawlConfig
from internvid.crawl.collect import check_rules, collect, read_queries
from internvid.crawl.journal import Journal

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from httpserver import LocalServer  # noqa: E402
from shared_data import REAL_VIDEOS  # noqa: E402

VIDEOS = REAL_VIDEOS
needs_videos = pytest.mark.skipif(
    not (VIDEOS / "nasa_13013.mp4").is_file(), reason=f"sample videos not found at {VIDEOS}"
)

# 11-character ids, as YouTube's
OK1, OK2, SHORT, LONG, LOWRES, DUP, EARLIER, PRIVATE, MUTE, FLAT_SHORT = (
    "okokokok001", "okokokok002", "shortshort1", "longlonglo1", "lowreslowr1", "dupdupdupd1",
    "earlierear1", "privatepri1", "mutemutemu1", "flatshorty1",
)  # fmt: skip


def catalogue(tmp: Path, base_url: str, **extra) -> Path:
    cat = {
        "base_url": base_url,
        "log": str(tmp / "requests.log"),
        "queries": {
            "riding a horse": [OK1, SHORT, LONG, DUP, "../../etc/x"],
            "feeding ducks": [OK2, LOWRES, DUP, EARLIER, PRIVATE, MUTE, FLAT_SHORT],
        },
        "videos": {
            OK1: {"file": "nasa_13013.mp4", "duration": 13.0, "height": 180 * 4, "width": 1280,
                  "title": "horse riding lesson", "tags": ["horse", "riding"]},
            OK2: {"file": "cosmos_clip_10s.mp4", "duration": 10.0, "height": 480, "width": 854},
            SHORT: {"file": "nasa_13013.mp4", "duration": 5.0, "height": 720},
            LONG: {"file": "nasa_13013.mp4", "duration": 3600.0, "height": 720},
            LOWRES: {"file": "nasa_13013.mp4", "duration": 60.0, "height": 240, "width": 426},
            DUP: {"file": "nasa_13013.mp4", "duration": 4.0, "height": 720},
            EARLIER: {"file": "nasa_13013.mp4", "duration": 60.0, "height": 720},
            PRIVATE: {"file": "nasa_13013.mp4", "duration": 60.0, "height": 720, "private": True},
            MUTE: {"file": "nasa_13013.mp4", "duration": 60.0, "height": 720, "audio": False},
            FLAT_SHORT: {"file": "nasa_13013.mp4", "duration": 3.0, "height": 720,
                         "flat_duration": 3.0},
        },
        **extra,
    }  # fmt: skip
    path = tmp / "platform.json"
    path.write_text(json.dumps(cat))
    return path


@pytest.fixture
def platform(tmp_path, monkeypatch):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("nasa_13013.mp4", "cosmos_clip_10s.mp4"):
        if (VIDEOS / name).is_file():
            shutil.copy(VIDEOS / name, media / name)
    with LocalServer(media) as server:
        path = catalogue(tmp_path, server.url("").rstrip("/"))
        monkeypatch.setenv("FAKE_PLATFORM", str(path))
        yield server, path


def queries_file(tmp: Path) -> Path:
    q = tmp / "queries.jsonl"
    rows = [{"search_word_id": "riding a horse", "search_word": "骑马"},
            {"search_word_id": "feeding ducks", "search_word": "喂鸭子"}]  # fmt: skip
    q.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return q


def config(tmp: Path, **kw) -> CrawlConfig:
    kw.setdefault("rate", 0)
    kw.setdefault("backoff", 0.01)
    return CrawlConfig(
        queries=str(queries_file(tmp)), per_query=10, search_prefix="fakesearch",
        extractors=list(EXTRACTORS), **kw,
    )  # fmt: skip


def asked(path: Path) -> list[str]:
    log = json.loads(path.read_text())["log"]
    return Path(log).read_text().splitlines() if Path(log).exists() else []


# --- rules and inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts,reason",
    [
        ({"duration": 12, "max_height": 720, "has_audio": True}, None),
        ({"duration": 9.9, "max_height": 720}, "too_short"),
        ({"duration": 1800.5, "max_height": 720}, "too_long"),
        ({"duration": 60, "max_height": 240, "width": 426}, "low_resolution"),
        ({"duration": 60, "max_height": 1920, "width": 1080}, None),  # portrait 1080p
        ({"duration": 60, "max_height": 640, "width": 352}, "low_resolution"),  # portrait 352p
        ({"duration": 60}, "low_resolution"),  # no height known
        ({"max_height": 720}, "no_duration"),
        ({"duration": 60, "max_height": 720, "has_audio": False}, "no_audio"),
        ({"duration": 60, "max_height": 720, "live_status": "is_live"}, "live"),
    ],
)
def test_the_papers_rules(facts, reason):
    got = check_rules(facts, CrawlConfig(queries="q"))
    assert (got[0] if got else None) == reason
    relaxed = CrawlConfig(queries="q", require_audio=False, rules=CollectConfig(min_height=200))
    if reason in ("no_audio", "low_resolution") and facts.get("width") == 426:
        assert check_rules(facts, relaxed) is None


def test_query_files_of_every_kind(tmp_path):
    (tmp_path / "q.txt").write_text("a  b\n\nc\na b\n")
    assert read_queries(tmp_path / "q.txt") == ["a b", "c"]
    assert read_queries(queries_file(tmp_path)) == ["riding a horse", "feeding ducks"]
    assert read_queries(queries_file(tmp_path), limit=1) == ["riding a horse"]


def test_the_journal_survives_a_cut_off_line(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.put("search", "q", [1, 2])
    j.close()
    with open(tmp_path / "j.jsonl", "a") as f:
        f.write('{"kind": "details", "key": "x", "res')  # the kill's half line
    j = Journal(tmp_path / "j.jsonl")
    assert j.get("search", "q") == [1, 2] and ("details", "x") not in j
    j.put("details", "x", {"ok": 1})
    j.close()
    assert Journal(tmp_path / "j.jsonl").get("details", "x") == {"ok": 1}


# --- whole runs --------------------------------------------------------------------------------


@needs_videos
def test_collect_applies_every_rule_records_metadata_and_downloads(tmp_path, platform):
    server, path = platform
    ids = tmp_path / "ids.duckdb"
    from internvid.ids.database import IdDatabase

    with IdDatabase.open(ids) as db:
        db.add([EARLIER], "webvid")
    out = tmp_path / "out"
    summary = collect(config(tmp_path, ids=str(ids)), out)
    table = pq.read_table(out / "candidates.parquet").to_pylist()
    (again,) = [r for r in table if r["reason"] == "duplicate_id"]  # DUP, found a second time
    assert again["video_id"] == DUP and again["query"] == "feeding ducks"
    assert json.loads(again["values"]) == {"first_found_by": "riding a horse"}
    rows = {r["video_id"]: r for r in table if r is not again}
    assert len(rows) == len(table) - 1  # one row per find
    status = {k: (r["status"], r["reason"]) for k, r in rows.items()}
    assert status == {
        OK1: ("accepted", ""), OK2: ("accepted", ""),
        SHORT: ("dropped", "too_short"), LONG: ("dropped", "too_long"),
        LOWRES: ("dropped", "low_resolution"), DUP: ("dropped", "too_short"),
        EARLIER: ("dropped", "in_earlier_dataset"), PRIVATE: ("failed", "private"),
        MUTE: ("dropped", "no_audio"), FLAT_SHORT: ("dropped", "too_short"),
    }  # fmt: skip
    assert json.loads(rows[LOWRES]["values"]) == {"height": 240, "min_height": 360}
    assert json.loads(rows[DUP]["values"])["also_found_by"] == ["feeding ducks"]
    assert rows[DUP]["query"] == "riding a horse"  # the first query that found it
    ok = rows[OK1]
    assert ok["title"] == "horse riding lesson" and ok["tags"] == ["horse", "riding"]
    assert ok["channel"] == "fake channel" and ok["upload_date"] == "20230102"
    assert ok["language"] == "en" and ok["duration"] == 13.0 and ok["height"] == 720
    assert ok["has_audio"] is True and ok["categories"] == ["People & Blogs"]
    for vid in (OK1, OK2):
        assert (out / "videos" / rows[vid]["file"]).stat().st_size > 10_000
    assert (out / "accepted.txt").read_text().split() == [rows[OK1]["url"], rows[OK2]["url"]]
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert {(f["item"], f["reason"]) for f in failures} == {
        ("../../etc/x", "bad_id"), (PRIVATE, "private"),
    }  # fmt: skip
    assert not any(p.name.startswith(".") for p in (out / "videos").iterdir())
    # no facts asked where the search or the database already decided
    log = asked(path)
    assert f"video {FLAT_SHORT}" not in log and f"video {EARLIER}" not in log
    assert summary.accepted == 2 and summary.downloaded == 2 and summary.requests == len(log) + 2
    with IdDatabase.open(ids) as db:
        assert db.contains([OK1, OK2, SHORT], ["collected"]) == {OK1, OK2}
    # a second run asks nothing: everything comes from the journal and the files
    before = len(log)
    again = collect(config(tmp_path, ids=str(ids)), out)
    assert again.requests == 0 and len(asked(path)) == before
    assert again.accepted == 2 and server.count(f"/{rows[OK1]['file']}") >= 0


@needs_videos
@pytest.mark.allow_error_logs  # the block is logged as an error
def test_a_block_stops_the_run_and_a_rerun_resumes(tmp_path, platform):
    _server, path = platform
    cat = json.loads(path.read_text())
    path.write_text(json.dumps({**cat, "blocked": True}))
    out = tmp_path / "out"
    s = collect(config(tmp_path, download=False), out)
    assert s.blocked and "not a bot" in s.blocked and s.accepted == 0
    assert len(asked(path)) == 1  # stopped at the first refusal: no hammering
    path.write_text(json.dumps(cat))
    s = collect(config(tmp_path, download=False), out)
    assert not s.blocked and s.accepted == 3  # no id database here: EARLIER passes too


@needs_videos
def test_a_rerun_after_sigkill_repeats_no_finished_request(tmp_path, platform):
    """Killed mid-run (SIGKILL), the same command resumes: no request whose answer reached the
    journal is made again (one in flight at the kill may be), and the outputs are complete."""
    _server, path = platform
    cat = json.loads(path.read_text())
    path.write_text(json.dumps({**cat, "delay": 0.3}))
    out = tmp_path / "out"
    cfg_file = tmp_path / "collect.yaml"
    cfg = config(tmp_path)
    cfg_file.write_text(yaml.safe_dump({
        "queries": cfg.queries, "per_query": 10, "search_prefix": "fakesearch",
        "extractors": EXTRACTORS, "rate": 0, "backoff": 0.01,
    }))  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "internvid", "collect", "--out", str(out), "--config", str(cfg_file),
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {(r["kind"], r["key"]) for r in map(json.loads, journal.read_text().splitlines()) if r}
    first = asked(path)
    path.write_text(json.dumps(cat))  # no delay for the rest
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    second = asked(path)[len(first) :]
    as_keys = {("search", x[7:]) if x.startswith("search ") else ("details", x[6:]) for x in second}
    assert not as_keys & done, (as_keys & done, done)
    assert len(second) == len(set(second))  # nothing asked twice in the resumed run either
    rows = {r["video_id"]: r for r in pq.read_table(out / "candidates.parquet").to_pylist()}
    assert {k for k, r in rows.items() if r["status"] == "accepted"} == {OK1, OK2, EARLIER}
    assert all((out / "videos" / rows[k]["file"]).is_file() for k in (OK1, OK2, EARLIER))
    summary = json.loads((out / "collect.json").read_text())
    assert summary["accepted"] == 3 and summary["reused"] >= len(done)


def test_an_unknown_earlier_dataset_stops_before_any_request(tmp_path, platform):
    from internvid.crawl.collect import CollectError
    from internvid.ids.database import IdDatabase

    _server, path = platform
    with IdDatabase.open(tmp_path / "ids.duckdb") as db:
        db.add([EARLIER], "webvid")
    cfg = config(tmp_path, ids=str(tmp_path / "ids.duckdb"), earlier_datasets=["panda"])
    with pytest.raises(CollectError, match="panda"):
        collect(cfg, tmp_path / "out")
    assert asked(path) == []
