"""Hook specifications of lrm-bench's plugin registry.

Plugins (ours and third parties') implement these with ``@hookimpl`` from
``lrm_backends.hookspecs`` and are found through the ``lrm_bench`` entry point group.
Hooks are always called with keyword arguments; implementations may name only the
arguments they use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pluggy

from lrm_tasks.records import Record

PROJECT_NAME = "lrm_bench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def default_timestamp() -> str:
    """The same shape as lm-eval's result file names (``2026-11-28T17-30-00.123456``)."""
    return datetime.now().isoformat().replace(":", "-")


@dataclass
class RunInfo:
    """One evaluation, as recorders see it."""

    model: str | None  # "<backend>:<pretrained>"
    records_dir: Path  # where the default recorder writes
    timestamp: str = field(default_factory=default_timestamp)


@hookspec
def register_backends(register: Callable[[str, str], None]) -> None:
    """Register evaluation backends.

    :param register: call ``register(name, target)`` once per backend. ``name`` is
        what users pass to ``--model``; ``target`` is a lazy ``"module:Class"`` path
        to an ``lm_eval.api.model.LM`` subclass, imported only when the backend is
        used, so a backend's heavy dependency costs nothing until then.

    Every implementation is called, built-ins first.  The registry owns validation: a
    name must be a valid ``--model`` name and a target a ``"module:Class"`` string; the
    first registration of a name wins, and a later plugin registering the same name
    (or an invalid one, or raising) is skipped with a
    :class:`lrm_backends.plugins.PluginWarning` naming it.
    """


@hookspec
def lrm_record_response(record: Record, run: RunInfo) -> None:
    """Receive one scored response, right after scoring (the post-hoc hook).

    :param record: a JSON-ready dict (:class:`lrm_tasks.records.Record`): ``task``, ``benchmark``, ``doc_key``, ``repeat``,
        ``model``, ``reasoning_tokens``, ``answer_tokens``, ``total_tokens`` (``None``
        when unknown, never 0), ``count_source`` (``"backend"`` | ``"retokenized"`` |
        ``None``), ``finish_reason``, ``truncated``, ``think_closed``,
        ``answer_strict``/``answer_flexible`` (``None`` = no answer),
        ``correct_strict``/``correct_flexible``, ``f1_strict``/``f1_flexible``, ``gold``,
        the raw ``response`` and ``error`` (the backend's error for this request, else
        ``None``; such a response is scored as no answer). Treat it as read-only.
    :param run: the :class:`RunInfo` of this evaluation
        (``model``, ``records_dir``, ``timestamp``).

    Every implementation is called, in registration order; the default one appends the
    record to ``<records_dir>/lrm_responses_<task>_<timestamp>.jsonl`` and flushes.
    An implementation that raises is reported once and skipped for the rest of the run.
    """


@hookspec
def lrm_record_task(task: str, aggregate: dict[str, Any], run: RunInfo) -> None:
    """Receive one task's aggregate once all its responses were recorded.

    :param task: the lm-eval task name (``aime24_lrm``...).
    :param aggregate: ``n_responses``, ``accuracy_strict``/``accuracy_flexible``,
        ``no_answer_strict``/``no_answer_flexible``, ``mean_reasoning_tokens``,
        ``mean_total_tokens``, ``truncation_rate``, ``mean_tokens_correct``,
        ``mean_tokens_incorrect`` (strict correctness; ``None`` where unknown).
    :param run: as for :func:`lrm_record_response`.

    Every implementation is called; the default one writes
    ``<records_dir>/lrm_summary_<timestamp>.json`` holding every task's aggregate.
    """
