"""AIME 2024: 30 competition problems with integer answers 0-999.

Rows: Maxwell-Jia/AIME_2024 (``ID``/``Problem``/``Answer``) or the original release
(lowercase keys). A response's answer is its last ``\\boxed{}`` (or "the answer is N"
phrase), normalised to an integer; it is correct when it equals the gold integer.
"""

from __future__ import annotations

import re
from typing import Any

from lrm_tasks.benchmarks.spec import (
    BenchmarkSpec,
    DataError,
    Judge,
    get_field,
    lower_keys,
    missing_gold,
    need_fields,
)
from lrm_tasks.text import final_conclusion, find_boxed, unwrap_tex

# ----------------------------------------------------------------------------------
# Rows


def aime_doc(row: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    """A canonical AIME document from a Hub or release row."""
    r = lower_keys(row)
    need_fields(r, ("id", "problem", "answer"), where, "ID/id, Problem/problem, Answer/answer")
    answer = str(r["answer"]).strip()
    if not re.fullmatch(r"\d{1,3}", answer.lstrip("0") or "0"):
        raise DataError(f"{where}: answer {r['answer']!r} is not an AIME integer 0-999.")
    return {
        "doc_key": str(r["id"]),
        "problem": str(r["problem"]),
        "answer": str(int(answer)),
        "solution": str(r.get("solution") or ""),
    }


# ----------------------------------------------------------------------------------
# Prompts (see lrm_tasks.benchmarks for where they come from)

AIME_DEFAULT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
AIME_PAPER = "{problem}\n<think>\n"


def aime24_prompt(doc: dict[str, Any]) -> str:
    return AIME_DEFAULT.format(problem=doc["problem"])


def aime24_paper_prompt(doc: dict[str, Any]) -> str:
    return AIME_PAPER.format(problem=doc["problem"])


# ----------------------------------------------------------------------------------
# Answer extraction

_INT = re.compile(r"[+-]?\d{1,12}(?:\.0{1,6})?")
_INT_WITH_COMMAS = re.compile(r"[+-]?\d{1,3}(?:,\d{3}){1,3}")

# "the answer is 25", "**Answer:** 25", "Final Answer: $25$", "answer would be 025".
_AIME_PHRASE = re.compile(
    r"(?i:\banswer)[*_]{0,3}"
    r"(?:\s{0,3}(?:is|would\s+be|should\s+be|must\s+be|=|:)){1,2}"
    r"[\s*_:$\\(\[]{0,12}"
    r"(\d{1,6}(?:\.\d{1,6})?)(?![\d/^_]|\.\d|\s{0,2}[+\-*/^×÷]\s{0,2}\d|[a-zA-Z])"
    r"(?!\s{0,3}\?)"
)


def normalize_aime_answer(content: str) -> str | None:
    """Normalise an AIME answer to an integer string where possible.

    Leading zeros go ("025" -> "25"), TeX wrappers and ``x =`` prefixes go; a
    non-integer answer is kept as cleaned text; an empty one is ``None``.

    >>> normalize_aime_answer(r"\\text{025}")
    '25'
    >>> normalize_aime_answer("m + n = 116")
    '116'
    >>> normalize_aime_answer(r"\\frac{8}{17}")
    '\\\\frac{8}{17}'
    >>> normalize_aime_answer("  ") is None
    True
    """
    text = unwrap_tex(content)
    text = text.replace("\\!", "").replace("\\,", "").replace("{,}", ",")
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = text.strip().rstrip(".").strip()
    while len(text) >= 2 and text[0] == "{" and text[-1] == "}" and "}" not in text[1:-1]:
        text = text[1:-1].strip()  # "{25}" -> "25"
    text = re.sub(r"\^\s{0,2}\{?\\circ\}?$", "", text).strip()
    if not text:
        return None
    if _INT.fullmatch(text):
        return str(int(float(text)))
    if _INT_WITH_COMMAS.fullmatch(text):
        return str(int(text.replace(",", "")))
    return " ".join(text.split())


def _aime_candidates(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    boxes = []
    for box in find_boxed(text):
        value = normalize_aime_answer(box.content)
        if value is not None:
            boxes.append((box.start, value))
    phrases = [(m.start(), normalize_aime_answer(m.group(1)) or "") for m in _AIME_PHRASE.finditer(text)]
    return boxes, [p for p in phrases if p[1]]


def aime_answer(text: str, *, in_reasoning: bool = False) -> str | None:
    """The final committed AIME answer in ``text``, or ``None``.

    In an answer text the last ``\\boxed{}`` wins over "the answer is" phrases; in
    reasoning (``in_reasoning``) the last commitment of either kind wins.

    >>> aime_answer(r"So \\boxed{12}? No. Thus \\boxed{025}.")
    '25'
    >>> aime_answer("**Answer:** 204")
    '204'
    >>> aime_answer("Maybe 5 or 6, hard to say.") is None
    True
    """
    boxes, phrases = _aime_candidates(text)
    if in_reasoning:
        merged = sorted(boxes + phrases)
        return merged[-1][1] if merged else None
    if boxes:
        return boxes[-1][1]
    return phrases[-1][1] if phrases else None


def aime_commitments(text: str) -> list[tuple[int, str]]:
    """Every answer ``text`` commits to, in order: ``\\boxed{}`` and "the answer is N"
    phrases, as ``(offset, answer)`` (what :func:`aime_answer` reads in reasoning).

    >>> aime_commitments(r"So \\boxed{12}. Hmm, no: the answer is 25.")
    [(3, '12'), (28, '25')]
    """
    boxes, phrases = _aime_candidates(text)
    return sorted(boxes + phrases)


# A concluded value that is one number, possibly with units after it ("42 square
# units", "$116$."), and not the start of an expression ("42 + h").
_CONCLUDED_NUMBER = re.compile(
    r"[\s$\\(\[{]{0,6}([+-]?\d{1,6}(?:\.\d{1,6})?)(?![\d/^_]|\.\d|\s{0,2}[+\-*/^×÷=<>]|\s{0,2}\\(?:cdot|times|frac|sqrt))"
)


def aime_conclusion(text: str, problem: str) -> tuple[int, str] | None:
    """The number the reasoning's last conclusion gives for what the problem asks, when
    only an unfinished check follows it (:func:`lrm_tasks.text.final_conclusion`).

    >>> aime_conclusion("So the area is 42 square units. But let me verify the base once more", "Find the area.")
    (0, '42')
    """
    found = final_conclusion(text, problem)
    if found is None:
        return None
    m = _CONCLUDED_NUMBER.match(found.value)
    if not m:
        return None
    value = normalize_aime_answer(m.group(1))
    return (found.start, value) if value is not None else None


# ----------------------------------------------------------------------------------
# Gold and verification


def aime_gold(doc: dict[str, Any]) -> str:
    """The gold integer of a document, as a string without leading zeros."""
    value = get_field(doc, "answer", "Answer", case_insensitive=True)
    if value is None or isinstance(value, bool):
        raise missing_gold("aime24", "'answer' (canonical, release) or 'Answer' (Hub), an integer", doc)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d{1,12}", text):
        raise ValueError(f"aime24 gold answer must be an integer, got {value!r}")
    return str(int(text))


def aime_equal(answer: str | None, gold: str) -> bool:
    """Integer equality ("025" equals "25"); a non-integer answer is wrong."""
    if answer is None or not re.fullmatch(r"[+-]?\d{1,12}", answer):
        return False
    return int(answer) == int(gold)


def aime_judge(doc: dict[str, Any]) -> Judge:
    gold = aime_gold(doc)
    problem = str(get_field(doc, "problem", "Problem", case_insensitive=True) or "")
    return Judge(
        gold=gold,
        find=lambda text, in_reasoning: aime_answer(text, in_reasoning=in_reasoning),
        correct=lambda answer: aime_equal(answer, gold),
        commitments=aime_commitments,
        conclude=lambda text: aime_conclusion(text, problem),
    )


AIME24 = BenchmarkSpec(
    name="aime24",
    title="AIME24",
    aliases=("aime_2024", "aime2024"),
    to_doc=aime_doc,
    judge=aime_judge,
    prompts={"prompt": aime24_prompt, "paper_prompt": aime24_paper_prompt},
    hub_path="Maxwell-Jia/AIME_2024",
    hub_split="train",
    local_files=("aime24.jsonl",),
)
