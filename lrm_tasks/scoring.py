"""Reasoning-aware scoring: one ``score()`` for every lrm-bench task (standard library only).

``score(task, response, doc)`` splits the response at the end-of-thinking delimiter,
extracts a strict and a flexible answer, reads the gold answer from the document in any
of the schemas we meet (canonical, Hugging Face Hub, original release; see
docs/CONTRACTS.md) and verifies, all as the task's benchmark module says
(:mod:`lrm_tasks.benchmarks`):

- aime24: integer equality with the gold answer;
- bbh_temporal_sequences: the option letter equals the target letter;
- folio: the label equals the gold label ("Unknown" is "Uncertain");
- musique: exact match after the official MuSiQue/SQuAD normalisation against the
  answer and its aliases, plus token F1 (best over answer and aliases).

A bad *document* (no gold field) raises ``ValueError`` naming the fields expected; a
*response* never makes ``score`` raise.
"""

from __future__ import annotations

from dataclasses import dataclass

from lrm_tasks.benchmarks import BENCHMARKS, get_benchmark
from lrm_tasks.text import THINK_END, extract_answers, split_reasoning

__all__ = ["Score", "score", "split_reasoning", "canonical_task", "gold_answer", "CANONICAL_TASKS"]

CANONICAL_TASKS = tuple(BENCHMARKS)


def canonical_task(name: str) -> str:
    """Map a task name to one of ``aime24 | bbh_temporal_sequences | folio | musique``.

    >>> canonical_task("aime24_lrm_paper"), canonical_task("temporal_sequences")
    ('aime24', 'bbh_temporal_sequences')
    >>> canonical_task("musique_ctx_lrm")
    'musique'
    >>> canonical_task("gsm8k")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown task 'gsm8k'; valid names: aime2024, aime24, ..., temporal_sequences (...)
    """
    return get_benchmark(name).name


@dataclass(frozen=True)
class Score:
    """The verdict on one response, with its evidence.

    ``answer_strict`` / ``answer_flexible`` are ``None`` when the response committed to
    no answer (``no_answer_strict`` / ``no_answer_flexible``), which is distinct from a
    wrong answer. ``f1_*`` are MuSiQue token F1 (``None`` for other tasks).
    ``reasoning`` and ``answer_text`` are the two sides of the split; the raw response
    is never altered.
    """

    task: str
    answer_strict: str | None
    answer_flexible: str | None
    correct_strict: bool
    correct_flexible: bool
    f1_strict: float | None
    f1_flexible: float | None
    think_closed: bool
    gold: str
    reasoning: str
    answer_text: str

    @property
    def no_answer_strict(self) -> bool:
        """True when the strict extraction found no answer."""
        return self.answer_strict is None

    @property
    def no_answer_flexible(self) -> bool:
        """True when the flexible extraction found no answer."""
        return self.answer_flexible is None


# ----------------------------------------------------------------------------------
# Gold answers and scoring


def gold_answer(task: str, doc: dict) -> str:
    """The gold answer of a document, normalised as ``Score.gold`` carries it.

    >>> gold_answer("aime24", {"Answer": 25}), gold_answer("folio_lrm", {"label": "Unknown"})
    ('25', 'Uncertain')
    """
    spec = get_benchmark(task)
    if not isinstance(doc, dict):
        raise ValueError(f"{spec.name} document must be a dict, got {type(doc).__name__}")
    return spec.judge(doc).gold


def score(task: str, response: str, doc: dict, *, think_end: str = THINK_END) -> Score:
    """Score one response of a reasoning model against its document.

    ``task`` is any name ``canonical_task`` accepts; ``doc`` any schema of that task.
    Raises ``ValueError`` for an unknown task or a document without its gold field;
    never for anything in ``response``.

    >>> s = score("aime24_lrm", "Hmm... 5*5=25.</think>\\n\\nThe answer is $\\\\boxed{025}$.", {"Answer": 25})
    >>> s.answer_strict, s.correct_strict, s.think_closed
    ('25', True, True)
    >>> s = score("aime24", "Hmm... it is \\\\boxed{25}, wait", {"answer": "25"})
    >>> s.answer_strict, s.answer_flexible, s.no_answer_strict
    (None, '25', True)
    """
    spec = get_benchmark(task)
    if not isinstance(doc, dict):
        raise ValueError(f"{spec.name} document must be a dict, got {type(doc).__name__}")
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    judge = spec.judge(doc)
    extraction, (reasoning, answer_text, closed) = extract_answers(judge.find, response, think_end, judge.conclude)
    return Score(
        task=spec.name,
        answer_strict=extraction.strict,
        answer_flexible=extraction.flexible,
        correct_strict=judge.correct(extraction.strict),
        correct_flexible=judge.correct(extraction.flexible),
        f1_strict=None if judge.f1 is None else judge.f1(extraction.strict),
        f1_flexible=None if judge.f1 is None else judge.f1(extraction.flexible),
        think_closed=closed,
        gold=judge.gold,
        reasoning=reasoning,
        answer_text=answer_text,
    )
