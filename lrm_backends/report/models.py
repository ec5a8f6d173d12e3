"""Runs -> models: runs of one model (different seeds) are pooled as repeats.

A model is identified by its ``--label`` when one is given, else by its backend and
model path; its readable label comes from the model path (``DeepSeek-R1-Distill-
Llama-8B-Q4_K_M``), made unique where two different models share a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import os

from lrm_backends.report.compression import (
    BITS, FROM_MANIFEST, Compression, from_manifest, from_name, model_basename,
)
from lrm_backends.report.loading import RESULTS, Responses, Run, Warn
from lrm_backends.report.precision import Precision, base_precision, dense_precision, from_file


@dataclass
class PooledTask:
    """One task of one model, over all of its runs."""

    task: str
    runs: int = 0
    responses: Responses = field(default_factory=Responses)
    response_runs: int = 0  # runs that gave per-response data
    aggregates: list[tuple[int | None, dict]] = field(default_factory=list)  # (questions, numbers) per run
    sources: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every run gave per-response data (else the main table uses the aggregates)."""
        return self.response_runs == self.runs and self.runs > 0


@dataclass
class Model:
    label: str
    key: str
    runs: list[Run]
    compression: Compression
    tasks: dict[str, PooledTask] = field(default_factory=dict)
    # An uncompressed model's precision as stored (read from its file where it can be):
    # where it sits on a bits-per-weight curve.
    precision: Precision | None = None

    @property
    def model_ref(self) -> str:
        return self.runs[0].model_ref


def _default_label(run: Run) -> str:
    ref = run.model_ref
    if run.model == "lrm-replay" and "responses" in run.model_args:
        return "replay:" + model_basename(ref)
    return model_basename(ref) or ref


def _compression(model_runs: list[Run], label: str, warn: Warn) -> Compression:
    ref = model_runs[0].model_ref
    for run in model_runs:
        if run.manifest is not None:
            comp = from_manifest(run.manifest, ref)
            if comp is not None:
                return comp
            warn(f"{run.manifest_path}: says neither sparsity nor quantization; compression read from the name")
            break
    comp = from_name(ref)
    if comp.kind is None and label != model_basename(ref):
        by_label = from_name(label)
        if by_label.kind is not None:
            return by_label
    return comp


def pool_models(runs: list[Run], warn: Warn) -> list[Model]:
    """Group runs into models, pool their tasks and order the models for the tables:
    per base model (in order of appearance), the uncompressed one first, then
    quantizations from most to fewest bits, then prunings from least to most sparse."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.label or run.identity, []).append(run)
    labels = _unique_labels({key: rs[0].label or _default_label(rs[0]) for key, rs in groups.items()}, groups)
    models = []
    for key, model_runs in groups.items():
        model = Model(labels[key], key, model_runs, _compression(model_runs, labels[key], warn))
        for run in model_runs:
            for task, tr in run.tasks.items():
                pt = model.tasks.setdefault(task, PooledTask(task))
                pt.runs += 1
                pt.sources.append(tr.source)
                pt.aggregates.append((tr.n_docs, tr.aggregate))
                if tr.responses is not None and tr.source != RESULTS:
                    pt.responses.extend(tr.responses)
                    pt.response_runs += 1
        _check_seeds(model, warn)
        models.append(model)
    _mark_sources(models)
    for m in models:
        if m.compression.kind is None:
            manifests = [r.manifest for v in models if v.compression.base == m.compression.base
                         for r in v.runs if r.manifest is not None]
            own = next((r.manifest for r in m.runs if r.manifest is not None), None)
            dense = dense_precision(own)  # `lrm compress none`: its source_* fields are not its own
            m.precision = (from_file(m.model_ref) or dense) if dense else base_precision(m.model_ref, manifests)
    first_seen: dict[str, int] = {}
    for i, m in enumerate(models):
        first_seen.setdefault(m.compression.base, i)

    def order(im: tuple[int, Model]) -> tuple:
        i, m = im
        c = m.compression
        if c.kind is None:
            rank: tuple = (0, 0.0, "")
        elif c.kind == BITS:
            rank = (1, -(c.bits_per_weight or 0.0), c.method or "")
        else:
            rank = (2, c.sparsity or 0.0, c.method or "")
        return (first_seen[c.base], *rank, i)

    return [m for _, m in sorted(enumerate(models), key=order)]


def _same_path(ref: str) -> str:
    """A model reference normalised for comparing paths (a Hub id stays as it is)."""
    path = os.path.expanduser(str(ref))
    return os.path.realpath(path) if os.path.exists(path) else os.path.normpath(path)


def _mark_sources(models: list[Model]) -> None:
    """A model that other models' manifests name as their ``source_model`` is their
    uncompressed base, whatever its name says: a run of ``SmolLM2.Q4_1.gguf`` from
    which Q8_0 and pruned variants were made is the base of their curves (at its own
    stored precision), not a Q4_1 point of its own curve."""
    sources: dict[str, Compression] = {}
    for m in models:
        for run in m.runs:
            src = run.manifest.get("source_model") if isinstance(run.manifest, dict) else None
            if src and m.compression.source == FROM_MANIFEST:
                sources.setdefault(_same_path(str(src)), m.compression)
    for m in models:
        variant = sources.get(_same_path(m.model_ref))
        if variant is not None and m.compression.source != FROM_MANIFEST:
            m.compression = Compression(base=variant.base, base_name=variant.base_name)


def _unique_labels(labels: dict[str, str], groups: dict[str, list[Run]]) -> dict[str, str]:
    """Two different models with one name get their parent folder (then a number) added."""
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    out = {}
    taken: set[str] = set()
    for key, label in labels.items():
        if counts[label] > 1 and not groups[key][0].label:
            parent = PurePosixPath(groups[key][0].model_ref.replace("\\", "/").rstrip("/")).parent.name
            label = f"{parent}/{label}" if parent else label
        base, n = label, 2
        while label in taken:
            label, n = f"{base} #{n}", n + 1
        taken.add(label)
        out[key] = label
    return out


def _check_seeds(model: Model, warn: Warn) -> None:
    """Two runs of one task with the same seeds are the same samples twice (pooled
    anyway); runs of different tasks (a sweep's cells) share nothing to pool."""
    seen: dict[str, list[Run]] = {}
    for run in model.runs:
        if not run.seeds:
            continue
        sig = repr(sorted(run.seeds.items()))
        twin = next((r for r in seen.get(sig, []) if set(r.tasks) & set(run.tasks)), None)
        if twin is not None:
            warn(
                f"{model.label}: runs {twin.path} and {run.path} have the same seeds "
                f"({dict(sorted(run.seeds.items()))}) for {', '.join(sorted(set(twin.tasks) & set(run.tasks)))}; "
                "pooled anyway"
            )
        seen.setdefault(sig, []).append(run)

