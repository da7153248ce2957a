"""Annotation readers for `internvid eval`: MSR-VTT, MSVD, DiDeMo, ActivityNet, LSMDC, Kinetics -> EvalSet."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VIDEO_KEYS = ("video", "path", "video_path", "clip")  # generic files: columns naming the video
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".3gp")  # tried when looking up
# --format choices; "auto" picks one from the file name and its first record
FORMATS = (
    "auto",
    "generic",  # .jsonl/.json/.csv: 'video' + 'caption'/'captions' or 'label' (also UMT/VINDLU)
    "msrvtt-csv",  # MSRVTT_JSFUSION_test.csv (the 1k-A split): key,vid_key,video_id,sentence
    "msrvtt-json",  # MSRVTT_data.json / test_videodatainfo.json: {"videos", "sentences"}
    "msvd",  # raw-captions.pkl (+ test_list.txt), or the "MSR Video Description Corpus" csv
    "didemo",  # LocalizingMoments test_data.json: [{"video", "description", "times"}, ...]
    "anet",  # ActivityNet Captions val_1.json: {"v_ID": {"duration", "timestamps", "sentences"}}
    "lsmdc",  # LSMDC16_challenge_1000_publictect.csv: 6 tab-separated fields, no header
    "kinetics",  # Kinetics-400/600/700 val.csv: label,youtube_id,time_start,time_end,split
)


@dataclass
class EvalSet:
    """Videos and their texts: captions (retrieval) or labels (classification)."""

    videos: list[Path]  # unique video files (retrieval) / one per clip (classification)
    texts: list[str] = field(default_factory=list)  # retrieval: every caption
    text_to_video: list[int] = field(default_factory=list)  # retrieval: caption -> video index
    labels: list[str | int] = field(default_factory=list)  # classification: one per video
    classes: list[str] = field(default_factory=list)  # class names, when the format knows them

    @property
    def task(self) -> str:
        """ "classification" when the set has labels, else "retrieval"."""
        return "classification" if self.labels else "retrieval"

    def drop_missing(self) -> tuple[EvalSet, int]:
        """The set without the videos whose file does not exist (and their captions or labels),
        and how many were dropped."""
        keep = [i for i, p in enumerate(self.videos) if p.is_file()]
        if len(keep) == len(self.videos):
            return self, 0
        new_index = {old: new for new, old in enumerate(keep)}
        out = EvalSet(videos=[self.videos[i] for i in keep], classes=list(self.classes))
        if self.labels:
            out.labels = [self.labels[i] for i in keep]
        for text, v in zip(self.texts, self.text_to_video, strict=True):
            if v in new_index:
                out.texts.append(text)
                out.text_to_video.append(new_index[v])
        return out, len(self.videos) - len(keep)


class _Videos:
    """Finds video files under a root: by file name or stem, in any sub-folder (indexed once)."""

    def __init__(self, root: Path, default_ext: str = ".mp4") -> None:
        self.root = root
        self.default_ext = default_ext
        self._by_name: dict[str, Path] | None = None
        self._by_stem: dict[str, Path] = {}

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            rank = {ext: i for i, ext in enumerate(VIDEO_EXTS)}
            if self.root.is_dir():
                for folder, _, files in os.walk(self.root):
                    for name in sorted(files):
                        path = Path(folder) / name
                        self._by_name.setdefault(name, path)
                        stem, ext = os.path.splitext(name)
                        if ext.lower() not in rank:
                            continue
                        old = self._by_stem.get(stem)
                        if old is None or rank[ext.lower()] < rank.get(old.suffix.lower(), 99):
                            self._by_stem[stem] = path
        return self._by_name

    def find(self, *names: str, fallback: str | None = None) -> Path:
        """The first of `names` (a file name, or a stem without extension) found under the root;
        else root / `fallback` (default: the first name, + the default extension if it has none)."""
        by_name = self._index()
        for name in names:
            if name in by_name:
                return by_name[name]
            if name in self._by_stem:
                return self._by_stem[name]
        if fallback is None:
            first = names[0]
            fallback = (
                first if Path(first).suffix.lower() in VIDEO_EXTS else first + self.default_ext
            )
        return self.root / fallback


class _Builder:
    """Collects (video, caption) pairs into an EvalSet, videos in order of first appearance."""

    def __init__(self) -> None:
        self.data = EvalSet(videos=[])
        self._index: dict[Path, int] = {}

    def add(self, video: Path, captions: Iterable[str]) -> None:
        if video not in self._index:
            self._index[video] = len(self.data.videos)
            self.data.videos.append(video)
        for caption in captions:
            self.data.texts.append(caption)
            self.data.text_to_video.append(self._index[video])

    def done(self, path: Path) -> EvalSet:
        if not self.data.texts:
            raise ValueError(f"{path}: no captions")
        return self.data


def _root(path: Path, videos: str | Path | None) -> Path:
    return Path(videos).expanduser() if videos is not None else path.parent


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8-sig"))


# ------------------------------------------------------------------------------------ generic


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The records of a .jsonl, .json (a list) or .csv annotation file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            return [dict(row) for row in csv.DictReader(f)]
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of records")
        return rows
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _captions(row: Mapping[str, Any]) -> list[str]:
    value = row.get("captions")
    if value is None:
        value = row.get("caption")
    if isinstance(value, str) and value.lstrip().startswith("["):  # a JSON list in a csv cell
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if value is None or value == "":
        return []
    return [str(c) for c in value] if isinstance(value, list) else [str(value)]


def read_generic(
    path: str | Path,
    task: str = "retrieval",
    videos: str | Path | None = None,
    paragraphs: bool = False,
) -> EvalSet:
    """Rows with a video path ('video', relative to `videos` or the file's folder) and 'caption' /
    'captions' (retrieval; rows of one video are merged) or 'label' (classification). The UMT /
    VINDLU json files (`msrvtt_test1k.json`, `didemo_ret_test.json`, ...) are of this kind; a list
    of captions is one caption each, or one paragraph (joined with spaces, as the official
    `is_paragraph_retrieval`) with `paragraphs`."""
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no records")
    root = _root(path, videos)
    build, labels = _Builder(), []
    for i, row in enumerate(rows):
        name = next((row[k] for k in VIDEO_KEYS if row.get(k)), None)
        if name is None:
            raise ValueError(f"{path}: record {i} has no video column ({', '.join(VIDEO_KEYS)})")
        video = Path(str(name)).expanduser()
        video = video if video.is_absolute() else root / video
        if task == "classification":
            if row.get("label") in (None, ""):
                raise ValueError(f"{path}: record {i} has no label")
            build.data.videos.append(video)
            labels.append(row["label"])
            continue
        captions = _captions(row)
        if paragraphs and len(captions) > 1:
            captions = [" ".join(captions)]
        build.add(video, captions)
    if task == "classification":
        build.data.labels = labels
        return build.data
    if not build.data.texts:
        raise ValueError(f"{path}: no captions (columns 'caption' or 'captions')")
    return build.data


# ------------------------------------------------------------------------------------ MSR-VTT


def read_msrvtt_csv(path: str | Path, videos: str | Path | None = None) -> EvalSet:
    """MSR-VTT 1k-A as `MSRVTT_JSFUSION_test.csv` (CLIP4Clip's copy of the JSFusion split): a
    header with `video_id` and `sentence` (also `key`, `vid_key`), one caption per video
    (`video7579` -> `video7579.mp4` under `videos`)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video_id", "sentence"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a csv with 'video_id' and 'sentence' columns")
    found, build = _Videos(_root(path, videos)), _Builder()
    for row in rows:
        build.add(found.find(row["video_id"].strip()), [row["sentence"]])
    return build.done(path)


def read_msrvtt_json(
    path: str | Path, videos: str | Path | None = None, ids: Sequence[str] | None = None
) -> EvalSet:
    """MSR-VTT's own annotation json (`MSRVTT_data.json`, `test_videodatainfo.json`):
    {"videos": [{"video_id", ...}], "sentences": [{"video_id", "caption"}, ...]}, every caption of
    every listed video (or of `ids` only, e.g. the 1k-A ids: `--split-list` of the JSFusion csv).
    A UMT-style list ({"video", "caption"}) is read as `read_generic`."""
    path = Path(path)
    data = _json(path)
    if isinstance(data, list):
        return read_generic(path, videos=videos)
    if not isinstance(data, dict) or "sentences" not in data:
        raise ValueError(f"{path}: expected MSR-VTT's {{'videos', 'sentences'}} json")
    captions: dict[str, list[str]] = {}
    for s in data["sentences"]:
        captions.setdefault(s["video_id"], []).append(s["caption"])
    if ids is not None:
        order = list(ids)
    else:
        order = [v["video_id"] for v in data.get("videos", [])] or list(captions)
    found, build = _Videos(_root(path, videos)), _Builder()
    for vid in order:
        if vid not in captions:
            raise ValueError(f"{path}: no captions for video {vid!r}")
        build.add(found.find(vid), captions[vid])
    return build.done(path)


# --------------------------------------------------------------------------------------- MSVD


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only builtin containers and strings: a caption file needs nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a caption pickle")


def read_msvd(
    path: str | Path, videos: str | Path | None = None, ids: Sequence[str] | None = None
) -> EvalSet:
    """MSVD: CLIP4Clip's `raw-captions.pkl` ({video id: [[token, ...], ...]}, captions are the
    tokens joined by spaces) with the split's ids (`test_list.txt`: 670 videos; all videos
    without it), or the original "MSR Video Description Corpus" csv (English rows; the video is
    `{VideoID}_{Start}_{End}`). Video files are looked up by id under `videos` (`.avi` default)."""
    path = Path(path)
    found, build = _Videos(_root(path, videos), ".avi"), _Builder()
    if path.suffix.lower() == ".pkl":
        with path.open("rb") as f:
            raw = _PlainUnpickler(f).load()
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a dict of video id -> captions")
        order = list(ids) if ids is not None else list(raw)
        for vid in order:
            if vid not in raw:
                raise ValueError(f"{path}: no captions for video {vid!r}")
            caps = [c if isinstance(c, str) else " ".join(c) for c in raw[vid]]
            build.add(found.find(vid), caps)
        return build.done(path)
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    need = {"VideoID", "Start", "End", "Language", "Description"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{path}: expected raw-captions.pkl or the corpus csv ({sorted(need)})")
    wanted = None if ids is None else set(ids)
    grouped: dict[str, list[str]] = {}
    for row in rows:
        if row["Language"].strip().lower() != "english" or not row["Description"].strip():
            continue
        vid = f"{row['VideoID']}_{row['Start']}_{row['End']}"
        if wanted is None or vid in wanted:
            grouped.setdefault(vid, []).append(row["Description"])
    order = [v for v in ids if v in grouped] if ids is not None else list(grouped)
    for vid in order:
        build.add(found.find(vid), grouped[vid])
    return build.done(path)


# ------------------------------------------------------------------------ DiDeMo, ActivityNet


def read_didemo(
    path: str | Path,
    videos: str | Path | None = None,
    ids: Sequence[str] | None = None,
    paragraphs: bool = True,
) -> EvalSet:
    """DiDeMo's `test_data.json` (LocalizingMoments): one record per moment description. With
    `paragraphs` (the standard protocol) a video's descriptions, in file order, are one caption
    joined with spaces; else each is a caption. `ids`: the split's video file names
    (`test_list.txt`)."""
    path = Path(path)
    data = _json(path)
    if not isinstance(data, list) or (data and not {"video", "description"} <= set(data[0])):
        raise ValueError(f"{path}: expected a list of {{'video', 'description', 'times'}}")
    wanted = None if ids is None else set(ids)
    grouped: dict[str, list[str]] = {}
    for item in data:
        if wanted is None or item["video"] in wanted:
            grouped.setdefault(item["video"], []).append(item["description"])
    found, build = _Videos(_root(path, videos)), _Builder()
    for name, texts in grouped.items():
        stem = os.path.splitext(name)[0]
        build.add(found.find(name, stem, fallback=name), [" ".join(texts)] if paragraphs else texts)
    return build.done(path)


def read_anet(
    path: str | Path, videos: str | Path | None = None, paragraphs: bool = True
) -> EvalSet:
    """ActivityNet Captions `val_1.json` ({"v_ID": {"duration", "timestamps", "sentences"}}): with
    `paragraphs` (the standard protocol) a video's sentences joined with spaces, else one caption
    each. The file is `v_ID.*` or `ID.*` (CLIP4Clip strips "v_") under `videos`."""
    path = Path(path)
    data = _json(path)
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and "sentences" in v for v in data.values()
    ):
        raise ValueError(f"{path}: expected ActivityNet Captions' {{'v_ID': {{'sentences'}}}}")
    found, build = _Videos(_root(path, videos)), _Builder()
    for key, item in data.items():
        bare = key[2:] if key.startswith("v_") else key
        sentences = [str(s) for s in item["sentences"]]
        build.add(found.find(key, bare), [" ".join(sentences)] if paragraphs else sentences)
    return build.done(path)


# -------------------------------------------------------------------------------------- LSMDC


def read_lsmdc(path: str | Path, videos: str | Path | None = None) -> EvalSet:
    """LSMDC's tab-separated files (`LSMDC16_challenge_1000_publictect.csv` for the 1,000-clip
    test): CLIP_ID, START_ALIGNED, END_ALIGNED, START_EXTRACTED, END_EXTRACTED, SENTENCE; no
    header. The clip `CLIP_ID.avi` is looked up anywhere under `videos` (the release keeps one
    folder per movie, `CLIP_ID` minus its last `_` part)."""
    path = Path(path)
    found, build = _Videos(_root(path, videos), ".avi"), _Builder()
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 6:
            raise ValueError(f"{path}:{n}: expected 6 tab-separated fields, got {len(parts)}")
        clip_id, sentence = parts[0].strip(), parts[5]
        movie = clip_id.rsplit("_", 1)[0]
        build.add(found.find(clip_id, fallback=f"{movie}/{clip_id}.avi"), [sentence])
    return build.done(path)


# ----------------------------------------------------------------------------------- Kinetics


def label_key(name: str) -> str:
    """A class name as matched between files: quotes and case dropped, `_` as spaces."""
    return " ".join(name.strip().strip("\"'").replace("_", " ").lower().split())


def read_class_list(path: str | Path) -> list[str]:
    """Class names, in order: a text file (one per line), a csv with a 'name' (or 'label')
    column such as `kinetics_400_labels.csv` (id,name), or a json list / {name: index} map.
    Underscores become spaces (folder-style names) and surrounding quotes are dropped."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    names: list[str]
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            names = [k for k, _ in sorted(data.items(), key=lambda kv: int(kv[1]))]
        else:
            names = [str(x) for x in data]
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        column = next((c for c in ("name", "label", "class") if rows and c in rows[0]), None)
        if column is None:
            raise ValueError(f"{path}: expected a 'name' or 'label' column")
        names = [row[column] for row in rows]
    else:
        names = text.splitlines()
    out = [" ".join(n.strip().strip("\"'").replace("_", " ").split()) for n in names]
    out = [n for n in out if n]
    if len({label_key(n) for n in out}) != len(out):
        raise ValueError(f"{path}: class names repeat")
    return out


def kinetics_file_name(youtube_id: str, start: float | str, end: float | str) -> str:
    """The clip file the Kinetics download scripts write: `{id}_{start:06d}_{end:06d}.mp4`."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}.mp4"


def read_kinetics(
    path: str | Path,
    videos: str | Path | None = None,
    classes: Sequence[str] | str | Path | None = None,
) -> EvalSet:
    """Kinetics-400/600/700 `val.csv` (label,youtube_id,time_start,time_end,split): one clip per
    row, found by its file name (`kinetics_file_name`, any extension) anywhere under `videos`
    (flat, or one folder per class). Labels are class names; `classes` (a list or a class-list
    file) fixes the class set and order, else the sorted distinct labels."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{path}: expected a csv with columns {sorted(need)}")
    names = (
        read_class_list(classes)
        if isinstance(classes, (str, Path))
        else list(classes)
        if classes is not None
        else sorted({" ".join(r["label"].replace("_", " ").split()) for r in rows})
    )
    found = _Videos(_root(path, videos))
    data = EvalSet(videos=[], classes=names)
    for row in rows:
        name = kinetics_file_name(row["youtube_id"], row["time_start"], row["time_end"])
        data.videos.append(found.find(name, os.path.splitext(name)[0]))
        data.labels.append(row["label"])
    return data


# ------------------------------------------------------------------------------------- detect


def read_id_list(path: str | Path) -> list[str]:
    """Video ids of a split: one per line (`test_list.txt`), or a csv's `video_id` column (the
    JSFusion csv, to pick MSR-VTT 1k-A out of `MSRVTT_data.json`)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        if not rows or "video_id" not in rows[0]:
            raise ValueError(f"{path}: expected a 'video_id' column")
        return list(dict.fromkeys(r["video_id"].strip() for r in rows))
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]


def detect_format(path: str | Path) -> str:
    """The format of an annotation file, from its extension and first record."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return "msvd"
    if suffix == ".tsv":
        return "lsmdc"
    if suffix == ".jsonl":
        return "generic"
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            first = f.readline()
        if first.count("\t") == 5:
            return "lsmdc"
        header = {c.strip() for c in next(csv.reader([first]), [])}
        if {"youtube_id", "time_start"} <= header:
            return "kinetics"
        if {"video_id", "sentence"} <= header:
            return "msrvtt-csv"
        if {"VideoID", "Description"} <= header:
            return "msvd"
        return "generic"
    if suffix == ".json":
        data = _json(path)
        if isinstance(data, dict) and "sentences" in data:
            return "msrvtt-json"
        if (
            isinstance(data, dict)
            and data
            and all(isinstance(v, dict) and "sentences" in v for v in data.values())
        ):
            return "anet"
        if isinstance(data, list) and data and isinstance(data[0], dict):
            if {"description", "times"} <= set(data[0]):
                return "didemo"
            return "generic"
    raise ValueError(f"{path}: cannot tell the annotation format; pass --format")


def load(
    path: str | Path,
    fmt: str = "auto",
    *,
    task: str = "auto",
    videos: str | Path | None = None,
    ids: Sequence[str] | None = None,
    classes: Sequence[str] | str | Path | None = None,
    paragraphs: bool | None = None,
) -> EvalSet:
    """Read any supported annotation file into an EvalSet (`fmt` "auto": `detect_format`).

    `videos`: where the videos are (default: the annotation file's folder); `ids`: the split's
    video ids, for the formats that hold several splits (msrvtt-json, msvd, didemo); `classes`:
    Kinetics class names; `paragraphs`: one caption per video for DiDeMo / ActivityNet (default
    on) and for generic rows with caption lists (default off). `task` matters only for generic
    files ("auto": classification when the first row has a 'label')."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    log.debug("%s: %s annotations", path, fmt)
    if fmt == "generic":
        if task == "auto":
            first = read_rows(path)[:1]
            task = "classification" if first and "label" in first[0] else "retrieval"
        data = read_generic(path, task, videos=videos, paragraphs=bool(paragraphs))
        if classes is not None and task == "classification":
            data.classes = (
                read_class_list(classes) if isinstance(classes, (str, Path)) else list(classes)
            )
        return data
    if fmt == "msrvtt-csv":
        return read_msrvtt_csv(path, videos)
    if fmt == "msrvtt-json":
        return read_msrvtt_json(path, videos, ids)
    if fmt == "msvd":
        return read_msvd(path, videos, ids)
    if fmt == "didemo":
        return read_didemo(path, videos, ids, paragraphs=paragraphs is not False)
    if fmt == "anet":
        return read_anet(path, videos, paragraphs=paragraphs is not False)
    if fmt == "lsmdc":
        return read_lsmdc(path, videos)
    return read_kinetics(path, videos, classes)


def load_eval_set(path: str | Path, task: str = "retrieval") -> EvalSet:
    """A generic annotation file (`read_generic`): rows grouped by video; relative video
    paths are relative to the file."""
    return read_generic(path, task)


def resolve_labels(
    labels: Sequence[str | int], names: Sequence[str] | None = None
) -> tuple[list[str], list[int]]:
    """Class names and integer labels. `names`: the class list (labels are matched by
    `label_key`: case, quotes and `_`/space do not matter; integer labels index it);
    without it, the sorted distinct labels."""
    given = bool(names)
    names = list(names) if names else sorted({str(x).strip() for x in labels})
    lookup = {label_key(n): i for i, n in enumerate(names)}
    out = []
    for x in labels:
        s = str(x).strip()
        if label_key(s) in lookup:
            out.append(lookup[label_key(s)])
        elif given and s.lstrip("-").isdigit() and 0 <= int(s) < len(names):
            out.append(int(s))
        else:
            raise ValueError(f"label {x!r} is not a known class")
    return names, out
