"""The Scorer protocol and its registry: a score is one file in scores/ that registers itself."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from internvid.config import ScoreConfig
    from internvid.media.onepass import FrameNeed
    from internvid.records import Clip


@dataclass(frozen=True)
class ModelRef:
    """A model a scorer needs, as configured: what the hub resolves before any work."""

    ref: str  # hub id, local folder or file, OWNER/REPO/FILE, URL, or tiny:NAME
    kind: str  # "folder" (a from_pretrained folder or hub id) or "file" (one weight file)


@dataclass
class ScoreItem:
    """One clip to score: the clip, the frames the scorer's needs asked for, its caption."""

    clip: Clip  # the clip (scores are written into clip.scores by the stage)
    frames: dict[str, list[np.ndarray]]  # FrameNeed name -> RGB frames (H, W, 3) uint8
    caption: str  # the clip's best caption ("" when it has none)


@dataclass
class Loaded:
    """What `Scorer.load` gets: the models chosen and where they resolved, device, dtype."""

    refs: dict[str, ModelRef]  # role -> the model chosen for it (tiny or real, configured)
    paths: dict[str, str]  # configured reference -> resolved folder, file or hub id
    device: str  # "cpu", "cuda", "cuda:N" (already picked)
    dtype: Any  # torch dtype (already picked)
    cache_dir: str = ""  # Hugging Face cache folder
    shared: dict[str, Any] = field(default_factory=dict)  # objects scorers of one stage share

    def path(self, role: str) -> str:
        """Where the model of `role` resolved (a folder, a file or a hub id)."""
        ref = self.refs[role].ref
        return self.paths.get(ref, ref)


class Scorer:
    """A per-clip score. Subclass, set the class attributes, implement the methods, decorate
    with `@register`: the config, `--scores` help, subset columns and report pick it up.

    Required: `name`, `description`, `frame_needs`, `load`, `score`. Optional: `columns` (when
    it writes more than its own column), `value_range`, `needs_caption`, `order`, `models`.
    """

    name: ClassVar[str]  # the column and the name in --scores / score.scores
    description: ClassVar[str]  # one line: what the number is (help text, report)
    columns: ClassVar[tuple[str, ...]] = ()  # every column it writes; () means (name,)
    value_range: ClassVar[tuple[float, float] | None] = None  # bounds, when it has them
    needs_caption: ClassVar[bool] = False  # clips without a caption get no value
    order: ClassVar[int] = 100  # place among the scores (columns, help, computing order)
    # the other columns it writes: column -> (description, value range)
    column_info: ClassVar[dict[str, tuple[str, tuple[float, float] | None]]] = {}

    def __init__(self, cfg: ScoreConfig) -> None:
        self.cfg = cfg

    @classmethod
    def output_columns(cls) -> tuple[str, ...]:
        return cls.columns or (cls.name,)

    def frame_needs(self) -> tuple[FrameNeed, ...]:
        """The frames of each clip this score reads (served by the split's single pass)."""
        raise NotImplementedError

    def models(self, tiny: bool) -> dict[str, ModelRef]:
        """Role -> the model to resolve before any work (`tiny`: the random-weight stand-ins).
        Scorers that name the same role share its model (e.g. "clip")."""
        return {}

    def load(self, ctx: Loaded) -> None:
        """Load the models (in the worker, once)."""

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        """Column -> value for each item, in order (an empty dict: no value for that clip)."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Scorer]] = {}
_DISCOVERED = False


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a Scorer known by its name."""
    if not getattr(cls, "name", "") or not getattr(cls, "description", ""):
        raise TypeError(f"{cls.__name__}: a scorer needs a name and a description")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(
            f"score {cls.name!r} is registered twice ({other.__name__}, {cls.__name__})"
        )
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a score (tests that register a toy one clean up with this)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import every module of the scores package once, so that each registers its scorer."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = __name__.rpartition(".")[0]  # internvid.scores
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name != "base":
            importlib.import_module(f"{package}.{info.name}")
    _DISCOVERED = True


def scorers() -> dict[str, type[Scorer]]:
    """Every registered scorer by name, in their order."""
    _discover()
    ordered = sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))
    return {c.name: c for c in ordered}


def score_names() -> tuple[str, ...]:
    """The names `--scores` accepts, in order."""
    return tuple(scorers())


def score_columns() -> tuple[str, ...]:
    """Every column the registered scorers write, in order."""
    return tuple(col for c in scorers().values() for col in c.output_columns())


def describe(column: str) -> tuple[str, tuple[float, float] | None] | None:
    """(description, value range) of a score column, None when no scorer writes it."""
    for c in scorers().values():
        if column == c.name:
            return c.description, c.value_range
        if column in c.column_info:
            return c.column_info[column]
    return None


def get(name: str) -> type[Scorer]:
    """The scorer registered as `name` (KeyError naming the choices otherwise)."""
    found = scorers()
    if name not in found:
        raise KeyError(f"unknown score {name!r}; choose from {', '.join(found)}")
    return found[name]
