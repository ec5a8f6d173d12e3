"""What the user asked of a run, resolved once: repeats, cache, records, data, strictness,
tokenizer, and the safetensors-only policy.

Every setting is looked up the same way (:func:`lookup`): the run's ``--metadata`` key
first (``lrm eval --repeats/--cache/--strict`` write it there), then the environment
variable, then the default. A metadata value of ``None`` or ``""`` counts as not given.
Repeats are parsed by one rule (:func:`positive_int`) wherever they come from.

Light (standard library, :mod:`lrm_backends.errors` and a constant of ``lrm_tasks``), so the validator, the
evaluation session, the cache and the CLI can all import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrm_tasks.data import DATA_DIR_ENV

from lrm_backends.errors import ValidationError

REPEATS_KEY, REPEATS_ENV = "repeats", "LRM_REPEATS"
CACHE_METADATA_KEY, CACHE_ENV = "lrm_cache", "LRM_CACHE_DIR"
STRICT_METADATA_KEY, STRICT_ENV = "lrm_strict", "LRM_STRICT"
DATA_DIR_KEY = "data_dir"  # its variable is lrm_tasks.data.DATA_DIR_ENV (LRM_DATA_DIR)
RECORDS_DIR_ENV = "LRM_RECORDS_DIR"
TOKENIZER_ENV, TOKENIZER_ARG = "LRM_TOKENIZER", "lrm_tokenizer"  # env wins over --model_args lrm_tokenizer=
CHUNK_ENV = "LRM_CACHE_CHUNK"
SAFETENSORS_ONLY_ENV = "LRM_SAFETENSORS_ONLY"
# Requests per backend call for a backend whose responses only arrive when the call
# returns: a crash loses at most this many. Large enough for vllm's continuous batching
# to stay busy (its default max_num_seqs is 256 on big GPUs, 128 on small ones).
DEFAULT_CHUNK_SIZE = 128
# lm-eval's names for its transformers backend, whose checkpoints the safetensors-only
# policy covers (lrm-bench's own backends enforce it themselves).
HF_BACKENDS = ("hf", "hf-auto", "huggingface")
_TRUE = {"1", "true", "yes", "on"}
_UNSET = (None, "")


def truthy(value: Any) -> bool:
    """A flag as a user writes it in JSON or the environment (true/1/yes/on)."""
    return value is True or str(value).strip().lower() in _TRUE


def lookup(metadata: Mapping[str, Any] | None, key: str | None, env: str | None, default: Any = None) -> tuple[Any, str | None]:
    """``(value, where)``: ``metadata[key]``, else ``$env``, else ``default`` (where = None).

    ``where`` names the source for messages: the key (``"data_dir"``) or the variable.

    >>> lookup({"repeats": 4}, "repeats", "LRM_REPEATS")
    (4, 'repeats')
    >>> lookup({"repeats": ""}, "repeats", "NO_SUCH_VARIABLE", 1)
    (1, None)
    """
    meta = metadata or {}
    if key is not None and meta.get(key) not in _UNSET:
        return meta[key], key
    if env is not None and os.environ.get(env, "") != "":
        return os.environ[env], env
    return default, None


def positive_int(value: Any) -> int | None:
    """``value`` as a positive integer (an int, an integral float, or digits), else None.

    >>> [positive_int(v) for v in (8, 8.0, "8", " 8 ", 0, -1, 2.5, "2.5", "x", True)]
    [8, 8, 8, 8, None, None, None, None, None, None]
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        k = value
    elif isinstance(value, float) and value.is_integer():
        k = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        k = int(value.strip())
    else:
        return None
    return k if k >= 1 else None


def repeats_from(metadata: Mapping[str, Any] | None) -> int | None:
    """Samples per question from ``--metadata``/``$LRM_REPEATS``; None when not given.
    Raises :class:`ValidationError` for anything but a positive integer."""
    value, _ = lookup(metadata, REPEATS_KEY, REPEATS_ENV)
    if value is None:
        return None
    k = positive_int(value)
    if k is None:
        raise ValidationError(
            f"repeats={value!r} (from --metadata or ${REPEATS_ENV}): expected a positive integer "
            "(samples per question). Pass e.g. --repeats 8, --metadata '{\"repeats\": 8}' or LRM_REPEATS=8."
        )
    return k


@dataclass(frozen=True)
class Settings:
    """One run's settings, each resolved by :func:`lookup` (see :func:`settings_from`)."""

    cache_dir: Path | None = None
    strict: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    repeats: int | None = None
    data_dir: Path | None = None
    data_dir_source: str | None = None  # "data_dir" (metadata) or "LRM_DATA_DIR"
    records_dir: Path | None = None  # $LRM_RECORDS_DIR; else records go next to the output
    tokenizer: str | None = None  # $LRM_TOKENIZER, else --model_args lrm_tokenizer=
    cache_source: str | None = None  # "--cache" (metadata) or "LRM_CACHE_DIR", for messages


def _path(value: Any) -> Path | None:
    return None if value in _UNSET else Path(str(value)).expanduser()


def settings_from(metadata: Mapping[str, Any] | None, model_args: Mapping[str, Any] | None = None) -> Settings:
    """Settings from run metadata (``--metadata``) first, then the environment, then
    the defaults; ``model_args`` only for ``lrm_tokenizer``. Bad repeats raise
    :class:`ValidationError`."""
    cache, cache_source = lookup(metadata, CACHE_METADATA_KEY, CACHE_ENV)
    strict, _ = lookup(metadata, STRICT_METADATA_KEY, STRICT_ENV, False)
    chunk, _ = lookup(None, None, CHUNK_ENV)
    data_dir, data_source = lookup(metadata, DATA_DIR_KEY, DATA_DIR_ENV)
    records, _ = lookup(None, None, RECORDS_DIR_ENV)
    tokenizer, _ = lookup(model_args, TOKENIZER_ARG, None)
    env_tokenizer, _ = lookup(None, None, TOKENIZER_ENV)
    return Settings(
        cache_dir=_path(cache),
        strict=truthy(strict),
        chunk_size=positive_int(chunk) or DEFAULT_CHUNK_SIZE,
        repeats=repeats_from(metadata),
        data_dir=_path(data_dir),
        data_dir_source=data_source,
        records_dir=_path(records),
        tokenizer=str(env_tokenizer or tokenizer) if (env_tokenizer or tokenizer) else None,
        cache_source="--cache" if cache_source == CACHE_METADATA_KEY else cache_source,
    )


def safetensors_only(model: object, model_args: object) -> object:
    """``model_args`` with ``use_safetensors=True`` added for lm-eval's ``hf`` backend when
    ``$LRM_SAFETENSORS_ONLY`` is on (``lrm eval`` turns it on) and the user did not pass
    ``use_safetensors`` themselves: a checkpoint that has only pickled weights is then
    refused by transformers instead of unpickled.

    >>> import os; os.environ[SAFETENSORS_ONLY_ENV] = "1"
    >>> safetensors_only("hf", {"pretrained": "gpt2"})
    {'pretrained': 'gpt2', 'use_safetensors': True}
    >>> safetensors_only("hf", "pretrained=gpt2,use_safetensors=False")
    'pretrained=gpt2,use_safetensors=False'
    >>> safetensors_only("vllm", "pretrained=gpt2")
    'pretrained=gpt2'
    >>> del os.environ[SAFETENSORS_ONLY_ENV]
    """
    if model not in HF_BACKENDS or not truthy(os.environ.get(SAFETENSORS_ONLY_ENV, "")):
        return model_args
    if isinstance(model_args, dict):
        return model_args if "use_safetensors" in model_args else {**model_args, "use_safetensors": True}
    if isinstance(model_args, str) or model_args is None:
        text = model_args or ""
        if "use_safetensors" in text:
            return model_args
        return f"{text},use_safetensors=True" if text.strip() else "use_safetensors=True"
    return model_args
