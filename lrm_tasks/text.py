"""Text shared by every benchmark: the reasoning split, markdown/TeX cleaning, boxed
answers, sentences, hedges, the strict/flexible rule, and the backend's response string.

A response of a reasoning model is a long reasoning followed by the end-of-thinking
delimiter (``</think>``) and a short answer. Prompts usually end with ``<think>\\n``,
so responses rarely carry the opening tag; it is tolerated when present.

- **strict**: only the answer text after the *last* ``</think>``. A response that never
  closes its reasoning (truncated, looping) has no answer: ``None``.
- **flexible**: the last answer committed anywhere: the answer text first, falling back
  into the reasoning when the answer text commits to nothing (or when the reasoning
  never closed).

"No answer" is always ``None``, never a guess. Every function here (and every
benchmark's answer finder in :mod:`lrm_tasks.benchmarks`) is total over strings: no
response makes it raise, and every regex is linear-time (bounded repetitions, no nested
quantifiers), so a megabyte of repeated text, an unclosed ``\\boxed{`` or lone
surrogates return quickly. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

THINK_END = "</think>"

# A \boxed{...} body longer than this is not an answer; bounding the brace scan keeps
# thousands of unclosed "\boxed{" linear-time instead of quadratic.
MAX_BOXED_CHARS = 400
# A reasoning shorter than this that never closed is usually the model skipping the
# </think> tag and writing its answer directly; longer ones are truncated deliberation.
SHORT_UNCLOSED_CHARS = 1500
# Extraction reads at most this many characters from the end of the reasoning and of
# the answer text: the longest real responses are ~200k characters, and the bound keeps
# adversarial megabytes fast. Commitments earlier than this are not looked for.
MAX_SCAN_CHARS = 250_000


@dataclass(frozen=True)
class Extraction:
    """The strict and flexible answers of one response (``None`` = no answer)."""

    strict: str | None
    flexible: str | None


# ----------------------------------------------------------------------------------
# The reasoning split

# The reasoning split


def _think_start(think_end: str) -> str:
    """The opening tag that matches a closing delimiter ("</think>" -> "<think>")."""
    if think_end.startswith("</"):
        return "<" + think_end[2:]
    return ""


def split_reasoning(response: str, think_end: str = THINK_END) -> tuple[str, str, bool]:
    """Split a response into ``(reasoning, answer_text, think_closed)``.

    The answer text is whatever follows the *last* ``think_end``; a response without
    one is all reasoning (``think_closed`` False, answer text empty). A leading opening
    tag (``<think>``) is dropped from the reasoning, and a ``<think>`` re-opened after
    the last ``think_end`` ends the answer text (what follows is reasoning that never
    closed). The response itself is never altered.

    >>> split_reasoning("Let me see... 5+5=10.</think>\\n\\nThe answer is 10.")
    ('Let me see... 5+5=10.', '\\n\\nThe answer is 10.', True)
    >>> split_reasoning("<think>a</think>b</think>c")
    ('a</think>b', 'c', True)
    >>> split_reasoning("Hmm, still thinking")
    ('Hmm, still thinking', '', False)
    """
    if not isinstance(response, str):
        response = "" if response is None else str(response)
    if not think_end:
        raise ValueError("think_end must be a non-empty delimiter such as '</think>'")
    start_tag = _think_start(think_end)
    idx = response.rfind(think_end)
    if idx < 0:
        reasoning, answer, closed = response, "", False
    else:
        reasoning = response[:idx]
        answer = response[idx + len(think_end) :]
        closed = True
        if start_tag:
            reopened = answer.find(start_tag)
            if reopened >= 0:
                answer = answer[:reopened]
    if start_tag:
        stripped = reasoning.lstrip()
        if stripped.startswith(start_tag):
            reasoning = stripped[len(start_tag) :]
    return reasoning, answer, closed

# ----------------------------------------------------------------------------------
# Shared text helpers


_MD_EMPHASIS = re.compile(r"\*{1,3}|_{2,3}|`{1,3}")
_MD_HEADING = re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+")
_MD_BULLET = re.compile(r"(?m)^[ \t]{0,8}(?:[-+>]|\d{1,3}[.)])[ \t]+")
_TEX_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|operatorname|mbox|emph)\s{0,3}\{([^{}]{0,200})\}"
)
_TEX_MATH_DELIMS = re.compile(r"\\[()\[\]]|\$")


def strip_markdown(text: str) -> str:
    """Remove markdown emphasis, headings, bullets and TeX text wrappers; keep the words.

    >>> strip_markdown("**Answer:** *Colin Firth*")
    'Answer: Colin Firth'
    >>> strip_markdown("### Final\\n- \\\\text{Sayyid Ali}")
    'Final\\nSayyid Ali'
    """
    text = _TEX_WRAPPER.sub(r"\1", text)
    text = _MD_HEADING.sub("", text)
    text = _MD_BULLET.sub("", text)
    text = _MD_EMPHASIS.sub("", text)
    return text.strip()


def clean_answer(text: str) -> str:
    """Strip markdown, TeX math delimiters, quotes and closing punctuation from an answer.

    >>> clean_answer(' **"Apple Corps".** ')
    'Apple Corps'
    """
    text = strip_markdown(text)
    text = _TEX_MATH_DELIMS.sub("", text)
    text = " ".join(text.split())
    return text.strip(" \t.,;:!\"'“”‘’")


_BOXED = re.compile(r"\\(?:boxed|fbox)")
_BRACE = re.compile(r"[{}]")
_BARE_TOKEN = re.compile(r"[^\s$\\{}]{1,40}")


@dataclass(frozen=True)
class Boxed:
    start: int
    end: int
    content: str


def find_boxed(text: str) -> list[Boxed]:
    """All ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed 25`` bodies, nested braces kept.

    An unbalanced box (no closing brace within ``MAX_BOXED_CHARS``) is skipped.

    >>> [b.content for b in find_boxed(r"x \\boxed{\\frac{1}{2}} y \\boxed 25 z \\boxed{")]
    ['\\\\frac{1}{2}', '25']
    """
    found: list[Boxed] = []
    boxes = list(_BOXED.finditer(text))
    if not boxes:
        return found
    # One linear pass pairs every brace; a box body is then one lookup, so thousands
    # of unclosed "\boxed{" stay linear.
    closing: dict[int, int] = {}
    stack: list[int] = []
    for brace in _BRACE.finditer(text, boxes[0].end()):
        if brace.group(0) == "{":
            stack.append(brace.start())
        elif stack:
            closing[stack.pop()] = brace.start()
    n = len(text)
    for match in boxes:
        i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == "{":
            j = closing.get(i)
            if j is not None and j - i <= MAX_BOXED_CHARS:
                found.append(Boxed(match.start(), j + 1, text[i + 1 : j]))
        elif i > match.end():  # "\boxed 25": a bare token after whitespace
            m = _BARE_TOKEN.match(text, i)
            if m:
                found.append(Boxed(match.start(), m.end(), m.group(0)))
    return found


def unwrap_tex(content: str) -> str:
    """Remove TeX text wrappers (repeatedly, for nesting) and math delimiters.

    >>> unwrap_tex(r"\\text{\\textbf{25}}")
    '25'
    """
    for _ in range(4):
        new = _TEX_WRAPPER.sub(r"\1", content)
        if new == content:
            break
        content = new
    return _TEX_MATH_DELIMS.sub("", content).strip()


# Every alternative starts with a required character (no leading "[ \t]*" that could be
# retried at each of a million spaces).
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]*]{0,3}[ \t]+|\n[ \t\n]*")
# "U.S.", "John F. Kennedy", "J. P. Hayes", "Dr. No": a period that ends no sentence.
_ABBREVIATION = re.compile(
    r"(?:\b[A-Za-z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Inc|Co|Ltd|No|Mt|Ft|Gen|Col|Lt|Sgt|Rev|Prof|approx|e\.g|i\.e))\.$"
)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences / lines (rough, linear-time); abbreviations do not split.

    >>> split_sentences("It is 5. So yes!\\nDone")
    ['It is 5.', 'So yes!', 'Done']
    >>> split_sentences("John F. Kennedy was in the U.S. in 1961. Then")
    ['John F. Kennedy was in the U.S. in 1961.', 'Then']
    """
    out: list[str] = []
    pos = 0
    glue = False
    for m in _SENTENCE_END.finditer(text):
        piece = text[pos : m.start()]
        pos = m.end()
        if glue and out:
            out[-1] = f"{out[-1]} {piece}"
        elif piece.strip():
            out.append(piece)
        glue = "\n" not in m.group(0) and bool(_ABBREVIATION.search(piece))
    tail = text[pos:]
    if glue and out:
        out[-1] = f"{out[-1]} {tail}"
    elif tail.strip():
        out.append(tail)
    return [p.strip() for p in out if p.strip()]


def last_sentences(text: str, count: int) -> list[str]:
    return split_sentences(text[-(count * 400) :])[-count:] if text else []


# ----------------------------------------------------------------------------------
# Hedges, stop words, the no-answer sentinel

# Words that make a statement tentative when they open its clause ("perhaps the answer is").
TENTATIVE = re.compile(
    r"(?i)\b(?:perhaps|maybe|might|possibly|probably|if|whether|suppose|supposing|assum\w*|unless|or\s+is|either)\b"
)
_CLAUSE_START = re.compile(r"[.!?\n;,:]")
# How far back a clause is searched for tentative words.
_CLAUSE_LOOKBACK = 60


def is_tentative(text: str, pos: int) -> bool:
    """Whether the clause that ends at ``pos`` opens with a hedge ("perhaps the answer is")."""
    before = text[max(0, pos - _CLAUSE_LOOKBACK) : pos]
    cuts = list(_CLAUSE_START.finditer(before))
    clause = before[cuts[-1].end() :] if cuts else before
    return bool(TENTATIVE.search(clause))


STOP_WORDS = frozenset(
    "a an the of in on at to for by with from and or is was are were be been who whom whose what which when "
    "where why how that this these those did does do it its as".split()
)

NO_ANSWER = "\x00no-answer"
"""Sentinel a finder returns when the text commits to having no answer (a refusal):
the flexible answer then does not fall back into the reasoning."""


# ----------------------------------------------------------------------------------
# The last conclusion before an unfinished check

# A sentence that draws a conclusion: "So the area is 42 square units.", "Therefore,
# it must be a warm ionized gas."
_CONCLUSION = re.compile(
    r"(?i)^[*_\s]{0,4}(?:so|thus|therefore|hence|that\s+means|this\s+means|which\s+means)\b[,:\s]{1,4}"
)
# Its claim: SUBJECT is/must be/= VALUE (the subject bounded, so the scan stays linear).
_CLAIM = re.compile(
    r"(?i)^(?P<subject>[^.!?\n]{0,120}?)\s{0,2}(?:\b(?:is|are|was|must\s+be|should\s+be|would\s+be|equals)\b|=)\s{0,3}"
    r"(?P<value>[^\n]{1,300})$"
)
# A sentence that opens a check of what was just concluded ("But let me verify the base
# once more...", "Wait, let me double-check.").
_CHECK = re.compile(
    r"(?i)^[*_\s]{0,4}(?:(?:but|wait|hmm+|okay|ok|now|actually|just|though|still|however)[,.!\s]{1,4}){0,2}"
    r"(?:let\s+me|let's|let\s+us|i\s+should|i'll|i\s+will|i\s+want\s+to|i\s+need\s+to|to\s+be\s+(?:sure|safe)|just\s+to)\b"
    r"[^.!?\n]{0,40}?\b(?:verify|double[- ]?check|check|confirm|make\s+sure|re-?check|re-?verify|re-?examine)"
)
# Subjects that name the answer itself rather than a quantity ("so it must be ...").
_ANSWER_SUBJECT = re.compile(
    r"(?i)^(?:it|this|that|the\s+(?:final\s+|correct\s+|right\s+)?(?:answer|option|choice|result))$"
)
# How much of a reasoning's end is searched for its last conclusion.
_CONCLUSION_SCAN_CHARS = 4000


@dataclass(frozen=True)
class Conclusion:
    """A concluding sentence: where it starts, what it is about, what it says that is."""

    start: int
    subject: str
    value: str


def _names_the_ask(subject: str, question: str) -> bool:
    """Whether a conclusion's subject is what the question asks for: a pronoun or "the
    answer", or a subject that shares a content word with the question's last sentence
    ("the area" for "Find the area of ..."; not "the sum of the first ten odd numbers")."""
    subject = clean_answer(subject)
    if _ANSWER_SUBJECT.match(subject):
        return True
    asked = split_sentences(question[-1000:])
    return bool(_ask_words(subject) & _ask_words(asked[-1] if asked else ""))


def _ask_words(text: str) -> set[str]:
    """Lowercase content words, plural -s dropped; capitalised words (names) left out:
    the people and things of a question recur in its intermediate steps ("So Karen is
    at the gym from 8pm to 9pm") while what it asks for ("times", "area") is a common noun.

    >>> sorted(_ask_words("Between what times could Karen have gone?"))
    ['could', 'gone', 'have', 'time']
    """
    out = set()
    for w in re.findall(r"[A-Za-z][A-Za-z0-9+]*|[0-9+]+", text):
        if w[0].isupper() and not w.isupper() and w.lower() not in STOP_WORDS:
            continue  # a name ("Karen"); a sentence-initial common word is lost too, harmlessly
        w = w.lower()
        if w in STOP_WORDS:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def final_conclusion(text: str, question: str) -> Conclusion | None:
    """The reasoning's last conclusion about what the question asks, when nothing but a
    check of it follows: "So the area is 42 square units. But let me verify the base
    once more..." gives ``Conclusion(start, "the area", "42 square units")``.

    A conclusion opens with so/thus/therefore/hence, states "SUBJECT is VALUE" without a
    hedge, and its subject names what the question asks (see :func:`_names_the_ask`):
    an intermediate result ("So the sum of the first ten odd numbers is 100") is about
    something else. It counts only when it is the text's last complete sentence, or the
    next sentence opens a check ("But let me verify ..."); any other sentence after it
    means the reasoning moved on. Benchmarks read the value as their answer
    (``Judge.conclude``).

    >>> q = "Find the area of the triangle."
    >>> final_conclusion("Base 7, height 12. So the area is 42 square units. But let me verify the base once more. The base", q)
    Conclusion(start=19, subject='the area', value='42 square units.')
    >>> final_conclusion("So the sum of the first ten odd numbers is 100. But let me check that", q) is None
    True
    >>> final_conclusion("So the area is 42. Now the height of the other triangle is", q) is None
    True
    """
    offset = max(0, len(text) - _CONCLUSION_SCAN_CHARS)
    tail = text[offset:]
    sentences = split_sentences(tail)
    if not sentences:
        return None
    # A final fragment without closing punctuation is unfinished: it can be the start of
    # a check, never a conclusion.
    complete = bool(re.search(r"[.!?\"'”’)*]\s*$", tail))
    for i in range(len(sentences) - 1, -1, -1):
        sentence = sentences[i]
        if i == len(sentences) - 1 and not complete:
            continue
        opening = _CONCLUSION.match(sentence)
        if not opening:
            continue
        claim = _CLAIM.match(sentence[opening.end() :])
        if not claim or is_tentative(sentence, len(sentence)) or TENTATIVE.search(sentence):
            return None
        if not _names_the_ask(claim.group("subject"), question):
            continue  # an intermediate result; an earlier conclusion may still be the answer
        following = sentences[i + 1] if i + 1 < len(sentences) else None
        if following is not None and not _CHECK.match(following):
            return None
        start = tail.find(sentence)
        return Conclusion(offset + max(start, 0), clean_answer(claim.group("subject")), claim.group("value").strip())
    return None


# ----------------------------------------------------------------------------------
# Strict and flexible


def _from_reasoning(find, conclude, reasoning: str, in_reasoning: bool) -> str | None:
    """The answer a reasoning commits to: its last conclusion before an unfinished check
    when the benchmark reads one (``conclude``) and nothing its finder recognises comes
    after it; else the finder's last commitment."""
    if conclude is not None:
        hit = conclude(reasoning)
        if hit is not None and find(reasoning[hit[0] :], True) is None:
            return hit[1]
    return find(reasoning, in_reasoning)


def two_modes(find, reasoning: str, answer_text: str, closed: bool, conclude=None) -> Extraction:
    def clean(value: str | None) -> str | None:
        return None if value == NO_ANSWER else value

    short = len(reasoning) <= SHORT_UNCLOSED_CHARS
    reasoning = reasoning[-MAX_SCAN_CHARS:]
    answer_text = answer_text[-MAX_SCAN_CHARS:]

    strict = find(answer_text, False) if closed else None
    if strict == NO_ANSWER:
        # The answer text commits to having no answer: nothing to fall back to.
        return Extraction(None, None)
    if strict is not None:
        return Extraction(strict, strict)
    if closed:
        # The answer text committed to nothing: fall back into the reasoning.
        return Extraction(None, clean(_from_reasoning(find, conclude, reasoning, True)))
    # Never closed: a short reasoning is usually the answer written without the tag.
    return Extraction(None, clean(_from_reasoning(find, conclude, reasoning, not short)))


def extract_answers(
    find: Callable[[str, bool], str | None],
    response: str,
    think_end: str = THINK_END,
    conclude: Callable[[str], tuple[int, str] | None] | None = None,
) -> tuple[Extraction, tuple[str, str, bool]]:
    """Split ``response`` and extract its strict and flexible answers with ``find``.

    ``find(text, in_reasoning)`` is a benchmark's answer finder bound to one document;
    it returns an answer, ``None`` (nothing committed) or :data:`NO_ANSWER` (a refusal).
    ``conclude`` (optional) reads a reasoning's last conclusion before an unfinished
    check as an answer (``Judge.conclude``). Returns the extraction and the
    :func:`split_reasoning` triple.

    >>> extract_answers(lambda text, in_reasoning: text.strip() or None, "hmm</think> 42")
    (Extraction(strict='42', flexible='42'), ('hmm', ' 42', True))
    """
    split = split_reasoning(response, think_end)
    return two_modes(find, *split, conclude=conclude), split


# ----------------------------------------------------------------------------------
# The backend's response string


class Generation(str):
    """A generated response, still a plain ``str`` for lm-eval, plus backend facts.

    ``error`` is set (and the text is empty) when the backend failed on this request:
    the response is scored as no answer, its token counts are unknown, and its record
    carries the error (see ``lrm_backends.run.cache``).

    lm-eval carries backend outputs untouched from the model to the filters and
    ``process_results``, so a ``str`` subclass is how exact token counts and finish
    reasons reach our scoring without touching the harness.

    >>> g = Generation("42</think>The answer is 42.", generated_tokens=9, finish_reason="stop")
    >>> g.upper().startswith("42"), g.generated_tokens, g.finish_reason, g.count_source
    (True, 9, 'stop', 'backend')
    >>> Generation("x").generated_tokens is None
    True
    """

    generated_tokens: int | None
    finish_reason: str | None
    count_source: str | None
    error: str | None
    max_gen_toks: int | None  # the budget the backend really gave it, when it lowered it

    def __new__(
        cls,
        text: str,
        *,
        generated_tokens: int | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        max_gen_toks: int | None = None,
    ) -> Generation:
        obj = super().__new__(cls, text)
        obj.generated_tokens = generated_tokens
        obj.finish_reason = finish_reason
        obj.count_source = "backend" if generated_tokens is not None else None
        obj.error = error
        obj.max_gen_toks = max_gen_toks
        return obj

    def __reduce__(self):  # keep the facts through pickling (multiprocessing, caches)
        return (_rebuild, (str(self), self.generated_tokens, self.finish_reason, self.error, self.max_gen_toks))


def _rebuild(
    text: str, generated_tokens: int | None, finish_reason: str | None, error: str | None = None,
    max_gen_toks: int | None = None,
) -> Generation:
    return Generation(text, generated_tokens=generated_tokens, finish_reason=finish_reason, error=error,
                      max_gen_toks=max_gen_toks)
