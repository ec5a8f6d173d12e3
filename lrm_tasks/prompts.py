"""Prompts: our defaults, and the paper's exact ones.

Defaults follow DeepSeek-R1's usage notes: no system prompt, the instruction inside the
user turn, no ``<think>`` tag of our own, so the same text works raw and under
``--apply_chat_template`` (the model's template adds its own thinking prefix).

The ``paper`` prompts are verbatim from the paper's code
(psunlpgroup/Compression-Effects@dd5ed49, ``compute_u.py`` lines 38-63): they are used
without a chat template and end with ``<think>\\n``, so responses start inside the
reasoning and only ever contain ``</think>``.
"""

from __future__ import annotations

from typing import Any

# ----------------------------------------------------------------- default prompts

AIME_DEFAULT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

BBH_DEFAULT = (
    "{input}\n"
    "Please reason step by step. Finish with the letter of the correct option, "
    'in the form "Answer: (X)".'
)

FOLIO_DEFAULT = (
    "Premises:\n{premises}\n\n"
    "Conclusion: {conclusion}\n\n"
    "Based only on the premises, is the conclusion True, False, or Uncertain? "
    'Please reason step by step. Finish with "Answer: True", "Answer: False" or "Answer: Uncertain".'
)

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

# ------------------------------------------------------------ the paper's prompts

AIME_PAPER = "{problem}\n<think>\n"
FOLIO_PAPER = (
    "Use logical deductions to determine whether the provided conclusion is true, false, or "
    "uncertain based on premise. Consider all relevant information to reach a logical "
    "conclusion.\n\n*******\nPremise: {premises}\n*******\n\n*******\nConclusion: "
    "{conclusion}\n*******<think>\n"
)
BBH_PAPER = (
    "Use the timeline provided and answer step by step. Finally give the index (the letter) "
    "of the actual correct answer.\n{input}\n<think>\n"
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


def aime24_prompt(doc: dict[str, Any]) -> str:
    return AIME_DEFAULT.format(problem=doc["problem"])


def aime24_paper_prompt(doc: dict[str, Any]) -> str:
    return AIME_PAPER.format(problem=doc["problem"])


def bbh_temporal_sequences_prompt(doc: dict[str, Any]) -> str:
    return BBH_DEFAULT.format(input=doc["input"])


def bbh_temporal_sequences_paper_prompt(doc: dict[str, Any]) -> str:
    return BBH_PAPER.format(input=doc["input"])


def folio_prompt(doc: dict[str, Any]) -> str:
    return FOLIO_DEFAULT.format(premises=doc["premises"], conclusion=doc["conclusion"])


def folio_paper_prompt(doc: dict[str, Any]) -> str:
    return FOLIO_PAPER.format(premises=doc["premises"], conclusion=doc["conclusion"])


def musique_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_DEFAULT.format(question=doc["question"])


def musique_paper_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_PAPER.format(question=doc["question"])


def musique_ctx_prompt(doc: dict[str, Any]) -> str:
    return MUSIQUE_CTX_DEFAULT.format(
        paragraphs=format_paragraphs(doc["paragraphs"]), question=doc["question"]
    )
