"""Run one cell: the ``lrm compress`` / ``lrm eval`` command it is, in a subprocess.

A subprocess per cell, not a call in the sweep's own process, because a cell must not
take the sweep down with it (an engine that segfaults or leaks GPU memory, as vLLM does
between engines in one process), every cell needs its own log file, and a killed sweep
must take its running cell with it (``PR_SET_PDEATHSIG`` on Linux). The subprocess runs
the same ``lrm_backends.cli.main`` as the ``lrm`` command, so a cell computes exactly
what ``lrm compress`` and ``lrm eval`` compute. The same function runs locally and as a
Ray task.

Markers in the cell folder: ``cell.json`` (configuration and command) when it starts,
``done.json`` only after the command exited 0. An evaluation cell's lm-eval output folder
is cleared before each attempt (an old ``results_*.json`` would be counted twice by the
report); its response cache is kept, so a rerun generates only what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lrm_backends.sweep.plan import CELL_FILE, DONE_FILE, EVAL_OUTPUT, EVALUATE, LOG_FILE

OK, FAILED, SKIPPED, ALREADY_DONE = "done", "failed", "skipped", "already done"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the cell's process gets SIGKILL when the sweep (its parent) dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _node() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # not in Ray, or no runtime context
        pass
    return socket.gethostname()


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run_cell(cell: dict[str, Any], dependency: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``cell`` (:meth:`Cell.to_json`) unless it is done; the outcome as a dict:
    ``id``, ``status`` (done / failed / skipped / already done), ``log``, ``seconds``,
    ``node``, ``returncode``, ``reason``. ``dependency`` is the outcome of the
    compression cell it needs (a failed one skips this cell)."""
    folder = Path(cell["dir"])
    log = folder / LOG_FILE
    outcome: dict[str, Any] = {"id": cell["id"], "log": str(log), "node": _node(), "seconds": 0.0}
    if (folder / DONE_FILE).is_file():
        return {**outcome, "status": ALREADY_DONE}
    if dependency is not None and dependency.get("status") not in (OK, ALREADY_DONE):
        return {**outcome, "status": SKIPPED, "reason": f"its compression cell {dependency['id']} did not finish"}
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_json(folder / CELL_FILE, {**cell, "started": time.time(), "node": outcome["node"]})
    if cell["kind"] == EVALUATE:
        shutil.rmtree(folder / EVAL_OUTPUT, ignore_errors=True)
    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"=== attempt {time.strftime('%Y-%m-%d %H:%M:%S')} on {outcome['node']}: lrm {' '.join(cell['argv'])}\n")
        fh.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "lrm_backends.sweep.cell", str(folder / CELL_FILE)],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
    outcome.update(seconds=round(time.perf_counter() - started, 1), returncode=proc.returncode)
    if proc.returncode != 0:
        return {**outcome, "status": FAILED, "reason": f"exit status {proc.returncode}"}
    _atomic_json(folder / DONE_FILE, {"id": cell["id"], "finished": time.time(), "seconds": outcome["seconds"],
                                       "node": outcome["node"], "command": ["lrm", *cell["argv"]]})  # fmt: skip
    return {**outcome, "status": OK}


def main(cell_file: str) -> int:
    """The subprocess: ``lrm ARGV`` of the cell, in this process."""
    import logging

    from lrm_backends.cli import main as lrm_main

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cell = json.loads(Path(cell_file).read_text(encoding="utf-8"))
    return int(lrm_main(cell["argv"]) or 0)


if __name__ == "__main__":  # pragma: no cover - the cell subprocess
    sys.exit(main(sys.argv[1]))
