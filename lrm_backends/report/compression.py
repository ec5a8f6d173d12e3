"""What was done to a model: from its ``compression.json`` manifest, else from its name.

Pure functions (standard library only; pruning method names from compressors.methods,
itself standard library only). A :class:`Compression` says the method, the
sparsity or the bits per weight, and which base model the variant came from, so that
``lrm report`` can draw curves per base model and measure drops from the uncompressed
base. Manifests are read defensively: any field may be missing, a malformed one is
ignored rather than fatal (the writer is ``compressors/manifest.py``, schema 1).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from compressors.methods import method_names  # standard library only

SPARSITY, BITS = "sparsity", "bits"  # the two x axes of a compression curve
FROM_MANIFEST, FROM_NAME, UNCOMPRESSED = "manifest", "name", "none"
# Bits per weight of an uncompressed checkpoint (bf16 / fp16), where a curve over bits
# places the base model.
FULL_PRECISION_BITS = 16.0

# Effective bits per weight of llama.cpp quantization types. K-quant mixes: llama.cpp
# tools/quantize/README.md (measured on Llama 2 7B); i-quants: the figures printed by
# `llama-quantize --help`; plain block types: their ggml block layout (ggml-common.h:
# Q4_0 = 18 bytes per 32 weights = 4.5). A manifest's measured bits_per_weight wins.
GGUF_BITS_PER_WEIGHT: dict[str, float] = {
    "Q2_K": 3.35, "Q2_K_S": 2.97, "Q3_K_S": 3.50, "Q3_K_M": 3.91, "Q3_K_L": 4.27,
    "Q4_K_S": 4.58, "Q4_K_M": 4.84, "Q5_K_S": 5.52, "Q5_K_M": 5.68, "Q6_K": 6.56,
    "Q4_K": 4.5, "Q5_K": 5.5, "Q3_K": 3.4375,
    "Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0, "Q8_0": 8.5,
    "IQ1_S": 1.56, "IQ1_M": 1.75, "IQ2_XXS": 2.06, "IQ2_XS": 2.31, "IQ2_S": 2.5,
    "IQ2_M": 2.7, "IQ3_XXS": 3.06, "IQ3_XS": 3.3, "IQ3_S": 3.44, "IQ3_M": 3.66,
    "IQ4_NL": 4.5, "IQ4_XS": 4.25, "TQ1_0": 1.69, "TQ2_0": 2.06, "MXFP4": 4.25,
}
FULL_PRECISION_TYPES = {"F16": 16.0, "BF16": 16.0, "FP16": 16.0, "F32": 32.0, "FP32": 32.0}
INT_QUANT_METHODS = ("awq", "gptq", "bnb", "hqq", "quanto", "exl2", "smoothquant")

_SEP = r"(?:^|(?<=[^A-Za-z0-9]))"  # start of a name token
_END = r"(?=$|[^A-Za-z0-9])"
_GGUF_RE = re.compile(
    _SEP + r"(?:UD-)?(I?Q[1-8]_(?:K_XL|K_[SML]|K|[01]|XXS|XS|NL|[SML])|TQ[12]_0|MXFP4)" + _END, re.I
)
_PRECISION_RE = re.compile(_SEP + r"(BF16|FP16|F16|FP32|F32)" + _END, re.I)
_SPARSE_RE = re.compile(_SEP + r"(?:sparse|sp|s)[-_]?(\d+(?:\.\d+)?)(%|pct|p)?" + _END, re.I)
_NM_RE = re.compile(r"(?<![0-9])([1-8])(?::|of|_of_)([2-9]|1[0-6])(?![0-9])", re.I)


@functools.cache
def _pruning_res(names: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Name patterns for the pruning methods of compressors.methods: ``wanda-50`` (a
    method and a percentage) and ``wanda-2-4`` (a method and an N:M pattern)."""
    alternatives = "|".join(re.escape(n) for n in names)
    prune = re.compile(
        _SEP + r"(" + alternatives + r")(?:[-_ ]?(\d+(?:\.\d+)?)(%|pct|p)?)?(?=$|[^A-Za-z0-9.])", re.I
    )
    nm_after_method = re.compile(r"(" + alternatives + r")[-_]([1-8])[-_]([2-9]|1[0-6])" + _END, re.I)
    return prune, nm_after_method


_INT_QUANT_RE = re.compile(_SEP + r"(" + "|".join(INT_QUANT_METHODS) + r")" + _END, re.I)
_BITS_RE = re.compile(
    _SEP + r"(?:w(\d{1,2})a\d{1,2}|int(\d{1,2})|(\d{1,2})[-_]?bits?|nf(4)|fp(8)|q(\d)(?:bit)?)" + _END, re.I
)


@dataclass(frozen=True)
class Compression:
    """One model's compression. ``kind`` is None for an uncompressed model."""

    base: str  # normalised base-model key: variants of one model share it
    base_name: str  # readable base-model name
    kind: str | None = None  # SPARSITY | BITS | None
    method: str | None = None  # sparsegpt, wanda, magnitude, gguf, awq, ...
    sparsity: float | None = None  # fraction of weights zeroed, 0-1
    pattern: str | None = None  # "2:4", "unstructured", ...
    quant_type: str | None = None  # "Q4_K_M", ...
    bits_per_weight: float | None = None
    source: str = UNCOMPRESSED  # FROM_MANIFEST | FROM_NAME | UNCOMPRESSED

    @property
    def level(self) -> float | None:
        """The x of this model on its compression curve."""
        if self.kind == SPARSITY:
            return self.sparsity
        if self.kind == BITS:
            return self.bits_per_weight
        return None

    def describe(self) -> str:
        """A short human label: "sparsegpt 50% (2:4)", "Q4_K_M (4.84 bpw)", "none".

        >>> Compression("m", "m", SPARSITY, "wanda", 0.5, "2:4").describe()
        'wanda 50% (2:4)'
        >>> Compression("m", "m", BITS, "gguf", quant_type="Q4_K_M", bits_per_weight=4.84).describe()
        'Q4_K_M (4.84 bpw)'
        """
        if self.kind == SPARSITY:
            text = f"{self.method or 'pruned'} {_pct(self.sparsity)}"
            return text + (f" ({self.pattern})" if self.pattern and self.pattern != "unstructured" else "")
        if self.kind == BITS:
            name = self.quant_type or self.method or "quantized"
            return name + (f" ({_round(self.bits_per_weight, 2)} bpw)" if self.bits_per_weight is not None else "")
        return "none"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level, "description": self.describe()}


def _round(value: float, digits: int) -> str:
    """A number for people: ``digits`` decimals at most, no trailing zeros (the exact
    value stays in report.json and the CSVs).

    >>> _round(6.16547, 2), _round(30.0001, 1), _round(8.5, 2)
    ('6.17', '30', '8.5')
    """
    return f"{round(value, digits):g}"


def _pct(value: float | None) -> str:
    """A fraction as a rounded percent: 0.300001 -> "30%", 0.4937 -> "49.4%"."""
    return "?%" if value is None else f"{_round(100 * value, 1)}%"


def model_basename(name: str) -> str:
    """The last path component of a model path or Hub id, without ``.gguf``.

    >>> model_basename("/models/R1-8B-Q4_K_M.gguf"), model_basename("deepseek-ai/R1-Distill/")
    ('R1-8B-Q4_K_M', 'R1-Distill')
    """
    base = PurePosixPath(str(name).replace("\\", "/").rstrip("/")).name or str(name)
    return re.sub(r"\.gguf$", "", base, flags=re.I)


def base_key(name: str) -> str:
    """Normalise a model name for matching variants to their base: lower case, one
    separator, no precision tag, no ``-GGUF`` repo suffix, no split-file part number.

    >>> base_key("deepseek-ai/DeepSeek-R1-Distill-Llama-8B"), base_key("DeepSeek_R1_Distill_Llama_8B-GGUF")
    ('deepseek-r1-distill-llama-8b', 'deepseek-r1-distill-llama-8b')
    >>> base_key("R1-8B-bf16.gguf"), base_key("R1-8B-F16-00001-of-00002.gguf")
    ('r1-8b', 'r1-8b')
    """
    text = model_basename(name)
    text = re.sub(r"-\d{5}-of-\d{5}$", "", text)
    text = _PRECISION_RE.sub(" ", text)
    text = re.sub(r"(?<=[^A-Za-z0-9])gguf$", " ", text, flags=re.I)
    return "-".join(t for t in re.split(r"[^a-z0-9.]+", text.lower()) if t).strip(".-") or text.lower()


def _fraction(number: str, unit: str | None) -> float | None:
    value = float(number)
    if value > 1 or unit:  # "50", "50pct" are percent; "0.5" is a fraction
        value /= 100
    return value if 0 < value < 1 else None


def from_name(name: str) -> Compression:
    """Read the compression from a model name or path.

    >>> from_name("/m/DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf").describe()
    'Q4_K_M (4.84 bpw)'
    >>> c = from_name("r1-8b-sparsegpt-50"); (c.method, c.sparsity, c.base)
    ('sparsegpt', 0.5, 'r1-8b')
    >>> c = from_name("r1-8b-wanda-2:4"); (c.method, c.sparsity, c.pattern, c.base)
    ('wanda', 0.5, '2:4', 'r1-8b')
    >>> c = from_name("R1-8B-AWQ"); (c.kind, c.method, c.bits_per_weight, c.base)
    ('bits', 'awq', 4.0, 'r1-8b')
    >>> from_name("deepseek-ai/R1-8B").kind is None
    True
    """
    full = re.sub(r"-\d{5}-of-\d{5}$", "", model_basename(name))
    stripped = full
    kind = method = pattern = quant_type = None
    sparsity = bits = None

    def cut(match: re.Match) -> None:
        nonlocal stripped
        stripped = stripped.replace(match.group(0), " ", 1)

    # Pruning first (its "2:4" and "-50" must not be read as anything else) ...
    pruning = method_names()
    prune_re, nm_after_method_re = _pruning_res(pruning)
    if (m := nm_after_method_re.search(stripped)) is not None:
        method, pattern = m.group(1).lower(), f"{m.group(2)}:{m.group(3)}"
        cut(m)
    elif (m := _NM_RE.search(stripped)) is not None:
        pattern = f"{m.group(1)}:{m.group(2)}"
        cut(m)
    if (m := prune_re.search(stripped)) is not None:
        method = m.group(1).lower()
        if m.group(2) and not pattern:
            sparsity = _fraction(m.group(2), m.group(3))
        cut(m)
    if method in pruning or pattern:
        kind = SPARSITY
        if pattern:
            n, m_ = (int(x) for x in pattern.split(":"))
            sparsity = n / m_  # N:M in SparseGPT's prunen/prunem sense: N zeros in every M
        if sparsity is None and (s := _SPARSE_RE.search(stripped)) is not None:
            sparsity = _fraction(s.group(1), s.group(2))
            cut(s)
        pattern = pattern or "unstructured"
    elif (m := _SPARSE_RE.search(stripped)) is not None and m.group(0).lower().startswith("sparse"):
        kind, sparsity, pattern = SPARSITY, _fraction(m.group(1), m.group(2)), "unstructured"
        cut(m)
    # ... then quantization: a llama.cpp type, else a named method and/or a bit width.
    qmethod = None
    if (m := _GGUF_RE.search(stripped)) is not None:
        quant_type = m.group(1).upper()
        qmethod, bits = "gguf", gguf_bits(quant_type)
        cut(m)
    else:
        q = _INT_QUANT_RE.search(stripped)
        b = _BITS_RE.search(stripped)
        if q is not None or b is not None:
            qmethod = q.group(1).lower() if q is not None else "quantized"
            bits = float(next(g for g in b.groups() if g)) if b is not None else (4.0 if q is not None else None)
            for match in (q, b):
                if match is not None:
                    cut(match)
    if qmethod is not None:
        if kind == SPARSITY:  # pruned, then quantized: a curve of its own
            method = f"{method or 'pruned'}+{quant_type or qmethod}"
        else:
            kind, method = BITS, qmethod
    if kind is None:
        return Compression(base=base_key(full), base_name=_base_name(full))
    return Compression(
        base=base_key(stripped), base_name=_base_name(stripped), kind=kind, method=method,
        sparsity=sparsity, pattern=pattern if kind == SPARSITY else None, quant_type=quant_type,
        bits_per_weight=bits, source=FROM_NAME,
    )


def gguf_bits(quant_type: str) -> float | None:
    """Bits per weight of a llama.cpp type; an unlisted variant (Unsloth's ``Q4_K_XL``)
    gets its main type's.

    >>> gguf_bits("Q4_K_M"), gguf_bits("Q4_K_XL"), gguf_bits("Q9_Z")
    (4.84, 4.5, None)
    """
    t = quant_type.upper()
    while t:
        if t in GGUF_BITS_PER_WEIGHT:
            return GGUF_BITS_PER_WEIGHT[t]
        t = t.rpartition("_")[0]
    return None


def _base_name(text: str) -> str:
    text = re.sub(r"-\d{5}-of-\d{5}$", "", model_basename(text))
    text = _PRECISION_RE.sub(" ", text)
    text = re.sub(r"(?<=[^A-Za-z0-9])gguf$", " ", text, flags=re.I)
    return re.sub(r"[\s\-_.]+$", "", re.sub(r"^[\s\-_.]+", "", re.sub(r"[\s]+|[-_.]{2,}", "-", text.strip())))


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN is unknown


def from_manifest(manifest: dict[str, Any], fallback_name: str) -> Compression | None:
    """Read a ``compression.json`` (see ``compressors/manifest.py``); None when it says
    nothing usable. Missing fields are fine; the base comes from ``source_model``."""
    if not isinstance(manifest, dict):
        return None
    method = manifest.get("method")
    method = str(method).lower() if method else None
    source = manifest.get("source_model")
    base_from = str(source) if source else fallback_name
    sparsity = manifest.get("sparsity") if isinstance(manifest.get("sparsity"), dict) else None
    quant = manifest.get("quantization") if isinstance(manifest.get("quantization"), dict) else None
    named = from_name(fallback_name)
    if sparsity is not None:
        value = _num(sparsity.get("achieved"))
        value = value if value is not None else _num(sparsity.get("target"))
        pattern = sparsity.get("pattern")
        return Compression(
            base=base_key(base_from), base_name=_base_name(base_from), kind=SPARSITY,
            method=method or named.method, sparsity=value if value is not None else named.sparsity,
            pattern=str(pattern) if pattern else "unstructured", source=FROM_MANIFEST,
        )
    if quant is not None or method == "gguf":
        quant = quant or {}
        qtype = quant.get("type")
        qtype = str(qtype).upper() if qtype else named.quant_type
        if qtype in FULL_PRECISION_TYPES:
            return Compression(base=base_key(base_from), base_name=_base_name(base_from))
        bpw = _num(quant.get("bits_per_weight"))
        if bpw is None and qtype is not None:
            bpw = gguf_bits(qtype)
        return Compression(
            base=base_key(base_from), base_name=_base_name(base_from), kind=BITS, method=method or "gguf",
            quant_type=qtype, bits_per_weight=bpw if bpw is not None else named.bits_per_weight,
            source=FROM_MANIFEST,
        )
    return None


def full_precision_bits(name: str) -> float:
    """Bits per weight of an uncompressed model: its precision tag, else 16."""
    m = _PRECISION_RE.search(model_basename(name))
    return FULL_PRECISION_TYPES[m.group(1).upper()] if m else FULL_PRECISION_BITS
