"""Drop-in functionals. Where torch.nn.functional has the same function, the signature,
broadcasting, errors and gradients are torch's; the differences are documented per function."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import _reduction

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
# The OpOverload objects: calling them directly skips torch.ops' overload resolution.
_bce_with_logits = torch.ops.fusedgan.binary_cross_entropy_with_logits.default
_bce = torch.ops.fusedgan.binary_cross_entropy.default


def _reduction_code(reduction: str, size_average: Optional[bool], reduce: Optional[bool]) -> int:
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    code = _REDUCTIONS.get(reduction)
    if code is None:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return code


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    size_average: Optional[bool] = None,
    reduce: Optional[bool] = None,
    reduction: str = "mean",
    pos_weight: Optional[Tensor] = None,
) -> Tensor:
    """``-w * [pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))]``, reduced.

    Same semantics as :func:`torch.nn.functional.binary_cross_entropy_with_logits`, in one
    fused pass forward and one backward. Beyond torch: logits of +-inf give the limits (0 or
    +inf) and finite input gradients instead of NaN; ``mean``/``sum`` are summed in float64
    in a fixed order (the same bits for any thread count). ``input`` and ``target`` compute
    in their promoted dtype; float16/bfloat16 compute in float32 inside.
    """
    return _bce_with_logits(input, target, weight, pos_weight, _reduction_code(reduction, size_average, reduce))


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    size_average: Optional[bool] = None,
    reduce: Optional[bool] = None,
    reduction: str = "mean",
) -> Tensor:
    """``-w * [y * log p + (1 - y) * log(1 - p)]`` with each log clamped at -100, reduced.

    Same semantics as :func:`torch.nn.functional.binary_cross_entropy`: ``input`` must lie in
    [0, 1] (checked on CPU, a RuntimeError otherwise; on CUDA, out-of-range values give NaN
    rather than a host synchronisation). Unlike torch it is safe under autocast: float16
    inputs are computed in float32 inside.
    """
    return _bce(input, target, weight, _reduction_code(reduction, size_average, reduce))
