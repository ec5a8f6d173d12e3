"""Every number of the report, computed from the pooled models (pure: no I/O, no plots).

Conventions:
- Scores are exact match under the ``strict`` filter (the headline) and the
  ``flexible`` one, as fractions 0-1 (the markdown shows percent).
- Each question's responses (repeats within a run and runs with other seeds) are
  averaged first; means and standard errors are then over questions, so one run with k
  repeats gives lm-eval's own numbers (its ``mean_stderr``: sample sd / sqrt(n)).
- Token means skip responses whose count is unknown.
- Response lengths (correct vs incorrect, quantiles) are per response, in total tokens
  (reasoning plus answer), with strict correctness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lrm_backends.report import stats
from lrm_backends.report.compression import BITS, SPARSITY, full_precision_bits
from lrm_backends.report.models import Model, PooledTask
from lrm_tasks.benchmarks import BENCHMARKS, get_benchmark
from lrm_tasks.benchmarks.spec import CONTEXT, KNOWLEDGE, REASONING

OTHER = "other"
# The paper's split (arXiv 2504.02010, section 3): AIME, FOLIO and temporal sequences
# test reasoning; MuSiQue asked closed-book tests stored knowledge, and with its
# paragraphs (musique_ctx) tells lost knowledge from lost multi-hop reasoning. Titles,
# kinds and order come from the benchmark table (each spec and its report variants).
_REPORT_TASKS: dict[str, tuple[str, str]] = {}  # report task -> (title, kind), in order
for _spec in BENCHMARKS.values():
    _REPORT_TASKS[_spec.name] = (_spec.title, _spec.kind)
    _REPORT_TASKS.update({f"{_spec.name}_{v}": title_kind for v, title_kind in _spec.variants.items()})
TASK_ORDER = tuple(_REPORT_TASKS)
TASK_TITLES = {name: title for name, (title, _) in _REPORT_TASKS.items()}
LENGTH_MEASURE = "total_tokens"
DEFAULT_QUANTILES = 4
AVG = "reasoning_avg"


def _base_task(task: str) -> str | None:
    try:
        spec = get_benchmark(task)
    except ValueError:
        return None
    for variant in spec.variants:
        if variant in task.lower():
            return f"{spec.name}_{variant}"
    return spec.name


def task_kind(task: str) -> str:
    """reasoning | knowledge (closed-book MuSiQue) | context (MuSiQue with paragraphs) | other.

    >>> [task_kind(t) for t in ("aime24_lrm", "musique_lrm", "musique_ctx_lrm", "gsm8k")]
    ['reasoning', 'knowledge', 'context', 'other']
    """
    base = _base_task(task)
    if base is None:
        return OTHER
    return _REPORT_TASKS[base][1]


def task_title(task: str) -> str:
    """A short column title for a task.

    >>> task_title("aime24_lrm"), task_title("folio_lrm_paper"), task_title("gsm8k")
    ('AIME24', 'FOLIO (paper)', 'gsm8k')
    """
    base = _base_task(task)
    if base is None:
        return task
    return TASK_TITLES[base] + (" (paper)" if task.lower().endswith("_paper") else "")


def task_order(task: str) -> tuple[int, str]:
    base = _base_task(task)
    return (TASK_ORDER.index(base) if base in TASK_ORDER else len(TASK_ORDER), task)


@dataclass
class Tables:
    """The report's tables, as lists of flat rows (dicts) ready for JSON and CSV."""

    tasks: list[str]
    models: list[dict[str, Any]]
    main: list[dict[str, Any]]
    averages: list[dict[str, Any]]
    length: list[dict[str, Any]]
    quantiles: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    knowledge: list[dict[str, Any]]
    quantile_count: int = DEFAULT_QUANTILES
    # Per (model, task): the lengths of correct and of incorrect responses (figures only).
    distributions: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, table: str, **match: Any) -> dict[str, Any]:
        """The one row of ``table`` whose fields equal ``match`` (KeyError if none)."""
        for r in getattr(self, table):
            if all(r.get(k) == v for k, v in match.items()):
                return r
        raise KeyError(f"no row of {table} with {match}")


# ---------------------------------------------------------------- per (model, task)


def _doc_index(keys: Sequence[str]) -> tuple[list[int], int]:
    """Each response's question as a small integer, and the number of questions."""
    index: dict[str, int] = {}
    return [index.setdefault(k, len(index)) for k in keys], len(index)


def _per_doc(doc_idx: Sequence[int], n_docs: int, values: Sequence[float | None]) -> list[float]:
    """Per-question means of the known values (questions with none are left out)."""
    sums = [0.0] * n_docs
    counts = [0] * n_docs
    for i, v in zip(doc_idx, values):
        if v is not None:
            sums[i] += v
            counts[i] += 1
    return [s / c for s, c in zip(sums, counts) if c]


def _combine(aggregates: list[tuple[int | None, dict]], key: str) -> tuple[float | None, float | None]:
    """Runs known only by their aggregates: mean weighted by questions; standard error
    of that weighted mean of independent estimates."""
    items = [(n or 1, a[key], a.get(key + "_se")) for n, a in aggregates if a.get(key) is not None]
    if not items:
        return None, None
    total = sum(n for n, _, _ in items)
    value = sum(n * v for n, v, _ in items) / total
    if any(se is None for _, _, se in items):
        return value, None
    return value, math.sqrt(sum((n * se) ** 2 for n, _, se in items)) / total


# name in the table -> (column of Responses, name in results' aggregate)
_MAIN_METRICS = {
    "score_strict": ("correct_strict", "score_strict"),
    "score_flexible": ("correct_flexible", "score_flexible"),
    "f1_strict": ("f1_strict", "f1_strict"),
    "f1_flexible": ("f1_flexible", "f1_flexible"),
    "mean_reasoning_tokens": ("reasoning_tokens", "mean_reasoning_tokens_strict"),
    "mean_total_tokens": ("total_tokens", "mean_total_tokens_strict"),
    "truncation_rate": ("truncated", "truncation_rate_strict"),
    "no_answer_strict": ("no_answer_strict", "no_answer_strict"),
    "no_answer_flexible": ("no_answer_flexible", "no_answer_flexible"),
}
_WITH_SE = ("score_strict", "score_flexible", "f1_strict", "f1_flexible", "mean_reasoning_tokens", "mean_total_tokens")


def main_row(model: Model, pt: PooledTask) -> dict[str, Any]:
    """One row of the main table (see the module docstring for the conventions)."""
    r = pt.responses
    row: dict[str, Any] = {
        "model": model.label, "task": pt.task, "kind": task_kind(pt.task), "runs": pt.runs,
        "questions": len(set(r.doc_keys)) if pt.complete else _questions(pt),
        "responses": len(r) if pt.complete else None,
        "source": "+".join(sorted(set(pt.sources))),
    }
    doc_idx, n_docs = _doc_index(r.doc_keys) if pt.complete else ([], 0)
    for name, (column, agg_key) in _MAIN_METRICS.items():
        if pt.complete:
            per_doc = _per_doc(doc_idx, n_docs, r.columns[column])
            value, se = stats.mean(per_doc), stats.stderr(per_doc)
        else:
            value, se = _combine(pt.aggregates, agg_key)
        row[name] = value
        if name in _WITH_SE:
            row[name + "_se"] = se
    if row["kind"] not in (KNOWLEDGE, CONTEXT):  # F1 is MuSiQue's
        for name in ("f1_strict", "f1_strict_se", "f1_flexible", "f1_flexible_se"):
            row[name] = None
    known = [v for v in r.columns["total_tokens"] if v is not None] if pt.complete else []
    row["tokens_known"] = (len(known) / len(r)) if pt.complete and len(r) else None
    return row


def _questions(pt: PooledTask) -> int | None:
    ns = [n for n, _ in pt.aggregates if n is not None]
    return max(ns) if ns else None


def averages_row(model_label: str, rows: list[dict[str, Any]], reasoning_tasks: list[str]) -> dict[str, Any]:
    """Mean over the report's reasoning tasks (None unless the model has them all).
    Standard error of the mean of independent task scores: sqrt(sum se^2) / n."""
    by_task = {r["task"]: r for r in rows}
    out: dict[str, Any] = {"model": model_label, "tasks": len(reasoning_tasks)}
    have = [by_task[t] for t in reasoning_tasks if t in by_task]
    for name in ("score_strict", "score_flexible", "mean_reasoning_tokens", "mean_total_tokens",
                 "truncation_rate", "no_answer_strict", "no_answer_flexible"):
        values = [r[name] for r in have]
        ok = bool(reasoning_tasks) and len(have) == len(reasoning_tasks) and all(v is not None for v in values)
        out[name] = sum(values) / len(values) if ok else None
        if name in ("score_strict", "score_flexible", "mean_reasoning_tokens"):
            ses = [r.get(name + "_se") for r in have]
            out[name + "_se"] = (
                math.sqrt(sum(se**2 for se in ses)) / len(ses) if ok and all(se is not None for se in ses) else None
            )
    return out


# ---------------------------------------------------------------- lengths


def _binary_lengths(pt: PooledTask) -> tuple[list[float], list[float]]:
    """Lengths of the correct and incorrect responses (strict), known counts only."""
    correct, incorrect = [], []
    for c, n in zip(pt.responses.columns["correct_strict"], pt.responses.columns[LENGTH_MEASURE]):
        if n is None or c not in (0.0, 1.0):
            continue
        (correct if c == 1.0 else incorrect).append(n)
    return correct, incorrect


def length_row(model: Model, pt: PooledTask, correct: list[float], incorrect: list[float]) -> dict[str, Any]:
    """Are the long answers the wrong ones? U counts (correct, incorrect) pairs where the
    correct response is the longer; P(correct longer) = U / (n_correct n_incorrect)."""
    u, p = stats.mann_whitney_u(correct, incorrect)
    return {
        "model": model.label, "task": pt.task, "measure": LENGTH_MEASURE,
        "n_correct": len(correct), "n_incorrect": len(incorrect),
        "mean_tokens_correct": stats.mean(correct), "mean_tokens_incorrect": stats.mean(incorrect),
        "median_tokens_correct": stats.median(correct), "median_tokens_incorrect": stats.median(incorrect),
        "u_statistic": u, "p_value": p,
        "prob_correct_longer": (u / (len(correct) * len(incorrect))) if u is not None else None,
    }


def quantile_rows(model: Model, pt: PooledTask, quantiles: int) -> list[dict[str, Any]]:
    """Accuracy by length quantile (see :func:`stats.length_bins`); empty bins left out."""
    cols = pt.responses.columns
    pairs = [
        (n, c, f) for c, f, n in zip(cols["correct_strict"], cols["correct_flexible"], cols[LENGTH_MEASURE])
        if n is not None and c is not None
    ]
    if not pairs:
        return []
    bins = stats.length_bins([n for n, _, _ in pairs], quantiles)
    rows = []
    for k in range(quantiles):
        members = [pairs[i] for i, b in enumerate(bins) if b == k]
        if not members:
            continue
        lengths = [n for n, _, _ in members]
        flexible = [f for _, _, f in members if f is not None]
        rows.append({
            "model": model.label, "task": pt.task, "quantile": k + 1, "of": quantiles, "n": len(members),
            "tokens_min": min(lengths), "tokens_max": max(lengths), "mean_tokens": stats.mean(lengths),
            "median_tokens": stats.median(lengths),
            "accuracy": stats.mean([c for _, c, _ in members]),
            "accuracy_flexible": stats.mean(flexible) if flexible else None,
        })
    return rows


# ---------------------------------------------------------------- compression


def model_row(model: Model) -> dict[str, Any]:
    c = model.compression
    return {
        "model": model.label, "model_ref": model.model_ref, "backend": model.runs[0].model,
        "runs": len(model.runs), "run_files": [str(r.path) for r in model.runs],
        "seeds": [r.seeds for r in model.runs],
        "base": c.base, "base_name": c.base_name, "compression": c.describe(), "kind": c.kind,
        "method": c.method, "sparsity": c.sparsity, "pattern": c.pattern, "quant_type": c.quant_type,
        "bits_per_weight": c.bits_per_weight, "compression_source": c.source,
        # an uncompressed model's stored precision ("Q4_1, 5.74 bpw"): a GGUF base is not 16-bit
        "precision": model.precision.describe() if model.precision else None,
        "precision_bits": model.precision.bits if model.precision else None,
        "precision_source": model.precision.source if model.precision else None,
        "manifest": next((str(r.manifest_path) for r in model.runs if r.manifest_path), None),
    }


def _bases(models: list[Model]) -> dict[str, Model]:
    """The uncompressed model of each base, where the report has one."""
    out: dict[str, Model] = {}
    for m in models:
        if m.compression.kind is None:
            out.setdefault(m.compression.base, m)
    return out


def curve_rows(models: list[Model], main: list[dict], averages: list[dict]) -> list[dict[str, Any]]:
    """Points of the compression curves: per base model and axis (sparsity or bits per
    weight), each member's score and tokens per task and on the reasoning average. The
    uncompressed base sits at sparsity 0 and at its own stored precision (read from its
    file, see :mod:`.precision`). ``series`` names the line a point belongs to: the
    method, with its N:M pattern when it has one (2:4 is not a point of the
    unstructured curve)."""
    by = {(r["model"], r["task"]): r for r in main}
    avg = {r["model"]: r for r in averages}
    bases = _bases(models)
    rows: list[dict[str, Any]] = []
    for base in dict.fromkeys(m.compression.base for m in models):
        for axis in (SPARSITY, BITS):
            members = [m for m in models if m.compression.base == base and m.compression.kind == axis]
            if not members:
                continue
            base_model = bases.get(base)
            points: list[tuple[Model, float | None, str]] = []
            if base_model is not None:
                prec = base_model.precision
                x = 0.0 if axis == SPARSITY else (prec.bits if prec else full_precision_bits(base_model.model_ref))
                points.append((base_model, x, "none"))
            points += [(m, m.compression.level, m.compression.method or "?") for m in members]
            if len(points) < 2:
                continue
            for m, x, method in points:
                tasks = [t for (label, t) in by if label == m.label]
                for task in tasks:
                    r = by[(m.label, task)]
                    rows.append(_curve_point(base, axis, m, method, x, task, r))
                if avg.get(m.label, {}).get("score_strict") is not None:
                    rows.append(_curve_point(base, axis, m, method, x, AVG, avg[m.label]))
    return rows


def _curve_point(base: str, axis: str, m: Model, method: str, x: float | None, task: str, r: dict) -> dict[str, Any]:
    pattern = m.compression.pattern
    structured = method != "none" and pattern not in (None, "unstructured")
    return {
        "base": base, "axis": axis, "model": m.label, "method": method, "x": x, "task": task,
        "pattern": pattern, "series": f"{method} {pattern}" if structured else method,
        "precision": m.precision.describe() if m.precision else None,
        "score_strict": r.get("score_strict"), "score_strict_se": r.get("score_strict_se"),
        "score_flexible": r.get("score_flexible"), "mean_reasoning_tokens": r.get("mean_reasoning_tokens"),
        "mean_total_tokens": r.get("mean_total_tokens"),
    }


def knowledge_rows(models: list[Model], main: list[dict], averages: list[dict], tasks: list[str]) -> list[dict[str, Any]]:
    """Drop from the uncompressed base (base score minus the model's, strict; positive =
    lost) on closed-book MuSiQue (knowledge), MuSiQue with its paragraphs, and the
    reasoning tasks, for every compressed model whose base is in the report."""
    by = {(r["model"], r["task"]): r for r in main}
    avg = {r["model"]: r for r in averages}
    bases = _bases(models)
    reasoning = [t for t in tasks if task_kind(t) == REASONING]
    rows = []
    for m in models:
        base = bases.get(m.compression.base)
        if m.compression.kind is None or base is None:
            continue
        row: dict[str, Any] = {
            "model": m.label, "base": base.label, "base_key": m.compression.base, "method": m.compression.method,
            "axis": m.compression.kind,
            "level": m.compression.level, "compression": m.compression.describe(),
        }
        for mode, suffix in (("strict", ""), ("flexible", "_flexible")):  # strict: the headline columns
            score = f"score_{mode}"
            for kind in (KNOWLEDGE, CONTEXT):
                pairs = [
                    (by[(base.label, t)][score], by[(m.label, t)][score])
                    for t in tasks if task_kind(t) == kind and (base.label, t) in by and (m.label, t) in by
                ]
                pairs = [(b, v) for b, v in pairs if b is not None and v is not None]
                _drop(row, kind, pairs, suffix)
            b_avg, m_avg = avg.get(base.label, {}).get(score), avg.get(m.label, {}).get(score)
            _drop(row, REASONING, [(b_avg, m_avg)] if b_avg is not None and m_avg is not None else [], suffix)
        for t in reasoning:
            b, v = by.get((base.label, t), {}).get("score_strict"), by.get((m.label, t), {}).get("score_strict")
            row[f"drop_{t}"] = b - v if b is not None and v is not None else None
        rows.append(row)
    return rows


def _drop(row: dict[str, Any], kind: str, pairs: list[tuple[float, float]], suffix: str = "") -> None:
    names = [f"{kind}_{what}{suffix}" for what in ("base", "model", "drop", "drop_relative")]
    if not pairs:
        for name in names:
            row[name] = None
        return
    b = sum(p[0] for p in pairs) / len(pairs)
    v = sum(p[1] for p in pairs) / len(pairs)
    for name, value in zip(names, (b, v, b - v, (b - v) / b if b else None)):
        row[name] = value


# ---------------------------------------------------------------- all


def compute_tables(models: list[Model], quantiles: int = DEFAULT_QUANTILES) -> Tables:
    """All tables of the report from the pooled models."""
    if quantiles < 2:
        raise ValueError(f"quantiles must be at least 2, got {quantiles}")
    tasks = sorted({t for m in models for t in m.tasks}, key=task_order)
    reasoning = [t for t in tasks if task_kind(t) == REASONING]
    main, averages, length, quant = [], [], [], []
    distributions: dict[tuple[str, str], dict[str, list[float]]] = {}
    notes = []
    for m in models:
        rows = [main_row(m, m.tasks[t]) for t in tasks if t in m.tasks]
        main.extend(rows)
        averages.append(averages_row(m.label, rows, reasoning))
        for t in tasks:
            pt = m.tasks.get(t)
            if pt is None or not len(pt.responses):
                continue
            if not pt.complete:
                notes.append(
                    f"{m.label} / {t}: {pt.runs - pt.response_runs} of {pt.runs} runs logged no samples or "
                    "records: its main-table numbers come from results files; length analyses use the rest"
                )
            correct, incorrect = _binary_lengths(pt)
            if correct or incorrect:
                distributions[(m.label, t)] = {"correct": correct, "incorrect": incorrect}
                length.append(length_row(m, pt, correct, incorrect))
            quant.extend(quantile_rows(m, pt, quantiles))
    return Tables(
        tasks=tasks, models=[model_row(m) for m in models], main=main, averages=averages, length=length,
        quantiles=quant, curves=curve_rows(models, main, averages),
        knowledge=knowledge_rows(models, main, averages, tasks), quantile_count=quantiles,
        distributions=distributions, notes=notes,
    )
