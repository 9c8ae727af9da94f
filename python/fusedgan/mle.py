"""Maximum-likelihood fits, batched over data sets: theta_ML = argmax sum_i log f(x_i; theta)
(the source notes, section 1).

``fit(family, x, dim=-1)`` treats every index of the other dims as its own data set and
returns a dict of parameters keyed like the family's log-likelihood function, each with
``dim`` removed: ``normal_log_likelihood(x, **{k: v.unsqueeze(dim) for k, v in p.items()})``
is the maximised log-likelihood of each set.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from . import functional as F

__all__ = ["fit", "FAMILIES"]


class Estimate(NamedTuple):
    """What a fit routine returns: the parameters (keyed like the log-likelihood's arguments,
    `dim` removed) and, for iterative methods, per data set the iterations taken and whether
    the set converged (None: a closed form, 0 iterations and converged)."""

    params: dict[str, Tensor]
    iterations: Optional[Tensor] = None  # int64, one per data set
    converged: Optional[Tensor] = None  # bool, one per data set


# The fit routine of each family: those of the compiled list (fusedgan.families), and the
# categorical and normal mixture, whose log-likelihoods are ops of their own.
FAMILIES: dict[str, Callable[..., Estimate]] = {}


def _fits(family: str):
    """Registers the decorated function as the fit routine of `family`."""

    def register(routine):
        FAMILIES[family] = routine
        return routine

    return register


@_fits("normal")
def _normal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the mean and the biased standard deviation (as `scipy.stats.norm.fit`)."""
    loc = x.mean(dim)
    return Estimate({"loc": loc, "scale": (x - loc.unsqueeze(dim)).pow(2).mean(dim).sqrt()})  # biased, as scipy.stats.norm.fit


@_fits("exponential")
def _exponential(x: Tensor, dim: int) -> Estimate:
    """Closed form: 1 / mean, location 0; the data must not be negative."""
    if (x < 0).any():
        raise ValueError("fit: exponential data must not be negative")
    return Estimate({"rate": 1 / x.mean(dim)})  # location fixed at 0


@_fits("poisson")
def _poisson(x: Tensor, dim: int) -> Estimate:
    """Closed form: the mean; the counts must not be negative."""
    if (x < 0).any():
        raise ValueError("fit: poisson data (counts) must not be negative")
    return Estimate({"rate": x.mean(dim)})


@_fits("bernoulli")
def _bernoulli(x: Tensor, dim: int) -> Estimate:
    """Closed form: the logit of the mean (±inf for all-ones or all-zeros sets); the data must
    lie in [0, 1]."""
    if ((x < 0) | (x > 1)).any():
        raise ValueError("fit: bernoulli data must lie in [0, 1]")
    return Estimate({"logits": torch.logit(x.mean(dim))})  # +-inf for all-ones or all-zeros sets


@_fits("laplace")
def _laplace(x: Tensor, dim: int) -> Estimate:
    """Closed form: the median (the middle two averaged) and the mean absolute deviation from it."""
    loc = torch.quantile(x, 0.5, dim=dim)  # the median, the middle two averaged as numpy does
    return Estimate({"loc": loc, "scale": (x - loc.unsqueeze(dim)).abs().mean(dim)})


@_fits("categorical")
def _categorical(x: Tensor, dim: int, *, num_classes: int | None = None) -> Estimate:
    """Closed form: log frequencies (−inf for classes never seen), of shape
    `(..., num_classes)`; `x` holds integer labels in [0, num_classes) as floats."""
    if num_classes is None:
        raise ValueError("fit: the categorical family needs num_classes=")
    labels = x.movedim(dim, -1).long()
    if not torch.equal(labels.to(x.dtype), x.movedim(dim, -1)) or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"fit: categorical data must be integer labels in [0, {num_classes})")
    counts = torch.nn.functional.one_hot(labels, num_classes).sum(-2).to(x.dtype)
    return Estimate({"logits": torch.log(counts / labels.shape[-1])})  # -inf for classes never seen


_LOG_DF_LIMIT = math.log(1e6)


def _student_t_newton_system(data: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """Per data set, the gradient (..., 3) and Hessian (..., 3, 3) of the Student's t
    log-likelihood over theta = (log df, loc, log scale), in closed form: with
    z = (x - loc) / scale and t = z^2 + df, every entry is a combination of the per-set sums
    of log1p(z^2/df), z/t, z^2/t and z^k/t^2 (k = 0..4), so one elementwise pass over the
    data replaces two rounds of double backward."""
    df = theta[..., :1].exp()
    scale = theta[..., 2:].exp()
    n = data.shape[-1]
    z = (data - theta[..., 1:2]) / scale
    z2 = z * z
    inv_t = 1 / (z2 + df)
    inv_t2 = inv_t * inv_t
    log_w = torch.log1p(z2 / df).sum(-1)
    b1, b2 = (z * inv_t).sum(-1), (z2 * inv_t).sum(-1)
    c0, c1, c2 = inv_t2.sum(-1), (z * inv_t2).sum(-1), (z2 * inv_t2).sum(-1)
    c3, c4 = (z2 * z * inv_t2).sum(-1), (z2 * z2 * inv_t2).sum(-1)
    df, scale = df[..., 0], scale[..., 0]
    half_df, half_df1 = df / 2, (df + 1) / 2
    digammas = torch.digamma(half_df1) - torch.digamma(half_df)
    trigammas = torch.polygamma(1, half_df1) - torch.polygamma(1, half_df)
    d_log_df = half_df * (n * digammas - log_w) + ((df + 1) * b2 - n) / 2
    gradient = torch.stack([d_log_df, (df + 1) * b1 / scale, (df + 1) * b2 - n], -1)
    h_aa = half_df * (n * digammas - log_w) + n * half_df**2 * trigammas + df * b2 - half_df1 * df * c2
    h_am = df * (c3 - c1) / scale
    h_as = df * (c4 - c2)
    h_mm = (df + 1) * (c2 - df * c0) / scale**2
    h_ms = -2 * (df + 1) * df * c1 / scale
    h_ss = -2 * (df + 1) * df * c2
    hessian = torch.stack([torch.stack([h_aa, h_am, h_as], -1), torch.stack([h_am, h_mm, h_ms], -1),
                           torch.stack([h_as, h_ms, h_ss], -1)], -2)
    return gradient, hessian


@_fits("student_t")
def _student_t(x: Tensor, dim: int, *, max_iter: int = 100, tolerance: float = 1e-9) -> Estimate:
    """Newton's method on (log df, loc, log scale), every set at once, from the median, the
    scaled median absolute deviation and df = 5; gradients and 3 × 3 Hessians in closed form,
    step halving per set; df beyond 10⁶ is taken as the normal limit.

    Each iteration takes the sets' gradients and Hessians (_student_t_newton_system), a Newton
    step where the Hessian is negative definite and a gradient step elsewhere, and halves the
    step per set until the fused log-likelihood does not decrease; a set stops when its
    gradient is below ``tolerance`` or its log-likelihood stops rising."""
    data = x.movedim(dim, -1).double()
    median = data.median(-1, keepdim=True).values
    mad = (data - median).abs().median(-1, keepdim=True).values * 1.4826
    theta = torch.cat([torch.full_like(median, 5.0).log(), median, mad.clamp_min(1e-12).log()], -1)  # (..., 3)

    def clamped(theta: Tensor) -> Tensor:
        # exp of the clamped logs stays positive and finite whatever step a line search tries
        return torch.stack([theta[..., 0].clamp(-20.0, 30.0), theta[..., 1], theta[..., 2].clamp(-300.0, 300.0)], -1)

    def log_likelihood(theta: Tensor) -> Tensor:
        theta = clamped(theta)
        return F.student_t_log_likelihood(data, theta[..., :1].exp(), theta[..., 1:2], theta[..., 2:].exp())

    done = torch.zeros(theta.shape[:-1], dtype=torch.bool, device=theta.device)
    iterations = torch.zeros(theta.shape[:-1], dtype=torch.int64, device=theta.device)
    value = log_likelihood(theta)
    for _ in range(max_iter):
        gradient, hessian = _student_t_newton_system(data, clamped(theta))
        # at df > 1e6 the t density is the normal one to about 1e-6: the limit, as good as reached
        done |= (gradient.abs().amax(-1) < tolerance) | (theta[..., 0] > _LOG_DF_LIMIT)
        moving = ~done
        if not moving.any():
            break
        iterations += moving
        newton, info = torch.linalg.solve_ex(hessian, -gradient.unsqueeze(-1))
        newton = newton.squeeze(-1)
        concave = (torch.linalg.eigvalsh(hessian).amax(-1, keepdim=True) < 0) & (info == 0).unsqueeze(-1)
        step = torch.where(concave, newton, gradient / gradient.norm(dim=-1, keepdim=True).clamp_min(1.0))
        scale = moving.to(value.dtype)
        slack = 1e-12 * value.abs()  # rounding: a converged set may not improve at all
        for _ in range(20):  # halve each set's step until its log-likelihood does not drop
            candidate = log_likelihood(theta + scale.unsqueeze(-1) * step)
            worse = (scale > 0) & ~(candidate >= value - slack)
            if not worse.any():
                break
            scale = torch.where(worse, scale / 2, scale)
        scale = torch.where(worse, torch.zeros_like(scale), scale)
        theta = theta + scale.unsqueeze(-1) * step
        new_value = torch.where(scale > 0, candidate, value)
        # a set whose log-likelihood no longer rises is at its optimum (or, with df
        # growing without bound, as close to the normal limit as it matters)
        done |= new_value <= value + slack
        value = new_value
    params = {"df": theta[..., 0].exp(), "loc": theta[..., 1], "scale": theta[..., 2].exp()}
    return Estimate({name: value.to(x.dtype) for name, value in params.items()}, iterations, done)


@_fits("normal_mixture")
def _normal_mixture(
    x: Tensor, dim: int, *, k: int | None = None, seed: int = 0, max_iter: int = 500, tolerance: float = 1e-10,
    min_scale: float = 1e-6,
) -> Estimate:
    """EM for a diagonal mixture of `k` components, every set at once; `x` is `(..., N, D)`
    with the points along `dim` (default -2 for this family) and the coordinates last; starts
    from `k` distinct points per set chosen with `seed`, equal weights and the set's spread;
    stops when no set's log-likelihood rises by more than `tolerance` relative; scales are
    kept at least `min_scale` (a component that collapses on one point would otherwise drive
    the likelihood to infinity)."""
    if k is None or k < 1:
        raise ValueError("fit: the normal_mixture family needs k= (the number of components, at least 1)")
    if x.dim() < 2:
        raise ValueError("fit: normal_mixture data must be (..., N, D)")
    points = x.movedim(dim, -2).double()
    n = points.shape[-2]
    if n < k:
        raise ValueError(f"fit: normal_mixture needs at least k = {k} points per data set, got {n}")
    generator = torch.Generator().manual_seed(seed)
    batch = points.shape[:-2]
    choice = torch.rand(*batch, n, generator=generator).argsort(-1)[..., :k].to(points.device)  # k distinct points per set
    loc = points.gather(-2, choice.unsqueeze(-1).expand(*batch, k, points.shape[-1]))
    scale = points.std(-2, keepdim=True).clamp_min(min_scale).expand_as(loc).clone()
    logits = torch.zeros(*batch, k, dtype=points.dtype, device=points.device)
    previous = torch.full(batch, -math.inf, dtype=points.dtype, device=points.device)
    converged = False
    for iteration in range(1, max_iter + 1):
        # E step: responsibilities (..., N, K)
        z = (points.unsqueeze(-2) - loc.unsqueeze(-3)) / scale.unsqueeze(-3)
        log_joint = torch.log_softmax(logits, -1).unsqueeze(-2) + (-0.5 * z * z - scale.log().unsqueeze(-3)).sum(-1)
        responsibilities = torch.softmax(log_joint, -1)
        # M step
        weight = responsibilities.sum(-2)  # (..., K)
        logits = weight.clamp_min(1e-300).log()
        loc = (responsibilities.unsqueeze(-1) * points.unsqueeze(-2)).sum(-3) / weight.unsqueeze(-1).clamp_min(1e-300)
        spread = (responsibilities.unsqueeze(-1) * (points.unsqueeze(-2) - loc.unsqueeze(-3)) ** 2).sum(-3)
        scale = (spread / weight.unsqueeze(-1).clamp_min(1e-300)).sqrt().clamp_min(min_scale)
        value = F.normal_mixture_log_likelihood(points, logits, loc, scale)
        if ((value - previous) <= tolerance * value.abs()).all():
            converged = True
            break
        previous = value
    params = {"logits": logits.to(x.dtype), "loc": loc.to(x.dtype), "scale": scale.to(x.dtype)}
    return Estimate(params, torch.full(batch, iteration), torch.full(batch, converged))


@_fits("multivariate_normal")
def _multivariate_normal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the sample mean and the Cholesky factor of the biased (1/N) sample
    covariance (the maximum-likelihood covariance, as `scipy.stats.multivariate_normal.fit`);
    `x` is `(..., N, D)` with the points along `dim` (default -2 for this family) and the
    coordinates last; the covariance must be positive definite (at least D + 1 points not
    all in one hyperplane)."""
    if x.dim() < 2:
        raise ValueError("fit: multivariate_normal data must be (..., N, D)")
    points = x.movedim(dim, -2)
    loc = points.mean(-2)
    centred = points - loc.unsqueeze(-2)
    covariance = centred.mT @ centred / points.shape[-2]
    scale_tril, info = torch.linalg.cholesky_ex(covariance)
    if (info != 0).any():
        raise ValueError("fit: a multivariate_normal data set has a singular sample covariance "
                         "(fewer than D + 1 points, or all in one hyperplane)")
    return Estimate({"loc": loc, "scale_tril": scale_tril})


def fit(family: str, x: Tensor, *, dim: int | None = None, **options) -> Estimate:
    """Maximum-likelihood parameters of ``family`` for each data set along ``dim``.

    Returns a dict keyed like the family's log-likelihood function, each parameter with ``dim``
    removed. Each family's method and ``options`` are those of its fit routine in
    ``FAMILIES`` (see its docstring; docs/api.md tabulates them). Unknown families, empty data
    sets, NaN and infinite data, and data outside the family's support raise ValueError.
    """
    if family not in FAMILIES:
        raise ValueError(f"fit: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError("fit: x must be a floating point tensor")
    if x.dim() == 0:
        raise ValueError("fit: x must have at least one dimension (the data points along dim)")
    if dim is None:
        dim = -2 if family in ("normal_mixture", "multivariate_normal") else -1
    dim = dim % x.dim() if -x.dim() <= dim < x.dim() else None
    if dim is None:
        raise ValueError(f"fit: dim is out of range for x of {x.dim()} dimensions")
    if x.shape[dim] == 0:
        raise ValueError("fit: the data sets are empty (dim has size 0)")
    if torch.isnan(x).any():
        raise ValueError("fit: x contains NaN")
    if torch.isinf(x).any():
        raise ValueError("fit: x contains an infinite value")
    return FAMILIES[family](x.detach(), dim, **options).params
