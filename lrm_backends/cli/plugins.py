"""``lrm plugins``: the plugins lrm-bench found, their versions and backends.

    $ lrm plugins
    plugin                 distribution     version  status  backends / hooks
    lrm_backends.builtin   lrm-bench        0.1.0    loaded  lrm-gguf, lrm-replay
    ...

``--json`` prints the same as a JSON list (one object per plugin).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TextIO


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "plugins",
        help="list plugins (lrm_bench entry points), their versions and backends",
        description=(
            "List lrm-bench's plugins: built-ins and installed distributions with an "
            "'lrm_bench' entry point. Skip plugins with LRM_BLOCK_PLUGINS=name1,name2."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from lrm_backends.plugins import BLOCK_ENV_VAR, ENTRY_POINT_GROUP, blocked_plugin_names, plugin_infos

    out = out or sys.stdout
    infos = plugin_infos()
    if args.json:
        json.dump([asdict(i) for i in infos], out, indent=2)
        out.write("\n")
        return 0
    rows = [("plugin", "distribution", "version", "status", "backends / hooks")]
    for i in infos:
        provides = ", ".join(i.backends) or ", ".join(h for h in i.hooks if h != "register_backends") or "-"
        status = i.status if i.error is None else f"{i.status}: {i.error}"
        rows.append((i.name, i.distribution or "-", i.version or "-", status, provides))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        out.write("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4] + "\n")
    blocked = blocked_plugin_names()
    out.write(
        f"\nThird-party plugins: entry point group '{ENTRY_POINT_GROUP}'. "
        f"{BLOCK_ENV_VAR}={','.join(sorted(blocked)) if blocked else '(unset)'}\n"
    )
    return 0
