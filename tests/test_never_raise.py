"""The token hook and the records path never raise on a response (hypothesis).

``lrm_tasks.tokens.TokenCounter`` and every benchmark's lm-eval filters and
``process_results`` (with a records sink, as an evaluation runs them) get arbitrary
responses: any code point (lone surrogates, control and right-to-left characters),
fragments of real and broken answers (nested, unbalanced and repeated ``<think>`` tags,
unbalanced ``\\boxed{``), and backend facts (token counts, finish reasons, errors). The
scorers themselves are covered by tests/test_scoring_properties.py.

Runs are derandomized (a fixed seed) and bounded (``DEFAULT_EXAMPLES`` per test) for CI.
The long local run (at least 100,000 examples per task and property):

    LRM_HYPOTHESIS_EXAMPLES=100000 .venv/bin/python -m pytest tests/test_never_raise.py -q -p no:cacheprovider
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrm_tasks import data, harness, records
from lrm_tasks.text import Generation
from lrm_tasks.tokens import BACKEND, RETOKENIZED, TokenCounter

DEFAULT_EXAMPLES = 200  # per test and task: seconds in CI
EXAMPLES = int(os.environ.get("LRM_HYPOTHESIS_EXAMPLES", DEFAULT_EXAMPLES))
SETTINGS = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BENCHMARKS = ["aime24", "bbh_temporal_sequences", "folio", "musique"]
SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lrm_tasks", "samples")
MEGABYTE = 1 << 20

ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)
FRAGMENTS = [
    "<think>", "</think>", "<think>\n", "</think>\n\n", "</think></think>", "<think><think>", "</thi", "nk>",
    "\\boxed{", "\\boxed{25}", "\\boxed{{2}", "}}", "}", "{", "\\fbox{", "\\text{", "$", "The answer is ",
    "(A)", "(B)", "(C) 2pm to 8pm", "True", "False", "Uncertain", "Unknown", "1998", "025", "\n", "\r\n",
    "\u202e", "\u200f", "\u202d", "\ufeff", "\ud800", "\udfff", "\x00", "\x07", "\x1b[0m", "\u0663", "مرحبا",
    "𝟐𝟓", "\t", " ", "",
]
STRUCTURED = st.lists(st.one_of(st.sampled_from(FRAGMENTS), ANY_TEXT.map(lambda t: t[:30])), max_size=30).map("".join)
TEXTS = st.one_of(ANY_TEXT, STRUCTURED)
FINISH = st.one_of(st.none(), st.sampled_from(["stop", "length", "abort"]), ANY_TEXT.map(lambda t: t[:10]))


@st.composite
def responses(draw) -> str:
    """A plain string, or a Generation with arbitrary backend facts (or an error)."""
    text = draw(TEXTS)
    if draw(st.booleans()):
        return text
    error = draw(st.one_of(st.none(), ANY_TEXT.map(lambda t: "RuntimeError: " + t[:50])))
    return Generation(
        "" if error else text,
        generated_tokens=draw(st.one_of(st.none(), st.integers(0, 10**7))),
        finish_reason=draw(FINISH),
        error=error,
    )


@cache
def tokenizer():
    from helpers.tiny_models import build_tiny_tokenizer

    return build_tiny_tokenizer(tempfile.mkdtemp(prefix="lrm_tok_"))


@cache
def doc(benchmark: str) -> dict:
    return data.load_docs(benchmark, data_dir=SAMPLES)[0]


def check_counts(response, counts) -> None:
    fields = (counts.reasoning_tokens, counts.answer_tokens, counts.total_tokens)
    assert all(v is None or (isinstance(v, int) and v >= 0) for v in fields)
    if None not in fields:
        assert counts.reasoning_tokens + counts.answer_tokens == counts.total_tokens
    assert counts.count_source in (BACKEND, RETOKENIZED, None)
    assert counts.truncated in (True, False, None)
    if getattr(response, "error", None):
        assert fields == (None, None, None) and counts.count_source is None
    elif getattr(response, "generated_tokens", None) is not None:
        assert counts.count_source == BACKEND and counts.total_tokens == response.generated_tokens
    json.dumps(counts.as_dict(), ensure_ascii=True)


@pytest.mark.parametrize("with_tokenizer", [True, False], ids=["tokenizer", "no-tokenizer"])
@SETTINGS
@given(batch=st.lists(responses(), min_size=1, max_size=6), budget=st.one_of(st.none(), st.integers(1, 64)),
       think_end=st.sampled_from(["</think>", "</reasoning>", "\ud800"]))
def test_token_counter_never_raises(with_tokenizer, batch, budget, think_end):
    counter = TokenCounter(tokenizer() if with_tokenizer else None)
    counts = counter.count(batch, think_end=think_end, max_gen_toks=budget)
    assert len(counts) == len(batch)
    for response, c in zip(batch, counts):
        check_counts(response, c)
    # The memo changes nothing: one by one, and again, the same counts.
    assert [counter.count([r], think_end=think_end, max_gen_toks=budget)[0] for r in batch] == counts
    assert TokenCounter(tokenizer() if with_tokenizer else None).count(batch, think_end=think_end,
                                                                         max_gen_toks=budget) == counts


def run_harness(benchmark: str, resps: list, with_tokenizer: bool = True):
    """What lm-eval does with one document's k responses: both filters, then
    process_results per filter, the strict one feeding the records sink."""
    sunk: list[dict] = []
    previous = records.set_context(records.RunContext(
        counter=TokenCounter(tokenizer() if with_tokenizer else None), model="m",
        max_gen_toks={benchmark: 32}, sink=sunk.append,
    ))
    try:
        d = doc(benchmark)
        strict = harness.filter_responses(benchmark, harness.STRICT, [resps], [d])[0]
        flexible = harness.filter_responses(benchmark, harness.FLEXIBLE, [resps], [d])[0]
        metrics = [harness.process_results(benchmark, d, [strict], task_name=f"{benchmark}_lrm"),
                   harness.process_results(benchmark, d, [flexible], task_name=f"{benchmark}_lrm")]
    finally:
        records.set_context(previous)
    return metrics, sunk


@pytest.mark.parametrize("benchmark", BENCHMARKS)
@SETTINGS
@given(resps=st.lists(responses(), min_size=1, max_size=4))
def test_filters_process_results_and_records_never_raise(benchmark, resps):
    from lrm_backends.run.recording import _dumps

    metrics, sunk = run_harness(benchmark, resps)
    for m in metrics:
        assert all(isinstance(v, float) and math.isfinite(v) for v in m.values()), m
        for rate in ("exact_match", "no_answer", "truncated", "pass@k", "maj@k"):
            assert rate not in m or 0.0 <= m[rate] <= 1.0
    assert [r["repeat"] for r in sunk] == list(range(len(resps)))  # strict filter only
    for response, record in zip(resps, sunk):
        back = json.loads(_dumps(record))  # writable, as the recorder writes it
        # JSON reads an escaped surrogate pair back as one character: only such texts change.
        assert back == record or _has_surrogates(record["response"]) or _has_surrogates(record["error"] or "")
        assert json.loads(_dumps(back)) == back
        assert record["response"] == str(response)
        assert record["error"] == getattr(response, "error", None)
        if record["error"]:
            assert record["answer_strict"] is None and record["answer_flexible"] is None
            assert record["total_tokens"] is None and not record["correct_strict"]
        if record["answer_strict"] is None:
            assert not record["correct_strict"]


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


MEGABYTE_RESPONSES = {
    "repeated text": "Wait, let me check. " * (MEGABYTE // 20),
    "unclosed boxes": "\\boxed{" * (MEGABYTE // 7),
    "many closings": "</think>" * (MEGABYTE // 8),
    "nested tags": ("<think>" * 1000 + "x" + "</think>" * 1000) * (MEGABYTE // 15000),
    "surrogates and controls": "\ud800\x00\u202e{" * (MEGABYTE // 4),
}


@pytest.mark.parametrize("name", list(MEGABYTE_RESPONSES))
def test_a_megabyte_response_goes_through_in_seconds(name):
    text = MEGABYTE_RESPONSES[name]
    start = time.perf_counter()
    for benchmark in BENCHMARKS:
        _, sunk = run_harness(benchmark, [text, Generation(text, generated_tokens=32768, finish_reason="length")])
        assert len(sunk) == 2 and sunk[1]["truncated"] is True
    assert time.perf_counter() - start < 60, name


@SETTINGS
@given(response=responses())
def test_the_resume_cache_stores_any_response_unchanged(response):
    from lrm_backends.run.cache import Slot, _dumps, _entry, _from_entry

    slot = Slot(0, None, "k", 0, "aime24_lrm", "d", True, seed=1)
    back = _from_entry("generate_until", json.loads(_dumps(_entry("generate_until", slot, response))))
    # As JSON reads it (a surrogate pair written as two code points becomes one character);
    # ResilientLM hands this same form to the run that generated it.
    assert str(back) == json.loads(_dumps(str(response)))
    assert _dumps(str(back)) == _dumps(json.loads(_dumps(str(response))))
    assert back.generated_tokens == getattr(response, "generated_tokens", None)
    assert back.finish_reason == getattr(response, "finish_reason", None)
