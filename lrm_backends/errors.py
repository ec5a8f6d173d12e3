"""User-facing errors and the checks that produce them, shared by every layer of
``lrm_backends`` (backends, run layer, CLI): one home for "did you mean" and for checking
a ``--model_args`` value against a type hint. Standard library only.
"""

from __future__ import annotations

import difflib
import inspect
import os
import types
import typing
from collections.abc import Iterable
from typing import Any


class UserError(Exception):
    """A mistake in what the user asked for: printed as one line, no traceback."""


class ValidationError(ValueError):
    """A run that cannot work, found before any model loads (a user error: ``lrm``
    prints its one-line message without a traceback)."""


def did_you_mean(
    value: str,
    choices: Iterable[str],
    *,
    n: int = 1,
    cutoff: float = 0.6,
    ignore_case: bool = False,
    substrings: bool = False,
) -> str:
    """`` Did you mean 'x'?`` (with a leading space) for the closest of ``choices``, or "".

    >>> did_you_mean("calib_sample", ["calib_samples", "seed"])
    " Did you mean 'calib_samples'?"
    >>> did_you_mean("MUSIQUE_LRM", ["musique_lrm", "musique_ctx_lrm"], n=3, ignore_case=True)
    " Did you mean 'musique_lrm' or 'musique_ctx_lrm'?"
    >>> did_you_mean("gguf", ["lrm-gguf", "lrm-replay"], n=3, substrings=True)
    " Did you mean 'lrm-gguf'?"
    >>> did_you_mean("zzz", ["seed"])
    ''
    """
    names = sorted(set(choices))
    if ignore_case:
        lowered = {c.lower(): c for c in names}
        close = [lowered[m] for m in difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=cutoff)]
    else:
        close = difflib.get_close_matches(value, names, n=n, cutoff=cutoff)
    if substrings:  # "gguf" for "lrm-gguf": a fragment of a name is a strong hint too
        close += [c for c in names if value.lower() in c.lower() and c not in close][: n - len(close)]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def show_value(value: Any) -> str:
    """A parsed ``key=value`` value as the user most likely typed it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # lm-eval's CLI parses "-1" as -1.0
    return str(value)


def check_value(model: str, key: str, value: Any, annotation: Any, default: Any = inspect.Parameter.empty) -> None:
    """``value`` (as lm-eval parsed it from ``key=value``) against a type hint."""
    if annotation is None or _accepts(annotation, value):
        return
    raise ValidationError(
        f"--model_args {key}={show_value(value)}: the {model} backend expects {key} to be "
        f"{_describe(annotation)}. Pass e.g. {key}={_example(annotation, default)}."
    )


_NONE = type(None)


def _members(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def _accepts(tp: Any, value: Any) -> bool:
    for m in _members(tp):
        if m is Any or m is object:
            return True
        if m is _NONE:
            if value is None:
                return True
            continue
        if typing.get_origin(m) is typing.Literal:
            if value in typing.get_args(m):
                return True
            continue
        if m is bool:
            if isinstance(value, bool) or value in (0, 1):
                return True
        elif m is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
            if isinstance(value, float) and value.is_integer():
                return True
        elif m is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif m is str or (isinstance(m, type) and issubclass(m, os.PathLike)):
            if isinstance(value, str):
                return True
        else:
            return True  # a type we cannot tell from text (dict, a class...): let the backend judge
    return False


def _describe(tp: Any) -> str:
    words = []
    for m in _members(tp):
        if m is _NONE:
            continue
        if typing.get_origin(m) is typing.Literal:
            words.append("one of " + ", ".join(repr(a) for a in typing.get_args(m)))
        elif m is bool:
            words.append("true or false")
        elif m is int:
            words.append("an integer")
        elif m is float:
            words.append("a number")
        elif m is str or (isinstance(m, type) and issubclass(m, os.PathLike)):
            words.append("a text or path")
        else:
            words.append(getattr(m, "__name__", str(m)))
    return " or ".join(dict.fromkeys(words)) or "empty"


def _example(tp: Any, default: Any) -> str:
    if default is not inspect.Parameter.empty and default is not None and _accepts(tp, default):
        return show_value(default)
    for m in _members(tp):
        if typing.get_origin(m) is typing.Literal:
            return str(typing.get_args(m)[0])
        if m is bool:
            return "true"
        if m is int:
            return "1"
        if m is float:
            return "0.5"
    return "VALUE"


def check_against_signature(model: str, cls: type, model_args: dict[str, Any]) -> None:
    """Unknown keys and wrong types, read from ``cls.__init__``'s signature."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return
    params = {
        name: p for name, p in sig.parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that needs a name only type checkers see
        hints = {}
    for key, value in model_args.items():
        if key not in params:
            if takes_any:
                continue
            hint = did_you_mean(key, params)
            raise ValidationError(
                f"--model_args {key}={show_value(value)}: the {model} backend has no argument {key!r}.{hint} "
                f"It takes: {', '.join(params)}. Remove it or correct the name."
            )
        # A backend may name a sensible example where its default is None ("automatic").
        default = getattr(cls, "EXAMPLE_ARGS", {}).get(key, params[key].default)
        check_value(model, key, value, hints.get(key), default)
