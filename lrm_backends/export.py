"""Export our tasks as a self-contained lm-eval task folder (for upstream contribution).

``lrm export upstream OUT_DIR`` writes ``OUT_DIR/<name>/``: the task and group YAMLs, one
``utils.py`` generated from the ``lrm_tasks`` modules the tasks use (so there is one
source of truth, not a fork), the id lists in ``resources/``, and a README in lm-eval's
task template. The folder imports nothing but lm-eval's own dependencies and the
standard library.

``utils.py`` is the modules of :data:`BUNDLE` concatenated in order: imports between
them are dropped (``from lrm_tasks.x import a as b`` becomes ``b = a``), other imports are
hoisted and de-duplicated, and any top-level name that two modules define differently is
an error, so the flat file behaves exactly like the package.

Token accounting needs lrm-bench's hook (the model's tokenizer, the recorders), so its
metrics are left out of the exported YAMLs; everything lm-eval alone computes (scores
under both filters, no-answer rate, pass@k / maj@k with ``repeats``) is kept.

Versions: every task's ``metadata.version`` must move whenever its prompt, config or the
scoring code changes. :func:`task_hashes` hashes each task's YAMLs together with the
bundled scoring source; ``lrm_backends/task_hashes.json`` keeps the hashes of the current
versions, and a test fails when a hash moves without a version bump.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

import lrm_tasks
from lrm_tasks.benchmarks import benchmark_modules

# Bundled into utils.py, in dependency order (each module only imports earlier ones):
# the shared text helpers, every benchmark module, the benchmark table, then the rest.
BUNDLE: tuple[str, ...] = (
    "metrics", "text", "benchmarks.spec", *(f"benchmarks.{m}" for m in benchmark_modules()), "benchmarks",
    "scoring", "tokens", "overthinking", "records", "repeats", "data", "harness",
)
PACKAGE = "lrm_tasks"
# Metrics that need lrm-bench's hook (token counts): dropped from exported metric lists.
HOOK_METRICS = ("reasoning_tokens", "total_tokens", "truncated", "tokens_correct", "tokens_incorrect")
DEFAULT_NAME = "lrm"
# The hashes of the current task versions ship with the package (beside this module),
# so neither the export nor its test needs the source checkout's tests/ folder.
HASHES_NAME = "task_hashes.json"
HASHES_FILE = Path(__file__).resolve().parent / HASHES_NAME


class ExportError(RuntimeError):
    """The package cannot be exported as it stands (a name clash, a bad import)."""


@dataclass
class _Module:
    name: str
    body: str
    imports: list[str]
    defines: dict[str, str]  # top-level name -> the source that defines it


def _source_dir() -> Path:
    return Path(lrm_tasks.__file__).resolve().parent


def _split_module(name: str) -> _Module:
    path = _source_dir() / f"{name.replace('.', '/')}.py"
    if not path.is_file():  # a package: its __init__.py
        path = _source_dir() / name.replace(".", "/") / "__init__.py"
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    lines = text.splitlines()
    drop: set[int] = set()
    imports: list[str] = []
    aliases: list[str] = []
    defines: dict[str, str] = {}
    for i, node in enumerate(tree.body):
        span = range(node.lineno - 1, node.end_lineno)
        segment = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            drop.update(span)  # module docstring: becomes the section header
        elif isinstance(node, ast.ImportFrom) and node.module == "__future__":
            drop.update(span)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            drop.update(span)
            if node.module == PACKAGE:
                raise ExportError(
                    f"{path}: `from {PACKAGE} import {', '.join(a.name for a in node.names)}` imports "
                    f"modules; import the names instead (from {PACKAGE}.<module> import name) so the "
                    "flat utils.py can resolve them"
                )
            dep = node.module[len(PACKAGE) + 1 :]
            if dep not in BUNDLE[: BUNDLE.index(name)]:
                raise ExportError(f"{path} imports {node.module}, which is not bundled before {name}")
            aliases += [f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name.split(".")[0] == PACKAGE for a in getattr(node, "names", [])):
                raise ExportError(f"{path}: `{segment}` needs lrm-bench at run time")
            drop.update(span)
            imports.append(segment)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            drop.update(span)
        else:
            for target in _defined_names(node):
                defines[target] = segment
    doc = ast.get_docstring(tree) or ""
    header = [f"# {'=' * 76}", f"# from {path.relative_to(_source_dir().parent)}"]
    header += [f"# {line}".rstrip() for line in doc.splitlines()[:3]]
    body = "\n".join(l for j, l in enumerate(lines) if j not in drop).strip("\n")
    return _Module(name, "\n".join(header + aliases) + "\n\n" + body + "\n", imports, defines)


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    names: list[str] = []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.append(n.id)
    return names


def bundle_source() -> str:
    """The generated ``utils.py``: every module of :data:`BUNDLE`, flattened."""
    modules = [_split_module(name) for name in BUNDLE]
    seen: dict[str, tuple[str, str]] = {}
    clashes: list[str] = []
    for m in modules:
        for name, segment in m.defines.items():
            if name in seen and seen[name][1] != segment:
                clashes.append(f"{name!r} ({PACKAGE}/{seen[name][0]}.py and {PACKAGE}/{m.name}.py)")
            seen.setdefault(name, (m.name, segment))
    if clashes:
        raise ExportError(
            "these top-level names are defined differently in two bundled modules: "
            f"{', '.join(clashes)}; rename one of each so the flat utils.py keeps both"
        )
    hoisted = list(dict.fromkeys(i for m in modules for i in m.imports))
    head = (
        '"""Scoring for the lrm reasoning tasks (lm-eval task folder).\n\n'
        "GENERATED by `lrm export upstream` from the lrm_tasks package of lrm-bench; do not\n"
        "edit by hand: change lrm_tasks and export again.\n"
        '"""\n\nfrom __future__ import annotations\n\n'
    )
    # lm-eval executes a task's utils.py before putting it in sys.modules, but
    # dataclasses look their module up there (to read postponed annotations).
    register = "import sys as _sys\nimport types as _types\n\n_sys.modules.setdefault(__name__, _types.ModuleType(__name__))\n"
    return head + "\n".join(hoisted) + "\n\n" + register + "\n\n" + "\n\n".join(m.body for m in modules)


# ------------------------------------------------------------------------- YAML


def task_yamls() -> list[Path]:
    return sorted(lrm_tasks.task_config_dir().rglob("*.yaml"))


def _rewrite_yaml(text: str) -> str:
    text = text.replace(f"!function {PACKAGE}.harness.", "!function utils.")
    # The export is one flat folder: an include of a shared template ("../_x_yaml") is
    # a file beside the task there.
    text = re.sub(r"(?m)^include: (?:\.\./)+", "include: ", text)
    for metric in HOOK_METRICS:
        text = re.sub(
            rf"  - metric: {re.escape(metric)}\n(?:    [^\n]*\n)*", "", text
        )
        text = re.sub(rf"  - \{{metric: {re.escape(metric)},[^\n]*\n", "", text)
    return text


def templates() -> list[Path]:
    """The shared YAML templates tasks include (files without the .yaml ending, which
    lm-eval does not index as tasks)."""
    out: list[Path] = []
    for path in task_yamls():
        for src in _task_sources(path):
            if src.suffix != ".yaml" and src not in out:
                out.append(src)
    return sorted(out)


class _AnyTagLoader(yaml.SafeLoader):
    pass


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def _read_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_AnyTagLoader) or {}


def _task_sources(path: Path) -> list[Path]:
    """A YAML and, recursively, the YAMLs it includes."""
    out = [path]
    inc = _read_yaml(path).get("include")
    if inc:
        out += _task_sources((path.parent / inc).resolve())
    return out


def task_versions() -> dict[str, tuple[str, float | None]]:
    """Task or group name -> (yaml path, metadata.version, following includes)."""
    versions: dict[str, tuple[str, float | None]] = {}
    for path in task_yamls():
        merged: dict = {}
        for src in reversed(_task_sources(path)):
            merged.update(_read_yaml(src))
        name = merged["group"] if "group" in merged else merged.get("task")
        versions[name] = (str(path.relative_to(lrm_tasks.task_config_dir())), (merged.get("metadata") or {}).get("version"))
    return versions


def task_hashes() -> dict[str, dict]:
    """Per task: its version and a hash of its YAMLs plus the bundled scoring code."""
    code = bundle_source()
    out = {}
    versions = task_versions()
    for path in task_yamls():
        name = next(n for n, (p, _) in versions.items() if p == str(path.relative_to(lrm_tasks.task_config_dir())))
        h = hashlib.sha256(code.encode())
        for src in _task_sources(path):
            h.update(src.read_bytes())
        out[name] = {"version": versions[name][1], "sha256": h.hexdigest()}
    return dict(sorted(out.items()))


def update_hashes(path: Path = HASHES_FILE) -> Path:
    """Write the current task hashes to ``path`` (default: the package's golden file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(task_hashes(), indent=2) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------ README

README = """# LRM reasoning tasks (`{name}`)

### Paper

Title: When Reasoning Meets Compression: Understanding the Effects of LLMs Compression on Large Reasoning Models

Abstract: https://arxiv.org/abs/2504.02010

Benchmarks compressed (quantized, pruned, distilled) DeepSeek-R1 models on AIME 2024,
FOLIO, BIG-Bench Hard temporal_sequences and MuSiQue, reporting accuracy next to the
tokens spent. These tasks score reasoning-model outputs: they separate the reasoning
(`<think>…</think>`) from the answer and report responses with no answer as such.

Homepage: https://github.com/psunlpgroup/Compression-Effects

### Citation

```
@article{{zhang2025reasoning,
  title={{When Reasoning Meets Compression: Understanding the Effects of LLMs Compression on Large Reasoning Models}},
  author={{Zhang, Nan and others}},
  journal={{arXiv preprint arXiv:2504.02010}},
  year={{2025}}
}}
```

### Groups, Tags, and Tasks

#### Groups

{groups}

#### Tags

* `lrm_reasoning`: every task with the default prompts.
* `lrm_reasoning_paper`: the paper's exact prompts.

#### Tasks

{tasks}

### Reasoning notes

* **Delimiter.** Responses are split at the last `</think>`; a prompt ending in
  `<think>\\n` (the `_paper` variants) means responses have no opening tag.
* **Filters.** `strict` takes the answer only from after the reasoning: a response that
  never closes its reasoning has no answer. `flexible` takes the last committed answer
  anywhere, falling back into the reasoning. `no_answer` reports the share of responses
  with no extractable answer; a missing answer is never scored as a guess.
* **Generation.** DeepSeek-R1's settings: sampling at temperature 0.6, top_p 0.95,
  `max_gen_toks` 32768, no stop strings (a stop string such as "Question:" can occur
  inside the reasoning and cut it short). Truncated reasoning therefore has no strict
  answer; compare `strict` and `flexible` to see how much truncation costs.
* **Repeats.** Set `repeats: k` to sample k responses per question: `exact_match` is then
  avg@k, and `pass@k` (unbiased, Chen et al. 2021) and `maj@k` (majority vote; no-answers
  do not vote) are reported.
* **Token accounting** (reasoning / answer / total tokens per response, truncation rate,
  tokens of correct vs incorrect answers) needs the evaluated model's tokenizer and a
  post-hoc hook; it is provided by lrm-bench (`pip install lrm-bench`) and is not part of
  this folder.
* **Data.** Loaded from the Hugging Face Hub (`Maxwell-Jia/AIME_2024`, `SaylorTwift/bbh`,
  `yale-nlp/FOLIO` (gated), `dgslibisey/MuSiQue`), or from local files when the
  environment variable `LRM_DATA_DIR` names a folder (`aime24.jsonl`,
  `bbh_temporal_sequences.json`, `folio.jsonl`, `musique.jsonl`).

### Checklist

For adding novel benchmarks/datasets to the library:
* [x] Is the task an existing benchmark in the literature?
  * [x] Have you referenced the original paper that introduced the task?
  * [x] If yes, does the original paper provide a reference implementation? If so, have you checked against the reference implementation and documented how to run such a test?
    The `_paper` variants use the prompts of the paper's `compute_u.py` verbatim.

If other tasks on this dataset are already supported:
* [x] Is the "Main" variant of this task clearly denoted?
* [x] Have you provided a short sentence in a README on what each new variant adds / evaluates?
* [x] Have you noted which, if any, published evaluation setups are matched by this variant?

### Changelog

{changelog}
"""


def _describe(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").split(": ", 1)[-1] if first.startswith("#") else ""


def _changelog() -> str:
    readme = lrm_tasks.task_config_dir() / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    _, _, log = text.partition("## Changelog")
    return log.strip() or "* 1.0: first version."


def export_upstream(out_dir: str | Path, name: str = DEFAULT_NAME, *, overwrite: bool = False) -> Path:
    """Write the task folder ``out_dir/name``; return its path."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ExportError(f"folder name {name!r}: use letters, digits and '_' (lm-eval task folder names)")
    target = Path(out_dir).expanduser() / name
    if target.exists():
        if not overwrite:
            raise ExportError(f"{target} exists; pass --overwrite to replace it, or choose another OUT_DIR")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    code = bundle_source()
    (target / "utils.py").write_text(code, encoding="utf-8")
    tasks, groups = [], []
    for path in task_yamls():
        (target / path.name).write_text(_rewrite_yaml(path.read_text(encoding="utf-8")), encoding="utf-8")
        doc = _read_yaml(path)
        line = f"* `{doc['group'] if 'group' in doc else doc.get('task')}`: {_describe(path)}"
        (groups if "group" in doc else tasks).append(line)
    for path in templates():
        (target / path.name).write_text(_rewrite_yaml(path.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copytree(_source_dir() / "resources", target / "resources")
    (target / "README.md").write_text(
        README.format(name=name, groups="\n".join(groups), tasks="\n".join(tasks), changelog=_changelog()),
        encoding="utf-8",
    )
    return target


def _hashes_target() -> Path:
    """Where ``--update-hashes`` writes: the source checkout's copy when run from the
    repository root (what gets committed), else the installed package's."""
    checkout = Path("lrm_backends") / HASHES_NAME
    return checkout if checkout.is_file() else HASHES_FILE


def main(argv: list[str] | None = None) -> int:
    """``python -m lrm_backends.export --update-hashes``: refresh the golden task hashes."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lrm_backends.export")
    ap.add_argument("--update-hashes", action="store_true", help="rewrite the golden task hashes")
    ap.add_argument("--hashes-file", type=Path, default=None,
                    help=f"default: lrm_backends/{HASHES_NAME} when run from the repository root, else {HASHES_FILE}")
    args = ap.parse_args(argv)
    if args.update_hashes:
        print(update_hashes(args.hashes_file or _hashes_target()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
