"""The real lm_eval CLI, end to end, on a tiny offline model, for every task."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lrm_tasks.harness import ID_LISTS
from lrm_tasks.scoring import score, split_reasoning

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
BIN = Path(sys.executable).parent
TASKS = ["aime24_lrm", "bbh_temporal_sequences_lrm", "folio_lrm", "musique_lrm", "musique_ctx_lrm"]
PAPER = ["aime24_lrm_paper", "bbh_temporal_sequences_lrm_paper", "folio_lrm_paper", "musique_lrm_paper"]


def lm_eval_cmd() -> str:
    return shutil.which("lm_eval", path=str(BIN)) or "lm_eval"


def run(cmd: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])
    return out


def latest(folder: Path, pattern: str) -> Path:
    files = sorted(folder.glob(pattern))
    assert files, f"no {pattern} in {folder}: {sorted(p.name for p in folder.iterdir())}"
    return files[-1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The shipped samples, plus two MuSiQue records under ids of the paper's subset."""
    folder = tmp_path_factory.mktemp("data")
    for f in SAMPLES.iterdir():
        if f.suffix in (".json", ".jsonl"):
            shutil.copy(f, folder / f.name)
    ids_file = Path(__file__).resolve().parents[1] / "lrm_tasks" / "resources" / ID_LISTS["paper100"]
    paper_ids = [line for line in ids_file.read_text().splitlines() if line and not line.startswith("#")][:2]
    rows = [json.loads(line) for line in (SAMPLES / "musique.jsonl").read_text().splitlines()]
    with (folder / "musique.jsonl").open("a") as fh:
        for pid, row in zip(paper_ids, rows):
            fh.write(json.dumps({**row, "id": pid}) + "\n")
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_hf_dir, data_dir):
    """One plain lm_eval run over every task and both groups' variants."""
    out = tmp_path_factory.mktemp("run")
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LRM_DATA_DIR": str(data_dir), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LRM_RECORDS_DIR", None)
    proc = run([lm_eval_cmd(), "--model", "hf", "--model_args", f"pretrained={tiny_hf_dir},dtype=float32",
                "--tasks", ",".join(TASKS + PAPER), "--limit", "2", "--gen_kwargs", "max_gen_toks=12",
                "--output_path", str(out), "--log_samples", "--seed", "1"], env, out)
    model_dir = next(p for p in out.iterdir() if p.is_dir())
    return proc, model_dir


def test_every_task_reports_scores_and_compute_columns(full_run):
    proc, model_dir = full_run
    results = json.loads(latest(model_dir, "results_*.json").read_text())["results"]
    for task in TASKS + PAPER:
        r = results[task]
        for filt in ("strict", "flexible"):
            for metric in ("exact_match", "no_answer", "reasoning_tokens", "total_tokens", "truncated"):
                assert f"{metric},{filt}" in r, (task, metric, sorted(r))
                assert r[f"{metric}_stderr,{filt}"] != "N/A"
        assert ("f1,strict" in r) == task.startswith("musique")
    # The harness's own table shows the compute columns.
    for column in ("reasoning_tokens", "truncated", "no_answer"):
        assert f"|{column}" in proc.stdout


def test_samples_carry_our_scores_and_counts(full_run, tiny_hf_dir):
    from transformers import AutoTokenizer

    _, model_dir = full_run
    tok = AutoTokenizer.from_pretrained(tiny_hf_dir)
    n = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    for task in TASKS + PAPER:
        rows = [json.loads(line) for line in latest(model_dir, f"samples_{task}_2*.jsonl").read_text().splitlines()]
        assert {r["filter"] for r in rows} == {"strict", "flexible"} and len(rows) == 4
        for row in rows:
            response = row["resps"][0][0]
            s = score(task, response, row["doc"])
            answer = s.answer_strict if row["filter"] == "strict" else s.answer_flexible
            assert row["filtered_resps"][0] == [answer if answer is not None else "[no answer]"]
            assert row["exact_match"] == float(s.correct_strict if row["filter"] == "strict" else s.correct_flexible)
            reasoning, answer_text, closed = split_reasoning(response)
            expected = n(reasoning + "</think>" if closed else reasoning) + n(answer_text)
            assert row["total_tokens"] == expected
            prompt = row["arguments"]["gen_args_0"]["arg_0"]
            assert prompt.endswith("<think>\n") == task.endswith("_paper"), (task, prompt[-40:])


def test_per_response_records_match_an_independent_recount(full_run, tiny_hf_dir):
    from transformers import AutoTokenizer

    _, model_dir = full_run
    tok = AutoTokenizer.from_pretrained(tiny_hf_dir)
    for task in TASKS + PAPER:
        recs = [json.loads(line) for line in latest(model_dir, f"lrm_responses_{task}_2*.jsonl").read_text().splitlines()]
        assert len(recs) == 2 and {r["task"] for r in recs} == {task}
        for r in recs:
            reasoning, answer_text, closed = split_reasoning(r["response"])
            ids_r = tok(reasoning + ("</think>" if closed else ""), add_special_tokens=False)["input_ids"]
            ids_a = tok(answer_text, add_special_tokens=False)["input_ids"]
            assert (r["reasoning_tokens"], r["answer_tokens"]) == (len(ids_r), len(ids_a))
            assert r["count_source"] == "retokenized" and r["model"] == f"hf:{tiny_hf_dir}"
            assert r["doc_key"] and r["repeat"] == 0
    summary = json.loads(latest(model_dir, "lrm_summary_*.json").read_text())
    assert set(summary["tasks"]) == set(TASKS + PAPER)


def test_paper_musique_subset_and_lrm_eval_repeats(tmp_path, tiny_hf_dir, data_dir):
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LRM_DATA_DIR": str(data_dir), "LRM_RECORDS_DIR": str(tmp_path / "records")}
    run([str(BIN / "lrm"), "eval", "--model", "hf", "--model_args", f"pretrained={tiny_hf_dir},dtype=float32",
         "--tasks", "musique_lrm_paper", "--repeats", "3", "--gen_kwargs", "max_gen_toks=6",
         "--output_path", str(tmp_path / "out"), "--log_samples"], env, tmp_path)
    recs = [json.loads(line) for line in latest(tmp_path / "records", "lrm_responses_musique_lrm_paper_*.jsonl").read_text().splitlines()]
    # Only the two records filed under paper ids are in the subset; 3 repeats each.
    assert sorted((r["doc_key"], r["repeat"]) for r in recs) == sorted(
        (k, i) for k in {r["doc_key"] for r in recs} for i in range(3))
    assert len({r["doc_key"] for r in recs}) == 2
    results = json.loads(latest(next((tmp_path / "out").iterdir()), "results_*.json").read_text())["results"]
    assert "pass@k,strict" in results["musique_lrm_paper"] and "maj@k,flexible" in results["musique_lrm_paper"]


def test_demo_ends_with_the_compact_table(tmp_path, tiny_hf_dir):
    """Issue 16 item 16: the demo's last words are the compact table, not lm-eval's
    90-line one (kept in a file), and none of lm-eval's per-task custom-dataset notices."""
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LRM_RECORDS_DIR": str(tmp_path / "records")}
    out = run([str(BIN / "lrm"), "demo", "--model", "hf", "--model-args", f"pretrained={tiny_hf_dir},dtype=float32",
               "--tasks", "aime24_lrm,bbh_temporal_sequences_lrm", "--limit", "2", "--max-gen-toks", "6",
               "--no-chat-template", "--output-path", str(tmp_path / "demo")], env, tmp_path)
    assert "Custom kwargs can be passed" not in out.stdout + out.stderr
    # outside a git checkout, git's complaint about lm-eval's `git describe` stays quiet;
    # lm-eval's INFO log is off in the demo (its warnings and progress bars stay)
    assert "fatal: not a git repository" not in out.stderr, out.stderr[-2000:]
    assert "Building contexts" not in out.stderr
    table = [line for line in out.stdout.splitlines() if line.startswith("|")]
    assert table[0].split("|")[1:-1] == [
        " Model ", " Task ", " Strict (%) ", " Flexible (%) ", " No answer (%) ", " Reasoning tokens ", " Truncated (%) "]
    assert len(table) == 4  # header, rule, one row per task
    assert "exact_match" not in out.stdout  # lm-eval's own table went to the file
    assert "exact_match" in (tmp_path / "demo" / "lm_eval_table.txt").read_text()
