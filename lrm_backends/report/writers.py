"""The report's files: ``report.md`` (also the terminal output), ``report.json`` and
one CSV per table, all from :class:`~lrm_backends.report.tables.Tables`."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrm_backends.report.tables import (
    CONTEXT, KNOWLEDGE, LENGTH_MEASURE, OTHER, REASONING, Tables, task_kind, task_order, task_title,
)

REPORT_VERSION = 1
DASH = "—"
# CSV file name -> Tables attribute.
CSV_TABLES = {
    "models.csv": "models",
    "main.csv": "main",
    "averages.csv": "averages",
    "length.csv": "length",
    "length_quantiles.csv": "quantiles",
    "compression_curves.csv": "curves",
    "knowledge_vs_reasoning.csv": "knowledge",
}


# ---------------------------------------------------------------- number formats


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction as percent.

    >>> pct(0.4567), pct(None)
    ('45.7', '—')
    """
    return DASH if v is None else f"{100 * v:.{digits}f}"


def pct_se(v: float | None, se: float | None) -> str:
    """Percent with its standard error.

    >>> pct_se(0.75, 0.25), pct_se(0.5, None)
    ('75.0 ± 25.0', '50.0')
    """
    if v is None:
        return DASH
    return pct(v) if se is None else f"{pct(v)} ± {pct(se)}"


def tokens(v: float | None) -> str:
    """A token count, rounded, with thousands separators.

    >>> tokens(1234.5), tokens(None)
    ('1,234', '—')
    """
    return DASH if v is None else f"{v:,.0f}"


def pvalue(p: float | None) -> str:
    """A p-value: three decimals, scientific below 0.001.

    >>> pvalue(0.0123), pvalue(0.00001), pvalue(None)
    ('0.012', '1.0e-05', '—')
    """
    if p is None:
        return DASH
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one letter per column (l or r).

    >>> print(md_table(["a", "b"], [["x", 1]], "lr"))
    | a | b |
    |:--|--:|
    | x | 1 |
    """
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["--:" if a == "r" else ":--" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- markdown


def _score_columns(tasks: list[str]) -> list[tuple[str, str, str | None]]:
    """(header, task or 'avg', metric) for the score table: reasoning tasks, their
    average (when there are two or more: the average of one task is that task), then
    MuSiQue EM and F1 separately, then other tasks."""
    cols: list[tuple[str, str, str | None]] = []
    for t in tasks:
        if task_kind(t) == REASONING:
            cols.append((task_title(t), t, "score"))
    if len(cols) > 1:
        cols.append(("Reasoning avg", "avg", "score"))
    for t in tasks:
        if task_kind(t) in (KNOWLEDGE, CONTEXT):
            cols.append((f"{task_title(t)} EM", t, "score"))
            cols.append((f"{task_title(t)} F1", t, "f1"))
    for t in tasks:
        if task_kind(t) == OTHER:
            cols.append((task_title(t), t, "score"))
    return cols


def _main_tables(tables: Tables) -> list[str]:
    by = {(r["model"], r["task"]): r for r in tables.main}
    avg = {r["model"]: r for r in tables.averages}
    labels = [m["model"] for m in tables.models]
    # Runs pooled for a task (repeats), at most over the tasks: a sweep's cells put each
    # task of one variant in a folder of its own, which is still one run of each task.
    runs = {m["model"]: m["runs"] for m in tables.models}
    per_task: dict[str, int] = {}
    for r in tables.main:
        per_task[r["model"]] = max(per_task.get(r["model"], 0), int(r.get("runs") or 0))
    runs.update({label: n for label, n in per_task.items() if n})
    cols = _score_columns(tables.tasks)
    has_avg = any(c[1] == "avg" for c in cols)
    out = []

    def cell(label: str, task: str, metric: str) -> str:
        r = avg.get(label) if task == "avg" else by.get((label, task))
        if not r:
            return DASH
        key = "score" if metric == "score" else "f1"
        main = pct_se(r.get(f"{key}_strict"), r.get(f"{key}_strict_se"))
        flex = r.get(f"{key}_flexible")
        return main if main == DASH or flex is None else f"{main} [{pct(flex)}]"

    out.append("### Score: exact match (%), strict ± standard error [flexible]\n")
    out.append(md_table(["Model", "Runs", *[c[0] for c in cols]],
                        [[label, runs[label], *[cell(label, c[1], c[2] or "score") for c in cols]] for label in labels]))
    simple = [(task_title(t), t) for t in tables.tasks]
    if has_avg:
        simple.insert(sum(1 for t in tables.tasks if task_kind(t) == REASONING), ("Reasoning avg", "avg"))
    for title, key, fmt in (
        ("Mean reasoning tokens", "mean_reasoning_tokens", tokens),
        ("Truncation rate (%)", "truncation_rate", pct),
        ("No answer (%, strict)", "no_answer_strict", pct),
    ):
        rows = []
        for label in labels:
            line: list[Any] = [label]
            for _, t in simple:
                r = avg.get(label) if t == "avg" else by.get((label, t))
                line.append(fmt(r.get(key)) if r else DASH)
            rows.append(line)
        out.append(f"\n### {title}\n")
        out.append(md_table(["Model", *[s[0] for s in simple]], rows))
    rows = []
    for label in labels:
        line = [label]
        for t in tables.tasks:
            r = by.get((label, t))
            if not r:
                line.append(DASH)
            elif r["responses"] is None:
                line.append(f"{r['questions'] or '?'} q. (results only)")
            else:
                line.append(f"{r['questions']} q. / {r['responses']} resp.")
        rows.append(line)
    out.append("\n### Questions and responses pooled\n")
    out.append(md_table(["Model", *[task_title(t) for t in tables.tasks]], rows))
    return out


def _figure_links(figures: list[dict[str, Any]], kind: str, root: Path) -> list[str]:
    out = []
    for f in figures:
        if f["figure"] != kind:
            continue
        rel = Path(f["path"]).resolve().relative_to(root.resolve()).as_posix()
        what = f.get("task") or f.get("base") or "overview"
        out.append(f"![{kind}: {what}]({rel})")
        if f.get("caption"):  # e.g. zero-token responses, "no difference from the base"
            out.append(f"*{f['caption']}*")
    return out


FIGURE_FILTER_TEXT = {
    "strict": "Figures show strict scores (answer after the reasoning); `lrm report --filter flexible|both` "
              "shows the flexible ones.",
    "flexible": "Figures show flexible scores (the answer anywhere in the response); length box plots split "
                "by strict correctness.",
    "both": "Figures show strict scores (solid lines, filled markers) and flexible ones (dashed lines, hollow "
            "markers, hatched bars); length box plots split by strict correctness.",
}


def render_markdown(tables: Tables, figures: list[dict[str, Any]], out_dir: Path, run_dirs: Sequence[str],
                    figure_filter: str = "strict") -> str:
    lines: list[str] = ["# lrm-bench report", ""]
    lines.append(
        f"{len(tables.models)} model(s) from {sum(m['runs'] for m in tables.models)} run(s) in "
        f"{len(run_dirs)} folder(s): {', '.join(f'`{d}`' for d in run_dirs)}. "
        "Each question's responses (repeats, and runs of the same model with other seeds) are "
        "averaged first; means and standard errors are over questions. Scores are exact match "
        "under the strict filter (answer after the reasoning), the flexible filter in brackets. "
        "Every number is also in `report.json` and the CSV files."
    )
    if figures:
        lines += ["", FIGURE_FILTER_TEXT[figure_filter]]
    lines += ["", "## 1. Main results", ""]
    lines += _main_tables(tables)
    reasoning = [task_title(t) for t in tables.tasks if task_kind(t) == REASONING]
    if len(reasoning) > 1:
        lines += ["", f"Reasoning avg: mean over {', '.join(reasoning)} (shown when a model has them all)."]

    lines += ["", "## 2. Score vs tokens", ""]
    lines += _figure_links(figures, "score_vs_tokens", out_dir) or ["(figures not drawn)"]

    lines += ["", "## 3. Are the long answers the wrong ones?", ""]
    lines.append(
        f"Lengths in {LENGTH_MEASURE.replace('_', ' ')} per response, strict correctness. "
        "P(correct longer): chance that a random correct response is longer than a random "
        "incorrect one (U / (n_correct n_incorrect); below 0.5: correct answers are shorter). "
        "p: two-sided Mann-Whitney U test (normal approximation)."
    )
    lines.append("")
    if tables.length:
        lines.append(md_table(
            ["Model", "Task", "Correct / incorrect", "Median tokens correct", "Median incorrect",
             "Mean correct", "Mean incorrect", "P(correct longer)", "U", "p"],
            [[r["model"], task_title(r["task"]), f"{r['n_correct']} / {r['n_incorrect']}",
              tokens(r["median_tokens_correct"]), tokens(r["median_tokens_incorrect"]),
              tokens(r["mean_tokens_correct"]), tokens(r["mean_tokens_incorrect"]),
              DASH if r["prob_correct_longer"] is None else f"{r['prob_correct_longer']:.2f}",
              DASH if r["u_statistic"] is None else f"{r['u_statistic']:g}", pvalue(r["p_value"])]
             for r in tables.length],
            "llrrrrrrrr",
        ))
    else:
        lines.append("(no per-response token counts: pass --tokenizer, or log samples)")
    lines += [""] + _figure_links(figures, "length_correct_vs_incorrect", out_dir)

    q = tables.quantile_count
    lines += ["", f"## 4. Accuracy by length quantile ({q} per model and task)", ""]
    lines.append("Each cell: accuracy (%, strict) of the responses in that length quantile, "
                 "and their token range. Equal lengths stay in one quantile (the one holding most of them), so one can be empty.")
    lines.append("")
    if tables.quantiles:
        keys = list(dict.fromkeys((r["model"], r["task"]) for r in tables.quantiles))
        grid = {(r["model"], r["task"], r["quantile"]): r for r in tables.quantiles}
        rows = []
        for label, task in keys:
            line = [label, task_title(task)]
            for k in range(1, q + 1):
                r = grid.get((label, task, k))
                line.append(DASH if r is None else
                            f"{pct(r['accuracy'])} ({tokens(r['tokens_min'])}–{tokens(r['tokens_max'])}, n={r['n']})")
            rows.append(line)
        lines.append(md_table(["Model", "Task", *[f"Q{k}" + (" (shortest)" if k == 1 else " (longest)" if k == q else "")
                                                  for k in range(1, q + 1)]], rows, "ll" + "r" * q))
    else:
        lines.append("(no per-response token counts)")
    lines += [""] + _figure_links(figures, "accuracy_by_length", out_dir)

    lines += ["", "## 5. Compression", ""]
    lines.append(md_table(
        ["Model", "Base model", "Compression", "Method", "Sparsity", "Bits/weight", "Read from"],
        [[m["model"], m["base_name"], m["compression"], m["method"] or DASH,
          DASH if m["sparsity"] is None else f"{m['sparsity']:.3g}",
          f"{m['precision']} (stored)" if m.get("precision") else
          DASH if m["bits_per_weight"] is None else f"{round(m['bits_per_weight'], 2):g}",
          m["compression_source"]] for m in tables.models],
        "lllllrl",
    ))
    links = _figure_links(figures, "compression_curve", out_dir)
    lines += [""] + (links or ["(no compression curve: it needs two or more variants of one base model "
                               "whose compression the manifests or model names tell)"])

    lines += ["", "## 6. Knowledge vs reasoning", ""]
    if tables.knowledge:
        lines.append("Drop from the uncompressed base in points of exact match (strict; positive = lost). "
                     "Closed-book MuSiQue measures stored knowledge; MuSiQue with its paragraphs and the "
                     "reasoning tasks measure reasoning.")
        lines.append("")
        reasoning_tasks = [t for t in tables.tasks if task_kind(t) == REASONING]
        header = ["Model", "Base", "Compression", "MuSiQue closed-book", "MuSiQue+ctx", "Reasoning avg",
                  *[task_title(t) for t in reasoning_tasks]]
        rows = []
        for r in tables.knowledge:
            line = [r["model"], r["base"], r["compression"]]
            for kind in (KNOWLEDGE, CONTEXT, REASONING):
                d = r.get(f"{kind}_drop")
                line.append(DASH if d is None else
                            f"{pct(d)} ({pct(r[f'{kind}_base'])}→{pct(r[f'{kind}_model'])})")
            line += [pct(r.get(f"drop_{t}")) for t in reasoning_tasks]
            rows.append(line)
        lines.append(md_table(header, rows, "lll" + "r" * (len(header) - 3)))
        lines += [""] + _figure_links(figures, "knowledge_vs_reasoning", out_dir)
    else:
        lines.append("(needs an uncompressed base model and a compressed variant of it)")

    if tables.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in tables.notes]
    return "\n".join(lines) + "\n"


def compact_table(tables: Tables) -> str:
    """The table a researcher reads first: per model and task, the strict and flexible
    score, the no-answer rate, mean reasoning tokens and the truncation rate."""
    rows = [
        [r["model"], task_title(r["task"]), pct(r.get("score_strict")), pct(r.get("score_flexible")),
         pct(r.get("no_answer_strict")), tokens(r.get("mean_reasoning_tokens")), pct(r.get("truncation_rate"))]
        for r in sorted(tables.main, key=lambda r: (r["model"], task_order(r["task"])))
    ]
    header = ["Model", "Task", "Strict (%)", "Flexible (%)", "No answer (%)", "Reasoning tokens", "Truncated (%)"]
    return md_table(header, rows)


def terminal_text(markdown: str) -> str:
    r"""The markdown with each image link turned into its file name (a terminal cannot
    show images).

    >>> terminal_text("a\n![score: x](figures/x.png)\n")
    'a\n  figure: figures/x.png\n'
    """
    lines = []
    for line in markdown.splitlines():
        m = re.fullmatch(r"!\[[^\]]*\]\(([^)]*)\)", line)
        lines.append(f"  figure: {m.group(1)}" if m else line)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- json and csv


def report_dict(tables: Tables, figures: list[dict[str, Any]], out_dir: Path, run_dirs: Sequence[str],
                figure_filter: str = "strict") -> dict:
    return {
        "report_version": REPORT_VERSION,
        "figure_filter": figure_filter,
        "run_dirs": list(run_dirs),
        "units": {
            "scores": "fraction 0-1 (exact match / F1); the markdown shows percent",
            "tokens": "tokens of the evaluated model's tokenizer",
            "length_measure": LENGTH_MEASURE,
            "drops": "base score minus model score, fraction; positive = lost",
        },
        "tasks": tables.tasks,
        "models": tables.models,
        "main": tables.main,
        "averages": tables.averages,
        "length": tables.length,
        "quantiles": tables.quantiles,
        "compression_curves": tables.curves,
        "knowledge_vs_reasoning": tables.knowledge,
        "figures": [
            {**f, "path": Path(f["path"]).resolve().relative_to(out_dir.resolve()).as_posix()} for f in figures
        ],
        "notes": tables.notes,
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else ("" if v is None else v)
                        for k, v in r.items()})
    return path


def write_all(tables: Tables, figures: list[dict[str, Any]], out_dir: Path, run_dirs: Sequence[str],
              figure_filter: str = "strict") -> dict[str, Path]:
    """Write report.md, report.json and the CSVs; return their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    md = render_markdown(tables, figures, out_dir, run_dirs, figure_filter)
    paths["report.md"] = out_dir / "report.md"
    paths["report.md"].write_text(md, encoding="utf-8")
    paths["report.json"] = out_dir / "report.json"
    paths["report.json"].write_text(
        json.dumps(report_dict(tables, figures, out_dir, run_dirs, figure_filter), indent=1, default=str) + "\n",
        encoding="utf-8",
    )
    for name, attr in CSV_TABLES.items():
        paths[name] = write_csv(out_dir / name, getattr(tables, attr))
    return paths
