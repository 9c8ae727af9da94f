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


def _squared_distances(centres: Tensor, points: Tensor) -> Tensor:
    """(..., C, N): the squared distance from each of the centres (..., C, D) to each point (..., N, D)."""
    return (centres.unsqueeze(-2) - points.unsqueeze(-3)).pow(2).sum(-1)


def _gather_points(points: Tensor, indices: Tensor) -> Tensor:
    """(..., I, D): the points (..., N, D) at the indices (..., I) of each set."""
    return points.gather(-2, indices.unsqueeze(-1).expand(*indices.shape, points.shape[-1]))


def _kmeans_plusplus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k centres per set, (..., K, D), by greedy k-means++ (as scikit-learn's kmeans_plusplus):
    the first a point drawn uniformly, each next the best of 2 + floor(log k) candidates drawn
    with probability proportional to the squared distance to the nearest centre so far, the
    best leaving the smallest sum of those distances."""
    batch, n = points.shape[:-2], points.shape[-2]
    trials = 2 + int(math.log(k))

    def uniform(count: int) -> Tensor:  # drawn on the CPU, so that a seed gives the same centres on every device
        return torch.rand(*batch, count, generator=generator, dtype=torch.float64).to(points.device, points.dtype)

    first = (uniform(1) * n).long().clamp_max(n - 1)
    centres = [_gather_points(points, first)]
    nearest = _squared_distances(centres[0], points).squeeze(-2)  # (..., N)
    for _ in range(1, k):
        cumulative = nearest.cumsum(-1)
        candidates = torch.searchsorted(cumulative, uniform(trials) * cumulative[..., -1:]).clamp_max(n - 1)
        candidate_points = _gather_points(points, candidates)  # (..., trials, D)
        distances = torch.minimum(nearest.unsqueeze(-2), _squared_distances(candidate_points, points))
        best = distances.sum(-1).argmin(-1, keepdim=True)  # (..., 1)
        centres.append(_gather_points(candidate_points, best))
        nearest = distances.gather(-2, best.unsqueeze(-1).expand(*batch, 1, n)).squeeze(-2)
    return torch.cat(centres, -2)


def _maximisation(loc: Tensor, counts: Tensor, deviations: Tensor, squares: Tensor, reg_covar: float) -> dict[str, Tensor]:
    """EM's M step from the E step's sums about `loc` (counts Σr, deviations Σr (x - loc),
    squares Σr (x - loc)²), as scikit-learn's: 10 ε added to the counts, so that an empty
    component keeps finite parameters, and `reg_covar` to the variances."""
    counts = counts + 10 * torch.finfo(counts.dtype).eps
    shift = deviations / counts.unsqueeze(-1)
    variance = squares / counts.unsqueeze(-1) - shift * shift + reg_covar
    return {"logits": (counts / counts.sum(-1, keepdim=True)).log(), "loc": loc + shift, "scale": variance.sqrt()}


def _kmeans_plusplus_start(points: Tensor, k: int, generator: torch.Generator, reg_covar: float) -> dict[str, Tensor]:
    """The parameters of each point assigned to its nearest k-means++ centre: the clusters'
    shares, means and variances."""
    centres = _kmeans_plusplus(points, k, generator)
    labels = _squared_distances(centres, points).argmin(-2)  # (..., N)
    members = torch.nn.functional.one_hot(labels, k).to(points.dtype).mT  # (..., K, N)
    deviations = points - _gather_points(centres, labels)  # from each point's centre
    return _maximisation(centres, members.sum(-1), members @ deviations, members @ deviations.pow(2), reg_covar)


def _expectation_maximisation(points: Tensor, start: dict[str, Tensor], tol: float, max_iter: int, reg_covar: float):
    """EM from `start` on the sets (S, N, D): the parameters, each set's last lower bound (its
    mean log-likelihood per point before the last M step, as scikit-learn's), iterations and
    convergence. The iterations carry the sets still running alone (few ops per iteration);
    a set that stops has its results stored and is left out of the later iterations."""
    sets, n = points.shape[0], points.shape[1]
    result = {name: value.clone() for name, value in start.items()}
    lower_bound = torch.full((sets,), -math.inf, dtype=torch.float64, device=points.device)
    iterations = torch.zeros(sets, dtype=torch.int64, device=points.device)
    converged = torch.zeros(sets, dtype=torch.bool, device=points.device)
    active, active_points, params, bound = torch.arange(sets, device=points.device), points, start, lower_bound
    for iteration in range(1, max_iter + 1):
        # the E step in the data's dtype, the parameters rounded to it (the sums are about that loc)
        logits, loc, scale = (params[name].to(points.dtype) for name in ("logits", "loc", "scale"))
        log_likelihood, counts, deviations, squares = torch.ops.fusedgan._normal_mixture_em_statistics(
            active_points, logits, loc, scale)
        params = _maximisation(loc.double(), counts, deviations, squares, reg_covar)
        previous, bound = bound, log_likelihood / n
        done = (bound - previous).abs() < tol
        stops = done if iteration < max_iter else torch.ones_like(done)
        if stops.any():
            stopped = active[stops]
            for name, value in params.items():
                result[name][stopped] = value[stops]
            lower_bound[stopped], iterations[stopped], converged[stopped] = bound[stops], iteration, done[stops]
            running = ~stops
            active, active_points, bound = active[running], active_points[running], bound[running]
            params = {name: value[running] for name, value in params.items()}
            if active.numel() == 0:
                break
    return result, lower_bound, iterations, converged


def _mixture_start(init: dict, batch: torch.Size, d: int, k: int | None, device: torch.device) -> dict[str, Tensor]:
    """The given initial parameters, checked and broadcast to the batch, in float64 on `device`."""
    if not isinstance(init, dict) or set(init) != {"logits", "loc", "scale"}:
        raise ValueError('fit: normal_mixture init must be "k-means++" or a dict of "logits", "loc" and "scale"')
    params = {name: torch.as_tensor(value).detach().to(device, torch.float64) for name, value in init.items()}
    components = params["logits"].shape[-1] if params["logits"].dim() else 0
    for name, tail in (("logits", (components,)), ("loc", (components, d)), ("scale", (components, d))):
        value = params[name]
        if value.dim() < len(tail) or tuple(value.shape[value.dim() - len(tail):]) != tail:
            raise ValueError(f"fit: normal_mixture init[{name!r}] must be (..., {', '.join(map(str, tail))}) "
                             f"(K = {components} components of D = {d} coordinates), got {tuple(value.shape)}")
        try:
            params[name] = value.expand(*batch, *tail)
        except RuntimeError:
            raise ValueError(f"fit: normal_mixture init[{name!r}] of shape {tuple(value.shape)} does not broadcast "
                             f"to the data sets {tuple(batch)}") from None
    if k is not None and k != components:
        raise ValueError(f"fit: normal_mixture init has {components} components but k = {k}")
    if components < 1 or not all(p.isfinite().all() for p in params.values()) or not (params["scale"] > 0).all():
        raise ValueError("fit: normal_mixture init needs at least one component, finite values and positive scales")
    return params


@_fits("normal_mixture")
def _normal_mixture(
    x: Tensor, dim: int, *, k: int | None = None, init: str | dict = "k-means++", n_init: int = 1, seed: int = 0,
    tol: float = 1e-3, max_iter: int = 100, reg_covar: float = 1e-6,
) -> Estimate:
    """EM for a diagonal mixture of `k` components, every set at once, as scikit-learn's
    `GaussianMixture(covariance_type="diag")`: `x` is `(..., N, D)` with the points along `dim`
    (default -2 for this family) and the coordinates last; starts from k-means++ centres drawn
    with `seed` (or from the parameters `init` gives, which then set `k`) and keeps each set's
    best of `n_init` starts; a set stops when its mean log-likelihood per point changes by less
    than `tol`, or after `max_iter` iterations; `reg_covar` is added to the variances.

    `init="k-means++"` assigns each point to the nearest of k centres chosen per set by greedy
    k-means++ and starts from those clusters' shares, means and variances. Otherwise `init` is
    a dict of starting parameters keyed like the result, broadcast to the data sets:
    `"logits"` (..., K), `"loc"` and `"scale"` (..., K, D); scikit-learn's `weights_init`,
    `means_init` and `precisions_init` are `logits = log(weights)`, `loc = means` and
    `scale = precisions ** -0.5`. Each iteration is scikit-learn's: the E step's mean
    log-likelihood (its lower bound) is compared with the previous iteration's, and the M step
    is taken either way. Of several starts (`n_init`, with k-means++ only) each set keeps the
    one whose last lower bound is highest. The E step is one fused pass over the points
    (`torch.ops.fusedgan._normal_mixture_em_statistics`) in the data's dtype (float32 for
    16-bit data), its sums in float64; the parameters are kept in float64 and returned in the
    data's dtype. The Estimate gives per set the iterations of the start kept and whether it
    converged."""
    if x.dim() < 2:
        raise ValueError("fit: normal_mixture data must be (..., N, D)")
    if isinstance(init, str):
        if init != "k-means++":
            raise ValueError(f'fit: normal_mixture init must be "k-means++" or a dict of parameters, got {init!r}')
        if k is None or k < 1:
            raise ValueError("fit: the normal_mixture family needs k= (the number of components, at least 1)")
    elif n_init != 1:
        raise ValueError("fit: normal_mixture with given init parameters runs once (n_init=1)")
    if n_init < 1 or max_iter < 1 or tol < 0 or reg_covar < 0:
        raise ValueError("fit: normal_mixture needs n_init >= 1, max_iter >= 1, tol >= 0 and reg_covar >= 0")
    points = x.movedim(dim, -2)
    batch, (n, d) = points.shape[:-2], points.shape[-2:]
    start = None if isinstance(init, str) else _mixture_start(init, batch, d, k, x.device)
    k = k if start is None else start["logits"].shape[-1]
    if n < k:
        raise ValueError(f"fit: normal_mixture needs at least k = {k} points per data set, got {n}")
    sets = points.to(torch.promote_types(x.dtype, torch.float32)).reshape(-1, n, d).contiguous()  # the E step's dtype
    generator = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(n_init):
        if start is None:
            begin = _kmeans_plusplus_start(sets.double(), k, generator, reg_covar)  # no copy for float64 data
        else:
            begin = {"logits": start["logits"].reshape(-1, k), "loc": start["loc"].reshape(-1, k, d),
                     "scale": start["scale"].reshape(-1, k, d)}
        result = _expectation_maximisation(sets, begin, tol, max_iter, reg_covar)
        if best is None:
            best = result
            continue
        better = result[1] > best[1]  # per set, the first of equal starts kept
        best = ({name: torch.where(better.view(-1, *[1] * (value.dim() - 1)), result[0][name], value)
                 for name, value in best[0].items()},
                *(torch.where(better, new, old) for new, old in zip(result[1:], best[1:])))
    params, _, iterations, converged = best
    shapes = {"logits": (*batch, k), "loc": (*batch, k, d), "scale": (*batch, k, d)}
    return Estimate({name: value.reshape(shapes[name]).to(x.dtype) for name, value in params.items()},
                    iterations.reshape(batch), converged.reshape(batch))


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
        dim = -2 if family == "normal_mixture" else -1
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
