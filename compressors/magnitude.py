"""Magnitude pruning: zero the smallest ``|W|``, no data, no weight update.

The layer-wise magnitude baseline of the SparseGPT paper (arXiv 2301.00774, section 4):
weights compete within their whole matrix (unstructured) or within each group of M
inputs (N:M).
"""

from __future__ import annotations

import torch

from compressors.masks import SparsityTarget, target_mask


def magnitude_prune(weight: torch.Tensor, target: SparsityTarget) -> torch.Tensor:
    """Zero exactly ``round(numel * sparsity)`` smallest-magnitude weights of the
    matrix, or ``M - N`` per group of M inputs. Returns a new tensor."""
    mask = target_mask(weight.detach().abs(), target, per_row=False)
    return weight.detach().masked_fill(mask, 0)
