"""The outputs of every command on fixed inputs, as one JSON digest (`python tests/e2e/golden.py`).

Drives the real command line (`python -m internvid ...` in subprocesses, so that `--src` can point
at another checkout's `src/` to record what a different commit did) over the sample videos:
`run` with the tiny models and every score, `subset` (div, flt, aes, random, --where), `report`,
`search`, `eval` (retrieval and classification with the tiny ViCLIP) and `download` from a
loopback HTTP server. The digest keeps what a user gets (table rows, jsonl bytes, failures with
reasons, subset ids, metrics, shard members) and masks what may differ between two runs of the
same code (the output folder's path, wall times, the report's clock line, the server's port).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
SHARED_VIDEOS = (
    Path(os.environ.get("INTERNVID_SHARED_DATA", TESTS.parents[1] / "shared" / "data")) / "videos"
)
SCORES = "viclip_sim,aesthetic,clipscore,text_overlay"
QUERY = "a man plays with his dog in the snow"
# wall times and clocks (kept out of the digest; zeroed in stats.json before the report reads it)
VOLATILE_KEYS = {"seconds", "wall_seconds", "created", "started", "finished", "elapsed"}
_IMAGE = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")  # an embedded image
_CLOCK = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?( ?UTC|Z|\+00:00)?")


def _cli(src: Path | None, cache: Path, *args: str, check: bool = True) -> str:
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env["XDG_CACHE_HOME"] = str(cache)  # tiny models are built there, once
    done = subprocess.run(
        [sys.executable, "-m", "internvid", "-q", *args], capture_output=True, text=True, env=env
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"internvid {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def _mask(text: str, root: str) -> str:
    """Replace the output folder's and the sample videos' absolute paths with placeholders."""
    return text.replace(root, "<OUT>").replace(str(SHARED_VIDEOS.resolve()), "<VIDEOS>")


def _clean(value: Any, root: str) -> Any:
    """Mask the output folder's and the sample videos' paths, drop wall times, recursively."""
    if isinstance(value, dict):
        return {k: _clean(v, root) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list | tuple):
        return [_clean(v, root) for v in value]
    if isinstance(value, str):
        return _mask(value, root)
    if isinstance(value, float):
        return round(value, 6)
    return value


def _rows(path: Path, root: str) -> list[dict[str, Any]]:
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        for key, val in row.items():  # MAP columns read as lists of pairs: compare as mappings
            if isinstance(val, list) and val and isinstance(val[0], tuple):
                row[key] = dict(sorted(val))
    return _clean(rows, root)


def _jsonl(path: Path, root: str) -> list[Any]:
    if not path.is_file():
        return []
    return [_clean(json.loads(line), root) for line in path.read_text().splitlines() if line]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _members(folder: Path, root: str) -> dict[str, list[Any]]:
    """Shard -> its members: what a WebDataset reader sees. A JSON member by its content (paths
    masked: its size depends on where the checkout lives), any other member by its size."""
    out = {}
    for tar in sorted(folder.glob("*.tar")):
        with tarfile.open(tar) as t:
            rows: list[Any] = []
            for m in t.getmembers():
                if m.name.endswith(".json"):
                    data = t.extractfile(m)
                    rows.append((m.name, _clean(json.loads(data.read()), root) if data else None))
                else:
                    rows.append((m.name, m.size))
            out[tar.name] = rows
    return out


def _zero_wall_times(path: Path) -> None:
    def zero(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: 0 if k in VOLATILE_KEYS else zero(x) for k, x in v.items()}
        return [zero(x) for x in v] if isinstance(v, list) else v

    path.write_text(json.dumps(zero(json.loads(path.read_text()))))


def run_digest(src: Path | None, work: Path, cache: Path) -> dict[str, Any]:
    out = work / "run"
    root = str(out)
    _cli(src, cache, "run", str(SHARED_VIDEOS.resolve()), "--out", root, "--models", "tiny",
         "--scores", SCORES, "--no-progress")  # fmt: skip
    stats = json.loads((out / "stats.json").read_text())
    digest: dict[str, Any] = {
        "clips": _rows(out / "clips.parquet", root),
        "videos": _rows(out / "videos.parquet", root),
        "internvid_jsonl_sha256": _sha((out / "internvid.jsonl").read_bytes()),
        "internvid_jsonl": (out / "internvid.jsonl").read_text().splitlines(),
        "failures": _jsonl(out / "failures.jsonl", root),
        "stats": _clean(stats, root),
        "shard_members": _members(out / "shards", root),
    }
    subsets = {}
    for name, args in {
        "div": ["div", "-n", "5", "--seed", "42"],
        "flt": ["flt", "-n", "3"],
        "aes": ["aes"],
        "random": ["random", "-n", "4", "--seed", "7"],
        "where": ["where", "--where", "duration > 3"],
    }.items():
        target = work / "subsets" / name
        _cli(src, cache, "subset", args[0], root, "-o", str(target), *args[1:])
        subsets[name] = {
            "ids": pq.read_table(target.with_suffix(".parquet")).column("clip_id").to_pylist(),
            "jsonl_sha256": _sha(target.with_suffix(".jsonl").read_bytes()),
        }
    digest["subsets"] = subsets
    _zero_wall_times(out / "stats.json")  # the report shows them: the rest must be equal
    _cli(src, cache, "report", root, "-o", str(work / "report.html"))
    page = _mask((work / "report.html").read_text(), root)  # dropped videos show their paths
    # its thumbnails are JPEGs of decoded frames, whose bytes vary between CPUs: counted, not hashed
    digest["report_images"] = len(_IMAGE.findall(page))
    digest["report_sha256"] = _sha(_IMAGE.sub("<IMAGE>", _CLOCK.sub("<CLOCK>", page)).encode())
    found = json.loads(_cli(src, cache, "search", root, QUERY, "--models", "tiny", "--json"))
    digest["search"] = _clean(found, root)
    digest["eval"] = eval_digest(src, work, cache, out)
    return digest


def eval_digest(src: Path | None, work: Path, cache: Path, run: Path) -> dict[str, Any]:
    """Zero-shot retrieval and classification of the run's clips with the tiny ViCLIP."""
    clips = pq.read_table(run / "clips.parquet").to_pylist()
    ann, cls = work / "eval_ret.jsonl", work / "eval_cls.jsonl"
    videos = sorted({c["video_id"]: c for c in clips}.values(), key=lambda c: c["video_id"])
    sources = {c["video_id"]: c["source"] for c in videos}
    with ann.open("w") as f:
        for c in clips:
            cap = c["fused_caption"] or c["coarse_caption"] or "a video"
            f.write(json.dumps({"video": sources[c["video_id"]], "caption": cap}) + "\n")
    with cls.open("w") as f:
        for i, c in enumerate(videos):
            f.write(json.dumps({"video": sources[c["video_id"]], "label": ["dog", "snow"][i % 2]}))
            f.write("\n")
    tiny = cache / "internvid" / "tiny-models" / "viclip-tiny.pth"
    out = {}
    for name, path in (("retrieval", ann), ("classification", cls)):
        target = work / f"eval_{name}.json"
        _cli(src, cache, "eval", str(path), "-m", str(tiny), "--arch", "tiny", "-o", str(target))
        text = target.read_text().replace(str(cache), "<CACHE>")  # the tiny models' folder
        out[name] = _clean(json.loads(text), str(work))
    return out


def download_digest(src: Path | None, work: Path, cache: Path) -> dict[str, Any]:
    """`internvid download` of release rows from a loopback server with Range support."""
    sys.path.insert(0, str(TESTS))
    from httpserver import LocalServer

    served = work / "served"
    served.mkdir(parents=True, exist_ok=True)
    ids = {"vidNasa0001": "nasa_13013.mp4", "vidCount001": "counter.mp4"}
    for vid, name in ids.items():
        (served / f"{vid}.mp4").write_bytes((SHARED_VIDEOS / name).read_bytes())
    rows = [
        {"YoutubeID": "vidNasa0001", "Start_timestamp": "00:00:01.000",
         "End_timestamp": "00:00:03.500", "Caption": "a rocket", "UMT_Score": 0.3},
        {"YoutubeID": "vidCount001", "Start_timestamp": "00:00:00.500",
         "End_timestamp": "00:00:02.000", "Caption": "a counter", "Aesthetic_Score": 4.5},
        {"YoutubeID": "vidMissing1", "Start_timestamp": "00:00:00.000",
         "End_timestamp": "00:00:01.000", "Caption": "gone"},
        {"YoutubeID": "../escape", "Start_timestamp": "00:00:00.000",
         "End_timestamp": "00:00:01.000", "Caption": "hostile"},
    ]  # fmt: skip
    meta = work / "rows.jsonl"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    out = work / "download"
    with LocalServer(served) as server:
        template = server.url("{YoutubeID}.mp4")
        _cli(src, cache, "download", str(meta), "--out", str(out), "--url-template", template,
             "--rate", "0", "--retries", "0", "--workers", "1", check=False)  # fmt: skip
        port = str(server.port)
    root = str(out)
    return json.loads(
        json.dumps(
            {
                "internvid_jsonl": _jsonl(out / "internvid.jsonl", root),
                "failures": _jsonl(out / "failures.jsonl", root),
                "shard_members": _members(out / "shards", root),
            }
        )
        .replace(port, "<PORT>")
        .replace(str(work), "<WORK>")
    )


def produce(work: Path, src: Path | None = None, cache: Path | None = None) -> dict[str, Any]:
    """The whole digest; `work` is emptied scratch space, `src` another checkout's src/."""
    work.mkdir(parents=True, exist_ok=True)
    cache = cache or work / "cache"
    return {"run": run_digest(src, work, cache), "download": download_digest(src, work, cache)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="where to write the digest (JSON)")
    ap.add_argument("--work", type=Path, required=True, help="empty scratch folder")
    ap.add_argument("--src", type=Path, help="the src/ folder of the checkout to record")
    ap.add_argument("--cache", type=Path, help="cache folder for the tiny models")
    a = ap.parse_args()
    digest = produce(a.work, a.src, a.cache)
    a.out.write_text(json.dumps(digest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
