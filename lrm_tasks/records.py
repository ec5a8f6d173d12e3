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
from typing import Any

from lrm_tasks.tokens import TokenCounter, TokenCounts

RECORD_VERSION = 1


@dataclass
class RunContext:
    counter: TokenCounter = field(default_factory=TokenCounter)
    model: str | None = None
    think_end: str = "</think>"
    max_gen_toks: dict[str, int] = field(default_factory=dict)  # lm-eval task name or benchmark -> budget
    sink: Callable[[dict[str, Any]], None] | None = None


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
) -> dict[str, Any]:
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
        # The request's real token budget when the backend reports it (lrm-vllm lowers it
        # so a whole prompt fits max_model_len); else None (the task's max_gen_toks).
        "max_gen_toks": getattr(response, "max_gen_toks", None),
    }
