"""Magnitude pruning: zero the smallest ``|W|``, no data, no weight update.

The layer-wise magnitude baseline of the SparseGPT paper (arXiv 2301.00774, section 4):
weights compete within their whole matrix (unstructured) or within each group of M
inputs (N:M).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from compressors.masks import SparsityTarget, target_mask

if TYPE_CHECKING:
    from compressors.orchestrate import PruneConfig


def magnitude_prune(weight: torch.Tensor, target: SparsityTarget) -> torch.Tensor:
    """Zero exactly ``round(numel * sparsity)`` smallest-magnitude weights of the
    matrix, or ``M - N`` per group of M inputs. Returns a new tensor."""
    mask = target_mask(weight.detach().abs(), target, per_row=False)
    return weight.detach().masked_fill(mask, 0)


class MagnitudeMethod:
    """Magnitude pruning for :mod:`compressors.orchestrate`: no statistics."""

    def new_stats(self, columns: int, device: torch.device) -> None:
        return None

    def prepare(self, stats: None, config: PruneConfig) -> None:
        return None

    def prune(
        self, weight: torch.Tensor, prepared: None, config: PruneConfig
    ) -> tuple[torch.Tensor, float | None]:
        return magnitude_prune(weight, config.target), None
