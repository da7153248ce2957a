"""The Python API (`import internvid as iv`): run the pipeline, open a run folder, subset, load ViCLIP."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from internvid.outcome import Outcome, outcome

if TYPE_CHECKING:  # the heavy modules are imported where they are used
    import duckdb
    import pandas as pd

    from internvid.config import RunConfig
    from internvid.records import Clip
    from internvid.rescore import ScoreSummary
    from internvid.run import RunSummary
    from internvid.subsets import SubsetResult

__all__ = [
    "RunFolder",
    "load_viclip",
    "open",
    "run",
    "run_config",
    "run_outcome",
    "score_outcome",
    "subset",
]

# keyword shorthands of run(): the name -> the RunConfig fields it sets (as the CLI's options do)
SHORTHANDS = {
    "models": ("caption.models",),  # caption preset: none, tiny, lite, paper (or real)
    "scores": ("score.scores",),  # registered score names, a list or "a,b"
    "device": ("caption.device", "score.device"),  # auto, cpu, cuda, cuda:N
    "dtype": ("caption.dtype", "score.dtype"),  # auto, fp32, fp16, bf16
}
MODEL_WORDS = {"real": "paper"}  # the CLI's --models words that name a caption preset
FAILURE_FIELDS = ("item", "stage", "reason", "message", "source")  # failures.jsonl's keys
QUERY_EXTRA = "pip install 'internvid[query]'"  # brings pandas and DuckDB


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(f"RunFolder's tables are pandas DataFrames: {QUERY_EXTRA}") from e
    return pd


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """`data["a"]["b"] = value` for "a.b", merging a mapping into a section's mapping."""
    *parents, last = dotted.split(".")
    target = data
    for key in parents:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            raise ValueError(f"{dotted}: {key!r} is not a section of the config")
        target = nxt
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        for k, v in value.items():
            _set_path(target[last], str(k), v)
    else:
        target[last] = value


def run_config(config: RunConfig | str | os.PathLike | dict | None = None, **overrides: Any):
    """A checked RunConfig: `config` (a RunConfig, a YAML/JSON file or a mapping; None: the
    defaults) with `overrides` laid over it. An override is a field by its dotted name
    (`**{"split.min_clip_seconds": 1.0}`), a section as a mapping (`split={"min_clip_seconds":
    1.0}`), a top-level field (`workers=2`) or a shorthand of SHORTHANDS (`models="tiny"`).
    Unknown keys and wrong types raise ValueError naming the key (config.config_from_dict)."""
    from internvid.config import RunConfig, config_from_dict, load_config

    if config is None:
        base = RunConfig()
    elif isinstance(config, RunConfig):
        base = copy.deepcopy(config)
    elif isinstance(config, dict):
        base = config_from_dict(RunConfig, config)
    else:
        base = load_config(RunConfig, config)
    data = base.to_dict()
    for key, value in overrides.items():
        if key == "models" and isinstance(value, str):
            value = MODEL_WORDS.get(value, value)
        if key == "scores" and isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        for dotted in SHORTHANDS.get(key, (key,)):
            _set_path(data, dotted, value)
    cfg = config_from_dict(RunConfig, data)
    cfg.validate()
    return cfg


def run(
    inputs: str | os.PathLike | list[str | os.PathLike],
    out: str | os.PathLike,
    config: RunConfig | str | os.PathLike | dict | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> RunSummary:
    """`internvid run` from Python: split, caption, score and cut `inputs` (paths, folders,
    globs, URLs, lists, metadata: as the command reads them) into the run folder `out`;
    returns the RunSummary (also in OUT/stats.json). `config` and `overrides` as `run_config`'s,
    e.g. `iv.run("videos/", "out", models="tiny", split={"min_clip_seconds": 2.0})`. A run
    that cannot start raises internvid.run.RunError (or ValueError for bad settings); failed
    videos do not raise: they are rows of failures.jsonl (see `run_outcome`)."""
    from internvid.run import run as run_pipeline

    cfg = run_config(config, **overrides)
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    return run_pipeline([str(i) for i in items], Path(out), cfg, overwrite, progress)


def _read_failures(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "failures.jsonl"
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _video_of(item: str) -> str:
    """The video id of a failure's item: itself, or the video part of a clip id."""
    from internvid.records import parse_clip_id

    try:
        return parse_clip_id(item)[0]
    except ValueError:
        return item


def _produced_videos(clips_path: Path) -> set[str]:
    """The video ids that have a clip in `clips_path` (empty when there is no such file)."""
    import pyarrow.parquet as pq

    if not clips_path.is_file():
        return set()
    names = pq.read_schema(clips_path).names
    if "video_id" in names:
        return {
            str(v) for v in pq.read_table(clips_path, columns=["video_id"])["video_id"].to_pylist()
        }
    ids = pq.read_table(clips_path, columns=["clip_id"])["clip_id"].to_pylist()
    return {_video_of(str(i)) for i in ids}


def run_counts(summary: RunSummary) -> tuple[int, int]:
    """(input videos, failed input videos) of a run: an input line that could not be read
    (stage "input" in failures.jsonl) is one more input, and a failed one; a video failed when
    it gave no clip and it or a clip of it has a failures.jsonl row (the summary's
    `videos_failed` where it has one); a video a rule dropped on purpose did not fail."""
    out_dir = Path(summary.out_dir)
    rows = _read_failures(out_dir)
    unreadable = sum(1 for r in rows if r.get("stage") == "input")
    failed = getattr(summary, "videos_failed", None)
    if failed is None:
        videos = {_video_of(str(r.get("item", ""))) for r in rows if r.get("stage") != "input"}
        videos -= _produced_videos(out_dir / "clips.parquet")
        failed = min(len(videos), summary.videos) + unreadable
    return summary.videos + unreadable, failed


def run_outcome(summary: RunSummary, max_failure_rate: float | None = None) -> Outcome:
    """The exit code of a run (outcome.py): 0 clips written, 1 none or every input failed, 3
    more failed input videos than `max_failure_rate` (0-1) of the inputs."""
    inputs, failed = run_counts(summary)
    return outcome(summary.clips, inputs, failed, max_failure_rate, "clips")


def score_outcome(summary: ScoreSummary, max_failure_rate: float | None = None) -> Outcome:
    """The exit code of `internvid score`: the run's clips are its inputs, those whose frames
    could not be read its failures, the others were scored (ScoreSummary.scored counts only
    the clips whose values changed, 0 when the same scores are computed again)."""
    scored = max(summary.clips - summary.failures, 0)
    return outcome(scored, summary.clips, summary.failures, max_failure_rate, "scores")


@dataclass
class RunFolder:
    """A finished run's output folder, read back: tables, failures, stats, shards, records."""

    path: Path  # the run folder (holds clips.parquet)

    @property
    def clips_path(self) -> Path:
        return self.path / "clips.parquet"

    @property
    def clips(self) -> pd.DataFrame:
        """clips.parquet as a pandas DataFrame, one row per clip, its columns as written."""
        return _pandas().read_parquet(self.clips_path)

    @property
    def videos(self) -> pd.DataFrame:
        """videos.parquet as a pandas DataFrame, one row per source video that was probed."""
        return _pandas().read_parquet(self.path / "videos.parquet")

    @property
    def failures(self) -> pd.DataFrame:
        """failures.jsonl as a DataFrame: item, stage, reason, message, source (no rows: none)."""
        rows = _read_failures(self.path)
        columns = list(dict.fromkeys([*FAILURE_FIELDS, *(k for r in rows for k in r)]))
        return _pandas().DataFrame(rows, columns=columns)

    @property
    def stats(self) -> dict[str, Any]:
        """stats.json: the RunSummary's fields (+ the "score" stage of `internvid score`)."""
        return json.loads((self.path / "stats.json").read_text(encoding="utf-8"))

    @property
    def config(self) -> RunConfig:
        """The RunConfig the run was made with (its config.yaml)."""
        from internvid.config import RunConfig

        return RunConfig.from_yaml(self.path / "config.yaml")

    def duckdb(self, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over clips.parquet on `con` (None: DuckDB's default connection),
        e.g. `.filter("aesthetic > 4").order("clip_id").df()`."""
        try:
            import duckdb
        except ImportError as e:
            raise ImportError(f"RunFolder.duckdb needs DuckDB: {QUERY_EXTRA}") from e
        return (con or duckdb.default_connection()).read_parquet(str(self.clips_path))

    def shard_paths(self) -> list[Path]:
        """The WebDataset tars of the run, in shard order."""
        return sorted((self.path / "shards").glob("*.tar"))

    def shards(self, **options: Any) -> Any:
        """A `webdataset.WebDataset` over shards/*.tar, in order: one dict per clip with
        `__key__` (the clip id) and the raw bytes of its members `mp4`, `json`, `txt`
        (`options` go to WebDataset, e.g. `shardshuffle=100`)."""
        import webdataset as wds

        urls = [str(p) for p in self.shard_paths()]
        if not urls:
            raise FileNotFoundError(f"{self.path} has no shards (shards/*.tar)")
        options.setdefault("shardshuffle", False)
        return wds.WebDataset(urls, **options)

    def records(self) -> list[Clip]:
        """Every clip of clips.parquet as an internvid.records.Clip."""
        from internvid.io.tables import read_clips

        return read_clips(self.clips_path)

    def __len__(self) -> int:
        import pyarrow.parquet as pq

        return pq.read_metadata(self.clips_path).num_rows


def open(out: str | os.PathLike) -> RunFolder:  # shadows the builtin here: use Path.open
    """The finished run in folder `out` (FileNotFoundError when it holds no clips.parquet)."""
    folder = RunFolder(Path(out))
    if not folder.clips_path.is_file():
        raise FileNotFoundError(f"{out} holds no finished run (no clips.parquet)")
    return folder


def subset(
    rule: str,
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    config: str | os.PathLike | dict | None = None,
    **options: Any,
) -> SubsetResult:
    """`internvid subset RULE RUN_DIR --out OUT` from Python: `internvid.subsets.make_subset`
    with a SubsetConfig of `config` (a YAML file or a mapping) and `options` (its fields, e.g.
    `size=1000`, `seed=42`, `where="aesthetic > 4"`). `run_dir` is a run folder, a
    clips.parquet or release metadata; writes OUT.jsonl and OUT.parquet."""
    from internvid.config import SubsetConfig, config_from_dict, read_config_file
    from internvid.subsets import make_subset

    if config is None:
        data: dict[str, Any] = {}
    elif isinstance(config, dict):
        data = dict(config)
    else:
        data = read_config_file(config)
    data.update(options, rule=rule)
    return make_subset(run_dir, out, config_from_dict(SubsetConfig, data))


def export(
    run_dir: str | os.PathLike,
    subset_parquet: str | os.PathLike,
    target: str | os.PathLike,
    fmt: str = "wds",
    clips_per_shard: int = 1000,
) -> Any:
    """`internvid subset ... --shards` from Python: the clips of a subset (OUT.parquet of
    `subset`) as WebDataset shards (`fmt="wds"`, mp4s copied byte for byte) or a Hugging Face
    `datasets` folder (`fmt="hf"`) in `target`; resumable (`internvid.subsets.export`)."""
    from internvid.subsets.export import export_subset

    return export_subset(run_dir, subset_parquet, target, clips_per_shard, fmt)


def load_viclip(ref: str, device: str = "cpu", **options: Any) -> Any:
    """A ViCLIP in eval mode (`internvid.hub.load_viclip`): `ref` a .pth / .safetensors file,
    OWNER/REPO/FILE on the hub (hub.OFFICIAL_VICLIP) or tiny:viclip; `options`: cache_dir,
    dtype, config."""
    from internvid.hub import load_viclip as hub_load_viclip

    return hub_load_viclip(ref, device=device, **options)
