"""Answer extractors for reasoning-model responses, one per benchmark, strict and flexible.

A response of a reasoning model is a long reasoning followed by the end-of-thinking
delimiter (``</think>``) and a short answer. Prompts usually end with ``<think>\\n``,
so responses rarely carry the opening tag; it is tolerated when present.

- **strict**: only the answer text after the *last* ``</think>``. A response that never
  closes its reasoning (truncated, looping) has no answer: ``None``.
- **flexible**: the last answer committed anywhere: the answer text first, falling back
  into the reasoning when the answer text commits to nothing (or when the reasoning
  never closed).

"No answer" is always ``None``, never a guess. Every function here is total over
strings: no response makes it raise, and every regex is linear-time (bounded
repetitions, no nested quantifiers), so a megabyte of repeated text, an unclosed
``\\boxed{`` or lone surrogates return quickly.

Extraction is separate from verification (``lrm_tasks.scoring``), as in Math-Verify's
``parse``/``verify`` split. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

__all__ = [
    "THINK_END",
    "Extraction",
    "split_reasoning",
    "strip_markdown",
    "find_boxed",
    "normalize_aime_answer",
    "parse_options",
    "aime_answer",
    "bbh_answer",
    "folio_answer",
    "classify_verdict",
    "restates_conclusion",
    "musique_answer",
    "NO_ANSWER",
    "extract",
]

THINK_END = "</think>"

# A \boxed{...} body longer than this is not an answer; bounding the brace scan keeps
# thousands of unclosed "\boxed{" linear-time instead of quadratic.
MAX_BOXED_CHARS = 400
# A reasoning shorter than this that never closed is usually the model skipping the
# </think> tag and writing its answer directly; longer ones are truncated deliberation.
SHORT_UNCLOSED_CHARS = 1500
# How often the same final sentence must repeat for a looping, truncated response to
# count as having committed to it.
LOOP_REPEATS = 2
# Extraction reads at most this many characters from the end of the reasoning and of
# the answer text: the longest real responses are ~200k characters, and the bound keeps
# adversarial megabytes fast. Commitments earlier than this are not looked for.
MAX_SCAN_CHARS = 250_000
# MuSiQue answers longer than this (characters) are explanations, not answers.
MAX_MUSIQUE_ANSWER_CHARS = 500


@dataclass(frozen=True)
class Extraction:
    """The strict and flexible answers of one response (``None`` = no answer)."""

    strict: str | None
    flexible: str | None


# ----------------------------------------------------------------------------------
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


def _clean_answer(text: str) -> str:
    """Strip markdown, TeX math delimiters, quotes and closing punctuation from an answer.

    >>> _clean_answer(' **"Apple Corps".** ')
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
class _Boxed:
    start: int
    end: int
    content: str


def find_boxed(text: str) -> list[_Boxed]:
    """All ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed 25`` bodies, nested braces kept.

    An unbalanced box (no closing brace within ``MAX_BOXED_CHARS``) is skipped.

    >>> [b.content for b in find_boxed(r"x \\boxed{\\frac{1}{2}} y \\boxed 25 z \\boxed{")]
    ['\\\\frac{1}{2}', '25']
    """
    found: list[_Boxed] = []
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
                found.append(_Boxed(match.start(), j + 1, text[i + 1 : j]))
        elif i > match.end():  # "\boxed 25": a bare token after whitespace
            m = _BARE_TOKEN.match(text, i)
            if m:
                found.append(_Boxed(match.start(), m.end(), m.group(0)))
    return found


def _unwrap_tex(content: str) -> str:
    """Remove TeX text wrappers (repeatedly, for nesting) and math delimiters.

    >>> _unwrap_tex(r"\\text{\\textbf{25}}")
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


def _sentences(text: str) -> list[str]:
    """Split text into sentences / lines (rough, linear-time); abbreviations do not split.

    >>> _sentences("It is 5. So yes!\\nDone")
    ['It is 5.', 'So yes!', 'Done']
    >>> _sentences("John F. Kennedy was in the U.S. in 1961. Then")
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


def _last_sentences(text: str, count: int) -> list[str]:
    return _sentences(text[-(count * 400) :])[-count:] if text else []


# ----------------------------------------------------------------------------------
# AIME: an integer 0-999

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
    text = _unwrap_tex(content)
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


# ----------------------------------------------------------------------------------
# BBH multiple choice (temporal_sequences): an option letter "(A)"

_OPTIONS_BLOCK = re.compile(r"(?i)\boptions\s{0,3}:")
_OPTION_LINE = re.compile(r"(?m)^[ \t]{0,4}\(([A-Z])\)[ \t]{0,4}([^\n]{0,300}?)[ \t]*$")
DEFAULT_LETTERS = "ABCDEFGHIJKLMNOPQR"  # BBH tasks have at most 18 options (A-R)


def parse_options(text: str) -> dict[str, str]:
    """Parse the ``(A) ...`` lines after the last "Options:" of a BBH input.

    >>> parse_options("Q?\\nOptions:\\n(A) 6pm to 9pm\\n(B) 7am to 11am")
    {'A': '6pm to 9pm', 'B': '7am to 11am'}
    """
    if not isinstance(text, str):
        return {}
    starts = [m.end() for m in _OPTIONS_BLOCK.finditer(text)]
    block = text[starts[-1] :] if starts else text
    return {m.group(1): m.group(2).strip() for m in _OPTION_LINE.finditer(block)}


_TIME = re.compile(r"(?i)\b(\d{1,2})(?::00)?\s{0,2}([ap])\.?\s{0,1}m\b\.?")
_RANGE_JOIN = re.compile(r"(?i)\s{0,3}(?:-|–|—|\bto\b|\band\b|\buntil\b|\btill\b)\s{0,3}")


def _norm_option_text(text: str) -> str:
    """Normalise option-ish text for matching: times and range joiners canonical.

    >>> _norm_option_text("between 2 PM and 8:00 p.m.")
    'between 2pm to 8pm'
    """
    text = _TIME.sub(lambda m: f"{int(m.group(1))}{m.group(2).lower()}m", text)
    text = _RANGE_JOIN.sub(" to ", text)
    text = text.lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def _match_option_text(text: str, options: dict[str, str]) -> str | None:
    """The one option whose text appears in ``text`` (token-bounded), else ``None``."""
    if not options or not text:
        return None
    hay = f" {_norm_option_text(text[:600])} "
    hits = set()
    for letter, option in options.items():
        needle = _norm_option_text(option)
        if needle and f" {needle} " in hay:
            hits.add(letter)
    # One option's text may contain another's ("11am to 2pm" vs "2pm"): keep the
    # longest hits only when they are nested.
    if len(hits) > 1:
        longest = max(hits, key=lambda k: len(options[k]))
        if all(_norm_option_text(options[k]) in _norm_option_text(options[longest]) for k in hits):
            hits = {longest}
    return hits.pop() if len(hits) == 1 else None


def _letter_class(options: dict[str, str]) -> str:
    letters = "".join(sorted(k for k in options if len(k) == 1 and "A" <= k <= "Z"))
    return f"[{letters or DEFAULT_LETTERS}]"


@dataclass(frozen=True)
class _BBHPatterns:
    immediate: re.Pattern[str]
    option_word: re.Pattern[str]
    line: re.Pattern[str]
    paren: re.Pattern[str]
    mention: re.Pattern[str]


_BBH_CACHE: dict[str, _BBHPatterns] = {}
# "the answer is (C)", "**Answer:** C", "Final Answer:\n(C)", "Index: (A)", "correct option is C".
# Group "copula" tells a statement ("the answer is ...") from a bare mention ("answer as").
_BBH_MARKER = re.compile(
    r"(?i:\b(?:final\s+)?answer|\bindex|\bcorrect\s+(?:option|choice)|\bfinal\s+choice)\b[*_]{0,3}"
    r"(?P<copula>(?:\s{0,3}(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=|:|：)){1,2})?"
)
# Words that make a statement tentative when they open its clause ("perhaps the answer is").
_TENTATIVE = re.compile(
    r"(?i)\b(?:perhaps|maybe|might|possibly|probably|if|whether|suppose|supposing|assum\w*|unless|or\s+is|either)\b"
)
_CLAUSE_START = re.compile(r"[.!?\n;,:]")
# How far back a clause is searched for tentative words, and how far forward a marker's
# answer is read (a line or a sentence, bounded).
_CLAUSE_LOOKBACK = 60
_MARKER_WINDOW = 160
_NONE_OF_THEM = re.compile(r"(?i)\bnone\s+of\s+(?:the\s+)?(?:above|options|them|these|the\s+given)|\bno\s+(?:provided\s+)?options?\b")


def _bbh_patterns(letters: str) -> _BBHPatterns:
    cached = _BBH_CACHE.get(letters)
    if cached:
        return cached
    after = r"(?![A-Za-z0-9'’])"
    patterns = _BBHPatterns(
        immediate=re.compile(
            rf"[*_\s:]{{0,10}}(?:(?i:option|choice)[*_\s]{{0,3}})?\(?[*_]{{0,2}}({letters}){after}"
        ),
        option_word=re.compile(rf"(?i:\boption|\bchoice)[*_\s]{{0,3}}\(?[*_]{{0,2}}({letters}){after}"),
        # a line that is just "(C)" or "C) 2pm to 8pm" or "**(C) 2pm to 8pm**"
        line=re.compile(
            rf"(?m)^[ \t*_>]{{0,6}}(?:\(({letters})\)|({letters})\))(?:[^\n]{{0,120}})$"
        ),
        paren=re.compile(rf"\(({letters})\)"),
        # any option reference inside a marker's window, except negated ones ("not (C)")
        mention=re.compile(rf"(?<!not )(?<!not\s\()(?:\(({letters})\)|(?i:option|choice)\s{{0,2}}({letters}){after})"),
    )
    _BBH_CACHE[letters] = patterns
    return patterns


def _bbh_boxed(text: str, options: dict[str, str], letters: str) -> list[tuple[int, str | None]]:
    found: list[tuple[int, str | None]] = []
    letter_only = re.compile(rf"\(?\s{{0,2}}({letters})\s{{0,2}}\)?(?:[\s:.)-][^\n]{{0,120}})?")
    for box in find_boxed(text):
        content = _clean_answer(_unwrap_tex(box.content))
        m = letter_only.fullmatch(content)
        if m:
            found.append((box.start, m.group(1)))
            continue
        found.append((box.start, _match_option_text(content, options)))
    return found


def _tentative(text: str, pos: int) -> bool:
    """Whether the clause that ends at ``pos`` opens with a hedge ("perhaps the answer is")."""
    before = text[max(0, pos - _CLAUSE_LOOKBACK) : pos]
    cuts = list(_CLAUSE_START.finditer(before))
    clause = before[cuts[-1].end() :] if cuts else before
    return bool(_TENTATIVE.search(clause))


def _marker_window(text: str, end: int) -> str:
    window = text[end : end + _MARKER_WINDOW]
    lead = len(window) - len(window.lstrip(" \t\n*_:"))
    body = window[lead:]
    cut = re.search(r"\n|(?<=[.!?])\s", body)
    return window[: lead + (cut.start() if cut else len(body))]


def _bbh_marker_hits(
    text: str, options: dict[str, str], pats: _BBHPatterns, *, in_reasoning: bool
) -> list[tuple[int, str | None]]:
    """The last marker statement that counts: ``[(position, letter)]``, or
    ``[(position, None)]`` for a statement that commits to no single option ("the answer
    is (A) or (B)", "none of the above", "the answer is that she never went"); ``[]``
    when there is none."""
    # Only the last statement that counts matters: walk back from the end and stop there
    # (a megabyte of "Answer:" costs one cheap scan, not a million window checks).
    for m in reversed(list(_BBH_MARKER.finditer(text))):
        window = _marker_window(text, m.end())
        letters = set()
        immediate = pats.immediate.match(window)
        if immediate:
            letters.add(immediate.group(1))
        for mention in pats.mention.finditer(window):
            letters.add(mention.group(1) or mention.group(2))
        if not letters:
            hit = _match_option_text(window, options)
            if hit:
                letters.add(hit)
        tentative = _tentative(text, m.start())
        if len(letters) == 1 and not _NONE_OF_THEM.search(window[:40]):
            if not (tentative and in_reasoning):
                return [(m.start(), letters.pop())]
        elif m.group("copula") and not tentative and (letters or window.strip()):
            # A statement that names no single option; one cut off by the end of the
            # text (a truncated response) says nothing yet.
            truncated = m.end() + len(window) >= len(text) and not re.search(r"[.!?)]\W*$", window)
            if not truncated:
                return [(m.start(), None)]
    return []


def _bbh_standalone_lines(text: str, pats: _BBHPatterns) -> list[tuple[int, str]]:
    """Lines that are only an option, skipping runs of them (a restated options list)."""
    rows = []
    for m in pats.line.finditer(text):
        rows.append((m.start(), m.end(), m.group(1) or m.group(2)))
    kept = []
    for i, (start, end, letter) in enumerate(rows):
        prev_adjacent = i > 0 and text[rows[i - 1][1] : start].strip() == "" and rows[i - 1][2] != letter
        next_adjacent = (
            i + 1 < len(rows) and text[end : rows[i + 1][0]].strip() == "" and rows[i + 1][2] != letter
        )
        if not (prev_adjacent or next_adjacent):
            kept.append((start, letter))
    return kept


def bbh_answer(text: str, options: dict[str, str], *, in_reasoning: bool = False) -> str | None:
    """The final committed option of a BBH multiple-choice answer, as ``"(C)"``.

    Strong evidence (``\\boxed{C}``, "Answer: C", "the answer is (C)") wins, the last
    statement first; a statement naming several options, or none ("the answer is (A)
    or (B)", "none of the above"), commits to no answer. In reasoning, hedged
    statements ("perhaps the answer is (D), but ...") do not count. After the last
    statement: an option alone on a line; then, outside the reasoning, "option C"
    mentions, a single parenthesised letter in the last paragraph, or option text that
    matches exactly one option in the final sentences. A lowercase "a" ("a time") is
    never a letter.

    >>> opts = {"A": "6pm to 9pm", "B": "7am to 11am", "C": "2pm to 8pm", "D": "1pm to 2pm"}
    >>> bbh_answer("The correct answer is (C) 2pm to 8pm.\\n\\n**Answer:** C", opts)
    '(C)'
    >>> bbh_answer("She could have gone between 2pm and 8pm.", opts)
    '(C)'
    >>> bbh_answer("The answer is a time we cannot know.", opts) is None
    True
    >>> bbh_answer("**Answer:** (C) 2pm to 8pm and (D) 1pm to 2pm", opts) is None
    True
    """
    letters = _letter_class(options)
    pats = _bbh_patterns(letters)
    strong = sorted(
        _bbh_boxed(text, options, letters) + _bbh_marker_hits(text, options, pats, in_reasoning=in_reasoning),
        key=lambda hit: hit[0],
    )
    after = 0
    if strong:
        pos, letter = strong[-1]
        if letter is not None:
            return f"({letter})"
        after = pos + 1  # weaker evidence only counts after a non-committal statement
    tail = text[after:]
    lines = _bbh_standalone_lines(tail, pats)
    if lines:
        return f"({lines[-1][1]})"
    if in_reasoning:
        return None
    mentions = [(m.start(), m.group(1)) for m in pats.option_word.finditer(tail)]
    if mentions:
        return f"({mentions[-1][1]})"
    paragraphs = [p for p in re.split(r"\n\s*\n", tail[-3000:]) if p.strip()]
    if paragraphs:
        letters_seen = {m.group(1) for m in pats.paren.finditer(paragraphs[-1])}
        if len(letters_seen) == 1:
            return f"({letters_seen.pop()})"
    for sentence in reversed(_last_sentences(tail, 3)):
        if pats.line.match(sentence):
            continue  # a line of a restated options list, not a statement
        hit = _match_option_text(sentence, options)
        if hit:
            return f"({hit})"
    return None


# ----------------------------------------------------------------------------------
# FOLIO: True / False / Uncertain

FOLIO_LABELS = ("True", "False", "Uncertain")

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
    word = word.lower()
    if word == "true":
        return "True"
    if word == "false":
        return "False"
    if word in ("uncertain", "unknown"):
        return "Uncertain"
    return None


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
    target = [w for w in _words(conclusion) if w not in _STOP]
    if not target:
        return False
    said = _words(sentence)
    content = [w for w in said if w not in _STOP and w not in _RESTATEMENT_FILLER]
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
        label = _folio_label(_clean_answer(_unwrap_tex(box.content))) or classify_verdict(
            _unwrap_tex(box.content)
        )
        if label:
            boxes.append((box.start, label))
    last_box = boxes[-1] if boxes else None
    unmarked_last: str | None = None
    sentences: list[tuple[int, str]] = []
    offset = 0
    for sentence in _sentences(text):
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
        for sentence in _last_sentences(text, 3):
            if restates_conclusion(sentence, conclusion):
                return "True"
    return None


# ----------------------------------------------------------------------------------
# MuSiQue: a short free-text answer

_MUSIQUE_MARKER_LINE = re.compile(
    r"(?im)^[ \t#*_>\-]{0,8}(?:final\s+answer|short\s+answer|answer)[ \t*_]{0,4}[:：]?[ \t*_]{0,4}(?P<rest>[^\n]{0,500})$"
)
_MUSIQUE_PHRASE = re.compile(r"(?i)\b(?:the\s+)?(?:final\s+)?answer\s+is\s*[:：]?\s*(?P<rest>[^\n]{1,500})")
# "so Paris is the answer", "Marta Reis would be the correct answer" (not "... answer?").
_IS_THE_ANSWER = re.compile(
    r"(?i)\s(?:is|would\s+be|must\s+be|should\s+be)\s+(?:the|my|our)\s+(?:final\s+|correct\s+|right\s+)?answer\b(?!\s{0,3}\?)"
)
# Where the subject of "X is the answer" starts: a sentence or clause boundary, or a
# connective ("so", "thus", "I think").
_SUBJECT_START = re.compile(r"(?i)[.!?\n;:]|,\s|\b(?:so|thus|therefore|hence|then|that|think|believe|say)\s")
# A subject that only points ("this is the answer", "figure out which is the answer").
_POINTER_SUBJECT = re.compile(r"(?i)\b(?:which|what|who|whom|whose|this|that|it|there|here|one|mine|each|whichever)[\s*_]*$")
_BOLD = re.compile(r"\*\*([^*\n]{1,200})\*\*|__([^_\n]{1,200})__")
_CODE_FENCE = re.compile(r"```[^`]{0,4000}(?:```|$)")
_REFUSAL = re.compile(
    r"(?i)(?:\bi\s+(?:am|'m)\s+sorry|\bi\s+cannot\s+answer|\bi\s+can't\s+answer|\bi\s+(?:do\s+not|don't)\s+know|"
    r"\b(?:cannot|can't|could\s+not|unable\s+to|impossible\s+to|not\s+possible\s+to|difficult\s+to)\s+(?:be\s+)?"
    r"(?:provide|determine|determined|answer|identify|identified|find|say|know|known)\b|"
    r"(?:\bnot|n't)\s+(?:publicly\s+)?(?:disclosed|specified|known|available|provided|determinable)\b|"
    r"\b(?:is|are)\s+unknown\b|\bunclear\b|\bambiguous\b|\bneed\s+more\s+(?:specific\s+)?(?:information|context)\b|"
    r"\bmore\s+context\b|\bwould\s+be\s+happy\s+to\s+(?:help|assist)\b|"
    r"\b(?:require|necessitate|need)s?\s+(?:further|more)\s+(?:detailed\s+)?(?:research|exploration|analysis|information)\b)"
)
_COPULA = re.compile(r"\s(?:is|was|are|were|became|becomes)\s")
_PARENTHETICAL = re.compile(r"\s\([^()\n]{0,80}\)")
# "directed by X", "educated at X", "held on X": the participle restates the question.
_PARTICIPLE_LEAD = re.compile(
    r"(?i)^(?:[a-z]+ed|held|born|made|built|known|run|written|sung|led|found|based|won|begun|taught)\s+"
    r"(?:by|in|at|on|from|for|as|to|with|into|under|during)\s+(?=\S)"
)
_HEDGE = re.compile(
    r"(?i)^(?:approximately|about|around|roughly|likely|probably|possibly|perhaps|maybe|most\s+likely|estimated\s+at|an\s+estimated)\s+"
)
_STOP = frozenset(
    "a an the of in on at to for by with from and or is was are were be been who whom whose what which when "
    "where why how that this these those did does do it its as".split()
)
_WHEN_QUESTION = re.compile(r"(?i)^\s*(?:when|(?:in\s+)?what\s+year|(?:in\s+)?which\s+year|what\s+date)\b")
_COUNT_QUESTION = re.compile(r"(?i)^\s*(?:how\s+many|how\s+much|what\s+is\s+the\s+population|what's\s+the\s+population)\b")
_MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = re.compile(
    rf"\b(?:{_MONTHS}\s+\d{{1,2}},?\s+\d{{3,4}}|\d{{1,2}}\s+{_MONTHS}\s+\d{{3,4}}|{_MONTHS}\s+\d{{3,4}}"
    r"|\d{1,2}(?:st|nd|rd|th)\s+century(?:\s+(?:BC|BCE|AD|CE))?|\d{3,4}s|\d{1,4}\s+(?:BC|BCE|AD|CE)\b|\d{4})\b"
)
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])|(?<![\w.,])\d+(?:\.\d+)?(?![\w,])")
# Sentences this similar (token Jaccard) count as the same claim repeated in a loop.
_LOOP_SIMILARITY = 0.6
_LOOP_WINDOW = 20
NO_ANSWER = "\x00no-answer"
"""Sentinel a finder returns when the text commits to having no answer (a refusal):
the flexible answer then does not fall back into the reasoning."""


def _content_tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[^\W_]+", text.lower()) if t not in _STOP]


# Irregular verb forms mapped to the base form, so "left" restates "leave" and "led"
# restates "lead". Only unambiguous forms ("saw", "rose", "fell" are also nouns).
_IRREGULAR = {
    "left": "leave", "led": "lead", "won": "win", "went": "go", "gone": "go", "made": "make",
    "held": "hold", "found": "find", "took": "take", "taken": "take", "wrote": "write",
    "written": "write", "sang": "sing", "sung": "sing", "began": "begin", "begun": "begin",
    "became": "become", "built": "build", "bought": "buy", "sold": "sell", "told": "tell",
    "knew": "know", "known": "know", "gave": "give", "given": "give", "came": "come", "ran": "run",
    "fought": "fight", "taught": "teach", "thought": "think", "brought": "bring", "died": "die",
    "dies": "die", "met": "meet", "spoke": "speak", "spoken": "speak", "chose": "choose",
    "chosen": "choose", "drew": "draw", "drawn": "draw", "grew": "grow", "grown": "grow",
    "sat": "sit", "stood": "stand", "seen": "see", "felt": "feel", "kept": "keep", "lost": "lose",
    "paid": "pay", "said": "say", "sent": "send", "spent": "spend", "struck": "strike",
    "threw": "throw", "thrown": "throw", "wore": "wear", "worn": "wear", "fled": "flee",
    "bore": "bear", "borne": "bear", "done": "do", "had": "have", "has": "have", "ended": "end",
}
# Tokens that carry nothing on their own: stop words plus the leftovers of "'s" / "n't".
_STEM_STOP = _STOP | {"s", "t"}


def _stem(word: str) -> str:
    """A light stem: lowercase, irregular verbs to their base, -s/-es/-ed/-ing and a
    final -e stripped (enough to tell "left the city" restates "leave the city").

    >>> [_stem(w) for w in ("Left", "leave", "volunteered", "classes", "died", "leading")]
    ['leav', 'leav', 'volunteer', 'class', 'die', 'lead']
    """
    w = word.lower()
    w = _IRREGULAR.get(w, w)
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    elif w.endswith(("ing", "ed")) and len(w) > 4:
        w = w[:-3] if w.endswith("ing") else w[:-2]
        if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
            w = w[:-1]  # "stopped" -> "stop"
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def _stem_tokens(text: str) -> list[tuple[str, str]]:
    """``(word, stem)`` for the content words of ``text``, in order."""
    return [(w, _stem(w)) for w in re.findall(r"[^\W_]+", text) if w.lower() not in _STEM_STOP]


def _question_stems(question: str) -> set[str]:
    return {stem for _, stem in _stem_tokens(question)}


# Share of a phrase's content words that must come from the question for it to count
# as restating the question rather than answering it.
_RESTATES_RATIO = 0.6


def _restates(text: str, question: str, ratio: float = _RESTATES_RATIO) -> bool:
    """Whether ``text`` is mostly words of the question (a restatement, not an answer).

    >>> _restates("The feast", "What day is the feast held?")
    True
    """
    tokens = [stem for _, stem in _stem_tokens(text)]
    if not tokens:
        return True
    qset = _question_stems(question)
    return sum(t in qset for t in tokens) / len(tokens) >= ratio


# A sentence this much made of the question's words, whose only other word is one
# lowercase word inside it (a linking verb: "is associated with", "oversees"),
# relates the question's own entities to each other and names no answer.
_NEARLY_ALL_RATIO = 0.8
_NEARLY_ALL_MIN_WORDS = 5


def _restates_question(text: str, question: str, *, nearly: bool = True) -> bool:
    """Whether ``text`` adds no information to the question: all its content words
    (lightly stemmed) come from the question, or all but one lowercase word that is
    neither a name, nor a number, nor the sentence's last word (where English puts
    new information). One-word texts never count: "Paris" may be the answer to
    "Paris or Lyon?". A number said more often than the question says it is new:
    "the 1979-80 winner won the cup in 1979" answers "When did the 1979-80 winner win?".
    ``nearly=False`` asks for all content words.

    >>> q = "Why did Roncali leave the city where the creator of Vanity died?"
    >>> _restates_question("Roncali left the city where the creator of Vanity died.", q)
    True
    >>> q = "What company is the record label of Blue Fern part of?"
    >>> _restates_question("Blue Fern is associated with the label **Blue Fern**.", q)
    True
    >>> _restates_question("The record label of Blue Fern is part of Apple Corps.", q)
    False
    >>> _restates_question("The record label of Blue Fern is part of the company conglomerate.", q)
    False
    """
    tokens = _stem_tokens(text)
    if len(tokens) < 2 or not question:
        return False
    qstems = [stem for _, stem in _stem_tokens(question)]
    qset = set(qstems)
    numbers_left = {t: qstems.count(t) for t in qset if t.isdigit()}
    extra = []
    for i, (word, stem) in enumerate(tokens):
        if stem.isdigit() and stem in numbers_left:
            numbers_left[stem] -= 1
            if numbers_left[stem] >= 0:
                continue
        elif stem in qset:
            continue
        extra.append((i, word))
    if not extra:
        return True
    if not nearly or len(tokens) < _NEARLY_ALL_MIN_WORDS or len({_stem(w) for _, w in extra}) > 1:
        return False
    if (len(tokens) - len(extra)) / len(tokens) < _NEARLY_ALL_RATIO:
        return False
    return all(word.isalpha() and word.islower() and i < len(tokens) - 1 for i, word in extra)


def _asked(question: str) -> str:
    """The sentence of a question that asks ("There is a state A ... What is its population?")."""
    sentences = _sentences(question)
    return sentences[-1] if sentences else question


def _typed_answer(sentence: str, question: str) -> str | None:
    """The one date (a "when" question) or number (a "how many" question) in a sentence."""
    asked = _asked(question)
    if _WHEN_QUESTION.search(asked):
        pattern = _DATE
    elif _COUNT_QUESTION.search(asked):
        pattern = _NUMBER
    else:
        return None
    said = {m.group(0) for m in pattern.finditer(sentence)}
    # Dates the question itself names are restated context, unless nothing else is said.
    found = (said - {m.group(0) for m in pattern.finditer(question)}) or said
    if len(found) == 1:
        return found.pop()
    # "1987 ... in 1987" or "May 1990 ... 1990": keep the longest if the others are inside it
    if found:
        longest = max(found, key=len)
        if all(f in longest for f in found):
            return longest
    return None


# Answers that name nothing: an indefinite pronoun ("someone with a strong
# understanding of the city's history"), and, for a "who" question, a possessive
# pronoun with common nouns ("her husband" for "Who was the spouse of the queen?").
_INDEFINITE = re.compile(r"(?i)^(?:someone|somebody|something|somewhere|anyone|anybody)\b")
_POSSESSIVE_ONLY = re.compile(r"^(?i:his|her|their|its)\s+[a-z]+(?:[\s-][a-z]+)?$")
_WHO_QUESTION = re.compile(r"(?i)^\W{0,3}(?:who|whom|whose)\b")
# A sentence that opens with an anaphoric pronoun elaborates on what came before it
# ("It was one of several attempts ...", "He aimed to reform ...").
_ANAPHORIC = re.compile(r"^[\W_]{0,4}(?:He|She|It|They|This|These|Those|His|Her|Its|Their|Such)\b")
# ... unless it names what came before: "His name is Colin Firth.", "It is called Casa Loma."
_IDENTIFIES = re.compile(
    r"^[\W_]{0,4}(?:(?:His|Her|Its|Their)\s+(?:full\s+|real\s+)?name\s+(?:is|was)|"
    r"(?:He|She|It|They|This)\s+(?:is|was|are|were)\s+(?:called|named|known\s+as))\s"
)
# How many words an answer found inside an earlier sentence may have, when the last
# sentence is an elaboration: a short phrase, not a clause.
_STEP_BACK_MAX_WORDS = 8
_WH_OBJECT_WORDS = frozenset("what which who whom".split())
_AUXILIARIES = frozenset("did does do".split())
_PREPOSITIONS = frozenset("about above across after against along among around before behind below beneath "
                          "beside between beyond during except inside into near off onto out outside over past "
                          "since through throughout toward towards under until unto upon via within without up".split())
# Where the object of a verb, or a restated clause's answer, ends: punctuation, a
# parenthesis, a relative clause or an appositive.
_PHRASE_END = re.compile(
    r"[,;:!?\n(]|(?<!\b[A-Z])\.|\s(?:which|who|whom|whose|where|when|because|while|although|though|after|before)\s"
)


def _question_verb(question: str) -> str | None:
    """The stem of the verb a "What/Who ... did X VERB?" question ends with, else ``None``.

    >>> _question_verb("What movement did the man who wanted to reform the church lead?")
    'lead'
    >>> _question_verb("Who is the spouse of the producer?") is None
    True
    """
    words = re.findall(r"[A-Za-z]+", _asked(question)[-400:])
    if len(words) < 3 or words[0].lower() not in _WH_OBJECT_WORDS:
        return None
    if not any(w.lower() in _AUXILIARIES for w in words[1:-1]):
        return None
    verb = words[-1].lower()
    if verb in _STEM_STOP or verb in _PREPOSITIONS or len(verb) < 3:
        return None
    return _stem(verb)


def _names_something(phrase: str) -> bool:
    return bool(re.search(r"\d|\b[A-Z]", phrase))


def _verb_object(sentence: str, question: str) -> str | None:
    """The object of the question's own final verb in ``sentence``: "Who did X follow?"
    answered "X followed Moshe Rabbeinu, the ..." gives "Moshe Rabbeinu". Only a
    phrase that names something (a capitalised word or a number) counts.

    >>> _verb_object("He is likely Martin Luther, who led the Protestant Reformation.",
    ...              "What movement did the man who wanted to reform the church lead?")
    'the Protestant Reformation'
    """
    verb = _question_verb(question) if question else None
    if verb is None:
        return None
    found = None
    for m in re.finditer(r"[A-Za-z]+", sentence):
        if _stem(m.group(0)) == verb:
            found = m
    if found is None:
        return None
    rest = sentence[found.end() : found.end() + 300]
    cut = _PHRASE_END.search(rest)
    obj = _clean_answer(rest[: cut.start()] if cut else rest)
    if not obj or len(obj.split()) > _STEP_BACK_MAX_WORDS or not _names_something(obj):
        return None
    if _restates(obj, question):
        return None
    return obj


def _after_restated_lead(plain: str, question: str) -> str | None:
    """The rest of a sentence that opens by restating the question: "The spouse of X won
    a Tony for Best Score" (for "What did the spouse of X win a Tony for?") gives "Best
    Score". The rest must share no word with the question and start with a name or
    number, or be a short phrase that ends the sentence.

    >>> _after_restated_lead("The creator of Derech Mitzvosecha followed Moshe Rabbeinu, the teacher.",
    ...                      "Who did the creator of Derech Mitzvosecha follow?")
    'Moshe Rabbeinu'
    >>> _after_restated_lead("The scientist the Kessel effect is named for worked in chemistry.",
    ...                      "The scientist the Kessel effect is named for worked in what field?")
    'chemistry'
    """
    qset = _question_stems(question)
    restated = 0
    start = None
    for m in re.finditer(r"[^\W_]+", plain):
        word = m.group(0)
        if word.lower() in _STEM_STOP:
            continue
        if _stem(word) in qset:
            restated += 1
            continue
        start = m.start()
        break
    if start is None or restated < 2:
        return None
    rest = plain[start : start + 300]
    cut = _PHRASE_END.search(rest)
    rest = _clean_answer(rest[: cut.start()] if cut else rest)
    # A name or number, or a short lowercase phrase that ends the sentence ("worked in
    # chemistry"); a longer lowercase rest is a predicate ("oversees the ...").
    named = plain[start].isupper() or plain[start].isdigit()
    ends_sentence = not cut or not plain[start + cut.start() :].strip(" .!?\"'”’)")
    if not rest or len(rest.split()) > (12 if named else 3) or not (named or ends_sentence):
        return None
    if any(stem in qset for _, stem in _stem_tokens(rest)):
        return None
    return rest


def _shorten_sentence(sentence: str, question: str) -> str:
    """Reduce an answer sentence to its answer: the date or number a "when" / "how many"
    question asks for, its last bold span, the object of the question's own verb, the
    side of a copula that does not restate the question, or what follows a restated
    opening.

    >>> _shorten_sentence("In *The King's Speech*, the king was played by **Colin Firth**.", "")
    'Colin Firth'
    >>> _shorten_sentence("The network that created the show is NBC.", "What network created the show?")
    'NBC'
    >>> _shorten_sentence("The group was formed in 2006.", "In what year was the group formed?")
    '2006'
    >>> _shorten_sentence("The film was directed by Marta Reis.", "Who directed the film?")
    'Marta Reis'
    """
    plain = _clean_answer(sentence)
    if question:
        typed = _typed_answer(plain, question)
        if typed:
            return typed
    bolds = [m.group(1) or m.group(2) for m in _BOLD.finditer(sentence)]
    if bolds:
        last = _clean_answer(bolds[-1])
        if last and last != plain and not _restates(last, question, 1.0):
            return last
    if question:
        obj = _verb_object(plain, question)
        if obj:
            return obj
        unparenthesised = _PARENTHETICAL.sub("", plain)
        m = _COPULA.search(unparenthesised)
        if m:
            left, right = unparenthesised[: m.start()], unparenthesised[m.end() :]
            right = re.split(r",\s(?:which|who|whose|where|when)\s", right)[0]
            if _restates(left, question) and not _restates(right, question) and right.strip():
                return _PARTICIPLE_LEAD.sub("", _HEDGE.sub("", _clean_answer(right)))
            if _restates(right, question) and not _restates(left, question) and left.strip():
                return _HEDGE.sub("", _clean_answer(left))
        after = _after_restated_lead(plain, question)
        if after:
            return after
    return plain


def _musique_from_marker(text: str, *, in_reasoning: bool) -> tuple[int, str] | None:
    """The answer after the last "Answer:" / "Final Answer" marker, or ``None``."""
    best: tuple[int, str] | None = None
    for m in _MUSIQUE_MARKER_LINE.finditer(text):
        rest = m.group("rest").strip(" *_:")
        if not rest:  # "**Final Answer**" alone: the answer is on the next line
            nxt = text[m.end() : m.end() + 600].strip()
            rest = nxt.split("\n", 1)[0] if nxt else ""
        if rest:
            best = (m.start(), rest)
    for m in _MUSIQUE_PHRASE.finditer(text):
        if best is not None and m.start() <= best[0]:
            continue
        if in_reasoning:
            # "maybe the answer is 1993" deliberates; "the answer is 199" cut off says nothing
            truncated = m.end() >= len(text) and not re.search(r"[.!?]\W*$", m.group("rest"))
            if _tentative(text, m.start()) or truncated:
                continue
        best = (m.start(), m.group("rest"))
    for m in _IS_THE_ANSWER.finditer(text):
        if best is not None and m.start() <= best[0]:
            continue
        before = text[max(0, m.start() - 200) : m.start()]
        cuts = list(_SUBJECT_START.finditer(before))
        subject = before[cuts[-1].end() :] if cuts else before
        if not subject.strip(" *_") or _POINTER_SUBJECT.search(subject):
            continue
        if in_reasoning and _tentative(text, m.start()):
            continue
        best = (m.start(), subject)
    return best


def _is_refusal(answer: str) -> bool:
    return bool(_REFUSAL.search(answer))


def _finalize(raw: str, question: str) -> str | None:
    if _is_refusal(raw):
        return NO_ANSWER
    if question and _restates_question(raw, question, nearly=False):
        return NO_ANSWER  # "Roncali left the city where the creator of Vanity died."
    short = _shorten_sentence(raw, question)
    if question and short == _clean_answer(raw) and _restates_question(raw, question):
        return NO_ANSWER  # "Blue Fern is associated with the label Blue Fern."
    answer = _HEDGE.sub("", short)
    if _INDEFINITE.match(answer) or (_POSSESSIVE_ONLY.match(answer) and _WHO_QUESTION.match(_asked(question))):
        return NO_ANSWER  # "The spouse of the queen is her husband."
    if not answer or len(answer) > MAX_MUSIQUE_ANSWER_CHARS:
        return None
    return answer


def _after_elaboration(sentences: list[str], question: str) -> str | None:
    """The answer when the last sentence only elaborates ("He aimed to ..."): a short
    phrase the nearest earlier statement commits to (its object of the question's verb,
    bold span, copula side ...), else ``None``: an elaboration is never the answer."""
    for sentence in reversed(sentences[-5:-1]):
        if _ANAPHORIC.match(sentence):
            continue
        answer = _finalize(sentence, question)
        if answer is None or answer == NO_ANSWER or answer == _clean_answer(sentence):
            return None
        return answer if len(answer.split()) <= _STEP_BACK_MAX_WORDS else None
    return None


# Words that open deliberation, not an answer ("Wait.", "Okay, let me see.").
_DISCOURSE_START = re.compile(
    r"(?i)^(?:wait|hmm+|okay|ok|so|but|and|or|alternatively|let|let's|i|i'm|maybe|perhaps|actually|now|then|"
    r"first|next|no|yes|well|oh|right|hence|thus|therefore|step|note|however|also|answer|final)\b"
)
_NEGATED = re.compile(r"(?i)\b(?:not|never|no)\b|n't\b")
# A final short phrase in reasoning: at most this many words.
_SHORT_PHRASE_WORDS = 5


def _final_commitment(sentence: str) -> bool:
    """Whether the last complete sentence of a reasoning commits to an answer on its own:
    it carries a bold span ("So the director is **Marta Reis**.") or is a short phrase
    that names something ("Marta Reis."), and is neither a question, a heading, a hedge
    nor deliberation ("Wait.", "Let me check Porto.").

    >>> _final_commitment("So the director is **Marta Reis**."), _final_commitment("Marta Reis.")
    (True, True)
    >>> _final_commitment("Let me check Porto."), _final_commitment("The origin.")
    (False, False)
    >>> _final_commitment("**Porto** is not where it was filmed.")
    False
    """
    plain = strip_markdown(sentence).strip()
    if not plain or plain.endswith("?") or ":" in plain or _TENTATIVE.search(plain) or _NEGATED.search(plain):
        return False
    if _BOLD.search(sentence):
        return not _DISCOURSE_START.match(plain) or plain.lower().startswith(("so ", "thus ", "therefore "))
    words = plain.rstrip(".!").split()
    if len(words) > _SHORT_PHRASE_WORDS or _DISCOURSE_START.match(plain):
        return False
    return any(w[:1].isdigit() or (w[:1].isupper() and w.lower() not in _STEM_STOP) for w in words)


def _similar(a: str, b: str) -> bool:
    ta, tb = set(_content_tokens(a)), set(_content_tokens(b))
    return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= _LOOP_SIMILARITY


def musique_answer(text: str, question: str = "", *, in_reasoning: bool = False) -> str | None:
    """The short final answer of a MuSiQue response, or ``None``.

    "Answer:"/"**Answer:**"/"Final answer:" markers and ``\\boxed{}`` win (last one);
    otherwise the final sentence. The answer is then reduced to the date or number a
    "when" / "how many" question asks for, to its bold span, or to the side of "X is Y"
    that does not restate the question. Refusals ("I cannot answer ...", "cannot be
    determined") and bare restatements of the question return the ``NO_ANSWER``
    sentinel. A final sentence that only elaborates ("He aimed to ...") or asks a
    question is no answer. In reasoning (``in_reasoning``) only explicit commitments
    count: markers, "the answer is X" / "X is the answer" (not hedged), a final complete
    sentence with a bold span or that is a short phrase naming something, and the final
    complete sentence of a response that loops on one claim.

    >>> musique_answer("Paris is big.\\n\\n**Answer:** Paris")
    'Paris'
    >>> musique_answer("I am sorry, I cannot answer that question.") == NO_ANSWER
    True
    """
    text = _CODE_FENCE.sub("", text)
    candidates: list[tuple[int, str]] = []
    marker = _musique_from_marker(text, in_reasoning=in_reasoning)
    if marker:
        candidates.append(marker)
    for box in find_boxed(text):
        content = _unwrap_tex(box.content)
        if content:
            candidates.append((box.start, content))
    if candidates:
        return _finalize(max(candidates)[1], question)
    sentences = _last_sentences(text, _LOOP_WINDOW)
    if in_reasoning:
        # A truncated response ends mid-sentence: only complete sentences count.
        if sentences and not re.search(r"[.!?\"'”’)]\s*$", text):
            sentences = sentences[:-1]
        if not sentences:
            return None
        last = sentences[-1]
        if _final_commitment(last):
            return _finalize(last, question)
        looping = sum(_similar(s, last) for s in sentences) >= LOOP_REPEATS
        if not looping or _TENTATIVE.search(last) or last.rstrip().endswith("?"):
            return None
    sentences = [s for s in sentences if _clean_answer(s) and not re.fullmatch(r"[-=_*]{3,}", s.strip())]
    if not sentences:
        return None
    paragraph = text.rstrip()[-1500:].split("\n\n")[-1]
    if _is_refusal(paragraph):
        return NO_ANSWER
    last = sentences[-1]
    if last.rstrip(" *_\"'”’)").endswith("?"):
        return None  # a question ("Is it Marta Reis?") commits to nothing
    identifies = _IDENTIFIES.match(last)
    if identifies:
        return _finalize(last[identifies.end() :], question)
    if len(sentences) > 1 and _ANAPHORIC.match(last) and not (question and _typed_answer(_clean_answer(last), question)):
        return _after_elaboration(sentences, question)
    return _finalize(last, question)


# ----------------------------------------------------------------------------------
# One entry point


def _two_modes(find, reasoning: str, answer_text: str, closed: bool) -> Extraction:
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
        return Extraction(None, clean(find(reasoning, True)))
    # Never closed: a short reasoning is usually the answer written without the tag.
    return Extraction(None, clean(find(reasoning, not short)))


def _call(find: Callable[..., str | None], text: str, in_reasoning: bool, **kwargs: Any) -> str | None:
    return find(text, in_reasoning=in_reasoning, **kwargs)


def extract(
    task: str,
    response: str,
    doc_info: dict,
    think_end: str = THINK_END,
) -> tuple[Extraction, tuple[str, str, bool]]:
    """Extract strict and flexible answers for a canonical task name.

    ``doc_info`` carries what the extractor needs from the document: ``options`` for
    bbh_temporal_sequences, ``conclusion`` for folio, ``question`` for musique. Returns the extraction and the
    ``split_reasoning`` triple.
    """
    split = split_reasoning(response, think_end)
    reasoning, answer_text, closed = split
    finder: Callable[[str, bool], str | None]
    if task == "aime24":
        finder = partial(_call, aime_answer)
    elif task == "bbh_temporal_sequences":
        finder = partial(_call, bbh_answer, options=doc_info.get("options") or {})
    elif task == "folio":
        finder = partial(_call, folio_answer, conclusion=doc_info.get("conclusion") or "")
    elif task == "musique":
        finder = partial(_call, musique_answer, question=doc_info.get("question") or "")
    else:
        raise ValueError(f"no extractor for task {task!r}")
    return _two_modes(finder, reasoning, answer_text, closed), split
