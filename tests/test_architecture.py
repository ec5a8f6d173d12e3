"""The import graph of lrm-bench's packages, read from the source (``ast``), every
import counted, the ones inside functions too: no cycle between modules, and arrows
that run one way (``lrm_tasks`` <- ``compressors``-free; ``lrm_backends`` on top;
backends below the CLI and the run validator).

``python tests/test_architecture.py [ROOT]`` prints the findings for any checkout.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lrm_tasks", "compressors", "lrm_backends")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere in its body. ``from pkg import x``
    counts as importing ``pkg.x`` when that is a module, else ``pkg``."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    modules = set(files)
    return {name: imports_of(path, name, modules) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _top(module: str) -> str:
    return module.split(".")[0]


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def wrong_way_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Imports against the layering, as ``"a -> b (rule)"``."""
    bad = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            rule = None
            if _top(src) in ("lrm_tasks", "compressors") and _top(dst) == "lrm_backends":
                rule = f"{_top(src)} must not import lrm_backends"
            elif _top(src) == "lrm_tasks" and _top(dst) == "compressors":
                rule = "lrm_tasks must not import compressors"
            elif _top(src) == "compressors" and _top(dst) == "lrm_tasks":
                rule = "compressors must not import lrm_tasks"
            elif _in(src, "lrm_backends.models") and (_in(dst, "lrm_backends.cli") or _in(dst, "lrm_backends.run.validate")):
                rule = "a backend must not import the CLI or the run validator"
            elif _in(src, "lrm_backends.report") and _in(dst, "lrm_backends.models"):
                rule = "the report must not import a backend"
            if rule:
                bad.append(f"{src} -> {dst} ({rule})")
    return bad


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "lrm_backends"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "a.py").write_text("def f():\n    from lrm_backends.cli import main\n")
    (pkg / "cli.py").write_text("from .models import a\n")
    for other in ("lrm_tasks", "compressors"):
        (tmp_path / other).mkdir()
        (tmp_path / other / "__init__.py").write_text("import lrm_backends.cli\n" if other == "lrm_tasks" else "")
    graph = import_graph(tmp_path)
    assert graph["lrm_backends.models.a"] == {"lrm_backends.cli"}
    assert graph["lrm_backends.cli"] == {"lrm_backends.models.a"}
    assert cycles(graph) == [["lrm_backends.cli", "lrm_backends.models.a"]]
    assert wrong_way_arrows(graph) == [
        "lrm_backends.models.a -> lrm_backends.cli (a backend must not import the CLI or the run validator)",
        "lrm_tasks -> lrm_backends.cli (lrm_tasks must not import lrm_backends)",
    ]


def test_no_import_cycle_between_modules():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_run_one_way():
    bad = wrong_way_arrows(import_graph())
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    g = import_graph(root)
    found, bad = cycles(g), wrong_way_arrows(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} import edges")
    print(f"{len(found)} cycle(s):")
    for c in found:
        print("  " + " <-> ".join(c))
    print(f"{len(bad)} wrong-way import(s):")
    for b in bad:
        print("  " + b)
