"""``lrm report RUN_DIR... --out REPORT_DIR``: who lost what, at what cost in tokens.

Reads lm-eval output folders (``results_*.json``, ``samples_*.jsonl``), lrm-bench's
per-response records and ``compression.json`` manifests; writes ``report.md`` (printed
here too), ``report.json``, one CSV per table and PNG figures. See
:mod:`lrm_backends.report`.
"""

from __future__ import annotations

import argparse
import sys


def _labels(pairs: list[str]) -> dict[str, str]:
    from lrm_backends.errors import UserError

    out = {}
    for pair in pairs:
        run, sep, name = pair.rpartition("=")
        if not sep or not run or not name:
            raise UserError(f"--label {pair!r}: expected RUN=NAME, e.g. --label runs/q4=R1-8B-Q4")
        out[run] = name
    return out


def run(args: argparse.Namespace) -> int:
    from lrm_backends.errors import UserError
    from lrm_backends.report import ReportError, build_report

    if args.quantiles < 2:
        raise UserError(f"--quantiles {args.quantiles}: needs at least 2")
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: needs at least 1")
    quiet = args.quiet

    def status(msg: str) -> None:
        if not quiet:
            print(f"lrm report: {msg}", file=sys.stderr, flush=True)

    try:
        report = build_report(
            args.run_dirs, args.out, labels=_labels(args.label), tokenizer=args.tokenizer,
            figures=not args.no_figures, quantiles=args.quantiles, progress=not quiet, status=status,
            jobs=args.jobs, figure_filter=args.filter,
        )
    except ReportError as exc:  # a bad RUN_DIR or option, or no matplotlib: one line
        raise UserError(str(exc)) from exc
    if not quiet:
        print(report.terminal)
    notes = len(report.tables.notes)
    print(f"lrm report: wrote {report.paths['report.md']} (+ report.json, {len(report.paths) - 2} CSV, "
          f"{len(report.figures)} figures) in {report.paths['report.md'].parent}"
          + (f"; {notes} note(s) at its end" if notes else ""), file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="tables and figures over runs: score, tokens, length vs accuracy, compression curves",
        description="Tables and figures over lm-eval runs of several models (full, quantized, pruned): "
        "score with standard error, reasoning tokens, truncation, whether long answers are the wrong "
        "ones, compression curves, knowledge vs reasoning. Writes REPORT_DIR/report.md (printed "
        "here too), report.json, one CSV per table and figures/*.png.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="lm_eval --output_path folders (or one results_*.json); several runs of one model are pooled")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="where to write report.md, report.json, CSVs, figures/")
    p.add_argument("--label", action="append", default=[], metavar="RUN=NAME",
                   help="name the model of RUN_DIR RUN (repeatable); runs given one name are pooled")
    p.add_argument("--tokenizer", metavar="NAME_OR_PATH",
                   help="tokenizer for runs that logged no token counts (default: the run's model_args)")
    p.add_argument("--quantiles", type=int, default=4, help="length quantiles per model and task (default 4)")
    p.add_argument("--no-figures", action="store_true", help="tables only (no matplotlib)")
    p.add_argument("--filter", choices=("strict", "flexible", "both"), default="strict",
                   help="scores the figures show: strict (answer after the reasoning; default), flexible "
                   "(answer anywhere: use it for a non-reasoning model, which strict leaves at zero), or both "
                   "(two line styles); the report says which")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="draw the figures in N processes (default 1; helps on idle cores)")
    p.add_argument("--quiet", action="store_true", help="print only where the report went")
    p.set_defaults(func=run)
