"""The overthinking table of ``lrm report``: per model and task, from the records.

Reads the per-response measures of :mod:`lrm_tasks.overthinking` that our records
carry (``first_answer_tokens``, ``reasoning_after_first_answer``, ``answer_switches``,
``looping``) and appends one table to ``report.md`` and ``overthinking.csv``: mean
first-answer position and share of the reasoning spent after it, mean and share of
responses with answer switches, and the looping rate among all and among truncated
responses. Runs without these fields (older records, lm-eval samples) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrm_backends.report.models import Model
from lrm_backends.report.tables import task_order, task_title
from lrm_backends.report.writers import md_table, pct, tokens, write_csv

CSV_NAME = "overthinking.csv"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _known(column: list[float | None]) -> list[float]:
    return [v for v in column if v is not None]


def overthinking_rows(models: list[Model]) -> list[dict[str, Any]]:
    """One row per model and task that has any overthinking measure."""
    rows = []
    for m in models:
        for task in sorted(m.tasks, key=task_order):
            cols = m.tasks[task].responses.columns
            loops = cols.get("looping", [])
            if not _known(loops) and not _known(cols.get("answer_switches", [])):
                continue
            switches = _known(cols["answer_switches"])
            truncated_loops = [lp for lp, t in zip(loops, cols["truncated"]) if t == 1.0 and lp is not None]
            rows.append({
                "model": m.label,
                "task": task,
                "responses": len(loops),
                "first_answer_found": _mean([float(v is not None) for v in cols["first_answer_tokens"]]),
                "first_answer_tokens": _mean(_known(cols["first_answer_tokens"])),
                "reasoning_after_first_answer": _mean(_known(cols["reasoning_after_first_answer"])),
                "answer_switches": _mean(switches),
                "switched": _mean([float(v > 0) for v in switches]),
                "looping": _mean(_known(loops)),
                "truncated": len(truncated_loops),
                "looping_when_truncated": _mean(truncated_loops),
            })
    return rows


def overthinking_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as a markdown section (empty when there are no rows)."""
    if not rows:
        return ""
    body = [
        [r["model"], task_title(r["task"]), r["responses"], pct(r["first_answer_found"]), tokens(r["first_answer_tokens"]),
         pct(r["reasoning_after_first_answer"]),
         "—" if r["answer_switches"] is None else f"{r['answer_switches']:.2f}", pct(r["switched"]),
         pct(r["looping"]), f"{pct(r['looping_when_truncated'])} of {r['truncated']}"]
        for r in rows
    ]
    header = ["model", "task", "n", "first answer found", "first answer at (tokens)", "reasoning after it",
              "answer switches", "switched", "looping", "looping among truncated"]
    return (
        "\n## Overthinking\n\n"
        "Where the reasoning first committed to its final answer, the share of reasoning spent after it, "
        "how often the committed answer changed, and how many responses end in a loop "
        "(README, 'Overthinking measures').\n\n" + md_table(header, body) + "\n"
    )


def add_overthinking(models: list[Model], out: Path, paths: dict[str, Path]) -> list[dict[str, Any]]:
    """Append the overthinking table to ``report.md`` and write ``overthinking.csv``."""
    rows = overthinking_rows(models)
    if rows:
        report = paths["report.md"]
        report.write_text(report.read_text(encoding="utf-8") + overthinking_markdown(rows), encoding="utf-8")
        paths[CSV_NAME] = write_csv(out / CSV_NAME, rows)
    return rows
