"""Issue 16 item 11, through the real ``lrm eval`` command: sampling is the same run with
``--cache``, without it, and resumed from a partial cache (seeds come from each request's
key, never from its position in a call)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TASK = "bbh_temporal_sequences_lrm"


@pytest.fixture(scope="module")
def tiny_gguf(tiny_hf_dir, tmp_path_factory) -> Path:
    pytest.importorskip("gguf")
    pytest.importorskip("llama_cpp")
    from helpers.tiny_models import build_tiny_gguf

    return build_tiny_gguf(tiny_hf_dir, tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf")


def _texts(model: list[str], out: Path, env: dict, *extra: str, limit: int = 2) -> list[list[str]]:
    """Sampled texts of one ``lrm eval`` run (two repeats per document), in document order."""
    lrm = shutil.which("lrm", path=str(BIN)) or "lrm"
    cmd = [lrm, "eval", *model,
           "--tasks", TASK, "--limit", str(limit), "--repeats", "2", "--seed", "7",
           "--gen_kwargs", "do_sample=True,temperature=1.0,max_gen_toks=12",
           "--output_path", str(out), "--log_samples", *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    (samples,) = out.rglob(f"samples_{TASK}_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    by_doc = {r["doc_id"]: [str(x) for x in r["resps"][0]] for r in rows}
    return [by_doc[k] for k in sorted(by_doc)]


@pytest.mark.parametrize("backend", ["lrm-gguf", "hf"])
def test_sampling_is_one_run_with_or_without_the_cache_and_resumed(backend, request, tmp_path, offline_env):
    if backend == "lrm-gguf":
        model = ["--model", "lrm-gguf", "--model_args", f"pretrained={request.getfixturevalue('tiny_gguf')},n_ctx=512"]
    else:  # torch's global generator: batched, the samples would depend on the batch
        model = ["--model", "hf", "--model_args", f"pretrained={request.getfixturevalue('tiny_hf_dir')},dtype=float32",
                 "--batch_size", "4"]
    plain = _texts(model, tmp_path / "plain", offline_env)
    cached = _texts(model, tmp_path / "cached", offline_env, "--cache", str(tmp_path / "cache"))
    assert cached == plain
    # Killed after the first document, then run again: the rest drawn as without a cache.
    _texts(model, tmp_path / "partial", offline_env, "--cache", str(tmp_path / "cache2"), limit=1)
    resumed = _texts(model, tmp_path / "resumed", offline_env, "--cache", str(tmp_path / "cache2"))
    assert resumed == plain
    assert all(len(set(repeats)) == 2 for repeats in plain), plain  # two distinct samples per document
