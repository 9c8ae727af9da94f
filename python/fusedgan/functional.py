"""Drop-in functionals. Where torch.nn.functional has the same function, the signature,
broadcasting, errors and gradients are torch's; the differences are documented per function."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch.nn import _reduction

from .families import define_functions

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "discriminator_cost",
    "generator_cost",
    "discriminator_stats",
    "entropy",
    "entropy_with_logits",
    "binary_entropy_with_logits",
    "categorical_log_likelihood",
    "normal_mixture_log_likelihood",
    "multivariate_normal_log_likelihood",
]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
GENERATOR_KINDS = ("minimax", "non_saturating", "maximum_likelihood")
# The OpOverload objects: calling them directly skips torch.ops' overload resolution.
_bce_with_logits = torch.ops.fusedgan.binary_cross_entropy_with_logits.default
_bce = torch.ops.fusedgan.binary_cross_entropy.default
_discriminator_cost = torch.ops.fusedgan.discriminator_cost.default
_generator_cost = torch.ops.fusedgan.generator_cost.default
_discriminator_stats = torch.ops.fusedgan.discriminator_stats.default
_entropy = torch.ops.fusedgan.entropy.default
_entropy_with_logits = torch.ops.fusedgan.entropy_with_logits.default
_binary_entropy_with_logits = torch.ops.fusedgan.binary_entropy_with_logits.default
_log_likelihood = torch.ops.fusedgan.log_likelihood.default
_categorical_log_likelihood = torch.ops.fusedgan.categorical_log_likelihood.default
_normal_mixture_log_likelihood = torch.ops.fusedgan.normal_mixture_log_likelihood.default
_multivariate_normal_log_likelihood = torch.ops.fusedgan.multivariate_normal_log_likelihood.default


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


def discriminator_cost(real_logits: Tensor, fake_logits: Tensor, *, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    """The discriminator's cost J(D) = -1/2 E log D(x) - 1/2 E log(1 - D(G(z))), D = sigmoid(logit).

    ``real_logits`` are D's logits on data, ``fake_logits`` on generated samples; the two
    batches may differ in size and shape. With soft labels (one-sided label smoothing:
    ``real_label=0.9``) each half is the mean binary cross-entropy against its label. One
    fused pass over both batches computes the cost and, when they require grad, both
    gradients; the result equals ``0.5 * (bce_with_logits(real, full_like(real, real_label))
    + bce_with_logits(fake, full_like(fake, fake_label)))``, finite for any logits.
    """
    return _discriminator_cost(real_logits, fake_logits, real_label, fake_label)


def generator_cost(fake_logits: Tensor, *, kind: str = "non_saturating") -> Tensor:
    """The generator's cost J(G) from D's logits on generated samples, a mean over the batch.

    ``kind``: ``"minimax"`` (the zero-sum game, J(G) = -J(D); returns 1/2 E log(1 - D(G(z))),
    the only part that depends on G), ``"non_saturating"`` (-1/2 E log D(G(z))) or
    ``"maximum_likelihood"`` (-1/2 E exp(logit), as exp(sigmoid^-1(D)) = D / (1 - D)).
    Stable from logits: finite values and gradients for logits in [-200, 50] (and for any
    logit except where exp overflows, for the maximum-likelihood kind).
    """
    return _generator_cost(fake_logits, kind)


def discriminator_stats(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``tensor([mean D(x), mean D(G(z)), accuracy])`` from one pass over both batches.

    The accuracy counts real samples with logit > 0 and fake ones with logit < 0. One tensor,
    so that logging it costs one host synchronisation (``.tolist()``). Not differentiable.
    """
    return _discriminator_stats(real_logits, fake_logits)


def entropy(probs: Tensor, dim: int = -1, *, base: Optional[float] = None) -> Tensor:
    """H(q) = -sum q log q along ``dim``, with 0 log 0 = 0; in nats, or in units of ``base``
    (``base=2`` gives bits). Negative or NaN probabilities raise on CPU (on CUDA they give NaN
    rather than a host synchronisation). ``probs`` is not renormalised."""
    return _entropy(probs, dim, base)


def entropy_with_logits(logits: Tensor, dim: int = -1, *, base: Optional[float] = None) -> Tensor:
    """The entropy of ``softmax(logits, dim)``, without forming it; finite where logits are
    -inf (those classes have probability 0)."""
    return _entropy_with_logits(logits, dim, base)


def binary_entropy_with_logits(logits: Tensor, *, reduction: str = "none", base: Optional[float] = None) -> Tensor:
    """The entropy of Bernoulli(sigmoid(logits)) per element, reduced like a loss
    (``"none"``, ``"mean"`` or ``"sum"``); 0 at logits of +-inf."""
    return _binary_entropy_with_logits(logits, _reduction_code(reduction, None, None), base)


Dims = Union[int, Sequence[int], None]


def _dims(dim: Dims) -> Optional[list[int]]:
    if dim is None:
        return None
    return [dim] if isinstance(dim, int) else list(dim)


# One function per family of the compiled list (families.py): normal_log_likelihood(x, loc,
# scale, *, dim=-1) and the others, each in the form below.
_LOG_LIKELIHOOD_SOURCE = """
def {function}({data}, {params}, *, dim=-1):
    return _log_likelihood("{name}", {data}, {params_padded}, _dims(dim))
"""
_LOG_LIKELIHOOD_DOC = """Sum over ``dim`` (an int, a tuple, or None for all) of {density}.

    The parameters ({params}) broadcast against ``{data}``; the dims not summed are a batch of
    independent data sets, so one call gives the log-likelihood of each. One pass over
    ``{data}``, no temporaries of its size when the summed dims are contiguous in memory
    (otherwise ``{data}`` is copied once); gradients for ``{data}`` and every parameter (a
    parameter that is constant along ``dim`` gets its gradient summed per data set in the same
    pass). {positive_rule}
    """
LOG_LIKELIHOOD_FUNCTIONS = define_functions(globals(), _LOG_LIKELIHOOD_SOURCE, _LOG_LIKELIHOOD_DOC)
__all__ += LOG_LIKELIHOOD_FUNCTIONS


def categorical_log_likelihood(labels: Tensor, logits: Tensor, *, dim: Dims = -1) -> Tensor:
    """Sum over ``dim`` (of ``labels``) of log softmax(logits)[label]: ``logits`` has the
    classes in its last dim and its other dims broadcast against ``labels`` (one set of logits
    per data set, ``(*B, 1, K)``, or per point, ``(*B, N, K)``). Labels out of range raise
    ValueError on CPU. Composed from ATen's log_softmax and gather rather than a fused kernel."""
    return _categorical_log_likelihood(labels, logits, _dims(dim))


def normal_mixture_log_likelihood(x: Tensor, logits: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """Per data set, sum_n log sum_k softmax(logits)_k N(x_n; loc_k, diag(scale_k^2)).

    ``x`` is ``(*B, N, D)``, ``logits`` ``(*B, K)``, ``loc`` and ``scale`` ``(*B, K, D)``, the
    batch dims broadcast; returns ``(*B,)``. The log-sum-exp over components runs per point,
    so nothing of size N x K x D is formed; gradients for all four arguments.
    """
    return _normal_mixture_log_likelihood(x, logits, loc, scale)


def multivariate_normal_log_likelihood(x: Tensor, loc: Tensor, scale_tril: Tensor) -> Tensor:
    """Per data set, sum_i log N(x_i; loc, scale_tril scale_tril^T).

    ``x`` is ``(*B, N, D)``, ``loc`` ``(*B, D)`` and ``scale_tril`` ``(*B, D, D)``, the batch
    dims broadcast; returns ``(*B,)``, as
    ``MultivariateNormal(loc, scale_tril=scale_tril).log_prob(x.movedim(-2, 0)).sum(0)``.
    ``scale_tril`` is the covariance's Cholesky factor: its lower triangle is read (the upper
    one is ignored and gets a zero gradient, as in torch.distributions) and its diagonal must
    be positive (ValueError on CPU; on CUDA a non-positive one gives NaN rather than a host
    synchronisation). Each point costs one forward substitution, O(D^2), so nothing of size
    N x D x D is formed; gradients for all three arguments.
    """
    return _multivariate_normal_log_likelihood(x, loc, scale_tril)
