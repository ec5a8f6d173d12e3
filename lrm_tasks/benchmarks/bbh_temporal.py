"""BIG-Bench Hard temporal_sequences: 250 multiple-choice questions, options (A)-(D).

Rows: SaylorTwift/bbh ``temporal_sequences`` (``input`` with an "Options:" block,
``target`` like "(A)"). A response's answer is the option it commits to last, as
``"(C)"`` (a letter, or an option's text); it is correct when it equals the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lrm_tasks.benchmarks.spec import BenchmarkSpec, DataError, Judge, get_field, missing_gold, need_fields
from lrm_tasks.text import STOP_WORDS, clean_answer, final_conclusion, find_boxed, is_tentative, last_sentences, unwrap_tex

# ----------------------------------------------------------------------------------
# Options (read from rows and by the extractor)

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


# ----------------------------------------------------------------------------------
# Rows


def bbh_doc(row: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    """A canonical BBH document (its options parsed out of the input)."""
    need_fields(row, ("input", "target"), where, "input (question with an Options: block), target like '(A)'")
    options = parse_options(str(row["input"]))
    if not options:
        raise DataError(f"{where}: input has no '(A) ...' option lines after 'Options:'.")
    return {
        "doc_key": str(row.get("doc_key", i)),
        "input": str(row["input"]),
        "target": str(row["target"]).strip(),
        "options": options,
    }


# ----------------------------------------------------------------------------------
# Prompts

BBH_DEFAULT = (
    "{input}\n"
    "Please reason step by step. Finish with the letter of the correct option, "
    'in the form "Answer: (X)".'
)
BBH_PAPER = (
    "Use the timeline provided and answer step by step. Finally give the index (the letter) "
    "of the actual correct answer.\n{input}\n<think>\n"
)


def bbh_temporal_sequences_prompt(doc: dict[str, Any]) -> str:
    return BBH_DEFAULT.format(input=doc["input"])


def bbh_temporal_sequences_paper_prompt(doc: dict[str, Any]) -> str:
    return BBH_PAPER.format(input=doc["input"])


# ----------------------------------------------------------------------------------
# Answer extraction

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
# How far forward a marker's answer is read (a line or a sentence, bounded).
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
        content = clean_answer(unwrap_tex(box.content))
        m = letter_only.fullmatch(content)
        if m:
            found.append((box.start, m.group(1)))
            continue
        found.append((box.start, _match_option_text(content, options)))
    return found


def _marker_window(text: str, end: int) -> str:
    window = text[end : end + _MARKER_WINDOW]
    lead = len(window) - len(window.lstrip(" \t\n*_:"))
    body = window[lead:]
    cut = re.search(r"\n|(?<=[.!?])\s", body)
    return window[: lead + (cut.start() if cut else len(body))]


_SKIP = "skip"


def _bbh_marker_statement(
    text: str, m: re.Match[str], options: dict[str, str], pats: _BBHPatterns, *, in_reasoning: bool
) -> tuple[int, str | None] | str:
    """What one marker ("the answer is", "Answer:") states: ``(position, letter)``,
    ``(position, None)`` for a statement that commits to no single option, or
    ``_SKIP`` for one that does not count (a hedge in reasoning, a bare mention)."""
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
    tentative = is_tentative(text, m.start())
    if len(letters) == 1 and not _NONE_OF_THEM.search(window[:40]):
        if not (tentative and in_reasoning):
            return (m.start(), letters.pop())
    elif m.group("copula") and not tentative and (letters or window.strip()):
        # A statement that names no single option; one cut off by the end of the
        # text (a truncated response) says nothing yet.
        truncated = m.end() + len(window) >= len(text) and not re.search(r"[.!?)]\W*$", window)
        if not truncated:
            return (m.start(), None)
    return _SKIP


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
        found = _bbh_marker_statement(text, m, options, pats, in_reasoning=in_reasoning)
        if found != _SKIP:
            return [found]  # type: ignore[list-item]
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
    for sentence in reversed(last_sentences(tail, 3)):
        if pats.line.match(sentence):
            continue  # a line of a restated options list, not a statement
        hit = _match_option_text(sentence, options)
        if hit:
            return f"({hit})"
    return None


def bbh_commitments(text: str, options: dict[str, str]) -> list[tuple[int, str]]:
    """Every option a reasoning commits to, in order, as ``(offset, "(C)")``: boxes,
    unhedged marker statements and options alone on a line (the evidence
    :func:`bbh_answer` reads in reasoning).

    >>> opts = {"A": "6pm to 9pm", "B": "7am to 11am", "C": "2pm to 8pm"}
    >>> bbh_commitments("So the answer is (A). Wait, no.\\nThe answer is (C).", opts)
    [(7, '(A)'), (36, '(C)')]
    """
    pats = _bbh_patterns(_letter_class(options))
    letters = _letter_class(options)
    found = [(pos, letter) for pos, letter in _bbh_boxed(text, options, letters) if letter]
    for m in _BBH_MARKER.finditer(text):
        hit = _bbh_marker_statement(text, m, options, pats, in_reasoning=True)
        if hit != _SKIP and hit[1] is not None:  # type: ignore[index]
            found.append(hit)  # type: ignore[arg-type]
    found += _bbh_standalone_lines(text, pats)
    return [(pos, f"({letter})") for pos, letter in sorted(found)]


# An option's content words that a paraphrase must share: at least this share of them,
# and more than any other option ("a warm ionized gas" for "Warm ionized medium": 2 of 3).
_PARAPHRASE_SHARE = 0.5


def _option_words(text: str) -> set[str]:
    """Content words, lightly stemmed (plural and -ed/-ing endings), of option-ish text."""
    words = set()
    for w in _norm_option_text(text).split():
        if w in STOP_WORDS or len(w) < 2:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                break
        words.add(w)
    return words


def paraphrased_option(text: str, options: dict[str, str]) -> str | None:
    """The one option ``text`` names: a letter ("(D)", "option D"), the option's text,
    or a paraphrase sharing most of one option's content words and more than any other's.

    >>> opts = {"A": "Cold molecular cloud", "B": "Hot ionized medium", "D": "Warm ionized medium"}
    >>> paraphrased_option("a warm ionized gas", opts), paraphrased_option("ionized", opts)
    ('D', None)
    """
    pats = _bbh_patterns(_letter_class(options))
    letters = {m.group(1) or m.group(2) for m in pats.mention.finditer(text)}
    if len(letters) == 1:
        return letters.pop()
    if letters:
        return None
    exact = _match_option_text(text, options)
    if exact:
        return exact
    said = _option_words(text)
    shares = []
    for letter, option in options.items():
        words = _option_words(option)
        if words:
            shares.append((len(words & said) / len(words), letter))
    shares.sort(reverse=True)
    if shares and shares[0][0] >= _PARAPHRASE_SHARE and (len(shares) == 1 or shares[1][0] < shares[0][0]):
        return shares[0][1]
    return None


def bbh_question(doc_input: str) -> str:
    """The question of a BBH input: the text before its "Options:" block."""
    starts = [m.start() for m in _OPTIONS_BLOCK.finditer(doc_input)]
    return doc_input[: starts[-1]] if starts else doc_input


def bbh_conclusion(text: str, options: dict[str, str], question: str) -> tuple[int, str] | None:
    """The option the reasoning's last conclusion names, letter or paraphrase, when only
    an unfinished check follows it (:func:`lrm_tasks.text.final_conclusion`).

    >>> opts = {"A": "Cold molecular cloud", "B": "Hot ionized medium", "D": "Warm ionized medium"}
    >>> bbh_conclusion("It glows faintly. So it must be a warm ionized gas.", opts, "Which phase is it?")
    (18, '(D)')
    """
    found = final_conclusion(text, question)
    if found is None:
        return None
    letter = paraphrased_option(found.value, options)
    return (found.start, f"({letter})") if letter else None


# ----------------------------------------------------------------------------------
# Gold and verification


def bbh_gold(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The gold letter as ``"(A)"`` and the document's options."""
    target = get_field(doc, "target")
    if target is None:
        raise missing_gold("bbh_temporal_sequences", "'target' such as '(A)'", doc)
    m = re.fullmatch(r"\s*\(?\s*([A-Za-z])\s*\)?\s*", str(target))
    if not m:
        raise ValueError(f"bbh target must be an option letter such as '(A)', got {target!r}")
    options = doc.get("options")
    if not isinstance(options, dict) or not options:
        options = parse_options(str(get_field(doc, "input", "question") or ""))
    return f"({m.group(1).upper()})", {str(k): str(v) for k, v in options.items()}


def bbh_judge(doc: dict[str, Any]) -> Judge:
    gold, options = bbh_gold(doc)
    options = options or {}
    question = bbh_question(str(get_field(doc, "input", "question") or ""))
    return Judge(
        gold=gold,
        find=lambda text, in_reasoning: bbh_answer(text, options, in_reasoning=in_reasoning),
        correct=lambda answer: answer == gold,
        commitments=lambda text: bbh_commitments(text, options),
        conclude=lambda text: bbh_conclusion(text, options, question),
    )


BBH_TEMPORAL_SEQUENCES = BenchmarkSpec(
    name="bbh_temporal_sequences",
    title="Temporal",
    aliases=("bbh_cot_temporal_sequences", "bbh_cot_zeroshot_temporal_sequences", "temporal_sequences"),
    to_doc=bbh_doc,
    judge=bbh_judge,
    prompts={"prompt": bbh_temporal_sequences_prompt, "paper_prompt": bbh_temporal_sequences_paper_prompt},
    hub_path="SaylorTwift/bbh",
    hub_name="temporal_sequences",
    hub_split="test",
    local_files=("bbh_temporal_sequences.json", "bbh_temporal_sequences.jsonl"),
)
