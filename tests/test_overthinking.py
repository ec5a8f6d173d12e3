"""Overthinking measures: committed answers per benchmark, first answer, switches, loops,
and the per-response records of a real lm_eval run (replayed responses)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lrm_tasks.benchmarks import get_benchmark
from lrm_tasks.overthinking import (
    LOOP_COVERAGE,
    LOOP_MIN_WORDS,
    answer_trace,
    is_looping,
    loop_coverage,
    measure,
    share_after,
)
from lrm_tasks.scoring import score

BBH_INPUT = (
    "Between what times could Karen have gone to the bakery?\n"
    "Options:\n(A) 8pm to 9pm\n(B) 6am to 2pm\n(C) 2pm to 8pm\n(D) 11am to 2pm"
)


def _measure(task: str, response: str, doc: dict):
    spec = get_benchmark(task)
    s = score(task, response, doc)
    return s, measure(s.reasoning, response, s.answer_flexible, spec.judge(doc).commitments, spec.vote_key)


# ----------------------------------------------------------------- commitments and trace


@pytest.mark.parametrize(
    ("task", "doc", "reasoning", "expected"),
    [
        ("aime24", {"answer": 25}, "So \\boxed{12}. No wait, the answer is 25. Check: \\boxed{025}.", ["12", "25", "25"]),
        ("aime24", {"answer": 25}, "Maybe 12, maybe 25; I am not sure yet.", []),
        ("bbh_temporal_sequences", {"input": BBH_INPUT, "target": "(C)"},
         "So the answer is (A). Wait, perhaps the answer is (B), no.\nThe answer is (C).", ["(A)", "(C)"]),
        ("folio", {"label": "False", "conclusion": "Hoot can swim."},
         "So the conclusion is true. Hmm. Actually, the conclusion is false.", ["True", "False"]),
        ("musique", {"question": "Where was the author born?", "answer": "Lisbon"},
         "The answer is Porto. Wait, no.\n**Answer:** Lisbon", ["Porto", "Lisbon"]),
    ],
)
def test_each_benchmark_lists_its_committed_answers_in_order(task, doc, reasoning, expected):
    found = get_benchmark(task).judge(doc).commitments(reasoning)
    assert [answer for _, answer in found] == expected
    assert [pos for pos, _ in found] == sorted(pos for pos, _ in found)


def test_first_answer_is_the_first_commitment_to_the_final_answer_and_switches_count_changes():
    reasoning = "Try \\boxed{12}. Hmm, the answer is 25. No: the answer is 12. Wait. The answer is 25."
    s, m = _measure("aime24", reasoning + "</think>\n\\boxed{25}", {"answer": 25})
    assert s.answer_strict == "25"
    assert m.first_answer_chars == reasoning.index("answer is 25")
    assert m.answer_switches == 3 and m.commitments == 4


def test_no_first_answer_when_the_reasoning_never_commits_to_the_final_answer():
    s, m = _measure("aime24", "I get \\boxed{12}.</think>\n\\boxed{25}", {"answer": 25})
    assert m.first_answer_chars is None and m.answer_switches == 0
    _, m = _measure("aime24", "Nothing committed here.</think>\nNo idea.", {"answer": 25})
    assert m.first_answer_chars is None and m.answer_switches == 0 and m.commitments == 0


def test_vote_key_decides_what_counts_as_the_same_answer():
    # MuSiQue answers vote together after the official normalisation.
    first, switches = answer_trace([(0, "The Beatles"), (9, "beatles")], "Beatles", lambda a: a.lower().removeprefix("the "))
    assert (first, switches) == (0, 0)


def test_share_after_first_answer():
    assert share_after(200, 1000) == 0.8
    assert share_after(1000, 1000) == 0.0
    assert share_after(None, 1000) is None and share_after(5, None) is None and share_after(5, 0) is None


# ------------------------------------------------------------------------------ looping


def test_a_repeating_tail_loops_and_varied_prose_does_not():
    loop = "Let me think. " * 5 + "Wait, the answer is 137. But the system wants one box, so \\boxed{137}. " * 40
    assert is_looping(loop) and loop_coverage(loop) > 0.95
    # Rotating openers around one repeated core sentence still loop.
    openers = ["Wait, no.", "But I'm not sure.", "I think I've tried that already.", "Hmm."]
    core = "The answer is that he couldn't have gone, but since that's not an option, perhaps (D)."
    assert is_looping(" ".join(f"{openers[i % 4]} {core}" for i in range(60)))
    enumeration = " ".join(f"- s={i}: {i * i} in base 24 is {i * i // 24}{i * i % 24}. Sum {i * i // 24 + i * i % 24} vs {i}. No." for i in range(5, 90))
    assert not is_looping(enumeration)


def test_a_restated_short_answer_is_not_a_loop():
    sentence = "The person who ended the empire in 330 BC was Darius III, who died in 330 BC. "
    short = sentence * 3
    assert len(short.split()) < LOOP_MIN_WORDS and not is_looping(short)


def test_loop_needs_the_set_share_of_the_tail():
    fresh = " ".join(f"word{i}" for i in range(400))
    repeated = "one two three four five six seven eight nine ten " * 12  # 120 words
    assert loop_coverage(fresh + " " + repeated) < LOOP_COVERAGE  # 120 of the last 520 words
    assert is_looping(fresh[-200:] + " " + repeated * 3)


# --------------------------------------------------------------- records, through lm_eval


@pytest.mark.slow
def test_lm_eval_records_carry_the_measures(tmp_path, tiny_hf_dir, offline_env):
    """Replay hand-written responses through plain lm_eval; the records carry the
    measures, and first_answer_tokens is the reasoning prefix tokenized exactly."""
    from transformers import AutoTokenizer

    loop = "Wait, the answer is 2. The system wants one box, so \\boxed{2}. " * 30
    responses = {
        "demo-1": "2^3 = 8 = 1 mod 7. So \\boxed{4}? No. The answer is 2. Let me double check. 2^99 = 1, times 2. "
                  "Yes, the answer is 2.</think>\n\n\\boxed{2}",
        "demo-2": "Hmm. " + loop,  # never closes, loops
        "demo-3": "I cannot tell.</think>\nNo idea.",
    }
    rows = [{"task": "aime24_lrm", "doc_key": k, "response": v} for k, v in responses.items()]
    saved = tmp_path / "saved.jsonl"
    saved.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    lm_eval = shutil.which("lm_eval", path=str(Path(sys.executable).parent)) or "lm_eval"
    proc = subprocess.run(
        [lm_eval, "--model", "lrm-replay", "--model_args", f"responses={saved},tokenizer={tiny_hf_dir}",
         "--tasks", "aime24_lrm", "--output_path", str(out), "--log_samples"],
        capture_output=True, text=True, env=offline_env, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    records_file = sorted(out.rglob("lrm_responses_aime24_lrm_*.jsonl"))[-1]
    recs = {r["doc_key"]: r for r in map(json.loads, records_file.read_text().splitlines())}
    tok = AutoTokenizer.from_pretrained(tiny_hf_dir)

    one = recs["demo-1"]
    reasoning = responses["demo-1"].split("</think>")[0]
    prefix = reasoning[: reasoning.index("answer is 2")]
    assert one["first_answer_tokens"] == len(tok(prefix, add_special_tokens=False)["input_ids"])
    assert one["answer_switches"] == 1 and one["looping"] is False
    assert one["reasoning_after_first_answer"] == pytest.approx(1 - one["first_answer_tokens"] / one["reasoning_tokens"])

    two = recs["demo-2"]
    assert two["looping"] is True and two["answer_switches"] == 0 and two["answer_flexible"] == "2"
    assert two["first_answer_tokens"] == len(tok("Hmm. Wait, the ", add_special_tokens=False)["input_ids"])

    three = recs["demo-3"]
    assert three["first_answer_tokens"] is None and three["reasoning_after_first_answer"] is None
    assert three["answer_switches"] == 0 and three["looping"] is False

    # lrm report reads the measures back into its overthinking table.
    lrm = shutil.which("lrm", path=str(Path(sys.executable).parent)) or "lrm"
    rep = subprocess.run([lrm, "report", str(out), "--out", str(tmp_path / "rep"), "--no-figures", "--quiet"],
                         capture_output=True, text=True, env=offline_env, cwd=tmp_path, timeout=600)
    assert rep.returncode == 0, rep.stderr[-4000:]
    assert "## Overthinking" in (tmp_path / "rep" / "report.md").read_text()
    import csv

    (row,) = list(csv.DictReader((tmp_path / "rep" / "overthinking.csv").open()))
    assert row["task"] == "aime24_lrm" and int(row["responses"]) == 3
    assert float(row["looping"]) == pytest.approx(1 / 3) and float(row["answer_switches"]) == pytest.approx(1 / 3)
    assert float(row["first_answer_found"]) == pytest.approx(2 / 3)
