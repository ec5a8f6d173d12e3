"""Replicas that live for the whole run, on real Ray (loopback, CPU resources only).

lrm-vllm's replicas run the fake engine (tests/helpers/fake_vllm, on the replicas'
PYTHONPATH) for the counts and faults a real engine cannot be made to show; lrm-gguf's
run the tiny GGUF. Every test stops what it started: the module's Ray instance
(ray.shutdown) and the two-node cluster's processes (by their process group).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from lm_eval.api.instance import Instance  # noqa: E402

from lrm_backends.run.cache import ResilientLM, ResponseCache, model_identity  # noqa: E402

FAKE_VLLM = Path(__file__).resolve().parent / "helpers" / "fake_vllm"
SAMPLED = {"until": [], "do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_gen_toks": 12}


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray instance for the module. Its workers inherit this environment when
    it starts: the fake vllm on PYTHONPATH, the fake's load and response logs, and a
    delay per generate call (time to kill a replica mid-run). Yields the two logs."""
    logs = tmp_path_factory.mktemp("fake_logs")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(FAKE_VLLM), os.environ.get("PYTHONPATH")) if p),
           "FAKE_VLLM_LOADS": str(logs / "loads.txt"), "FAKE_VLLM_LOG": str(logs / "generated.jsonl"),
           "FAKE_VLLM_DELAY": "0.1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=4, include_dashboard=False, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        yield logs / "loads.txt", logs / "generated.jsonl"
    finally:
        ray.shutdown()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fresh(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def fake_vllm_backend(local_ray):
    """lrm-vllm's class built over the fake vllm; every trace removed afterwards."""
    import importlib

    from lm_eval.api.registry import model_registry

    import lm_eval.models  # noqa: F401  (registers the lazy "vllm" placeholder)
    from lrm_backends.models import vllm as vllm_backend

    def forget() -> None:
        for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
            del sys.modules[name]
        sys.modules.pop("lm_eval.models.vllm_causallms", None)
        vllm_backend._lazy.forget()

    saved = model_registry._objs.get("vllm")
    forget()
    sys.path.insert(0, str(FAKE_VLLM))
    importlib.invalidate_caches()
    try:
        import vllm

        yield vllm_backend.VLLMBackend, vllm, local_ray
    finally:
        sys.path.remove(str(FAKE_VLLM))
        forget()
        if saved is not None:
            model_registry._objs["vllm"] = saved


@pytest.fixture(scope="module")
def tiny_gguf(tiny_hf_dir, tmp_path_factory) -> Path:
    from helpers.tiny_models import build_tiny_gguf

    return build_tiny_gguf(tiny_hf_dir, tmp_path_factory.mktemp("tiny_gguf") / "tiny.gguf")


def _requests(n_docs: int, k: int) -> list[Instance]:
    out = []
    for d in range(n_docs):
        inst = Instance("generate_until", {"doc_key": f"d{d}"}, (f"Question {d}? ", dict(SAMPLED)), 0,
                        ("aime24_lrm", d, 1))
        out += [inst] * k  # lm-eval's k repeats: k references to one Instance
    return out


def _cache_entries(cache: ResponseCache) -> list[dict]:
    lines = []
    for path in sorted(cache.folder.glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def test_fake_engine_replicas_load_once_for_1920_requests(fake_vllm_backend, tiny_hf_dir, tmp_path):
    VLLMBackend, vllm, (loads, generated) = fake_vllm_backend
    _fresh(loads, generated)
    reqs = _requests(30, 64)  # 1,920 requests: 30 questions x 64 samples

    lm = VLLMBackend(pretrained=str(tiny_hf_dir), data_parallel_size=2, chunk_size=128, max_model_len=512)
    try:
        identity = model_identity("lrm-vllm", {"pretrained": str(tiny_hf_dir), "data_parallel_size": 2,
                                               "chunk_size": 128, "ray_address": "127.0.0.1:1"})
        cache = ResponseCache(tmp_path / "cache", identity)
        wrapped = ResilientLM(lm, cache=cache)
        out = wrapped.generate_until(reqs)
        summary = wrapped.summary()
        wrapped.close()
    finally:
        lm.close_replicas()
    pids = loads.read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2  # one construction per replica, 15 chunks
    assert summary["replica_loads"] == 2 and summary["chunks"] == 15 and summary["chunk_retries"] == 0
    served = Counter(json.loads(line)["pid"] for line in generated.read_text().splitlines())
    assert set(map(str, served)) == set(pids) and sum(served.values()) == 1920  # both replicas served
    _fresh(generated)
    entries = _cache_entries(cache)
    assert len(entries) == 1920 == len({(e["k"], e["r"]) for e in entries})
    # The same seeds give the same responses with one in-process engine (any N).
    engine = vllm.LLM(model=str(tiny_hf_dir), max_model_len=512)
    single = ResilientLM(VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=128, engine=engine))
    assert [str(x) for x in single.generate_until(reqs)] == [str(x) for x in out]
    # A resumed run with another N reuses the same cache folder (identity without N).
    assert model_identity("lrm-vllm", {"pretrained": str(tiny_hf_dir)}) == identity


def test_a_killed_replica_loses_nothing_and_generates_nothing_twice(fake_vllm_backend, tiny_hf_dir, tmp_path):
    VLLMBackend, vllm, (loads, generated) = fake_vllm_backend
    _fresh(loads, generated)
    reqs = _requests(40, 8)  # 320 requests in 20 chunks of 16
    lm = VLLMBackend(pretrained=str(tiny_hf_dir), data_parallel_size=2, chunk_size=16, max_model_len=512)
    pool = lm.replica_pool
    victim = pool.actors[0]

    def kill_after_three_chunks() -> None:
        deadline = time.monotonic() + 60
        while pool.stats["chunks"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        ray.kill(victim)  # the actor dies mid-run, holding (or about to take) a chunk

    cache = ResponseCache(tmp_path / "cache", model_identity("lrm-vllm", {"pretrained": str(tiny_hf_dir)}))
    killer = threading.Thread(target=kill_after_three_chunks)
    try:
        wrapped = ResilientLM(lm, cache=cache)
        killer.start()
        out = wrapped.generate_until(reqs)
        summary = wrapped.summary()
        wrapped.close()
    finally:
        killer.join()
        lm.close_replicas()
    assert summary["replicas_lost"] == 1 and summary["chunk_retries"] == 1
    assert summary["failed_requests"] == 0 and all(str(x) for x in out)
    entries = _cache_entries(cache)
    assert len(entries) == 320 == len({(e["k"], e["r"]) for e in entries})  # nothing lost, nothing twice
    # At most the lost chunk was generated again (inside the dead replica, never stored).
    in_replicas = len(generated.read_text().splitlines())
    assert 320 <= in_replicas <= 320 + 16
    engine = vllm.LLM(model=str(tiny_hf_dir), max_model_len=512)
    single = ResilientLM(VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=16, engine=engine))
    assert [str(x) for x in single.generate_until(reqs)] == [str(x) for x in out]


def test_gguf_replicas_equal_one_process_with_the_same_seeds(local_ray, tiny_gguf):
    from lrm_backends.models.gguf import GGUFBackend

    reqs = _requests(6, 3)
    # Called directly: results are positional (request i samples with seed + i in both).
    # (Through ResilientLM without a cache, identical unseeded repeats may swap places.)
    expected = GGUFBackend(pretrained=str(tiny_gguf), n_threads=1).generate_until(reqs)
    two = GGUFBackend(pretrained=str(tiny_gguf), n_threads=1, replicas=2, chunk_size=4)
    try:
        got = two.generate_until(reqs)
        summary = two.lrm_summary()
    finally:
        two.close_replicas()
    assert [str(x) for x in got] == [str(x) for x in expected]
    assert len({str(x) for x in got}) > 1  # sampled, different prompts and seeds
    assert [x.generated_tokens for x in got] == [x.generated_tokens for x in expected]
    assert summary["replica_loads"] == 2 and summary["chunks"] == 5
    assert model_identity("lrm-gguf", {"pretrained": str(tiny_gguf), "replicas": 2}) == \
        model_identity("lrm-gguf", {"pretrained": str(tiny_gguf)})


def test_replicas_without_ray_fail_before_loading(tiny_gguf, monkeypatch):
    import importlib.util

    from lrm_backends.models.gguf import GGUFBackend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'lrm-bench\[ray\]'"):
        GGUFBackend(pretrained=str(tiny_gguf), replicas=2)


@pytest.mark.parametrize("auth_mode", ["", "token"])
def test_a_cluster_that_cannot_be_joined_is_one_message_with_the_causes(tiny_gguf, monkeypatch, auth_mode):
    """ray.init(address=...) failing (nothing there, or Ray 2.59+'s token missing: Ray only
    says "Failed to connect to GCS") ends in one message naming the address, the checks
    and, unless RAY_AUTH_MODE=token is set already, the token settings."""
    from lrm_backends.models.gguf import GGUFBackend
    from lrm_backends.models.replicas import ReplicaError

    def refuse(*args, **kwargs):
        raise RuntimeError("Failed to connect to GCS. Last connection error: Unauthenticated\n  (traceback)")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setenv("RAY_AUTH_MODE", auth_mode)
    with pytest.raises(ReplicaError) as info:
        GGUFBackend(pretrained=str(tiny_gguf), replicas=2, ray_address="10.0.0.7:6379")
    message = str(info.value)
    assert message.startswith("could not join the Ray cluster at 10.0.0.7:6379 (RuntimeError: Failed to connect "
                              "to GCS. Last connection error: Unauthenticated). Check that `ray start --head`")
    assert ("RAY_AUTH_MODE=token here" in message) == (auth_mode != "token")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ray_nodes_both_serve_replicas(tiny_gguf, tmp_path, offline_env):
    """`ray start --head` + `ray start --address=...` on loopback, 1 CPU each; lm_eval joins
    with ray_address=; the results' lrm block names both nodes. Stopped by process group."""
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python
    port = _free_port()
    # Short: Ray's unix sockets live under it (AF_UNIX paths stop at 107 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="lrmray", dir="/tmp")
    # Token authentication (Ray >= 2.5x) would need a token shared by both nodes and the
    # driver; a loopback test cluster runs without.
    env = {**offline_env, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    head = [*ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
            f"--temp-dir={ray_tmp}", "--include-dashboard=false", *common]
    worker = [*ray_cli, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common]
    procs = []
    try:
        procs.append(subprocess.Popen(head, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(8)
        procs.append(subprocess.Popen(worker, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(6)
        out = tmp_path / "out"
        run = subprocess.run(
            ["lm_eval", "--model", "lrm-gguf", "--model_args",
             f"pretrained={tiny_gguf},n_threads=1,replicas=2,chunk_size=1,ray_address=127.0.0.1:{port}",
             "--tasks", "aime24_lrm", "--limit", "4", "--gen_kwargs", "max_gen_toks=8",
             "--output_path", str(out)],
            env={**env, "LRM_RECORDS_DIR": str(tmp_path / "records")}, capture_output=True, text=True,
            timeout=150,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        results = json.loads(next(out.rglob("results_*.json")).read_text())
        lrm = results["lrm"]
        assert lrm["replica_loads"] == 2 and len(lrm["chunks_by_node"]) == 2, lrm
    finally:
        for proc in reversed(procs):  # exactly what this test started: its process groups
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        shutil.rmtree(ray_tmp, ignore_errors=True)
