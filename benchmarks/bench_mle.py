"""Fits (fusedgan.mle) against the reference libraries' fits of the same data: one function per
case, each returning its rows, so that a family's fit against scipy is one more function.

- `normal_mixture_em`: EM for a diagonal normal mixture against scikit-learn's
  `GaussianMixture(covariance_type="diag")`, both from the same start (k-means++ centres,
  equal weights, the set's spread) with scikit-learn's defaults (tol 1e-3 on the mean
  log-likelihood per point, max_iter 100, reg_covar 1e-6), timed to convergence on the same
  data in float64 and in float32 (each computes in the data's dtype): one set of
  100,000 × 8 points with K = 16 (shape 1x100000x8x16: sets, points, coordinates,
  components), and 1,000 sets of 500 × 2 points with K = 3, fitted in one call against
  scikit-learn in a Python loop over the first 50 sets, both timed per set.
- `family_fits`: every other family's `mle.fit` of 10,000 data sets of 100 points (float64;
  the multivariate normal's of 3 coordinates) in one call, against scipy's fit of one set at a
  time in a loop (`scipy.stats.<dist>.fit`, with the location fixed at 0 where the family has
  none; for the discrete families, which have no `.fit`, `scipy.stats.fit` with bounds), per set.

Writes benchmarks/results/mle.csv and mle-cpu.md (CPU only: scikit-learn has no GPU side).

    python benchmarks/bench_mle.py [--rounds N] [--ops normal_mixture_em ...]
"""

from __future__ import annotations

import os

# scipy's and scikit-learn's OpenBLAS threads sleep right after a call, rather than spin for
# ~0.1 s on this machine's cores through fusedgan's next timed round (which they slowed 2x);
# their own times are unchanged by it (measured).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import warnings
from typing import Callable, NamedTuple

import torch
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from common import COMPARISON_HEADER, bench_parser, comparison_lines, time_providers, timed_rows, write_results
from fusedgan import mle

MIXTURE_SETS = [(1, 100_000, 8, 16), (1000, 500, 2, 3)]  # sets, points, coordinates, components
SKLEARN_SETS = 50  # of a batch, the sets scikit-learn fits per call (a loop over all would take minutes a round)


def mixture_data(sets: int, n: int, d: int, k: int, seed: int = 0) -> torch.Tensor:
    """(sets, n, d) float64 points of a random diagonal mixture of k components per set."""
    g = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(sets, k, d, generator=g, dtype=torch.float64)
    scales = 0.5 + torch.rand(sets, k, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (sets, n, 1), generator=g).expand(sets, n, d)
    return centres.gather(1, labels) + scales.gather(1, labels) * torch.randn(sets, n, d, generator=g, dtype=torch.float64)


def mixture_start(x: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """The common start: scikit-learn's k-means++ centres per set, equal weights, the set's spread."""
    centres = torch.stack([torch.from_numpy(kmeans_plusplus(points.numpy(), k, random_state=s)[0]) for s, points in enumerate(x)])
    return {"logits": torch.zeros(x.shape[0], k, dtype=x.dtype), "loc": centres,
            "scale": x.std(1, keepdim=True).expand_as(centres).contiguous()}


def sklearn_fits(x: torch.Tensor, start: dict[str, torch.Tensor]) -> None:
    """scikit-learn's fit of each set in turn, from the start."""
    for s, points in enumerate(x.numpy()):
        model = GaussianMixture(start["logits"].shape[-1], covariance_type="diag", weights_init=start["logits"][s].softmax(-1).numpy(),
                                means_init=start["loc"][s].numpy(), precisions_init=start["scale"][s].pow(-2).numpy(),
                                init_params="random_from_data", random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(points)


def normal_mixture_em(rounds: int) -> tuple[list, list[str]]:
    rows, lines = [], []
    for shape in MIXTURE_SETS:
        sets, n, d, k = shape
        sklearn_sets = min(sets, SKLEARN_SETS)
        data = mixture_data(*shape)
        start = mixture_start(data, k)
        for dtype in (torch.float64, torch.float32):
            x = data.to(dtype)
            subset = {name: value[:sklearn_sets].to(dtype) for name, value in start.items()}
            providers = {"fusedgan": lambda: mle.FAMILIES["normal_mixture"](x, -2, init=start),
                         "sklearn": lambda: sklearn_fits(x[:sklearn_sets], subset)}
            timings = time_providers(providers, "cpu", rounds=rounds, min_seconds=0)
            per_set = {"fusedgan": sets, "sklearn": sklearn_sets}
            timings = {provider: tuple(t / per_set[provider] for t in times) for provider, times in timings.items()}
            rows += timed_rows("normal_mixture_em", "fit per set", shape, timings, dtype)
            lines += comparison_lines(f"normal_mixture_em ({str(dtype).removeprefix('torch.')})", shape, timings)
    return rows, lines


FIT_SETS, FIT_POINTS = 10_000, 100


class ScipyFit(NamedTuple):
    """scipy's fit of one data set, and on how many of the sets it is timed."""

    fit: Callable
    sets: int = 20


def fit_cases() -> dict:
    """family -> (float64 data (FIT_SETS, FIT_POINTS[, 3]), fit options, scipy's fit of one set):
    `.fit` where scipy has one (its location fixed at 0 where the family has none); for the
    discrete families, which have none, `scipy.stats.fit` (bounded, its default global search)."""
    import numpy as np
    import scipy.stats as st

    rng = np.random.default_rng(0)
    shape = (FIT_SETS, FIT_POINTS)

    def discrete(distribution, bounds, shift=0):  # a global search, seconds a set: timed on fewer
        return ScipyFit(lambda k: st.fit(distribution, k + shift, bounds), sets=5)

    return {
        "normal": (rng.normal(1.0, 2.0, shape), {}, ScipyFit(st.norm.fit)),
        "laplace": (rng.laplace(1.0, 2.0, shape), {}, ScipyFit(st.laplace.fit)),
        "exponential": (rng.exponential(2.0, shape), {}, ScipyFit(lambda x: st.expon.fit(x, floc=0))),
        "poisson": (rng.poisson(4.0, shape).astype(float), {}, discrete(st.poisson, {"mu": (0, 50)})),
        "bernoulli": (rng.binomial(1, 0.3, shape).astype(float), {}, discrete(st.bernoulli, {"p": (0, 1)})),
        "lognormal": (rng.lognormal(0.5, 0.8, shape), {}, ScipyFit(lambda x: st.lognorm.fit(x, floc=0))),
        "half_normal": (np.abs(rng.normal(0.0, 2.0, shape)), {}, ScipyFit(lambda x: st.halfnorm.fit(x, floc=0))),
        "geometric": (rng.geometric(0.3, shape) - 1.0, {}, discrete(st.geom, {"p": (0, 1)}, shift=1)),
        "binomial": (rng.binomial(30, 0.3, shape).astype(float), {"total_count": 30},
                     discrete(st.binom, {"n": (30, 30), "p": (0, 1)})),
        "multivariate_normal": (rng.normal(size=(*shape, 3)) @ np.array([[1.0, 0, 0], [0.5, 1, 0], [0.2, -0.3, 0.7]]), {},
                                ScipyFit(st.multivariate_normal.fit)),
        "student_t": (st.t.rvs(4.0, 1.0, 2.0, size=shape, random_state=rng), {}, ScipyFit(st.t.fit)),
        "gamma": (rng.gamma(3.0, 0.5, shape), {}, ScipyFit(lambda x: st.gamma.fit(x, floc=0))),
        "beta": (rng.beta(2.0, 5.0, shape), {}, ScipyFit(lambda x: st.beta.fit(x, floc=0, fscale=1))),
        "weibull": (rng.weibull(1.5, shape) * 2.0, {}, ScipyFit(lambda x: st.weibull_min.fit(x, floc=0))),
        "negative_binomial": (rng.negative_binomial(3, 0.4, shape).astype(float), {},
                              discrete(st.nbinom, {"n": (0.01, 100), "p": (0, 1)})),
        "von_mises": (st.vonmises.rvs(2.0, 0.5, size=shape, random_state=rng), {}, ScipyFit(lambda x: st.vonmises.fit(x, fscale=1))),
    }


def family_fits(rounds: int) -> tuple[list, list[str]]:
    """Each family's fit of FIT_SETS sets in one call against scipy's, set by set (timed on its
    first ScipyFit.sets sets), both per set."""
    rows, lines = [], []
    for family, (data, options, scipy_fit) in fit_cases().items():
        x = torch.from_numpy(data)
        providers = {"fusedgan": lambda: mle.fit(family, x, **options),
                     "scipy.fit": lambda: [scipy_fit.fit(row) for row in data[:scipy_fit.sets]]}
        timings = time_providers(providers, "cpu", rounds=rounds, min_seconds=0)
        per_set = {"fusedgan": FIT_SETS, "scipy.fit": scipy_fit.sets}
        timings = {provider: tuple(t / per_set[provider] for t in times) for provider, times in timings.items()}
        rows += timed_rows(f"{family}_fit", "fit per set", x.shape, timings, x.dtype)
        lines += comparison_lines(f"{family}_fit", x.shape, timings)
    return rows, lines


CASES = {"normal_mixture_em": normal_mixture_em, "family_fits": family_fits}


def main() -> None:
    args = bench_parser(__doc__, rounds=7, devices=False, ops=list(CASES)).parse_args()
    rows, lines = [], list(COMPARISON_HEADER)
    for case in args.ops:
        case_rows, case_lines = CASES[case](args.rounds)
        rows += case_rows
        lines += case_lines
    write_results("mle", rows, "cpu", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
