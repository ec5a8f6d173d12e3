"""Sparsity targets and mask selection shared by every pruning method.

Pure tensor functions: no model, no data. A mask is a boolean tensor of the weight's
shape in which ``True`` marks a weight to prune (set to zero).

Conventions
-----------
- Weights are ``[out_features, in_features]`` (``torch.nn.Linear`` layout); N:M groups
  run along the input dimension, as the sparse tensor cores of NVIDIA Ampere and later
  expect them.
- ``N:M`` means *at most N nonzero weights in every group of M consecutive weights*
  (NVIDIA's and the Wanda paper's wording), so ``2:4`` and ``4:8`` are both 50% sparse
  and ``1:4`` is 75% sparse. (The reference SparseGPT code's ``prunen``/``prunem``
  count pruned weights instead; the two agree on 2:4 and 4:8.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_PATTERN_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")

# Two sparsities closer than this are the same target (``--sparsity 0.5 --pattern 2:4``).
SPARSITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SparsityTarget:
    """What to prune to: a fraction of zeros, optionally in an N:M pattern.

    ``n``/``m`` are 0 for unstructured sparsity. Build one with :func:`make_target`,
    which validates.
    """

    sparsity: float
    n: int = 0
    m: int = 0

    @property
    def structured(self) -> bool:
        return self.m > 0

    @property
    def prune_per_group(self) -> int:
        """Weights zeroed in each group of ``m`` (0 for unstructured)."""
        return self.m - self.n if self.m else 0

    @property
    def pattern(self) -> str | None:
        """``"2:4"`` style text, or ``None`` for unstructured."""
        return f"{self.n}:{self.m}" if self.m else None


def parse_pattern(text: str) -> tuple[int, int]:
    """Parse ``"N:M"`` into ``(n, m)``; N nonzeros allowed per group of M, ``0 < N < M``.

    >>> parse_pattern("2:4")
    (2, 4)
    >>> parse_pattern(" 4 : 8 ")
    (4, 8)
    """
    match = _PATTERN_RE.match(text)
    if not match:
        raise ValueError(
            f"sparsity pattern {text!r} is not of the form N:M; expected e.g. '2:4' or "
            "'4:8' (N nonzero weights in every M consecutive ones)"
        )
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise ValueError(
            f"sparsity pattern {text!r} needs 0 < N < M (N nonzeros out of every M); use e.g. '2:4' or '4:8'"
        )
    return n, m


def make_target(sparsity: float | None, pattern: str | None = None) -> SparsityTarget:
    """Validate a sparsity and an optional ``N:M`` pattern into a :class:`SparsityTarget`.

    With a pattern the sparsity is implied (``1 - N/M``); a sparsity given beside it
    must agree.

    >>> make_target(0.5, "2:4")
    SparsityTarget(sparsity=0.5, n=2, m=4)
    >>> make_target(None, "4:8").sparsity
    0.5
    """
    if pattern is not None:
        n, m = parse_pattern(pattern)
        implied = 1.0 - n / m
        if sparsity is not None and abs(float(sparsity) - implied) > SPARSITY_TOLERANCE:
            raise ValueError(
                f"sparsity {sparsity} disagrees with pattern {pattern!r}, which keeps {n} "
                f"of every {m} weights (sparsity {implied:g}); drop --sparsity or pass "
                f"--sparsity {implied:g}"
            )
        return SparsityTarget(implied, n, m)
    if sparsity is None:
        raise ValueError("no sparsity given; pass a fraction in (0, 1), e.g. 0.5")
    value = float(sparsity)
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise ValueError(
            f"sparsity {sparsity} is outside (0, 1); pass the fraction of weights to zero, e.g. 0.5 for 50%"
        )
    return SparsityTarget(value)


def exact_count(numel: int, sparsity: float) -> int:
    """Number of weights to prune so that ``numel * sparsity`` is met, rounded half up.

    >>> exact_count(10, 0.25)
    3
    >>> exact_count(4096, 0.5)
    2048
    """
    return int(math.floor(numel * sparsity + 0.5))


def smallest_mask(scores: torch.Tensor, k: int, dim: int | None = None) -> torch.Tensor:
    """Mask the ``k`` smallest scores, over the whole tensor or along ``dim`` (per slice).

    Exactly ``k`` entries (per slice) are masked, ties broken by ``torch.topk``.
    """
    import torch

    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k <= 0:
        return mask
    if dim is None:
        idx = torch.topk(scores.reshape(-1), k, largest=False, sorted=False).indices
        mask.view(-1)[idx] = True
    else:
        idx = torch.topk(scores, k, dim=dim, largest=False, sorted=False).indices
        mask.scatter_(dim, idx, True)
    return mask


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Mask the ``m - n`` smallest scores of every group of ``m`` along the last dim.

    The last dimension must be a multiple of ``m``.
    """
    cols = scores.shape[-1]
    if cols % m:
        raise ValueError(
            f"cannot apply a {n}:{m} pattern to a weight with {cols} input columns: "
            f"{cols} is not a multiple of {m}; exclude this layer or use unstructured "
            "sparsity"
        )
    grouped = scores.reshape(*scores.shape[:-1], cols // m, m)
    return smallest_mask(grouped, m - n, dim=-1).reshape(scores.shape)


def target_mask(scores: torch.Tensor, target: SparsityTarget, *, per_row: bool) -> torch.Tensor:
    """The prune mask for ``target`` given importance ``scores`` (low = prune first).

    Unstructured targets prune exactly ``round(numel * sparsity)`` weights, either
    spread evenly over the output rows (``per_row``, as Wanda compares weights) or
    over the whole matrix.
    """
    if target.structured:
        return nm_mask(scores, target.n, target.m)
    if per_row:
        return rowwise_mask(scores, exact_count(scores.numel(), target.sparsity))
    return smallest_mask(scores, exact_count(scores.numel(), target.sparsity))


def rowwise_mask(scores: torch.Tensor, total: int) -> torch.Tensor:
    """Mask ``total`` scores of a 2-D tensor, the smallest of each row, as evenly as
    possible: every row loses ``total // rows`` and the first ``total % rows`` rows one
    more, so the matrix is exactly as sparse as asked."""
    import torch

    rows, cols = scores.shape
    base, extra = divmod(total, rows)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    k = min(base + (1 if extra else 0), cols)
    if k == 0:
        return mask
    idx = torch.topk(scores, k, dim=1, largest=False, sorted=True).indices
    mask.scatter_(1, idx[:, :base], True)
    if extra:
        mask[:extra].scatter_(1, idx[:extra, base : base + 1], True)
    return mask


def zero_fraction(weight: torch.Tensor) -> float:
    """Fraction of exactly-zero entries."""
    return float((weight == 0).sum().item()) / max(weight.numel(), 1)
