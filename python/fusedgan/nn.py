"""Loss modules: configuration and buffers only, the work is in fusedgan.functional."""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F

__all__ = ["BCELoss", "BCEWithLogitsLoss", "DiscriminatorCost", "GeneratorCost"]


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


class DiscriminatorCost(torch.nn.Module):
    """J(D) of :func:`fusedgan.functional.discriminator_cost`: ``cost(real_logits, fake_logits)``."""

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        for name, label in (("real_label", real_label), ("fake_label", fake_label)):
            if not 0.0 <= label <= 1.0:
                raise ValueError(f"DiscriminatorCost: {name} must lie in [0, 1], got {label}")
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.discriminator_cost(real_logits, fake_logits, real_label=self.real_label, fake_label=self.fake_label)

    def extra_repr(self) -> str:
        return f"real_label={self.real_label}, fake_label={self.fake_label}"


class GeneratorCost(torch.nn.Module):
    """J(G) of :func:`fusedgan.functional.generator_cost`: ``cost(fake_logits)``."""

    def __init__(self, kind: str = "non_saturating") -> None:
        super().__init__()
        if kind not in F.GENERATOR_KINDS:
            raise ValueError(f"GeneratorCost: kind must be one of {', '.join(map(repr, F.GENERATOR_KINDS))}, got {kind!r}")
        self.kind = kind

    def forward(self, fake_logits: Tensor) -> Tensor:
        return F.generator_cost(fake_logits, kind=self.kind)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
