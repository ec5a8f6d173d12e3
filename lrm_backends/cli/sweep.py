"""``lrm sweep SPEC``: base models x compressions x tasks as one resumable command.

    lrm sweep sweep.yaml --dry-run [--json]     # the cells, their resources, which are done
    lrm sweep sweep.yaml                        # run here, one cell after another
    lrm sweep sweep.yaml --max-parallel 2       # two cells at a time here
    lrm sweep sweep.yaml --ray [--ray-address HOST:PORT]   # every cell a Ray task

See :mod:`lrm_backends.sweep`. Exit status: the number of failed cells (0: all done);
2 for a bad spec.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def run(args: argparse.Namespace) -> int:
    from lrm_backends.errors import UserError
    from lrm_backends.sweep import runner
    from lrm_backends.sweep.plan import make_plan
    from lrm_backends.sweep.spec import load_spec

    if args.max_parallel < 1:
        raise UserError(f"--max-parallel {args.max_parallel}: needs at least 1")
    spec = load_spec(args.spec)
    plan = make_plan(spec)
    say = runner.stderr_line
    if args.dry_run:
        if args.json:
            print(json.dumps(plan.to_json(), indent=1))
        else:
            _print_plan(plan)
        return 0
    address = args.ray_address or spec.ray_address or os.environ.get("RAY_ADDRESS")
    use_ray = args.ray or bool(address)
    todo = [c for c in plan.cells if not c.done]
    say(f"lrm sweep: {len(plan.cells)} cells ({len(plan.cells) - len(todo)} done, {len(todo)} to run) "
        f"in {spec.output}" + (" on Ray" if use_ray else ""))
    spec.output.mkdir(parents=True, exist_ok=True)
    if use_ray:
        results = runner.run_ray(plan, address=address, out=say)
    else:
        results = runner.run_local(plan, max_parallel=args.max_parallel, out=say)
    failed = runner.exit_status(results)
    if not args.no_report:
        report = runner.write_report(plan, out=say)
        if report is not None:
            say(f"lrm sweep: report in {report}")
    bad = [o for o in results.values() if o["status"] not in ("done", "already done")]
    for o in bad:
        say(f"lrm sweep: {o['status']}: {o['id']} ({o.get('reason')}); log: {o['log']}")
    say(f"lrm sweep: {len(results) - len(bad)} of {len(results)} cells run now finished"
        + (f", {len(bad)} failed" if bad else ""))
    return failed


def _print_plan(plan: Any) -> None:
    done = sum(c.done for c in plan.cells)
    print(f"{len(plan.cells)} cells, {done} done, output {plan.spec.output}")
    for c in plan.cells:
        res = ", ".join(f"{k}={v}" for k, v in c.resources.as_dict().items() if v)
        print(f"  [{'x' if c.done else ' '}] {c.kind:8} {c.model} {c.compression}"
              + (f" {c.task}" if c.task else "") + f"  ({res})  {c.id}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of models x compressions x tasks from a YAML spec (resumable, local or Ray)",
        description="Compress every base model with every compression once, evaluate every variant on every "
        "task (one lm-eval output folder per cell), then lrm report over all of them. Finished cells are "
        "skipped and unfinished ones resume from their response cache. Exit status: the number of failed cells.",
    )
    p.add_argument("spec", metavar="SPEC", help="the sweep's YAML file (see README: lrm sweep)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells, resources, done) and stop")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument("--ray", action="store_true",
                   help="every cell a Ray task (a local Ray is started unless --ray-address or RAY_ADDRESS)")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster to use (implies --ray; default: the spec's ray_address, else $RAY_ADDRESS)")
    p.add_argument("--max-parallel", type=int, default=1, metavar="N",
                   help="without Ray: run N cells at a time (default 1)")
    p.add_argument("--no-report", action="store_true", help="do not run lrm report at the end")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """``python -m lrm_backends.cli.sweep SPEC ...``."""
    parser = argparse.ArgumentParser(prog="lrm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
