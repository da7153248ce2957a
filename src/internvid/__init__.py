"""internvid: the InternVid video-text data pipeline and the ViCLIP model."""

import sys
import types

__version__ = "0.1.0"

# the Python API (internvid/api.py), imported on first use so that `import internvid` stays fast
_API = (
    "open",
    "subset",
    "export",
    "load_viclip",
    "RunFolder",
    "run_config",
    "run_outcome",
    "score_outcome",
)


def __getattr__(name: str):
    if name in _API:
        from internvid import api

        return getattr(api, name)
    raise AttributeError(f"module 'internvid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "run"])


class _RunModule(types.ModuleType):
    """`internvid.run`, the module, is also `iv.run(...)`, the API's function
    (internvid.api.run): the package attribute `run` is always the module, as the import
    system sets it, and calling it runs the pipeline."""

    def __call__(self, *args, **kwargs):
        from internvid.api import run

        return run(*args, **kwargs)


class _Package(types.ModuleType):
    """The package's module type: its `run` attribute is the callable internvid.run module."""

    @property
    def run(self) -> types.ModuleType:
        import importlib

        module = importlib.import_module("internvid.run")
        if not isinstance(module, _RunModule):
            module.__class__ = _RunModule
        return module

    @run.setter
    def run(self, module: types.ModuleType) -> None:  # the import system setting the submodule
        if not isinstance(module, _RunModule):
            module.__class__ = _RunModule


sys.modules[__name__].__class__ = _Package
