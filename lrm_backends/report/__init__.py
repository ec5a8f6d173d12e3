"""``lrm report``: tables and figures over many runs (full model, quants, prunings).

    from lrm_backends.report import build_report
    report = build_report(["runs/full", "runs/q4"], "report/")
    print(report.markdown)

The pieces, each usable alone: :mod:`.loading` reads run folders, :mod:`.models` pools
runs into models, :mod:`.tables` computes every number (pure), :mod:`.figures` draws
them (matplotlib, lazily, headless) and :mod:`.writers` writes markdown, JSON and CSV.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrm_backends.report.loading import ReportError, load_runs
from lrm_backends.report.models import pool_models
from lrm_backends.report.tables import DEFAULT_QUANTILES, Tables, compute_tables

log = logging.getLogger(__name__)

__all__ = ["Report", "ReportError", "build_report"]


@dataclass
class Report:
    tables: Tables
    markdown: str
    paths: dict[str, Path]
    figures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal(self) -> str:
        from lrm_backends.report.writers import terminal_text

        return terminal_text(self.markdown)


def build_report(
    run_dirs: Sequence[str],
    out_dir: str | Path,
    *,
    labels: dict[str, str] | None = None,
    tokenizer: str | None = None,
    figures: bool = True,
    quantiles: int = DEFAULT_QUANTILES,
    progress: bool = True,
    status: Callable[[str], None] | None = None,
    jobs: int = 1,
    figure_filter: str = "strict",
) -> Report:
    """Read the runs, compute the tables, draw the figures and write everything into
    ``out_dir`` (``report.md``, ``report.json``, CSVs, ``figures/*.png``).

    ``labels`` maps a RUN_DIR (as given, or its folder name) to a model name; runs given
    one name are pooled. ``tokenizer`` counts tokens for runs that logged none. ``jobs``
    > 1 draws the figures in that many processes. ``figure_filter`` (strict | flexible |
    both) is the scoring the figures show; the report says which."""
    from lrm_backends.report import writers

    notes: list[str] = []

    def warn(message: str) -> None:
        log.debug("lrm report: %s", message)
        if message not in notes:
            notes.append(message)

    from lrm_backends.report.figures import FILTERS

    if figure_filter not in FILTERS:
        raise ReportError(f"filter {figure_filter!r}: expected one of {', '.join(FILTERS)}")
    run_dirs = [str(d) for d in run_dirs]
    from lrm_backends.report.budget import add_budget, split_budget_dirs

    main_dirs, budget_dirs, main_labels = split_budget_dirs(run_dirs, labels)  # `lrm budget` output
    runs = load_runs(main_dirs, tokenizer=tokenizer, labels=main_labels, progress=progress, warn=warn) if main_dirs else []
    models = pool_models(runs, warn)
    tables = compute_tables(models, quantiles=quantiles)
    tables.notes = notes + tables.notes
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    drawn: list[dict[str, Any]] = []
    if figures:
        from lrm_backends.report.figures import render_all

        drawn = render_all(tables, out / "figures", jobs=jobs, filt=figure_filter,
                           progress=(lambda what: status(f"drawing {what}")) if status else None)
    paths = writers.write_all(tables, drawn, out, run_dirs, figure_filter=figure_filter)
    from lrm_backends.report.overthinking import add_overthinking

    add_overthinking(models, out, paths)
    add_budget(budget_dirs, out, paths, labels=labels, figures=figures, drawn=drawn)
    return Report(tables=tables, markdown=paths["report.md"].read_text(encoding="utf-8"), paths=paths, figures=drawn)
