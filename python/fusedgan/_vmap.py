"""Batching rules for torch.func.vmap: every fusedgan op, vmapped, is one call of a fused op
on the whole batch (a reduced loss as its elementwise form, reduced per sample), never
PyTorch's loop over the samples. Imported by fusedgan's __init__, which registers them.

Each rule gets the op's arguments with the vmapped dim of each batched tensor (in_dims) and
returns the batched result with its vmapped dim (always 0 here). Tensors whose logical shapes
are aligned from the right (the ops broadcast) get that dim first and size-1 dims after it, so
that it broadcasts only against other samples' dims."""

from __future__ import annotations

import torch
from torch.library import register_vmap

_ops = torch.ops.fusedgan


def _rule(op):
    """Registers the decorated function as op's batching rule. The dispatcher leaves out trailing
    arguments at their defaults; the function gets them all, with in_dims to match."""

    def register(function):
        arguments = op._schema.arguments
        defaults = [a.default_value if a.has_default_value() else None for a in arguments]

        def with_defaults(info, in_dims, *args, **kwargs):
            values = list(args) + [kwargs.get(a.name, d) for a, d in zip(arguments[len(args):], defaults[len(args):])]
            return function(info, tuple(in_dims) + (None,) * (len(values) - len(in_dims)), *values)

        register_vmap(op, with_defaults)
        return function

    return register


def _logical_rank(t: torch.Tensor | None, bdim: int | None) -> int:
    return -1 if t is None else t.dim() - (bdim is not None)


def _first(t: torch.Tensor, bdim: int | None, batch: int) -> torch.Tensor:
    """t with the vmapped dim first; an unbatched t expanded along it (a view)."""
    return t.movedim(bdim, 0) if bdim is not None else t.expand(batch, *t.shape)


def _aligned(t: torch.Tensor | None, bdim: int | None, rank: int, batch: int | None = None) -> torch.Tensor | None:
    """t as (batch, 1, ..., 1, *logical) with `rank` dims after the first, so that its logical
    dims align from the right with those of the others. An unbatched t is left to broadcast, or
    with `batch`, expanded to it."""
    if t is None or (bdim is None and batch is None):
        return t
    t = t.movedim(bdim, 0) if bdim is not None else t.unsqueeze(0).expand(batch, *t.shape)
    return t.reshape(t.shape[:1] + (1,) * (rank - (t.dim() - 1)) + t.shape[1:])


def _unaligned(t: torch.Tensor | None, logical_shape) -> torch.Tensor | None:
    """A gradient of an _aligned argument back in the argument's own layout: (batch, *logical)."""
    return None if t is None else t.reshape(t.shape[:1] + tuple(logical_shape))


def _dims(result):
    return tuple(None if r is None else 0 for r in result) if isinstance(result, tuple) else 0


def _per_sample(loss: torch.Tensor, reduction: int) -> torch.Tensor:
    flat = loss.reshape(loss.shape[0], -1)
    return flat.mean(1) if reduction == 1 else flat.sum(1)


# ---- elementwise losses: operands (the leading ones of the input's shape, then the weights),
# the reduction, then what the op takes after it (BCE's output mask, the entropy's base); every
# such op of the library gets these rules, found by its schema (_elementwise_ops)


def _elementwise(forward, backward, and_grad, leading: int, weights: int) -> None:
    count = leading + weights

    def batched(info, in_dims, operands):
        rank = _logical_rank(operands[0], in_dims[0])
        first = [_first(t, d, info.batch_size) for t, d in zip(operands[:leading], in_dims[:leading])]
        return first + [_aligned(t, d, rank) for t, d in zip(operands[leading:], in_dims[leading:])], rank

    def forward_rule(info, in_dims, *args):
        operands, (reduction, *rest) = batched(info, in_dims, args[:count])[0], args[count:]
        loss = forward(*operands, 0, *rest)
        return (loss, 0) if reduction == 0 else (_per_sample(loss, reduction), 0)

    def backward_rule(info, in_dims, grad, *args):
        (operands, rank), (reduction, *rest) = batched(info, in_dims[1:], args[:count]), args[count:]
        if reduction == 0:
            grad = _aligned(grad, in_dims[0], rank)
        else:  # a gradient per sample, spread over its elements (mean: each 1/n of it)
            grad = grad.movedim(in_dims[0], 0).reshape((-1,) + (1,) * rank) if in_dims[0] is not None else grad
            if reduction == 1:
                grad = grad / operands[0][0].numel()
        result = backward(grad, *operands, 0, *rest)
        return result, _dims(result)

    def and_grad_rule(info, in_dims, *args):
        loss, _ = forward_rule(info, in_dims, *args)
        ones = torch.ones(info.batch_size, dtype=loss.dtype, device=loss.device)
        grads, _ = backward_rule(info, (0, *in_dims), ones, *args[:count], args[count], [True, False])
        return (loss, grads[0]), (0, 0)

    _rule(forward)(forward_rule)
    _rule(backward)(backward_rule)
    if and_grad is not None:
        _rule(and_grad)(and_grad_rule)


def _elementwise_ops():
    """The elementwise losses, known by their schemas (Elementwise<Op>'s, csrc/torch/elementwise.h):
    an op `name(Tensor..., Tensor?..., int reduction, ...)` with a `_name_backward` op, and
    maybe a `_name_and_grad` op; the required tensors have the input's shape, the optional ones
    (weights) broadcast to it."""
    names = {name.split("::")[1] for name in torch._C._dispatch_get_all_op_names() if name.startswith("fusedgan::")}
    for name in sorted(names):
        arguments = getattr(_ops, name).default._schema.arguments
        if f"_{name}_backward" not in names or "reduction" not in [a.name for a in arguments]:
            continue
        operands = arguments[: [a.name for a in arguments].index("reduction")]
        leading = sum(1 for a in operands if not isinstance(a.type, torch._C.OptionalType))
        and_grad = getattr(_ops, f"_{name}_and_grad").default if f"_{name}_and_grad" in names else None
        yield getattr(_ops, name).default, getattr(_ops, f"_{name}_backward").default, and_grad, leading, len(operands) - leading


for _forward, _backward, _and_grad, _leading, _weights in _elementwise_ops():
    _elementwise(_forward, _backward, _and_grad, _leading, _weights)


# ---- the GAN costs, per sample, from BCE with logits (J(D), and J(G) of the logistic kinds)


def _bce_terms(logits: torch.Tensor, label: float) -> torch.Tensor:
    return _ops.binary_cross_entropy_with_logits.default(logits, torch.full_like(logits, label), None, None, 0)


def _bce_derivative(logits: torch.Tensor, label: float, scale: torch.Tensor) -> torch.Tensor:
    target = torch.full_like(logits, label)
    return _ops._binary_cross_entropy_with_logits_backward.default(scale, logits, target, None, None, 0, [True, False])[0]


def _per_sample_count(t: torch.Tensor) -> torch.Tensor:
    return t[0].numel()


@_rule(_ops.discriminator_cost.default)
def _discriminator_cost(info, in_dims, real, fake, real_label, fake_label):
    real, fake = _first(real, in_dims[0], info.batch_size), _first(fake, in_dims[1], info.batch_size)
    return 0.5 * _per_sample(_bce_terms(real, real_label), 1) + 0.5 * _per_sample(_bce_terms(fake, fake_label), 1), 0


@_rule(_ops._discriminator_cost_and_grad.default)
def _discriminator_cost_and_grad(info, in_dims, real, fake, real_label, fake_label):
    cost, _ = _discriminator_cost(info, in_dims, real, fake, real_label, fake_label)
    real, fake = _first(real, in_dims[0], info.batch_size), _first(fake, in_dims[1], info.batch_size)
    half_mean = lambda t: torch.tensor(0.5 / _per_sample_count(t), dtype=t.dtype, device=t.device)  # noqa: E731
    grads = (_bce_derivative(real, real_label, half_mean(real)), _bce_derivative(fake, fake_label, half_mean(fake)))
    return (cost, *grads), (0, 0, 0)


# J(G) = sign * mean(bce(x, label)) for the logistic kinds; -1/2 mean(exp(x)) otherwise
_GENERATOR_KINDS = {"minimax": (-0.5, 0.0), "non_saturating": (0.5, 1.0)}


@_rule(_ops.generator_cost.default)
def _generator_cost(info, in_dims, fake, kind):
    fake = _first(fake, in_dims[0], info.batch_size)
    if kind not in _GENERATOR_KINDS:  # maximum_likelihood (the op's autograd kernel has checked the kind)
        return _per_sample(-0.5 * torch.exp(fake), 1), 0
    sign, label = _GENERATOR_KINDS[kind]
    return sign * _per_sample(_bce_terms(fake, label), 1), 0


@_rule(_ops._generator_cost_and_grad.default)
def _generator_cost_and_grad(info, in_dims, fake, kind):
    cost, _ = _generator_cost(info, in_dims, fake, kind)
    fake = _first(fake, in_dims[0], info.batch_size)
    n = _per_sample_count(fake)
    if kind in _GENERATOR_KINDS:
        sign, label = _GENERATOR_KINDS[kind]
        grad = _bce_derivative(fake, label, torch.tensor(sign / n, dtype=fake.dtype, device=fake.device))
    else:
        grad = -0.5 / n * torch.exp(fake)
    return (cost, grad), (0, 0)


@_rule(_ops.discriminator_stats.default)
def _discriminator_stats(info, in_dims, real, fake):
    real, fake = _first(real, in_dims[0], info.batch_size), _first(fake, in_dims[1], info.batch_size)
    real, fake = real.reshape(info.batch_size, -1), fake.reshape(info.batch_size, -1)
    right = ((real > 0).sum(1) + (fake < 0).sum(1)).to(real.dtype) / (real.shape[1] + fake.shape[1])
    return torch.stack([torch.sigmoid(real).mean(1), torch.sigmoid(fake).mean(1), right], 1), 0


# ---- label counts (the categorical log-likelihood's): the vmapped dim's rows and the others' as one


@_rule(_ops._label_counts.default)
def _label_counts(info, in_dims, labels, classes):
    labels = labels.movedim(in_dims[0], 0)
    return _ops._label_counts.default(labels.flatten(0, 1), classes).unflatten(0, labels.shape[:2]), 0


# ---- the Newton fits' helpers: per set along the last dim (any leading dims are sets), and elementwise


@_rule(_ops._log_sums.default)
def _log_sums(info, in_dims, x):
    return _ops._log_sums.default(x.movedim(in_dims[0], 0)), 0


@_rule(_ops._digamma_and_trigamma.default)
def _digamma_and_trigamma(info, in_dims, x):
    return _ops._digamma_and_trigamma.default(x), (in_dims[0], in_dims[0])


# ---- the entropies along a dim: the vmapped dim first, the op's dim shifted past it


def _along(x, dim):
    """x (batch, *logical) as an entropy op takes it, and the dim; a sample of 0 dims is one row."""
    return (x.unsqueeze(-1), -1) if x.dim() == 1 else (x, dim if dim < 0 else dim + 1)


def _entropy(forward, backward) -> None:
    along = _along

    @_rule(forward)
    def forward_rule(info, in_dims, x, dim, base):
        return forward(*along(x.movedim(in_dims[0], 0), dim), base), 0

    @_rule(backward)
    def backward_rule(info, in_dims, grad, x, dim, base):
        x = _first(x, in_dims[1], info.batch_size)
        grad = _first(grad, in_dims[0], info.batch_size)
        rows, along_dim = along(x, dim)
        return backward(grad, rows, along_dim, base).reshape(x.shape), 0


_entropy(_ops.entropy.default, _ops._entropy_backward.default)
_entropy(_ops.entropy_with_logits.default, _ops._entropy_with_logits_backward.default)


@_rule(_ops._entropy_with_logits_and_grad.default)
def _entropy_with_logits_and_grad(info, in_dims, x, dim, base):
    x = x.movedim(in_dims[0], 0)
    entropy, grad = _ops._entropy_with_logits_and_grad.default(*_along(x, dim), base)
    return (entropy, grad.reshape(x.shape)), (0, 0)


# ---- the log-likelihoods: data and parameters aligned from the right, dims shifted past the
# vmapped one; the backward expands every argument to the batch, for per-sample gradients


def _loglik_layout(info, in_dims, tensors, dim, expand: bool):
    rank = max(_logical_rank(t, d) for t, d in zip(tensors, in_dims))
    batch = info.batch_size if expand else None
    aligned = [_aligned(t, d, rank, batch) for t, d in zip(tensors, in_dims)]
    dims = list(range(1, rank + 1)) if dim is None else [d if d < 0 else d + 1 for d in dim]
    return aligned, dims, rank


@_rule(_ops.log_likelihood.default)
def _log_likelihood(info, in_dims, family, x, a, b, c, dim):
    (x, a, b, c), dims, _ = _loglik_layout(info, in_dims[1:5], [x, a, b, c], dim, expand=False)
    return _ops.log_likelihood.default(family, x, a, b, c, dims), 0


@_rule(_ops._log_likelihood_backward.default)
def _log_likelihood_backward(info, in_dims, grad, family, x, a, b, c, dim, mask):
    arguments = [x, a, b, c]
    logical = [None if t is None else (t.shape if d is None else t.movedim(d, 0).shape[1:])
               for t, d in zip(arguments, in_dims[2:6])]
    aligned, dims, rank = _loglik_layout(info, in_dims[2:6], arguments, dim, expand=True)
    grad = _first(grad, in_dims[0], info.batch_size)
    grads = _ops._log_likelihood_backward.default(grad, family, *aligned, dims, mask)
    result = tuple(_unaligned(g, shape) for g, shape in zip(grads, logical))
    return result, _dims(result)


@_rule(_ops._log_likelihood_and_grad.default)
def _log_likelihood_and_grad(info, in_dims, family, x, a, b, c, dim, mask):
    params = [a, b, c]
    logical = [None if t is None else (t.shape if d is None else t.movedim(d, 0).shape[1:])
               for t, d in zip(params, in_dims[2:5])]
    aligned, dims, _ = _loglik_layout(info, in_dims[1:5], [x, *params], dim, expand=True)
    value, *grads = _ops._log_likelihood_and_grad.default(family, *aligned, dims, mask)
    result = (value, *(_unaligned(g, shape) for g, shape in zip(grads, logical)))
    return result, _dims(result)


# ---- the ops over data sets of points (the normal mixture, the multivariate normal): batch
# dims aligned from the right, the per-set dims (each argument's `tails`) as they are


def _sets_layout(info, in_dims, arguments, tails, expand: bool):
    rank = max(_logical_rank(t, d) - tail for t, d, tail in zip(arguments, in_dims, tails))
    batch = info.batch_size if expand else None
    return [_aligned(t, d, rank + tail, batch) for t, d, tail in zip(arguments, in_dims, tails)]


def _sets_op(forward, backward, tails) -> None:
    count = len(tails)

    @_rule(forward)
    def forward_rule(info, in_dims, *arguments):
        return forward(*_sets_layout(info, in_dims, arguments, tails, False)), 0

    @_rule(backward)
    def backward_rule(info, in_dims, grad, *args):
        arguments, mask = args[:count], args[count]
        logical = [t.shape if d is None else t.movedim(d, 0).shape[1:] for t, d in zip(arguments, in_dims[1:])]
        aligned = _sets_layout(info, in_dims[1:count + 1], arguments, tails, True)
        grads = backward(_first(grad, in_dims[0], info.batch_size), *aligned, mask)
        result = tuple(_unaligned(g, shape) for g, shape in zip(grads, logical))
        return result, _dims(result)


# x (N, D), logits (K,), loc and scale (K, D)
_MIXTURE_TAILS = (2, 1, 2, 2)
_sets_op(_ops.normal_mixture_log_likelihood.default, _ops._normal_mixture_log_likelihood_backward.default, _MIXTURE_TAILS)
# x (N, D), loc (D,), scale_tril (D, D)
_MULTIVARIATE_NORMAL_TAILS = (2, 1, 2)
_sets_op(_ops.multivariate_normal_log_likelihood.default, _ops._multivariate_normal_log_likelihood_backward.default,
         _MULTIVARIATE_NORMAL_TAILS)


@_rule(_ops._multivariate_normal_log_likelihood_and_grad.default)
def _multivariate_normal_log_likelihood_and_grad(info, in_dims, x, loc, scale_tril, mask):
    logical = [t.shape if d is None else t.movedim(d, 0).shape[1:] for t, d in zip((loc, scale_tril), in_dims[1:3])]
    aligned = _sets_layout(info, in_dims[:3], (x, loc, scale_tril), _MULTIVARIATE_NORMAL_TAILS, True)
    value, *grads = _ops._multivariate_normal_log_likelihood_and_grad.default(*aligned, mask)
    result = (value, *(_unaligned(g, shape) for g, shape in zip(grads, logical)))
    return result, _dims(result)


@_rule(_ops._normal_mixture_em.default)
def _normal_mixture_em(info, in_dims, x, logits, loc, scale, *settings):  # the mixture's arguments, then EM's
    fit = _ops._normal_mixture_em.default(*_sets_layout(info, in_dims[:4], (x, logits, loc, scale), _MIXTURE_TAILS, False),
                                          *settings)
    return fit, _dims(fit)
