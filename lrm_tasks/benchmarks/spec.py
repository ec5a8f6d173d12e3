"""What a benchmark is to lrm-bench: one :class:`BenchmarkSpec` per benchmark module.

A spec carries everything the rest of the package asks of a benchmark: how to read its
rows (Hub or local files) into canonical documents, its prompts (ours and the paper's),
how to judge a response against a document (gold answer, answer finder, equality, F1),
how answers vote, and its report title. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Report groups (arXiv 2504.02010, section 3): reasoning benchmarks, closed-book
# knowledge, and open-book context.
REASONING, KNOWLEDGE, CONTEXT = "reasoning", "knowledge", "context"


class DataError(ValueError):
    """A benchmark file is missing or malformed; the message names file and fields."""


@dataclass(frozen=True)
class Judge:
    """What scoring needs from one document: its gold answer, an answer finder bound to
    the document, and how an extracted answer is verified.

    ``find(text, in_reasoning)`` returns an answer, ``None`` (nothing committed) or
    ``lrm_tasks.text.NO_ANSWER`` (a refusal). ``correct`` is the benchmark's equality;
    ``f1`` a graded score, ``None`` for benchmarks without one.

    ``commitments(reasoning)`` lists the answers a reasoning commits to, in order, as
    ``(character offset, answer)``: the overthinking measures read them
    (:mod:`lrm_tasks.overthinking`); ``None`` when the benchmark cannot say.
    ``conclude(reasoning)`` reads the reasoning's last conclusion before a final check
    that never finished (:func:`lrm_tasks.text.final_conclusion`) as this benchmark's
    answer, ``(offset, answer)`` or ``None``; the flexible answer takes it when nothing
    the finder recognises comes after it.
    """

    gold: str
    find: Callable[[str, bool], str | None]
    correct: Callable[[str | None], bool]
    f1: Callable[[str | None], float] | None = None
    commitments: Callable[[str], list[tuple[int, str]]] | None = None
    conclude: Callable[[str], tuple[int, str] | None] | None = None


def same_answer(answer: str) -> str:
    """The default vote key: answers vote together when they are the same string."""
    return answer


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark, everything about it in one place.

    ``name`` is the canonical name (lm-eval tasks are ``NAME_lrm`` and ``NAME_lrm_paper``);
    ``aliases`` are other base names :func:`lrm_tasks.scoring.canonical_task` accepts.
    ``prompts`` maps a suffix to a prompt builder: the harness exposes each as
    ``NAME_<suffix>`` for the task YAMLs (``prompt`` and ``paper_prompt`` at least).
    ``to_doc(row, index, where)`` turns a raw row (Hub or file) into a canonical document
    with its ``doc_key``, raising :class:`DataError` naming ``where``. ``judge(doc)``
    reads the gold answer (``ValueError`` naming the fields expected when it is missing).
    ``variants`` are report-only task variants: a key found in the task name gives the
    task that ``(title, kind)`` (MuSiQue with its paragraphs is ``ctx``).
    """

    name: str
    title: str
    to_doc: Callable[[dict[str, Any], int, str], dict[str, Any]]
    judge: Callable[[dict[str, Any]], Judge]
    prompts: Mapping[str, Callable[[dict[str, Any]], str]]
    hub_path: str
    hub_split: str
    local_files: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    hub_name: str | None = None
    hub_note: str = ""
    vote_key: Callable[[str], str] = same_answer
    kind: str = REASONING
    variants: Mapping[str, tuple[str, str]] = field(default_factory=dict)


# ----------------------------------------------------------------------------------
# Reading fields of rows and documents


def get_field(doc: Mapping[str, Any], *names: str, case_insensitive: bool = False) -> Any:
    """The first of ``names`` that ``doc`` has with a non-``None`` value, else ``None``.

    >>> get_field({"Answer": 25}, "answer", "Answer"), get_field({"ANSWER": 3}, "answer", case_insensitive=True)
    (25, 3)
    """
    for name in names:
        if name in doc and doc[name] is not None:
            return doc[name]
    if case_insensitive:
        lowered = {str(k).lower(): v for k, v in doc.items()}
        for name in names:
            value = lowered.get(name.lower())
            if value is not None:
                return value
    return None


def missing_gold(task: str, fields: str, doc: Mapping[str, Any]) -> ValueError:
    """The error for a document without its gold field: names what was expected and found."""
    have = ", ".join(sorted(map(str, doc))) or "none"
    return ValueError(f"{task} document has no gold answer: expected {fields}; document fields: {have}")


def lower_keys(row: Mapping[str, Any]) -> dict[str, Any]:
    """Case-insensitive view of a record's keys (AIME files differ only in case)."""
    return {str(k).lower(): v for k, v in row.items()}


def need_fields(row: Mapping[str, Any], keys: Iterable[str], where: str, expected: str) -> None:
    """Raise :class:`DataError` naming ``where`` when ``row`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(
            f"{where}: missing field(s) {', '.join(map(repr, missing))}; "
            f"expected {expected}. Found fields: {', '.join(sorted(map(str, row))) or 'none'}."
        )
