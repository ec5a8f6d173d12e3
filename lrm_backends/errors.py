"""The errors a user sees as one line, and the one "did you mean" helper.

Every layer may import this module (it imports only the standard library): the CLI
catches these and prints ``lrm: error: MESSAGE`` without a traceback, backends and the
run validator raise them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
    """``" Did you mean 'x'?"`` (or ``'x' or 'y'``) for the choices close to ``value``,
    or ``""`` when none is.

    ``ignore_case`` compares lower-cased names; ``substrings`` also offers names that
    contain ``value`` (up to ``n`` suggestions in all).

    >>> did_you_mean("sparsty", ["sparsity", "method"])
    " Did you mean 'sparsity'?"
    >>> did_you_mean("LRM-GUFF", ["lrm-gguf", "lrm-replay"], n=3, ignore_case=True)
    " Did you mean 'lrm-gguf'?"
    >>> did_you_mean("zzz", ["lrm-gguf"])
    ''
    """
    names = list(choices)
    if ignore_case:
        lowered = {c.lower(): c for c in names}
        close = [lowered[m] for m in difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=cutoff)]
    else:
        close = difflib.get_close_matches(value, names, n=n, cutoff=cutoff)
    if substrings:
        needle = value.lower() if ignore_case else value
        close += [c for c in names if needle in (c.lower() if ignore_case else c) and c not in close][: n - len(close)]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
