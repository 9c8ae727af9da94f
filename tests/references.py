"""The readable float64 references that several test modules share: the GAN costs, the normal
mixture, and the log-likelihood families'. Per family: the torch.distributions object and the
scipy.stats log-density it must match, data and parameters in its support, and scipy's fit
where scipy has one. One entry per family of fusedgan.families.FAMILIES, in the family's
parameter order (test_families.py keeps the two lists in step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
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
}


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


def em_statistics_reference(x, logits, loc, scale):
    """EM's E-step sums (_normal_mixture_em_statistics) in float64 ATen ops, forming (..., N, K, D):
    each set's log-likelihood, and per component the sums over the points of the
    responsibilities r, r (x - loc) and r (x - loc)^2."""
    x, logits, loc, scale = (t.double() for t in (x, logits, loc, scale))
    deviation = x.unsqueeze(-2) - loc.unsqueeze(-3)  # (..., N, K, D)
    normal = torch.distributions.Normal(torch.zeros_like(scale.unsqueeze(-3)), scale.unsqueeze(-3))
    log_joint = logits.log_softmax(-1).unsqueeze(-2) + normal.log_prob(deviation).sum(-1)
    lse = log_joint.logsumexp(-1, keepdim=True)
    r = (log_joint - lse).exp().unsqueeze(-1)
    return lse.squeeze(-1).sum(-1), r.squeeze(-1).sum(-2), (r * deviation).sum(-3), (r * deviation.square()).sum(-3)
