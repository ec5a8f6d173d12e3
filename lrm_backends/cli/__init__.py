"""The ``lrm`` command: ``lrm eval`` (lm_eval with lrm-bench registered), ``lrm demo``, ...

Each subcommand lives in its own module with ``add_parser(subparsers)``; this file only
dispatches. ``lrm eval`` (``cli/eval.py``) hands its arguments to lm-eval's own CLI, so it
accepts exactly what ``lm_eval`` accepts, plus lrm-bench's own options.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, each exposing add_parser(subparsers); imported lazily by name.
SUBCOMMANDS: tuple[str, ...] = (
    "lrm_backends.cli.budget",
    "lrm_backends.cli.compress",
    "lrm_backends.cli.demo",
    "lrm_backends.cli.export",
    "lrm_backends.cli.plugins",
    "lrm_backends.cli.report",
    "lrm_backends.cli.sweep",
)


from lrm_backends.errors import UserError  # noqa: E402  (re-exported: lrm_backends.cli.UserError)
from lrm_backends.cli.eval import EVAL_HELP, run_lm_eval, translate_lrm_options  # noqa: E402,F401  (re-exported)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user asked for something that cannot work."""
    from lrm_backends.run.cache import CacheError
    from lrm_backends.errors import ValidationError

    return (UserError, ValidationError, CacheError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrm",
        description="lrm-bench: benchmark compressed reasoning models with lm-evaluation-harness.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ev = sub.add_parser(
        "eval",
        help="run lm_eval with lrm-bench's tasks and backends (same arguments as lm_eval)",
        add_help=False,
    )
    ev.add_argument("lm_eval_args", nargs=argparse.REMAINDER)
    ev.set_defaults(func=lambda a: run_lm_eval(a.lm_eval_args))  # (main() calls it directly)
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    debug = "--debug" in argv[:1]
    if debug:
        argv = argv[1:]
    # `lrm eval ...` passes everything through, --help included.
    if argv and argv[0] == "eval":
        if "--debug" in argv:  # `lrm eval --debug ...` too
            debug, argv = True, [a for a in argv if a != "--debug"]
        try:
            return run_lm_eval(argv[1:])
        except _user_errors() as exc:
            if debug:
                raise
            print(f"lrm: error: {exc}", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    args.debug = debug
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        if args.debug:
            raise
        print(f"lrm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
