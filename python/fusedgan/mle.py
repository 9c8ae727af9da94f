"""Maximum-likelihood fits, batched over data sets: theta_ML = argmax sum_i log f(x_i; theta)
(the source notes, section 1).

``fit(family, x, dim=-1)`` treats every index of the other dims as its own data set and
returns a dict of parameters keyed like the family's log-likelihood function, each with
``dim`` removed: ``normal_log_likelihood(x, **{k: v.unsqueeze(dim) for k, v in p.items()})``
is the maximised log-likelihood of each set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor

from . import functional as F
from .families import FAMILIES as _LOG_LIKELIHOOD_FAMILIES

__all__ = ["fit", "FitResult", "FAMILIES", "FAILURES"]


class Estimate(NamedTuple):
    """What a fit routine returns: the parameters (keyed like the log-likelihood's arguments,
    `dim` removed) and, for iterative methods, per data set the iterations taken and whether
    the set converged (None: a closed form, 0 iterations and converged). `failures` names the
    sets the method itself found it cannot fit: reason -> mask per set."""

    params: dict[str, Tensor]
    iterations: Optional[Tensor] = None  # int64, one per data set
    converged: Optional[Tensor] = None  # bool, one per data set
    failures: dict[str, Tensor] = {}


# Why a data set was not fitted (FitResult.failure indexes this; 0: it was).
FAILURES = ("", "non-finite data", "outside the support", "too few points", "no spread", "all zero",
            "no finite maximum", "no finite estimate")


class _Support(NamedTuple):
    """Where a family's data must lie to be fitted: an interval, open or closed at each end,
    whose upper end may be an option's value per set (binomial's total_count), of whole
    numbers or not. A stand-in data set in it (with spread) replaces a set that cannot be fitted
    while the others are."""

    low: float = -math.inf
    high: float | str = math.inf  # or the name of the option that gives it
    open_low: bool = False
    open_high: bool = False
    whole: bool = False

    def contains(self, points: Tensor, low: Tensor, high: Tensor, options: dict) -> Tensor:
        """Per set, from its points and their minimum and maximum: every point inside."""
        top = torch.as_tensor(options[self.high] if isinstance(self.high, str) else self.high, dtype=high.dtype,
                              device=high.device)
        inside = (low > self.low if self.open_low else low >= self.low) & (high < top if self.open_high else high <= top)
        if self.whole:
            inside &= (points == points.floor()).flatten(len(low.shape)).all(-1)
        return inside

    def stand_in(self, points: int, options: dict) -> Tensor:
        low, high = (0.0, 1.0) if self.whole else (0.25, 0.75)
        if isinstance(self.high, str) and self.open_high and torch.as_tensor(options[self.high]).min() <= 1:
            high = 0.0  # a single category: every label 0
        return torch.where(torch.arange(points) % 2 == 0, low, high).double()


_REAL = _Support()
_POSITIVE = _Support(low=0.0, open_low=True)
_NON_NEGATIVE = _Support(low=0.0)
_OPEN_UNIT = _Support(low=0.0, high=1.0, open_low=True, open_high=True)
_UNIT = _Support(low=0.0, high=1.0)
_COUNTS = _Support(low=0.0, whole=True)


def _constant(low: Tensor, high: Tensor) -> Tensor:
    return low == high


def _all_zero(low: Tensor, high: Tensor) -> Tensor:  # of data that are not negative
    return high == 0


@dataclass(frozen=True)
class _Requirements:
    """What a family's data sets need to be fitted; the others are flagged, not fitted."""

    support: _Support = _REAL
    min_points: int = 1
    degenerate: Optional[tuple[str, Callable[[Tensor, Tensor], Tensor]]] = None  # (reason, (min, max) per set -> bool)
    fixed: tuple[str, ...] = ()  # parameters given by an option, not estimated
    normalised: tuple[str, ...] = ()  # logits that are normalised log-probabilities: one constraint each
    # (data sets (S, N[, D]), parameters (S, ...)) -> (S,); None: the compiled family's function
    log_likelihood: Optional[Callable[[Tensor, dict[str, Tensor]], Tensor]] = None
    points_are_vectors: bool = False  # data (..., N, D): the coordinates last
    triangular: tuple[str, ...] = ()  # (..., D, D) parameters of which the lower triangle alone is estimated
    in_float64: bool = True  # the routine gets the data in float64 (else in their own dtype)
    unbounded: tuple[str, ...] = ()  # parameters whose estimate may be infinite (logits of a probability 0 or 1)


# The fit routine of each family: those of the compiled list (fusedgan.families), and the
# categorical and normal mixture, whose log-likelihoods are ops of their own.
FAMILIES: dict[str, Callable[..., Estimate]] = {}
_REQUIREMENTS: dict[str, _Requirements] = {}


def _fits(family: str, **requirements):
    """Registers the decorated function as the fit routine of `family`, whose data sets need
    `requirements` (_Requirements' fields)."""

    def register(routine):
        FAMILIES[family] = routine
        _REQUIREMENTS[family] = _Requirements(**requirements)
        return routine

    return register


_SPREAD = dict(min_points=2, degenerate=("no spread", _constant))


def _polygammas(x: Tensor) -> tuple[Tensor, Tensor]:
    """digamma(x) and trigamma(x) of float64 x (> 0) in one fused pass, vectorised and in
    parallel (torch's are a scalar loop on one thread): the Newton fits' cost per iteration."""
    return torch.ops.fusedgan._digamma_and_trigamma(x)


@_fits("normal", **_SPREAD)
def _normal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the mean and the biased standard deviation (as `scipy.stats.norm.fit`)."""
    loc = x.mean(dim)
    scale = (x - loc.unsqueeze(dim)).pow(2).mean(dim).sqrt()  # biased, as scipy.stats.norm.fit
    return Estimate({"loc": loc, "scale": scale})


@_fits("exponential", support=_NON_NEGATIVE, degenerate=("all zero", _all_zero))
def _exponential(x: Tensor, dim: int) -> Estimate:
    """Closed form: 1 / mean, location 0."""
    return Estimate({"rate": 1 / x.mean(dim)})  # location fixed at 0


@_fits("poisson", support=_COUNTS, degenerate=("all zero", _all_zero))
def _poisson(x: Tensor, dim: int) -> Estimate:
    """Closed form: the mean."""
    return Estimate({"rate": x.mean(dim)})


@_fits("bernoulli", support=_UNIT, unbounded=("logits",))
def _bernoulli(x: Tensor, dim: int) -> Estimate:
    """Closed form: the logit of the mean (±inf for all-ones or all-zeros sets)."""
    return Estimate({"logits": torch.logit(x.mean(dim))})


@_fits("laplace", **_SPREAD)
def _laplace(x: Tensor, dim: int) -> Estimate:
    """Closed form: the median (the middle two averaged) and the mean absolute deviation from it."""
    loc = torch.quantile(x, 0.5, dim=dim)  # the median, the middle two averaged as numpy does
    return Estimate({"loc": loc, "scale": (x - loc.unsqueeze(dim)).abs().mean(dim)})


@_fits("categorical", support=_Support(low=0.0, high="num_classes", open_high=True, whole=True), normalised=("logits",),
       unbounded=("logits",), log_likelihood=lambda x, p: F.categorical_log_likelihood(x.long(), p["logits"].unsqueeze(-2)))
def _categorical(x: Tensor, dim: int, *, num_classes: int | None = None) -> Estimate:
    """Closed form: log frequencies (−inf for classes never seen), of shape
    `(..., num_classes)`; `x` holds integer labels in [0, num_classes) as floats."""
    labels = x.movedim(dim, -1).long()
    counts = torch.nn.functional.one_hot(labels, num_classes).sum(-2).double()
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
    (digamma1, digamma0), (trigamma1, trigamma0) = _polygammas(torch.stack([half_df1, half_df]))
    digammas, trigammas = digamma1 - digamma0, trigamma1 - trigamma0
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


@_fits("student_t", **_SPREAD)
def _student_t(x: Tensor, dim: int, *, max_iter: int = 100, tolerance: float = 1e-9) -> Estimate:
    """Newton's method on (log df, loc, log scale), every set at once, from the median, the
    scaled median absolute deviation and df = 5; gradients and 3 × 3 Hessians in closed form,
    step halving per set; df beyond 10⁶ is taken as the normal limit. Each set is first
    centred on its median and divided by that deviation (its half range where the deviation
    is 0), so that the steps, clamps and tolerance are the same for data of any scale.

    Each iteration takes the sets' gradients and Hessians (_student_t_newton_system), a Newton
    step where the Hessian is negative definite and a gradient step elsewhere, and halves the
    step per set until the fused log-likelihood does not decrease; a set stops when its
    gradient is below ``tolerance`` or its log-likelihood stops rising."""
    data = x.movedim(dim, -1)
    median = data.median(-1, keepdim=True).values
    spread = (data - median).abs().median(-1, keepdim=True).values * 1.4826
    half_range = (data.amax(-1, keepdim=True) - data.amin(-1, keepdim=True)) / 2
    spread = torch.where(spread > 0, spread, half_range)  # > 0 for a set with spread
    data = (data - median) / spread
    theta = torch.cat([torch.full_like(median, 5.0).log(), torch.zeros_like(median), torch.zeros_like(median)], -1)

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
    median, spread = median[..., 0], spread[..., 0]
    params = {"df": theta[..., 0].exp(), "loc": median + spread * theta[..., 1], "scale": spread * theta[..., 2].exp()}
    return Estimate(params, iterations, done)


def _decreasing_root(f_and_slope: Callable[[Tensor], tuple[Tensor, Tensor]], t: Tensor, low: float, high: float, *,
                     tolerance: float = 1e-13, max_iter: int = 200) -> tuple[Tensor, Tensor, Tensor]:
    """Per set, the root of a decreasing function f(t) in [low, high], from t: Newton steps,
    and bisection where a step would leave the bracket that the signs seen so far narrow, so
    every set converges whatever its start. Returns the roots, the iterations and whether
    each set converged (not where it ends at an end of the bracket: the root lies beyond)."""
    bracket = low, high
    low, high = torch.full_like(t, low), torch.full_like(t, high)
    iterations = torch.zeros(t.shape, dtype=torch.int64, device=t.device)
    converged = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    for _ in range(max_iter):
        f, slope = f_and_slope(t)
        low, high = torch.where(f > 0, t, low), torch.where(f < 0, t, high)
        newton = t - f / slope
        step = torch.where((newton > low) & (newton < high), newton, (low + high) / 2)  # NaN too
        step = torch.where(f == 0, t, step)
        moving = ~converged
        iterations += moving
        converged |= (step - t).abs() <= tolerance * (1 + t.abs())
        t = torch.where(moving, step, t)
        if converged.all():
            break
    inside = (t - bracket[0]).abs().minimum((t - bracket[1]).abs()) > 2 * tolerance * (1 + t.abs())
    return t, iterations, converged & inside


@_fits("lognormal", support=_POSITIVE, **_SPREAD)
def _lognormal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the normal fit of log(x), its mean and biased standard deviation."""
    return _normal(x.log(), dim)


@_fits("half_normal", support=_NON_NEGATIVE, degenerate=("all zero", _all_zero))
def _half_normal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the root mean square."""
    return Estimate({"scale": x.pow(2).mean(dim).sqrt()})


@_fits("geometric", support=_COUNTS, unbounded=("logits",))
def _geometric(x: Tensor, dim: int) -> Estimate:
    """Closed form: -log of the mean count (+inf where every count is 0)."""
    return Estimate({"logits": -x.mean(dim).log()})


@_fits("binomial", support=_Support(low=0.0, high="total_count", whole=True), fixed=("total_count",), unbounded=("logits",))
def _binomial(x: Tensor, dim: int, *, total_count: float | Tensor | None = None) -> Estimate:
    """Closed form: the logit of mean(k) / total_count (±inf where no trial or every trial
    succeeded); total_count, the number of trials, is given: a number, or a tensor of one per
    data set."""
    mean = x.mean(dim)
    trials = torch.as_tensor(total_count, dtype=torch.float64, device=x.device).expand(mean.shape)
    return Estimate({"total_count": trials.clone(), "logits": torch.logit(mean / trials)})


@_fits("gamma", support=_POSITIVE, **_SPREAD)
def _gamma(x: Tensor, dim: int) -> Estimate:
    """Newton on the profile likelihood, every set at once: the concentration a solves
    log(a) - digamma(a) = log(mean(x)) - mean(log(x)), in log a, bisection-safeguarded, from
    Minka's closed-form start; the rate is a / mean(x)."""
    data = x.movedim(dim, -1)
    mean = data.mean(-1)
    gap = mean.log() - data.log().mean(-1)  # > 0 by Jensen's inequality unless the set is constant
    start = (3 - gap + ((gap - 3) ** 2 + 24 * gap).sqrt()) / (12 * gap)

    def f_and_slope(t):
        a = t.exp()
        digamma, trigamma = _polygammas(a)
        return t - digamma - gap, 1 - a * trigamma

    t, iterations, converged = _decreasing_root(f_and_slope, start.log(), -50.0, 50.0)
    a = t.exp()
    return Estimate({"concentration": a, "rate": a / mean}, iterations, converged)


@_fits("weibull", support=_POSITIVE, **_SPREAD)
def _weibull(x: Tensor, dim: int) -> Estimate:
    """Newton on the profile likelihood, every set at once: the concentration k solves
    1/k + mean(log x) = sum(x^k log x) / sum(x^k), in log k, bisection-safeguarded, from the
    spread of log x; the scale is mean(x^k)^(1/k). The data are divided by their maximum first,
    so that x^k cannot overflow."""
    data = x.movedim(dim, -1)
    top = data.amax(-1)
    log_y = (data / top.unsqueeze(-1)).log()  # <= 0
    mean_log = log_y.mean(-1)

    def f_and_slope(t):
        k = t.exp()
        w = (k.unsqueeze(-1) * log_y).exp()
        total = w.sum(-1)
        m1, m2 = (w * log_y).sum(-1) / total, (w * log_y * log_y).sum(-1) / total
        return 1 / k + mean_log - m1, k * (-1 / k**2 - (m2 - m1 * m1))

    start = math.pi / (math.sqrt(6) * log_y.std(-1, correction=0))  # log x's spread is pi / (k sqrt 6)
    t, iterations, converged = _decreasing_root(f_and_slope, start.log(), -30.0, 30.0)
    k = t.exp()
    scale = top * (k.unsqueeze(-1) * log_y).exp().mean(-1) ** (1 / k)
    return Estimate({"scale": scale, "concentration": k}, iterations, converged)


_LOG_TOTAL_COUNT_LIMIT = math.log(1e8)


@_fits("negative_binomial", support=_COUNTS, degenerate=("all zero", _all_zero))
def _negative_binomial(x: Tensor, dim: int) -> Estimate:
    """Newton on the profile likelihood, every set at once: total_count r solves
    sum(digamma(k + r)) - N digamma(r) + N log(r / (r + mean(k))) = 0, in log r,
    bisection-safeguarded (r up to 10⁸), from the method of moments; logits = log(mean(k) / r).
    A set whose variance does not exceed its mean has no finite maximum (it lies at the Poisson
    limit, r infinite): flagged, as is one where they differ by rounding alone."""
    data = x.movedim(dim, -1)
    n = data.shape[-1]
    mean, var = data.mean(-1), data.var(-1, correction=0)

    def f_and_slope(t):
        r = t.exp()
        (digamma_shifted, trigamma_shifted), (digamma_r, trigamma_r) = _polygammas(data + r.unsqueeze(-1)), _polygammas(r)
        f = digamma_shifted.sum(-1) - n * digamma_r + n * (r.log() - (r + mean).log())
        slope = trigamma_shifted.sum(-1) - n * trigamma_r + n / r - n / (r + mean)
        return f, r * slope

    # the variance exceeds the mean by more than its rounding (relative to the mean square)
    overdispersed = var - mean > 16 * torch.finfo(data.dtype).eps * (var + mean * mean)
    start = torch.where(overdispersed, mean**2 / (var - mean), torch.ones_like(mean)).clamp(1e-6, 1e6)
    t, iterations, converged = _decreasing_root(f_and_slope, start.log(), -30.0, _LOG_TOTAL_COUNT_LIMIT)
    r = t.exp()
    return Estimate({"total_count": r, "logits": (mean / r).log()}, iterations, converged,
                    {"no finite maximum": ~overdispersed})


@_fits("von_mises", **_SPREAD)
def _von_mises(x: Tensor, dim: int) -> Estimate:
    """The mean direction, and the concentration k solving i1e(k) / i0e(k) = R, the mean
    resultant length: Newton in log k, bisection-safeguarded, from Best and Fisher's
    approximation. A set with R = 0 has its maximum at k = 0 (no preferred direction):
    flagged "no finite maximum"; one with R within rounding of 1 (every angle the same, up to
    turns of 2 pi) is flagged "no spread"."""
    data = x.movedim(dim, -1)
    c, s = data.cos().mean(-1), data.sin().mean(-1)
    r = torch.hypot(c, s)
    coincide = r >= 1 - 1e-15  # k > 10¹⁴: as good as a point mass
    r = r.clamp(max=1 - 1e-15)
    start = torch.where(r < 0.53, 2 * r + r**3 + 5 * r**5 / 6,
                        torch.where(r < 0.85, -0.4 + 1.39 * r + 0.43 / (1 - r), 1 / (r**3 - 4 * r**2 + 3 * r)))

    def f_and_slope(t):
        k = t.exp()
        a = torch.special.i1e(k) / torch.special.i0e(k)
        return r - a, -k * (1 - a / k - a * a)

    t, iterations, converged = _decreasing_root(f_and_slope, start.clamp_min(1e-12).log(), -30.0, 40.0)
    return Estimate({"loc": torch.atan2(s, c), "concentration": t.exp()}, iterations, converged,
                    {"no finite maximum": r == 0, "no spread": coincide})


@_fits("beta", support=_OPEN_UNIT, **_SPREAD)
def _beta(x: Tensor, dim: int, *, max_iter: int = 100, tolerance: float = 1e-10) -> Estimate:
    """Newton's method on (concentration1, concentration0), every set at once, from the method
    of moments: the log-likelihood is concave in them, and its gradient and Hessian per set
    need only mean(log x), mean(log(1 - x)) and di- and trigammas. A step that would leave the
    positive quadrant is halved. The tolerance is relative, on the steps: the Hessian of
    concentrated data is nearly singular, and rounding leaves steps of ~1e-12 there."""
    data = x.movedim(dim, -1)
    # the sums of log x and of log(1 - x) in one fused pass; each parameter its own contiguous
    # tensor below, as the elementwise ops on them are the iteration's cost
    mean_log, mean_log_complement = (torch.ops.fusedgan._log_sums(data) / data.shape[-1]).movedim(-1, 0).contiguous()
    mean = data.mean(-1)
    var = torch.einsum("...i,...i->...", data, data) / data.shape[-1] - mean * mean  # a start: no need of two passes
    common = (mean * (1 - mean) / var - 1).clamp_min(1e-3)  # > 0 for data in (0, 1) with spread
    a, b = mean * common, (1 - mean) * common
    iterations = torch.zeros(mean.shape, dtype=torch.int64, device=x.device)
    converged = torch.zeros(mean.shape, dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        (digamma_a, digamma_b, digamma_both), (t1, t0, t) = _polygammas(torch.stack([a, b, a + b]))
        g1, g0 = digamma_both - digamma_a + mean_log, digamma_both - digamma_b + mean_log_complement
        # the Hessian [[t - t1, t], [t, t - t0]] with t = trigamma(a + b), t1, t0 = trigamma(a), trigamma(b): its inverse
        # in closed form, which spares 10,000 sets a batched solve
        determinant = t1 * t0 - t * (t1 + t0)
        step1, step0 = ((t - t0) * g1 - t * g0) / -determinant, ((t - t1) * g0 - t * g1) / -determinant
        scale = torch.ones_like(mean)
        while (leaves := (a + scale * step1 <= 0) | (b + scale * step0 <= 0)).any():
            scale = torch.where(leaves, scale / 2, scale)
        new_a, new_b = a + scale * step1, b + scale * step0
        moving = ~converged
        iterations += moving
        converged |= ((new_a - a).abs() <= tolerance * a) & ((new_b - b).abs() <= tolerance * b)
        a, b = torch.where(moving, new_a, a), torch.where(moving, new_b, b)
        if converged.all():
            break
    return Estimate({"concentration1": a, "concentration0": b}, iterations, converged)


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


def _cluster_parameters(centres: Tensor, counts: Tensor, deviations: Tensor, squares: Tensor,
                        reg_covar: float) -> dict[str, Tensor]:
    """Each cluster's share, mean and variance (plus `reg_covar`) from its members' count and
    their sums of deviations from its centre and of their squares, as scikit-learn's M step
    (10 ε added to the counts, so that an empty cluster keeps finite parameters)."""
    counts = counts + 10 * torch.finfo(counts.dtype).eps
    shift = deviations / counts.unsqueeze(-1)
    variance = squares / counts.unsqueeze(-1) - shift * shift + reg_covar
    return {"logits": (counts / counts.sum(-1, keepdim=True)).log(), "loc": centres + shift, "scale": variance.sqrt()}


def _kmeans_plusplus_start(points: Tensor, k: int, generator: torch.Generator, reg_covar: float) -> dict[str, Tensor]:
    """The parameters of each point assigned to its nearest k-means++ centre: the clusters'
    shares, means and variances."""
    centres = _kmeans_plusplus(points, k, generator)
    labels = _squared_distances(centres, points).argmin(-2)  # (..., N)
    members = torch.nn.functional.one_hot(labels, k).to(points.dtype).mT  # (..., K, N)
    deviations = points - _gather_points(centres, labels)  # from each point's centre
    return _cluster_parameters(centres, members.sum(-1), members @ deviations, members @ deviations.pow(2), reg_covar)


def _expectation_maximisation(points: Tensor, start: dict[str, Tensor], tol: float, max_iter: int, reg_covar: float):
    """EM from `start` on the sets (S, N, D), in one op that keeps every iteration inside:
    the parameters, each set's last lower bound (its mean log-likelihood per point before the
    last M step, as scikit-learn's), iterations and convergence."""
    logits, loc, scale, lower_bound, iterations, converged = torch.ops.fusedgan._normal_mixture_em(
        points, start["logits"], start["loc"], start["scale"], tol, max_iter, reg_covar)
    return {"logits": logits, "loc": loc, "scale": scale}, lower_bound, iterations, converged


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


@_fits("normal_mixture", points_are_vectors=True, normalised=("logits",), in_float64=False,
       log_likelihood=lambda x, p: F.normal_mixture_log_likelihood(x, p["logits"], p["loc"], p["scale"]))
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
    one whose last lower bound is highest. The iterations run inside one op
    (`torch.ops.fusedgan._normal_mixture_em`), each E step one fused pass over the points in
    the data's dtype (float32 for 16-bit data), its sums in float64; the parameters are kept in
    float64 (`fit` returns them in the data's dtype). The Estimate gives per set the iterations of
    the start kept and whether it converged."""
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
    return Estimate({name: value.reshape(shapes[name]) for name, value in params.items()},
                    iterations.reshape(batch), converged.reshape(batch))


@_fits("multivariate_normal", points_are_vectors=True, min_points=2, triangular=("scale_tril",),
       log_likelihood=lambda x, p: F.multivariate_normal_log_likelihood(x, p["loc"], p["scale_tril"]))
def _multivariate_normal(x: Tensor, dim: int) -> Estimate:
    """Closed form: the sample mean and the Cholesky factor of the biased (1/N) sample
    covariance (the maximum-likelihood covariance, as `scipy.stats.multivariate_normal.fit`);
    `x` is `(..., N, D)` with the points along `dim` (default -2 for this family) and the
    coordinates last. A set whose sample covariance is singular (fewer than D + 1 points, or all
    in one hyperplane, up to rounding) has no finite maximum."""
    points = x.movedim(dim, -2)
    n, d = points.shape[-2:]
    loc = points.mean(-2)
    centred = points - loc.unsqueeze(-2)
    covariance = centred.mT @ centred / n
    scale_tril, info = torch.linalg.cholesky_ex(covariance)
    # each coordinate's variance left given the ones before it (the pivot squared), next to its
    # own: a ratio at rounding level is a hyperplane that rounding hid
    pivots, variances = scale_tril.diagonal(dim1=-2, dim2=-1) ** 2, covariance.diagonal(dim1=-2, dim2=-1)
    flat = (pivots <= 64 * d * torch.finfo(points.dtype).eps * variances).any(-1)
    singular = (info != 0) | flat | (n <= d)
    identity = torch.eye(d, dtype=points.dtype, device=x.device)
    scale_tril = torch.where(singular[..., None, None], identity, scale_tril)  # finite, for the other sets' sake
    return Estimate({"loc": loc, "scale_tril": scale_tril}, failures={"no finite maximum": singular})


def _stand_in(needs: _Requirements, points: int, per_set: torch.Size, options: dict) -> Tensor:
    """A data set of `points` points that the family can fit, in float64."""
    if needs.points_are_vectors:
        return torch.randn(points, per_set[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return needs.support.stand_in(points, options)


@dataclass(frozen=True)
class FitResult:
    """A fit with its inference, per data set (every tensor has the sets' shape, `x`'s with
    `dim` removed, and trailing dims where a parameter has them).

    `covariance` (..., P, P) is the inverse of the observed information (the Hessian of the
    fused log-likelihood at the estimate, by double backward), over the entries of the
    estimated parameters in `params`' order, each flattened; where logits are normalised
    log-probabilities (categorical, normal_mixture) the information is singular along their
    common shift and the covariance is its pseudo-inverse. `stderr` holds the square roots of
    its diagonal under the parameters' names (0 for a parameter given rather than estimated).
    `aic` = 2 P' - 2 log L and `bic` = P' log N - 2 log L with P' the free parameters. A set
    that could not be fitted has NaN estimates and statistics and `failure` > 0, indexing
    FAILURES (`reason` spells it out); NaN in `covariance` alone means an information that is
    not positive definite (an estimate on the boundary, such as infinite logits)."""

    params: dict[str, Tensor]
    log_likelihood: Tensor
    stderr: dict[str, Tensor]
    covariance: Tensor
    aic: Tensor
    bic: Tensor
    iterations: Tensor
    converged: Tensor
    failure: Tensor

    @property
    def fitted(self) -> Tensor:
        return self.failure == 0

    @property
    def reason(self) -> np.ndarray:
        """Per set, why it was not fitted ("" where it was)."""
        return np.asarray(FAILURES, dtype=object)[self.failure.cpu().numpy()]


def _with_batch(one: dict[str, Tensor] | FitResult, batch: torch.Size) -> dict[str, Tensor] | FitResult:
    """The fit of one data set with its set's dim replaced by `batch` (of no sets)."""
    def shaped(value: Tensor) -> Tensor:
        return value.new_empty((*batch, *value.shape[1:]))

    if isinstance(one, dict):
        return {name: shaped(value) for name, value in one.items()}
    return FitResult(**{field.name: _with_batch(value, batch) if isinstance(value, dict) else shaped(value)
                        for field in dataclasses.fields(one) for value in [getattr(one, field.name)]})


def _log_likelihood_of(family: str) -> Callable[[Tensor, dict[str, Tensor]], Tensor]:
    """(data sets (S, N[, D]), parameters (S, ...)) -> the log-likelihood of each set."""
    custom = _REQUIREMENTS[family].log_likelihood
    if custom is not None:
        return custom
    info = _LOG_LIKELIHOOD_FAMILIES[family]
    function = getattr(F, info.function_name)
    return lambda x, params: function(x, *(params[name].unsqueeze(-1) for name in info.params))


def _entries(value: Tensor, leading: int, triangular: bool) -> Tensor:
    """A parameter's estimated entries, flattened after its `leading` dims: of a triangular one,
    the lower triangle alone (the log-likelihood does not read the rest)."""
    if not triangular:
        return value.reshape(*value.shape[:leading], -1)
    rows, cols = torch.tril_indices(value.shape[-1], value.shape[-1], device=value.device)
    return value[..., rows, cols]


def _information(family: str, x: Tensor, params: dict[str, Tensor], estimated: list[str]) -> tuple[Tensor, Tensor]:
    """Per set, the log-likelihood (S,) and the observed information (S, P, P): minus the
    Hessian over the estimated parameters' entries, from the fused op's double backward. Each
    set's log-likelihood depends on its own parameters alone, so the Hessian of the sum over
    sets holds every set's block: P backward passes of the summed gradient give them all."""
    triangular = _REQUIREMENTS[family].triangular
    leaves = {name: value.detach().requires_grad_(name in estimated) for name, value in params.items()}
    value = _log_likelihood_of(family)(x, leaves)

    def entries(gradients):  # (S, P)
        return torch.cat([_entries(g, 1, name in triangular) for name, g in zip(estimated, gradients)], -1)

    wrt = [leaves[name] for name in estimated]
    gradient = entries(torch.autograd.grad(value.sum(), wrt, create_graph=True))
    rows = [entries(torch.autograd.grad(gradient[:, j].sum(), wrt, retain_graph=True, allow_unused=True,
                                        materialize_grads=True)) for j in range(gradient.shape[-1])]
    return value.detach(), -torch.stack(rows, -2).detach()


def _covariance(information: Tensor, singular: bool) -> Tensor:
    if singular:
        return torch.linalg.pinv(information, hermitian=True)
    factor, failed = torch.linalg.cholesky_ex(information)
    failed = (failed != 0)[..., None, None]
    identity = torch.eye(information.shape[-1], dtype=information.dtype, device=information.device)
    covariance = torch.cholesky_inverse(torch.where(failed, identity, factor))  # a failed factor may be singular
    return torch.where(failed, torch.nan, covariance)


def _inference(family: str, points: Tensor, params: dict[str, Tensor], estimate: Estimate, failure: Tensor,
               points_per_set: int) -> FitResult:
    """The statistics of every fitted set (the others NaN), computed on the fitted sets alone."""
    needs = _REQUIREMENTS[family]
    batch = failure.shape
    estimated = [name for name in params if name not in needs.fixed]
    flat_points = points.reshape(-1, *points.shape[len(batch):])
    flat_params = {name: value.reshape(-1, *value.shape[len(batch):]) for name, value in params.items()}
    fitted = (failure == 0).reshape(-1)
    keep = fitted.nonzero().squeeze(-1)
    sizes = [_entries(flat_params[name][:1], 1, name in needs.triangular).shape[-1] for name in estimated]
    count = sum(sizes)
    log_likelihood = torch.full(fitted.shape, torch.nan, dtype=torch.float64, device=points.device)
    covariance = torch.full((*fitted.shape, count, count), torch.nan, dtype=torch.float64, device=points.device)
    if keep.numel():
        value, information = _information(family, flat_points[keep].double(),
                                          {name: p[keep].double() for name, p in flat_params.items()}, estimated)
        log_likelihood[keep] = value
        covariance[keep] = _covariance(information, bool(needs.normalised))
    free = count - len(needs.normalised)
    variances = covariance.diagonal(dim1=-2, dim2=-1).split(sizes, -1)
    stderr = {name: torch.zeros_like(value) for name, value in params.items()}
    for name, variance in zip(estimated, variances):
        if name in needs.triangular:
            rows, cols = torch.tril_indices(params[name].shape[-1], params[name].shape[-1], device=points.device)
            stderr[name][..., rows, cols] = variance.sqrt().reshape(*batch, -1).to(params[name].dtype)
        else:
            stderr[name] = variance.sqrt().reshape(params[name].shape).to(params[name].dtype)
    dtype = points.dtype
    log_likelihood = log_likelihood.reshape(batch)
    iterations = estimate.iterations if estimate.iterations is not None else torch.zeros(batch, dtype=torch.int64)
    converged = estimate.converged if estimate.converged is not None else torch.ones(batch, dtype=torch.bool)
    return FitResult(
        params=params,
        log_likelihood=log_likelihood.to(dtype),
        stderr=stderr,
        covariance=covariance.reshape(*batch, count, count).to(dtype),
        aic=(2 * free - 2 * log_likelihood).to(dtype),
        bic=(free * math.log(points_per_set) - 2 * log_likelihood).to(dtype),
        iterations=iterations.to(points.device).expand(batch),
        converged=converged.to(points.device).expand(batch) & (failure == 0),
        failure=failure,
    )


def fit(family: str, x: Tensor, *, dim: int | None = None, return_result: bool = False,
        **options) -> dict[str, Tensor] | FitResult:
    """Maximum-likelihood parameters of ``family`` for each data set along ``dim``.

    Returns a dict keyed like the family's log-likelihood function, each parameter with ``dim``
    removed; with ``return_result=True``, a :class:`FitResult` with standard errors,
    covariances, the maximised log-likelihood, AIC, BIC, iterations and convergence per set.
    Each family's method and ``options`` are those of its fit routine in ``FAMILIES`` (see its
    docstring; docs/api.md tabulates them). A data set that cannot be fitted (non-finite data,
    data outside the family's support, too few points, no spread where the family needs it, no
    finite maximum) gets NaN estimates and its reason in FitResult.failure, while the other
    sets are fitted; an unknown family, a missing option, a tensor that is not floating point
    or a dim out of range raise ValueError.
    """
    if family not in FAMILIES:
        raise ValueError(f"fit: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError("fit: x must be a floating point tensor")
    needs = _REQUIREMENTS[family]
    if isinstance(needs.support.high, str) and options.get(needs.support.high) is None:  # the checks need it
        raise ValueError(f"fit: the {family} family needs {needs.support.high}=")
    event = 2 if needs.points_are_vectors else 1  # the dims of one data set: points (and coordinates)
    if x.dim() < event:
        raise ValueError(f"fit: x must have at least {event} dimension{'s' * (event > 1)} (the data points along dim"
                         f"{', the coordinates last' * (event > 1)})")
    if dim is None:
        dim = -event
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"fit: dim is out of range for x of {x.dim()} dimensions")
    points = x.detach().movedim(dim, -event)  # (..., N) or (..., N, D)
    batch, per_set = points.shape[:-event], points.shape[-event:]
    if not batch.numel():  # no data sets: the shapes of the fit of one
        one = fit(family, _stand_in(needs, max(per_set[0], 1), per_set, options).to(x)[None], dim=-event,
                  return_result=return_result, **options)
        return _with_batch(one, batch)
    n = per_set[0]
    failure = torch.zeros(batch, dtype=torch.int64, device=x.device)

    def flag(reason: str, mask: Tensor) -> None:
        failure.copy_(torch.where((failure == 0) & mask, FAILURES.index(reason), failure))

    flag("too few points", torch.tensor(n < needs.min_points, device=x.device))
    if n:  # every check from one pass: NaN and inf show in a set's minimum or maximum
        low, high = points.flatten(-event).amin(-1), points.flatten(-event).amax(-1)
        flag("non-finite data", ~(low.isfinite() & high.isfinite()))
        flag("outside the support", ~needs.support.contains(points, low, high, options))
        if needs.degenerate is not None:
            flag(needs.degenerate[0], needs.degenerate[1](low, high))
    if (failure != 0).any():  # a stand-in takes each such set's place, so the others are fitted
        size = max(n, needs.min_points)
        stand_in = _stand_in(needs, size, per_set, options).to(points).expand(*batch, size, *per_set[1:])
        points = stand_in if size != n else torch.where((failure != 0).reshape(batch + (1,) * event), stand_in, points)
    # the routines compute in float64 (but the mixture EM), so that squares of large or small
    # data neither overflow nor underflow; the estimates return in the data's dtype
    estimate = FAMILIES[family](points.double() if needs.in_float64 else points, -event, **options)
    estimate = estimate._replace(params={name: value.to(x.dtype) for name, value in estimate.params.items()})
    for reason, mask in estimate.failures.items():
        flag(reason, mask)
    for name, value in estimate.params.items():  # what the method could not reach, in the data's dtype
        if name not in needs.fixed:
            reached = ~value.isnan() if name in needs.unbounded else value.isfinite()
            flag("no finite estimate", ~reached.reshape(*batch, -1).all(-1))
    params = {name: value if name in needs.fixed else
              torch.where((failure != 0).reshape(batch + (1,) * (value.dim() - len(batch))), torch.nan, value)
              for name, value in estimate.params.items()}
    if not return_result:
        return params
    return _inference(family, points, params, estimate, failure, max(n, 1))
