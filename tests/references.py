"""The readable float64 references that several test modules share: the GAN costs, the normal
mixture, the multivariate normal, and the log-likelihood families'. Per family: the torch.distributions object and the
scipy.stats log-density it must match, data and parameters in its support, and scipy's fit
where scipy has one. One entry per family of fusedgan.families.FAMILIES, in the family's
parameter order (test_families.py keeps the two lists in step)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats
import torch


def draw(shape, seed=0, positive=False, unit=False, counts=False) -> torch.Tensor:
    """float64 values: normal (times 2), or |normal| + 0.1, uniform in [0, 1), Poisson(4) counts."""
    g = torch.Generator().manual_seed(seed)
    if counts:
        return torch.poisson(torch.full(shape, 4.0, dtype=torch.float64), generator=g)
    if unit:
        return torch.rand(shape, generator=g, dtype=torch.float64)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    return x.abs() + 0.1 if positive else x


@dataclass(frozen=True)
class Reference:
    distribution: Callable[..., torch.distributions.Distribution]  # params -> its log_prob is the reference
    scipy_logpdf: Callable[..., np.ndarray]  # (x, *params) -> log f elementwise
    data: Callable[[tuple, int], torch.Tensor]  # (shape, seed) -> float64 data in the support
    params: tuple[Callable[[tuple], torch.Tensor], ...]  # one per parameter: shape -> float64 values
    scipy_fit: Optional[Callable[[np.ndarray], tuple]] = None  # 1-D data -> the parameters, in order
    # The data of the comparisons with scipy, for both sides: bernoulli's soft x as the 0/1 that
    # scipy's pmf takes. (A different convention, such as scipy counting trials where the
    # family counts failures, goes into scipy_logpdf instead.)
    scipy_data: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    fit_options: dict = field(default_factory=dict)  # what fit() needs besides the data (binomial's total_count)


REFERENCES: dict[str, Reference] = {
    "normal": Reference(
        lambda loc, scale: torch.distributions.Normal(loc, scale),
        lambda x, loc, scale: scipy.stats.norm.logpdf(x, loc, scale),
        lambda s, seed: draw(s, seed),
        (lambda s: draw(s, 1), lambda s: draw(s, 2, positive=True)),
        lambda x: scipy.stats.norm.fit(x),
    ),
    "laplace": Reference(
        lambda loc, scale: torch.distributions.Laplace(loc, scale),
        lambda x, loc, scale: scipy.stats.laplace.logpdf(x, loc, scale),
        lambda s, seed: draw(s, seed),
        (lambda s: draw(s, 1), lambda s: draw(s, 2, positive=True)),
        lambda x: scipy.stats.laplace.fit(x),
    ),
    "exponential": Reference(
        lambda rate: torch.distributions.Exponential(rate),
        lambda x, rate: scipy.stats.expon.logpdf(x, scale=1 / rate),
        lambda s, seed: draw(s, seed, positive=True),
        (lambda s: draw(s, 3, positive=True),),
        lambda x: (1 / scipy.stats.expon.fit(x, floc=0)[1],),
    ),
    "bernoulli": Reference(
        lambda logits: torch.distributions.Bernoulli(logits=logits, validate_args=False),  # soft x too
        lambda x, logits: scipy.stats.bernoulli.logpmf(x, scipy.special.expit(logits)),
        lambda s, seed: draw(s, seed, unit=True),
        (lambda s: draw(s, 4),),
        lambda x: (scipy.special.logit(x.mean()),),
        scipy_data=lambda x: (x > 0.5).double(),  # scipy's pmf takes 0/1
    ),
    "poisson": Reference(
        lambda rate: torch.distributions.Poisson(rate, validate_args=False),
        lambda k, rate: scipy.stats.poisson.logpmf(k, rate),
        lambda s, seed: draw(s, seed, counts=True),
        (lambda s: draw(s, 5, positive=True) * 3,),
        lambda x: (x.mean(),),
    ),
    "student_t": Reference(
        lambda df, loc, scale: torch.distributions.StudentT(df, loc, scale),
        lambda x, df, loc, scale: scipy.stats.t.logpdf(x, df, loc, scale),
        lambda s, seed: draw(s, seed),
        (lambda s: draw(s, 6, positive=True) * 3, lambda s: draw(s, 7), lambda s: draw(s, 8, positive=True)),
        lambda x: scipy.stats.t.fit(x),
    ),
    "gamma": Reference(
        lambda concentration, rate: torch.distributions.Gamma(concentration, rate),
        lambda x, concentration, rate: scipy.stats.gamma.logpdf(x, concentration, scale=1 / rate),
        lambda s, seed: draw(s, seed, positive=True),
        (lambda s: draw(s, 11, positive=True) * 2, lambda s: draw(s, 12, positive=True)),
        lambda x: (lambda a, _, scale: (a, 1 / scale))(*scipy.stats.gamma.fit(x, floc=0)),
    ),
    "beta": Reference(
        lambda concentration1, concentration0: torch.distributions.Beta(concentration1, concentration0),
        lambda x, concentration1, concentration0: scipy.stats.beta.logpdf(x, concentration1, concentration0),
        lambda s, seed: draw(s, seed, unit=True) * 0.98 + 0.01,
        (lambda s: draw(s, 13, positive=True) * 2, lambda s: draw(s, 14, positive=True) * 2),
        lambda x: scipy.stats.beta.fit(x, floc=0, fscale=1)[:2],
    ),
    "lognormal": Reference(
        lambda loc, scale: torch.distributions.LogNormal(loc, scale),
        lambda x, loc, scale: scipy.stats.lognorm.logpdf(x, scale, scale=np.exp(loc)),
        lambda s, seed: draw(s, seed, positive=True),
        (lambda s: draw(s, 15), lambda s: draw(s, 16, positive=True)),
        lambda x: (lambda shape, _, scale: (np.log(scale), shape))(*scipy.stats.lognorm.fit(x, floc=0)),
    ),
    "weibull": Reference(
        lambda scale, concentration: torch.distributions.Weibull(scale, concentration),
        lambda x, scale, concentration: scipy.stats.weibull_min.logpdf(x, concentration, scale=scale),
        lambda s, seed: draw(s, seed, positive=True),
        (lambda s: draw(s, 17, positive=True), lambda s: draw(s, 18, positive=True) + 0.5),
        lambda x: (lambda c, _, scale: (scale, c))(*scipy.stats.weibull_min.fit(x, floc=0)),
    ),
    "half_normal": Reference(
        lambda scale: torch.distributions.HalfNormal(scale),
        lambda x, scale: scipy.stats.halfnorm.logpdf(x, scale=scale),
        lambda s, seed: draw(s, seed, positive=True),
        (lambda s: draw(s, 19, positive=True),),
        lambda x: scipy.stats.halfnorm.fit(x, floc=0)[1:],
    ),
    "negative_binomial": Reference(
        lambda total_count, logits: torch.distributions.NegativeBinomial(total_count, logits=logits, validate_args=False),
        # scipy counts failures before the n-th success, each with probability p: ours swapped
        lambda k, total_count, logits: scipy.stats.nbinom.logpmf(k, total_count, scipy.special.expit(-logits)),
        lambda s, seed: draw(s, seed, counts=True),
        (lambda s: draw(s, 20, positive=True) * 3, lambda s: draw(s, 21)),
        lambda k: negative_binomial_fit(k),
    ),
    "binomial": Reference(
        lambda total_count, logits: torch.distributions.Binomial(total_count, logits=logits, validate_args=False),
        lambda k, total_count, logits: scipy.stats.binom.logpmf(k, total_count, scipy.special.expit(logits)),
        lambda s, seed: draw(s, seed, counts=True),
        # logits kept off the balance n sigmoid(l) = k (about 4 here), where the float32
        # gradient's sum cancels to a few units of its terms' rounding
        (lambda s: draw(s, 22, counts=True) + 20, lambda s: draw(s, 23, positive=True)),
        lambda k: (30.0, scipy.special.logit(k.mean() / 30)),
        fit_options={"total_count": 30},
    ),
    "geometric": Reference(
        lambda logits: LogitGeometric(logits=logits, validate_args=False),
        # scipy counts the trials up to the first success, one more than our failures
        lambda k, logits: scipy.stats.geom.logpmf(k + 1, scipy.special.expit(logits)),
        lambda s, seed: draw(s, seed, counts=True),
        (lambda s: draw(s, 24),),
        lambda k: (-np.log(k.mean()),),
    ),
    "von_mises": Reference(
        lambda loc, concentration: ExactVonMises(loc, concentration),
        lambda x, loc, concentration: scipy.stats.vonmises.logpdf(x, concentration, loc),
        lambda s, seed: draw(s, seed),
        (lambda s: draw(s, 25), lambda s: draw(s, 26, positive=True) * 3),
        lambda x: scipy.stats.vonmises.fit(x, fscale=1)[:2][::-1],
    ),
}


class ExactVonMises(torch.distributions.VonMises):
    """torch's von Mises with log I_0 through torch.special.i0e: torch.distributions' own
    approximates log I_0 to about 1e-7, too coarse for a float64 reference (test_loglik
    compares with it separately)."""

    def log_prob(self, value):
        log_i0 = torch.log(torch.special.i0e(self.concentration)) + self.concentration
        return self.concentration * torch.cos(value - self.loc) - math.log(2 * math.pi) - log_i0


class LogitGeometric(torch.distributions.Geometric):
    """torch's geometric with its log-probability from the logits, k log sigmoid(-l) + log
    sigmoid(l): torch.distributions' own goes through the probabilities (and a masked write
    that torch.func.vmap cannot batch)."""

    def log_prob(self, value):
        return value * torch.nn.functional.logsigmoid(-self.logits) + torch.nn.functional.logsigmoid(self.logits)


def negative_binomial_fit(k: np.ndarray) -> tuple:
    """scipy has no negative binomial fit: scipy.optimize's maximum of the log-likelihood over
    (log total_count, logits), from the method of moments."""
    mean, var = k.mean(), k.var()
    r0 = mean**2 / (var - mean) if var > mean else 100.0

    def cost(theta):
        return -scipy.stats.nbinom.logpmf(k, np.exp(theta[0]), scipy.special.expit(-theta[1])).sum()

    best = scipy.optimize.minimize(cost, [np.log(r0), np.log(mean / r0)], method="Nelder-Mead",
                                   options=dict(xatol=1e-10, fatol=1e-12, maxiter=10000))
    return np.exp(best.x[0]), best.x[1]


def reference_log_likelihood(family: str, x: torch.Tensor, params, dim) -> torch.Tensor:
    """torch.distributions' log_prob summed over dim (None: all)."""
    log_prob = REFERENCES[family].distribution(*params).log_prob(x)
    return log_prob.sum(dim=tuple(range(log_prob.dim())) if dim is None else dim)


def reference_discriminator_cost(real, fake, real_label=1.0, fake_label=0.0):
    """J(D) in float64 from the probability form: D = sigmoid(logit)."""
    d_real, d_fake = torch.sigmoid(real.double()), torch.sigmoid(fake.double())
    real_term = real_label * torch.log(d_real) + (1 - real_label) * torch.log1p(-d_real)
    fake_term = fake_label * torch.log(d_fake) + (1 - fake_label) * torch.log1p(-d_fake)
    return -0.5 * real_term.mean() - 0.5 * fake_term.mean()


def reference_generator_cost(fake, kind):
    d = torch.sigmoid(fake.double())
    if kind == "minimax":
        return 0.5 * torch.log1p(-d).mean()
    if kind == "non_saturating":
        return -0.5 * torch.log(d).mean()
    return -0.5 * torch.exp(torch.logit(d)).mean()


def mixture_reference(x, logits, loc, scale):
    """Each set's log-likelihood, by torch.distributions.MixtureSameFamily."""
    D = torch.distributions
    batch = torch.broadcast_shapes(x.shape[:-2], logits.shape[:-1], loc.shape[:-2], scale.shape[:-2])
    x = x.expand(*batch, *x.shape[-2:])
    mixture = D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(loc, scale), 1))
    return mixture.log_prob(x.movedim(-2, 0)).sum(0)


def multivariate_normal_reference(x, loc, scale_tril):
    """Each set's log-likelihood, by torch.distributions.MultivariateNormal (which reads only the
    lower triangle of scale_tril; its argument check, which wants the upper one 0, is off)."""
    D = torch.distributions
    batch = torch.broadcast_shapes(x.shape[:-2], loc.shape[:-1], scale_tril.shape[:-2])
    x = x.expand(*batch, *x.shape[-2:])
    normal = D.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)
    return normal.log_prob(x.movedim(-2, 0)).sum(0)


def em_statistics_reference(x, logits, loc, scale):
    """EM's E-step sums in float64 ATen ops, forming (..., N, K, D):
    each set's log-likelihood, and per component the sums over the points of the
    responsibilities r, r (x - loc) and r (x - loc)^2."""
    x, logits, loc, scale = (t.double() for t in (x, logits, loc, scale))
    deviation = x.unsqueeze(-2) - loc.unsqueeze(-3)  # (..., N, K, D)
    normal = torch.distributions.Normal(torch.zeros_like(scale.unsqueeze(-3)), scale.unsqueeze(-3))
    log_joint = logits.log_softmax(-1).unsqueeze(-2) + normal.log_prob(deviation).sum(-1)
    lse = log_joint.logsumexp(-1, keepdim=True)
    r = (log_joint - lse).exp().unsqueeze(-1)
    return lse.squeeze(-1).sum(-1), r.squeeze(-1).sum(-2), (r * deviation).sum(-3), (r * deviation.square()).sum(-3)


def em_reference(x, logits, loc, scale, tol, max_iter, reg_covar):
    """EM (_normal_mixture_em) in float64 ATen ops, every set iterated as scikit-learn's: the E
    step's sums about loc rounded to x's dtype, the M step with 10 eps added to the counts and
    reg_covar to the variances; a set stops once its mean log-likelihood per point changes by
    less than tol, or after max_iter iterations, and keeps its last M step."""
    batch = torch.broadcast_shapes(x.shape[:-2], logits.shape[:-1], loc.shape[:-2], scale.shape[:-2])
    k, n = logits.shape[-1], x.shape[-2]
    log_pi = logits.double().log_softmax(-1).expand(*batch, k)
    loc, scale = (t.double().expand(*batch, *t.shape[-2:]) for t in (loc, scale))
    bound = torch.full(batch, -math.inf, dtype=torch.float64)
    iterations = torch.zeros(batch, dtype=torch.int64)
    converged = torch.zeros(batch, dtype=torch.bool)
    running = torch.ones(batch, dtype=torch.bool)
    for iteration in range(1, max_iter + 1):
        about = loc.to(x.dtype).double()
        log_likelihood, counts, deviations, squares = em_statistics_reference(x, log_pi, about, scale)
        counts = (counts + 10 * torch.finfo(torch.float64).eps).unsqueeze(-1)
        shift = deviations / counts
        fit = ((counts / counts.sum(-2, keepdim=True)).log().squeeze(-1), about + shift,
               (squares / counts - shift * shift + reg_covar).sqrt())
        new_bound = log_likelihood / n
        done = (new_bound - bound).abs() < tol
        log_pi, loc, scale = (torch.where(running.view(*batch, *[1] * (new.dim() - len(batch))), new, old)
                              for new, old in zip(fit, (log_pi, loc, scale)))
        bound = torch.where(running, new_bound, bound)
        iterations = torch.where(running, iteration, iterations)
        converged = torch.where(running, done, converged)
        running = running & ~done
        if not running.any():
            break
    return log_pi, loc, scale, bound, iterations, converged
