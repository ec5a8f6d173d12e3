"""FOLIO v2: 203 first-order-logic items; is the conclusion True, False or Uncertain?

Rows: yale-nlp/FOLIO (gated; ``premises`` a string) or the v0.0 GitHub release
(``premises`` a list of sentences; label "Unknown" for Uncertain). A response's
answer is the verdict it commits to last; it is correct when it equals the gold label.
"""

from __future__ import annotations

import re
from typing import Any

from lrm_tasks.benchmarks.spec import BenchmarkSpec, DataError, Judge, get_field, missing_gold, need_fields
from lrm_tasks.text import STOP_WORDS, clean_answer, find_boxed, last_sentences, split_sentences, strip_markdown, unwrap_tex

# The three labels, and the release's "Unknown" for Uncertain: rows, gold answers and
# extracted verdicts all read this one map.
FOLIO_LABEL_ALIASES = {"true": "True", "false": "False", "uncertain": "Uncertain", "unknown": "Uncertain"}

# ----------------------------------------------------------------------------------
# Rows


def folio_doc(row: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    """A canonical FOLIO document (premises joined into one text, label canonical)."""
    need_fields(row, ("premises", "conclusion", "label"), where, "premises, conclusion, label (True/False/Uncertain)")
    premises = row["premises"]
    if isinstance(premises, list):  # v0.0 GitHub release: a list of sentences
        premises = "\n".join(str(p).strip() for p in premises)
    label = FOLIO_LABEL_ALIASES.get(str(row["label"]).strip().lower())
    if label is None:
        raise DataError(f"{where}: label {row['label']!r} is not one of True, False, Uncertain (or Unknown).")
    example_id = row.get("example_id")
    return {
        "doc_key": str(example_id) if example_id is not None else f"row-{i}",
        "premises": str(premises),
        "conclusion": str(row["conclusion"]),
        "label": label,
        "story_id": row.get("story_id"),
        "example_id": example_id,
    }


# ----------------------------------------------------------------------------------
# Prompts

FOLIO_DEFAULT = (
    "Premises:\n{premises}\n\n"
    "Conclusion: {conclusion}\n\n"
    "Based only on the premises, is the conclusion True, False, or Uncertain? "
    'Please reason step by step. Finish with "Answer: True", "Answer: False" or "Answer: Uncertain".'
)
FOLIO_PAPER = (
    "Use logical deductions to determine whether the provided conclusion is true, false, or "
    "uncertain based on premise. Consider all relevant information to reach a logical "
    "conclusion.\n\n*******\nPremise: {premises}\n*******\n\n*******\nConclusion: "
    "{conclusion}\n*******<think>\n"
)


def folio_prompt(doc: dict[str, Any]) -> str:
    return FOLIO_DEFAULT.format(premises=doc["premises"], conclusion=doc["conclusion"])


def folio_paper_prompt(doc: dict[str, Any]) -> str:
    return FOLIO_PAPER.format(premises=doc["premises"], conclusion=doc["conclusion"])


# ----------------------------------------------------------------------------------
# Answer extraction

_CANNOT = r"(?:cannot|can ?not|can't|could not|couldn't|unable to|impossible to|not possible to|no way to|isn't possible to|is not possible to)"
_KNOW = (
    r"(?:be\s+)?(?:definitively\s+|conclusively\s+|definitely\s+|certainly\s+|fully\s+|logically\s+|necessarily\s+|directly\s+)?"
    r"(?:determine|determined|conclude|concluded|confirm|confirmed|verify|verified|establish|established|"
    r"prove|proven|proved|deduce|deduced|say|tell|know|known|infer|inferred|decide|decided|assert|asserted|"
    r"ascertain|ascertained|evaluate|evaluated|assess|assessed|judge|judged|affirm|affirmed)"
)
_UNCERTAIN_PATTERNS = [
    r"\buncertain(?:ty)?\b",
    r"\bunknown\b",
    r"\bundetermined\b",
    r"\bundeterminable\b",
    r"\bindeterminate\b",
    r"\bundecided\b",
    r"\bundecidable\b",
    r"\binconclusive\b",
    r"\bunverifiable\b",
    r"\bunprovable\b",
    r"\bnot determinable\b",
    r"\bnot\s+(?:enough|sufficient)\s+(?:information|evidence|info|data)\b",
    r"\b(?:insufficient|inadequate|lack(?:s|ing)?\s+(?:of\s+)?(?:sufficient\s+)?)\s*(?:information|evidence|info|data)\b",
    r"\bno\s+(?:sufficient\s+|enough\s+|definitive\s+|conclusive\s+|direct\s+)?(?:information|evidence)\b",
    r"\b(?:isn't|is not|aren't|are not|wasn't)\s+(?:enough|sufficient)\s+(?:information|evidence)\b",
    r"\bneither\s+(?:definitively\s+)?(?:true|proven|confirmed)\s+nor\s+(?:false|disproven|refuted)\b",
    r"\bnot\s+necessarily\s+(?:true|false)\b",
    r"\bmay\s+or\s+may\s+not\b",
    r"\bcould\s+be\s+(?:either\s+)?true\s+or\s+false\b",
    r"\b(?:either|both)\s+(?:true|possible)\s+or\s+false\b",
    r"\bnot\s+(?:definitively|conclusively|necessarily)\s+(?:supported|established|determined|proven|confirmed)\b",
    _CANNOT + r"\s+(?:\w+\s+){0,3}?" + _KNOW + r"\b",
    r"\b(?:do|does|did)\s+not\s+(?:provide|give|offer|contain)\s+(?:\w+\s+){0,2}?(?:enough|sufficient|definitive|conclusive)\b",
]
_FALSE_PATTERNS = [
    r"\bfalse\b",
    r"\bnot\s+(?:be\s+)?true\b",
    r"\b(?:isn't|is not|wasn't|cannot be|can't be|could not be|couldn't be)\s+true\b",
    r"\buntrue\b",
    r"\bincorrect\b",
    r"\b(?:is|are)\s+(?:refuted|disproven|disproved|contradicted)\b",
]
_TRUE_PATTERNS = [
    r"\btrue\b",
    r"\b(?:is|are)\s+(?:logically\s+)?(?:valid|correct|supported|confirmed|entailed|established|proven)\b",
    r"\b(?:logically\s+)?follows\b",
]
# Every verdict pattern below contains one of these stems: a cheap first filter.
_VERDICT_HINT = re.compile(
    r"(?i)true|false|correct|certain|unknown|determin|decid|conclusive|definitive|verif|prov|information|evidence|"
    r"enough|sufficient|data|info|necessarily|may\s+or|either|both|neither|cannot|can\s?not|can't|could|unable|"
    r"impossible|possible|no\s+way|valid|support|confirm|entail|establish|follows|refut|contradict|lack"
)
_UNCERTAIN_RE = re.compile("|".join(_UNCERTAIN_PATTERNS), re.IGNORECASE)
_FALSE_RE = re.compile("|".join(_FALSE_PATTERNS), re.IGNORECASE)
_TRUE_RE = re.compile("|".join(_TRUE_PATTERNS), re.IGNORECASE)
_MAIN_CLAUSE_CUT = re.compile(
    r"(?i)\s(?:because|since|given\s+that|as\s+(?:the|it|there|he|she|they|we|this)|due\s+to|while|whereas|although|though|but|if|unless|even\s+though)\b|[,;:]\s(?:which|as|because|since|although|though|but|while)\b"
)
_FOLIO_MARKER = re.compile(
    r"(?i)(?:\b(?:final\s+)?(?:answer|determination|verdict|evaluation|result|label|assessment)\b[*_]{0,3}\s{0,3}[:：]"
    r"|\bthe\s+(?:final\s+)?answer\s+is\b|\bconclusion\s+is\b|\bconclusion\b[^.\n]{0,160}?\b(?:is|remains|would\s+be)\s)"
)
_FOLIO_WORD_ONLY = re.compile(r"(?i)^(true|false|uncertain|unknown)$")
_FOLIO_WORD_LINE = re.compile(r"(?i)[*_\s]*(?:true|false|uncertain|unknown)[*_.\s]*")


def _folio_label(word: str) -> str | None:
    return FOLIO_LABEL_ALIASES.get(word.lower())


def classify_verdict(sentence: str) -> str | None:
    """The verdict one sentence states about the conclusion, or ``None``.

    Uncertain phrasings win over "true"/"false" inside them ("cannot be determined as
    true or false"); negations count ("not true" is False); the main clause decides
    ("the conclusion is true because X is false" is True).

    >>> classify_verdict("Therefore, there isn't enough information to confirm the conclusion.")
    'Uncertain'
    >>> classify_verdict("The conclusion is **false** because the premise says it is not true.")
    'False'
    >>> classify_verdict("The conclusion is not necessarily true.")
    'Uncertain'
    >>> classify_verdict("The conclusion holds.") is None
    True
    """
    text = strip_markdown(sentence)
    cut = _MAIN_CLAUSE_CUT.search(text)
    clauses = [text[: cut.start()], text] if cut and cut.start() > 0 else [text]
    for clause in clauses:
        if _UNCERTAIN_RE.search(clause):
            return "Uncertain"
        if _FALSE_RE.search(clause):
            return "False"
        if _TRUE_RE.search(clause):
            return "True"
    return None


_NEGATIONS = frozenset("not no never neither nor cannot cant isnt doesnt dont wont wasnt arent nothing none".split())
_RESTATEMENT_FILLER = frozenset(
    "must therefore thus hence so based given premises premise conclusion answer final indeed "
    "logically necessarily definitely certainly clearly statement true".split()
)
# A restatement may add this many words to the conclusion ("Based on the premises, ...").
_RESTATEMENT_SLACK = 8


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", strip_markdown(text).lower().replace("'", "").replace("’", ""))


def restates_conclusion(sentence: str, conclusion: str) -> bool:
    """Whether ``sentence`` asserts the conclusion itself (a verdict of True without the word).

    >>> restates_conclusion("**Final Answer:** Tom is an Ocellated wild turkey.", "Tom is an Ocellated wild turkey.")
    True
    >>> restates_conclusion("Tom is not an Ocellated wild turkey.", "Tom is an Ocellated wild turkey.")
    False
    """
    target = [w for w in _words(conclusion) if w not in STOP_WORDS]
    if not target:
        return False
    said = _words(sentence)
    content = [w for w in said if w not in STOP_WORDS and w not in _RESTATEMENT_FILLER]
    if any(w in _NEGATIONS and w not in target for w in said):
        return False
    if len(content) > len(target) + _RESTATEMENT_SLACK:
        return False
    return set(target) <= set(said)


def folio_answer(text: str, *, in_reasoning: bool = False, conclusion: str = "") -> str | None:
    """The final committed FOLIO verdict in ``text``: "True", "False", "Uncertain" or ``None``.

    ``\\boxed{}`` and marked sentences ("**Answer:** ...", "the conclusion is ...")
    win, last one first; otherwise the last sentence that states a verdict (in an
    answer text only; in reasoning only marked verdicts count). A text with no verdict
    word whose final sentences restate ``conclusion`` ("Tom is an Ocellated wild
    turkey.") asserts it: "True".

    >>> folio_answer("The conclusion is true.\\n\\n**Answer:** Uncertain")
    'Uncertain'
    >>> folio_answer("Without knowing her status, we cannot conclude that she performs.")
    'Uncertain'
    >>> folio_answer(r"\\boxed{\\text{False}}")
    'False'
    """
    boxes = []
    for box in find_boxed(text):
        label = _folio_label(clean_answer(unwrap_tex(box.content))) or classify_verdict(
            unwrap_tex(box.content)
        )
        if label:
            boxes.append((box.start, label))
    last_box = boxes[-1] if boxes else None
    unmarked_last: str | None = None
    sentences: list[tuple[int, str]] = []
    offset = 0
    for sentence in split_sentences(text):
        pos = text.find(sentence, offset)
        pos = pos if pos >= 0 else offset
        offset = pos + len(sentence)
        sentences.append((pos, sentence))
    # From the end: the first marked verdict is the final commitment (unless a later box).
    for pos, sentence in reversed(sentences):
        if last_box and pos < last_box[0]:
            return last_box[1]
        if not _VERDICT_HINT.search(sentence):
            continue
        plain = strip_markdown(sentence)
        bare = plain.strip(" .!:")
        label = _folio_label(bare) if _FOLIO_WORD_ONLY.match(bare) else None
        if label is None:
            label = classify_verdict(sentence)
        if label is None:
            continue
        if _FOLIO_MARKER.search(plain) or _FOLIO_WORD_LINE.fullmatch(sentence):
            return label
        if unmarked_last is None:
            unmarked_last = label
    if last_box:
        return last_box[1]
    if unmarked_last is not None and not in_reasoning:
        return unmarked_last
    # No verdict word: a final sentence that restates the conclusion asserts it.
    if conclusion and unmarked_last is None:
        for sentence in last_sentences(text, 3):
            if restates_conclusion(sentence, conclusion):
                return "True"
    return None


def folio_commitments(text: str) -> list[tuple[int, str]]:
    """Every verdict a reasoning commits to, in order: boxes and marked sentences ("the
    conclusion is false", "**Answer:** True"), as ``(offset, label)`` (the evidence
    :func:`folio_answer` reads in reasoning).

    >>> folio_commitments("So the conclusion is true. Hmm, no. The conclusion is uncertain.")
    [(0, 'True'), (36, 'Uncertain')]
    """
    found = []
    for box in find_boxed(text):
        label = _folio_label(clean_answer(unwrap_tex(box.content))) or classify_verdict(unwrap_tex(box.content))
        if label:
            found.append((box.start, label))
    offset = 0
    for sentence in split_sentences(text):
        pos = text.find(sentence, offset)
        pos = pos if pos >= 0 else offset
        offset = pos + len(sentence)
        if not _VERDICT_HINT.search(sentence):
            continue
        plain = strip_markdown(sentence)
        if not (_FOLIO_MARKER.search(plain) or _FOLIO_WORD_LINE.fullmatch(sentence)):
            continue
        bare = plain.strip(" .!:")
        label = _folio_label(bare) if _FOLIO_WORD_ONLY.match(bare) else classify_verdict(sentence)
        if label:
            found.append((pos, label))
    return sorted(found)


# ----------------------------------------------------------------------------------
# Gold and verification


def folio_gold(doc: dict[str, Any]) -> str:
    """The gold label: True, False or Uncertain ("Unknown" read as Uncertain)."""
    value = get_field(doc, "label")
    if value is None:
        raise missing_gold("folio", "'label' (True / False / Uncertain, or Unknown)", doc)
    label = FOLIO_LABEL_ALIASES.get(str(value).strip().lower())
    if label is None:
        raise ValueError(f"folio label must be True, False, Uncertain or Unknown, got {value!r}")
    return label


def folio_judge(doc: dict[str, Any]) -> Judge:
    gold = folio_gold(doc)
    conclusion = str(get_field(doc, "conclusion") or "")
    return Judge(
        gold=gold,
        find=lambda text, in_reasoning: folio_answer(text, in_reasoning=in_reasoning, conclusion=conclusion),
        correct=lambda answer: answer == gold,
        commitments=folio_commitments,
    )


FOLIO = BenchmarkSpec(
    name="folio",
    title="FOLIO",
    to_doc=folio_doc,
    judge=folio_judge,
    prompts={"prompt": folio_prompt, "paper_prompt": folio_paper_prompt},
    hub_path="yale-nlp/FOLIO",
    hub_split="validation",
    local_files=("folio.jsonl",),
    hub_note=(
        "yale-nlp/FOLIO is gated: accept its terms on the Hub page and run "
        "`huggingface-cli login` (or set HF_TOKEN)."
    ),
)
