"""The subset rules: each one registered object (name, help, its filters, ranking and draw)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from internvid.config import SubsetConfig
from internvid.subsets.errors import SubsetError
from internvid.subsets.sampling import LEGACY_SEED_MAX, Rng
from internvid.subsets.source import score_expr
from internvid.subsets.where import check_where

Filter = tuple[str, str]  # (label in the summary, SQL predicate over the view `src`)
KEEP_TABLE = "_keep_ids"  # the table of --keep-list's clip ids (column id), loaded as data
DEFAULTS = SubsetConfig()  # the paper's settings, quoted by the rules' help


class Draw(enum.StrEnum):
    """How a rule samples the rows its filters leave."""

    weighted = "weighted"  # N clips (-n required), each weighted 1 / (clips of its video): DIV
    uniform = "uniform"  # N clips (-n required), uniformly
    optional = "optional"  # every row left; with -n, a uniform sample of N of them


@dataclass(frozen=True)
class Top:
    """A ranking step between the filters and the draw: the best ceil(fraction * n) rows."""

    expr: str  # SQL expression of the score, higher is better (ties: canonical order)
    name: str  # the score as the summary names it
    fraction: float  # of the rows left, rounded up (at least one row of any rows left)


def _no_filters(cfg: SubsetConfig, kind: str) -> list[Filter]:
    return []


@dataclass(frozen=True)
class Rule:
    """A subset: the filters it adds, an optional ranking, and how it draws."""

    name: str  # the RULE of `internvid subset`
    help: str  # what it selects, one sentence (the command's help)
    draw: Draw  # how the rows left after the filters (and the ranking) are sampled
    # (config, input kind "parquet" | "release") -> its filters, applied after the input's
    # malformed rows and --where; raises SubsetError on options the input cannot serve
    filters: Callable[[SubsetConfig, str], list[Filter]] = _no_filters
    # (config, input kind) -> a ranking after the filters; None: none
    top: Callable[[SubsetConfig, str], Top] | None = None
    # the rule's own option checks (raise SubsetError); None: none
    check: Callable[[SubsetConfig], None] | None = None


_RULES: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    """Make a rule known by its name (the CLI's choices and help follow the registry)."""
    other = _RULES.get(rule.name)
    if other is not None and other is not rule:
        raise ValueError(f"subset rule {rule.name!r} is registered twice")
    _RULES[rule.name] = rule
    return rule


def unregister_rule(name: str) -> None:
    """Forget a rule (tests that register one clean up with this)."""
    _RULES.pop(name, None)


def rules() -> dict[str, Rule]:
    """Every rule by name, in the order they were registered."""
    return dict(_RULES)


def rule_names() -> tuple[str, ...]:
    return tuple(_RULES)


def get_rule(name: str) -> Rule:
    """The rule called `name` (SubsetError naming the choices otherwise)."""
    if name not in _RULES:
        raise SubsetError(f"unknown rule {name!r}: one of {list(_RULES)}")
    return _RULES[name]


def fmt_number(x: float) -> str:
    """A number as the summary writes it (4, 0.5, 120)."""
    return f"{x:g}"


def check_config(cfg: SubsetConfig) -> Rule:
    """The rule of `cfg`, once every option is checked (SubsetError naming the option)."""
    rule = get_rule(cfg.rule)
    if rule.draw is not Draw.optional and cfg.size is None:
        raise SubsetError(f"{rule.name} needs the number of clips to draw (-n)")
    try:
        rng = Rng(cfg.rng)
    except ValueError:
        raise SubsetError(f"unknown --rng {cfg.rng!r}: one of {[r.value for r in Rng]}") from None
    if rng is Rng.legacy and not 0 <= cfg.seed <= LEGACY_SEED_MAX:
        raise SubsetError(f"--rng legacy takes seeds 0 .. {LEGACY_SEED_MAX} (np.random.seed)")
    try:
        cfg.validate()
    except ValueError as e:
        raise SubsetError(str(e)) from None
    if rule.check is not None:
        rule.check(cfg)
    return rule


def filters(cfg: SubsetConfig, kind: str, columns: Iterable[str] | None = None) -> list[Filter]:
    """Every filter of a subset, in order: the input's malformed rows, --keep-list, --where,
    the rule's.
    --where becomes the SQL subsets.where.check_where renders (SubsetError on anything but one
    safe expression; on a name that is none of `columns`, unless None)."""
    steps: list[Filter] = []
    if kind == "release":
        steps.append(("malformed rows", "_valid"))
    if cfg.keep_list:  # the ids are data: make._load_keep_list fills KEEP_TABLE
        steps.append(
            (f"keep list {Path(cfg.keep_list).name}", f"clip_id IN (SELECT id FROM {KEEP_TABLE})")
        )
    if cfg.where:
        steps.append((f"where {cfg.where}", f"({check_where(cfg.where, columns)})"))
    return steps + get_rule(cfg.rule).filters(cfg, kind)


# --- the paper's subsets --------------------------------------------------------------------------


def _flt_filters(cfg: SubsetConfig, kind: str) -> list[Filter]:
    lo, hi = cfg.min_duration, cfg.max_duration
    expr, name = score_expr(cfg.score, kind)
    return [
        (
            f"duration {fmt_number(lo)}-{fmt_number(hi)} s",
            f"duration >= {lo!r} AND duration <= {hi!r}",
        ),
        (f"no {name}", f"isfinite({expr})"),
    ]


def _flt_top(cfg: SubsetConfig, kind: str) -> Top:
    expr, name = score_expr(cfg.score, kind)
    return Top(expr, name, cfg.top_fraction)


def _aes_filters(cfg: SubsetConfig, kind: str) -> list[Filter]:
    aesthetic = score_expr("aesthetic", kind)[0]
    steps = [
        (f"aesthetic >= {fmt_number(cfg.min_aesthetic)}", f"{aesthetic} >= {cfg.min_aesthetic!r}")
    ]
    if cfg.max_text_overlay is not None:
        if kind == "release":
            raise SubsetError("--max-text-overlay: release metadata has no text_overlay score")
        cap, overlay = cfg.max_text_overlay, score_expr("text_overlay", kind)[0]
        steps.append((f"text_overlay <= {fmt_number(cap)}", f"{overlay} <= {cap!r}"))
    return steps


def _needs_where(cfg: SubsetConfig) -> None:
    if not cfg.where and not cfg.keep_list:
        raise SubsetError("the where rule needs --where (or --keep-list)")


# InternVid-10M-DIV: N clips, each weighted 1 / (clips of its video), seeded as the release
register_rule(Rule("div", "N clips weighted 1/(clips of the video).", Draw.weighted))
# InternVid-10M-FLT: duration 1-120 s, the top 30% by a score, then DIV N
register_rule(
    Rule(
        "flt",
        f"duration {fmt_number(DEFAULTS.min_duration)}-{fmt_number(DEFAULTS.max_duration)} s, "
        f"top {fmt_number(DEFAULTS.top_fraction * 100)}% by --score, then div.",
        Draw.weighted,
        filters=_flt_filters,
        top=_flt_top,
    )
)
# InternVid-Aes-18M: aesthetic >= 4 (optionally text_overlay <= a cap)
register_rule(
    Rule("aes", f"aesthetic >= {fmt_number(DEFAULTS.min_aesthetic)}.", Draw.optional, _aes_filters)
)
# N clips uniformly (the 10M / 50M / 200M sets)
register_rule(Rule("random", "N uniformly.", Draw.uniform))
# only the --where filter (plus a uniform sample when N is given)
register_rule(Rule("where", "only --where.", Draw.optional, check=_needs_where))
