"""The default recorder: per-response JSON lines and a per-run summary.

It implements the ``lrm_record_response`` / ``lrm_record_task`` hooks like any
third-party recorder would. Records are appended and flushed one by one, so a crash
loses nothing already scored.

Where: ``$LRM_RECORDS_DIR`` if set; else next to lm-eval's output
(``<output_path>/<model>/``) when ``--output_path`` is given; else
``~/.cache/lrm-bench/records/<model>/``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

import jsonlines

from lrm_backends.hookspecs import RunInfo, hookimpl
from lrm_tasks.records import Record

log = logging.getLogger(__name__)

RECORDS_DIR_ENV = "LRM_RECORDS_DIR"
DEFAULT_RECORDS_ROOT = Path("~/.cache/lrm-bench/records")


def records_dir(output_path: str | None, model_dir_name: str | None) -> Path:
    if os.environ.get(RECORDS_DIR_ENV):
        return Path(os.environ[RECORDS_DIR_ENV]).expanduser()
    sub = model_dir_name or "model"
    if output_path:
        out = Path(output_path).expanduser()
        return (out.parent if out.suffix == ".json" else out / sub)
    return DEFAULT_RECORDS_ROOT.expanduser() / sub


class _Writers:
    """One open, line-flushed JSON lines writer per (run, task)."""

    def __init__(self) -> None:
        self._open: dict[Path, tuple[IO[str], jsonlines.Writer]] = {}

    def write(self, path: Path, record: dict[str, Any]) -> None:
        if path not in self._open:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("a", encoding="utf-8")
            self._open[path] = (fh, jsonlines.Writer(fh, flush=True, dumps=_dumps))
            log.info("lrm-bench: writing per-response records to %s", path)
        self._open[path][1].write(record)

    def close(self) -> list[Path]:
        paths = list(self._open)
        for fh, writer in self._open.values():
            writer.close()
            fh.close()
        self._open.clear()
        return paths


def _dumps(obj: Any) -> str:
    # ensure_ascii keeps lone surrogates from a broken response writable.
    return json.dumps(obj, ensure_ascii=True)


_writers = _Writers()


def responses_path(run: RunInfo, task: str) -> Path:
    return run.records_dir / f"lrm_responses_{task}_{run.timestamp}.jsonl"


@hookimpl
def lrm_record_response(record: Record, run: RunInfo) -> None:
    _writers.write(responses_path(run, record["task"]), record)


@hookimpl
def lrm_record_task(task: str, aggregate: dict, run: RunInfo) -> None:
    path = run.records_dir / f"lrm_summary_{run.timestamp}.json"
    summary = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"model": run.model, "tasks": {}}
    summary["tasks"][task] = aggregate
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")


def close_all() -> list[Path]:
    """Close every open records file (end of a run); return their paths."""
    return _writers.close()
