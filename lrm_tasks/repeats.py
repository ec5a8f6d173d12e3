"""Statistics over k sampled responses per question: pass@k and majority vote."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. 2021 (arXiv 2107.03374, eq. 1): n samples, c correct.

    >>> pass_at_k(4, 0, 4), pass_at_k(4, 1, 4), pass_at_k(4, 1, 1), round(pass_at_k(4, 2, 2), 4)
    (0.0, 1.0, 0.25, 0.8333)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_index(keys: Sequence[Hashable | None]) -> int | None:
    """Index of a response holding the most common non-None key; ties go to the key
    seen first. None (no answer) never votes; all None -> None.

    >>> majority_index(["7", None, "3", "3", "7"]), majority_index([None, None])
    (0, None)
    >>> majority_index([None, "b", "a", "a"])
    2
    """
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)
    if not counts:
        return None
    best = max(counts, key=lambda key: (counts[key], -first[key]))
    return first[best]
