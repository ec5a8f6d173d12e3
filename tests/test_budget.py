"""lrm budget: budget forcing on replayed long responses with the tiny offline HF model,
then the curves in lrm report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lrm_backends.cli import main
from lrm_backends.run.budget import BudgetError, TokenCutter, load_items, parse_budgets, raw_reasoning

SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
BUDGETS = (16, 64, 256)
# ~700 tokens of reasoning in the tiny tokenizer: every budget cuts it.
LONG = " ".join(f"Step {i}: the sum so far is {i * 7}." for i in range(60))
RESPONSES = {
    # closes within 64 tokens with the right answer: keeps it at budgets >= its length
    "demo-1": "2^3=8 so 2^100 is 2 mod 7.</think>The answer is \\boxed{2}.",
    # never closes: forced at every budget
    "demo-2": LONG,
    # closes after ~700 tokens: forced at every budget here
    "demo-3": LONG + "</think>The answer is \\boxed{39}.",
}
RECORDS_NAME = "lrm_responses_aime24_lrm_2026-01-01T00-00-00.000000.jsonl"


@pytest.fixture()
def env(monkeypatch, tmp_path):
    for k, v in dict(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", LRM_DATA_DIR=str(SAMPLES),
                     HF_DATASETS_CACHE=str(tmp_path / "hf_datasets_cache"), TOKENIZERS_PARALLELISM="false").items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("LRM_CACHE_DIR", raising=False)


def write_records(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORDS_NAME
    path.write_text("".join(json.dumps({"task": "aime24_lrm", "doc_key": k, "response": r}) + "\n"
                            for k, r in RESPONSES.items()), encoding="utf-8")
    return folder


def tokenizer(tiny_hf_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_hf_dir))


def budget_argv(run: Path, tiny_hf_dir: Path, out: Path) -> list[str]:
    return ["budget", str(run), "--model", "hf", "--model_args", f"pretrained={tiny_hf_dir},dtype=float32",
            "--device", "cpu", "--budgets", ",".join(map(str, BUDGETS)), "--answer-tokens", "8", "--out", str(out)]


def latest(out: Path, pattern: str) -> Path:
    return sorted(out.glob(pattern))[-1]


def test_cut_points_are_counted_in_the_models_tokens(tiny_hf_dir):
    tok = tokenizer(tiny_hf_dir)
    cutter = TokenCutter(tok)
    n = len(tok(LONG, add_special_tokens=False)["input_ids"])
    assert n > max(BUDGETS)
    for b in BUDGETS:
        prefix, kept, total = cutter.cut(LONG, b)
        assert LONG.startswith(prefix) and (kept, total) == (b, n)
        assert len(tok(prefix, add_special_tokens=False)["input_ids"]) == b
    assert cutter.cut("short", 64) == ("short", cutter.count("short"), cutter.count("short"))
    with pytest.raises(BudgetError, match="--tokenizer"):
        TokenCutter(None)


def test_parse_budgets_names_a_bad_value():
    assert parse_budgets("2k,1024,1024") == [1024, 2048]
    with pytest.raises(BudgetError, match="'-5'"):
        parse_budgets("1024,-5")


def test_budget_pass_end_to_end_resumes_and_reports(tiny_hf_dir, tmp_path, env, capsys):
    run, out = write_records(tmp_path / "run"), tmp_path / "out"
    tok = tokenizer(tiny_hf_dir)
    # What the pass should send: per response, one request per distinct cut, except at
    # budgets its reasoning closed within.
    expected_requests = 0
    for text in RESPONSES.values():
        reasoning, closed = raw_reasoning(text, "</think>")
        n = len(tok(reasoning, add_special_tokens=False)["input_ids"])
        expected_requests += len({min(b, n) for b in BUDGETS if not (closed and n <= b)})
    assert expected_requests == 7  # demo-1 is kept at 64 and 256

    assert main(budget_argv(run, tiny_hf_dir, out)) == 0
    results = json.loads(latest(out, "budget_results_*.json").read_text())
    assert results["lrm"]["requests"] == expected_requests
    assert results["lrm"]["responses_generated"] == expected_requests
    recs = [json.loads(line) for line in latest(out, "lrm_budget_aime24_lrm_*.jsonl").read_text().splitlines()]
    assert len(recs) == len(RESPONSES) * len(BUDGETS)
    by = {(r["doc_key"], r["budget"]): r for r in recs}

    # Closed early: its own answer, untouched, at every budget it fits in.
    short_n = len(tok(raw_reasoning(RESPONSES["demo-1"], "</think>")[0], add_special_tokens=False)["input_ids"])
    for b in BUDGETS:
        r = by[("demo-1", b)]
        assert r["forced"] is (short_n > b)
        if not r["forced"]:
            assert r["response"] == RESPONSES["demo-1"] and r["answer_strict"] == "2" and r["correct_strict"]

    # Forced: the response is the reasoning cut at exactly B tokens, closed with the cue.
    for key in ("demo-2", "demo-3"):
        for b in BUDGETS:
            r = by[(key, b)]
            assert r["forced"] and r["cut_tokens"] == b and r["reasoning_tokens"] == b
            head, sep, _ = r["response"].partition("\n</think>\n\n**Final Answer**\n")
            assert sep and RESPONSES[key].startswith(head)
            assert len(tok(head, add_special_tokens=False)["input_ids"]) == b
            assert r["total_tokens"] > b and r["think_closed"]

    # Aggregates agree with the records.
    res = results["results"]["aime24_lrm"]
    for b in BUDGETS:
        rows = [r for r in recs if r["budget"] == b]
        assert res[f"acc,budget_{b}"] == pytest.approx(sum(r["correct_strict"] for r in rows) / len(rows))
        assert res[f"forced,budget_{b}"] == pytest.approx(sum(r["forced"] for r in rows) / len(rows))
    assert res["acc,original"] == pytest.approx(2 / 3)  # demo-1 and demo-3 were right, demo-2 never answered

    # A second run generates nothing: every answer comes from the cache.
    capsys.readouterr()
    assert main(budget_argv(run, tiny_hf_dir, out)) == 0
    again = json.loads(latest(out, "budget_results_*.json").read_text())
    assert again["lrm"]["responses_generated"] == 0
    assert again["lrm"]["cache"]["responses_from_cache"] == expected_requests
    assert again["results"] == results["results"]

    # The report draws the curve from the newest results.
    from lrm_backends.report import build_report

    report = build_report([str(out)], tmp_path / "report", labels={str(out): "tiny"}, progress=False)
    md = report.paths["report.md"].read_text()
    assert "## Thinking-budget curves" in md and "budget_curves.png" in md
    assert (tmp_path / "report" / "figures" / "budget_curves.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "report" / "budget.csv").open()))
    curve = {r["budget"]: r for r in rows if r["model"] == "tiny" and r["task"] == "aime24_lrm"}
    assert set(curve) == {*map(str, BUDGETS), ""}
    for b in BUDGETS:
        assert float(curve[str(b)]["accuracy"]) == pytest.approx(res[f"acc,budget_{b}"])
        assert float(curve[str(b)]["mean_tokens"]) == pytest.approx(res[f"mean_tokens,budget_{b}"])


def test_samples_files_are_read_like_records(tiny_hf_dir, tmp_path, env):
    """lm-eval --log_samples output feeds the pass too; prompts come from the task."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"doc_id": i, "doc": {"doc_key": k}, "resps": [[r]], "filtered_resps": [r]}
            for i, (k, r) in enumerate(RESPONSES.items())]
    (run / "samples_aime24_lrm_2026-01-01T00-00-00.000001.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cutter = TokenCutter(tokenizer(tiny_hf_dir))
    items = load_items([str(run)], None, cutter, tasks=None, think_end="</think>", apply_chat_template=False,
                       system_instruction=None, limit=None, warn=print)
    assert [(i.doc["doc_key"], str(i.response)) for i in items] == list(RESPONSES.items())
    assert all(i.context and "2^{100}" in items[0].context for i in items[:1])
    assert [i.closed for i in items] == [True, False, True]


def test_out_inside_run_dir_is_refused(tiny_hf_dir, tmp_path, env, capsys):
    run = write_records(tmp_path / "run")
    assert main(budget_argv(run, tiny_hf_dir, run / "budget")) == 2
    assert "inside RUN_DIR" in capsys.readouterr().err
