"""MuSiQue-Ans: multi-hop questions with a short free-text answer (dev set).

Rows: dgslibisey/MuSiQue or the official release (``answer_aliases``, 20
``paragraphs``). Asked closed-book (``musique_lrm``: stored knowledge) or with its
paragraphs (``musique_ctx_lrm``). A response's answer is its final short answer;
it is correct on exact match after the official MuSiQue/SQuAD normalisation against
the answer or an alias, and graded by token F1 (best over answer and aliases).
"""

from __future__ import annotations

import re
from typing import Any

from lrm_tasks.benchmarks.spec import CONTEXT, KNOWLEDGE, BenchmarkSpec, Judge, get_field, missing_gold, need_fields
from lrm_tasks.metrics import exact_match, normalize_answer, token_f1
from lrm_tasks.text import (
    NO_ANSWER,
    STOP_WORDS,
    TENTATIVE,
    clean_answer,
    find_boxed,
    is_tentative,
    last_sentences,
    split_sentences,
    strip_markdown,
    unwrap_tex,
)

# How often the same final sentence must repeat for a looping, truncated response to
# count as having committed to it.
LOOP_REPEATS = 2
# MuSiQue answers longer than this (characters) are explanations, not answers.
MAX_MUSIQUE_ANSWER_CHARS = 500

# ----------------------------------------------------------------------------------
# Rows


def musique_doc(row: dict[str, Any], i: int, where: str) -> dict[str, Any]:
    """A canonical MuSiQue document (aliases a list, paragraphs normalised)."""
    need_fields(row, ("id", "question", "answer"), where, "id, question, answer, answer_aliases, paragraphs (official MuSiQue schema)")
    aliases = row.get("answer_aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    return {
        "doc_key": str(row["id"]),
        "question": str(row["question"]),
        "answer": str(row["answer"]),
        "answer_aliases": [str(a) for a in aliases],
        "paragraphs": [
            {
                "idx": int(p.get("idx", j)),
                "title": str(p.get("title", "")),
                "paragraph_text": str(p.get("paragraph_text", "")),
                "is_supporting": bool(p.get("is_supporting", False)),
            }
            for j, p in enumerate(row.get("paragraphs") or [])
        ],
    }


# ----------------------------------------------------------------------------------
# Prompts

MUSIQUE_DEFAULT = (
    "Question: {question}\n"
    "Please reason step by step. Finish with \"Answer:\" followed by the answer alone, "
    "in as few words as possible."
)
MUSIQUE_CTX_DEFAULT = (
    "{paragraphs}\n\n"
    "Answer the question using the paragraphs above.\n"
    "Question: {question}\n"
    "Please reason step by step. Finish with \"Answer:\" followed by the answer alone, "
    "in as few words as possible."
)
MUSIQUE_PAPER = (
    "{question} Final answer of this question should be in as fewer number of words as "
    "possible.\n<think>\n"
)


def format_paragraphs(paragraphs: list[dict[str, Any]]) -> str:
    """Number the MuSiQue paragraphs for the open-book prompt.

    >>> format_paragraphs([{"title": "Paris", "paragraph_text": "Capital of France."}])
    'Paragraph 1: Paris\\nCapital of France.'
    """
    return "\n\n".join(
        f"Paragraph {i}: {p.get('title', '')}\n{p.get('paragraph_text', '')}"
        for i, p in enumerate(paragraphs, 1)
    )


def musique_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_DEFAULT.format(question=doc["question"])


def musique_paper_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_PAPER.format(question=doc["question"])


def musique_ctx_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_CTX_DEFAULT.format(
        paragraphs=format_paragraphs(doc["paragraphs"]), question=doc["question"]
    )


# ----------------------------------------------------------------------------------
# Answer extraction

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


def _content_tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[^\W_]+", text.lower()) if t not in STOP_WORDS]


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
_STEM_STOP = STOP_WORDS | {"s", "t"}


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
    sentences = split_sentences(question)
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
    obj = clean_answer(rest[: cut.start()] if cut else rest)
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
    rest = clean_answer(rest[: cut.start()] if cut else rest)
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
    plain = clean_answer(sentence)
    if question:
        typed = _typed_answer(plain, question)
        if typed:
            return typed
    bolds = [m.group(1) or m.group(2) for m in _BOLD.finditer(sentence)]
    if bolds:
        last = clean_answer(bolds[-1])
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
                return _PARTICIPLE_LEAD.sub("", _HEDGE.sub("", clean_answer(right)))
            if _restates(right, question) and not _restates(left, question) and left.strip():
                return _HEDGE.sub("", clean_answer(left))
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
            if is_tentative(text, m.start()) or truncated:
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
        if in_reasoning and is_tentative(text, m.start()):
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
    if question and short == clean_answer(raw) and _restates_question(raw, question):
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
        if answer is None or answer == NO_ANSWER or answer == clean_answer(sentence):
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
    if not plain or plain.endswith("?") or ":" in plain or TENTATIVE.search(plain) or _NEGATED.search(plain):
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
        content = unwrap_tex(box.content)
        if content:
            candidates.append((box.start, content))
    if candidates:
        return _finalize(max(candidates)[1], question)
    sentences = last_sentences(text, _LOOP_WINDOW)
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
        if not looping or TENTATIVE.search(last) or last.rstrip().endswith("?"):
            return None
    sentences = [s for s in sentences if clean_answer(s) and not re.fullmatch(r"[-=_*]{3,}", s.strip())]
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
    if len(sentences) > 1 and _ANAPHORIC.match(last) and not (question and _typed_answer(clean_answer(last), question)):
        return _after_elaboration(sentences, question)
    return _finalize(last, question)


def musique_commitments(text: str, question: str = "") -> list[tuple[int, str]]:
    """Every answer a reasoning commits to explicitly, in order: "Answer:" lines, "the
    answer is X" and "X is the answer" (not hedged) and boxes, as ``(offset, answer)``,
    each reduced as :func:`musique_answer` reduces its final one.

    >>> musique_commitments("The answer is Porto. Wait, no.\\n**Answer:** Lisbon")
    [(0, 'Porto'), (31, 'Lisbon')]
    """
    text = _CODE_FENCE.sub("", text)
    raw: list[tuple[int, str]] = []
    for m in _MUSIQUE_MARKER_LINE.finditer(text):
        rest = m.group("rest").strip(" *_:")
        if rest:
            raw.append((m.start(), rest))
    for m in _MUSIQUE_PHRASE.finditer(text):
        if not is_tentative(text, m.start()) and m.end() < len(text):
            first = split_sentences(m.group("rest"))  # the phrase's own sentence only
            if first:
                raw.append((m.start(), first[0]))
    for box in find_boxed(text):
        content = unwrap_tex(box.content)
        if content:
            raw.append((box.start, content))
    found = {}
    for pos, rest in sorted(raw):
        answer = _finalize(rest, question)
        if answer and answer != NO_ANSWER:
            found.setdefault(pos, answer)  # a marker line and its phrase: one commitment
    return sorted(found.items())


# ----------------------------------------------------------------------------------
# Gold and verification


def musique_gold(doc: dict[str, Any]) -> tuple[str, list[str]]:
    """The gold answer and its aliases."""
    answer = get_field(doc, "answer")
    if answer is None:
        raise missing_gold("musique", "'answer' (plus optional 'answer_aliases')", doc)
    aliases = doc.get("answer_aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    return str(answer), [str(a) for a in aliases if a is not None]


def musique_judge(doc: dict[str, Any]) -> Judge:
    gold, aliases = musique_gold(doc)
    golds = [gold, *aliases]
    question = str(get_field(doc, "question") or "")
    return Judge(
        gold=gold,
        find=lambda text, in_reasoning: musique_answer(text, question, in_reasoning=in_reasoning),
        correct=lambda answer: exact_match(answer, golds),
        f1=lambda answer: token_f1(answer, golds),
        commitments=lambda text: musique_commitments(text, question),
    )


MUSIQUE = BenchmarkSpec(
    name="musique",
    title="MuSiQue",
    aliases=("musique_ctx", "musique_closed_book"),
    to_doc=musique_doc,
    judge=musique_judge,
    prompts={"prompt": musique_prompt, "paper_prompt": musique_paper_prompt, "ctx_prompt": musique_ctx_prompt},
    hub_path="dgslibisey/MuSiQue",
    hub_split="validation",
    local_files=("musique.jsonl",),
    # Answers that score the same vote together: after the official normalisation.
    vote_key=normalize_answer,
    kind=KNOWLEDGE,
    variants={"ctx": ("MuSiQue+ctx", CONTEXT)},
)
