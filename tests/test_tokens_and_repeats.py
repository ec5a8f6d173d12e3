"""Token counting, per-document metrics over k repeats, and the records sink."""

from __future__ import annotations

import pytest

from lrm_tasks import harness, records
from lrm_tasks.repeats import majority_index, pass_at_k
from lrm_tasks.text import Generation
from lrm_tasks.tokens import TokenCounter

AIME_DOC = {"doc_key": "2024-I-1", "problem": "p", "answer": "25", "solution": ""}


@pytest.fixture()
def tokenizer(tiny_hf_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_hf_dir)


def test_retokenized_counts_split_at_the_delimiter(tokenizer):
    counter = TokenCounter(tokenizer)
    closed, open_ = "Let me think. 5*5=25.</think>The answer is \\boxed{25}.", "Let me think and think"
    c, o = counter.count([closed, open_], max_gen_toks=10_000)
    n = lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert (c.reasoning_tokens, c.answer_tokens) == (n("Let me think. 5*5=25.</think>"), n("The answer is \\boxed{25}."))
    assert c.total_tokens == c.reasoning_tokens + c.answer_tokens and c.count_source == "retokenized"
    assert (o.reasoning_tokens, o.answer_tokens, o.total_tokens) == (n(open_), 0, n(open_))
    assert c.truncated is False and c.finish_reason is None


def test_backend_counts_win_and_unknown_is_none_not_zero(tokenizer):
    gen = Generation("thinking</think>42", generated_tokens=50, finish_reason="length")
    (counts,) = TokenCounter(tokenizer).count([gen])
    assert (counts.total_tokens, counts.count_source, counts.truncated) == (50, "backend", True)
    assert counts.reasoning_tokens + counts.answer_tokens == 50
    (unknown,) = TokenCounter().count(["plain text, no backend facts, no tokenizer"])
    assert unknown.total_tokens is None and unknown.reasoning_tokens is None and unknown.truncated is None
    (budget,) = TokenCounter(tokenizer).count(["a b c d e f g h"], max_gen_toks=3)
    assert budget.truncated is True  # no finish reason: the budget was used up


def test_counting_is_batched_and_memoised(tokenizer, monkeypatch):
    counter = TokenCounter(tokenizer)
    calls = []
    encode = counter._encode
    monkeypatch.setattr(counter, "_encode", lambda texts: calls.append(len(texts)) or encode(texts))
    counter.count(["a</think>b", "c", "d"])
    counter.count(["a</think>b", "c", "d", "e"])
    assert calls == [6, 2]  # two segments per new response, one call per batch


def k_responses(*answers):
    """Closed-reasoning AIME responses with the given boxed answers (None: no answer)."""
    return [[f"think {i}</think>" + (f"\\boxed{{{a}}}" if a is not None else "I give up.") for i, a in enumerate(answers)]]


def test_k4_avg_pass_maj_match_hand_computed_values():
    # 4 samples, gold 25: one correct, two votes for 7, one no-answer.
    resps = k_responses("7", "25", None, "7")
    (strict,) = harness.aime24_strict(resps, [AIME_DOC])
    m = harness.aime24_process_results(AIME_DOC, [strict])
    assert m["exact_match"] == 0.25  # avg@4 = 1/4
    assert m["pass@k"] == 1.0  # 1 - C(3,4)/C(4,4) = 1
    assert m["maj@k"] == 0.0  # majority answer 7 is wrong; the no-answer does not vote
    assert m["no_answer"] == 0.25
    # Two correct of four with a tie 25 vs 7: the tie goes to the answer seen first.
    (strict,) = harness.aime24_strict(k_responses("25", "7", "7", "25"), [AIME_DOC])
    m = harness.aime24_process_results(AIME_DOC, [strict])
    assert (m["exact_match"], m["pass@k"], m["maj@k"]) == (0.5, 1.0, 1.0)
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    assert majority_index([None, None, None]) is None


def test_tokens_of_correct_and_incorrect_and_records_sink():
    gens = [[Generation("r</think>\\boxed{25}", generated_tokens=10, finish_reason="stop"),
             Generation("rrrr</think>\\boxed{3}", generated_tokens=30, finish_reason="stop"),
             Generation("rrrrrrrr", generated_tokens=50, finish_reason="length")]]
    seen: list[dict] = []
    previous = records.set_context(records.RunContext(model="m", sink=seen.append))
    try:
        (strict,) = harness.aime24_strict(gens, [AIME_DOC])
        m = harness.process_results("aime24", AIME_DOC, [strict], task_name="aime24_lrm_paper")
        (flexible,) = harness.aime24_flexible(gens, [AIME_DOC])
        harness.process_results("aime24", AIME_DOC, [flexible], task_name="aime24_lrm_paper")
    finally:
        records.set_context(previous)
    assert m["total_tokens"] == 30 and m["truncated"] == pytest.approx(1 / 3)
    assert (m["tokens_correct"], m["tokens_incorrect"]) == (10, 40)
    assert len(seen) == 3  # strict call only: one record per response, not per filter
    assert [r["repeat"] for r in seen] == [0, 1, 2]
    assert seen[2] | {"response": None} == seen[2] | {
        "task": "aime24_lrm_paper", "benchmark": "aime24", "doc_key": "2024-I-1", "model": "m",
        "total_tokens": 50, "reasoning_tokens": 50, "answer_tokens": 0, "count_source": "backend",
        "finish_reason": "length", "truncated": True, "think_closed": False,
        "answer_strict": None, "answer_flexible": None, "correct_strict": False, "response": None,
    }


def test_unknown_counts_leave_token_metrics_out():
    (strict,) = harness.aime24_strict([["x</think>\\boxed{25}"]], [AIME_DOC])
    m = harness.aime24_process_results(AIME_DOC, [strict])
    assert m == {"exact_match": 1.0, "no_answer": 0.0}


def test_each_response_is_scored_once_across_both_filters(monkeypatch):
    """lm-eval runs the strict and the flexible filter over the same responses: the
    second must reuse the first one's score, and both report the same verdicts."""
    calls = []
    real_score = harness.score
    monkeypatch.setattr(harness, "score", lambda *a, **kw: calls.append(a[1]) or real_score(*a, **kw))
    docs = [AIME_DOC, {**AIME_DOC, "doc_key": "2024-I-2", "answer": "7"}]
    resps = [k_responses("25", None)[0], k_responses("7", "3", "7")[0]]
    previous = records.set_context(records.RunContext())
    try:
        strict = harness.aime24_strict(resps, docs)
        flexible = harness.aime24_flexible(resps, docs)
        metrics = [harness.aime24_process_results(d, [s]) for d, s in zip(docs, strict)]
        metrics += [harness.aime24_process_results(d, [f]) for d, f in zip(docs, flexible)]
    finally:
        records.set_context(previous)
    assert sorted(calls) == sorted(r for rs in resps for r in rs)  # 5 responses, 5 scorings
    assert [[a.score for a in row] for row in strict] == [[a.score for a in row] for row in flexible]
    assert [m["exact_match"] for m in metrics] == [0.5, 2 / 3, 0.5, 2 / 3]
    # A new document object with the same text is scored afresh (no stale verdict).
    again = harness.aime24_flexible([resps[0]], [{**AIME_DOC, "answer": "3"}])
    assert [a.correct for a in again[0]] == [False, False] and len(calls) == 7
