"""The response cache (lrm_backends.run.cache), and fault injection: a run killed (SIGKILL)
at several points and restarted with the same cache ends with the records and results of
an uninterrupted run, generating nothing twice.

The fault-injection test (slow) runs tests/helpers/resume_driver.py in subprocesses: one
uninterrupted run, then a run killed at each point of a plan drawn with a fixed seed,
restarted every time with the same cache, then once more to completion. Two backends: lm-eval's ``hf`` on the
tiny offline model (samples from torch's global generator, reseeded per request) and
``lrm-vllm`` on the fake vllm engine (per-request ``SamplingParams.seed``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from lrm_backends.run.cache import (
    CacheError, ResilientLM, ResponseCache, identity_digest, model_identity, settings_from,
)
from lrm_tasks.text import Generation

HELPERS = Path(__file__).resolve().parent / "helpers"
FAKE_VLLM = HELPERS / "fake_vllm"
SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
TASKS = ["aime24_lrm", "folio_lrm"]
LIMIT, REPEATS = 2, 3
N_RESPONSES = len(TASKS) * LIMIT * REPEATS  # 12
PLAN_SEED = 20251128
GENERATION_KILLS = ("after_store", "torn_write", "in_generate", "after_store")


def kill_plan(seed: int = PLAN_SEED) -> list[tuple[str, int]]:
    """Four kills while generating, in an order and at counts drawn with ``seed`` (each
    stores at most three new responses, so every one is reached), then one while scoring."""
    rng = random.Random(seed)
    kinds = list(GENERATION_KILLS)
    rng.shuffle(kinds)
    store_counts = iter(rng.sample([1, 2, 3], 2))  # the two after_store kills differ
    plan = [(kind, next(store_counts) if kind == "after_store" else rng.randint(1, 2)) for kind in kinds]
    return [*plan, ("in_scoring", rng.randint(1, N_RESPONSES))]


def run_driver(tmp: Path, name: str, backend: str, model: Path, cache: Path, kill=None,
               data_parallel_size: int = 1) -> subprocess.CompletedProcess:
    config = {
        "data_parallel_size": data_parallel_size,
        "backend": backend, "model": str(model), "cache": str(cache), "tasks": TASKS, "limit": LIMIT,
        "repeats": REPEATS, "max_gen_toks": 6, "results": str(tmp / f"{name}.results.json"),
        "seeds_log": str(tmp / f"{name}.seeds"), "kill": list(kill) if kill else None,
    }
    (tmp / f"{name}.json").write_text(json.dumps(config))
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "LRM_DATA_DIR": str(SAMPLES), "LRM_RECORDS_DIR": str(tmp / f"{name}.records"),
        "HF_DATASETS_CACHE": str(tmp / "hf_datasets"), "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(FAKE_VLLM), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("LRM_CACHE_DIR", None)
    return subprocess.run([sys.executable, str(HELPERS / "resume_driver.py"), str(tmp / f"{name}.json")],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=300)


def cache_lines(cache: Path) -> list[bytes]:
    """Complete lines only: a torn last line (no newline yet) is not an entry."""
    files = list(cache.glob("*/responses*.jsonl"))
    return [line for f in files for line in f.read_bytes().split(b"\n")[:-1] if line]


def entries(cache: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for line in cache_lines(cache):
        e = json.loads(line)
        out[(e["k"], e["r"])] = e
    return out


def records(folder: Path) -> list[dict]:
    rows = [json.loads(line) for f in sorted(folder.glob("lrm_responses_*.jsonl"))
            for line in f.read_text().splitlines() if line]
    return sorted(rows, key=lambda r: (r["task"], r["doc_key"], r["repeat"]))


def seeds(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "lrm-vllm"])
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, tiny_hf_dir, backend):
    ref = run_driver(tmp_path, "ref", backend, tiny_hf_dir, tmp_path / "cache_ref")
    assert ref.returncode == 0, ref.stderr[-4000:]
    ref_entries = entries(tmp_path / "cache_ref")
    assert len(ref_entries) == N_RESPONSES

    cache = tmp_path / "cache"
    plan = kill_plan()
    assert len(set(plan)) >= 5
    for i, point in enumerate(plan):
        before = entries(cache) if cache.exists() else {}
        stored_seeds = {e.get("seed") for e in before.values()}
        proc = run_driver(tmp_path, f"kill{i}", backend, tiny_hf_dir, cache, kill=point)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-4000:])
        # Nothing already stored was drawn again.
        assert not stored_seeds & set(seeds(tmp_path / f"kill{i}.seeds")), point
        if point[0] == "torn_write":
            torn = next(cache.glob("*/responses.jsonl")).read_bytes()
            assert torn and not torn.endswith(b"\n")  # the next start must cope with it
        else:
            assert len(entries(cache)) > len(before) or point[0] in ("in_generate", "in_scoring"), point

    stored = entries(cache)
    final = run_driver(tmp_path, "final", backend, tiny_hf_dir, cache)
    assert final.returncode == 0, final.stderr[-4000:]
    assert not {e.get("seed") for e in stored.values()} & set(seeds(tmp_path / "final.seeds"))

    # Every response once in the cache (none generated twice), and the same as uninterrupted.
    lines = cache_lines(cache)
    assert len(lines) == N_RESPONSES == len(entries(cache))
    assert entries(cache) == ref_entries
    # Per-response records and results equal the uninterrupted run's.
    final_records = records(tmp_path / "final.records")
    assert final_records == records(tmp_path / "ref.records") and len(final_records) == N_RESPONSES
    if backend == "lrm-vllm":  # vllm's exact counts and finish reasons, also when served from the cache
        assert all(r["count_source"] == "backend" and r["finish_reason"] in ("stop", "length") for r in final_records)
    got = json.loads((tmp_path / "final.results.json").read_text())
    want = json.loads((tmp_path / "ref.results.json").read_text())
    assert got["results"] == want["results"]
    assert got["lrm"]["cache"]["responses_from_cache"] + got["lrm"]["responses_generated"] == N_RESPONSES
    assert got["lrm"]["responses_generated"] == N_RESPONSES - len(stored)
    assert got["lrm"]["failed_requests"] == 0


@pytest.mark.slow
def test_a_killed_data_parallel_run_resumes_with_another_replica_count(tmp_path, tiny_hf_dir, monkeypatch):
    """Issue 13: the driver of a data_parallel_size=2 run (two Ray replicas of the fake
    engine) is killed after its third stored response; the same command with
    data_parallel_size=1 generates only what is missing and ends with the uninterrupted
    run's responses, records and results (replica counts are not part of the cache's
    model identity)."""
    pytest.importorskip("ray")
    ref = run_driver(tmp_path, "ref", "lrm-vllm", tiny_hf_dir, tmp_path / "cache_ref")
    assert ref.returncode == 0, ref.stderr[-4000:]
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_VLLM_LOADS", str(tmp_path / "dp2.loads"))  # one pid per engine built
    killed = run_driver(tmp_path, "dp2", "lrm-vllm", tiny_hf_dir, cache, kill=("after_store", 3), data_parallel_size=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
    assert len(set((tmp_path / "dp2.loads").read_text().split())) == 2  # two replica processes served it
    stored = entries(cache)
    assert 3 <= len(stored) < N_RESPONSES
    final = run_driver(tmp_path, "final", "lrm-vllm", tiny_hf_dir, cache, data_parallel_size=1)
    assert final.returncode == 0, final.stderr[-4000:]
    assert len(cache_lines(cache)) == N_RESPONSES and entries(cache) == entries(tmp_path / "cache_ref")
    assert records(tmp_path / "final.records") == records(tmp_path / "ref.records")
    got = json.loads((tmp_path / "final.results.json").read_text())
    assert got["results"] == json.loads((tmp_path / "ref.results.json").read_text())["results"]
    assert got["lrm"]["responses_generated"] == N_RESPONSES - len(stored)


def test_the_plan_is_fixed():
    assert kill_plan() == kill_plan(PLAN_SEED) and kill_plan()[-1][0] == "in_scoring"


# ------------------------------------------------------------------- unit tests (fast)

SAMPLE = {"until": [], "do_sample": True, "temperature": 0.6, "max_gen_toks": 8}
IDENTITY = {"backend": "fake", "args": {"pretrained": "m"}, "files": {}}


def req(context: str, doc_key: str = "d", kwargs: dict | None = None, task: str = "aime24_lrm") -> Instance:
    return Instance("generate_until", {"doc_key": doc_key}, (context, dict(kwargs or SAMPLE)), 0, (task, 0, 1))


class FakeLM(LM):
    """Reports each response through lm-eval's cache hook (as HF and lrm-gguf do), or not
    (as lm-eval's vllm, whose hook arguments never match); takes a per-request seed."""

    lrm_seeding = "request"

    def __init__(self, report: bool = True, fail_on: str | None = None, cache_dir: Path | None = None):
        super().__init__()
        self.report, self.fail_on, self.cache_dir = report, fail_on, cache_dir
        self.calls: list[int] = []
        self.lines_seen: list[int] = []  # cache lines on disk as each response is made

    def generate_until(self, requests, disable_tqdm=False):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            context, kwargs = r.args
            if self.fail_on and self.fail_on in context:
                raise RuntimeError(f"cannot serve {context!r}")
            text = f"{context}|{kwargs.get('seed')}"
            g = Generation(text, generated_tokens=len(text), finish_reason="stop")
            out.append(g)
            if self.report:
                self.cache_hook.add_partial("generate_until", r.args, g)
            if self.cache_dir is not None:
                self.lines_seen.append(len(cache_lines(self.cache_dir)))
        return out

    def loglikelihood(self, requests, disable_tqdm=False):
        self.calls.append(len(requests))
        return [(-float(len(r.args[1])), True) for r in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        return [-1.0 for _ in requests]


def test_k_repeats_are_k_entries_stored_as_each_is_generated(tmp_path):
    lm = FakeLM(cache_dir=tmp_path)
    wrapper = ResilientLM(lm, cache=ResponseCache(tmp_path, IDENTITY))
    three = req("Q")
    out = wrapper.generate_until([three, three, three, req("R", "e")])
    wrapper.close()
    assert lm.lines_seen == [1, 2, 3, 4]  # on disk before the next response was made
    assert len({str(g) for g in out[:3]}) == 3  # three repeats, three seeds, three samples
    stored = entries(tmp_path)
    assert sorted(r for (_, r) in stored) == [0, 0, 1, 2]
    assert all(e["generated_tokens"] == len(e["text"]) and e["finish_reason"] == "stop" for e in stored.values())

    again = FakeLM()
    wrapper = ResilientLM(again, cache=ResponseCache(tmp_path, IDENTITY))
    assert [str(g) for g in wrapper.generate_until([three, three, three, three, req("R", "e")])] == [
        *[str(g) for g in out[:3]], f"Q|{seed_of('Q', 3)}", str(out[3])]
    assert again.calls == [1] and wrapper.stats["cached"] == 4  # only the fourth repeat is new
    wrapper.close()


def seed_of(context: str, repeat: int) -> int:
    from lrm_backends.run.cache import make_slots

    slots = make_slots("generate_until", [req(context)] * (repeat + 1), seeding="request")
    return slots[repeat].seed


def test_two_models_never_share_an_entry(tmp_path):
    a = ResponseCache(tmp_path, model_identity("hf", "pretrained=org/a,batch_size=8"))
    b = ResponseCache(tmp_path, model_identity("hf", "pretrained=org/b,batch_size=8"))
    same = model_identity("hf", {"pretrained": "org/a", "batch_size": 64, "device": "cuda:1"})
    assert a.folder != b.folder and identity_digest(same) == identity_digest(a.identity)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"x" * 10)
    before = identity_digest(model_identity("lrm-vllm", {"pretrained": str(ckpt)}))
    (ckpt / "model.safetensors").write_bytes(b"y" * 11)  # re-saved: another model at the same path
    assert identity_digest(model_identity("lrm-vllm", {"pretrained": str(ckpt)})) != before
    for c in (a, b):
        c.close()


def test_a_torn_last_line_is_cut_and_a_bad_line_skipped(tmp_path):
    cache = ResponseCache(tmp_path, IDENTITY)
    cache.put({"k": "a", "r": 0, "m": "generate_until", "text": "one"})
    cache.put({"k": "b", "r": 0, "m": "generate_until", "text": "two"})
    cache.close()
    path = cache.path
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"two"', b'"two'[:-1] + b"!!", 1) + b'{"k":"c","r":0,"m":"gener')
    reopened = ResponseCache(tmp_path, IDENTITY)
    assert reopened.torn_lines == 1 and reopened.bad_lines == 1
    assert set(reopened.entries) == {("a", 0)}
    assert path.read_bytes().endswith(b"\n") and b'"k":"c"' not in path.read_bytes()
    reopened.put({"k": "c", "r": 0, "m": "generate_until", "text": "three"})
    reopened.close()
    assert set(ResponseCache(tmp_path, IDENTITY).entries) == {("a", 0), ("c", 0)}


def test_one_writer_at_a_time(tmp_path):
    first = ResponseCache(tmp_path, IDENTITY)
    with pytest.raises(CacheError) as err:
        ResponseCache(tmp_path, IDENTITY)
    assert str(err.value) == (
        f"cache file {first.path} is in use by another running evaluation. Wait for it to finish, "
        "or give this run another --cache folder.")
    first.close()
    ResponseCache(tmp_path, IDENTITY).close()


def test_backends_that_report_nothing_get_bounded_chunks(tmp_path):
    lm = FakeLM(report=False)
    wrapper = ResilientLM(lm, cache=ResponseCache(tmp_path, IDENTITY), chunk_size=3)
    wrapper.generate_until([req(f"Q{i}", f"d{i}") for i in range(8)])
    assert lm.calls == [3, 3, 2] and wrapper._streams is False
    reporting = FakeLM(report=True)
    wrapper2 = ResilientLM(reporting, cache=ResponseCache(tmp_path / "2", IDENTITY), chunk_size=3)
    wrapper2.generate_until([req(f"Q{i}", f"d{i}") for i in range(8)])
    assert reporting.calls == [3, 5] and wrapper2._streams is True  # per response: one call for the rest
    wrapper.close()
    wrapper2.close()


def test_errors_are_isolated_to_their_request_and_not_stored(tmp_path):
    lm = FakeLM(fail_on="bad")
    wrapper = ResilientLM(lm, cache=ResponseCache(tmp_path, IDENTITY))
    out = wrapper.generate_until([req("ok1", "a"), req("bad", "b"), req("ok2", "c"), req("ok3", "d")])
    wrapper.close()
    assert [g.error for g in out] == [None, "RuntimeError: cannot serve 'bad'", None, None]
    assert str(out[1]) == "" and out[1].generated_tokens is None
    assert wrapper.summary() == {
        "failed_requests": 1, "failed_by_task": {"aime24_lrm": 1}, "responses_generated": 3,
        "requests": 4, "retries": 2, "recovered_by_retry": 0, "max_retries": 2,
        "cache": {"folder": str(wrapper.cache.folder), "responses_from_cache": 0}}
    assert len(entries(tmp_path)) == 3
    with pytest.raises(RuntimeError, match="cannot serve 'bad'"):
        ResilientLM(FakeLM(fail_on="bad"), strict=True).generate_until([req("bad")])


def test_identical_requests_reported_out_of_order_keep_the_reported_assignment(tmp_path):
    class Shuffling(FakeLM):
        lrm_seeding = "none"

        def generate_until(self, requests, disable_tqdm=False):
            texts = [Generation(f"sample{i}") for i in range(len(requests))]
            for r, t in zip(reversed(requests), reversed(texts)):  # completion order differs
                self.cache_hook.add_partial("generate_until", r.args, t)
            return texts

    wrapper = ResilientLM(Shuffling(), cache=ResponseCache(tmp_path, IDENTITY))
    same = req("Q", kwargs={"until": [], "max_gen_toks": 4})
    out = wrapper.generate_until([same, same, same])
    wrapper.close()
    by_repeat = {r: e["text"] for (_, r), e in entries(tmp_path).items()}
    assert [str(g) for g in out] == [by_repeat[0], by_repeat[1], by_repeat[2]]
    assert sorted(by_repeat.values()) == ["sample0", "sample1", "sample2"]


def test_likelihoods_are_cached_too(tmp_path):
    lm = FakeLM()
    r = Instance("loglikelihood", {"doc_key": "d"}, ("ctx", " yes"), 0, ("t", 0, 1))
    first = ResilientLM(lm, cache=ResponseCache(tmp_path, IDENTITY))
    assert first.loglikelihood([r]) == [(-4.0, True)]
    first.close()
    second = ResilientLM(lm, cache=ResponseCache(tmp_path, IDENTITY))
    assert second.loglikelihood([r]) == [(-4.0, True)] and lm.calls == [1]
    second.close()


def test_settings_from_metadata_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LRM_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("LRM_STRICT", "1")
    assert settings_from({}).cache_dir == tmp_path / "env" and settings_from({}).strict
    s = settings_from({"lrm_cache": str(tmp_path / "meta"), "lrm_strict": False})
    assert s.cache_dir == tmp_path / "meta" and not s.strict
    monkeypatch.delenv("LRM_CACHE_DIR")
    monkeypatch.delenv("LRM_STRICT")
    assert settings_from(None).cache_dir is None and not settings_from(None).strict


def test_a_response_is_handed_on_as_a_resumed_run_will_read_it(tmp_path):
    class Broken(FakeLM):
        def generate_until(self, requests, disable_tqdm=False):
            return [Generation("a\ud800\udc00b\udfff", generated_tokens=3) for _ in requests]

    wrapper = ResilientLM(Broken(), cache=ResponseCache(tmp_path, IDENTITY))
    fresh = wrapper.generate_until([req("Q")])
    wrapper.close()
    resumed = ResilientLM(FakeLM(), cache=ResponseCache(tmp_path, IDENTITY))
    assert [str(g) for g in resumed.generate_until([req("Q")])] == [str(g) for g in fresh] == ["a\U00010000b\udfff"]
    resumed.close()
