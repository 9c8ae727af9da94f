"""The fused ops on numpy arrays: log-likelihoods, entropy and binary cross-entropy.

Same formulas, names, checks and messages as :mod:`fusedgan.functional`, with ``axis=`` for
``dim=``: this module only turns numpy arrays into tensors that share their memory, calls the
same torch operators, and hands their results back as numpy arrays. Arrays of float32 and
float64 are computed in their dtype (several arrays in their common one); anything else real
(integers, booleans, float16) is converted to float64.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .families import define_functions
from .functional import _dims, _reduction_code

__all__ = [
    "categorical_log_likelihood",
    "normal_mixture_log_likelihood",
    "multivariate_normal_log_likelihood",
    "entropy",
    "entropy_with_logits",
    "binary_cross_entropy_with_logits",
]

Axes = Union[int, Sequence[int], None]
_ops = torch.ops.fusedgan


def _float_arrays(*arrays) -> list[np.ndarray]:
    """The arrays in their common dtype: float32 or float64 as they are, other real dtypes as
    float64."""
    arrays = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrays)
    if dtype not in (np.float32, np.float64):
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
            raise TypeError(f"fusedgan.numpy: expected real arrays, got {dtype}")
        dtype = np.float64
    return [a.astype(dtype, copy=False) for a in arrays]


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor on a's memory (read only by the ops). torch's strides count elements and are not
    negative: a reversed view, or one whose strides are not whole elements (a field of a
    structured array), is copied."""
    if any(stride < 0 or stride % a.itemsize for stride in a.strides):
        a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():  # torch warns that it could write to a read-only array; the ops never do
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _tensors(*arrays) -> list[torch.Tensor]:
    return [_tensor(a) for a in _float_arrays(*arrays)]


def _log_likelihood(family: str, x, a, b, c, axis: Axes) -> np.ndarray:
    tensors = _tensors(*(array for array in (x, a, b, c) if array is not None))
    tensors += [None] * (4 - len(tensors))
    return _ops.log_likelihood.default(family, *tensors, _dims(axis)).numpy()


# One function per family of the compiled list (families.py), as in fusedgan.functional.
_LOG_LIKELIHOOD_SOURCE = """
def {function}({data}, {params}, *, axis=-1):
    return _log_likelihood("{name}", {data}, {params_padded}, axis)
"""
_LOG_LIKELIHOOD_DOC = """Sum over ``axis`` (an int, a tuple, or None for all) of {density}; see
    fusedgan.functional.{function}. Returns a numpy array.
    """
LOG_LIKELIHOOD_FUNCTIONS = define_functions(globals(), _LOG_LIKELIHOOD_SOURCE, _LOG_LIKELIHOOD_DOC)
__all__ += LOG_LIKELIHOOD_FUNCTIONS


def categorical_log_likelihood(labels, logits, *, axis: Axes = -1) -> np.ndarray:
    """Sum over ``axis`` of log softmax(logits)[label]; ``logits`` has the classes in its last
    axis and the other axes broadcast against ``labels`` (integers in [0, classes))."""
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise TypeError(f"categorical_log_likelihood: labels must be integers, got {labels.dtype}")
    (logits,) = _tensors(logits)
    labels = _tensor(labels.astype(np.int64, copy=False))
    return _ops.categorical_log_likelihood.default(labels, logits, _dims(axis)).numpy()


def normal_mixture_log_likelihood(x, logits, loc, scale) -> np.ndarray:
    """Per data set, sum_n log sum_k softmax(logits)_k N(x_n; loc_k, diag(scale_k^2)): ``x``
    (*B, N, D), ``logits`` (*B, K), ``loc`` and ``scale`` (*B, K, D), batch axes broadcast;
    returns (*B,) in the dtype of the data (``x`` and ``loc``). The op computes in the common
    dtype of all four, so that float64 weights and scales keep their precision."""
    data_dtype = _float_arrays(x, loc)[0].dtype
    tensors = _tensors(x, logits, loc, scale)
    return _ops.normal_mixture_log_likelihood.default(*tensors).numpy().astype(data_dtype, copy=False)


def entropy(probs, axis: int = -1, *, base: Optional[float] = None) -> np.ndarray:
    """-sum q log q along ``axis`` with 0 log 0 = 0 (bits with ``base=2``), like
    scipy.stats.entropy without its renormalisation."""
    (probs,) = _tensors(probs)
    return _ops.entropy.default(probs, axis, base).numpy()


def entropy_with_logits(logits, axis: int = -1, *, base: Optional[float] = None) -> np.ndarray:
    """The entropy of softmax(logits) along ``axis``."""
    (logits,) = _tensors(logits)
    return _ops.entropy_with_logits.default(logits, axis, base).numpy()


def binary_cross_entropy_with_logits(input, target, *, reduction: str = "mean") -> np.ndarray:
    """The stable BCE of fusedgan.functional, for arrays of one shape."""
    code = _reduction_code(reduction, None, None)
    x, y = _tensors(input, target)
    return _ops.binary_cross_entropy_with_logits.default(x, y, None, None, code).numpy()


def multivariate_normal_log_likelihood(x, loc, scale_tril) -> np.ndarray:
    """Per data set, sum_i log N(x_i; loc, scale_tril scale_tril^T): ``x`` (*B, N, D), ``loc``
    (*B, D), ``scale_tril`` (*B, D, D) (the covariance's Cholesky factor; its lower triangle is
    read), batch axes broadcast; returns (*B,), what
    ``scipy.stats.multivariate_normal.logpdf(x, loc, L @ L.T).sum()`` gives per set."""
    return _ops.multivariate_normal_log_likelihood.default(*_tensors(x, loc, scale_tril)).numpy()
