"""The benchmarks, one module each, registered in one table: :data:`BENCHMARKS`.

Each module (``aime``, ``bbh_temporal``, ``folio``, ``musique``) holds its benchmark's
row parser, prompts, answer extractor, gold reading, verification, vote key and report
title, as one :class:`~lrm_tasks.benchmarks.spec.BenchmarkSpec`. Scoring, the data
loaders, the lm-eval harness functions, the report and the export all read this table;
none of them names a benchmark. To add one: write its module, add its spec below, and
give it a task YAML and samples (README, "Adding a benchmark"): the table finds every
module's spec itself.

Prompts: our defaults follow DeepSeek-R1's usage notes: no system prompt, the
instruction inside the user turn, no ``<think>`` tag of our own, so the same text works
raw and under ``--apply_chat_template`` (the model's template adds its own thinking
prefix). The ``paper`` prompts are verbatim from the paper's code
(psunlpgroup/Compression-Effects@dd5ed49, ``compute_u.py`` lines 38-63): they are used
without a chat template and end with ``<think>\\n``, so responses start inside the
reasoning and only ever contain ``</think>``.
"""

from __future__ import annotations

import importlib
import pkgutil

from lrm_tasks.benchmarks.spec import BenchmarkSpec

__all__ = ["BENCHMARKS", "BenchmarkSpec", "TASK_SUFFIXES", "benchmark_modules", "get_benchmark"]

# Modules of this package that define no benchmark.
_NOT_BENCHMARKS = ("spec",)


def benchmark_modules() -> list[str]:
    """The benchmark modules of this package, by name (the table's order)."""
    path = globals().get("__path__")
    if path is None:
        return []
    return sorted(i.name for i in pkgutil.iter_modules(path) if i.name not in _NOT_BENCHMARKS and not i.name.startswith("_"))


def _discover() -> dict[str, BenchmarkSpec]:
    if globals().get("__path__") is None:
        # Flattened into one utils.py by `lrm export upstream`: the benchmark modules
        # were bundled above this point, so their specs are globals here.
        found = [v for v in list(globals().values()) if isinstance(v, BenchmarkSpec)]
    else:
        found = []
        for name in benchmark_modules():
            module = importlib.import_module(f"{__name__}.{name}")
            found += [v for v in vars(module).values() if isinstance(v, BenchmarkSpec) and not any(v is f for f in found)]
    table: dict[str, BenchmarkSpec] = {}
    for spec in found:
        if spec.name in table:
            raise ValueError(f"two benchmark modules define a benchmark named {spec.name!r}; rename one")
        table[spec.name] = spec
    return table


# Canonical name -> spec, in module-name order (the report's column order).
BENCHMARKS: dict[str, BenchmarkSpec] = _discover()
# A task name is a benchmark name or alias, optionally with one of these suffixes.
TASK_SUFFIXES = ("_lrm_paper", "_lrm", "_paper")
_BY_NAME = {n: spec for spec in BENCHMARKS.values() for n in (spec.name, *spec.aliases)}


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of a task name: a benchmark name or alias, optionally ``_lrm``/``_lrm_paper``.

    >>> get_benchmark("aime24_lrm_paper").name, get_benchmark("temporal_sequences").title
    ('aime24', 'Temporal')
    >>> get_benchmark("gsm8k")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown task 'gsm8k'; valid names: aime2024, aime24, ..., temporal_sequences (...)
    """
    if not isinstance(name, str):
        raise ValueError(f"task name must be a string, got {type(name).__name__}")
    base = name.strip().lower()
    for suffix in TASK_SUFFIXES:
        if base.endswith(suffix) and base[: -len(suffix)] in _BY_NAME:
            base = base[: -len(suffix)]
            break
    if base in _BY_NAME:
        return _BY_NAME[base]
    valid = ", ".join(sorted(_BY_NAME))
    raise ValueError(
        f"unknown task {name!r}; valid names: {valid} "
        "(each optionally with an '_lrm' or '_lrm_paper' suffix)"
    )
