"""A run folder read into what the report shows, and the one table of score names it describes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from internvid.records import CAPTION_PRIORITY

log = logging.getLogger(__name__)


class ScoreInfo(NamedTuple):
    """What the report says about one score."""

    description: str  # shown in the caption of the score's histogram
    range: tuple[float, float] | None  # fixed histogram range, or None for the data's min..max


# Scores the report describes that no scorer of the registry writes: (place among the
# registered scores' `order`, what it is). umt comes from release metadata, motion and frozen
# from the split.
OTHER_SCORES: dict[str, tuple[int, ScoreInfo]] = {
    "umt": (20, ScoreInfo("UMT video-text similarity (from the metadata)", None)),
    "motion": (50, ScoreInfo("mean absolute luma change per frame (0-255, at width 256)", None)),
    "frozen": (60, ScoreInfo("fraction of frames with no change", (0.0, 1.0))),
}


def score_table() -> dict[str, ScoreInfo]:
    """Every score the report describes, in the order their histograms appear: the registered
    scorers' columns (internvid.scores) and OTHER_SCORES, by place. A score of a run missing
    here is still shown, after these, with GENERIC_SCORE."""
    from internvid.scores.base import describe, scorers

    rows = [(place, 0, name, info) for name, (place, info) in OTHER_SCORES.items()]
    for cls in scorers().values():
        for i, column in enumerate(cls.output_columns()):
            rows.append((cls.order, i + 1, column, ScoreInfo(*describe(column))))
    return {name: info for *_, name, info in sorted(rows, key=lambda r: (r[0], r[1]))}


# what the report says about a score of the run that score_table() does not describe
GENERIC_SCORE = ScoreInfo("a score of this run that the report's table does not describe", None)


def score_info(name: str) -> ScoreInfo:
    """The description and histogram range of score `name` (GENERIC_SCORE when not in the table)."""
    return score_table().get(name, GENERIC_SCORE)


CLIP_COLUMNS = (
    "clip_id",
    "video_id",
    "start",
    "end",
    "duration",
    "source",
    "captions",
    "scores",
    "meta",
    "status",
    "shard",
)  # columns of clips.parquet the report reads (frame_captions can be large: not read)


def score_order(names: list[str]) -> list[str]:
    """Score names in score_table()'s order, then the others alphabetically."""
    table = score_table()
    known = [n for n in table if n in names]
    return known + sorted(n for n in names if n not in table)


@dataclass
class RunData:
    """What the report reads from a run folder; a None field comes with a problem text."""

    run_dir: Path
    clips: Any = None  # pyarrow Table of CLIP_COLUMNS, or None
    videos: Any = None  # pyarrow Table of videos.parquet, or None
    failures: list[dict[str, Any]] | None = None
    stats: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    config_text: str | None = None
    problems: dict[str, str] = field(default_factory=dict)  # file name -> what is wrong


def _problem(data: RunData, name: str, e: BaseException | None = None) -> None:
    if e is None:
        data.problems[name] = f"{name} is missing from {data.run_dir}"
    else:
        data.problems[name] = f"{name} could not be read: {type(e).__name__}: {e}"
        log.warning("report: %s", data.problems[name])


def load_run(run_dir: Path) -> RunData:
    """Read every input of the report that exists; note what is missing or broken."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    data = RunData(run_dir)
    path = run_dir / "clips.parquet"
    if path.is_file():
        try:
            names = set(pq.read_schema(path).names)
            data.clips = pq.read_table(path, columns=[c for c in CLIP_COLUMNS if c in names])
        except (OSError, pa.ArrowException) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "videos.parquet"
    if path.is_file():
        try:
            data.videos = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "failures.jsonl"
    if path.is_file():
        try:
            rows, bad = [], 0
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        bad += 1
                        continue
                    if isinstance(row, dict):
                        rows.append(row)
            data.failures = rows
            if bad:
                data.problems[path.name] = f"{bad} line(s) of failures.jsonl are not JSON"
        except (OSError, UnicodeDecodeError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "stats.json"
    if path.is_file():
        try:
            stats = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(stats, dict):
                raise ValueError("not a JSON object")
            data.stats = stats
        except (OSError, ValueError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "config.yaml"
    if path.is_file():
        try:
            data.config_text = path.read_text(encoding="utf-8")
            config = yaml.safe_load(data.config_text)
            data.config = config if isinstance(config, dict) else None
        except (OSError, ValueError, yaml.YAMLError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    return data


def column_values(table: Any, name: str) -> list[Any]:
    return (
        table.column(name).to_pylist() if table is not None and name in table.column_names else []
    )


def map_values(table: Any, column: str) -> dict[str, tuple[Any, Any]]:
    """A map column as {key: (row indices (numpy), values (pyarrow array))}, vectorised."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table is None or column not in table.column_names or table.num_rows == 0:
        return {}
    arr = table.column(column).combine_chunks()
    if not isinstance(arr, pa.MapArray):
        return {}
    offsets = arr.offsets.to_numpy(zero_copy_only=False)
    valid = ~arr.is_null().to_numpy(zero_copy_only=False)
    lo, hi = int(offsets[0]), int(offsets[-1])
    owner = np.repeat(np.arange(len(arr)), np.diff(offsets))  # row of every map entry
    keep = valid[owner]  # a null row may still own entries: skip them
    rows = owner[keep]
    keys = arr.keys.slice(lo, hi - lo).filter(pa.array(keep))
    values = arr.items.slice(lo, hi - lo).filter(pa.array(keep))
    out: dict[str, tuple[Any, Any]] = {}
    for key in pc.unique(keys).to_pylist():
        sel = pc.fill_null(pc.equal(keys, key), False)
        out[key] = (rows[sel.to_numpy(zero_copy_only=False)], values.filter(sel))
    return out


def main_captions(table: Any) -> list[str | None]:
    """Per clip, the caption it is counted by: fused > release > coarse (non-empty), else None."""
    n = table.num_rows if table is not None else 0
    found: list[str | None] = [None] * n
    by_key = map_values(table, "captions")
    for kind in reversed(CAPTION_PRIORITY):
        if kind not in by_key:
            continue
        rows, values = by_key[kind]
        for r, v in zip(rows.tolist(), values.to_pylist(), strict=True):
            if v and v.strip():
                found[int(r)] = v
    return found


def word_count(text: str) -> int:
    return len(text.split())
