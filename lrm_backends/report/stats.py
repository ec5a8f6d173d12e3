"""Small statistics for the report (pure Python).

The Mann-Whitney test is written out (the normal approximation with tie and continuity
corrections, as scipy's ``mannwhitneyu(..., method="asymptotic")``; the tests check
that both agree): importing ``scipy.stats`` alone takes 1-3 s, a third of the report's
time budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float | None:
    """Mean of the values; None for none.

    >>> mean([1, 2, 3]), mean([])
    (2.0, None)
    """
    return sum(values) / len(values) if values else None


def stderr(values: Sequence[float]) -> float | None:
    """Standard error of the mean: sample standard deviation (ddof=1) / sqrt(n), as
    lm-eval's ``mean_stderr``; None below two values.

    >>> stderr([1, 1, 1, 0])
    0.25
    """
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def median(values: Sequence[float]) -> float | None:
    """Median; None for none.

    >>> median([3, 1, 2]), median([4, 1, 2, 3]), median([])
    (2, 2.5, None)
    """
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks (1-based, ties share their mean rank) and the tie term sum(t^3 - t)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    return ranks, ties


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None]:
    """Mann-Whitney U of ``x`` against ``y`` and its two-sided p-value.

    U counts the pairs (x_i, y_j) with x_i > y_j, ties counting one half; U / (n_x n_y)
    is the chance that a random x exceeds a random y. The p-value is the normal
    approximation with tie and continuity corrections (scipy's ``method="asymptotic"``:
    the same number, and large samples stay fast). (None, None) when a side is empty;
    p = 1 when every value is tied.

    >>> mann_whitney_u([1, 2], [3, 4, 5])[0], mann_whitney_u([3, 4, 5], [1, 2])[0]
    (0.0, 6.0)
    """
    if not x or not y:
        return None, None
    return _mann_whitney_normal(x, y)


def _mann_whitney_normal(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    nx, ny = len(x), len(y)
    n = nx + ny
    ranks, ties = _ranks([*x, *y])
    u = sum(ranks[:nx]) - nx * (nx + 1) / 2
    mu = nx * ny / 2
    var = nx * ny / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return u, 1.0
    z = (abs(u - mu) - 0.5) / math.sqrt(var)
    return u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def length_bins(lengths: Sequence[float], quantiles: int) -> list[int]:
    """Bin index (0-based) of each length: equal-count bins by rank, equal lengths kept
    together.

    Sorted position i goes to bin floor(i q / n); a run of equal lengths (e.g. every
    truncated response at the token budget) spanning several bins moves whole into the
    one holding most of it (on a tie, the outermost), so a bin can be empty.

    >>> length_bins([10, 20, 30, 40, 50, 60, 70, 80], 4)
    [0, 0, 1, 1, 2, 2, 3, 3]
    >>> length_bins([5, 5, 5, 9], 2), length_bins([100, 100, 500, 500], 4)
    ([0, 0, 0, 1], [0, 0, 3, 3])
    """
    n = len(lengths)
    order = sorted(range(n), key=lengths.__getitem__)
    out = [0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and lengths[order[j + 1]] == lengths[order[i]]:
            j += 1
        counts: dict[int, int] = {}
        for pos in range(i, j + 1):
            b = pos * quantiles // n
            counts[b] = counts.get(b, 0) + 1
        # the bin holding most of them; on a tie the outermost (the shortest responses
        # stay first, the longest last), then the longer
        best = max(counts, key=lambda b: (counts[b], abs(2 * b - (quantiles - 1)), b))
        for pos in range(i, j + 1):
            out[order[pos]] = best
        i = j + 1
    return out
