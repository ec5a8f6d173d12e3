"""Run settings read once, in one order: ``--metadata`` first, then the environment,
then the default. Every knob of the run layer (repeats, cache, strictness, retries,
records, the safetensors-only policy) is looked up through :func:`setting`, and every
flag is read by :func:`truthy`. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lrm_backends.errors import ValidationError

REPEATS_ENV = "LRM_REPEATS"
REPEATS_METADATA_KEY = "repeats"
_TRUE = {"1", "true", "yes", "on"}

# lm-eval's names for its transformers backend, whose checkpoints the safetensors-only
# policy covers (lrm-bench's own backends enforce it themselves).
HF_BACKENDS = ("hf", "hf-auto", "huggingface")
SAFETENSORS_ONLY_ENV = "LRM_SAFETENSORS_ONLY"


def truthy(value: Any) -> bool:
    """A flag as a user writes it in JSON or the environment (true/1/yes/on).

    >>> truthy("Yes"), truthy(True), truthy(""), truthy(None)
    (True, True, False, False)
    """
    return value is True or str(value).strip().lower() in _TRUE


def setting(metadata: Mapping[str, Any] | None, key: str, env: str | None = None, default: Any = None) -> Any:
    """``metadata[key]``, else ``$env``, else ``default`` (empty values count as unset).

    >>> setting({"lrm_cache": "c"}, "lrm_cache", "NO_SUCH_ENV_VAR")
    'c'
    >>> setting({}, "lrm_cache", "NO_SUCH_ENV_VAR", "d")
    'd'
    """
    value = (metadata or {}).get(key)
    if value in (None, "") and env:
        value = os.environ.get(env)
    return default if value in (None, "") else value


def repeats(metadata: Mapping[str, Any] | None) -> int | None:
    """The run's samples per question (``repeats`` in ``--metadata``, else
    ``$LRM_REPEATS``), None when unset; anything but a positive integer is a
    :class:`ValidationError` naming where it came from.

    >>> repeats({"repeats": 4}), repeats({"repeats": "8"}), repeats({})
    (4, 8, None)
    >>> repeats({"repeats": 2.5})
    Traceback (most recent call last):
    ...
    lrm_backends.errors.ValidationError: repeats=2.5 (from --metadata or $LRM_REPEATS): expected a positive integer (samples per question). Pass e.g. --repeats 8, --metadata '{"repeats": 8}' or LRM_REPEATS=8.
    """
    value = setting(metadata, REPEATS_METADATA_KEY, REPEATS_ENV)
    if value is None:
        return None
    try:
        k = int(value)
        ok = k >= 1 and float(value) == k and not isinstance(value, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValidationError(
            f"repeats={value!r} (from --metadata or ${REPEATS_ENV}): expected a positive integer "
            "(samples per question). Pass e.g. --repeats 8, --metadata '{\"repeats\": 8}' or LRM_REPEATS=8."
        )
    return k


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
