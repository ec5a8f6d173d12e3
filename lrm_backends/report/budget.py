"""Thinking-budget curves in ``lrm report``: what ``lrm budget`` wrote (:mod:`lrm_backends.run.budget`).

A RUN_DIR holding ``budget_results_<date>.json`` (in it or up to two folders below) adds
one table (model, task, budget: accuracy ± standard error, mean tokens, share forced;
plus the saved responses unforced) to ``report.md`` and ``budget.csv``, and the figure
``figures/budget_curves.png``: one panel per task, one line per model, accuracy with
standard errors against the budget on a log axis, the unforced accuracy dotted. A folder
that holds only budget results is not read as an lm-eval run. Of several budget results
in one folder, the newest is used (a resumed pass writes a new one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrm_backends.report.loading import RECORDS_RE, RESULTS_RE, ReportError, _candidate_folders, _label_keys
from lrm_backends.report.writers import md_table, pct_se, tokens, write_csv

BUDGET_RESULTS_RE = re.compile(r"^budget_results_(?P<ts>\d{4}-\d{2}-\d{2}T[\d\-.:]+)\.json$")
CSV_NAME = "budget.csv"
FIGURE_NAME = "budget_curves.png"
ORIGINAL = "original"  # the filter of the unforced responses (lrm_backends.run.budget.ORIGINAL)


def _folders(run_dir: str) -> list[Path]:
    root = Path(run_dir).expanduser()
    return _candidate_folders(root) if root.is_dir() else []


def budget_files(run_dir: str) -> list[Path]:
    """The newest ``budget_results_*.json`` of each folder under ``run_dir``."""
    out = []
    for folder in _folders(run_dir):
        found = sorted((p for p in folder.iterdir() if BUDGET_RESULTS_RE.match(p.name)),
                       key=lambda p: BUDGET_RESULTS_RE.match(p.name)["ts"])
        if found:
            out.append(found[-1])
    return out


def split_budget_dirs(
    run_dirs: Sequence[str], labels: dict[str, str] | None,
) -> tuple[list[str], list[str], dict[str, str]]:
    """``(run dirs for the main report, dirs with budget results, the labels of the
    former)``: a dir of budget results only is left out of the main report."""
    main, budget = [], []
    for d in run_dirs:
        folders = _folders(d)
        has_budget = bool(budget_files(d))
        has_runs = (not folders) or any(RESULTS_RE.match(p.name) or RECORDS_RE.match(p.name)
                                        for f in folders for p in f.iterdir())
        if has_budget:
            budget.append(d)
        if has_runs or not has_budget:
            main.append(d)
    main_keys = {k for d in main for k in _label_keys(d)}
    main_labels = {k: v for k, v in (labels or {}).items() if k in main_keys or not any(k in _label_keys(b) for b in budget)}
    return main, budget, main_labels


def budget_rows(run_dirs: Sequence[str], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per model, task and budget (budget None: the saved responses unforced)."""
    rows = []
    for d in run_dirs:
        label = next((labels[k] for k in _label_keys(d) if labels and k in labels), None)
        for path in budget_files(d):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                results, budgets = data["results"], [int(b) for b in data["budgets"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ReportError(f"{path}: not a budget results file written by lrm budget ({exc})") from None
            model = label or data.get("model_name") or path.parent.name
            for task, res in sorted(results.items()):
                for b, filt in [(b, f"budget_{b}") for b in budgets] + [(None, ORIGINAL)]:
                    rows.append({
                        "model": model, "task": task, "budget": b, "n": res.get(f"n,{filt}"),
                        "accuracy": res.get(f"acc,{filt}"), "accuracy_se": res.get(f"acc_stderr,{filt}"),
                        "accuracy_flexible": res.get(f"acc_flexible,{filt}"),
                        "mean_tokens": res.get(f"mean_tokens,{filt}"), "mean_tokens_se": res.get(f"mean_tokens_stderr,{filt}"),
                        "forced": res.get(f"forced,{filt}"), "file": str(path),
                    })
    return rows


def budget_markdown(rows: list[dict[str, Any]], figure: Path | None, out: Path) -> str:
    """The section of ``report.md`` (empty without rows)."""
    if not rows:
        return ""
    body = [[r["model"], r["task"], "unforced" if r["budget"] is None else f"{r['budget']:,}", r["n"],
             pct_se(r["accuracy"], r["accuracy_se"]), tokens(r["mean_tokens"]),
             "—" if r["forced"] is None else f"{100 * r['forced']:.0f}%"] for r in rows]
    text = (
        "\n## Thinking-budget curves\n\n"
        "Accuracy (strict, ± standard error over questions) when each saved response's reasoning is cut at "
        "the budget and the model writes a short final answer (`lrm budget`, budget forcing); responses that "
        "closed their reasoning within the budget keep their own answer. `unforced`: the saved responses as "
        "they were. Mean tokens: reasoning kept + answer.\n\n"
        + md_table(["model", "task", "budget", "n", "accuracy", "mean tokens", "forced"], body) + "\n"
    )
    if figure is not None:
        text += f"\n![thinking-budget curves]({figure.relative_to(out).as_posix()})\n"
    return text


def budget_label(budget: int) -> str:
    """A budget as axis text.

    >>> budget_label(4096), budget_label(1536), budget_label(100)
    ('4k', '1.5k', '100')
    """
    return f"{budget / 1024:g}k" if budget >= 1024 and budget % 512 == 0 else str(budget)


def draw_budget_curves(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """One panel per task; per model, accuracy ± standard error against the budget (log
    axis), its unforced accuracy as a dotted line."""
    from lrm_backends.report.figures import _figure_class, _save, model_colors

    forced = [r for r in rows if r["budget"] is not None and r["accuracy"] is not None]
    if not forced:
        return None
    Figure = _figure_class()
    tasks = sorted({r["task"] for r in forced})
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = model_colors(models)
    fig = Figure(figsize=(4.2 * len(tasks), 3.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for model in models:
            pts = sorted((r for r in forced if r["task"] == task and r["model"] == model), key=lambda r: r["budget"])
            if not pts:
                continue
            ys = [100 * r["accuracy"] for r in pts]
            errs = [100 * (r["accuracy_se"] or 0.0) for r in pts]
            ax.errorbar([r["budget"] for r in pts], ys, yerr=errs, marker="o", capsize=3, color=colors[model], label=model)
            full = next((r for r in rows if r["task"] == task and r["model"] == model and r["budget"] is None), None)
            if full is not None and full["accuracy"] is not None:
                ax.axhline(100 * full["accuracy"], linestyle=":", color=colors[model], linewidth=1)
        ax.set_xscale("log", base=2)
        ticks = sorted({r["budget"] for r in forced if r["task"] == task})
        ax.set_xticks(ticks, [budget_label(b) for b in ticks], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_title(task)
        ax.set_xlabel("reasoning budget (tokens)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.subplots_adjust(left=0.12 / len(tasks) + 0.05, right=0.97, bottom=0.17, top=0.9, wspace=0.3)
    return _save(fig, path)


def add_budget(
    run_dirs: Sequence[str], out: Path, paths: dict[str, Path], *, labels: dict[str, str] | None = None,
    figures: bool = True, drawn: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Append the budget table (and figure) to ``report.md``; write ``budget.csv``; add
    the figure to ``drawn`` (the report's list of figures)."""
    rows = budget_rows(run_dirs, labels)
    if not rows:
        return rows
    figure = draw_budget_curves(rows, out / "figures" / FIGURE_NAME) if figures else None
    if figure is not None and drawn is not None:
        drawn.append({"figure": "budget_curves", "task": None, "path": figure})
    report = paths["report.md"]
    report.write_text(report.read_text(encoding="utf-8") + budget_markdown(rows, figure, out), encoding="utf-8")
    paths[CSV_NAME] = write_csv(out / CSV_NAME, rows)
    return rows
