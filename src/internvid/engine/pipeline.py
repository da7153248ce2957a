"""A pipeline: an ordered list of stages, validated before any work starts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from internvid.engine.sample import Failure, Sample
from internvid.engine.stage import Stage, StageStats


class PipelineError(ValueError):
    """The stages cannot run in this order (a need nobody provides, a duplicate name...)."""


@dataclass
class Pipeline:
    """Stages in order; `initial` names what the input readers already provide."""

    stages: list[Stage]  # steps, run in order on every sample
    initial: frozenset[str] = field(
        default_factory=lambda: frozenset({"video"})
    )  # provided by readers

    def __post_init__(self) -> None:
        self.validate()
        self._wire_frames()

    def _wire_frames(self) -> None:
        """Hand every stage's declared `frame_needs` to the stage that provides "frames"."""
        needs = tuple(n for s in self.stages for n in getattr(s, "frame_needs", ()))
        provider = next((s for s in self.stages if "frames" in s.provides), None)
        if provider is not None:
            provider.request_frames(needs)

    def validate(self) -> None:
        """Check every stage's needs are met by the readers or an earlier stage."""
        have = set(self.initial)
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, Stage):
                raise PipelineError(f"step {i} is not a Stage: {stage!r}")
            if stage.name in seen:
                raise PipelineError(f"two stages are named {stage.name!r}")
            seen.add(stage.name)
            stage_needs = set(stage.needs) | (
                {"frames"} if getattr(stage, "frame_needs", ()) else set()
            )
            missing = sorted(stage_needs - have)
            if missing:
                raise PipelineError(
                    f"stage {stage.name!r} (step {i}) needs {missing}, which no earlier stage "
                    f"provides (available: {sorted(have)})"
                )
            have |= stage.provides

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def new_stats(self) -> dict[str, StageStats]:
        return {s.name: s.new_stats() for s in self.stages}

    def run(
        self, samples: Iterable[Sample], stats: dict[str, StageStats], failures: list[Failure]
    ) -> list[Sample]:
        """Run every stage over `samples`, in batches of each stage's batch size."""
        return self.run_stages(self.stages, samples, stats, failures)

    @staticmethod
    def run_stages(
        stages: list[Stage],
        samples: Iterable[Sample],
        stats: dict[str, StageStats],
        failures: list[Failure],
    ) -> list[Sample]:
        """Run `stages` (consecutive stages of a pipeline) the way `run` runs them all."""
        batch_in = list(samples)
        for stage in stages:
            out: list[Sample] = []
            size = max(1, stage.batch_size)
            for i in range(0, len(batch_in), size):
                out.extend(stage.run_batch(batch_in[i : i + size], stats[stage.name], failures))
            batch_in = out
        return batch_in
