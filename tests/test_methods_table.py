"""compressors.methods: one row per pruning method drives the CLI, lrm-pruned's checks,
the pipeline, the manifest and the report (a row added here shows up in all of them)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch

from compressors import methods as table
from compressors.magnitude import magnitude_prune
from compressors.methods import Knob, MethodSpec, positive_number
from lrm_backends.models import pruned
from lrm_backends.cli.compress import add_parser, main
from lrm_backends.report.compression import from_name
from lrm_backends.run.validate import ValidationError

EXTRA = "halfmag"


class HalfMagnitude:
    """A test method: magnitude pruning whose weights are then scaled by ``alpha``."""

    def new_stats(self, columns: int, device: torch.device) -> None:
        return None

    def prepare(self, stats: None, config) -> None:
        return None

    def prune(self, weight: torch.Tensor, prepared: None, config) -> tuple[torch.Tensor, float | None]:
        return magnitude_prune(weight, config.target) * config.knob("alpha"), None


@pytest.fixture()
def extra_method():
    """One more row, as a new method would add it, removed afterwards."""
    spec = table.register(
        MethodSpec(
            name=EXTRA,
            help="half magnitude: a test row",
            needs_calibration=False,
            entry=f"{__name__}:HalfMagnitude",
            title="HalfMag",
            knobs=(Knob("alpha", float, 1.0, "scale of the kept weights", example=0.5, check=positive_number),),
        )
    )
    yield spec
    table.unregister(EXTRA)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lrm")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_the_table_is_importable_without_torch():
    code = "import sys, compressors.methods, compressors.manifest; assert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_built_in_rows():
    assert table.method_names() == ("sparsegpt", "wanda", "magnitude")
    assert [table.get_method(n).needs_calibration for n in table.method_names()] == [True, True, False]
    assert table.manifest_methods() == ("sparsegpt", "wanda", "magnitude", "gguf")
    with pytest.raises(ValueError, match=r"unknown pruning method 'obs'; expected one of \['magnitude'"):
        table.get_method("obs")
    with pytest.raises(ValueError, match="already registered"):
        table.register(table.get_method("wanda"))


def test_sparsegpt_defaults_are_the_pure_functions_defaults():
    import inspect

    from compressors.sparsegpt import sparsegpt_prune

    params = inspect.signature(sparsegpt_prune).parameters
    row = table.get_method("sparsegpt")
    assert params["blocksize"].default == row.knob("blocksize").default == 128
    assert params["percdamp"].default == row.knob("percdamp").default == 0.01


def test_a_new_row_is_a_cli_subcommand_with_its_knobs(extra_method, capsys):
    args = parser().parse_args(["compress", EXTRA, "--model", "m", "--out", "o", "--sparsity", "0.5", "--alpha", "2"])
    assert (args.compress_method, args.alpha, args.sparsity) == (EXTRA, 2.0, 0.5)
    assert not hasattr(args, "calib")  # needs_calibration=False: no calibration group
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["compress", EXTRA, "--model", "m", "--out", "o", "--alpha", "-1"])
    assert exc.value.code == 2
    assert "--alpha" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["compress", "--help"])
    listing = capsys.readouterr().out
    assert EXTRA in listing and "half magnitude: a test row" in listing
    with pytest.raises(SystemExit):  # other methods do not take its knob
        parser().parse_args(["compress", "wanda", "--model", "m", "--out", "o", "--alpha", "2"])


def test_a_new_row_is_checked_by_lrm_pruned(extra_method):
    pruned.validate_model_args({"pretrained": "org/m", "method": EXTRA, "sparsity": 0.5, "alpha": 0.3})
    with pytest.raises(ValidationError) as exc:
        pruned.validate_model_args({"pretrained": "org/m", "method": EXTRA, "sparsity": 0.5, "alpha": -1.0})
    assert str(exc.value) == "--model_args alpha=-1.0: expected a positive number. Pass e.g. alpha=0.5."
    with pytest.raises(ValidationError, match=rf"one of 'sparsegpt', 'wanda', 'magnitude', '{EXTRA}'"):
        pruned.validate_model_args({"pretrained": "org/m", "method": "nope", "sparsity": 0.5})
    with pytest.raises(ValidationError, match=rf"add method=sparsegpt\|wanda\|magnitude\|{EXTRA} "):
        pruned.validate_model_args({"pretrained": "org/m", "alpha": 0.3})


def test_the_built_in_rows_are_checked_by_lrm_pruned():
    with pytest.raises(ValidationError, match="expected a positive integer. Pass e.g. blocksize=128"):
        pruned.validate_model_args({"pretrained": "org/m", "method": "sparsegpt", "sparsity": 0.5, "blocksize": 0})
    with pytest.raises(ValidationError, match="has no argument 'alpha'"):
        pruned.validate_model_args({"pretrained": "org/m", "method": "wanda", "sparsity": 0.5, "alpha": 0.3})


def test_a_new_row_prunes_end_to_end_into_a_manifest_the_report_reads(extra_method, tmp_path, tiny_hf_dir):
    out = tmp_path / f"tiny-{EXTRA}-50"
    argv = ["compress", EXTRA, "--model", str(tiny_hf_dir), "--out", str(out), "--sparsity", "0.5",
            "--alpha", "0.5", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    manifest = json.loads((out / "compression.json").read_text(encoding="utf-8"))
    assert manifest["method"] == EXTRA and manifest["calibration"] is None
    assert manifest["settings"]["alpha"] == 0.5 and manifest["settings"]["blocksize"] is None
    assert manifest["sparsity"]["achieved"] == pytest.approx(0.5, abs=0.01)
    pruned.validate_model_args({"pretrained": str(out)})  # the folder's manifest is accepted
    named = from_name(out.name)
    assert (named.method, named.sparsity) == (EXTRA, 0.5)
    # The method really ran: kept weights are the dense ones times alpha.
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    dense = AutoModelForCausalLM.from_pretrained(tiny_hf_dir, use_safetensors=True)
    weights = load_file(next(out.glob("*.safetensors")))
    name = "model.layers.0.mlp.up_proj.weight"
    kept = weights[name] != 0
    assert torch.allclose(weights[name][kept], dense.state_dict()[name][kept].to(weights[name].dtype) * 0.5)
