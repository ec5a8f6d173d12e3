"""Load a model, prune it, save it with its manifest: the one call behind
``lrm compress sparsegpt|wanda|magnitude`` and the ``lrm-pruned`` backend.

Pruned checkpoints are written as safetensors (never pickles), with the tokenizer and
``compression.json``, into a temporary sibling folder that is renamed into place at the
end, so an interrupted run never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compressors.calibration import CalibrationSpec, build_calibration
from compressors.checkpoints import pickled_only_message, pickled_weights_only
from compressors.manifest import Manifest, measure_model_sparsity, write_manifest
from compressors.masks import SparsityTarget
from compressors.methods import get_method, method_knobs
from compressors.orchestrate import DEFAULT_TOKENS_PER_BATCH, PruneConfig, prune_model

logger = logging.getLogger(__name__)

GGUF_SUFFIX = ".gguf"
# GGUF weights are dequantized to this dtype (transformers' GGUF loader does float32).
GGUF_LOAD_DTYPE = "float32"


def check_output_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Refuse an existing, non-empty output folder unless ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} exists and is a file; choose a folder path for --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {out} already exists and is not empty; choose another --out "
            "or pass --overwrite to replace it"
        )
    return out


def _torch_dtype(dtype: str | Any) -> Any:
    import torch

    if dtype in (None, "auto") or not isinstance(dtype, str):
        return dtype or "auto"
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; expected auto, float32, bfloat16 or float16")
    return value


def split_gguf(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """``(folder or Hub id, GGUF file name or None)`` for ``transformers``' ``gguf_file=``.

    >>> split_gguf("/models/x/model.Q4_K_M.gguf")
    ('/models/x', 'model.Q4_K_M.gguf')
    >>> split_gguf("org/repo", "m.gguf")
    ('org/repo', 'm.gguf')
    """
    if gguf_file is None and model.lower().endswith(GGUF_SUFFIX):
        p = Path(model)
        return str(p.parent), p.name
    return model, gguf_file


def load_causal_lm(
    model: str,
    *,
    dtype: str | Any = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer on the CPU, ready to prune and to save.

    ``model`` is a folder, a Hub id, or a ``.gguf`` file. GGUF weights are dequantized
    to float32 and the model is rebuilt as a plain (unquantized) model of the same
    class, since transformers refuses to ``save_pretrained`` a model loaded from GGUF.
    Other weights are read from safetensors only: a checkpoint with nothing but pickled
    ``.bin`` files is refused (transformers says so), never unpickled.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, gguf = split_gguf(model, gguf_file)
    if not gguf and (pickled := pickled_weights_only(source)):
        raise ValueError(pickled_only_message(source, pickled))
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        common["revision"] = revision
    if gguf:
        common["gguf_file"] = gguf
        dtype = GGUF_LOAD_DTYPE
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    # Weights from safetensors only (never unpickle a checkpoint); GGUF is its own format.
    weights = {} if gguf else {"use_safetensors": True}
    loaded = AutoModelForCausalLM.from_pretrained(source, dtype=_torch_dtype(dtype), **common, **weights)
    if gguf:
        loaded = _plain_copy(loaded)
    loaded.eval()
    return loaded, tokenizer


def _plain_copy(model: Any) -> Any:
    """The same weights in a model without GGUF quantization metadata."""
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(model)(config)
    state = model.state_dict()
    result = plain.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in state]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"rebuilding the GGUF model as {type(model).__name__} did not match: missing "
            f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    plain.to(next(model.parameters()).dtype)
    return plain


def prune_pretrained(
    model: str,
    out_dir: str | Path,
    *,
    method: str,
    target: SparsityTarget,
    calibration: CalibrationSpec | None,
    texts: Iterable[str] | None = None,
    overwrite: bool = False,
    dtype: str = "auto",
    device: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
    sequential: bool = True,
    ignore: tuple[str, ...] = (),
    tokens_per_batch: int = DEFAULT_TOKENS_PER_BATCH,
    progress: bool = True,
    **knobs: Any,
) -> Manifest:
    """Prune ``model`` with ``method`` and save it (safetensors, tokenizer, manifest)
    to ``out_dir``; returns the manifest written. ``knobs`` are the method's own
    settings (:mod:`compressors.methods`, e.g. SparseGPT's ``blocksize=128``)."""
    spec = get_method(method)
    needs_data = spec.needs_calibration
    if needs_data and calibration is None:
        raise ValueError(f"{method} needs calibration data; pass --calib (a text file, c4, wikitext2, ...)")
    out = check_output_dir(out_dir, overwrite)
    config = PruneConfig(
        method=method,
        target=target,
        knobs={k: v for k, v in knobs.items() if v is not None},
        sequential=sequential,
        ignore=tuple(ignore),
        tokens_per_batch=tokens_per_batch,
        device=device,
        progress=progress,
    )
    started = time.perf_counter()
    net, tokenizer = load_causal_lm(
        model, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code, gguf_file=gguf_file
    )
    loaded = time.perf_counter()
    calib = build_calibration(calibration, tokenizer, texts) if needs_data and calibration else None
    report = prune_model(net, calib.input_ids if calib else None, config)
    pruned = time.perf_counter()
    sparsity = measure_model_sparsity(net, config.ignore)
    sparsity = {"target": target.sparsity, "pattern": target.pattern, **sparsity}
    manifest = Manifest(
        method=method,
        source_model=model if not gguf_file else f"{model}:{gguf_file}",
        wall_time_s=0.0,
        seed=calibration.seed if calib else None,
        calibration=calib.describe() if calib else None,
        sparsity=sparsity,
        settings={
            # Every method's knobs, None where they are not this method's.
            **{k.name: config.knob(k.name) if spec.knob(k.name) else None for k in method_knobs()},
            "sequential": sequential,
            "ignore": list(ignore),
            "dtype": str(next(net.parameters()).dtype).removeprefix("torch."),
            "device": device or "cpu",
            "tokens_per_batch": tokens_per_batch,
            "timings_s": {
                "load": round(loaded - started, 3),
                "prune": round(pruned - loaded, 3),
                **{k: round(v, 3) for k, v in report.timings.items()},
            },
            "target": asdict(target),
        },
    )
    _save(net, tokenizer, out, manifest, started)
    logger.info(
        "pruned %s with %s to %.4f sparsity (target %.4f) in %.1f s -> %s",
        model,
        method,
        sparsity["achieved"],
        target.sparsity,
        manifest.wall_time_s,
        out,
    )
    return manifest


def _save(net: Any, tokenizer: Any, out: Path, manifest: Manifest, started: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        pickles = [p.name for p in tmp.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
        if pickles:
            raise RuntimeError(f"save_pretrained wrote pickle files {pickles}; refusing to keep them")
        manifest.wall_time_s = round(time.perf_counter() - started, 3)
        write_manifest(tmp, manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
