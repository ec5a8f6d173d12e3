"""Reasoning-aware scoring: one ``score()`` for every lrm-bench task (standard library only).

``score(task, response, doc)`` splits the response at the end-of-thinking delimiter,
extracts a strict and a flexible answer (``lrm_tasks.extractors``), reads the gold
answer from the document in any of the schemas we meet (canonical, Hugging Face Hub,
original release; see docs/CONTRACTS.md) and verifies:

- aime24: integer equality with the gold answer;
- bbh_temporal_sequences: the option letter equals the target letter;
- folio: the label equals the gold label ("Unknown" is "Uncertain");
- musique: exact match after the official MuSiQue/SQuAD normalisation against the
  answer and its aliases, plus token F1 (best over answer and aliases).

A bad *document* (no gold field) raises ``ValueError`` naming the fields expected; a
*response* never makes ``score`` raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lrm_tasks.extractors import THINK_END, extract, parse_options, split_reasoning
from lrm_tasks.metrics import exact_match, token_f1

__all__ = ["Score", "score", "split_reasoning", "canonical_task", "gold_answer", "CANONICAL_TASKS"]

CANONICAL_TASKS = ("aime24", "bbh_temporal_sequences", "folio", "musique")

# Accepted base names (before an optional "_lrm" / "_lrm_paper" suffix).
_TASK_ALIASES = {
    "aime24": "aime24",
    "aime_2024": "aime24",
    "aime2024": "aime24",
    "bbh_temporal_sequences": "bbh_temporal_sequences",
    "bbh_cot_temporal_sequences": "bbh_temporal_sequences",
    "bbh_cot_zeroshot_temporal_sequences": "bbh_temporal_sequences",
    "temporal_sequences": "bbh_temporal_sequences",
    "folio": "folio",
    "musique": "musique",
    "musique_ctx": "musique",
    "musique_closed_book": "musique",
}
_TASK_SUFFIXES = ("_lrm_paper", "_lrm", "_paper")


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
    if not isinstance(name, str):
        raise ValueError(f"task name must be a string, got {type(name).__name__}")
    base = name.strip().lower()
    for suffix in _TASK_SUFFIXES:
        if base.endswith(suffix) and base[: -len(suffix)] in _TASK_ALIASES:
            base = base[: -len(suffix)]
            break
    if base in _TASK_ALIASES:
        return _TASK_ALIASES[base]
    valid = ", ".join(sorted(_TASK_ALIASES))
    raise ValueError(
        f"unknown task {name!r}; valid names: {valid} "
        "(each optionally with an '_lrm' or '_lrm_paper' suffix)"
    )


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
# Gold answers from any schema


def _get(doc: dict, *names: str, case_insensitive: bool = False) -> Any:
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


def _missing(task: str, fields: str, doc: dict) -> ValueError:
    have = ", ".join(sorted(map(str, doc))) or "none"
    return ValueError(f"{task} document has no gold answer: expected {fields}; document fields: {have}")


def _aime_gold(doc: dict) -> str:
    value = _get(doc, "answer", "Answer", case_insensitive=True)
    if value is None or isinstance(value, bool):
        raise _missing("aime24", "'answer' (canonical, release) or 'Answer' (Hub), an integer", doc)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d{1,12}", text):
        raise ValueError(f"aime24 gold answer must be an integer, got {value!r}")
    return str(int(text))


def _bbh_gold(doc: dict) -> tuple[str, dict[str, str]]:
    target = _get(doc, "target")
    if target is None:
        raise _missing("bbh_temporal_sequences", "'target' such as '(A)'", doc)
    m = re.fullmatch(r"\s*\(?\s*([A-Za-z])\s*\)?\s*", str(target))
    if not m:
        raise ValueError(f"bbh target must be an option letter such as '(A)', got {target!r}")
    options = doc.get("options")
    if not isinstance(options, dict) or not options:
        options = parse_options(str(_get(doc, "input", "question") or ""))
    return f"({m.group(1).upper()})", {str(k): str(v) for k, v in options.items()}


_FOLIO_GOLD = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}


def _folio_gold(doc: dict) -> str:
    value = _get(doc, "label")
    if value is None:
        raise _missing("folio", "'label' (True / False / Uncertain, or Unknown)", doc)
    label = _FOLIO_GOLD.get(str(value).strip().lower())
    if label is None:
        raise ValueError(f"folio label must be True, False, Uncertain or Unknown, got {value!r}")
    return label


def _musique_gold(doc: dict) -> tuple[str, list[str]]:
    answer = _get(doc, "answer")
    if answer is None:
        raise _missing("musique", "'answer' (plus optional 'answer_aliases')", doc)
    aliases = doc.get("answer_aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    return str(answer), [str(a) for a in aliases if a is not None]


def gold_answer(task: str, doc: dict) -> str:
    """The gold answer of a document, normalised as ``Score.gold`` carries it.

    >>> gold_answer("aime24", {"Answer": 25}), gold_answer("folio_lrm", {"label": "Unknown"})
    ('25', 'Uncertain')
    """
    task = canonical_task(task)
    if not isinstance(doc, dict):
        raise ValueError(f"{task} document must be a dict, got {type(doc).__name__}")
    if task == "aime24":
        return _aime_gold(doc)
    if task == "bbh_temporal_sequences":
        return _bbh_gold(doc)[0]
    if task == "folio":
        return _folio_gold(doc)
    return _musique_gold(doc)[0]


# ----------------------------------------------------------------------------------
# Scoring


def _aime_equal(answer: str | None, gold: str) -> bool:
    if answer is None or not re.fullmatch(r"[+-]?\d{1,12}", answer):
        return False
    return int(answer) == int(gold)


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
    canonical = canonical_task(task)
    if not isinstance(doc, dict):
        raise ValueError(f"{canonical} document must be a dict, got {type(doc).__name__}")
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    f1_strict: float | None = None
    f1_flexible: float | None = None
    if canonical == "aime24":
        gold = _aime_gold(doc)
        extraction, split = extract(canonical, response, {}, think_end)
        correct_strict = _aime_equal(extraction.strict, gold)
        correct_flexible = _aime_equal(extraction.flexible, gold)
    elif canonical == "bbh_temporal_sequences":
        gold, options = _bbh_gold(doc)
        extraction, split = extract(canonical, response, {"options": options}, think_end)
        correct_strict = extraction.strict == gold
        correct_flexible = extraction.flexible == gold
    elif canonical == "folio":
        gold = _folio_gold(doc)
        conclusion = _get(doc, "conclusion") or ""
        extraction, split = extract(canonical, response, {"conclusion": str(conclusion)}, think_end)
        correct_strict = extraction.strict == gold
        correct_flexible = extraction.flexible == gold
    else:
        gold, aliases = _musique_gold(doc)
        golds = [gold, *aliases]
        question = _get(doc, "question") or ""
        extraction, split = extract(canonical, response, {"question": str(question)}, think_end)
        correct_strict = exact_match(extraction.strict, golds)
        correct_flexible = exact_match(extraction.flexible, golds)
        f1_strict = token_f1(extraction.strict, golds)
        f1_flexible = token_f1(extraction.flexible, golds)
    reasoning, answer_text, closed = split
    return Score(
        task=canonical,
        answer_strict=extraction.strict,
        answer_flexible=extraction.flexible,
        correct_strict=correct_strict,
        correct_flexible=correct_flexible,
        f1_strict=f1_strict,
        f1_flexible=f1_flexible,
        think_closed=closed,
        gold=gold,
        reasoning=reasoning,
        answer_text=answer_text,
    )
