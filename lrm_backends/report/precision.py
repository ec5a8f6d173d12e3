"""The real precision of an uncompressed base model, for its place on a bits-per-weight
curve: read from its file (a GGUF's tensor types, a safetensors checkpoint's dtypes),
else from its compressed variants' manifests (``source_bits_per_weight``), else from a
precision tag in its name, else assumed (16 bits, and said so).

A "base" evaluated from a llama.cpp Q4_1 file is not at 16 bits: drawing it there
(and calling it uncompressed) misplaces every quantized variant against it.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrm_backends.report.compression import FULL_PRECISION_BITS, _PRECISION_RE, FULL_PRECISION_TYPES, model_basename

FROM_FILE, FROM_MANIFEST, FROM_NAME, ASSUMED = "file", "manifest", "name", "assumed"
# Bits per element of safetensors dtypes (the header's "dtype" strings).
SAFETENSORS_BITS = {"F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8,
                    "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U8": 8, "BOOL": 8}
# A safetensors header is JSON of at most this many bytes (the format's own limit is
# 100 MB); anything larger is not a header we read.
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class Precision:
    """Bits per weight of a model as stored, what its type is called and where that
    was read from (FROM_FILE | FROM_MANIFEST | FROM_NAME | ASSUMED)."""

    bits: float
    name: str  # "Q4_1", "BF16", "F32", ...
    source: str

    def describe(self) -> str:
        """ "Q4_1, 5.74 bpw" ; "16 bpw, assumed" when nothing said.

        >>> Precision(5.7412, "Q4_1", FROM_FILE).describe(), Precision(16.0, "", ASSUMED).describe()
        ('Q4_1, 5.74 bpw', '16 bpw, assumed')
        """
        bpw = f"{round(self.bits, 2):g} bpw"
        if self.source == ASSUMED:
            return f"{bpw}, assumed"
        return f"{self.name}, {bpw}" if self.name else bpw


def _gguf_precision(path: Path) -> Precision | None:
    try:
        from gguf import GGUFReader
        from gguf.constants import LlamaFileType
    except ImportError:  # the gguf package is optional: fall back to manifests and names
        return None
    try:
        reader = GGUFReader(str(path))
    except Exception:  # noqa: BLE001 - an unreadable file is "unknown", never fatal
        return None
    nbytes = sum(int(t.n_bytes) for t in reader.tensors)
    elements = sum(int(t.n_elements) for t in reader.tensors)
    if not elements:
        return None
    name = ""
    field = reader.fields.get("general.file_type")
    if field is not None:
        try:
            name = LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_")
        except (ValueError, IndexError, KeyError):
            name = ""
    if name == "ALL_F32":
        name = "F32"
    return Precision(8.0 * nbytes / elements, name, FROM_FILE)


def _safetensors_precision(folder: Path) -> Precision | None:
    """Element-weighted bits of every tensor in the folder's ``*.safetensors`` headers."""
    bits = elements = 0
    dtypes: dict[str, int] = {}
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with open(f, "rb") as fh:
                (size,) = struct.unpack("<Q", fh.read(8))
                if size > MAX_HEADER_BYTES:
                    return None
                header: dict[str, Any] = json.loads(fh.read(size))
        except (OSError, struct.error, ValueError):
            return None
        for name, t in header.items():
            if name == "__metadata__" or not isinstance(t, dict):
                continue
            n = 1
            for d in t.get("shape", []):
                n *= int(d)
            b = SAFETENSORS_BITS.get(str(t.get("dtype")))
            if b is None:
                return None
            bits += b * n
            elements += n
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + n
    if not elements:
        return None
    return Precision(bits / elements, max(dtypes, key=dtypes.get), FROM_FILE)


def from_file(model_ref: str) -> Precision | None:
    """The precision of a local model: a ``.gguf`` file, or a folder of safetensors."""
    path = Path(model_ref).expanduser()
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            return _gguf_precision(path)
        if path.is_dir():
            return _safetensors_precision(path)
    except OSError:
        return None
    return None


def from_manifests(manifests: list[dict[str, Any]]) -> Precision | None:
    """``source_bits_per_weight`` (and ``source_type``) that ``lrm compress gguf``
    measured on the source file, from the first manifest that has it."""
    for man in manifests:
        q = man.get("quantization") if isinstance(man, dict) else None
        if not isinstance(q, dict):
            continue
        try:
            bits = float(q.get("source_bits_per_weight"))
        except (TypeError, ValueError):
            continue
        if bits == bits and bits > 0:
            return Precision(bits, str(q.get("source_type") or ""), FROM_MANIFEST)
    return None


def from_name(model_ref: str) -> Precision | None:
    """A precision tag in the name (``-bf16``, ``F32``)."""
    m = _PRECISION_RE.search(model_basename(model_ref))
    if m is None:
        return None
    tag = m.group(1).upper()
    return Precision(FULL_PRECISION_TYPES[tag], re.sub("^FP", "F", tag), FROM_NAME)


def base_precision(model_ref: str, manifests: list[dict[str, Any]] | None = None) -> Precision:
    """The base model's precision: its file, its variants' manifests, its name, else
    FULL_PRECISION_BITS (marked ASSUMED)."""
    return (from_file(model_ref) or from_manifests(manifests or []) or from_name(model_ref)
            or Precision(FULL_PRECISION_BITS, "", ASSUMED))
