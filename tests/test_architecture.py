"""The house's arrows run one way: read every module's imports (function-level ones
too) and fail on a cycle or on an import against the layering of ARCHITECTURE.md."""

from __future__ import annotations

import ast
import importlib
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from lrm_backends.builtin import BUILTIN_BACKENDS

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lrm_tasks", "compressors", "lrm_backends")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (the deepest module each name resolves
    to); a package's own submodules importing it (``cli.compress`` -> ``cli``) count."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name)
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# (importer prefix, forbidden target prefix, why)
FORBIDDEN = [
    ("lrm_tasks", "lrm_backends", "lrm_tasks is the pure core"),
    ("lrm_tasks", "compressors", "lrm_tasks is the pure core"),
    ("compressors", "lrm_backends", "compressors import neither of the others"),
    ("compressors", "lrm_tasks", "compressors import neither of the others"),
    ("lrm_backends.models", "lrm_backends.cli", "backends sit below the CLI"),
    ("lrm_backends.models", "lrm_backends.run.validate", "backends sit below the run layer's validator"),
    ("lrm_backends.run", "lrm_backends.cli", "the run layer sits below the CLI"),
    ("lrm_backends.report", "lrm_backends.models", "the report reads files, not backends"),
    ("lrm_backends.report", "lrm_backends.cli", "the report sits below the CLI"),
]


def _under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def test_no_import_cycles():
    graph = import_graph()
    # A package's __init__ re-exporting its submodules is not a cycle of logic: skip
    # edges from a package to its own children before looking.
    graph = {m: {t for t in ts if not _under(t, m)} for m, ts in graph.items()}
    assert cycles(graph) == []


def test_imports_follow_the_layers():
    bad = [
        f"{mod} -> {target} ({why})"
        for mod, targets in import_graph().items()
        for target in targets
        for src, dst, why in FORBIDDEN
        if _under(mod, src) and _under(target, dst)
    ]
    assert bad == []


def test_the_checker_sees_function_level_imports_and_cycles():
    assert "lrm_backends.run.settings" in import_graph()["lrm_backends.run.cache"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lm_eval_entry_points_name_exactly_the_builtin_backends():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = meta["project"]["entry-points"]["lm_eval.models"]
    assert entry_points == dict(BUILTIN_BACKENDS)


@pytest.mark.parametrize("name", sorted(dict(BUILTIN_BACKENDS)))
def test_entry_point_targets_import(name):
    """Each target's module imports; its class is built, or (an optional extra missing,
    e.g. vllm here) refused with the install hint."""
    module, _, attr = dict(BUILTIN_BACKENDS)[name].partition(":")
    mod = importlib.import_module(module)
    try:
        cls = getattr(mod, attr)
    except ImportError as exc:
        assert "pip install 'lrm-bench[" in str(exc)
    else:
        assert isinstance(cls, type)
