"""Loss modules: configuration and buffers only, the work is in fusedgan.functional."""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F

__all__ = ["BCELoss", "BCEWithLogitsLoss"]


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """torch.nn.BCEWithLogitsLoss (same constructor, buffers and state_dict) on the fused op."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class BCELoss(torch.nn.BCELoss):
    """torch.nn.BCELoss (same constructor, buffers and state_dict) on the fused op."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)
