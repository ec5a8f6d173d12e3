"""Answer-string metrics: the official MuSiQue / SQuAD normalisation, exact match, token F1.

The normalisation and F1 follow the official MuSiQue evaluation
(StonyBrookNLP/musique ``metrics/answer.py``), itself the SQuAD v1.1 script
(``evaluate-v1.1.py``): lowercase, drop punctuation, drop the articles a/an/the,
collapse whitespace. Both metrics take the best score over the gold answer and its
aliases. Nothing here does substring matching: MuSiQue alias lists hold aliases
such as "in" (India), which a substring test would find in almost any answer.
Standard library only.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

__all__ = ["normalize_answer", "exact_match", "token_f1", "mean_of_known"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Normalise an answer the SQuAD / MuSiQue way.

    Lowercase, remove ASCII punctuation, remove the articles "a", "an", "the",
    and collapse runs of whitespace to one space.

    >>> normalize_answer("The  Beatles!")
    'beatles'
    >>> normalize_answer("Sea, Air, and Land")
    'sea air and land'
    >>> normalize_answer("  ")
    ''
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(golds: str | Iterable[str]) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    return [g for g in golds if isinstance(g, str)]


def exact_match(prediction: str | None, golds: str | Iterable[str]) -> bool:
    """Whether the normalised prediction equals a normalised gold answer or alias.

    ``None`` (no answer) never matches.

    >>> exact_match("the Apple Corps.", ["Apple Corps"])
    True
    >>> exact_match("India", ["the country of India", "in"])
    False
    >>> exact_match(None, "x")
    False
    """
    if prediction is None:
        return False
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(gold) for gold in _golds(golds))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    # SQuAD: when either side normalises to nothing, F1 is 1 only if both do.
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str | None, golds: str | Iterable[str]) -> float:
    """Best token-level F1 between the prediction and the gold answer or its aliases.

    ``None`` (no answer) scores 0.0.

    >>> token_f1("Colin Firth", ["Colin Firth"])
    1.0
    >>> round(token_f1("the 3rd generation", "third generation"), 2)
    0.5
    >>> token_f1(None, "x")
    0.0
    """
    if prediction is None:
        return 0.0
    pred_tokens = normalize_answer(prediction).split()
    scores = [_f1(pred_tokens, normalize_answer(g).split()) for g in _golds(golds)]
    return max(scores, default=0.0)


def mean_of_known(values: Iterable[float | int | bool | None]) -> float | None:
    """Mean of the values that are known; ``None`` when none is (unknown is not 0).

    >>> mean_of_known([1, None, 2]), mean_of_known([None])
    (1.5, None)
    """
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None
