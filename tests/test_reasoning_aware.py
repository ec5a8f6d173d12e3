"""Reasoning-aware scoring of lm-eval's own generate_until tasks (issue 15, part 1).

The built-in tasks run on documents built offline: a task YAML that ``include:``s
lm-eval's own config (gsm8k; BBH's zero-shot CoT logical deduction, a multiple-choice
generate_until task) and only swaps the dataset for a local JSON file, so the task's own
prompt, stop strings, filters and metrics are the real ones. Replay serves hand-written
responses, so every view's answer is known exactly.
"""

from __future__ import annotations

import doctest
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
LM_EVAL_TASKS = Path(__import__("lm_eval").__file__).parent / "tasks"

GSM8K_DOCS = [
    {"question": "Tom has 3 apples and buys 4 more. How many apples?", "answer": "3+4=7\n#### 7"},
    {"question": "What is 6 times 7?", "answer": "6*7=42\n#### 42"},
    {"question": "What is 10 minus 3?", "answer": "10-3=7\n#### 7"},
]
# "Question:" is one of gsm8k's stop strings: inside the reasoning it must not stop
# anything; after the answer it cuts the text (else flexible-extract would take 99).
GSM8K_RESPONSES = [
    "Question: is it 8? No. 3+4=7.</think>\nThe answer is 7.\n#### 7\nQuestion: what about 99?",
    "6*7 is 42, so #### 42 maybe",  # never closed: no strict answer; flexible finds 42
    "10-3=7</think>\n#### 6",  # closed, wrong
]
OPTIONS = "Options:\n(A) the owl\n(B) the hawk\n(C) the crow"
BBH_DOCS = [
    {"input": f"Which bird is leftmost?\n{OPTIONS}", "target": "(A)"},
    {"input": f"Which bird is in the middle?\n{OPTIONS}", "target": "(B)"},
    {"input": f"Which bird is rightmost?\n{OPTIONS}", "target": "(C)"},
]
BBH_RESPONSES = [
    "Options (B) and (C) fail.</think>\nThe answer is (A).",
    "Q: a trick? Looks like the answer is (B).",  # "Q:" is a bbh stop string; never closed
    "I think (C).</think>\nThe answer is (B).\nQ: or (C)",  # the cut drops the later (C)
]


def _cmd(name: str) -> str:
    return shutil.which(name, path=str(BIN)) or name


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _offline_task(folder: Path, name: str, base: Path, docs: list[dict], **extra: str) -> None:
    """A task that is lm-eval's ``base`` config with a local dataset."""
    data = _write_jsonl(folder / f"{name}.jsonl", docs)
    lines = [
        f"include: {base}", f"task: {name}", "tag: []", "dataset_path: json", "dataset_name: null",
        "dataset_kwargs:", "  data_files:", f"    test: {data}", "training_split: null",
        "fewshot_split: null", "validation_split: null", "num_fewshot: 0",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    gsm8k = LM_EVAL_TASKS / "gsm8k" / "gsm8k.yaml"
    bbh = LM_EVAL_TASKS / "bbh" / "cot_zeroshot" / "logical_deduction_three_objects.yaml"
    _offline_task(folder, "gsm8k_offline", gsm8k, GSM8K_DOCS)
    _offline_task(folder, "gsm8k_plain", gsm8k, GSM8K_DOCS)  # not named: must stay untouched
    _offline_task(folder, "bbh_ld_offline", bbh, BBH_DOCS)
    return folder


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
        HF_DATASETS_CACHE=str(tmp_path / "hf_datasets_cache"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def _run(cmd: list[str], tmp_path: Path, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=900)
    if ok:
        assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.rglob(pattern))
    assert len(found) == 1, (pattern, [p.name for p in folder.rglob("*")])
    return found[0]


def _samples(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in _one(folder, f"samples_{task}_*.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory, tasks_dir, tiny_hf_dir):
    """One plain lm_eval run: gsm8k and bbh reasoning-aware, a gsm8k copy left alone."""
    tmp = tmp_path_factory.mktemp("replay")
    rows = [{"task": "gsm8k_offline", "doc_id": i, "response": r} for i, r in enumerate(GSM8K_RESPONSES)]
    for row, finish in zip(rows, ("stop", "length", "stop")):  # the unclosed one ran out of tokens
        row["finish_reason"] = finish
    rows += [{"task": "gsm8k_plain", "doc_id": i, "response": r} for i, r in enumerate(GSM8K_RESPONSES)]
    rows += [{"task": "bbh_ld_offline", "doc_id": i, "response": r} for i, r in enumerate(BBH_RESPONSES)]
    responses = _write_jsonl(tmp / "responses.jsonl", rows)
    out = tmp / "out"
    _run([
        _cmd("lm_eval"), "--model", "lrm-replay", "--model_args", f"responses={responses},tokenizer={tiny_hf_dir}",
        "--tasks", "gsm8k_offline,gsm8k_plain,bbh_ld_offline", "--include_path", str(tasks_dir),
        "--metadata", json.dumps({"lrm_reasoning_aware": "gsm8k_offline,bbh_ld_offline"}),
        "--output_path", str(out), "--log_samples",
    ], tmp)
    results = json.loads(_one(out, "results_*.json").read_text())["results"]
    return out, results


@pytest.mark.parametrize("task, views", [
    ("gsm8k_offline", ("strict-match", "flexible-extract")),
    ("bbh_ld_offline", ("flexible-extract", "strict-match")),
])
def test_strict_and_flexible_views_with_the_tasks_own_filters_and_metric(replay_run, task, views):
    _, results = replay_run
    res = results[task]
    for ensemble in views:
        # One correct closed answer; the unclosed response counts only in the flexible
        # view; the third is wrong in both (its correct-looking text lies past a stop).
        assert res[f"exact_match,strict-{ensemble}"] == pytest.approx(1 / 3)
        assert res[f"exact_match,flexible-{ensemble}"] == pytest.approx(2 / 3)
        assert res[f"no_answer,strict-{ensemble}"] == pytest.approx(1 / 3)
        assert res[f"no_answer,flexible-{ensemble}"] == 0
    assert not any(k.startswith("exact_match,") and k.split(",")[1] in views for k in res), res


def test_stop_strings_leave_the_request_and_cut_only_the_answer(replay_run):
    out, _ = replay_run
    samples = _samples(out, "gsm8k_offline")
    for s in samples:
        assert s["arguments"]["gen_args_0"]["arg_1"]["until"] == []  # only EOS stops while thinking
    strict = {s["doc_id"]: s["filtered_resps"][0] for s in samples if s["filter"] == "strict-flexible-extract"}
    flexible = {s["doc_id"]: s["filtered_resps"][0] for s in samples if s["filter"] == "flexible-flexible-extract"}
    # "Question:" inside the reasoning cut nothing; after the answer it cut "99".
    assert strict == {0: "7", 1: "[no answer]", 2: "6"}
    assert flexible == {0: "7", 1: "42", 2: "6"}
    bbh = {s["doc_id"]: s["filtered_resps"][0] for s in _samples(out, "bbh_ld_offline") if s["filter"] == "flexible-flexible-extract"}
    assert bbh == {0: "(A)", 1: "(B)", 2: "(B)"}


def test_tasks_not_named_stay_untouched(replay_run):
    out, results = replay_run
    res = results["gsm8k_plain"]
    assert {k.split(",")[1] for k in res if k.startswith("exact_match,")} == {"strict-match", "flexible-extract"}
    assert not any(k.startswith(("no_answer", "total_tokens")) for k in res)
    # Scored on the whole text as lm-eval does: the flexible extract of the first response is 99.
    assert res["exact_match,flexible-extract"] == pytest.approx(1 / 3)
    until = _samples(out, "gsm8k_plain")[0]["arguments"]["gen_args_0"]["arg_1"]["until"]
    assert "Question:" in until
    assert not list(out.rglob("lrm_responses_gsm8k_plain_*.jsonl"))


def test_token_counts_records_and_task_aggregate(replay_run, tiny_hf_dir):
    from transformers import AutoTokenizer

    out, results = replay_run
    tok = AutoTokenizer.from_pretrained(tiny_hf_dir)

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    expected = []
    for r in GSM8K_RESPONSES:
        head, sep, tail = r.rpartition("</think>")
        reasoning, answer = (head + sep, tail) if sep else (r, "")
        expected.append((n(reasoning), n(reasoning) + n(answer)))
    res = results["gsm8k_offline"]
    for view in ("strict-strict-match", "flexible-flexible-extract"):
        assert res[f"reasoning_tokens,{view}"] == pytest.approx(sum(e[0] for e in expected) / 3)
        assert res[f"total_tokens,{view}"] == pytest.approx(sum(e[1] for e in expected) / 3)
        assert res[f"truncated,{view}"] == pytest.approx(1 / 3)
    records = [json.loads(line) for line in _one(out, "lrm_responses_gsm8k_offline_*.jsonl").read_text().splitlines()]
    by_text = {r["response"]: r for r in records}
    assert len(records) == 3 and set(by_text) == set(GSM8K_RESPONSES)
    for text, (reasoning, total) in zip(GSM8K_RESPONSES, expected):
        rec = by_text[text]
        assert (rec["reasoning_tokens"], rec["total_tokens"], rec["count_source"]) == (reasoning, total, "retokenized")
    first, unclosed, wrong = (by_text[t] for t in GSM8K_RESPONSES)
    # The record carries the task's first filter ensemble (strict-match for gsm8k).
    assert (first["answer_strict"], first["correct_strict"], first["think_closed"]) == ("7", True, True)
    assert (unclosed["answer_strict"], unclosed["answer_flexible"]) == (None, "42")
    assert (unclosed["correct_strict"], unclosed["correct_flexible"], unclosed["truncated"]) == (False, True, True)
    assert (wrong["answer_strict"], wrong["correct_flexible"]) == ("6", False)
    summary = json.loads(_one(out, "lrm_summary_*.json").read_text())["tasks"]
    assert set(summary) == {"gsm8k_offline", "bbh_ld_offline"}
    agg = summary["gsm8k_offline"]
    assert agg["n_responses"] == 3
    assert agg["accuracy_strict"] == pytest.approx(1 / 3) and agg["accuracy_flexible"] == pytest.approx(2 / 3)
    assert agg["no_answer_strict"] == pytest.approx(1 / 3) and agg["truncation_rate"] == pytest.approx(1 / 3)
    assert agg["mean_total_tokens"] == pytest.approx(sum(e[1] for e in expected) / 3)


def test_lrm_eval_flag_on_a_real_model(tmp_path, tasks_dir, tiny_hf_dir):
    """``lrm eval --reasoning-aware`` with the tiny HF model: generation runs with only
    EOS as stop, and every response gets views, counts and a record."""
    out = tmp_path / "out"
    _run([
        _cmd("lrm"), "eval", "--model", "hf", "--model_args", f"pretrained={tiny_hf_dir},dtype=float32",
        "--tasks", "gsm8k_offline", "--include_path", str(tasks_dir), "--reasoning-aware", "gsm8k_offline",
        "--gen_kwargs", "max_gen_toks=12", "--limit", "2", "--output_path", str(out), "--log_samples",
    ], tmp_path)
    res = json.loads(_one(out, "results_*.json").read_text())["results"]["gsm8k_offline"]
    assert {"exact_match,strict-strict-match", "exact_match,flexible-flexible-extract",
            "total_tokens,strict-strict-match", "no_answer,flexible-strict-match"} <= set(res)
    # Counted by re-tokenizing the decoded text (the tiny model's stray bytes decode to
    # U+FFFD, which re-encodes longer), and 12 tokens without EOS is the budget used up.
    assert res["total_tokens,strict-strict-match"] > 0 and "truncated,strict-strict-match" in res
    samples = _samples(out, "gsm8k_offline")
    assert all(s["arguments"]["gen_args_0"]["arg_1"]["until"] == [] for s in samples)
    records = [json.loads(line) for line in _one(out, "lrm_responses_gsm8k_offline_*.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["count_source"] == "retokenized" for r in records)
    for r in records:  # an unclosed reasoning has no strict answer
        assert r["think_closed"] or r["answer_strict"] is None


@pytest.mark.parametrize("value, message", [
    ("gsm8k_ofline", "'gsm8k_ofline' is no task or group lm-eval knows. Did you mean 'gsm8k_offline'"),
    ("hellaswag", "'hellaswag' is a multiple_choice task"),
])
def test_bad_names_fail_in_one_line_before_the_model_loads(tmp_path, tasks_dir, value, message):
    proc = _run([
        _cmd("lrm"), "eval", "--model", "hf", "--model_args", f"pretrained={tmp_path / 'no_such_model'}",
        "--tasks", "gsm8k_offline", "--include_path", str(tasks_dir), "--reasoning-aware", value,
    ], tmp_path, ok=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lrm: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-3000:]
    assert "no_such_model" not in proc.stderr.replace(str(tmp_path), "")  # nothing tried to load it


def test_a_backend_that_strips_the_reasoning_is_refused(tmp_path, tasks_dir):
    proc = _run([
        _cmd("lrm"), "eval", "--model", "hf", "--model_args", f"pretrained={tmp_path},think_end_token=</think>",
        "--tasks", "gsm8k_offline", "--include_path", str(tasks_dir), "--reasoning-aware", "gsm8k_offline",
    ], tmp_path, ok=False)
    assert proc.returncode == 2 and "Drop think_end_token" in proc.stderr, proc.stderr[-3000:]


def test_module_doctests():
    import lrm_backends.run.reasoning_aware as module

    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0


def _fake_task(output_type: str = "generate_until"):
    from types import SimpleNamespace

    return SimpleNamespace(OUTPUT_TYPE=output_type, config=SimpleNamespace(output_type=output_type))


def test_a_group_name_selects_its_tasks_and_a_name_outside_the_run_is_an_error():
    from lrm_backends.errors import ValidationError
    from lrm_backends.run.reasoning_aware import select

    class Group:  # lm-eval keys a group's tasks by its ConfigurableGroup
        group_name = "bbh_cot_zeroshot"

    a, b, c = _fake_task(), _fake_task(), _fake_task()
    group = Group()
    task_dict = {group: {"bbh_x": a, "bbh_y": b}, "gsm8k": c}
    assert select(task_dict, ["bbh_cot_zeroshot"]) == [("bbh_x", a), ("bbh_y", b)]
    assert select(task_dict, ["gsm8k"]) == [("gsm8k", c)]
    with pytest.raises(ValidationError, match="minerva_math not among this run's tasks"):
        select(task_dict, ["gsm8k", "minerva_math"])
    with pytest.raises(ValidationError, match="'mc' is a multiple_choice task"):
        select({"mc": _fake_task("multiple_choice")}, ["mc"])
