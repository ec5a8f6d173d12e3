"""The ``lrm-pruned`` backend: lm-eval's ``hf`` backend on a pruned checkpoint.

Two ways to use it::

    --model lrm-pruned --model_args pretrained=DIR
        DIR is a folder written by ``lrm compress``: its compression.json is checked,
        the achieved sparsity is measured on the loaded weights and reported in the
        results (``config.compression``).

    --model lrm-pruned --model_args pretrained=HUB_ID,method=sparsegpt,sparsity=0.5,...
        (also pattern=2:4, calib=c4, calib_samples=128, calib_seqlen=2048, seed=0, ...)
        prunes on the fly and caches the pruned checkpoint (under ``cache_dir``, else
        $LRM_PRUNED_CACHE, else ~/.cache/lrm-bench/pruned) so the next run with the
        same settings reuses it.

Every other argument is lm-eval's ``hf`` backend's (and, through it, transformers'
``from_pretrained``'s). Checkpoints are loaded from safetensors only
(``use_safetensors=True``, for the model to prune as for the pruned folder): nothing is
ever unpickled.

This module imports neither torch nor lm-eval's ``hf`` backend until ``PrunedLM`` is
first used, so :func:`validate_model_args` checks a run's ``--model_args`` in
milliseconds, before anything loads.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from compressors.methods import (
    CALIBRATION_KNOBS,
    TARGET_KNOBS,
    get_method,
    method_alternatives,
    method_knobs,
    method_names,
)
from lrm_backends.models.lazy import LazyClass

logger = logging.getLogger(__name__)

CACHE_ENV = "LRM_PRUNED_CACHE"
DEFAULT_CACHE = Path("~/.cache/lrm-bench/pruned")
# Measured and recorded sparsity may differ by float noise in the zero count only.
SPARSITY_MISMATCH = 1e-6
# No limit on the task prompts drawn for task:NAME calibration (the windows are drawn
# from the stream of all of them).
TASK_PROMPT_LIMIT = None


def _cache_key_fields() -> tuple[str, ...]:
    """Settings that change the pruned weights, and so name the cache entry (the
    methods' knobs are read from compressors.methods at call time)."""
    return (
        "pretrained", "revision", "gguf_file", "method", *(k.name for k in (*TARGET_KNOBS, *CALIBRATION_KNOBS)),
        *(k.name for k in method_knobs()), "sequential", "ignore", "prune_dtype",
    )  # fmt: skip


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)  # one regex; use alternation (a|b) for several


def pruned_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where on-the-fly pruned checkpoints are kept."""
    base = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(base).expanduser()


def cache_entry(settings: dict[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder for one set of pruning settings (a readable name plus a hash
    of every setting that changes the weights)."""
    key = json.dumps({k: settings.get(k) for k in _cache_key_fields()}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", str(settings["pretrained"]).strip("/"))[-60:]
    shape = str(settings.get("pattern") or settings.get("sparsity")).replace(":", "of")
    return pruned_cache_dir(cache_dir) / f"{model}--{settings['method']}-{shape}-{digest}"


def task_prompts(
    name: str,
    limit: int | None = TASK_PROMPT_LIMIT,
    include_path: str | None = None,
    include_defaults: bool = True,
) -> list[str]:
    """The prompts (``doc_to_text``) of an lm-eval task's evaluation documents: lm-eval's
    own tasks (unless ``include_defaults`` is false), ours, and those under
    ``include_path``. Calibration for ``--calib task:NAME`` (``lrm compress``) and
    ``calib=task:NAME`` (lrm-pruned); compressors does not know tasks."""
    from lm_eval.tasks import TaskManager

    include: list[str] = [include_path] if include_path else []
    try:
        from lrm_tasks import task_config_dir

        include.append(str(task_config_dir()))
    except (ImportError, FileNotFoundError):
        pass
    manager = TaskManager(include_path=include or None, include_defaults=include_defaults)
    prompts: list[str] = []
    for task_name, task in manager.load([name])["tasks"].items():  # a group: every member
        for i, doc in enumerate(task.eval_docs):
            if limit is not None and len(prompts) >= limit:
                break
            text = task.doc_to_text(doc)
            if isinstance(text, str) and text.strip():
                prompts.append(text)
            elif i == 0:
                logger.warning(
                    "task %s: doc_to_text gives %s, not text; skipping it", task_name, type(text).__name__
                )
                break
    if not prompts:
        raise ValueError(f"task {name!r} has no text prompts to calibrate on; choose another --calib")
    return prompts


def calibration_texts(source: str) -> list[str] | None:
    """Texts for a ``task:NAME`` source (``None`` for sources compressors reads itself)."""
    from compressors.calibration import TASK_PREFIX

    if source.startswith(TASK_PREFIX):
        return task_prompts(source[len(TASK_PREFIX) :])
    return None


def ensure_pruned(settings: dict[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached pruned checkpoint for ``settings``, pruning the model first if needed."""
    from compressors.calibration import CalibrationSpec
    from compressors.manifest import read_manifest
    from compressors.masks import make_target
    from compressors.pipeline import prune_pretrained

    method = settings["method"]
    spec_row = get_method(method)
    target = make_target(settings.get("sparsity"), settings.get("pattern"))
    entry = cache_entry(settings, cache_dir)
    try:
        read_manifest(entry)
        logger.info("reusing pruned checkpoint %s", entry)
        return entry
    except (FileNotFoundError, ValueError):
        pass
    spec = texts = None
    if spec_row.needs_calibration:
        from compressors.calibration import DEFAULT_NUM_SAMPLES, DEFAULT_SEED, DEFAULT_SEQ_LEN, DEFAULT_SOURCE

        spec = CalibrationSpec(
            source=str(settings.get("calib") or DEFAULT_SOURCE),
            num_samples=int(settings.get("calib_samples") or DEFAULT_NUM_SAMPLES),
            seq_len=int(settings.get("calib_seqlen") or DEFAULT_SEQ_LEN),
            seed=int(settings.get("seed") or DEFAULT_SEED),
        )
        texts = calibration_texts(spec.source)
    logger.info("pruning %s with %s into %s", settings["pretrained"], method, entry)
    options = {k.name: settings[k.name] for k in spec_row.knobs if settings.get(k.name) is not None}
    prune_pretrained(
        str(settings["pretrained"]),
        entry,
        method=method,
        target=target,
        calibration=spec,
        texts=texts,
        overwrite=True,
        dtype=str(settings.get("prune_dtype") or "auto"),
        device=settings.get("prune_device"),
        revision=settings.get("revision"),
        trust_remote_code=bool(settings.get("trust_remote_code")),
        gguf_file=settings.get("gguf_file"),
        sequential=bool(settings.get("sequential", True)),
        ignore=_as_tuple(settings.get("ignore")),
        **options,
    )
    return entry


def arg_types() -> dict[str, Any]:
    """lrm-pruned's own ``--model_args`` and their types (``PrunedLM.__init__``; the
    methods and their knobs from compressors.methods), checked by validate_model_args
    without building the class."""
    return {
        "pretrained": str,
        "method": Literal[method_names()] | None,  # type: ignore[valid-type]
        **{k.name: k.type | None for k in (*TARGET_KNOBS, *CALIBRATION_KNOBS, *method_knobs())},
        "sequential": bool,
        "ignore": str | None,
        "prune_dtype": str | None,
        "prune_device": str | None,
        "cache_dir": str | None,
    }


def _pruning_only() -> tuple[str, ...]:
    """Arguments that only make sense with method=... (pruning on the fly)."""
    return (
        *(k.name for k in (*TARGET_KNOBS, *CALIBRATION_KNOBS, *method_knobs())),
        "ignore", "prune_dtype", "prune_device",
    )  # fmt: skip


# transformers' from_pretrained keywords that lm-eval's hf backend passes on (its **kwargs).
FROM_PRETRAINED_KWARGS = frozenset({
    "attn_implementation", "device_map", "low_cpu_mem_usage", "max_memory", "offload_state_dict",
    "offload_buffers", "quantization_config", "torch_dtype", "token", "local_files_only", "variant",
    "use_flash_attention_2", "load_in_8bit", "load_in_4bit", "key_mapping", "tp_size", "use_kernels",
    "use_safetensors",
})  # fmt: skip


@functools.cache
def hf_backend_arg_names() -> frozenset[str]:
    """The keyword arguments of lm-eval's ``HFLM.__init__``, read from its source (importing
    it would import torch and transformers: seconds). Empty if the source cannot be read."""
    try:
        spec = importlib.util.find_spec("lm_eval.models.huggingface")
        if spec is None or spec.origin is None:
            return frozenset()
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (ImportError, OSError, SyntaxError, ValueError):
        return frozenset()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "HFLM":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    return frozenset(a.arg for a in [*args.args, *args.kwonlyargs] if a.arg != "self")
    return frozenset()


def validate_model_args(model_args: dict[str, Any]) -> None:
    """Check ``--model_args`` for lrm-pruned before anything loads (see lrm_backends.run.validate):
    unknown keys (with a suggestion), types, the method, the pattern, and that a pruned
    folder exists and carries its compression.json."""
    from compressors.masks import make_target, parse_pattern
    from lrm_backends.errors import ValidationError, check_value, did_you_mean

    pretrained = model_args.get("pretrained")
    if not pretrained:
        raise ValidationError(
            "--model_args: the lrm-pruned backend needs pretrained=FOLDER (written by 'lrm compress') "
            f"or pretrained=MODEL with method={method_alternatives()} and sparsity=..., and none was "
            "given. Pass e.g. --model_args pretrained=./pruned-50."
        )
    own = arg_types()
    hf_args = hf_backend_arg_names()
    known = set(own) | hf_args | FROM_PRETRAINED_KWARGS
    for key, value in model_args.items():
        if key in own:
            check_value("lrm-pruned", key, value, own[key])
        elif hf_args and key not in known:
            hint = did_you_mean(key, known)
            raise ValidationError(
                f"--model_args {key}={value}: the lrm-pruned backend has no argument {key!r}.{hint} "
                f"It takes lm-eval's hf arguments plus: {', '.join(own)}. Remove it or correct "
                "the name."
            )
    method = model_args.get("method")
    knobs = (*CALIBRATION_KNOBS, *(get_method(method).knobs if method is not None else method_knobs()))
    for knob in knobs:
        value = model_args.get(knob.name)
        if (problem := knob.problem(value)) is not None:
            raise ValidationError(
                f"--model_args {knob.name}={value}: {problem}. Pass e.g. {knob.name}={knob.example}."
            )
    pattern = model_args.get("pattern")
    if pattern is not None:
        try:
            parse_pattern(str(pattern))
            make_target(model_args.get("sparsity"), str(pattern))
        except ValueError as exc:
            raise ValidationError(f"--model_args pattern={pattern}: {exc}") from None
    if method is not None:
        if model_args.get("sparsity") is None and pattern is None:
            raise ValidationError(
                f"--model_args method={method}: pruning on the fly needs sparsity=FRACTION or "
                "pattern=N:M. Pass e.g. sparsity=0.5."
            )
        return
    given = [k for k in _pruning_only() if model_args.get(k) is not None]
    if given:
        key = given[0]
        raise ValidationError(
            f"--model_args {key}={model_args[key]}: given without method=...; add "
            f"method={method_alternatives()} to prune on the fly, or drop it to load a pruned folder."
        )
    _check_pruned_folder(str(pretrained))


def _check_pruned_folder(pretrained: str) -> None:
    from compressors.checkpoints import pickled_only_message, pickled_weights_only
    from compressors.manifest import read_manifest
    from lrm_backends.errors import ValidationError

    folder = Path(pretrained).expanduser()
    if not folder.is_dir():
        raise ValidationError(
            f"--model_args pretrained={pretrained}: no such folder. lrm-pruned loads a folder written "
            f"by 'lrm compress'; to prune a model on the fly, add method={method_alternatives()} and "
            "sparsity=FRACTION."
        )
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        raise ValidationError(
            f"--model_args pretrained={pretrained}: the folder has no compression.json, so 'lrm "
            "compress' did not write it. Evaluate an unpruned model with --model hf, or add "
            f"method={method_alternatives()} and sparsity=FRACTION to prune it on the fly."
        ) from None
    except ValueError as exc:
        raise ValidationError(f"--model_args pretrained={pretrained}: {exc}") from None
    if manifest["method"] == "gguf":
        raise ValidationError(
            f"--model_args pretrained={pretrained}: the folder holds a GGUF quantization; evaluate "
            "GGUF files with --model lrm-gguf."
        )
    if pickled := pickled_weights_only(folder):
        raise ValidationError(f"--model_args pretrained={pretrained}: {pickled_only_message(pretrained, pickled)}.")


def _build() -> type:
    from lm_eval.models.huggingface import HFLM

    from compressors.checkpoints import pickled_only_message, pickled_weights_only

    class PrunedLM(HFLM):
        """lm-eval's ``HFLM`` on a pruned checkpoint, reporting its measured sparsity."""

        def __init__(
            self,
            pretrained: str,
            method: str | None = None,
            sparsity: float | None = None,
            pattern: str | None = None,
            calib: str | None = None,
            calib_samples: int | None = None,
            calib_seqlen: int | None = None,
            seed: int | None = None,
            sequential: bool = True,
            ignore: str | None = None,
            prune_dtype: str | None = None,
            prune_device: str | None = None,
            cache_dir: str | None = None,
            **kwargs: Any,
        ) -> None:
            from compressors.manifest import read_manifest

            # The methods' own knobs (SparseGPT's blocksize, percdamp, ...: compressors.methods).
            knobs = {k.name: kwargs.pop(k.name, None) for k in method_knobs()}
            if not isinstance(pretrained, str):
                raise TypeError("lrm-pruned needs pretrained=PATH_OR_HUB_ID, not a model object")
            if method is None:
                for name, value in (("sparsity", sparsity), ("pattern", pattern), ("calib", calib)):
                    if value is not None:
                        raise ValueError(
                            f"{name}={value} given without method=...; add method={method_alternatives()} "
                            "to prune on the fly, or drop it to load a pruned folder"
                        )
                folder = Path(pretrained)
                if not folder.is_dir():
                    raise FileNotFoundError(
                        f"pretrained={pretrained} is not a folder; lrm-pruned loads a folder "
                        "written by 'lrm compress', or prunes on the fly with method=..."
                    )
            else:
                settings = {
                    "pretrained": pretrained,
                    "revision": kwargs.get("revision"),
                    "gguf_file": kwargs.pop("gguf_file", None),
                    "method": method,
                    "sparsity": sparsity,
                    "pattern": pattern,
                    "calib": calib,
                    "calib_samples": calib_samples,
                    "calib_seqlen": calib_seqlen,
                    "seed": seed,
                    **knobs,
                    "sequential": sequential,
                    "ignore": ignore,
                    "prune_dtype": prune_dtype,
                    "prune_device": prune_device,
                    "trust_remote_code": kwargs.get("trust_remote_code"),
                }
                folder = ensure_pruned(settings, cache_dir)
                kwargs.pop("revision", None)  # the cached folder is local
            self.compression_manifest = read_manifest(folder)
            if self.compression_manifest["method"] == "gguf":
                raise ValueError(
                    f"{folder} holds a GGUF quantization manifest; evaluate GGUF files with the lrm-gguf backend"
                )
            if pickled := pickled_weights_only(folder):
                raise ValueError(pickled_only_message(folder, pickled))
            kwargs["use_safetensors"] = True
            super().__init__(pretrained=str(folder), **kwargs)
            self.compression_summary = self._measure(folder)

        def _measure(self, folder: Path) -> dict[str, Any]:
            from compressors.manifest import measure_model_sparsity

            manifest = self.compression_manifest
            recorded = manifest.get("sparsity") or {}
            ignore = tuple((manifest.get("settings") or {}).get("ignore") or ())
            measured = measure_model_sparsity(self.model, ignore)
            summary = {
                "folder": str(folder),
                "method": manifest["method"],
                "source_model": manifest["source_model"],
                "target_sparsity": recorded.get("target"),
                "pattern": recorded.get("pattern"),
                "recorded_sparsity": recorded.get("achieved"),
                "measured_sparsity": measured["achieved"],
                "measured_sparsity_all_parameters": measured["achieved_all_parameters"],
                "measured_per_layer": measured["per_layer"],
                "calibration": manifest.get("calibration"),
            }
            if (
                recorded.get("achieved") is not None
                and abs(measured["achieved"] - recorded["achieved"]) > SPARSITY_MISMATCH
            ):
                logger.warning(
                    "%s: measured sparsity %.6f differs from the manifest's %.6f (weights changed "
                    "after pruning, or loaded in a dtype that rounds small weights to zero)",
                    folder,
                    measured["achieved"],
                    recorded["achieved"],
                )
            logger.info(
                "lrm-pruned: %s (%s), measured sparsity %.4f (target %s)",
                folder,
                manifest["method"],
                measured["achieved"],
                recorded.get("target"),
            )
            return summary

        def get_model_info(self) -> dict[str, Any]:
            info = super().get_model_info()
            info["compression"] = self.compression_summary
            return info

    return PrunedLM




_lazy = LazyClass(__name__, "PrunedLM", _build)
__getattr__ = _lazy.module_getattr  # PrunedLM is built on first access
