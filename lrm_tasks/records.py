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
from weakref import WeakValueDictionary

from lrm_tasks.tokens import TokenCounter, TokenCounts

RECORD_VERSION = 1


class Record(TypedDict):
    """One scored response, as recorders receive it (``lrm_record_response``) and as the
    default recorder writes it (one JSON line). Unknown values are ``None``, never 0."""

    record_version: int
    task: str  # the lm-eval task name (aime24_lrm, ...)
    benchmark: str  # the benchmark table's name (aime24, ...)
    doc_key: str | None
    repeat: int
    model: str | None
    reasoning_tokens: int | None  # up to and including </think>; all of it if unclosed
    answer_tokens: int | None
    total_tokens: int | None
    count_source: str | None  # "backend" | "retokenized" | None
    finish_reason: str | None  # "stop" | "length" | None
    truncated: bool | None
    think_closed: bool
    answer_strict: str | None  # None = no answer
    answer_flexible: str | None
    correct_strict: bool
    correct_flexible: bool
    f1_strict: float | None  # MuSiQue only
    f1_flexible: float | None
    gold: str
    first_answer_tokens: int | None  # lrm_tasks.overthinking
    reasoning_after_first_answer: float | None
    answer_switches: int | None
    looping: bool | None
    response: str  # the raw response, never altered
    error: str | None  # the backend's error for this request (scored as no answer)


@dataclass
class RunContext:
    counter: TokenCounter = field(default_factory=TokenCounter)
    model: str | None = None
    think_end: str = "</think>"
    max_gen_toks: dict[str, int] = field(default_factory=dict)  # lm-eval task name or benchmark -> budget
    sink: Callable[[dict[str, Any]], None] | None = None
    # Responses scored in this run, so the strict and flexible filters score each once
    # (lrm_tasks.harness); entries vanish with the filtered answers that hold them.
    scored: WeakValueDictionary = field(default_factory=WeakValueDictionary, repr=False, compare=False)


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
    overthinking: dict[str, Any] | None = None,
) -> Record:
    """One JSON-ready record: what was asked, answered, extracted, scored and spent.

    ``overthinking`` adds ``first_answer_tokens``, ``reasoning_after_first_answer``,
    ``answer_switches`` and ``looping`` (:mod:`lrm_tasks.overthinking`); without it they
    are ``None`` (unknown)."""
    over = overthinking or {}
    return {  # type: ignore[typeddict-item]  (**counts: the TokenCounts fields)
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
        "first_answer_tokens": over.get("first_answer_tokens"),
        "reasoning_after_first_answer": over.get("reasoning_after_first_answer"),
        "answer_switches": over.get("answer_switches"),
        "looping": over.get("looping"),
        "response": str(response),
        # Set when the backend failed on this request (scored as no answer); else None.
        "error": getattr(response, "error", None),
        # The request's real token budget when the backend reports it (lrm-vllm lowers it
        # so a whole prompt fits max_model_len); else None (the task's max_gen_toks).
        "max_gen_toks": getattr(response, "max_gen_toks", None),
    }
