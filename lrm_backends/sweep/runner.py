"""Run a plan: one cell after another here (or ``max_parallel`` at once), or every cell a
Ray task with its declared resources, evaluation cells depending on their compression
cell through object refs. Then ``lrm report`` over the finished evaluation cells.

Progress is one line per finished cell (done / failed / skipped, with the log path of a
failure) and a status line ``cells: D done, R running, F failed, P pending``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lrm_backends.sweep.cell import ALREADY_DONE, FAILED, OK, SKIPPED, run_cell
from lrm_backends.sweep.plan import CELL_FILE, DONE_FILE, REPORT_DIR, Plan

# Environment the cells need, forwarded to Ray workers (a cluster's workers were started
# by `ray start` with their own environment): data and cache locations, offline switches.
FORWARDED_ENV_PREFIXES = ("LRM_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "VLLM_", "CUDA_LAUNCH", "XDG_CACHE_HOME")
RAY_POLL_S = 1.0  # how often the Ray progress view looks at the cells
EXIT_STATUS_MAX = 255  # a process exit status is one byte


class Progress:
    """Cells done / running / failed, printed as plain lines (they survive in logs)."""

    def __init__(self, plan: Plan, todo: list[str], out: Callable[[str], None]) -> None:
        self.plan, self.todo, self.out = plan, list(todo), out
        self.finished: dict[str, dict[str, Any]] = {}
        self.total = len(todo)

    def running(self) -> int:
        """Cells started (their ``cell.json`` is newer than the sweep) and not finished."""
        return sum(1 for cid in self.todo if cid not in self.finished and self._started(cid))

    def _started(self, cid: str) -> bool:
        cell = self.plan.get(cid)
        try:
            return (cell.dir / CELL_FILE).stat().st_mtime >= self.t0 and not (cell.dir / DONE_FILE).exists()
        except OSError:
            return False

    def start(self) -> None:
        self.t0 = time.time() - 1

    def finish(self, outcome: dict[str, Any]) -> None:
        self.finished[outcome["id"]] = outcome
        cell = self.plan.get(outcome["id"])
        what = f"{cell.kind} {cell.model} {cell.compression}" + (f" {cell.task}" if cell.task else "")
        status = outcome["status"]
        extra = f" in {outcome['seconds']:.0f} s" if status == OK else ""
        if status == FAILED:
            extra = f" ({outcome.get('reason')}); log: {outcome['log']}"
        elif status == SKIPPED:
            extra = f" ({outcome.get('reason')})"
        self.out(f"[{len(self.finished)}/{self.total}] {status}: {what}{extra}")
        self.status()

    def begin(self, cid: str) -> None:
        cell = self.plan.get(cid)
        self.out(f"running: {cell.kind} {cell.model} {cell.compression}" + (f" {cell.task}" if cell.task else "")
                 + f" (log: {cell.dir / 'log.txt'})")

    def counts(self) -> dict[str, int]:
        done = sum(1 for o in self.finished.values() if o["status"] in (OK, ALREADY_DONE))
        failed = sum(1 for o in self.finished.values() if o["status"] in (FAILED, SKIPPED))
        running = self.running()
        return {"done": done, "running": running, "failed": failed,
                "pending": self.total - done - failed - running}  # fmt: skip

    def status(self) -> None:
        c = self.counts()
        self.out(f"cells: {c['done']} done, {c['running']} running, {c['failed']} failed, {c['pending']} pending")


def _todo(plan: Plan) -> list[str]:
    return [c.id for c in plan.cells if not c.done]


def run_local(plan: Plan, *, max_parallel: int = 1, out: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run the unfinished cells here, ``max_parallel`` at a time (compression first)."""
    progress = Progress(plan, _todo(plan), out)
    progress.start()
    if max_parallel <= 1:
        results: dict[str, dict[str, Any]] = {}
        for cid in progress.todo:
            cell = plan.get(cid)
            dep = results.get(cell.depends_on) if cell.depends_on else None
            if dep is None or dep["status"] in (OK, ALREADY_DONE):
                progress.begin(cid)
            results[cid] = run_cell(cell.to_json(), dep)
            progress.finish(results[cid])
        return results
    futures: dict[str, Future] = {}
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        for cid in progress.todo:  # compression cells come first in the plan: no deadlock
            cell = plan.get(cid)
            dep_future = futures.get(cell.depends_on) if cell.depends_on else None

            def job(cell_json: dict[str, Any] = cell.to_json(), dep: Future | None = dep_future) -> dict[str, Any]:
                outcome = run_cell(cell_json, dep.result() if dep else None)
                progress.finish(outcome)
                return outcome

            futures[cid] = pool.submit(job)
        return {cid: f.result() for cid, f in futures.items()}


def _ray_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def run_ray(plan: Plan, *, address: str | None, out: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Every unfinished cell a Ray task; a local Ray is started (and shut down) when no
    ``address`` is given and none is running in this process."""
    try:
        import ray
    except ImportError:
        from lrm_backends.errors import UserError

        raise UserError("lrm sweep --ray needs Ray: pip install 'lrm-bench[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": {"env_vars": _ray_env()}}  # fmt: skip
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            if not address:
                raise
            from lrm_backends.errors import UserError
            from lrm_backends.models.replicas import join_failure

            raise UserError(f"lrm sweep: {join_failure(address, exc)}") from exc
    out(f"lrm sweep: Ray cluster with {ray.cluster_resources().get('CPU', 0):g} CPUs, "
        f"{ray.cluster_resources().get('GPU', 0):g} GPUs" + (f" at {address}" if address else ""))
    try:
        remote_cell = ray.remote(max_retries=0)(run_cell)
        progress = Progress(plan, _todo(plan), out)
        progress.start()
        refs: dict[str, Any] = {}
        for cid in progress.todo:
            cell = plan.get(cid)
            res = cell.resources
            options: dict[str, Any] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus, "name": f"lrm-sweep:{cid}"}
            if res.memory:
                options["memory"] = res.memory
            dep = refs.get(cell.depends_on) if cell.depends_on else None
            # An ObjectRef argument: Ray starts the evaluation after its compression cell.
            refs[cid] = remote_cell.options(**options).remote(cell.to_json(), dep)
        pending = {ref: cid for cid, ref in refs.items()}
        results: dict[str, dict[str, Any]] = {}
        last = None
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=RAY_POLL_S)
            for ref in ready:
                cid = pending.pop(ref)
                try:
                    results[cid] = ray.get(ref)
                except Exception as exc:  # the worker died (out of memory, node lost)
                    cell = plan.get(cid)
                    results[cid] = {"id": cid, "status": FAILED, "reason": f"Ray task failed: {exc}".splitlines()[0],
                                    "log": str(cell.dir / "log.txt"), "seconds": 0.0}  # fmt: skip
                progress.finish(results[cid])
            counts = progress.counts()
            if not ready and counts != last:
                progress.status()
            last = counts
        return results
    finally:
        if started_here:
            ray.shutdown()


def write_report(plan: Plan, out: Callable[[str], None] = print) -> Path | None:
    """``lrm report`` over every finished evaluation cell, into ``OUTPUT/report``."""
    from lrm_backends.cli import main as lrm_main
    from lrm_backends.sweep.plan import EVAL_OUTPUT

    cells = [c for c in plan.evaluations() if c.done]
    if not cells:
        out("lrm sweep: no finished evaluation cell; no report")
        return None
    target = plan.spec.output / REPORT_DIR
    argv = ["report", *(str(c.dir / EVAL_OUTPUT) for c in cells), "--out", str(target), "--quiet"]
    for c in cells:
        argv += ["--label", f"{c.dir / EVAL_OUTPUT}={c.label}"]
    code = lrm_main(argv)
    if code:
        out(f"lrm sweep: lrm report exited with status {code}")
        return None
    return target


def exit_status(results: dict[str, dict[str, Any]]) -> int:
    """The number of failed (or skipped) cells, as an exit status."""
    return min(sum(1 for o in results.values() if o["status"] in (FAILED, SKIPPED)), EXIT_STATUS_MAX)


def stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
