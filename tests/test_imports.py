"""The package imports in no cycle: every import in src/ that runs (module level or in functions)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _parse(source: str) -> ast.AST:
    """ast.parse, once more on CPython 3.11's "AST constructor recursion depth mismatch"
    (a SystemError seen when a thread of an earlier test in the same process was parsing too)."""
    try:
        return ast.parse(source)
    except SystemError:
        return ast.parse(source)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports. Importing a submodule also runs its parent
    packages, so those count too (except the importer's own parents, which run first)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        deps: set[str] = set()
        tree = _parse(path.read_text(encoding="utf-8"))
        typing_only = {  # imports under `if TYPE_CHECKING:` never run
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for stmt in block.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps.update(r for r in map(resolve, names) if r)
        own = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)}
        for dep in list(deps):
            parts = dep.split(".")
            deps.update(
                ".".join(parts[:i])
                for i in range(1, len(parts))
                if ".".join(parts[:i]) in mods and ".".join(parts[:i]) not in own
            )
        deps.discard(mod)
        graph[mod] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_src():
    graph = import_graph()
    assert (
        "internvid.hub" in graph and "internvid.scores.base" in graph["internvid.scores.aesthetic"]
    )
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_models_never_import_the_pipeline_or_trainer():
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("internvid.models"):
            bad = {
                d
                for d in deps
                if d.startswith(("internvid.engine", "internvid.stages", "internvid.train"))
            }
            assert not bad, f"{mod} imports {bad}"
