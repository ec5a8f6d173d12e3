"""Engine failures stop once with one line; request failures are retried (bounded) and
recorded; the exit status says whether every request got a response (issue #17).

Subprocess runs use the installed ``lm_eval``/``lrm`` with the fake vllm of
tests/helpers/fake_vllm on PYTHONPATH; a real vLLM CPU engine is used when
``$LRM_VLLM_PYTHON`` names a Python with vllm installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrm_backends.run.cache import ResilientLM
from lrm_backends.run import failures
from lrm_backends.run.failures import EXIT_ENGINE_FAILED, EXIT_REQUESTS_FAILED, EngineFailure, FailurePolicy

FAKE_VLLM = Path(__file__).resolve().parent / "helpers" / "fake_vllm"
SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"


class Req:
    """A generate_until request as lm-eval builds it (what ResilientLM reads)."""

    def __init__(self, context: str, doc: str) -> None:
        self.args = (context, {"until": [], "max_gen_toks": 8})
        self.doc, self.doc_id, self.task_name, self.idx = {"doc_key": doc}, 0, "aime24_lrm", 0


class ScriptedLM:
    """A backend whose errors the test scripts: ``fail(prompts) -> Exception | None``."""

    def __init__(self, fail) -> None:
        self.fail, self.calls, self.sent = fail, 0, []

    def generate_until(self, requests):
        self.calls += 1
        prompts = [r.args[0] for r in requests]
        self.sent.append(prompts)
        exc = self.fail(prompts)
        if exc is not None:
            raise exc
        return [f"answer to {p}" for p in prompts]


# ------------------------------------------------------------- classification


def test_engine_start_and_death_errors_are_the_engines_and_others_the_requests():
    class EngineDeadError(Exception):
        pass

    assert failures.classify(EngineDeadError("EngineCore died unexpectedly")) == failures.ENGINE
    assert failures.classify(RuntimeError("Engine core initialization failed. See root cause above.")) == failures.ENGINE
    assert failures.classify(failures.EngineError("replica 0 could not load")) == failures.ENGINE
    assert failures.classify(RuntimeError("CUDA error: device-side assert")) == failures.REQUEST
    assert failures.classify(ValueError("prompt too long")) == failures.REQUEST

    class RayTaskError(Exception):  # Ray keeps the remote traceback as text
        traceback_str = ('Traceback (most recent call last):\n  File "/x/lm_eval/models/vllm_causallms.py", line 434, '
                         'in dp_replica\n    llm = LLM(**model_args)\n  File "/x/site-packages/vllm/entrypoints/llm.py", '
                         'line 290, in __init__\nRuntimeError: bad config')

    assert failures.classify(RayTaskError("ray::dp_replica()")) == failures.ENGINE
    # vllm's SamplingParams rejects one request's arguments in its __init__: the request's.
    bad_params = RayTaskError("x")
    bad_params.traceback_str = 'File "/x/vllm/sampling_params.py", line 3, in __init__\nValueError: top_p'
    assert failures.classify(bad_params) == failures.REQUEST


def test_an_engine_error_during_generation_stops_at_once_without_retries(tmp_path, monkeypatch):
    monkeypatch.setenv(failures.ENGINE_LOG_DIR_ENV, str(tmp_path))
    lm = ScriptedLM(lambda prompts: RuntimeError("Engine core initialization failed. See root cause above."))
    wrapper = ResilientLM(lm, policy=FailurePolicy(max_retries=5, backoff_s=0))
    with pytest.raises(EngineFailure) as err:
        wrapper.generate_until([Req(f"q{i}", f"d{i}") for i in range(8)])
    assert lm.calls == 1 and wrapper.stats["retries"] == 0
    line = str(err.value)
    assert "\n" not in line and "ScriptedLM" in line and "Engine core initialization failed" in line
    log_path = err.value.log_path
    assert log_path is not None and log_path.parent == tmp_path and "Traceback" in log_path.read_text()


def test_the_same_error_on_disjoint_requests_before_any_success_is_the_engines(monkeypatch, tmp_path):
    monkeypatch.setenv(failures.ENGINE_LOG_DIR_ENV, str(tmp_path))
    lm = ScriptedLM(lambda prompts: OSError("connection refused"))  # no known engine message
    wrapper = ResilientLM(lm, policy=FailurePolicy(max_retries=2, backoff_s=0))
    with pytest.raises(EngineFailure, match="OSError: connection refused"):
        wrapper.generate_until([Req(f"q{i}", f"d{i}") for i in range(4)])
    # [q0..q3], [q0 q1], [q0] alone, then [q1] alone: the same error on another request.
    assert lm.sent == [["q0", "q1", "q2", "q3"], ["q0", "q1"], ["q0"], ["q1"]]
    assert wrapper.stats["retries"] == 0


def test_the_repeats_of_one_bad_prompt_stay_a_request_failure():
    # k repeats of one document are identical requests: failing alike is not the engine.
    lm = ScriptedLM(lambda prompts: ValueError("bad prompt") if "bad" in prompts else None)
    wrapper = ResilientLM(lm, policy=FailurePolicy(max_retries=1, backoff_s=0))
    out = wrapper.generate_until([Req("bad", "b"), Req("ok1", "a"), Req("bad", "b"), Req("ok2", "c")])
    assert [g.error for g in out] == ["ValueError: bad prompt", None, "ValueError: bad prompt", None]
    assert wrapper.summary()["failed_requests"] == 2 and wrapper.summary()["retries"] == 2


# -------------------------------------------------------------------- retries


def _flaky(times: int):
    """Fails every call holding "flaky" until it has failed ``times`` times."""
    seen = {"n": 0}

    def fail(prompts):
        if "flaky" in prompts and seen["n"] < times:
            seen["n"] += 1
            return TimeoutError("request timed out")
        return None

    return fail


def test_a_request_failing_twice_then_succeeding_is_retried_at_most_max_retries(monkeypatch):
    import lrm_backends.run.cache as cache_mod

    sleeps: list[float] = []
    monkeypatch.setattr(cache_mod.time, "sleep", sleeps.append)
    lm = ScriptedLM(_flaky(2))
    wrapper = ResilientLM(lm, policy=FailurePolicy(max_retries=2, backoff_s=0.5))
    out = wrapper.generate_until([Req("flaky", "f")])
    assert out[0] == "answer to flaky" and out[0].error is None
    assert lm.calls == 3 and sleeps == [0.5, 1.0]  # backoff doubles
    summary = wrapper.summary()
    assert (summary["retries"], summary["recovered_by_retry"], summary["failed_requests"]) == (2, 1, 0)

    lm = ScriptedLM(_flaky(3))
    wrapper = ResilientLM(lm, policy=FailurePolicy(max_retries=1, backoff_s=0))
    out = wrapper.generate_until([Req("flaky", "f"), Req("ok", "o")])
    assert out[0].error == "TimeoutError: request timed out" and out[1] == "answer to ok"
    # In the call of two, alone, one retry: never more than max_retries after it failed alone.
    assert [p for p in lm.sent if "flaky" in p] == [["flaky", "ok"], ["flaky"], ["flaky"]]
    assert wrapper.summary()["retries"] == 1 and wrapper.summary()["failed_requests"] == 1


def test_policy_from_metadata_then_environment(monkeypatch):
    monkeypatch.setenv("LRM_MAX_RETRIES", "5")
    monkeypatch.setenv("LRM_ALLOW_FAILURES", "1")
    assert failures.policy_from({}).max_retries == 5 and failures.policy_from({}).allow_failures
    assert failures.policy_from({"lrm_max_retries": 0, "lrm_allow_failures": False}) == FailurePolicy(0, 0.0, False)
    with pytest.raises(ValueError, match="lrm_max_retries='many'"):
        failures.policy_from({"lrm_max_retries": "many"})


def _first_doc_tokens(tiny_hf_dir: Path) -> list[int]:
    first_doc = json.loads((SAMPLES / "aime24.jsonl").read_text().splitlines()[0])
    needle = str(first_doc.get("Problem") or first_doc.get("problem"))[:40]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_hf_dir)
    return tokenizer(needle, add_special_tokens=False)["input_ids"][2:8]


# ------------------------------------------------------------ the commands


def _env(offline_env: dict, tmp_path: Path, **extra: str) -> dict:
    env = dict(offline_env)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_VLLM), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["FAKE_VLLM_INIT_LOG"] = str(tmp_path / "inits.log")
    env["LRM_ENGINE_LOG_DIR"] = str(tmp_path / "engine_logs")
    env["LRM_RECORDS_DIR"] = str(tmp_path / "records")
    for key in ("LRM_CACHE_DIR", "LRM_STRICT", "LRM_ALLOW_FAILURES", "LRM_MAX_RETRIES"):
        env.pop(key, None)
    env.update(extra)
    return env


def _lm_eval_args(model_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--model", "lrm-vllm", "--model_args", f"pretrained={model_dir},max_model_len=512",
            "--tasks", "aime24_lrm", "--limit", "2", "--gen_kwargs", "max_gen_toks=8",
            "--output_path", str(tmp_path / "out"), *extra]


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("lrm-bench: error:")]


@pytest.mark.parametrize("command", ["lm_eval", "lrm eval"])
def test_an_engine_that_cannot_start_is_one_start_one_line_and_exit_4(command, tiny_hf_dir, offline_env, tmp_path):
    env = _env(offline_env, tmp_path, FAKE_VLLM_FAIL_INIT="fake vllm: no GPU with 80 GiB free\nmore detail")
    started = time.monotonic()
    proc = subprocess.run([*command.split(), *_lm_eval_args(tiny_hf_dir, tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_ENGINE_FAILED, proc.stderr[-3000:]
    assert time.monotonic() - started < 120
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "lrm-vllm engine failed" in lines[0] and "RuntimeError: fake vllm: no GPU with 80 GiB free" in lines[0]
    assert "more detail" not in lines[0] and "Traceback" not in proc.stderr
    logs = list((tmp_path / "engine_logs").glob("engine-failure-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0] and "more detail" in logs[0].read_text()
    assert (tmp_path / "inits.log").read_text().count("\n") == 1  # one start, no retry


def test_failed_requests_are_recorded_and_exit_3_unless_allowed(tiny_hf_dir, offline_env, tmp_path):
    poison = json.dumps(_first_doc_tokens(tiny_hf_dir))
    env = _env(offline_env, tmp_path, FAKE_VLLM_FAIL_TOKENS=poison)
    proc = subprocess.run(["lrm", "eval", *_lm_eval_args(tiny_hf_dir, tmp_path), "--max-retries", "1"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_REQUESTS_FAILED, proc.stderr[-3000:]
    summary = [ln for ln in proc.stderr.splitlines() if "requests failed" in ln]
    assert len(summary) == 1 and "1 of 2 requests failed" in summary[0], proc.stderr[-3000:]
    records = list((tmp_path / "records").glob("lrm_responses_aime24_lrm_*.jsonl"))
    assert len(records) == 1 and str(records[0]) in summary[0]
    recs = [json.loads(line) for line in records[0].read_text().splitlines()]
    assert [bool(r["error"]) for r in recs].count(True) == 1
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert results["lrm"]["failed_requests"] == 1 and results["lrm"]["retries"] == 1

    # Plain lm_eval through the hook: the same exit status; allowed failures exit 0.
    args = _lm_eval_args(tiny_hf_dir, tmp_path / "plain")
    proc = subprocess.run(["lm_eval", *args, "--metadata", json.dumps({"lrm_max_retries": 0})],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_REQUESTS_FAILED, proc.stderr[-3000:]
    proc = subprocess.run(["lm_eval", *args, "--metadata", json.dumps({"lrm_allow_failures": True, "lrm_max_retries": 0})],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "allowed by --allow-failures" in proc.stderr


# ------------------------------------------------------------- real vLLM


def _real_vllm_python() -> str | None:
    python = os.environ.get("LRM_VLLM_PYTHON")
    return python if python and Path(python).is_file() else None


@pytest.mark.skipif(_real_vllm_python() is None,
                    reason="needs $LRM_VLLM_PYTHON: a Python with vLLM's CPU build (see README 'Tests')")
def test_a_real_vllm_engine_that_cannot_start_is_one_line_and_exit_4(offline_env, tmp_path, request):
    python = _real_vllm_python()
    model = os.environ.get("LRM_VLLM_MODEL") or str(request.getfixturevalue("smollm2_dir"))
    env = dict(offline_env, LRM_ENGINE_LOG_DIR=str(tmp_path / "engine_logs"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    # SmolLM2 allows 8192 positions: asking for 10x that is refused while the engine starts.
    cmd = [python, "-c", "import sys; from lrm_backends.cli import main; sys.exit(main())", "eval",
           "--model", "lrm-vllm", "--model_args",
           f"pretrained={model},max_model_len=81920,enforce_eager=True,dtype=bfloat16",
           "--tasks", "aime24_lrm", "--limit", "2", "--gen_kwargs", "max_gen_toks=8"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_ENGINE_FAILED, proc.stderr[-4000:]
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and "lrm-vllm engine failed" in lines[0] and "max_model_len" in lines[0], proc.stderr[-4000:]
