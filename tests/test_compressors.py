"""compressors: mask selection, SparseGPT/Wanda/magnitude, calibration, orchestration,
manifests, on tensors and on tiny offline Llama and Qwen2 models."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from compressors.calibration import (
    CalibrationSpec,
    build_calibration,
    parse_hub_source,
    token_windows,
)
from compressors.magnitude import magnitude_prune
from compressors.manifest import (
    MANIFEST_NAME,
    Manifest,
    measure_model_sparsity,
    read_manifest,
    summarize_sparsity,
    write_manifest,
)
from compressors.masks import exact_count, make_target, nm_mask, parse_pattern
from compressors.orchestrate import PruneConfig, find_decoder_layers, prune_model
from compressors.sparsegpt import HESSIAN_DTYPE, GramAccumulator, sparsegpt_prune
from compressors.wanda import SquaredNormAccumulator, wanda_prune

CALIB_TEXT = (
    "The quick brown fox jumps over the lazy dog. Find the number of ordered pairs of "
    "positive integers such that m + n = 100. Let x, y and z be real numbers; the answer "
    "is 42. Today, Emily woke up at 5am and went to the park between 6pm and 9pm. "
) * 40


# ---------------------------------------------------------------- fixtures


def _correlated_inputs(tokens: int, columns: int, seed: int = 0) -> torch.Tensor:
    """Activations with correlated features and uneven scales, as LLM inputs have."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(columns) + torch.randn(columns, columns, generator=g) / columns**0.5
    scales = torch.logspace(-0.5, 0.5, columns)[torch.randperm(columns, generator=g)]
    return (torch.randn(tokens, columns, generator=g) @ mix) * scales


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_hf_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_hf_dir)


@pytest.fixture(scope="module")
def tiny_llama(tiny_hf_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_hf_dir, dtype=torch.float32).eval()


def make_tiny_qwen2(vocab_size: int, tied: bool = True):
    """A tiny Qwen2 (q/k/v biases, tied embeddings): the other family of R1 distills."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(7)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
        initializer_range=0.15,
    )
    return Qwen2ForCausalLM(config).float().eval()


@pytest.fixture(scope="module")
def calib_ids(tiny_tokenizer):
    ids = tiny_tokenizer(CALIB_TEXT, add_special_tokens=False)["input_ids"]
    return token_windows(ids, num_samples=8, seq_len=64, seed=0)


# ---------------------------------------------------------------- masks and targets


@pytest.mark.parametrize(("text", "expected"), [("2:4", (2, 4)), ("4:8", (4, 8)), (" 1 : 4 ", (1, 4))])
def test_parse_pattern_accepts_n_below_m(text, expected):
    assert parse_pattern(text) == expected


@pytest.mark.parametrize("text", ["4:2", "2:2", "0:4", "2-4", "two:four", "2:4:8", ""])
def test_parse_pattern_rejects_other_shapes(text):
    with pytest.raises(ValueError, match="N:M|0 < N < M"):
        parse_pattern(text)


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_sparsity_must_be_inside_open_unit_interval(value):
    with pytest.raises(ValueError, match=r"outside \(0, 1\)"):
        make_target(value)


def test_pattern_implies_sparsity_and_rejects_a_contradiction():
    assert make_target(None, "2:4").sparsity == 0.5
    assert make_target(None, "1:4").sparsity == 0.75  # N nonzeros per M
    with pytest.raises(ValueError, match="disagrees with pattern '2:4'"):
        make_target(0.3, "2:4")


def test_nm_mask_prunes_the_smallest_of_each_group():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.5, 0.1, 9.0, 8.0]])
    assert nm_mask(scores, 2, 4).tolist() == [[False, True, False, True, True, True, False, False]]
    with pytest.raises(ValueError, match="not a multiple of 4"):
        nm_mask(torch.ones(2, 6), 2, 4)


# ---------------------------------------------------------------- pure pruning functions


def _check_nm(weight: torch.Tensor, n: int, m: int) -> None:
    groups = (weight != 0).reshape(weight.shape[0], -1, m).sum(dim=-1)
    assert int(groups.max()) <= n, "a group keeps more than N weights"
    assert int(groups.min()) == n, "a group lost more than M - N weights"


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.77])
def test_sparsegpt_unstructured_sparsity_is_exact(sparsity):
    rows, cols = 37, 200  # odd sizes, a partial last block
    x = _correlated_inputs(512, cols)
    acc = GramAccumulator(cols)
    acc.add(x)
    w = torch.randn(rows, cols)
    out = sparsegpt_prune(w, acc.hessian(), make_target(sparsity), blocksize=64).weight
    assert int((out == 0).sum()) == exact_count(rows * cols, sparsity)


@pytest.mark.parametrize("pattern", ["2:4", "4:8"])
@pytest.mark.parametrize("prune", ["sparsegpt", "wanda", "magnitude"])
def test_nm_structure_holds_per_group(pattern, prune):
    n, m = parse_pattern(pattern)
    x = _correlated_inputs(512, 256)
    w = torch.randn(48, 256)
    target = make_target(None, pattern)
    if prune == "sparsegpt":
        acc = GramAccumulator(256)
        acc.add(x)
        out = sparsegpt_prune(w, acc.hessian(), target).weight
    elif prune == "wanda":
        norms = SquaredNormAccumulator(256)
        norms.add(x)
        out = wanda_prune(w, norms.norms(), target)
    else:
        out = magnitude_prune(w, target)
    _check_nm(out, n, m)
    assert int((out == 0).sum()) == w.numel() // 2


def test_wanda_prunes_exactly_per_row_and_magnitude_per_matrix():
    w = torch.randn(10, 30)
    norms = torch.rand(30) + 0.1
    out = wanda_prune(w, norms, make_target(0.4))
    assert ((out == 0).sum(dim=1) == 12).all()
    mag = magnitude_prune(w, make_target(0.4))
    assert int((mag == 0).sum()) == 120
    kept = mag[mag != 0].abs().min()
    assert kept >= w.abs()[mag == 0].max()


def test_sparsegpt_leaves_inputs_alone_and_keeps_dtype():
    x = _correlated_inputs(256, 64)
    acc = GramAccumulator(64)
    acc.add(x.to(torch.bfloat16))
    assert acc.sum.dtype == HESSIAN_DTYPE
    h = acc.hessian()
    h_before = h.clone()
    w = torch.randn(16, 64, dtype=torch.bfloat16)
    w_before = w.clone()
    out = sparsegpt_prune(w, h, make_target(0.5)).weight
    assert out.dtype == torch.bfloat16 and out.shape == w.shape
    assert torch.equal(w, w_before) and torch.equal(h, h_before)


def test_sparsegpt_survives_dead_inputs_and_singular_hessians():
    x = _correlated_inputs(8, 64)  # 8 tokens: rank-deficient H
    x[:, 5] = 0.0  # an input that never fires
    acc = GramAccumulator(64)
    acc.add(x)
    w = torch.randn(16, 64)
    out = sparsegpt_prune(w, acc.hessian(), make_target(0.5)).weight
    assert torch.isfinite(out).all()
    assert (out[:, 5] == 0).all()
    assert int((out == 0).sum()) == 16 * 32


@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_sparsegpt_reconstructs_better_than_wanda_and_magnitude(pattern):
    x = _correlated_inputs(2048, 128, seed=3)
    w = torch.randn(64, 128)
    gram, norms = GramAccumulator(128), SquaredNormAccumulator(128)
    gram.add(x)
    norms.add(x)
    target = make_target(0.5, pattern)

    def error(pruned: torch.Tensor) -> float:
        return float((x @ (w - pruned).T).norm())

    sgpt = error(sparsegpt_prune(w, gram.hessian(), target).weight)
    assert sgpt < error(wanda_prune(w, norms.norms(), target))
    assert sgpt < error(magnitude_prune(w, target))


# ---------------------------------------------------------------- calibration


def test_token_windows_are_seeded_distinct_and_exact():
    ids = list(range(1000))
    a = token_windows(ids, num_samples=5, seq_len=100, seed=1)
    b = token_windows(ids, num_samples=5, seq_len=100, seed=1)
    c = token_windows(ids, num_samples=5, seq_len=100, seed=2)
    assert a.shape == (5, 100) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({int(r[0]) for r in a}) == 5  # no window drawn twice
    with pytest.raises(ValueError, match="enough for 10 windows"):
        token_windows(ids, num_samples=11, seq_len=100, seed=0)


def test_calibration_from_file_and_from_texts(tmp_path, tiny_tokenizer):
    path = tmp_path / "calib.txt"
    path.write_text(CALIB_TEXT, encoding="utf-8")
    spec = CalibrationSpec(str(path), num_samples=4, seq_len=32, seed=0)
    data = build_calibration(spec, tiny_tokenizer)
    assert data.input_ids.shape == (4, 32)
    described = data.describe()
    assert described["kind"] == "file" and described["tokens"] == 128
    again = build_calibration(spec, tiny_tokenizer, texts=[CALIB_TEXT])
    assert torch.equal(data.input_ids, again.input_ids)
    with pytest.raises(ValueError, match="caller must pass them"):
        build_calibration(CalibrationSpec("task:aime24", 2, 8), tiny_tokenizer)
    with pytest.raises(FileNotFoundError, match="neither a file nor a known dataset"):
        build_calibration(CalibrationSpec(str(tmp_path / "missing.txt"), 2, 8), tiny_tokenizer)
    with pytest.raises(ValueError, match="at least 1"):
        CalibrationSpec(str(path), num_samples=0)


def test_calibration_from_a_hub_dataset_is_offline_testable(monkeypatch, tiny_tokenizer):
    import datasets

    seen = {}

    def fake_load_dataset(name, config=None, split=None, data_files=None):
        seen.update(name=name, config=config, split=split, data_files=data_files)
        return datasets.Dataset.from_dict({"text": [CALIB_TEXT[i::7] for i in range(7)]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = build_calibration(CalibrationSpec("wikitext2", 3, 16, seed=0), tiny_tokenizer)
    assert data.input_ids.shape == (3, 16)
    assert seen["name"] == "Salesforce/wikitext" and seen["config"] == "wikitext-2-raw-v1"
    build_calibration(CalibrationSpec("c4", 2, 16), tiny_tokenizer)
    assert seen["data_files"] == {"train": "en/c4-train.00000-of-01024.json.gz"}
    assert parse_hub_source("hf:org/set::test:content") == ("org/set", None, "test", "content", None)


# ---------------------------------------------------------------- orchestration on models


def test_decoder_layers_are_found_for_llama_and_qwen2(tiny_llama):
    assert find_decoder_layers(tiny_llama)[0] == "model.layers"
    assert find_decoder_layers(make_tiny_qwen2(64))[0] == "model.layers"


@pytest.mark.parametrize("method", ["sparsegpt", "wanda", "magnitude"])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_prune_model_hits_target_and_leaves_the_rest(
    method, family, pattern, tiny_llama, tiny_tokenizer, calib_ids
):
    model = copy.deepcopy(tiny_llama) if family == "llama" else make_tiny_qwen2(len(tiny_tokenizer))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = make_target(0.5 if pattern else 0.6, pattern)
    report = prune_model(model, calib_ids, PruneConfig(method=method, target=target, progress=False))
    assert len(report.modules) == 14  # 7 linear layers x 2 decoder layers
    for module in report.modules:
        weight = model.get_submodule(module.name).weight
        assert int((weight == 0).sum()) == exact_count(weight.numel(), target.sparsity), module.name
        if pattern:
            _check_nm(weight, 2, 4)
    state = model.state_dict()
    pruned = {f"{m.name}.weight" for m in report.modules}
    for key, value in before.items():
        if key not in pruned:  # embeddings, lm_head, norms, biases
            assert torch.equal(state[key], value), key
    if family == "qwen2":
        assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert abs(report.achieved - target.sparsity) < 1e-3


def test_each_layer_is_calibrated_on_the_pruned_layers_before_it(tiny_llama, calib_ids):
    """Layer 1's SparseGPT result equals pruning its dense weights with the Hessian of
    its inputs behind the *pruned* layer 0 (and differs from the dense model's)."""
    dense = copy.deepcopy(tiny_llama)
    model = copy.deepcopy(tiny_llama)
    target = make_target(0.5)
    prune_model(model, calib_ids, PruneConfig(method="sparsegpt", target=target, progress=False))
    behind_pruned = copy.deepcopy(tiny_llama)  # pruned layer 0, dense layer 1
    behind_pruned.model.layers[0] = model.model.layers[0]

    def hessian_of(net, name):
        acc = GramAccumulator(net.get_submodule(name).in_features)
        handle = net.get_submodule(name).register_forward_pre_hook(lambda _m, a: acc.add(a[0]))
        with torch.no_grad():
            net(input_ids=calib_ids, use_cache=False)
        handle.remove()
        return acc.hessian()

    name = "model.layers.1.mlp.gate_proj"
    original = dense.get_submodule(name).weight
    expected = sparsegpt_prune(original, hessian_of(behind_pruned, name), target).weight
    got = model.get_submodule(name).weight
    assert ((expected == 0) == (got == 0)).float().mean() > 0.999
    assert torch.allclose(expected, got, atol=1e-4, rtol=1e-3)
    from_dense = sparsegpt_prune(original, hessian_of(dense, name), target).weight
    assert not torch.allclose(from_dense, got, atol=1e-4)


@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_sparsegpt_has_the_lowest_layer_reconstruction_error(pattern, tiny_llama, calib_ids):
    """On the same calibration data, ||WX - W'X|| summed over the first decoder layer's
    linear layers (whose inputs X every method sees identically) ranks SparseGPT first."""
    inputs: dict[str, torch.Tensor] = {}
    dense = copy.deepcopy(tiny_llama)
    layer = dense.model.layers[0]

    def keep(name):
        def hook(_module, args):
            inputs[name] = args[0].reshape(-1, args[0].shape[-1])

        return hook

    handles = [
        module.register_forward_pre_hook(keep(name))
        for name, module in layer.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    with torch.no_grad():
        dense(input_ids=calib_ids, use_cache=False)
    for h in handles:
        h.remove()
    errors = {}
    for method in ("sparsegpt", "wanda", "magnitude"):
        model = copy.deepcopy(tiny_llama)
        prune_model(
            model, calib_ids, PruneConfig(method=method, target=make_target(0.5, pattern), progress=False)
        )
        total = 0.0
        for name, x in inputs.items():
            w = layer.get_submodule(name).weight.detach()
            w_pruned = model.model.layers[0].get_submodule(name).weight.detach()
            total += float((x @ (w - w_pruned).T).square().sum())
        errors[method] = total**0.5
    assert errors["sparsegpt"] < errors["wanda"], errors
    assert errors["sparsegpt"] < errors["magnitude"], errors


def test_non_sequential_and_ignore_options(tiny_llama, calib_ids):
    seq = copy.deepcopy(tiny_llama)
    one = copy.deepcopy(tiny_llama)
    target = make_target(0.5)
    prune_model(seq, calib_ids, PruneConfig(method="sparsegpt", target=target, progress=False))
    prune_model(
        one,
        calib_ids,
        PruneConfig(
            method="sparsegpt",
            target=target,
            sequential=False,
            ignore=(r"layers\.1\.mlp\.down_proj",),
            progress=False,
        ),
    )
    # Layer 0 sees the same inputs either way; layer 1 does not.
    assert torch.allclose(
        seq.model.layers[0].mlp.up_proj.weight, one.model.layers[0].mlp.up_proj.weight, atol=1e-5
    )
    assert not torch.allclose(
        seq.model.layers[1].mlp.up_proj.weight, one.model.layers[1].mlp.up_proj.weight, atol=1e-5
    )
    assert torch.equal(
        one.model.layers[1].mlp.down_proj.weight, tiny_llama.model.layers[1].mlp.down_proj.weight
    )


def test_methods_needing_data_refuse_to_run_without_it(tiny_llama):
    with pytest.raises(ValueError, match="needs calibration data"):
        prune_model(
            copy.deepcopy(tiny_llama),
            None,
            PruneConfig(method="wanda", target=make_target(0.5), progress=False),
        )
    with pytest.raises(ValueError, match="unknown pruning method"):
        PruneConfig(method="obs", target=make_target(0.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("where", ["offload", "resident"])
def test_pruning_on_gpu_matches_cpu(where, tiny_llama, calib_ids):
    cpu = copy.deepcopy(tiny_llama)
    gpu = copy.deepcopy(tiny_llama)
    target = make_target(0.5)
    prune_model(cpu, calib_ids, PruneConfig(method="sparsegpt", target=target, progress=False))
    if where == "resident":
        gpu.to("cuda")
        prune_model(gpu, calib_ids, PruneConfig(method="sparsegpt", target=target, progress=False))
        gpu.to("cpu")
    else:  # the model stays on the CPU; layers visit the GPU one at a time
        prune_model(
            gpu, calib_ids, PruneConfig(method="sparsegpt", target=target, device="cuda", progress=False)
        )
        assert next(gpu.parameters()).device.type == "cpu"
    for (name, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
        agree = ((a == 0) == (b == 0)).float().mean()
        assert agree > 0.99, name
        assert int((b == 0).sum()) == int((a == 0).sum()), name


# ---------------------------------------------------------------- manifests


def test_manifest_round_trip_and_checks(tmp_path):
    manifest = Manifest(method="sparsegpt", source_model="tiny", wall_time_s=1.5, seed=0)
    path = write_manifest(tmp_path, manifest)
    assert path == tmp_path / MANIFEST_NAME
    data = read_manifest(tmp_path)
    assert data["method"] == "sparsegpt" and data["tool"]["name"] == "lrm-bench"
    assert data["schema_version"] == 1 and data["created"]
    raw = json.loads(path.read_text())
    raw["schema_version"] = 99
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="schema_version 99"):
        read_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="not written by 'lrm compress'"):
        read_manifest(tmp_path / "elsewhere")
    gguf_side = write_manifest(tmp_path / "model.Q4_K_M.gguf", Manifest("gguf", "x.gguf", 1.0))
    assert gguf_side.name == "model.Q4_K_M.gguf.compression.json"


def test_sparsity_summaries(tiny_llama):
    summary = summarize_sparsity(
        [
            ("model.layers.0.a", torch.tensor([0.0, 1.0])),
            ("model.layers.1.b", torch.tensor([0.0, 0.0, 0.0, 1.0])),
        ],
        "model.layers",
    )
    assert summary["achieved"] == 4 / 6
    assert summary["per_layer"] == {"model.layers.0": 0.5, "model.layers.1": 0.75}
    measured = measure_model_sparsity(tiny_llama)
    assert measured["achieved"] == 0.0 and len(measured["per_module"]) == 14
