"""Per-response records, and the run context that scoring reads them from.

``lrm_tasks`` never imports the layer above it. The glue in ``lrm_backends`` fills the
:class:`RunContext` before an evaluation (tokenizer, model identity, token budget, a
sink that hands each record to the registry's recorders) and clears it after. Without
it, scoring still works: counts come from the backend or are ``None``, and records go
nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from lrm_tasks.tokens import TokenCounter, TokenCounts

RECORD_VERSION = 1


class ResponseRecord(TypedDict):
    """One scored response, as recorders receive it (``lrm_record_response``) and the
    default recorder writes it (one JSON line). Version :data:`RECORD_VERSION`.

    Token counts are ``None`` when unknown, never 0; ``answer_*`` is ``None`` for no
    answer; ``error`` is the backend's error for this request (scored as no answer).
    """

    record_version: int
    task: str  # lm-eval task name, e.g. "aime24_lrm"
    benchmark: str  # "aime24", "bbh_temporal_sequences", "folio", "musique"
    doc_key: str | None
    repeat: int
    model: str | None
    reasoning_tokens: int | None
    answer_tokens: int | None
    total_tokens: int | None
    count_source: str | None  # "backend" | "retokenized" | None
    finish_reason: str | None
    truncated: bool | None
    think_closed: bool
    answer_strict: str | None
    answer_flexible: str | None
    correct_strict: bool
    correct_flexible: bool
    f1_strict: float | None
    f1_flexible: float | None
    gold: str  # the gold answer as scoring reads it
    response: str
    error: str | None


@dataclass
class RunContext:
    counter: TokenCounter = field(default_factory=TokenCounter)
    model: str | None = None
    think_end: str = "</think>"
    max_gen_toks: dict[str, int] = field(default_factory=dict)  # lm-eval task name or benchmark -> budget
    sink: Callable[[ResponseRecord], None] | None = None


_context = RunContext()


def get_context() -> RunContext:
    return _context


def set_context(ctx: RunContext | None) -> RunContext:
    """Install ``ctx`` (or a fresh default) and return the previous context."""
    global _context
    previous, _context = _context, ctx or RunContext()
    return previous


def build_record(
    *,
    task: str,
    benchmark: str,
    doc: dict[str, Any],
    repeat: int,
    response: str,
    score: Any,
    counts: TokenCounts,
    model: str | None,
) -> ResponseRecord:
    """One JSON-ready record: what was asked, answered, extracted, scored and spent."""
    return {
        "record_version": RECORD_VERSION,
        "task": task,
        "benchmark": benchmark,
        "doc_key": doc.get("doc_key"),
        "repeat": repeat,
        "model": model,
        **counts.as_dict(),
        "think_closed": score.think_closed,
        "answer_strict": score.answer_strict,
        "answer_flexible": score.answer_flexible,
        "correct_strict": score.correct_strict,
        "correct_flexible": score.correct_flexible,
        "f1_strict": score.f1_strict,
        "f1_flexible": score.f1_flexible,
        "gold": score.gold,
        "response": str(response),
        # Set when the backend failed on this request (scored as no answer); else None.
        "error": getattr(response, "error", None),
    }
