"""Comparisons that cross precisions or backends: a line in the report's notes per base
model whose uncompressed run and pruned variants were not stored or run alike.

A llama.cpp Q4_1 base against float32 variants evaluated with transformers differs by
more than the pruning: the base's own quantization and the engine (sampling, chat
template, numerics) move the scores too. The fix is a base of the variants' kind
(``lrm compress none --model BASE.gguf --out DIR``, evaluated as the variants are).
Quantized variants are expected to differ in precision from their base; only their
backend is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compressors.methods import DENSE_METHOD
from lrm_backends.report.compression import SPARSITY
from lrm_backends.report.precision import ASSUMED, from_file

# The inference engine behind each backend name (lm-eval's and ours). A backend not
# listed is its own engine; replayed outputs (lrm-replay) were made elsewhere and say
# nothing about the engine, so they are left out.
ENGINES: dict[str, str] = {
    "hf": "transformers", "lrm-pruned": "transformers", "hf-auto": "transformers",
    "lrm-gguf": "llama.cpp", "vllm": "vLLM", "lrm-vllm": "vLLM",
    "lrm-replay": "",
}  # fmt: skip
# A checkpoint dtype (manifest ``settings.dtype``) by the name the precision reader uses.
DTYPE_NAMES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16", "float64": "F64"}


def _engine(model: Any) -> str | None:
    backend = model.runs[0].model if model.runs else None
    if not backend:
        return None
    return ENGINES.get(backend, backend) or None


def _stored_precision(model: Any) -> str | None:
    """The dtype or GGUF type a model was evaluated in ("F32", "Q4_1"), None if unknown."""
    if model.compression.kind is None:
        p = model.precision
        return p.name.upper() if p is not None and p.source != ASSUMED and p.name else None
    for run in model.runs:
        settings = run.manifest.get("settings") if isinstance(run.manifest, dict) else None
        dtype = settings.get("dtype") if isinstance(settings, dict) else None
        if isinstance(dtype, str) and dtype:
            return DTYPE_NAMES.get(dtype.removeprefix("torch."), dtype.upper())
    p = from_file(model.model_ref)
    return p.name.upper() if p is not None and p.name else None


def mixed_comparisons(models: list[Any]) -> list[str]:
    """One note per base model whose runs differ in stored precision (the base against
    its pruned variants) or in backend engine, naming each run's precision and engine;
    [] when every comparison is like for like. ``models``: report.models.Model list."""
    groups: dict[str, list[Any]] = {}
    for m in models:
        groups.setdefault(m.compression.base, []).append(m)
    notes = []
    for members in groups.values():
        bases = [m for m in members if m.compression.kind is None]
        variants = [m for m in members if m.compression.kind is not None]
        if not bases or not variants:
            continue
        compared = [m for m in members if m.compression.kind in (None, SPARSITY)]
        precisions = {p for m in compared if (p := _stored_precision(m))}
        engines = {e for m in members if (e := _engine(m))}
        if len(precisions) <= 1 and len(engines) <= 1:
            continue
        what = " and ".join(x for x, mixed in (("precision", len(precisions) > 1), ("backend", len(engines) > 1))
                            if mixed)

        def describe(m: Any) -> str:
            parts = []
            if m.compression.kind is None:
                parts.append("base")
                if m.precision is not None and m.precision.source != ASSUMED:
                    parts.append(m.precision.describe())
            elif m.compression.kind == SPARSITY and (p := _stored_precision(m)):
                parts.append(p)
            if (e := _engine(m)) and m.runs[0].model:
                parts.append(f"{e} ({m.runs[0].model})" if e != m.runs[0].model else e)
            return f"{m.label} ({'; '.join(parts)})" if parts else m.label

        note = (f"{bases[0].compression.base_name}: the comparison crosses {what}, so score differences are "
                f"not only the compression's: {', '.join(describe(m) for m in members)}.")
        pruned = {(_stored_precision(m), _engine(m)) for m in variants if m.compression.kind == SPARSITY}
        alike = [b for b in bases if (_stored_precision(b), _engine(b)) in pruned]
        gguf_bases = [m for m in bases if str(m.model_ref).lower().endswith(".gguf")]
        if alike:
            note += f" {alike[0].label} is the pruned variants' like-for-like base."
        elif gguf_bases and pruned:
            note += (f" For a like-for-like base, run 'lrm compress {DENSE_METHOD} --model "
                     f"{Path(gguf_bases[0].model_ref).name} --out DIR' and evaluate DIR as the pruned variants are.")
        notes.append(note)
    return notes
