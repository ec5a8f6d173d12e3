"""``lrm compress``: argument checks, pruned folders, GGUF inputs and GGUF quantization."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from lrm_backends.cli.compress import add_parser, main

CALIB_TEXT = (
    "Find the number of ordered pairs of positive integers such that m + n = 100. The "
    "quick brown fox jumps over the lazy dog; the answer is 42. Options: (A) 6pm to 9pm "
    "(B) 7am to 11am. All people who drink coffee are dependent on caffeine. "
) * 30


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lrm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture()
def calib_file(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text(CALIB_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tiny_hf_dir, tmp_path_factory):
    pytest.importorskip("gguf")
    from helpers.tiny_models import build_tiny_gguf

    return build_tiny_gguf(tiny_hf_dir, tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf")


def prune_args(model, out, calib, *extra: str) -> list[str]:
    return [
        "compress", "sparsegpt", "--model", str(model), "--out", str(out), "--calib", str(calib),
        "--calib-samples", "4", "--calib-seqlen", "32", "--no-progress", *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------- argument errors


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "half"])
def test_sparsity_outside_open_unit_interval_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["compress", "wanda", "--model", "m", "--out", "o", "--sparsity", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--sparsity" in err and value in err and "(0, 1)" in err


@pytest.mark.parametrize("value", ["4:2", "2:2", "0:4", "2-4", "x"])
def test_patterns_other_than_n_below_m_are_usage_errors(value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["compress", "sparsegpt", "--model", "m", "--out", "o", "--pattern", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--pattern" in err and "N:M" in err or "0 < N < M" in err


def test_sparsity_contradicting_the_pattern_is_refused(tmp_path, calib_file, tiny_hf_dir, capsys):
    status = main(
        prune_args(tiny_hf_dir, tmp_path / "out", calib_file, "--sparsity", "0.3", "--pattern", "2:4")
    )
    assert status == 2
    assert "disagrees with pattern '2:4'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite(tmp_path, calib_file, tiny_hf_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(prune_args(tiny_hf_dir, out, calib_file, "--sparsity", "0.5")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main(prune_args(tiny_hf_dir, out, calib_file, "--sparsity", "0.5", "--overwrite")) == 0
    assert not (out / "keep.txt").exists()


def test_missing_calibration_file_is_reported(tmp_path, tiny_hf_dir, capsys):
    status = main(prune_args(tiny_hf_dir, tmp_path / "out", tmp_path / "nope.txt", "--sparsity", "0.5"))
    assert status == 2
    assert "neither a file nor a known dataset" in capsys.readouterr().err


# ---------------------------------------------------------------- pruned folders


def test_sparsegpt_2_4_writes_a_loadable_safetensors_folder(tmp_path, calib_file, tiny_hf_dir, capsys):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "pruned"
    assert (
        main(prune_args(tiny_hf_dir, out, calib_file, "--sparsity", "0.5", "--pattern", "2:4", "--seed", "3"))
        == 0
    )
    assert "sparsity 0.5000" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names and "compression.json" in names and "tokenizer.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    manifest = json.loads((out / "compression.json").read_text())
    assert manifest["method"] == "sparsegpt" and manifest["source_model"] == str(tiny_hf_dir)
    assert manifest["seed"] == 3 and manifest["wall_time_s"] > 0
    assert manifest["calibration"]["num_samples"] == 4 and manifest["calibration"]["seq_len"] == 32
    assert manifest["calibration"]["source"] == str(calib_file)
    sp = manifest["sparsity"]
    assert sp["target"] == 0.5 and sp["pattern"] == "2:4" and sp["achieved"] == 0.5
    assert set(sp["per_layer"]) == {"model.layers.0", "model.layers.1"}
    assert all(v == 0.5 for v in sp["per_module"].values()) and len(sp["per_module"]) == 14
    assert 0 < sp["achieved_all_parameters"] < 0.5
    assert manifest["tool"]["name"] == "lrm-bench" and "torch" in manifest["tool"]
    assert manifest["settings"]["blocksize"] == 128 and manifest["settings"]["percdamp"] == 0.01

    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    groups = (model.model.layers[1].mlp.down_proj.weight != 0).reshape(-1, 4).sum(-1)
    assert (groups == 2).all()


def test_magnitude_needs_no_calibration(tmp_path, tiny_hf_dir):
    out = tmp_path / "mag"
    args = [
        "compress",
        "magnitude",
        "--model",
        str(tiny_hf_dir),
        "--out",
        str(out),
        "--sparsity",
        "0.25",
        "--no-progress",
    ]
    assert main(args) == 0
    manifest = json.loads((out / "compression.json").read_text())
    assert manifest["calibration"] is None and manifest["seed"] is None
    assert manifest["sparsity"]["achieved"] == 0.25


def test_a_gguf_model_is_dequantized_pruned_and_saved(tmp_path, tiny_gguf, calib_file):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "from-gguf"
    assert main(prune_args(tiny_gguf, out, calib_file, "--sparsity", "0.5")) == 0
    manifest = json.loads((out / "compression.json").read_text())
    assert manifest["sparsity"]["achieved"] == 0.5 and manifest["settings"]["dtype"] == "float32"
    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    assert getattr(model.config, "quantization_config", None) is None
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.float32


def test_a_gguf_becomes_a_dense_baseline_folder(tmp_path, tiny_gguf, capsys):
    """Issue 16 item 9: `lrm compress none` (alias dequantize) writes the dense HF folder of
    a GGUF, with a manifest recording the source's precision; --sparsity 0 points to it."""
    pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM

    from compressors.manifest import read_manifest

    q8 = tmp_path / "tiny-q8_0.gguf"
    assert main(["compress", "gguf", "--model", str(tiny_gguf), "--type", "Q8_0", "--out", str(q8)]) == 0
    out = tmp_path / "dense"
    assert main(["compress", "none", "--model", str(q8), "--out", str(out)]) == 0
    assert "(was Q8_0, " in capsys.readouterr().out
    manifest = read_manifest(out)
    q = manifest["quantization"]
    assert manifest["method"] == "none" and manifest["sparsity"] is None and manifest["source_model"] == str(q8)
    assert q["type"] == "F32" and q["bits_per_weight"] == 32.0 and q["dequantized"] is True
    assert q["source_type"] == "Q8_0" and 8.0 < q["source_bits_per_weight"] < 9.0
    assert [p.suffix for p in out.glob("*.safetensors")] == [".safetensors"]
    dense = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    assert getattr(dense.config, "quantization_config", None) is None
    w = dense.model.layers[0].self_attn.q_proj.weight
    assert w.dtype == torch.float32 and float((w == 0).float().mean()) < 0.05  # dense: nothing pruned

    bf16 = tmp_path / "dense-bf16"
    assert main(["compress", "dequantize", "--model", str(q8), "--out", str(bf16), "--dtype", "bfloat16"]) == 0
    assert read_manifest(bf16)["quantization"]["type"] == "BF16"
    assert main(["compress", "none", "--model", str(q8), "--out", str(out)]) == 2  # exists: --overwrite
    assert "--overwrite" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        parse(["compress", "magnitude", "--model", "m", "--out", "o", "--sparsity", "0"])
    assert "lrm compress none --model M --out DIR" in capsys.readouterr().err


# ---------------------------------------------------------------- GGUF quantization


def gguf_tensor_types(path) -> dict[str, str]:
    from gguf import GGUFReader

    return {t.name: t.tensor_type.name for t in GGUFReader(str(path)).tensors}


def test_gguf_quantization_with_overrides_and_manifest(tmp_path, tiny_gguf, capsys):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "tiny-q8.gguf"
    args = ["compress", "gguf", "--model", str(tiny_gguf), "--type", "q8_0", "--out", str(out),
            "--tensor-type", "attn_v=F16", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert "Q8_0" in capsys.readouterr().out
    types = gguf_tensor_types(out)
    assert types["blk.0.attn_q.weight"] == "Q8_0"
    assert types["blk.0.attn_v.weight"] == "F16" and types["blk.1.attn_v.weight"] == "F16"
    manifest = json.loads((tmp_path / "tiny-q8.gguf.compression.json").read_text())
    q = manifest["quantization"]
    assert manifest["method"] == "gguf" and q["type"] == "Q8_0"
    assert q["tensor_types"] == {"attn_v": "F16"}
    assert 8.0 < q["bits_per_weight"] < q["source_bits_per_weight"] == pytest.approx(32.0)
    assert manifest["wall_time_s"] >= 0 and "llama_cpp_python" in manifest["tool"]

    # An existing output needs --overwrite; a quantized input needs --allow-requantize.
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    again = tmp_path / "tiny-q4.gguf"
    assert main(["compress", "gguf", "--model", str(out), "--type", "Q4_0", "--out", str(again)]) == 2
    assert "--allow-requantize" in capsys.readouterr().err
    assert not again.exists()
    assert (
        main(
            [
                "compress",
                "gguf",
                "--model",
                str(out),
                "--type",
                "Q4_0",
                "--out",
                str(again),
                "--allow-requantize",
            ]
        )
        == 0
    )


def test_requantizing_is_refused_in_one_line_and_its_surprises_are_said(tmp_path, tiny_gguf, capsys):
    """Issue 16 item 10: the refusal is one line with the fix, not llama.cpp's log; with
    --allow-requantize, tensors that fell back to another type are counted and an output
    larger than its input is said (tiny rows of 64 columns do not fit Q4_K's 256 blocks)."""
    pytest.importorskip("llama_cpp")
    q4 = tmp_path / "tiny-q4_0.gguf"
    assert main(["compress", "gguf", "--model", str(tiny_gguf), "--type", "Q4_0", "--out", str(q4)]) == 0
    capsys.readouterr()
    out = tmp_path / "tiny-q4_k_m.gguf"
    argv = ["compress", "gguf", "--model", str(q4), "--type", "Q4_K_M", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert "already quantized (Q4_0)" in err and "pass --allow-requantize" in err
    assert "falling back" not in err and "ncols" not in err

    assert main([*argv, "--allow-requantize"]) == 0
    captured = capsys.readouterr()
    q = json.loads((tmp_path / "tiny-q4_k_m.gguf.compression.json").read_text())["quantization"]
    assert q["source_type"] == "Q4_0" and q["bits_per_weight"] > q["source_bits_per_weight"]
    assert q["fallback_tensors"] == sum(q["fallbacks"].values()) > 0 and "q4_K -> q5_0" in q["fallbacks"]
    assert q["tensors"] == len(gguf_tensor_types(out)) and q["fallback_ncols"] == [64, 128]
    types = gguf_tensor_types(out)
    for change, n in q["fallbacks"].items():  # the file holds the types fallen back to
        used = change.split(" -> ")[1].upper()
        assert sum(t == used for t in types.values()) >= n, (change, types)
    warnings = [line for line in captured.err.splitlines() if line.startswith("lrm compress: warning:")]
    assert len(warnings) == 2, captured.err
    assert f"{q['fallback_tensors']} of {q['tensors']} tensors were written in another type than Q4_K_M" in warnings[0]
    assert f"more bits per weight than the input ({q['bits_per_weight']:.2f} >" in warnings[1]


def test_gguf_types_needing_an_importance_matrix(tmp_path, tiny_gguf, capsys):
    pytest.importorskip("llama_cpp")
    import struct

    out = tmp_path / "tiny-iq2.gguf"
    assert main(["compress", "gguf", "--model", str(tiny_gguf), "--type", "IQ2_XXS", "--out", str(out)]) == 2
    assert "--imatrix" in capsys.readouterr().err
    # A legacy-format importance matrix (as llama-imatrix writes): every 2-D weight.
    from gguf import GGUFReader

    entries = [
        (t.name, int(t.shape[0]))
        for t in GGUFReader(str(tiny_gguf)).tensors
        if len(t.shape) == 2 and t.name.startswith("blk.")
    ]
    blob = struct.pack("<i", len(entries))
    for name, ncols in entries:
        raw = name.encode()
        blob += (
            struct.pack("<i", len(raw))
            + raw
            + struct.pack("<ii", 1, ncols)
            + struct.pack(f"<{ncols}f", *([1.0] * ncols))
        )
    imatrix = tmp_path / "imatrix.dat"
    imatrix.write_bytes(blob + struct.pack("<i", 1))
    assert (
        main(
            [
                "compress",
                "gguf",
                "--model",
                str(tiny_gguf),
                "--type",
                "IQ2_XXS",
                "--out",
                str(out),
                "--imatrix",
                str(imatrix),
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "tiny-iq2.gguf.compression.json").read_text())
    assert manifest["quantization"]["imatrix"] == str(imatrix)
    assert manifest["quantization"]["imatrix_entries"] == len(entries)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--type", "Q9_9"], "unknown GGUF type 'Q9_9'"),
        (["--type", "Q4_0", "--tensor-type", "attn_v"], "is not PATTERN=TYPE"),
        (["--type", "Q4_0", "--tensor-type", "attn_v=Q9"], "unknown tensor type 'Q9'"),
    ],
)
def test_gguf_argument_errors(argv, message, tmp_path, tiny_gguf, capsys):
    assert (
        main(["compress", "gguf", "--model", str(tiny_gguf), "--out", str(tmp_path / "o.gguf"), *argv]) == 2
    )
    assert message in capsys.readouterr().err
