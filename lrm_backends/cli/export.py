"""``lrm export upstream OUT_DIR``: our tasks as a self-contained lm-eval task folder."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from lrm_backends.errors import UserError
    from lrm_backends.export import ExportError, export_upstream

    try:
        target = export_upstream(args.out_dir, args.name, overwrite=args.overwrite)
    except ExportError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {target}/ ; try it with: lm_eval --include_path {target} --tasks aime24_lrm ...")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the tasks for contribution to lm-evaluation-harness")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    up = kinds.add_parser("upstream", help="write OUT_DIR/<name>/: YAMLs, one generated utils.py, README")
    up.add_argument("out_dir", metavar="OUT_DIR")
    up.add_argument("--name", default="lrm", help="folder name inside OUT_DIR (default lrm)")
    up.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    up.set_defaults(func=run)
