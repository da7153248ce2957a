"""The paper's subsets (DIV, FLT, Aes, random, SQL filter) from clips.parquet or release metadata."""

from internvid.config import SubsetConfig
from internvid.subsets.errors import SubsetError
from internvid.subsets.make import Step, SubsetResult, make_subset
from internvid.subsets.rules import (
    Draw,
    Rule,
    Top,
    check_config,
    get_rule,
    register_rule,
    rule_names,
    rules,
    unregister_rule,
)
from internvid.subsets.sampling import (
    DEFAULT_RNG,
    DEFAULT_SEED,
    Rng,
    choice_runs,
    div_choice,
    reference_choice,
    uniform_choice,
)

__all__ = [
    "DEFAULT_RNG",
    "DEFAULT_SEED",
    "Draw",
    "Rng",
    "Rule",
    "Step",
    "SubsetConfig",
    "SubsetError",
    "SubsetResult",
    "Top",
    "check_config",
    "choice_runs",
    "div_choice",
    "get_rule",
    "make_subset",
    "reference_choice",
    "register_rule",
    "rule_names",
    "rules",
    "uniform_choice",
    "unregister_rule",
]
