"""Overthinking and failure measures of one response, from its text alone (standard library only).

- ``first_answer``: where the reasoning first committed to the response's final answer
  (the first of the benchmark's committed answers, ``Judge.commitments``, that votes
  with the final answer); ``None`` when it never did before the end. The records give
  it in tokens (``first_answer_tokens``: the reasoning up to that point, tokenized) and
  as the share of the reasoning spent after it (``reasoning_after_first_answer``).
- ``answer_switches``: how many times the committed answer changed along the reasoning
  (consecutive commitments that vote differently); ``None`` when the benchmark cannot
  list commitments.
- ``looping``: the response's tail repeats itself: of its last :data:`LOOP_TAIL_WORDS`
  words, at least :data:`LOOP_COVERAGE` lie inside a run of :data:`LOOP_NGRAM` words
  that occurs at least :data:`LOOP_MIN_COPIES` times in that tail. Words are
  whitespace-separated, so the flag is the same under every tokenizer.

The final answer is the flexible one (the strict answer whenever there is one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# The tail examined for a loop: R1 distills that hit the token limit repeat paragraphs
# of 20-250 words; 750 words (~1k tokens) hold three copies of the longest of those.
LOOP_TAIL_WORDS = 750
# The repeated block is found as word n-grams of this length: long enough that prose
# rarely repeats one by chance (a list of computations changes its numbers), short
# enough that loops with rotating openers ("Wait, no." / "But I'm not sure.") still
# share their core sentence.
LOOP_NGRAM = 8
# An n-gram counts as repeated when it occurs this often in the tail: two copies are a
# restatement (a summary repeating the reasoning), three a loop.
LOOP_MIN_COPIES = 3
# Share of the tail's words that repeated n-grams must cover. On the 583 real outputs
# the responses that hit the token limit cover 0.6-1.0 or under 0.2; none in between.
LOOP_COVERAGE = 0.5
# Texts shorter than this are never called looping: a short answer that restates its
# one-sentence reasoning (61 words, three copies, in the real outputs) is not a loop.
LOOP_MIN_WORDS = 100


@dataclass(frozen=True)
class Overthinking:
    """The measures of one response (``None`` = unknown or not applicable)."""

    first_answer_chars: int | None  # offset in the reasoning
    answer_switches: int | None
    commitments: int | None
    looping: bool
    loop_coverage: float  # share of the tail inside repeated n-grams


def loop_coverage(text: str, *, tail_words: int = LOOP_TAIL_WORDS) -> float:
    """The share of the text's last ``tail_words`` words that lie inside a word
    :data:`LOOP_NGRAM`-gram occurring at least :data:`LOOP_MIN_COPIES` times there
    (0.0 for texts under :data:`LOOP_MIN_WORDS` words).

    >>> round(loop_coverage("Intro. " + "Wait, the answer is 137. Let me check again. " * 30), 2)
    1.0
    >>> loop_coverage(" ".join(f"step {i} gives {i * i}." for i in range(200)))
    0.0
    """
    words = text.split()[-tail_words:]
    n = len(words)
    if n < LOOP_MIN_WORDS:
        return 0.0
    grams = [tuple(words[i : i + LOOP_NGRAM]) for i in range(n - LOOP_NGRAM + 1)]
    counts: dict[tuple[str, ...], int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    covered = [False] * n
    for i, g in enumerate(grams):
        if counts[g] >= LOOP_MIN_COPIES:
            covered[i : i + LOOP_NGRAM] = [True] * LOOP_NGRAM
    return sum(covered) / n


def is_looping(text: str) -> bool:
    """Whether the text's tail repeats itself: repeated n-grams cover at least
    :data:`LOOP_COVERAGE` of it (see :func:`loop_coverage`).

    >>> is_looping("So the answer is 5. " * 40), is_looping("A short answer: 5.")
    (True, False)
    """
    return loop_coverage(text) >= LOOP_COVERAGE


def answer_trace(
    commitments: Sequence[tuple[int, str]], final: str | None, key: Callable[[str], str]
) -> tuple[int | None, int]:
    """``(offset of the first commitment to final, number of switches)``.

    >>> answer_trace([(5, "12"), (40, "25"), (90, "12"), (120, "25")], "25", str)
    (40, 3)
    >>> answer_trace([(5, "12")], None, str)
    (None, 0)
    """
    first = None
    if final is not None:
        target = key(final)
        first = next((pos for pos, answer in commitments if key(answer) == target), None)
    keys = [key(answer) for _, answer in commitments]
    switches = sum(a != b for a, b in zip(keys, keys[1:]))
    return first, switches


def measure(
    reasoning: str,
    response: str,
    final: str | None,
    commitments: Callable[[str], list[tuple[int, str]]] | None,
    key: Callable[[str], str],
) -> Overthinking:
    """The measures of one response: its reasoning (as the scorer split it), the whole
    response (for the loop), its final answer, the benchmark's commitment finder and
    vote key. Never raises on any text."""
    coverage = loop_coverage(response)
    looping = coverage >= LOOP_COVERAGE
    if commitments is None:
        return Overthinking(None, None, None, looping, coverage)
    found = commitments(reasoning)
    first, switches = answer_trace(found, final, key)
    return Overthinking(first, switches, len(found), looping, coverage)


def share_after(first_answer_tokens: int | None, reasoning_tokens: int | None) -> float | None:
    """The share of the reasoning spent after its first commitment to the final answer.

    >>> share_after(250, 1000), share_after(None, 1000)
    (0.75, None)
    """
    if first_answer_tokens is None or not reasoning_tokens:
        return None
    return max(0.0, min(1.0, 1.0 - first_answer_tokens / reasoning_tokens))
