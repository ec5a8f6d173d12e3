"""GGUF quantization through llama.cpp's own quantizer (``llama_model_quantize``, as
exposed by llama-cpp-python): one GGUF in, another type out, with an optional
importance matrix and per-tensor type overrides.

The type rules (which tensors get which type in a ``Q4_K_M`` file, which types need an
importance matrix) are llama.cpp's (``src/llama-quant.cpp``); this module only builds
the parameters, checks them early with clear messages, and writes the manifest.
"""

from __future__ import annotations

import ctypes
import logging
import re
import struct
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compressors.manifest import Manifest, manifest_path, tool_versions, write_manifest

logger = logging.getLogger(__name__)

# File types llama.cpp's quantizer can write (``enum llama_ftype``), by the names
# ``llama-quantize`` uses. Values are fixed by the GGUF format.
FTYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
    "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21,
    "IQ3_XS": 22, "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25, "IQ3_S": 26, "IQ3_M": 27,
    "IQ2_S": 28, "IQ2_M": 29, "IQ4_XS": 30, "IQ1_M": 31, "BF16": 32, "TQ1_0": 36,
    "TQ2_0": 37,
}  # fmt: skip
# Tensor types for overrides (``enum ggml_type``).
GGML_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ2_XXS": 16,
    "IQ2_XS": 17, "IQ3_XXS": 18, "IQ1_S": 19, "IQ4_NL": 20, "IQ3_S": 21, "IQ2_S": 22,
    "IQ4_XS": 23, "IQ1_M": 29, "BF16": 30, "TQ1_0": 34, "TQ2_0": 35,
}  # fmt: skip
# File types whose weight tensors llama.cpp refuses to write without an importance
# matrix (llama-quant.cpp ``tensor_requires_imatrix`` applied to each type's defaults).
IMATRIX_REQUIRED = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "Q2_K_S"})
LLAMA_LOG_ERROR = 3


def _normalize(name: str) -> str:
    return name.strip().upper().replace("-", "_")


def _lookup(name: str, table: dict[str, int], kind: str) -> int:
    key = _normalize(name)
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}; expected one of {', '.join(table)}")
    return table[key]


def resolve_ftype(name: str) -> int:
    """The ``llama_ftype`` value of a type name (case-insensitive).

    >>> resolve_ftype("q4_k_m")
    15
    """
    return _lookup(name, FTYPES, "GGUF type")


def resolve_ggml_type(name: str) -> int:
    """The ``ggml_type`` value of a tensor type name (case-insensitive).

    >>> resolve_ggml_type("q8_0")
    8
    """
    return _lookup(name, GGML_TYPES, "tensor type")


def parse_tensor_type(spec: str) -> tuple[str, str]:
    """Split ``PATTERN=TYPE`` (``llama-quantize --tensor-type`` syntax).

    >>> parse_tensor_type("attn_v=q8_0")
    ('attn_v', 'Q8_0')
    """
    pattern, sep, qtype = spec.rpartition("=")
    if not sep or not pattern or not qtype:
        raise ValueError(
            f"tensor type override {spec!r} is not PATTERN=TYPE; e.g. 'attn_v=Q8_0' or 'blk\\.0\\..*=F16'"
        )
    resolve_ggml_type(qtype)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"tensor type pattern {pattern!r} is not a valid regex: {exc}") from exc
    return pattern, _normalize(qtype)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "GGUF quantization needs llama-cpp-python: pip install 'lrm-bench[gguf]' "
            "(or pip install llama-cpp-python)"
        ) from exc
    return llama_cpp


@contextmanager
def _captured_llama_logs(llama_cpp: Any) -> Iterator[list[tuple[int, str]]]:
    """Route llama.cpp's log lines to our logger (debug) and collect them."""
    lines: list[tuple[int, str]] = []

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace")
        lines.append((level, message))
        logger.debug("llama.cpp: %s", message.rstrip())

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        try:
            from llama_cpp import _logger

            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        except ImportError:  # pragma: no cover
            llama_cpp.llama_log_set(None, ctypes.c_void_p(0))


def read_imatrix(path: str | Path) -> dict[str, Any]:
    """Per-tensor importance values (mean squared activations) from an imatrix file.

    Reads both formats that ``llama-imatrix`` writes: GGUF (``NAME.in_sum2`` and
    ``NAME.counts`` tensors; needs the ``gguf`` package) and the legacy binary
    ``.dat``. Values are normalized as llama.cpp's ``tools/quantize`` does.
    """
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"importance matrix {p} does not exist; pass the file llama-imatrix wrote")
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        try:
            from gguf import GGUFReader
        except ImportError as exc:
            raise ImportError("reading a GGUF imatrix needs the gguf package: pip install gguf") from exc
        reader = GGUFReader(str(p))
        sums: dict[str, Any] = {}
        counts: dict[str, Any] = {}
        for tensor in reader.tensors:
            name = tensor.name
            if name.endswith(".in_sum2"):
                sums[name[: -len(".in_sum2")]] = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
            elif name.endswith(".counts"):
                counts[name[: -len(".counts")]] = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        values: dict[str, Any] = {}
        for name, s in sums.items():
            if name not in counts:
                raise ValueError(f"imatrix {p} has sums but no counts for {name}")
            c = counts[name]
            per = s.reshape(len(c), -1)
            out = np.ones_like(per)
            nz = c > 0
            out[nz] = per[nz] / c[nz, None]
            values[name] = np.ascontiguousarray(out.reshape(-1), dtype=np.float32)
        if not values:
            raise ValueError(f"imatrix {p} holds no .in_sum2 tensors")
        return values
    return _read_legacy_imatrix(p)


def _read_legacy_imatrix(p: Path) -> dict[str, Any]:
    import numpy as np

    data = p.read_bytes()
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise ValueError(f"imatrix {p} is truncated or not an imatrix file")
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    (entries,) = take("<i")
    if entries < 1:
        raise ValueError(f"imatrix {p} holds no entries")
    values: dict[str, Any] = {}
    for _ in range(entries):
        (length,) = take("<i")
        name = data[pos : pos + length].decode("utf-8")
        pos += length
        ncall, nval = take("<ii")
        arr = np.frombuffer(data, dtype="<f4", count=nval, offset=pos).astype(np.float32)
        pos += 4 * nval
        values[name] = arr / ncall if ncall > 0 else arr.copy()
    return values


def bits_per_weight(path: str | Path) -> float | None:
    """Bits per weight of a GGUF file's tensors (data bytes x 8 / elements), or
    ``None`` when the ``gguf`` package is not installed."""
    try:
        from gguf import GGUFReader
    except ImportError:
        logger.warning("gguf package not installed: bits per weight not measured (pip install gguf)")
        return None
    reader = GGUFReader(str(path))
    nbytes = sum(int(t.n_bytes) for t in reader.tensors)
    elements = sum(int(t.n_elements) for t in reader.tensors)
    return 8.0 * nbytes / elements if elements else None


def quantize_gguf(
    source: str | Path,
    output: str | Path,
    qtype: str,
    *,
    imatrix: str | Path | None = None,
    tensor_types: Mapping[str, str] | None = None,
    output_tensor_type: str | None = None,
    token_embedding_type: str | None = None,
    allow_requantize: bool = False,
    leave_output_tensor: bool = False,
    pure: bool = False,
    nthread: int = 0,
    overwrite: bool = False,
) -> Manifest:
    """Quantize ``source`` (a GGUF file) to ``qtype`` (``Q4_K_M``, ``Q8_0``, ``IQ4_XS``, ...)
    into ``output``, and write ``OUTPUT.compression.json`` beside it.

    ``tensor_types`` maps regular expressions on GGUF tensor names (``attn_v``,
    ``blk\\.0\\.ffn_down``) to tensor types, as ``llama-quantize --tensor-type`` does.
    ``allow_requantize`` is needed when the source is already quantized.
    """
    src, out = Path(source), Path(output)
    if not src.is_file():
        raise FileNotFoundError(f"GGUF input {src} does not exist; pass a .gguf file to --model")
    if out.exists() and not overwrite:
        raise FileExistsError(f"output {out} already exists; choose another --out or pass --overwrite")
    if out.resolve() == src.resolve():
        raise ValueError(f"output {out} is the input file; choose another --out")
    ftype_name = _normalize(qtype)
    ftype = resolve_ftype(ftype_name)
    if ftype_name in IMATRIX_REQUIRED and imatrix is None:
        raise ValueError(
            f"llama.cpp needs an importance matrix for {ftype_name}; pass --imatrix FILE "
            "(made by llama-imatrix) or choose a type that does not, e.g. IQ4_XS or Q2_K"
        )
    overrides = [(pattern, _normalize(t)) for pattern, t in (tensor_types or {}).items()]
    for pattern, t in overrides:
        parse_tensor_type(f"{pattern}={t}")

    llama_cpp = _import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    params.allow_requantize = allow_requantize
    params.quantize_output_tensor = not leave_output_tensor
    params.pure = pure
    if output_tensor_type:
        params.output_tensor_type = resolve_ggml_type(output_tensor_type)
    if token_embedding_type:
        params.token_embedding_type = resolve_ggml_type(token_embedding_type)

    keep_alive: list[Any] = []  # ctypes buffers must outlive the call
    if overrides:
        arr = (llama_cpp.llama_model_tensor_override * (len(overrides) + 1))()
        for i, (pattern, t) in enumerate(overrides):
            encoded = pattern.encode("utf-8")
            keep_alive.append(encoded)
            arr[i].pattern = encoded
            arr[i].type = GGML_TYPES[t]
        arr[len(overrides)].pattern = None
        keep_alive.append(arr)
        params.tt_overrides = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    imatrix_entries = 0
    if imatrix is not None:
        values = read_imatrix(imatrix)
        arr = (llama_cpp.llama_model_imatrix_data * (len(values) + 1))()
        for i, (name, vec) in enumerate(values.items()):
            encoded = name.encode("utf-8")
            keep_alive.extend([encoded, vec])
            arr[i].name = encoded
            arr[i].data = vec.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = vec.size
        arr[len(values)].name = None
        keep_alive.append(arr)
        params.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        imatrix_entries = len(values)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    started = time.perf_counter()
    with _captured_llama_logs(llama_cpp) as lines:
        status = llama_cpp.llama_model_quantize(
            str(src).encode("utf-8"), str(tmp).encode("utf-8"), ctypes.byref(params)
        )
    wall = time.perf_counter() - started
    if status != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(_explain_failure(src, ftype_name, lines))
    tmp.replace(out)
    del keep_alive

    manifest = Manifest(
        method="gguf",
        source_model=str(src),
        wall_time_s=round(wall, 3),
        quantization={
            "type": ftype_name,
            "bits_per_weight": bits_per_weight(out),
            "source_bits_per_weight": bits_per_weight(src),
            "imatrix": str(imatrix) if imatrix is not None else None,
            "imatrix_entries": imatrix_entries or None,
            "tensor_types": dict(overrides),
            "output_tensor_type": output_tensor_type,
            "token_embedding_type": token_embedding_type,
            "allow_requantize": allow_requantize,
            "pure": pure,
            "output_bytes": out.stat().st_size,
            "source_bytes": src.stat().st_size,
        },
        tool=tool_versions(("llama_cpp_python", "gguf")),
    )
    write_manifest(out, manifest)
    logger.info(
        "quantized %s to %s (%s) in %.1f s; manifest %s", src, out, ftype_name, wall, manifest_path(out)
    )
    return manifest


def _explain_failure(src: Path, ftype: str, lines: list[tuple[int, str]]) -> str:
    text = "".join(message for _level, message in lines)
    errors = [m.strip() for level, m in lines if level == LLAMA_LOG_ERROR and m.strip()]
    hint = ""
    if "requantiz" in text:
        hint = " The input is already quantized: pass --allow-requantize (quality suffers)."
    elif "imatrix" in text or "importance matrix" in text:
        hint = " This type needs an importance matrix: pass --imatrix FILE."
    detail = "; ".join(errors[-3:]) or text.strip().splitlines()[-1:] or "no message"
    return f"llama.cpp could not quantize {src} to {ftype}: {detail}.{hint}"
