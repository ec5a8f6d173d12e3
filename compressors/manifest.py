"""``compression.json``: what was done to a compressed model, next to its weights.

Every output of ``lrm compress`` (a pruned checkpoint folder, or a quantized GGUF file,
whose manifest is ``OUT.gguf.compression.json`` beside it) carries one. ``lrm report``
and the ``lrm-pruned`` backend read it back. Schema (``schema_version`` 1)::

    {
      "schema_version": 1,
      "method": "sparsegpt" | "wanda" | "magnitude" | "gguf",   # compressors.methods
      "source_model": "...",           # path or Hub id as given
      "created": "2025-01-01T00:00:00+00:00",
      "wall_time_s": 123.4,
      "seed": 0 | null,
      "tool": {"name": "lrm-bench", "version": ..., "torch": ..., ...},
      "calibration": null | {"source", "kind", "num_samples", "seq_len", "seed",
                             "tokens", "stream_tokens"},
      "sparsity": null | {"target", "pattern", "achieved", "achieved_all_parameters",
                          "per_layer": {name: fraction}, "per_module": {name: fraction},
                          "pruned_parameters", "total_parameters"},
      "quantization": null | {"type", "bits_per_weight", "imatrix", "tensor_types",
                              "source_type"},
      "settings": {...}                # method knobs (blocksize, percdamp, ignore, ...)
    }
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from compressors.methods import manifest_methods

MANIFEST_NAME = "compression.json"
SCHEMA_VERSION = 1
TOOL_NAME = "lrm-bench"
# Suffix of the manifest written beside a single-file output (a GGUF).
SIDECAR_SUFFIX = ".compression.json"


@dataclass
class Manifest:
    """The contents of ``compression.json`` (see the module docstring)."""

    method: str
    source_model: str
    wall_time_s: float
    seed: int | None = None
    calibration: dict[str, Any] | None = None
    sparsity: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    tool: dict[str, str] = field(default_factory=lambda: tool_versions())
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_versions(extra: Iterable[str] = ("torch", "transformers")) -> dict[str, str]:
    """Versions of lrm-bench and the libraries that did the work."""
    versions = {
        "name": TOOL_NAME,
        "version": _version(TOOL_NAME) or "unknown",
        "python": platform.python_version(),
    }
    for dist in extra:
        v = _version(dist)
        if v:
            versions[dist] = v
    return versions


def manifest_path(output: str | Path) -> Path:
    """Where the manifest of ``output`` lives: inside a folder, beside a file."""
    p = Path(output)
    if p.suffix.lower() == ".gguf" or p.is_file():
        return p.with_name(p.name + SIDECAR_SUFFIX)
    return p / MANIFEST_NAME


def write_manifest(output: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest`` for ``output`` (folder or file); returns the manifest's path."""
    path = manifest_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(output: str | Path) -> dict[str, Any]:
    """Read and check the manifest of ``output``.

    Raises ``FileNotFoundError`` when there is none and ``ValueError`` when it is not a
    manifest this version understands.
    """
    path = manifest_path(output)
    if not path.is_file():
        raise FileNotFoundError(
            f"{output} has no {path.name}: it was not written by 'lrm compress'; compress "
            "the model with 'lrm compress ...' or load it with the plain 'hf' backend"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-run 'lrm compress'") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, expected a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path} has schema_version {version!r}; this lrm-bench reads version "
            f"{SCHEMA_VERSION}; upgrade lrm-bench or re-run 'lrm compress'"
        )
    missing = [k for k in ("method", "source_model", "wall_time_s") if k not in data]
    if missing:
        raise ValueError(f"{path} lacks the fields {missing}; re-run 'lrm compress'")
    if data["method"] not in (known := manifest_methods()):
        raise ValueError(f"{path} names an unknown method {data['method']!r}; expected one of {known}")
    return data


def summarize_sparsity(
    named_weights: Iterable[tuple[str, Any]], layers_name: str | None = None
) -> dict[str, Any]:
    """Zero fractions of the given ``(module name, weight tensor)`` pairs.

    ``per_module`` maps each name to its zero fraction; ``per_layer`` aggregates the
    modules of each decoder layer (``model.layers.3``), weighted by size, when
    ``layers_name`` (``model.layers``) is given.
    """
    per_module: dict[str, float] = {}
    zeros_by_layer: dict[str, int] = defaultdict(int)
    size_by_layer: dict[str, int] = defaultdict(int)
    zeros_total = size_total = 0
    for name, weight in named_weights:
        zeros = int((weight == 0).sum().item())
        size = int(weight.numel())
        per_module[name] = zeros / size if size else 0.0
        zeros_total += zeros
        size_total += size
        if layers_name and name.startswith(layers_name + "."):
            index = name[len(layers_name) + 1 :].split(".", 1)[0]
            key = f"{layers_name}.{index}"
            zeros_by_layer[key] += zeros
            size_by_layer[key] += size
    per_layer = {k: zeros_by_layer[k] / size_by_layer[k] for k in size_by_layer}
    return {
        "achieved": zeros_total / size_total if size_total else 0.0,
        "pruned_parameters": size_total,
        "per_layer": per_layer,
        "per_module": per_module,
    }


def measure_model_sparsity(model: Any, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Measure zero fractions of a model's decoder-layer linear weights, and of all its
    parameters (``achieved_all_parameters``, counting tied tensors once)."""
    import re

    from torch import nn

    from compressors.orchestrate import find_decoder_layers

    layers_name, layers = find_decoder_layers(model)
    patterns = [re.compile(p) for p in ignore]
    pairs = []
    for index, layer in enumerate(layers):
        for name, module in layer.named_modules():
            full = f"{layers_name}.{index}.{name}"
            if isinstance(module, nn.Linear) and not any(p.search(full) for p in patterns):
                pairs.append((full, module.weight.data))
    summary = summarize_sparsity(pairs, layers_name)
    zeros = total = 0
    for p in model.parameters():  # parameters() yields a tied tensor once
        zeros += int((p.data == 0).sum().item())
        total += p.numel()
    summary["achieved_all_parameters"] = zeros / total if total else 0.0
    summary["total_parameters"] = total
    return summary
