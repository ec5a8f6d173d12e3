"""SparseGPT: one-shot pruning with optimal-brain-surgeon weight updates.

Frantar & Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
One-Shot" (ICML 2023, arXiv 2301.00774), Algorithm 1; reference implementation
IST-DASLab/sparsegpt ``sparsegpt.py`` (``SparseGPT.fasterprune``).

Pure tensor functions: :class:`GramAccumulator` collects ``H = 2 X X^T / n`` from a
linear layer's inputs, :func:`sparsegpt_prune` prunes one weight matrix given ``H``.
They know nothing about models or data; :mod:`compressors.orchestrate` walks the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from compressors.masks import SparsityTarget, exact_count, smallest_mask
from compressors.methods import DEFAULT_BLOCKSIZE, DEFAULT_PERCDAMP  # the method's row holds its knobs

if TYPE_CHECKING:
    from compressors.orchestrate import PruneConfig

logger = logging.getLogger(__name__)

# The Hessian, its inverse and the OBS updates are computed in float32 whatever the
# model's dtype: bf16/fp16 Cholesky factors of ill-conditioned H are unusable.
HESSIAN_DTYPE = torch.float32
# If H + lambda*I is still not positive definite, lambda is multiplied by this factor,
# at most DAMP_RETRIES times, before giving up.
DAMP_GROWTH = 10.0
DAMP_RETRIES = 3
# Columns updated one by one inside a block before a lazy matrix-product update of the
# block's remaining columns: keeps each per-column update small enough to run without
# thread synchronisation (a multiple of 8, so 2:4 and 4:8 groups never straddle it).
SUBBLOCK = 16


class GramAccumulator:
    """Running ``2 X X^T / n`` over the rows of the activations a linear layer sees.

    ``n`` counts tokens. (The reference scales by sequences instead; the scale cancels
    in the pruning because dampening is relative to the mean diagonal.)
    """

    def __init__(self, columns: int, device: torch.device | str | None = None) -> None:
        self.sum = torch.zeros((columns, columns), dtype=HESSIAN_DTYPE, device=device)
        self.tokens = 0

    def add(self, inputs: torch.Tensor) -> None:
        """Add a batch of inputs shaped ``[..., columns]``."""
        x = inputs.reshape(-1, inputs.shape[-1]).to(device=self.sum.device, dtype=HESSIAN_DTYPE)
        self.sum.addmm_(x.t(), x)
        self.tokens += x.shape[0]

    def hessian(self) -> torch.Tensor:
        """``H = 2 X X^T / n`` (a new tensor)."""
        return self.sum * (2.0 / max(self.tokens, 1))


@dataclass(frozen=True)
class SparseGPTResult:
    """A pruned weight (in the input's dtype and layout) and SparseGPT's error estimate
    ``sum (w - q)^2 / [H^-1]_ii^2 / 2`` (the OBS loss it minimises)."""

    weight: torch.Tensor
    loss: float


def inverse_hessian_cholesky(hessian: torch.Tensor, percdamp: float = DEFAULT_PERCDAMP) -> torch.Tensor:
    """Upper Cholesky factor of ``(H + lambda I)^-1``, with ``lambda = percdamp * mean diag H``.

    ``hessian`` is modified in place (dampened). Raises ``ValueError`` if ``H`` cannot
    be made positive definite even with growing dampening.
    """
    diag = hessian.diagonal()
    damp = percdamp * float(diag.mean().item())
    if damp <= 0:
        damp = percdamp
    added = 0.0
    for attempt in range(DAMP_RETRIES + 1):
        diag.add_(damp - added)
        added = damp
        chol, info = torch.linalg.cholesky_ex(hessian)
        if int(info.item()) == 0:
            inv = torch.cholesky_inverse(chol)
            chol_inv, info = torch.linalg.cholesky_ex(inv, upper=True)
            if int(info.item()) == 0:
                return chol_inv
        logger.warning(
            "Hessian not positive definite with dampening %.3g (attempt %d); increasing it %gx",
            damp,
            attempt + 1,
            DAMP_GROWTH,
        )
        damp *= DAMP_GROWTH
    raise ValueError(
        f"the Hessian could not be inverted even with dampening {damp / DAMP_GROWTH:.3g}; "
        "use more or more varied calibration samples, or raise percdamp (now "
        f"{percdamp})"
    )


@dataclass(frozen=True)
class InverseHessian:
    """What :func:`sparsegpt_prune_prepared` needs from ``H``, computed once and shared
    by every linear layer that reads the same input (q/k/v, gate/up): the upper
    Cholesky factor of the dampened inverse, and the inputs that were always zero."""

    hinv: torch.Tensor
    dead: torch.Tensor | None


def prepare_hessian(hessian: torch.Tensor, percdamp: float = DEFAULT_PERCDAMP) -> InverseHessian:
    """Dampen and invert ``H = 2 X X^T / n`` (not modified) for :func:`sparsegpt_prune_prepared`."""
    h = hessian.detach().to(dtype=HESSIAN_DTYPE, copy=True)
    dead = h.diagonal() == 0  # inputs that were always zero: their weights are free to go
    if bool(dead.any()):
        h[dead, dead] = 1.0
    else:
        dead = None
    return InverseHessian(inverse_hessian_cholesky(h, percdamp), dead)


def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    target: SparsityTarget,
    *,
    blocksize: int = DEFAULT_BLOCKSIZE,
    percdamp: float = DEFAULT_PERCDAMP,
) -> SparseGPTResult:
    """Prune ``weight`` (``[rows, columns]``) to ``target`` with SparseGPT.

    ``hessian`` is ``2 X X^T / n`` (``[columns, columns]``, e.g. from
    :class:`GramAccumulator`); it is not modified. See :func:`sparsegpt_prune_prepared`.
    """
    columns = weight.shape[1]
    if hessian.shape != (columns, columns):
        raise ValueError(
            f"Hessian shape {tuple(hessian.shape)} does not match a weight with {columns} "
            f"input columns; expected ({columns}, {columns})"
        )
    prepared = prepare_hessian(hessian.to(weight.device), percdamp)
    return sparsegpt_prune_prepared(weight, prepared, target, blocksize=blocksize)


def sparsegpt_prune_prepared(
    weight: torch.Tensor,
    prepared: InverseHessian,
    target: SparsityTarget,
    *,
    blocksize: int = DEFAULT_BLOCKSIZE,
) -> SparseGPTResult:
    """Prune ``weight`` to ``target`` given the prepared inverse Hessian of its inputs.

    Columns are processed in blocks of ``blocksize``: the mask of each block is chosen
    by ``w^2 / [H^-1]_ii^2`` on the already-updated weights (per group of M for N:M
    patterns, as each group is reached), each pruned column's error is propagated to
    the remaining columns of the block (OBS update), and the block's errors to all later
    columns at once. Within a block, the same lazy scheme runs again on sub-blocks of
    :data:`SUBBLOCK` columns, so that the per-column work stays small and the rest is
    matrix products (same result up to float rounding).

    Unstructured targets zero exactly ``round(rows * columns * sparsity)`` weights.
    """
    rows, columns = weight.shape
    hinv = prepared.hinv
    if hinv.shape != (columns, columns):
        raise ValueError(
            f"inverse Hessian shape {tuple(hinv.shape)} does not match a weight with {columns} input columns"
        )
    n, m, per_group = target.n, target.m, target.prune_per_group
    if target.structured and columns % m:
        raise ValueError(
            f"cannot apply a {n}:{m} pattern to a weight with {columns} input columns: "
            f"{columns} is not a multiple of {m}; exclude this layer or use unstructured "
            "sparsity"
        )
    if target.structured and (blocksize % m or SUBBLOCK % m):
        raise ValueError(
            f"blocksize {blocksize} is not a multiple of the pattern's group size {m}; "
            f"use a multiple of {m}, e.g. {DEFAULT_BLOCKSIZE}"
        )
    device = weight.device
    hinv = hinv.to(device)
    # Work on the transpose: column i of W is the contiguous row i of Wt, so the
    # per-column updates below touch contiguous memory.
    wt = weight.detach().t().to(dtype=HESSIAN_DTYPE, copy=True).contiguous()
    if prepared.dead is not None:
        wt[prepared.dead.to(device), :] = 0.0

    total_prune = exact_count(rows * columns, target.sparsity)
    loss = torch.zeros((), dtype=HESSIAN_DTYPE, device=device)

    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        w1 = wt[i1:i2]  # a view: updated in place
        hinv1 = hinv[i1:i2, i1:i2]
        d = hinv1.diagonal()
        err1 = torch.zeros_like(w1)

        if target.structured:
            mask1 = torch.zeros_like(w1, dtype=torch.bool)
            scale = torch.zeros_like(w1)
        else:
            # Exactly total_prune weights overall: each block takes its share, rounded so
            # that the shares add up.
            k = total_prune * i2 // columns - total_prune * i1 // columns
            mask1 = smallest_mask(w1.square() / d.square().unsqueeze(1), k)
            # err = (w - q) / d with q = 0 where masked, i.e. w * mask / d
            scale = mask1.to(HESSIAN_DTYPE) / d.unsqueeze(1)

        for j1 in range(0, count, SUBBLOCK):
            j2 = min(j1 + SUBBLOCK, count)
            for i in range(j1, j2):
                if per_group and i % m == 0:
                    group = slice(i, i + m)
                    scores = w1[group].square() / d[group].square().unsqueeze(1)
                    gmask = smallest_mask(scores, per_group, dim=0)
                    mask1[group] = gmask
                    scale[group] = gmask.to(HESSIAN_DTYPE) / d[group].unsqueeze(1)
                e = err1[i]
                torch.mul(w1[i], scale[i], out=e)
                # OBS update of the sub-block's later columns: W[:, j] -= e * Hinv[i, j]
                if i + 1 < j2:
                    w1[i + 1 : j2].addr_(hinv1[i, i + 1 : j2], e, alpha=-1.0)
            if j2 < count:
                w1[j2:].addmm_(hinv1[j1:j2, j2:].t(), err1[j1:j2], alpha=-1.0)

        w1.masked_fill_(mask1, 0.0)
        loss += err1.square().sum() / 2
        if i2 < columns:
            wt[i2:].addmm_(hinv[i1:i2, i2:].t(), err1, alpha=-1.0)

    pruned = wt.t().to(dtype=weight.dtype).contiguous()
    return SparseGPTResult(weight=pruned, loss=float(loss.item()))


class SparseGPTMethod:
    """SparseGPT for :mod:`compressors.orchestrate`: the Hessian ``2XX^T`` per input
    group, its inverse Cholesky factor once, OBS updates per member."""

    def new_stats(self, columns: int, device: torch.device) -> GramAccumulator:
        return GramAccumulator(columns, device)

    def prepare(self, stats: GramAccumulator, config: PruneConfig) -> InverseHessian:
        return prepare_hessian(stats.hessian(), config.knob("percdamp"))

    def prune(
        self, weight: torch.Tensor, prepared: InverseHessian, config: PruneConfig
    ) -> tuple[torch.Tensor, float | None]:
        result = sparsegpt_prune_prepared(weight, prepared, config.target, blocksize=config.knob("blocksize"))
        return result.weight, result.loss
