"""Wanda: pruning by weight magnitude times input activation norm, no weight update.

Sun, Liu, Bair & Kolter, "A Simple and Effective Pruning Approach for Large Language
Models" (ICLR 2024, arXiv 2306.11695): the score of ``W_ij`` is ``|W_ij| * ||X_j||_2``
and weights are compared within each output row (unstructured) or within each group of
M inputs (N:M). Reference: locuslab/wanda ``lib/prune.py`` (``prune_wanda``).

Pure tensor functions; :mod:`compressors.orchestrate` walks the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from compressors.masks import SparsityTarget, target_mask

if TYPE_CHECKING:
    from compressors.orchestrate import PruneConfig

# Squared norms are summed in float32 whatever the model's dtype (bf16 sums of
# thousands of squares lose the small columns).
NORM_DTYPE = torch.float32


class SquaredNormAccumulator:
    """Running per-input-column ``sum_t x_tj^2`` over the tokens a linear layer sees."""

    def __init__(self, columns: int, device: torch.device | str | None = None) -> None:
        self.sum = torch.zeros(columns, dtype=NORM_DTYPE, device=device)
        self.tokens = 0

    def add(self, inputs: torch.Tensor) -> None:
        """Add a batch of inputs shaped ``[..., columns]``."""
        x = inputs.reshape(-1, inputs.shape[-1]).to(device=self.sum.device, dtype=NORM_DTYPE)
        self.sum += x.square().sum(dim=0)
        self.tokens += x.shape[0]

    def norms(self) -> torch.Tensor:
        """``||X_j||_2`` per input column (a new tensor)."""
        return self.sum.sqrt()


def wanda_scores(weight: torch.Tensor, input_norms: torch.Tensor) -> torch.Tensor:
    """``|W_ij| * ||X_j||_2`` in float32."""
    return weight.detach().to(NORM_DTYPE).abs() * input_norms.to(
        device=weight.device, dtype=NORM_DTYPE
    ).unsqueeze(0)


def wanda_prune(weight: torch.Tensor, input_norms: torch.Tensor, target: SparsityTarget) -> torch.Tensor:
    """Zero the lowest-scoring weights, compared within each output row: exactly
    ``round(numel * sparsity)`` in all, spread evenly over the rows (a row loses
    ``columns * sparsity`` rounded down or up), or ``M - N`` per group of M inputs.
    Returns a new tensor in ``weight``'s dtype."""
    if input_norms.shape != (weight.shape[1],):
        raise ValueError(
            f"input norms of shape {tuple(input_norms.shape)} do not match a weight with "
            f"{weight.shape[1]} input columns"
        )
    mask = target_mask(wanda_scores(weight, input_norms), target, per_row=True)
    return weight.detach().masked_fill(mask, 0)


class WandaMethod:
    """Wanda for :mod:`compressors.orchestrate`: input norms per input group."""

    def new_stats(self, columns: int, device: torch.device) -> SquaredNormAccumulator:
        return SquaredNormAccumulator(columns, device)

    def prepare(self, stats: SquaredNormAccumulator, config: PruneConfig) -> torch.Tensor:
        return stats.norms()

    def prune(
        self, weight: torch.Tensor, prepared: torch.Tensor, config: PruneConfig
    ) -> tuple[torch.Tensor, float | None]:
        return wanda_prune(weight, prepared, config.target), None
