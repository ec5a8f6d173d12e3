"""Table tests for ``lrm_tasks.scoring.score``: one behaviour per case.

Every response is hand-written in the style of real DeepSeek-R1-distill outputs
(long rambling reasoning, ``</think>``, a markdown summary; truncated or looping
responses that never close the reasoning; repeated boxes). Documents use the
canonical, Hugging Face Hub and original-release schemas. Each case gives the
expected strict answer, flexible answer and whether the flexible answer is correct
(``None`` = no answer).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lrm_tasks.scoring import Score, canonical_task, score, split_reasoning

# ----------------------------------------------------------------------------------
# Documents (written for these tests, in each source's schema)

AIME_HUB = {"ID": "2024-II-9", "Problem": "Find x y.", "Solution": "...", "Answer": 25}
AIME_CANON = {"doc_key": "2024-I-5", "problem": "Find the number.", "answer": "204", "solution": ""}
AIME_RELEASE = {"id": "2024-I-7", "problem": "Find m+n.", "answer": 33, "solution": "", "url": "x"}
AIME_ZERO = {"Answer": 0}

BBH_INPUT = (
    "Today, Karen went to the bakery. Between what times could they have gone?\n"
    "We know that:\nKaren woke up at 6am.\nMark saw Karen reading at the library from 6am to 2pm.\n"
    "Lisa saw Karen at the gym from 8pm to 9pm.\nThe bakery was closed after 9pm.\n"
    "Between what times could Karen have gone to the bakery?\n"
    "Options:\n(A) 8pm to 9pm\n(B) 6am to 2pm\n(C) 2pm to 8pm\n(D) 11am to 2pm"
)
BBH_HUB = {"input": BBH_INPUT, "target": "(C)"}
BBH_CANON = {
    "doc_key": "17",
    "input": BBH_INPUT,
    "target": "(C)",
    "options": {"A": "8pm to 9pm", "B": "6am to 2pm", "C": "2pm to 8pm", "D": "11am to 2pm"},
}
BBH_TARGET_A = {"input": BBH_INPUT, "target": "(A)"}

FOLIO_HUB = {
    "story_id": 7,
    "premises": "All owls are birds.\nSome birds can swim.\nHoot is an owl.",
    "conclusion": "Hoot can swim.",
    "label": "Uncertain",
    "example_id": 31,
}
FOLIO_TRUE = {"premises": "All owls are birds.\nHoot is an owl.", "conclusion": "Hoot is a bird.", "label": "True"}
FOLIO_FALSE = {"premises": "No owl is a fish.\nHoot is an owl.", "conclusion": "Hoot is a fish.", "label": "False"}
FOLIO_RELEASE = {  # v0.0 train release: premises a list, "Unknown" for Uncertain
    "premises": ["All owls are birds.", "Some birds can swim.", "Hoot is an owl."],
    "conclusion": "Hoot can swim.",
    "label": "Unknown",
}

MUSIQUE_DATE = {
    "id": "2hop__1_2",
    "question": "When did the band that recorded Blue Harbour release its first album?",
    "answer": "March 1998",
    "answer_aliases": ["1998"],
    "paragraphs": [],
}
MUSIQUE_PERSON = {
    "id": "2hop__3_4",
    "question": "Who directed the film that won the award named after the Lisbon lighthouse?",
    "answer": "Marta Reis",
    "answer_aliases": [],
    "paragraphs": [],
}
MUSIQUE_INDIA = {
    "id": "3hop__5_6",
    "question": "Which country hosts the headquarters of the cricket board named in the treaty?",
    "answer": "the country of India",
    "answer_aliases": ["IN", "in", "India", "Republic of India"],
    "paragraphs": [],
}
MUSIQUE_COUNT = {
    "id": "2hop__7_8",
    "question": "How many stations does the railway that serves Port Amber have?",
    "answer": "12",
    "answer_aliases": ["twelve"],
}

# Closed-book MuSiQue questions for the restatement / elaboration / commitment cases.
def _mq(question: str, answer: str) -> dict:
    return {"question": question, "answer": answer, "answer_aliases": []}


MQ_WHY = _mq("Why did Perrin leave the town where the author of Blue Lanterns died?", "to join the navy")
MQ_LABEL = _mq("What company is the record label of Harbour Lights Songs part of?", "Tidewater Group")
MQ_CREST = _mq("What does the crest stand for on the ships of the fleet that operates the HMS Kestrel?", "Honour and Sea")
MQ_GUILD = _mq("Who led the guild in the town that hosts the Lantern Society?", "Ada Morrow")
MQ_MOVEMENT = _mq("What movement did the priest who wanted to change the parish schools start?", "Quiet Harbour movement")
MQ_BRIDGE = _mq("When did the bridge over the Selwyn reopen?", "1921")
MQ_PAMPHLET = _mq("Where was the author of the pamphlet on the harbour strike educated?", "University of Aberdeen")
MQ_SPOUSE = _mq("Who was the spouse of the last duchess of Varna?", "Anton Vell")
MQ_FIELD = _mq("The scientist the Kessel effect is named for worked in what field?", "chemistry")
MQ_SHIELD = _mq("When did the 1961-62 league champion win the Harbour Shield?", "1961")
MQ_TONY = _mq("What did the spouse of Ilse Varga win a Tony for?", "Best Choreography in a Musical")
MQ_FOLLOW = _mq("Who did the founder of the Amber Circle follow?", "Tomas Weller")

AIME_AREA = {"problem": "A triangle has base 7 and height 12. Find the area of the triangle.", "answer": 42}
AIME_SQUARE = {"problem": "A square's side is the sum of the first ten odd numbers. Find the area of the square.", "answer": 10000}
ISM_INPUT = (
    "A faint, broad emission line comes from gas at about 8000 K. Which phase of the interstellar medium emits it?\n"
    "Options:\n(A) Cold molecular cloud\n(B) Hot ionized medium\n(C) Dense core\n(D) Warm ionized medium"
)
ISM_DOC = {"input": ISM_INPUT, "target": "(D)"}

LONG_THINKING = (
    "Okay, so I need to figure this out. Let me start by listing what I know.\n\n"
    "Hmm, wait. Let me re-check that step, because I might have made a mistake.\n\n" * 40
)


@dataclass(frozen=True)
class Case:
    id: str
    task: str
    response: str
    doc: dict
    strict: str | None
    flexible: str | None
    correct: bool  # whether the flexible answer is correct


CASES = [
    # ---------------------------------------------------------------- AIME 2024
    Case("aime_box_after_think", "aime24", LONG_THINKING + "So xy = 25.\n</think>\n\nThus $xy = \\boxed{25}$.", AIME_HUB, "25", "25", True),
    Case("aime_nested_braces", "aime24", "x</think>\n\nSo $m+n = \\boxed{\\frac{50}{2}} $ ... final \\boxed{{25}}", AIME_HUB, "25", "25", True),
    Case("aime_boxed_space_token", "aime24", "...</think>\nThe answer is \\boxed 25.", AIME_HUB, "25", "25", True),
    Case("aime_fbox", "aime24", "...</think>\n\\fbox{204}", AIME_CANON, "204", "204", True),
    Case("aime_boxed_text", "aime24", "...</think>\n\\[\\boxed{\\text{25}}\\]", AIME_HUB, "25", "25", True),
    Case("aime_leading_zeros", "aime24", "...</think>\n**Final Answer**\n\\boxed{025}", AIME_HUB, "25", "25", True),
    Case("aime_answer_is_phrase", "aime24", "...</think>\n\nTherefore, the answer is 204.", AIME_CANON, "204", "204", True),
    Case("aime_bold_answer_marker", "aime24", "...</think>\n\n**Answer:** 33", AIME_RELEASE, "33", "33", True),
    Case("aime_repeated_boxes_last_wins", "aime24", "...</think>\nFirst I got \\boxed{12}, but correcting the sign, the final answer is \\boxed{33}.", AIME_RELEASE, "33", "33", True),
    Case("aime_equation_in_box", "aime24", "...</think>\n\\boxed{m + n = 33}", AIME_RELEASE, "33", "33", True),
    Case("aime_fraction_is_wrong_not_missing", "aime24", "...</think>\n\\boxed{\\frac{8}{17}}", AIME_RELEASE, "\\frac{8}{17}", "\\frac{8}{17}", False),
    Case("aime_wrong_integer", "aime24", "...</think>\nThus, the final answer is:\n\\[\n\\boxed{1024}\n\\]", AIME_RELEASE, "1024", "1024", False),
    Case("aime_zero_answer", "aime24", "...</think>\n**Answer:** \\boxed{0}", AIME_ZERO, "0", "0", True),
    Case("aime_unclosed_truncated_no_answer", "aime24", LONG_THINKING + "- s=7: 49 in base 25 is 1C, 1+12=13 vs 7. No\n- s", AIME_HUB, None, None, False),
    Case("aime_unclosed_flexible_box_in_reasoning", "aime24", LONG_THINKING + "Thus m + n = 33.\n\n\\[\n\\boxed{33}\n\\]", AIME_RELEASE, None, "33", True),
    Case("aime_unclosed_looping_last_commit", "aime24", "**Final Answer**\n\\boxed{137}\n\\boxed{137}\n\nWait, no. The answer is 33.\n\n**Final Answer**\n\\boxed{33}\n\nAlright, I think the answer is 33", AIME_RELEASE, None, "33", True),
    Case("aime_answer_text_without_answer_falls_back", "aime24", "So the answer is \\boxed{25}.</think>\n\nI hope this helps!", AIME_HUB, None, "25", True),
    Case("aime_answer_is_question_not_commit", "aime24", "...</think>\nIs the answer 25? Let me verify the sum once more.", AIME_HUB, None, None, False),
    Case("aime_opening_think_tag", "aime24", "<think>\nLet me compute.</think>\n\\boxed{25}", AIME_HUB, "25", "25", True),
    Case("aime_last_think_close_wins", "aime24", "a</think>\\boxed{11}\nhmm, wait</think>\n\\boxed{25}", AIME_HUB, "25", "25", True),
    Case("aime_unbalanced_box_ignored", "aime24", "...</think>\nThe answer is \\boxed{25", AIME_HUB, None, None, False),
    # ---------------------------------------------------------------- BBH temporal_sequences
    # A conclusion in plain words just before a final check that never finished
    # (lrm_tasks.text.final_conclusion); intermediate results are not answers.
    Case("aime_conclusion_before_unfinished_check", "aime24", LONG_THINKING + "The base is 7 and the height is 12. So the area is 42 square units. But let me verify the base once more. The base runs from", AIME_AREA, None, "42", True),
    Case("aime_conclusion_check_cut_mid_word", "aime24", LONG_THINKING + "So the area is 42. Wait, let me double-check the hei", AIME_AREA, None, "42", True),
    Case("aime_intermediate_result_not_answer", "aime24", LONG_THINKING + "1+3+5+...+19. So the sum of the first ten odd numbers is 100. But let me check that once more: 1+3=4, 4+5", AIME_SQUARE, None, None, False),
    Case("aime_conclusion_then_moves_on", "aime24", LONG_THINKING + "So the area is 42. Now the height of the second triangle is", AIME_AREA, None, None, False),
    Case("aime_hedged_conclusion_not_answer", "aime24", LONG_THINKING + "So the area is probably 42. But let me verify the base", AIME_AREA, None, None, False),
    Case("aime_conclusion_expression_not_answer", "aime24", LONG_THINKING + "So the area is 42 + h. But let me verify h", AIME_AREA, None, None, False),
    Case("aime_box_after_conclusion_wins", "aime24", LONG_THINKING + "So the area is 40. But let me verify. Base 7, height 12, so \\boxed{42}. Hmm, let me", AIME_AREA, None, "42", True),
    Case("bbh_paraphrased_option_before_check", "bbh_temporal_sequences", LONG_THINKING + "It is faint, broad and about 8000 kelvin. So it must be a warm ionized gas. But let me double-check the temperature of", ISM_DOC, None, "(D)", True),
    Case("bbh_paraphrase_ambiguous_not_answer", "bbh_temporal_sequences", LONG_THINKING + "So it must be some ionized phase. But let me double-check the temperature of", ISM_DOC, None, None, False),
    Case("bbh_conclusion_time_range_before_check", "bbh_temporal_sequences", LONG_THINKING + "So the time she could have gone is between 2pm and 8pm. Wait, let me check Lisa's sighting again", BBH_HUB, None, "(C)", True),
    Case("bbh_intermediate_fact_not_answer", "bbh_temporal_sequences", LONG_THINKING + "So Karen is at the gym from 8pm to 9pm. But let me verify that with Lisa", BBH_HUB, None, None, False),
    Case("bbh_bold_answer_marker", "temporal_sequences", "...</think>\n\nKaren was free from 2pm to 8pm.\n\n**Answer:** (C) 2pm to 8pm", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_answer_colon_bare_letter", "bbh_temporal_sequences_lrm", "...</think>\n\nThe correct answer is (C) 2pm to 8pm.\n\nAnswer: C", BBH_CANON, "(C)", "(C)", True),
    Case("bbh_letter_paren_line", "bbh_temporal_sequences", "...</think>\n\nC) 2pm to 8pm", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_answer_is_paren", "bbh_temporal_sequences", "...</think>\nTherefore, the answer is (A).", BBH_TARGET_A, "(A)", "(A)", True),
    Case("bbh_boxed_letter", "bbh_temporal_sequences", "...</think>\n\n**Final Answer:**\n\n\\boxed{C}", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_boxed_option_text", "bbh_temporal_sequences", "...</think>\n\\boxed{2\\text{pm} \\text{ to } 8\\text{pm}}", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_option_text_only", "bbh_temporal_sequences", "...</think>\n\nKaren could have gone to the bakery between 2 PM and 8 PM.", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_lowercase_a_is_not_letter", "bbh_temporal_sequences", "...</think>\nThe answer is a time when nobody saw her, so it is impossible to say.", BBH_TARGET_A, None, None, False),
    Case("bbh_two_letters_is_no_answer", "bbh_temporal_sequences", "...</think>\n\n**Answer:** (C) 2pm to 8pm and (A) 8pm to 9pm", BBH_HUB, None, None, False),
    Case("bbh_none_of_the_above", "bbh_temporal_sequences", "...</think>\nThe correct answer is that none of the options fit.\n\nAnswer: (No provided options are correct)", BBH_HUB, None, None, False),
    Case("bbh_listing_then_marker", "bbh_temporal_sequences", "...</think>\n(A) 8pm to 9pm: at the gym.\n(B) 6am to 2pm: at the library.\n(C) 2pm to 8pm: free.\n(D) 11am to 2pm: library.\n\n**Answer:** (C)", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_restated_option_list_is_not_answer", "bbh_temporal_sequences", "...</think>\nOptions:\n(A) 8pm to 9pm\n(B) 6am to 2pm\n(C) 2pm to 8pm\n(D) 11am to 2pm\nI am not sure.", BBH_HUB, None, None, False),
    Case("bbh_option_word", "bbh_temporal_sequences", "...</think>\nHer only free window was the afternoon, making option C the correct choice.", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_index_marker", "bbh_temporal_sequences", "...</think>\n**Index:** A", BBH_TARGET_A, "(A)", "(A)", True),
    Case("bbh_letter_beats_text", "bbh_temporal_sequences", "...</think>\nShe was free from 2pm to 8pm.\n\n**Answer:** (A) 8pm to 9pm", BBH_HUB, "(A)", "(A)", False),
    Case("bbh_unclosed_short_summary", "bbh_temporal_sequences", "Karen woke at 6am. Library until 2pm, gym 8pm-9pm.\n\nTherefore, the only free window is 2pm to 8pm.\n\n**Answer:** (C) 2pm to 8pm\n```", BBH_HUB, None, "(C)", True),
    Case("bbh_unclosed_loop_truncated_marker", "bbh_temporal_sequences", LONG_THINKING + "I think the answer is (C).\n\nBut she was at the gym.\n\nI think the answer is (C).\n\nBut she was at the gym.\n\nI think the answer is (", BBH_HUB, None, "(C)", True),
    Case("bbh_unclosed_hedge_is_not_commit", "bbh_temporal_sequences", LONG_THINKING + "Maybe the answer is (A) 8pm to 9pm, but she was at the gym then.\n\nWait, let me recount the hours.", BBH_HUB, None, None, False),
    Case("bbh_unclosed_none_commit_overrides", "bbh_temporal_sequences", LONG_THINKING + "So the answer is (B).\n\nNo wait, she was at the library. Therefore, the answer is none of the above.\n\nBut the options", BBH_HUB, None, None, False),
    Case("bbh_step_heading_then_box", "bbh_temporal_sequences", "...</think>\n**Step-by-Step Answer:**\n\n- Library: 6am-2pm\n- Gym: 8pm-9pm\n\n\\boxed{C}", BBH_HUB, "(C)", "(C)", True),
    Case("bbh_answer_part_empty_falls_back", "bbh_temporal_sequences", "So the answer is (C).\n</think>\n\n", BBH_HUB, None, "(C)", True),
    # ---------------------------------------------------------------- FOLIO
    Case("folio_answer_marker_false", "folio", LONG_THINKING + "</think>\n\nSince no owl is a fish, Hoot is not a fish.\n\n**Answer:** The conclusion is false.", FOLIO_FALSE, "False", "False", True),
    Case("folio_conclusion_is_true", "folio_lrm", "...</think>\n\nThe conclusion is true based on the logical deductions from the premise.", FOLIO_TRUE, "True", "True", True),
    Case("folio_not_enough_information", "folio", "...</think>\n\nWe do not know whether Hoot is one of the birds that swim. Therefore, there isn't enough information to confirm the conclusion.", FOLIO_HUB, "Uncertain", "Uncertain", True),
    Case("folio_cannot_be_determined", "folio", "...</think>\nThe conclusion cannot be determined from the premises.", FOLIO_HUB, "Uncertain", "Uncertain", True),
    Case("folio_unknown_word", "folio", "...</think>\n**Answer:** Unknown", FOLIO_RELEASE, "Uncertain", "Uncertain", True),
    Case("folio_release_unknown_gold", "folio", "...</think>\n\nAnswer: Uncertain", FOLIO_RELEASE, "Uncertain", "Uncertain", True),
    Case("folio_boxed", "folio", "...</think>\n\\boxed{\\text{False}}", FOLIO_FALSE, "False", "False", True),
    Case("folio_not_necessarily_true", "folio", "...</think>\nSome birds swim, but Hoot need not be one of them, so the conclusion is not necessarily true.", FOLIO_HUB, "Uncertain", "Uncertain", True),
    Case("folio_not_true_is_false", "folio", "...</think>\nGiven that no owl is a fish, the claim that Hoot is a fish is not true.", FOLIO_FALSE, "False", "False", True),
    Case("folio_main_clause_decides", "folio", "...</think>\nThe conclusion is **true** because the premise that owls are fish is false.", FOLIO_TRUE, "True", "True", True),
    Case("folio_final_marker_beats_earlier", "folio", "...</think>\nAt first the conclusion seems true.\n\n**Answer:** Uncertain.", FOLIO_HUB, "Uncertain", "Uncertain", True),
    Case("folio_cannot_be_confirmed", "folio", "...</think>\nWhether Hoot swims cannot be confirmed from the given premises.", FOLIO_HUB, "Uncertain", "Uncertain", True),
    Case("folio_restated_conclusion_is_true", "folio", "...</think>\n\n**Final Answer:** Hoot is a bird.", FOLIO_TRUE, "True", "True", True),
    Case("folio_no_verdict_no_answer", "folio", "...</think>\n\nLet me summarise the premises: owls are birds and Hoot is an owl.", FOLIO_HUB, None, None, False),
    Case("folio_answer_text_empty_reasoning_marker", "folio", "Hmm. So, the conclusion is false.\n</think>\n", FOLIO_FALSE, None, "False", True),
    Case("folio_unclosed_no_strict", "folio", LONG_THINKING + "So the conclusion is uncertain. Wait, but maybe", FOLIO_HUB, None, "Uncertain", True),
    Case("folio_contradicts_false", "folio", "...</think>\nThe conclusion that Hoot is a fish is **false**. The premises rule it out.", FOLIO_FALSE, "False", "False", True),
    # ---------------------------------------------------------------- MuSiQue
    Case("musique_answer_marker", "musique", "...</think>\n\nThe band Blue Harbour released its debut in March 1998.\n\n**Answer:** March 1998", MUSIQUE_DATE, "March 1998", "March 1998", True),
    Case("musique_alias_year", "musique_lrm", "...</think>\nFinal answer: 1998", MUSIQUE_DATE, "1998", "1998", True),
    Case("musique_when_sentence_to_date", "musique", "...</think>\n\nThe band that recorded Blue Harbour released its first album in 1998.", MUSIQUE_DATE, "1998", "1998", True),
    Case("musique_bold_span", "musique", "...</think>\n\nThe film was directed by **Marta Reis**.", MUSIQUE_PERSON, "Marta Reis", "Marta Reis", True),
    Case("musique_copula_split", "musique", "...</think>\n\nThe director of the film that won the award is Marta Reis.", MUSIQUE_PERSON, "Marta Reis", "Marta Reis", True),
    Case("musique_boxed_text", "musique", "...</think>\n\\[\n\\boxed{\\text{Marta Reis}}\n\\]", MUSIQUE_PERSON, "Marta Reis", "Marta Reis", True),
    Case("musique_no_substring_alias", "musique", "...</think>\n**Answer:** Rome, in central Italy", MUSIQUE_INDIA, "Rome, in central Italy", "Rome, in central Italy", False),
    Case("musique_alias_exact", "musique", "...</think>\n**Answer:** India.", MUSIQUE_INDIA, "India", "India", True),
    Case("musique_refusal", "musique", "I am sorry, I cannot answer that question. I am an AI assistant.", MUSIQUE_PERSON, None, None, False),
    Case("musique_refusal_in_answer_no_fallback", "musique", "The answer is Marta Reis.\n</think>\n\n**Answer:** It cannot be determined from the given information.", MUSIQUE_PERSON, None, None, False),
    Case("musique_restated_question", "musique", "...</think>\n\nThe film that won the award named after the Lisbon lighthouse was directed.", MUSIQUE_PERSON, None, None, False),
    Case("musique_unclosed_short_answer", "musique", "The railway that serves Port Amber has 12 stations.\n**Answer:** 12", MUSIQUE_COUNT, None, "12", True),
    Case("musique_unclosed_long_deliberation_no_answer", "musique", LONG_THINKING + "Wait, maybe I should think about the lighthouse award again", MUSIQUE_PERSON, None, None, False),
    Case("musique_unclosed_loop_commits", "musique", LONG_THINKING + "The film was directed by Marta Reis.\n\nThe film was directed by Marta Reis.\n\nThe film was directed by", MUSIQUE_PERSON, None, "Marta Reis", True),
    Case("musique_abbreviation_not_sentence_end", "musique", "...</think>\n**Answer:** John F. Kennedy", MUSIQUE_PERSON, "John F. Kennedy", "John F. Kennedy", False),
    Case("musique_code_fence_ignored", "musique", "...</think>\nThe railway has **12** stations.\n```json\n{\"stations\": 12}\n```", MUSIQUE_COUNT, "12", "12", True),
    Case("musique_hedge_dropped", "musique", "...</think>\n\nThe railway that serves Port Amber has approximately 12 stations.", MUSIQUE_COUNT, "12", "12", True),
    # restatements: every content word (lightly stemmed: left/leave) is the question's -> no answer
    Case("musique_restatement_irregular_verb", "musique", "...</think>\n\nPerrin left the town where the author of Blue Lanterns died.", MQ_WHY, None, None, False),
    Case("musique_restatement_linking_verb_bold", "musique", "Harbour Lights Songs is associated with the label **Harbour Lights Songs**.", MQ_LABEL, None, None, False),
    Case("musique_restatement_nearly_all", "musique", "...</think>\n\nThe fleet oversees the ships of the HMS Kestrel.", MQ_CREST, None, None, False),
    Case("musique_restatement_new_last_word_kept", "musique", "...</think>\n\nThe scientist the Kessel effect is named for worked in chemistry.", MQ_FIELD, "chemistry", "chemistry", True),
    Case("musique_repeated_year_is_new", "musique", "...</think>\n\n**Answer:** The 1961-62 league champion won the Harbour Shield in 1961.", MQ_SHIELD, "1961", "1961", True),
    Case("musique_restated_year_no_answer", "musique", "...</think>\n\nThe 1961-62 league champion won the Harbour Shield.", MQ_SHIELD, None, None, False),
    Case("musique_possessive_names_nobody", "musique", "The spouse of the last duchess of Varna was her husband.", MQ_SPOUSE, None, None, False),
    # a restated opening, or the question's own verb, points at the answer
    Case("musique_after_restated_opening", "musique", "...</think>\n\nThe spouse of Ilse Varga won a Tony for Best Choreography in a Musical.", MQ_TONY, "Best Choreography in a Musical", "Best Choreography in a Musical", True),
    Case("musique_object_of_question_verb", "musique", "...</think>\n\nThe founder of the Amber Circle followed Tomas Weller, the poet who wrote Night Ferries.", MQ_FOLLOW, "Tomas Weller", "Tomas Weller", True),
    # an elaboration ("It was ...", "He wanted ...") is never the answer
    Case("musique_elaboration_last_no_answer", "musique", "...</think>\n\nThe Lantern Society was founded in Dorvale in 1842 by a group of merchants, as a charitable club for sailors' families. It was one of many such clubs that appeared along the coast during that century.", MQ_GUILD, None, None, False),
    Case("musique_elaboration_answer_in_statement", "musique", "The man in question is probably Anselm Hart, who started the Quiet Harbour movement. He wanted to change how the parish ran its schools.", MQ_MOVEMENT, None, "the Quiet Harbour movement", True),
    Case("musique_pronoun_naming_is_answer", "musique", "...</think>\n\nThe award went to a film by a Portuguese director. Her name is Marta Reis.", MUSIQUE_PERSON, "Marta Reis", "Marta Reis", True),
    Case("musique_elaboration_with_date_is_answer", "musique", "...</think>\nThe bridge over the Selwyn was rebuilt after the flood. It reopened in 1921.", MQ_BRIDGE, "1921", "1921", True),
    Case("musique_unclosed_hedged_names_nothing", "musique", "The author of the pamphlet on the harbour strike was likely someone familiar with local unions. They may have studied law or economics, but it is also possible they were self-taught. Their experience would have helped them write about the strike's effect on the town.", MQ_PAMPHLET, None, None, False),
    # commitments in the reasoning: explicit ones only
    Case("musique_x_is_the_answer_in_reasoning", "musique", "The award list is long. So Marta Reis is the answer.\n</think>\n\n", MUSIQUE_PERSON, None, "Marta Reis", True),
    Case("musique_x_is_the_answer_in_answer_text", "musique", "...</think>\n\nI think Marta Reis is the correct answer.", MUSIQUE_PERSON, "Marta Reis", "Marta Reis", True),
    Case("musique_unclosed_hedged_x_is_the_answer", "musique", LONG_THINKING + "Maybe Marta Reis is the answer, but I am not sure.\n\nLet me recall the award list", MUSIQUE_PERSON, None, None, False),
    Case("musique_unclosed_final_bold_commits", "musique", LONG_THINKING + "So the film was directed by **Marta Reis**.", MUSIQUE_PERSON, None, "Marta Reis", True),
    Case("musique_unclosed_final_short_phrase_commits", "musique", LONG_THINKING + "Marta Reis.", MUSIQUE_PERSON, None, "Marta Reis", True),
    Case("musique_unclosed_last_statement_not_commitment", "musique", LONG_THINKING + "The award was created by the Lisbon city council in 1990.", MUSIQUE_PERSON, None, None, False),
    Case("musique_question_is_not_answer", "musique", "Marta Reis is the answer.</think>\n\nCould the director be Marta Reis?", MUSIQUE_PERSON, None, "Marta Reis", True),
]


def test_table_is_large_and_covers_every_task() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    tasks = {canonical_task(c.task) for c in CASES}
    assert tasks == {"aime24", "bbh_temporal_sequences", "folio", "musique"}
    assert any(c.strict is None for c in CASES) and any(c.flexible is None for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_score_table(case: Case) -> None:
    result = score(case.task, case.response, case.doc)
    assert isinstance(result, Score)
    assert (result.answer_strict, result.answer_flexible) == (case.strict, case.flexible)
    assert result.correct_flexible is case.correct
    expected_strict_correct = case.correct if case.strict == case.flexible else False
    assert result.correct_strict is expected_strict_correct
    assert result.no_answer_strict is (case.strict is None)
    assert result.no_answer_flexible is (case.flexible is None)
    if result.answer_strict is not None:
        assert result.think_closed
    is_musique = canonical_task(case.task) == "musique"
    assert (result.f1_strict is not None) is is_musique
    assert (result.f1_flexible is not None) is is_musique


# ----------------------------------------------------------------------------------
# The split, the task names, the documents


def test_split_keeps_response_and_partitions_at_last_delimiter() -> None:
    response = "<think>\nfirst</think>draft</think>\nfinal"
    reasoning, answer, closed = split_reasoning(response)
    assert (reasoning, answer, closed) == ("\nfirst</think>draft", "\nfinal", True)
    result = score("aime24", response, AIME_HUB)
    assert (result.reasoning, result.answer_text) == (reasoning, answer)


def test_custom_think_end() -> None:
    result = score("aime24", "thinking</reasoning>\\boxed{25}", AIME_HUB, think_end="</reasoning>")
    assert result.think_closed and result.answer_strict == "25"
    default = score("aime24", "thinking</reasoning>\\boxed{25}", AIME_HUB)
    assert not default.think_closed and default.answer_strict is None


def test_reopened_think_after_close_is_not_answer() -> None:
    result = score("aime24", "a</think>\n<think>\nstill thinking \\boxed{25}", AIME_HUB)
    assert result.think_closed and result.answer_strict is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("aime24_lrm", "aime24"),
        ("aime24_lrm_paper", "aime24"),
        ("bbh_temporal_sequences_lrm", "bbh_temporal_sequences"),
        ("temporal_sequences", "bbh_temporal_sequences"),
        ("folio_lrm", "folio"),
        ("musique_lrm", "musique"),
        ("musique_ctx_lrm", "musique"),
        ("MuSiQue", "musique"),
    ],
)
def test_canonical_task(name: str, expected: str) -> None:
    assert canonical_task(name) == expected


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: .*aime24.*folio.*musique"):
        canonical_task("gsm8k_lrm")


@pytest.mark.parametrize(
    ("task", "doc", "fields"),
    [
        ("aime24", {"problem": "p"}, "Answer"),
        ("bbh_temporal_sequences", {"input": BBH_INPUT}, "target"),
        ("folio", {"premises": "p", "conclusion": "c"}, "label"),
        ("musique", {"question": "q", "answer_aliases": ["x"]}, "answer"),
    ],
)
def test_doc_without_gold_raises_naming_fields(task: str, doc: dict, fields: str) -> None:
    with pytest.raises(ValueError, match=fields):
        score(task, "anything</think>\\boxed{1}", doc)


def test_gold_forms_are_normalised() -> None:
    assert score("aime24", "</think>\\boxed{25}", {"answer": "025"}).correct_strict
    assert score("folio", "</think>Answer: True", {"label": True}).correct_strict
    assert score("bbh_temporal_sequences", "</think>Answer: C", {"input": BBH_INPUT, "target": "C"}).gold == "(C)"


def test_musique_f1_uses_best_alias() -> None:
    result = score("musique", "</think>\n**Answer:** Republic of India today", MUSIQUE_INDIA)
    assert not result.correct_strict
    # tokens "republic of india today" vs alias "republic of india": P = 3/4, R = 1
    assert result.f1_strict == pytest.approx(6 / 7)


@pytest.mark.parametrize("bad", [None, 42, b"bytes"])
def test_non_string_response_never_raises(bad: object) -> None:
    result = score("folio", bad, FOLIO_HUB)  # type: ignore[arg-type]
    assert result.answer_strict is None or isinstance(result.answer_strict, str)


@pytest.mark.parametrize("module_name", ["lrm_tasks.scoring", "lrm_tasks.text", "lrm_tasks.benchmarks", "lrm_tasks.benchmarks.spec", "lrm_tasks.benchmarks.aime", "lrm_tasks.benchmarks.bbh_temporal", "lrm_tasks.benchmarks.folio", "lrm_tasks.benchmarks.musique", "lrm_tasks.metrics"])
def test_module_doctests(module_name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
