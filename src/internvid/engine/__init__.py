"""The engine: samples, stages, pipelines and executors that every pipeline step plugs into."""

from internvid.engine.pipeline import Pipeline, PipelineError
from internvid.engine.sample import Dropped, Failure, Probed, Sample
from internvid.engine.stage import Context, Filter, Resources, Stage, StageError, StageStats

__all__ = [
    "Context",
    "Dropped",
    "Failure",
    "Filter",
    "Pipeline",
    "PipelineError",
    "Probed",
    "Resources",
    "Sample",
    "Stage",
    "StageError",
    "StageStats",
]
