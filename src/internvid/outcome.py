"""Exit codes of the commands that produce data, and the rule that picks one from a run's counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

EXIT_OK = 0  # work was produced; failures (if any) within --max-failure-rate
EXIT_NOTHING = 1  # the command ran but produced nothing, or every input failed
EXIT_USAGE = 2  # could not start: bad options, config, inputs, missing models
EXIT_FAILURE_RATE = 3  # work was produced, but more inputs failed than --max-failure-rate allows
EXIT_LOCKED = 4  # another command is writing to the same output folder

EXIT_CODES = {  # code -> meaning, for the docs and `--help`
    EXIT_OK: "work was produced (failures, if any, within --max-failure-rate)",
    EXIT_NOTHING: "nothing was produced, or every input failed",
    EXIT_USAGE: "could not start: bad options, config, inputs or missing models",
    EXIT_FAILURE_RATE: "work was produced, but the failure rate is above --max-failure-rate",
    EXIT_LOCKED: "another command holds the output folder's lock",
}


@dataclass(frozen=True)
class Outcome:
    """What a command produced, reduced to an exit code and a one-line reason."""

    code: int  # one of EXIT_*
    message: str  # why, for the log ("" when all is well)


def outcome(
    produced: int,
    inputs: int,
    failed: int,
    max_failure_rate: float | None = None,
    what: str = "clips",
) -> Outcome:
    """The exit code of a command that read `inputs` items, of which `failed` failed, and wrote
    `produced` outputs (`what` names them). `max_failure_rate` (0-1, None: no limit) turns a run
    with too many failures into EXIT_FAILURE_RATE even though it produced something."""
    if max_failure_rate is not None and not 0.0 <= max_failure_rate <= 1.0:
        raise ValueError(f"--max-failure-rate must be within 0-1, got {max_failure_rate}")
    if produced <= 0:
        if inputs > 0 and failed >= inputs:
            return Outcome(EXIT_NOTHING, f"no {what} produced: all {inputs} input(s) failed")
        return Outcome(EXIT_NOTHING, f"no {what} produced")
    if inputs > 0 and failed >= inputs:
        return Outcome(EXIT_NOTHING, f"every one of the {inputs} input(s) failed")
    rate = failed / inputs if inputs else 0.0
    if max_failure_rate is not None and rate > max_failure_rate:
        return Outcome(
            EXIT_FAILURE_RATE,
            f"{failed} of {inputs} input(s) failed ({rate:.1%}), above --max-failure-rate "
            f"{max_failure_rate:.1%}",
        )
    return Outcome(EXIT_OK, "")
