"""lrm-vllm against a fake engine with vllm's LLM.generate interface (no GPU, no vllm).

The fake lives in tests/helpers/fake_vllm (a ``vllm`` package plus dist-info, so that
lm-eval's ``vllm_causallms`` imports); the ``fake_vllm`` fixture puts it on sys.path and
removes every trace afterwards.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.model import CacheHook

from lrm_backends.models import vllm as vllm_backend
from lrm_backends.run.cache import ResilientLM, ResponseCache
from lrm_tasks.text import Generation

FAKE_VLLM = Path(__file__).resolve().parent / "helpers" / "fake_vllm"
SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
TASK_DIR = str(Path(__file__).resolve().parents[1] / "task_configs")  # ours, without lm-eval's own
SAMPLED = {"until": [], "do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_gen_toks": 12}


def _forget_vllm() -> None:
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]
    sys.modules.pop("lm_eval.models.vllm_causallms", None)
    vllm_backend._lazy.forget()


@pytest.fixture(scope="module")
def _fake_vllm_module():
    """Import lm-eval's vllm model once over the fake; undo it (and lm-eval's registry
    entry, which a second import would collide with) after this module's tests."""
    from lm_eval.api.registry import model_registry

    import lm_eval.models  # noqa: F401  (registers the lazy "vllm" placeholder)

    saved = model_registry._objs.get("vllm")
    _forget_vllm()
    sys.path.insert(0, str(FAKE_VLLM))
    importlib.invalidate_caches()
    try:
        import vllm

        import lm_eval.models.vllm_causallms  # noqa: F401

        yield vllm
    finally:
        sys.path.remove(str(FAKE_VLLM))
        _forget_vllm()
        if saved is not None:
            model_registry._objs["vllm"] = saved


@pytest.fixture()
def fake_vllm(_fake_vllm_module):
    vllm = _fake_vllm_module
    vllm.LLM.calls = vllm.LLM.generated = 0
    vllm.LLM.fail_when = None
    try:
        yield vllm
    finally:
        vllm.LLM.fail_when = None


def request(context: str, doc_key: str = "d", gen_kwargs: dict | None = None, doc_id: int = 0) -> Instance:
    return Instance("generate_until", {"doc_key": doc_key}, (context, dict(gen_kwargs or SAMPLED)), 0,
                    ("aime24_lrm", doc_id, 1))


class RecordingHook(CacheHook):
    def __init__(self, log: list) -> None:
        super().__init__(None)
        self.log = log

    def add_partial(self, attr, req, res):
        self.log.append(("partial", req, res))


def test_without_vllm_the_module_imports_and_the_class_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` fails
    monkeypatch.setitem(sys.modules, "lm_eval.models.vllm_causallms", None)
    vllm_backend._lazy.forget()
    assert callable(vllm_backend.validate_model_args)
    with pytest.raises(ImportError) as err:
        vllm_backend.VLLMBackend  # noqa: B018
    assert str(err.value) == (
        "the lrm-vllm backend needs vllm, which is not installed: "
        "pip install 'lrm-bench[vllm]' (vllm needs a CUDA GPU)."
    )


def test_chunks_exact_counts_and_finish_reasons(fake_vllm, tiny_hf_dir):
    engine = fake_vllm.LLM(model=str(tiny_hf_dir), max_model_len=512)
    lm = vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=2, engine=engine)
    assert lm.model is engine and lm.max_length == 512
    log: list = []
    lm.set_cache_hook(RecordingHook(log))
    generate = engine.generate

    def spying_generate(prompts, sampling_params=None, **kw):
        log.append(("generate", len(prompts)))
        return generate(prompts, sampling_params=sampling_params, **kw)

    engine.generate = spying_generate
    reqs = [request(f"Question {i}? ", f"d{i}", {**SAMPLED, "seed": 100 + i}) for i in range(5)]
    out = lm.generate_until(reqs)

    # Three bounded calls, each chunk reported (with the requests' own args) before the next.
    kinds = [e[0] if e[0] == "partial" else e for e in log]
    assert kinds == [("generate", 2), "partial", "partial", ("generate", 2), "partial", "partial",
                     ("generate", 1), "partial"]
    assert [e[1] for e in log if e[0] == "partial"] == [r.args for r in reqs]
    for g in out:
        assert isinstance(g, Generation) and g.count_source == "backend"
        assert g.generated_tokens == len(str(g).split())  # the fake: one token per word
        assert g.finish_reason == ("stop" if "\\boxed" in g else "length")
    assert {g.finish_reason for g in out} == {"stop", "length"}
    # Per-request seeds reach SamplingParams: the same seed and prompt, the same sample.
    again = lm.generate_until([request("Question 3? ", "d3", {**SAMPLED, "seed": 103})])
    assert str(again[0]) == str(out[3])


def test_constructor_defaults_keep_trust_and_safetensors(fake_vllm, tiny_hf_dir):
    import lm_eval.models.vllm_causallms as vllm_lm

    original = vllm_lm.LLM
    lm = vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir))
    assert isinstance(lm.model, fake_vllm.LLM)  # built by lm-eval's VLLM.__init__
    assert lm.model.kwargs["load_format"] == "safetensors"
    assert lm.model_args["trust_remote_code"] is False
    assert lm.chunk_size == vllm_backend.DEFAULT_CHUNK_SIZE
    injected = vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir), engine=fake_vllm.LLM(max_model_len=256))
    assert injected.max_length == 256 and vllm_lm.LLM is original
    assert vllm_backend.VLLMBackend.lrm_seeding == "request"
    with pytest.raises(ValueError, match="chunk_size=0: expected a positive integer"):
        vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=0)


def test_cache_serves_stored_chunks_and_isolates_a_failing_request(fake_vllm, tiny_hf_dir, tmp_path):
    engine = fake_vllm.LLM(max_model_len=512)
    lm = vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=2, engine=engine)
    identity = {"backend": "lrm-vllm", "args": {"pretrained": str(tiny_hf_dir)}, "files": {}}
    reqs = [request(f"Q{i} ", f"d{i}", doc_id=i) for i in range(3) for _ in range(2)]  # 3 docs x 2 repeats

    poison = lm.tok_encode("Q1 ")
    fake_vllm.LLM.fail_when = staticmethod(lambda tokens, sp: tokens == poison)
    wrapper = ResilientLM(lm, cache=ResponseCache(tmp_path, identity))
    first = wrapper.generate_until(reqs)
    wrapper.close()
    assert [bool(g.error) for g in first] == [False, False, True, True, False, False]
    assert first[2].startswith("") and str(first[2]) == "" and "cannot serve this prompt" in first[2].error
    assert wrapper.summary()["failed_requests"] == 2 and wrapper.summary()["failed_by_task"] == {"aime24_lrm": 2}
    # Per-request seeds: the two repeats of a document differ; failures are not stored.
    assert str(first[0]) != str(first[1])
    assert len(ResponseCache(tmp_path, identity).entries) == 4

    fake_vllm.LLM.fail_when = None
    calls = fake_vllm.LLM.calls
    again = ResilientLM(lm, cache=ResponseCache(tmp_path, identity))
    second = again.generate_until(reqs)
    again.close()
    assert fake_vllm.LLM.calls == calls + 1  # only the two failed requests, in one call
    assert again.stats["cached"] == 4 and again.stats["generated"] == 2
    assert [str(g) for i, g in enumerate(second) if i not in (2, 3)] == [str(g) for i, g in enumerate(first) if i not in (2, 3)]
    assert all(g.generated_tokens is not None and g.error is None for g in second)


def test_strict_aborts_on_the_first_backend_error(fake_vllm, tiny_hf_dir, tmp_path):
    lm = vllm_backend.VLLMBackend(pretrained=str(tiny_hf_dir), chunk_size=2, engine=fake_vllm.LLM())
    fake_vllm.LLM.fail_when = staticmethod(lambda tokens, sp: True)
    with pytest.raises(RuntimeError, match="cannot serve this prompt"):
        ResilientLM(lm, strict=True).generate_until([request("Q ")])


@pytest.fixture()
def lrm_vllm_registered():
    from lrm_backends.hookspecs import hookimpl
    from lrm_backends.plugins import get_plugin_manager

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("lrm-vllm", "lrm_backends.models.vllm:VLLMBackend")

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin, name="test-lrm-vllm")
    try:
        yield
    finally:
        pm.unregister(plugin)


def test_a_failed_request_is_recorded_and_counted_and_the_run_goes_on(
        fake_vllm, tiny_hf_dir, tmp_path, monkeypatch, lrm_vllm_registered):
    from lm_eval.tasks import TaskManager

    import lm_eval
    from lrm_backends.run.lmeval_glue import activate

    activate()
    monkeypatch.setenv("LRM_DATA_DIR", str(SAMPLES))
    monkeypatch.setenv("LRM_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("LRM_CACHE_DIR", raising=False)
    monkeypatch.delenv("LRM_STRICT", raising=False)
    first_doc = json.loads((SAMPLES / "aime24.jsonl").read_text().splitlines()[0])
    needle = str(first_doc.get("Problem") or first_doc.get("problem"))[:40]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_hf_dir)
    poison = tokenizer(needle, add_special_tokens=False)["input_ids"][2:8]

    def contains(tokens, sp):
        return any(tokens[i:i + len(poison)] == poison for i in range(len(tokens)))

    fake_vllm.LLM.fail_when = staticmethod(contains)
    meta = {"repeats": 2}
    results = lm_eval.simple_evaluate(
        model="lrm-vllm", model_args=f"pretrained={tiny_hf_dir},max_model_len=512", tasks=["aime24_lrm"],
        limit=2, gen_kwargs="max_gen_toks=8", task_manager=TaskManager(include_defaults=False, include_path=TASK_DIR, metadata=meta),
        metadata=meta,
    )
    assert results["lrm"]["failed_requests"] == 2 and results["lrm"]["failed_by_task"] == {"aime24_lrm": 2}
    recs = [json.loads(line) for f in (tmp_path / "records").glob("lrm_responses_*.jsonl")
            for line in f.read_text().splitlines()]
    failed = [r for r in recs if r["error"]]
    assert len(recs) == 4 and len(failed) == 2 and {r["doc_key"] for r in failed} == {first_doc.get("ID", first_doc.get("id"))}
    for r in failed:
        assert r["answer_strict"] is None and r["answer_flexible"] is None and r["total_tokens"] is None
        assert "RuntimeError: fake vllm: cannot serve this prompt" == r["error"]
    assert all(r["count_source"] == "backend" for r in recs if not r["error"])
    assert results["results"]["aime24_lrm"]["no_answer,strict"] >= 0.5

    with pytest.raises(RuntimeError, match="cannot serve this prompt"):
        lm_eval.simple_evaluate(
            model="lrm-vllm", model_args=f"pretrained={tiny_hf_dir},max_model_len=512", tasks=["aime24_lrm"],
            limit=2, gen_kwargs="max_gen_toks=8", task_manager=TaskManager(include_defaults=False, include_path=TASK_DIR),
            metadata={"lrm_strict": True},
        )


def test_retry_count_reaches_the_results_lrm_block(fake_vllm, tiny_hf_dir, tmp_path, monkeypatch, lrm_vllm_registered):
    from lm_eval.tasks import TaskManager

    import lm_eval
    from lrm_backends.run.lmeval_glue import activate
    from lrm_backends.run.failures import take_outcome

    activate()
    monkeypatch.setenv("LRM_DATA_DIR", str(SAMPLES))
    monkeypatch.setenv("LRM_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    first_doc = json.loads((SAMPLES / "aime24.jsonl").read_text().splitlines()[0])
    needle = str(first_doc.get("Problem") or first_doc.get("problem"))[:40]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(tiny_hf_dir)
    poison = tokenizer(needle, add_special_tokens=False)["input_ids"][2:8]
    left = {"n": 2}

    def fails_twice(tokens, sp):
        hit = any(tokens[i:i + len(poison)] == poison for i in range(len(tokens)))
        if hit and left["n"] > 0:
            left["n"] -= 1
            return True
        return False

    fake_vllm.LLM.fail_when = staticmethod(fails_twice)
    meta = {"lrm_max_retries": 3}
    results = lm_eval.simple_evaluate(
        model="lrm-vllm", model_args=f"pretrained={tiny_hf_dir},max_model_len=512", tasks=["aime24_lrm"],
        limit=2, gen_kwargs="max_gen_toks=8", task_manager=TaskManager(include_defaults=False, include_path=TASK_DIR, metadata=meta),
        metadata=meta,
    )
    lrm = results["lrm"]
    assert lrm["failed_requests"] == 0 and lrm["max_retries"] == 3
    # The first failure is the chunk of two; the second the poisoned request alone; one retry heals it.
    assert lrm["retries"] == 1 and lrm["recovered_by_retry"] == 1 and left["n"] == 0
    assert take_outcome() is not None  # noted for the exit status (0: nothing failed)
