"""The ``lrm-pruned`` backend: pruned folders, on-the-fly pruning with a cache, and the
same folder through plain lm_eval (``--model lrm-pruned`` and ``--model hf``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrm_backends.cli.compress import main as compress_main

CALIB_TEXT = (
    "Let x, y and z be real numbers. The answer is 42. Today, Emily woke up at 5am. "
    "Question: Who is the spouse of the performer? Answer: Paris, France. "
) * 40
TASK_YAML = """\
task: lrm_pruned_smoke
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{text}}}}"
doc_to_target: "{{{{target}}}}"
metric_list:
  - metric: acc
metadata:
  version: 1
"""


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def calib_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("calib") / "calib.txt"
    path.write_text(CALIB_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory, tiny_hf_dir, calib_file) -> Path:
    out = tmp_path_factory.mktemp("pruned") / "tiny-sparsegpt-50"
    status = compress_main([
        "compress", "sparsegpt", "--model", str(tiny_hf_dir), "--out", str(out), "--sparsity", "0.5",
        "--calib", str(calib_file), "--calib-samples", "4", "--calib-seqlen", "32", "--no-progress",
    ])  # fmt: skip
    assert status == 0
    return out


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("task")
    rows = [
        {"text": "The quick brown fox jumps over the", "target": " lazy dog."},
        {"text": "The answer is", "target": " 42."},
    ]
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "lrm_pruned_smoke.yaml").write_text(TASK_YAML.format(data=data))
    return folder


def ensure_registered() -> None:
    """``lrm-pruned`` as lm_eval sees it (the plugin glue registers it the same way)."""
    import lm_eval.models  # noqa: F401  (lm-eval's own models first)
    from lm_eval.api.registry import model_registry

    if "lrm-pruned" not in model_registry:
        model_registry.register("lrm-pruned", target="lrm_backends.models.pruned:PrunedLM")


def run_lm_eval(model: str, model_args: str, task_dir: Path) -> dict:
    """What ``lm_eval --model MODEL --model_args ARGS --tasks ...`` runs, in process, with
    a task index of our one task only (indexing lm-eval's thousands takes a minute)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    return simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=["lrm_pruned_smoke"],
        task_manager=manager,
        device="cpu",
        batch_size=1,
    )


def test_pruned_folder_loads_and_reports_measured_sparsity(pruned_dir):
    from lrm_backends.models.pruned import PrunedLM

    lm = PrunedLM(pretrained=str(pruned_dir), device="cpu", batch_size=1, dtype="float32")
    info = lm.get_model_info()["compression"]
    assert info["method"] == "sparsegpt" and info["target_sparsity"] == 0.5
    assert info["measured_sparsity"] == info["recorded_sparsity"] == 0.5
    assert set(info["measured_per_layer"]) == {"model.layers.0", "model.layers.1"}
    assert (lm.model.model.layers[0].mlp.up_proj.weight == 0).float().mean() == 0.5


def test_a_folder_without_manifest_or_a_pickle_only_folder_is_refused(tmp_path, tiny_hf_dir, pruned_dir):
    from lrm_backends.models.pruned import PrunedLM

    with pytest.raises(FileNotFoundError, match="not written by 'lrm compress'"):
        PrunedLM(pretrained=str(tiny_hf_dir), device="cpu")
    with pytest.raises(ValueError, match="without method="):
        PrunedLM(pretrained=str(pruned_dir), sparsity=0.5, device="cpu")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for f in pruned_dir.iterdir():
        if f.name != "model.safetensors":
            (pickled / f.name).write_bytes(f.read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(Exception, match="safetensors"):
        PrunedLM(pretrained=str(pickled), device="cpu")


def test_on_the_fly_pruning_is_cached_and_reused(tmp_path, tiny_hf_dir, calib_file, monkeypatch):
    import compressors.pipeline
    from lrm_backends.models.pruned import PrunedLM, cache_entry

    args = dict(
        pretrained=str(tiny_hf_dir), method="wanda", sparsity=0.5, pattern="2:4", calib=str(calib_file),
        calib_samples=4, calib_seqlen=32, seed=0, cache_dir=str(tmp_path / "cache"), device="cpu",
    )  # fmt: skip
    first = PrunedLM(**args)
    folder = Path(first.compression_summary["folder"])
    assert folder.parent == tmp_path / "cache" and (folder / "compression.json").is_file()
    assert first.compression_summary["measured_sparsity"] == 0.5
    assert first.compression_summary["pattern"] == "2:4"

    def refuse(*_a, **_k):
        raise AssertionError("pruned again instead of reusing the cache")

    monkeypatch.setattr(compressors.pipeline, "prune_pretrained", refuse)
    second = PrunedLM(**args)
    assert second.compression_summary["folder"] == str(folder)
    other = cache_entry({**args, "seed": 1, "calib": str(calib_file)}, tmp_path / "cache")
    assert other != folder  # every setting that changes the weights names the entry


def test_lm_eval_runs_the_folder_as_lrm_pruned_and_as_plain_hf(pruned_dir, task_dir):
    ensure_registered()
    ours = run_lm_eval("lrm-pruned", f"pretrained={pruned_dir},dtype=float32", task_dir)
    plain = run_lm_eval("hf", f"pretrained={pruned_dir},dtype=float32", task_dir)
    assert ours["config"]["compression"]["measured_sparsity"] == 0.5
    assert ours["config"]["compression"]["method"] == "sparsegpt"
    acc_ours = ours["results"]["lrm_pruned_smoke"]["acc,none"]
    assert acc_ours == plain["results"]["lrm_pruned_smoke"]["acc,none"]
    json.dumps(ours["config"]["compression"])  # lands in results_*.json as is


def test_a_tasks_own_prompts_calibrate(task_dir, tiny_hf_dir):
    from transformers import AutoTokenizer

    from compressors.calibration import CalibrationSpec, build_calibration
    from lrm_backends.models.pruned import task_prompts

    prompts = task_prompts("lrm_pruned_smoke", include_path=str(task_dir), include_defaults=False)
    assert prompts == ["The quick brown fox jumps over the", "The answer is"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_hf_dir)
    data = build_calibration(CalibrationSpec("task:lrm_pruned_smoke", 2, 4), tokenizer, texts=prompts)
    assert data.input_ids.shape == (2, 4) and data.describe()["kind"] == "task"


def test_a_source_with_only_pickled_weights_is_never_unpickled(tmp_path, tiny_hf_dir, monkeypatch):
    """Pruning on the fly (and lrm compress) load the model to prune from safetensors only."""
    import torch
    from safetensors.torch import load_file

    from lrm_backends.models.pruned import ensure_pruned

    source = tmp_path / "pickled-source"
    source.mkdir()
    for f in tiny_hf_dir.iterdir():
        if f.name != "model.safetensors":
            (source / f.name).write_bytes(f.read_bytes())
    torch.save(load_file(tiny_hf_dir / "model.safetensors"), source / "pytorch_model.bin")

    def refuse(*_a, **_k):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    settings = {"pretrained": str(source), "method": "magnitude", "sparsity": 0.5}
    with pytest.raises(ValueError, match=r"only as pickles \(pytorch_model.bin\).*safetensors only"):
        ensure_pruned(settings, tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("*/model.safetensors"))
