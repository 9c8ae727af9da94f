"""The fused kernels on numpy arrays: log-likelihoods, entropy and binary cross-entropy.

Same formulas and names as :mod:`fusedgan.functional`, with ``axis=`` for ``dim=``; float32
and float64 arrays in (anything else is converted to float64), numpy arrays out. The arrays
go to the C++ kernels through the pybind11 module, without torch tensors; the GIL is released
while a kernel runs.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from . import _C

__all__ = [
    "normal_log_likelihood",
    "laplace_log_likelihood",
    "exponential_log_likelihood",
    "bernoulli_log_likelihood",
    "poisson_log_likelihood",
    "student_t_log_likelihood",
    "categorical_log_likelihood",
    "normal_mixture_log_likelihood",
    "entropy",
    "entropy_with_logits",
    "binary_cross_entropy_with_logits",
]

Axes = Union[int, Sequence[int], None]
_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _float_arrays(*arrays) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrays)
    if dtype not in (np.float32, np.float64):
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
            raise TypeError(f"fusedgan.numpy: expected real arrays, got {dtype}")
        dtype = np.float64
    return [a.astype(dtype, copy=False) for a in arrays]


def _rows(a: np.ndarray, summed: tuple[int, ...]) -> np.ndarray:
    """a with the summed axes last, as (rows, cols): a view where numpy can make one."""
    moved = np.moveaxis(a, summed, range(a.ndim - len(summed), a.ndim))
    rows = math.prod(moved.shape[: a.ndim - len(summed)])
    two_d = moved.reshape(rows, math.prod(moved.shape[a.ndim - len(summed):]))
    if two_d.shape[1] > 1 and two_d.strides[1] not in (0, two_d.itemsize):
        two_d = np.ascontiguousarray(two_d)
    return two_d


def _log_likelihood(family: str, x, params, axis: Axes) -> np.ndarray:
    names, positive = _C.log_likelihood_families[family]
    arrays = _float_arrays(x, *params)
    for name, must_be_positive, value in zip(names, positive, arrays[1:]):
        if must_be_positive and np.any(value <= 0):
            raise ValueError(f"{family}_log_likelihood: {name} must be positive")
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        described = [f"{name} {a.shape}" for name, a in zip(["x", *names], arrays)]
        shapes = f"{', '.join(described[:-1])} and {described[-1]}"
        raise ValueError(f"{family}_log_likelihood: {shapes} do not broadcast together") from None
    ndim = arrays[0].ndim
    if axis is None:
        summed = tuple(range(ndim))
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        if any(not -max(ndim, 1) <= a < max(ndim, 1) for a in axes):
            raise ValueError(f"{family}_log_likelihood: axis {axis} is out of range for data of {ndim} dimensions")
        summed = tuple(sorted({a % ndim for a in axes})) if ndim else ()
        if len(summed) != len(axes) and ndim:
            raise ValueError(f"{family}_log_likelihood: axis {axis} names an axis twice")
    kept_shape = tuple(n for i, n in enumerate(arrays[0].shape) if i not in summed)
    out = _C.log_likelihood(family, _rows(arrays[0], summed), [_rows(a, summed) for a in arrays[1:]])
    return out.reshape(kept_shape)


def normal_log_likelihood(x, loc, scale, *, axis: Axes = -1) -> np.ndarray:
    """Sum over ``axis`` of log N(x; loc, scale); see fusedgan.functional.normal_log_likelihood."""
    return _log_likelihood("normal", x, (loc, scale), axis)


def laplace_log_likelihood(x, loc, scale, *, axis: Axes = -1) -> np.ndarray:
    return _log_likelihood("laplace", x, (loc, scale), axis)


def exponential_log_likelihood(x, rate, *, axis: Axes = -1) -> np.ndarray:
    return _log_likelihood("exponential", x, (rate,), axis)


def bernoulli_log_likelihood(x, logits, *, axis: Axes = -1) -> np.ndarray:
    return _log_likelihood("bernoulli", x, (logits,), axis)


def poisson_log_likelihood(k, rate, *, axis: Axes = -1) -> np.ndarray:
    return _log_likelihood("poisson", k, (rate,), axis)


def student_t_log_likelihood(x, df, loc, scale, *, axis: Axes = -1) -> np.ndarray:
    return _log_likelihood("student_t", x, (df, loc, scale), axis)


def categorical_log_likelihood(labels, logits, *, axis: Axes = -1) -> np.ndarray:
    """Sum over ``axis`` of log softmax(logits)[label]; ``logits`` has the classes in its last
    axis and the other axes broadcast against ``labels`` (integers in [0, classes)). Like the
    torch op, composed from a log-sum-exp and a gather rather than a kernel of its own."""
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise TypeError(f"categorical_log_likelihood: labels must be integers, got {labels.dtype}")
    (logits,) = _float_arrays(logits)
    if logits.ndim == 0:
        raise ValueError("categorical_log_likelihood: logits need a last axis of classes")
    classes = logits.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"categorical_log_likelihood: labels must lie in [0, {classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    top = np.max(logits, axis=-1, keepdims=True) if classes else np.zeros(logits.shape[:-1] + (1,), logits.dtype)
    top = np.where(np.isfinite(top), top, 0)
    log_probs = logits - (top + np.log(np.sum(np.exp(logits - top), axis=-1, keepdims=True)))
    try:
        shape = np.broadcast_shapes(labels.shape, log_probs.shape[:-1])
    except ValueError:
        raise ValueError(f"categorical_log_likelihood: labels {labels.shape} and logits {logits.shape} (without "
                         "the classes) do not broadcast together") from None
    log_probs = np.broadcast_to(log_probs, shape + (classes,))
    picked = np.take_along_axis(log_probs, np.broadcast_to(labels, shape)[..., None].astype(np.intp), axis=-1)[..., 0]
    return picked.sum(axis=axis)


def normal_mixture_log_likelihood(x, logits, loc, scale) -> np.ndarray:
    """Per data set, sum_n log sum_k softmax(logits)_k N(x_n; loc_k, diag(scale_k^2)): ``x``
    (*B, N, D), ``logits`` (*B, K), ``loc`` and ``scale`` (*B, K, D), batch axes broadcast;
    returns (*B,). The same kernel as fusedgan.functional.normal_mixture_log_likelihood."""
    x, loc = _float_arrays(x, loc)
    logits, scale = (np.asarray(a, dtype=np.float64) for a in (logits, scale))
    if x.ndim < 2 or logits.ndim < 1 or loc.ndim < 2 or scale.ndim < 2:
        raise ValueError(f"normal_mixture_log_likelihood: expected x (*B, N, D), logits (*B, K), loc and scale "
                         f"(*B, K, D), got shapes {x.shape}, {logits.shape}, {loc.shape}, {scale.shape}")
    k, d = logits.shape[-1], x.shape[-1]
    if loc.shape[-2:] != (k, d) or scale.shape[-2:] != (k, d):
        raise ValueError(f"normal_mixture_log_likelihood: loc and scale need shape (*B, {k}, {d}), got "
                         f"{loc.shape} and {scale.shape}")
    if np.any(scale <= 0) or np.isnan(scale).any():
        raise ValueError("normal_mixture_log_likelihood: scale must be positive")
    try:
        batch = np.broadcast_shapes(x.shape[:-2], logits.shape[:-1], loc.shape[:-2], scale.shape[:-2])
    except ValueError:
        raise ValueError("normal_mixture_log_likelihood: the batch axes of x, logits, loc and scale do not "
                         "broadcast together") from None

    def sets(a: np.ndarray, tail: int) -> np.ndarray:  # (*batch, *tail) as (sets, *tail), C order
        tail_shape = a.shape[a.ndim - tail:]
        return np.ascontiguousarray(np.broadcast_to(a, batch + tail_shape).reshape((-1,) + tail_shape))

    top = np.max(logits, axis=-1, keepdims=True)
    log_pi = logits - (top + np.log(np.sum(np.exp(logits - top), axis=-1, keepdims=True)))
    log_weight = log_pi - np.log(scale).sum(-1) - d * 0.5 * math.log(2 * math.pi)
    out = _C.normal_mixture_log_likelihood(sets(x, 2), sets(loc.astype(x.dtype, copy=False), 2), sets(log_pi, 1),
                                           sets(log_weight, 1), sets(1.0 / scale, 2))
    return out.reshape(batch)


def _entropy(values, axis: int, base: Optional[float], logits: bool) -> np.ndarray:
    (array,) = _float_arrays(values)
    if base is not None and not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"entropy: base must be positive, finite and not 1, got {base}")
    if array.ndim == 0:
        array = array.reshape(1)
        axis = 0
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"entropy: axis {axis} is out of range for an array of {array.ndim} dimensions")
    moved = np.moveaxis(array, axis, -1)
    rows = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])
    out = _C.entropy(rows, 1.0 / math.log(base) if base else 1.0, logits)
    return out.reshape(moved.shape[:-1])


def entropy(probs, axis: int = -1, *, base: Optional[float] = None) -> np.ndarray:
    """-sum q log q along ``axis`` with 0 log 0 = 0 (bits with ``base=2``), like
    scipy.stats.entropy without its renormalisation."""
    return _entropy(probs, axis, base, logits=False)


def entropy_with_logits(logits, axis: int = -1, *, base: Optional[float] = None) -> np.ndarray:
    """The entropy of softmax(logits) along ``axis``."""
    return _entropy(logits, axis, base, logits=True)


def binary_cross_entropy_with_logits(input, target, *, reduction: str = "mean") -> np.ndarray:
    """The stable BCE of fusedgan.functional, for arrays of one shape."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    x, y = _float_arrays(input, target)
    if x.shape != y.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {y.shape} must be input shape {x.shape}")
    return _C.bce_with_logits(x, y, _REDUCTIONS[reduction])
