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


SKIPPED_COLUMNS = ("frame_captions",)  # columns of clips.parquet the report never reads (large)


def score_order(names: list[str]) -> list[str]:
    """Score names in score_table()'s order, then the others alphabetically."""
    table = score_table()
    known = [n for n in table if n in names]
    return known + sorted(n for n in names if n not in table)


@dataclass
class RunData:
    """What the report reads from a run folder; a None field comes with a problem text."""

    run_dir: Path
    clips: Any = None  # flat pyarrow Table of clips.parquet (no SKIPPED_COLUMNS), or None
    videos: Any = None  # pyarrow Table of videos.parquet, or None
    failures: list[dict[str, Any]] | None = None  # rows of failures.jsonl
    dropped: list[dict[str, Any]] | None = None  # rows of dropped.jsonl (None: not recorded)
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


def read_clips(path: Path) -> Any:
    """clips.parquet as a flat table without SKIPPED_COLUMNS; a legacy file (MAP columns
    `captions`, `scores`) is converted to the flat columns."""
    import pyarrow.parquet as pq

    from internvid.io.tables import is_legacy, upgrade_table

    schema = pq.read_schema(path)
    table = pq.read_table(path, columns=[c for c in schema.names if c not in SKIPPED_COLUMNS])
    if is_legacy(table.schema):
        table = upgrade_table(table)
        table = table.select([c for c in table.column_names if c not in SKIPPED_COLUMNS])
    return table


def _read_jsonl(data: RunData, name: str) -> list[dict[str, Any]] | None:
    """The JSON object rows of `name` in the run folder; None (with a problem) when absent or
    unreadable; lines that are not JSON objects are counted as a problem and skipped."""
    path = data.run_dir / name
    if not path.is_file():
        _problem(data, name)
        return None
    rows, bad = [], 0
    try:
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
                else:
                    bad += 1
    except (OSError, UnicodeDecodeError) as e:
        _problem(data, name, e)
        return None
    if bad:
        data.problems[name] = f"{bad} line(s) of {name} are not JSON objects"
    return rows


def load_run(run_dir: Path) -> RunData:
    """Read every input of the report that exists; note what is missing or broken."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    data = RunData(run_dir)
    path = run_dir / "clips.parquet"
    if path.is_file():
        try:
            data.clips = read_clips(path)
        except (OSError, ValueError, KeyError, pa.ArrowException) as e:
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
    data.failures = _read_jsonl(data, "failures.jsonl")
    data.dropped = _read_jsonl(data, "dropped.jsonl")
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


def caption_columns(table: Any) -> dict[str, Any]:
    """The caption columns of a flat clips table: {caption name: pyarrow column}."""
    from internvid.io.tables import caption_column, caption_names

    if table is None:
        return {}
    return {name: table.column(caption_column(name)) for name in caption_names(table.schema)}


def score_arrays(table: Any) -> dict[str, Any]:
    """The score columns of a flat clips table with at least one value: {name: float64 numpy
    array, NaN where the clip has none}."""
    import numpy as np
    import pyarrow.compute as pc

    from internvid.io.tables import score_names_of

    if table is None:
        return {}
    out = {}
    for name in score_names_of(table.schema):
        col = table.column(name)
        if col.null_count < len(col):
            out[name] = np.asarray(pc.fill_null(col, float("nan")).to_numpy(), dtype=np.float64)
    return out


def main_captions(table: Any) -> list[str | None]:
    """Per clip, the caption it is counted by (the `caption` column: fused > release > coarse,
    not blank), else None."""
    n = table.num_rows if table is not None else 0
    if not n:
        return []
    if "caption" in table.column_names:
        found = table.column("caption").to_pylist()
    else:  # a table without the best-caption column: pick it from the caption columns
        found = [None] * n
        columns = caption_columns(table)
        for kind in reversed(CAPTION_PRIORITY):
            if kind in columns:
                for i, v in enumerate(columns[kind].to_pylist()):
                    if v and v.strip():
                        found[i] = v
    return [v if v and v.strip() else None for v in found]


def word_count(text: str) -> int:
    return len(text.split())
