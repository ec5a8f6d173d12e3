"""The report's figures never mislead (issue 16): each figure is drawn from fixture runs
and checked by the data behind it (series, axis scales and limits, labels, captions),
which ``lrm_backends.report.figures`` computes in pure ``*_data`` functions that the
drawing uses.

The main fixture is the issue's scenario: a base evaluated from a llama.cpp Q4_1 file
(``SmolLM2-135M-Instruct.Q4_1.gguf``, 5.74 bpw as stored), SparseGPT 30% / 50% / 2:4,
Wanda 50%, magnitude 50% and Q8_0 / Q4_K_M / Q2_K re-quantizations, on one reasoning
task (temporal) and MuSiQue with paragraphs; the magnitude variant emits nothing (zero
tokens)."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from lrm_backends.report import build_report
from lrm_backends.report import figures as F
from lrm_backends.report.fake_runs import resp, write_fake_run
from lrm_backends.report.precision import ASSUMED, FROM_FILE, FROM_MANIFEST, base_precision

TEMPORAL, CTX, AIME = "bbh_temporal_sequences_lrm", "musique_ctx_lrm", "aime24_lrm"
DOCS = ["d1", "d2", "d3", "d4"]
SOURCE_BPW = 5.74  # what `lrm compress gguf` measured on the Q4_1 source


def _tasks(strict: list[int], flexible: list[int], tokens: list[int], ctx: list[int]) -> dict[str, list[dict]]:
    return {
        TEMPORAL: [resp(d, s, f, t) for d, s, f, t in zip(DOCS, strict, flexible, tokens)],
        CTX: [resp(d, c, c, max(t // 2, 0), f1s=float(c)) for d, c, t in zip(DOCS, ctx, tokens)],
    }


# label -> (manifest fields, strict, flexible, tokens, ctx correct)
VARIANTS: dict[str, tuple[dict[str, Any], list[int], list[int], list[int], list[int]]] = {
    "sgpt30": ({"method": "sparsegpt", "sparsity": {"target": 0.3, "achieved": 0.300001, "pattern": "unstructured"}},
               [1, 1, 0, 0], [1, 1, 1, 0], [20, 220, 330, 1000], [1, 1, 0, 0]),
    "sgpt50": ({"method": "sparsegpt", "sparsity": {"target": 0.5, "achieved": 0.5, "pattern": "unstructured"}},
               [1, 0, 0, 0], [1, 1, 0, 0], [150, 260, 900, 1000], [1, 0, 0, 0]),
    "sgpt24": ({"method": "sparsegpt", "sparsity": {"target": 0.5, "achieved": 0.5, "pattern": "2:4"}},
               [0, 0, 0, 0], [1, 0, 0, 0], [400, 1000, 1000, 1000], [0, 0, 0, 0]),
    "wanda50": ({"method": "wanda", "sparsity": {"target": 0.5, "achieved": 0.5, "pattern": "unstructured"}},
                [1, 0, 0, 0], [1, 0, 0, 0], [90, 300, 800, 1000], [1, 1, 0, 0]),
    "mag50": ({"method": "magnitude", "sparsity": {"target": 0.5, "achieved": 0.5, "pattern": "unstructured"}},
              [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]),
    "q8": ({"method": "gguf", "quantization": {"type": "Q8_0", "bits_per_weight": 8.5,
                                               "source_bits_per_weight": SOURCE_BPW}},
           [1, 1, 0, 0], [1, 1, 1, 0], [100, 200, 300, 1000], [1, 1, 1, 0]),
    "q4km": ({"method": "gguf", "quantization": {"type": "Q4_K_M", "bits_per_weight": 6.16547,
                                                 "source_bits_per_weight": SOURCE_BPW}},
             [1, 0, 0, 0], [1, 1, 0, 0], [100, 250, 600, 1000], [1, 1, 0, 0]),
    "q2k": ({"method": "gguf", "quantization": {"type": "Q2_K", "bits_per_weight": 3.35,
                                                "source_bits_per_weight": SOURCE_BPW}},
            [0, 0, 0, 0], [1, 0, 0, 0], [700, 1000, 1000, 1000], [0, 0, 0, 0]),
}


@pytest.fixture(scope="module")
def smol(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("smol")
    models = root / "models"
    models.mkdir()
    base = models / "SmolLM2-135M-Instruct.Q4_1.gguf"  # not a real GGUF: its precision comes from the manifests
    write_fake_run(root / "runs" / "base", model="lrm-gguf", model_args={"pretrained": str(base)},
                   timestamp="2026-01-01T10-00-05.000001", seed=0,
                   tasks=_tasks([1, 1, 0, 0], [1, 1, 1, 0], [100, 200, 300, 1000], [1, 1, 1, 0]))
    for i, (label, (fields, strict, flex, toks, ctx)) in enumerate(VARIANTS.items()):
        manifest = {"schema_version": 1, "source_model": str(base), "wall_time_s": 1.0, "sparsity": None,
                    "quantization": None, **fields}
        if fields["method"] == "gguf":
            ref = models / f"smol-{label}.gguf"
            ref.write_bytes(b"")
            (models / f"smol-{label}.gguf.compression.json").write_text(json.dumps(manifest))
            backend = "lrm-gguf"
        else:
            ref = models / f"smol-{label}"
            ref.mkdir()
            (ref / "compression.json").write_text(json.dumps(manifest))
            backend = "hf"
        write_fake_run(root / "runs" / label, model=backend, model_args={"pretrained": str(ref)},
                       timestamp=f"2026-01-0{1 + i % 8}T11-00-05.000001", seed=0, tasks=_tasks(strict, flex, toks, ctx))
    runs = [str(root / "runs" / name) for name in ["base", *VARIANTS]]
    report = build_report(runs, root / "report", progress=False, figure_filter="both")
    return {"root": root, "report": report, "tables": report.tables, "runs": runs,
            "base_key": report.tables.row("models", model="SmolLM2-135M-Instruct.Q4_1")["base"]}


# ---------------------------------------------------------------- 1. N:M is its own series


def test_nm_pattern_is_a_series_of_its_own(smol):
    data = F.compression_curve_data(smol["tables"], smol["base_key"], "sparsity")
    assert data["series_names"] == ["sparsegpt", "wanda", "magnitude", "sparsegpt 2:4"] or \
        set(data["series_names"]) == {"sparsegpt", "sparsegpt 2:4", "wanda", "magnitude"}
    temporal = {s["series"]: s for s in data["score"] if s["task"] == TEMPORAL and s["filter"] == "strict"}
    assert temporal["sparsegpt"]["x"] == [0.0, 0.300001, 0.5]
    assert "smol-sgpt24" not in temporal["sparsegpt"]["models"]
    assert temporal["sparsegpt 2:4"]["x"] == [0.0, 0.5] and temporal["sparsegpt 2:4"]["models"][-1] == "smol-sgpt24"
    # each series has its own legend entry (the token panel carries the legend)
    labels = [s["label"] for s in data["tokens"] if s["task"] == TEMPORAL]
    assert "Temporal (sparsegpt 2:4)" in labels and "Temporal (sparsegpt)" in labels
    assert len({s["index"] for s in data["tokens"]}) == 4  # a marker each


# ---------------------------------------------------------------- 2. the base at its stored precision


def test_base_sits_at_its_stored_precision(smol):
    tables = smol["tables"]
    base = tables.row("models", model="SmolLM2-135M-Instruct.Q4_1")
    assert base["kind"] is None  # the variants' source is their base, whatever its name says
    assert base["precision_bits"] == SOURCE_BPW and base["precision_source"] == FROM_MANIFEST
    data = F.compression_curve_data(tables, smol["base_key"], "bits")
    q = next(s for s in data["score"] if s["task"] == TEMPORAL and s["filter"] == "strict")
    assert q["x"] == [3.35, SOURCE_BPW, 6.16547, 8.5]  # not 16
    assert "5.74 bpw" in data["title"] and "uncompressed" not in data["title"]
    assert "5.74 bpw" in smol["report"].markdown


def _write_gguf(path: Path, dtype: str) -> Path:
    import numpy as np
    from gguf import GGUFWriter, LlamaFileType

    w = GGUFWriter(str(path), "llama")
    w.add_file_type(LlamaFileType.ALL_F32 if dtype == "F32" else LlamaFileType.MOSTLY_F16)
    w.add_tensor("w", np.ones((4, 32), dtype=np.float32 if dtype == "F32" else np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _write_safetensors(folder: Path, dtypes: dict[str, tuple[str, list[int]]]) -> Path:
    folder.mkdir()
    header, offset = {}, 0
    for name, (dtype, shape) in dtypes.items():
        n = 1
        for d in shape:
            n *= d
        size = n * {"BF16": 2, "F32": 4}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return folder


def test_precision_is_read_from_the_file(tmp_path):
    assert base_precision(str(_write_gguf(tmp_path / "m.gguf", "F32"))).describe() == "F32, 32 bpw"
    f16 = base_precision(str(_write_gguf(tmp_path / "h.gguf", "F16")))
    assert (f16.bits, f16.name, f16.source) == (16.0, "F16", FROM_FILE)
    st = base_precision(str(_write_safetensors(tmp_path / "st", {"a": ("BF16", [8, 8]), "b": ("F32", [2])})))
    assert st.name == "BF16" and st.bits == pytest.approx((64 * 16 + 2 * 32) / 66) and st.source == FROM_FILE
    # the file wins over a manifest; nothing known: 16 bits, and it says "assumed"
    man = [{"quantization": {"source_bits_per_weight": 5.74}}]
    assert base_precision(str(tmp_path / "h.gguf"), man).bits == 16.0
    assert base_precision("org/unknown", man).bits == 5.74
    assert base_precision("org/unknown").source == ASSUMED and "assumed" in base_precision("org/x").describe()


# ---------------------------------------------------------------- 3. score axes 0-100


def test_score_axes_are_0_to_100(smol, degenerate):
    for tables, base in ((smol["tables"], smol["base_key"]), (degenerate["tables"], degenerate["base_key"])):
        for task in tables.tasks:
            assert F.score_vs_tokens_data(tables, task)["ylim"] == (0.0, 100.0)
            assert F.accuracy_by_length_data(tables, task)["ylim"] == (0.0, 100.0)
        for axis in ("sparsity", "bits"):
            if any(r["axis"] == axis for r in tables.curves):
                assert F.compression_curve_data(tables, base, axis)["ylim"] == (0.0, 100.0)
    # the drawing keeps them: render one figure of the all-zero run and read its axes
    data = F.score_vs_tokens_data(degenerate["tables"], TEMPORAL)
    assert data["points"] and all(p["y"] == 0.0 for p in data["points"])


def test_drawn_axes_use_the_data(degenerate, tmp_path, monkeypatch):
    """The plotting applies the data's limits (checked on the Axes, not on pixels)."""
    seen: list[Any] = []
    real_save = F._save

    def save(fig, path):
        seen.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(F, "_save", save)
    tables = degenerate["tables"]
    F.score_vs_tokens(tables, tmp_path, F.model_colors([m["model"] for m in tables.models]), TEMPORAL)
    F.compression_curve(tables, tmp_path, degenerate["base_key"], "sparsity")
    F.knowledge_vs_reasoning(tables, tmp_path, degenerate["base_key"])
    assert seen[0].axes[0].get_ylim() == (0.0, 100.0)
    assert seen[1].axes[0].get_ylim() == (0.0, 100.0)
    lo, hi = seen[2].axes[0].get_ylim()
    assert lo <= -F.MIN_DROP_SPAN and hi >= F.MIN_DROP_SPAN
    assert any(t.get_text() == "no difference from the base" for t in seen[2].axes[0].texts)


# ---------------------------------------------------------------- 4. --filter


def test_filter_both_draws_two_styles_and_the_report_says_so(smol):
    tables = smol["tables"]
    data = F.compression_curve_data(tables, smol["base_key"], "sparsity", "both")
    by = {(s["series"], s["filter"]): s for s in data["score"] if s["task"] == TEMPORAL}
    assert by[("sparsegpt", "strict")]["y"] == [50.0, 50.0, 25.0]
    assert by[("sparsegpt", "flexible")]["y"] == [75.0, 75.0, 50.0]
    assert F.FILTER_LINESTYLE["strict"] != F.FILTER_LINESTYLE["flexible"]
    flex = F.accuracy_by_length_data(tables, TEMPORAL, "flexible")
    assert {s["filter"] for s in flex["series"]} == {"flexible"} and flex["ylabel"] == "exact match, flexible (%)"
    assert "strict scores (solid lines" in smol["report"].markdown
    assert json.loads(smol["report"].paths["report.json"].read_text())["figure_filter"] == "both"
    assert {f["filter"] for f in smol["report"].figures} >= {"both"}


def test_filter_flag_on_the_cli(smol, tmp_path, capsys):
    from lrm_backends.cli import main

    assert main(["report", *smol["runs"], "--out", str(tmp_path / "r"), "--filter", "flexible", "--quiet"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Figures show flexible scores" in md
    with pytest.raises(SystemExit):
        main(["report", *smol["runs"], "--out", str(tmp_path / "r2"), "--filter", "loose"])
    assert "invalid choice: 'loose'" in capsys.readouterr().err


# ---------------------------------------------------------------- 5. an average of one task


def test_average_of_one_task_is_not_drawn_twice(smol, degenerate):
    one = F.compression_curve_data(smol["tables"], smol["base_key"], "sparsity")
    assert {s["task"] for s in one["score"]} == {TEMPORAL, CTX}  # no "reasoning avg" copy of temporal
    two = F.compression_curve_data(degenerate["tables"], degenerate["base_key"], "sparsity")
    assert "reasoning_avg" in {s["task"] for s in two["score"]}  # two reasoning tasks: the average is news


# ---------------------------------------------------------------- 6. zero-token responses


def test_zero_token_responses_stay_on_the_length_axis(smol):
    data = F.length_distributions_data(smol["tables"], TEMPORAL)
    assert data["xscale"] == "symlog"  # lengths 0..1000: a log axis would drop the zeros
    assert data["zero_tokens"] == {"smol-mag50": 4}
    assert "smol-mag50 4" in data["caption"]
    assert next(r for r in data["models"] if r["model"] == "smol-mag50")["incorrect"] == [0, 0, 0, 0]
    entry = next(f for f in smol["report"].figures
                 if f["figure"] == "length_correct_vs_incorrect" and f["task"] == TEMPORAL)
    assert entry["caption"] == data["caption"] and data["caption"] in smol["report"].markdown
    scatter = F.score_vs_tokens_data(smol["tables"], TEMPORAL)
    assert scatter["zero_tokens"] == ["smol-mag50"] and scatter["xscale"] != "log"  # its point stays drawn
    assert F.token_scale([5, 10, 5000]) == "log"


# ---------------------------------------------------------------- 7. zero drops


def test_zero_drops_draw_the_zero(degenerate, smol):
    data = F.knowledge_vs_reasoning_data(degenerate["tables"], degenerate["base_key"])
    assert data["note"] == "no difference from the base"
    assert all(y == 0.0 for b in data["bars"] for y in b["y"])
    lo, hi = data["ylim"]
    assert lo <= -F.MIN_DROP_SPAN < 0 < F.MIN_DROP_SPAN <= hi
    real = F.knowledge_vs_reasoning_data(smol["tables"], smol["base_key"])
    assert real["note"] == "" and real["ylim"][0] < 0 < real["ylim"][1]


# ---------------------------------------------------------------- 8. rounded labels


def test_labels_are_rounded_and_exact_values_kept(smol):
    tables = smol["tables"]
    comp = {m["model"]: m["compression"] for m in tables.models}
    assert comp["smol-sgpt30"] == "sparsegpt 30%" and comp["smol-q4km"] == "Q4_K_M (6.17 bpw)"
    assert comp["smol-sgpt24"] == "sparsegpt 50% (2:4)"
    names = F.knowledge_vs_reasoning_data(tables, smol["base_key"])["names"]
    assert "sparsegpt 30%" in names and "Q4_K_M (6.17 bpw)" in names
    md = smol["report"].markdown
    assert "30.0001" not in md and "6.16547" not in md
    data = json.loads(smol["report"].paths["report.json"].read_text())
    row = next(m for m in data["models"] if m["model"] == "smol-q4km")
    assert row["bits_per_weight"] == 6.16547
    assert next(m for m in data["models"] if m["model"] == "smol-sgpt30")["sparsity"] == 0.300001
    with open(smol["report"].paths["models.csv"], encoding="utf-8") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert rows["smol-q4km"]["bits_per_weight"] == "6.16547" and rows["smol-sgpt30"]["sparsity"] == "0.300001"


# ---------------------------------------------------------------- degenerate run


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory) -> dict[str, Any]:
    """Every score zero, every response truncated at the same length, on two reasoning
    tasks and MuSiQue with paragraphs: a base and one pruned variant."""
    root = tmp_path_factory.mktemp("degenerate")
    tasks = {t: [resp(d, 0, 0, 256, trunc=1, noans=1) for d in DOCS] for t in (AIME, TEMPORAL, CTX)}
    write_fake_run(root / "base", model="hf", model_args={"pretrained": "org/Tiny"},
                   timestamp="2026-01-01T10-00-05.000001", seed=0, tasks=tasks)
    pruned = root / "models" / "Tiny-wanda"
    pruned.mkdir(parents=True)
    (pruned / "compression.json").write_text(json.dumps({
        "schema_version": 1, "method": "wanda", "source_model": "org/Tiny", "wall_time_s": 1.0,
        "sparsity": {"target": 0.5, "achieved": 0.5, "pattern": "unstructured"}, "quantization": None}))
    write_fake_run(root / "pruned", model="hf", model_args={"pretrained": str(pruned)},
                   timestamp="2026-01-02T10-00-05.000001", seed=0, tasks=tasks)
    report = build_report([str(root / "base"), str(root / "pruned")], root / "report", progress=False)
    return {"report": report, "tables": report.tables, "base_key": "tiny"}


def test_degenerate_run_draws_every_figure(degenerate):
    kinds = {f["figure"] for f in degenerate["report"].figures}
    assert kinds == {"score_vs_tokens", "length_correct_vs_incorrect", "accuracy_by_length", "compression_curve",
                     "knowledge_vs_reasoning"}
    assert all(Path(f["path"]).stat().st_size > 0 for f in degenerate["report"].figures)
