"""Batched log-likelihoods and fits, fusedgan vs torch.distributions, torch.compile and scipy.

- every family's log-likelihood (normal, laplace, exponential, bernoulli, poisson, student_t,
  gamma, beta, lognormal, weibull, half_normal, negative_binomial, binomial, geometric,
  von_mises, and categorical with 16 classes), forward + backward with gradients for every parameter
  (the data fixed, as in maximum likelihood), on 1024 data sets x 16384 points with one set of parameters
  per data set (shape (1024, 1); categorical logits (1024, 1, 16)), vs
  `torch.distributions.<Family>(*params, validate_args=False).log_prob(x).sum(-1)` eager and
  under torch.compile;
- the normal-mixture log-likelihood, forward + backward (the three parameters), 64 data sets (on
  a GPU also 1) x 1024 points x 8 dims, 16 components, vs `torch.distributions.MixtureSameFamily`
  of a Categorical and an Independent Normal (validate_args=False), eager and compiled;
- on the CPU only (front-ends without a GPU side): fusedgan.numpy's normal, categorical and
  normal-mixture log-likelihoods on the same data against scipy
  (`scipy.stats.norm.logpdf(x, loc, scale).sum(-1)`; `scipy.special.log_softmax` and
  `np.take_along_axis`; `norm.logpdf` of every point and component with
  `scipy.special.logsumexp`). (The fits: bench_mle.py.)

Writes benchmarks/results/loglik.csv (loglik-cuda.csv on a GPU) and loglik-<device>.md.

    python benchmarks/bench_loglik.py [--device cpu|cuda] [--rounds N] [--ops student_t_log_likelihood ...]
"""

from __future__ import annotations

import numpy as np
import torch

import fusedgan.numpy as fnp
from common import (COMPARISON_HEADER, bench_parser, comparison_lines, compiled, forward_backward, gpu_or_cpu, time_providers,
                    timed_rows, write_results)
from fusedgan import functional as F

SETS, POINTS, CLASSES = 1024, 16384, 16
MIXTURE_SETS = {"cpu": [64], "cuda": [1, 64]}
POINT_DIMS, COMPONENTS = (1024, 8), 16
D = torch.distributions

# Each family's torch.distributions object, from the parameters in fusedgan's order.
DISTRIBUTIONS = {
    "normal": lambda loc, scale: D.Normal(loc, scale, validate_args=False),
    "laplace": lambda loc, scale: D.Laplace(loc, scale, validate_args=False),
    "exponential": lambda rate: D.Exponential(rate, validate_args=False),
    "bernoulli": lambda logits: D.Bernoulli(logits=logits, validate_args=False),
    "poisson": lambda rate: D.Poisson(rate, validate_args=False),
    "student_t": lambda df, loc, scale: D.StudentT(df, loc, scale, validate_args=False),
    "gamma": lambda concentration, rate: D.Gamma(concentration, rate, validate_args=False),
    "beta": lambda concentration1, concentration0: D.Beta(concentration1, concentration0, validate_args=False),
    "lognormal": lambda loc, scale: D.LogNormal(loc, scale, validate_args=False),
    "weibull": lambda scale, concentration: D.Weibull(scale, concentration, validate_args=False),
    "half_normal": lambda scale: D.HalfNormal(scale, validate_args=False),
    "negative_binomial": lambda total_count, logits: D.NegativeBinomial(total_count, logits=logits, validate_args=False),
    "binomial": lambda total_count, logits: D.Binomial(total_count, logits=logits, validate_args=False),
    "geometric": lambda logits: D.Geometric(logits=logits, validate_args=False),
    "von_mises": lambda loc, concentration: D.VonMises(loc, concentration, validate_args=False),
    "categorical": lambda logits: D.Categorical(logits=logits, validate_args=False),
}
FAMILY_OPS = [f"{family}_log_likelihood" for family in DISTRIBUTIONS]
NUMPY_OPS = ["numpy.normal_log_likelihood", "numpy.categorical_log_likelihood", "numpy.normal_mixture_log_likelihood"]
OPS = [*FAMILY_OPS, "normal_mixture_log_likelihood", *NUMPY_OPS]


def family_inputs(family: str) -> list[torch.Tensor]:
    """A family's data, SETS x POINTS, and parameters, one set per data set, drawn on the CPU so
    that every device times the same values."""
    g = torch.Generator().manual_seed(0)

    def real(*classes):
        return torch.randn(SETS, 1, *classes, generator=g)

    def positive(scale=1.0):
        return (torch.rand(SETS, 1, generator=g) + 0.5) * scale

    def normal():
        return torch.randn(SETS, POINTS, generator=g)

    return {
        "normal": lambda: [normal(), real(), positive()],
        "laplace": lambda: [normal(), real(), positive()],
        "exponential": lambda: [torch.empty(SETS, POINTS).exponential_(generator=g), positive()],
        "bernoulli": lambda: [torch.bernoulli(torch.full((SETS, POINTS), 0.5), generator=g), real()],
        "poisson": lambda: [torch.poisson(torch.full((SETS, POINTS), 3.0), generator=g), positive(3.0)],
        "student_t": lambda: [normal(), positive(4.0), real(), positive()],
        "gamma": lambda: [torch.empty(SETS, POINTS).exponential_(generator=g), positive(2.0), positive()],
        "beta": lambda: [torch.rand(SETS, POINTS, generator=g) * 0.98 + 0.01, positive(2.0), positive(2.0)],
        "lognormal": lambda: [normal().exp(), real(), positive()],
        "weibull": lambda: [torch.empty(SETS, POINTS).exponential_(generator=g), positive(), positive(2.0)],
        "half_normal": lambda: [normal().abs(), positive()],
        "negative_binomial": lambda: [torch.poisson(torch.full((SETS, POINTS), 3.0), generator=g), positive(4.0), real()],
        "binomial": lambda: [torch.binomial(torch.full((SETS, POINTS), 20.0), torch.full((SETS, POINTS), 0.3), generator=g),
                             torch.full((SETS, 1), 20.0), real()],
        "geometric": lambda: [torch.poisson(torch.full((SETS, POINTS), 3.0), generator=g), real()],
        "von_mises": lambda: [normal(), real(), positive(3.0)],
        "categorical": lambda: [torch.randint(CLASSES, (SETS, POINTS), generator=g), real(CLASSES)],
    }[family]()


def mixture_inputs(sets: int) -> list[torch.Tensor]:
    """x (sets, points, dims) and the components' logits, locs and scales per data set."""
    g = torch.Generator().manual_seed(0)
    points, dims = POINT_DIMS
    return [torch.randn(sets, points, dims, generator=g), torch.randn(sets, COMPONENTS, generator=g),
            torch.randn(sets, COMPONENTS, dims, generator=g), torch.rand(sets, COMPONENTS, dims, generator=g) + 0.5]


def mixture_shape(sets: int) -> tuple[int, ...]:
    """The mixture cases' shape: sets x points x dims x components."""
    return (sets, *POINT_DIMS, COMPONENTS)


def distributions_log_likelihood(family: str):
    """log p(x) summed over each data set, by the family's torch.distributions object."""
    make = DISTRIBUTIONS[family]

    def log_likelihood(x, *params):
        return make(*params).log_prob(x).sum(-1)

    return log_likelihood


def mixture_same_family(x, logits, loc, scale):
    mixture = D.MixtureSameFamily(D.Categorical(logits=logits, validate_args=False),
                                  D.Independent(D.Normal(loc, scale, validate_args=False), 1, validate_args=False),
                                  validate_args=False)
    return mixture.log_prob(x.movedim(-2, 0)).sum(0)


def main() -> None:
    args = bench_parser(__doc__, rounds=7, ops=OPS).parse_args()
    device = gpu_or_cpu(args.device)
    rows, lines = [], list(COMPARISON_HEADER)

    def record(op, mode, shape, timings, dtype=torch.float32):
        rows.extend(timed_rows(op, mode, shape, timings, dtype))
        lines.extend(comparison_lines(op, shape, timings))

    def time_gradients(op, shape, ours, distributions, inputs):
        """Forward + backward of fusedgan, torch.distributions and its compilation, on the inputs
        moved to the device: the gradients of the parameters, the data (the first input) fixed."""
        inputs = [t.to(device).requires_grad_(i > 0) for i, t in enumerate(inputs)]
        costs = {"fusedgan": ours, "torch.distributions": distributions, "compile": compiled(distributions)}
        timings = time_providers({name: forward_backward(f, *inputs) for name, f in costs.items()}, device, rounds=args.rounds)
        record(op, "full", shape, timings)

    for family, op in zip(DISTRIBUTIONS, FAMILY_OPS):
        if op in args.ops:
            time_gradients(op, (SETS, POINTS), getattr(F, op), distributions_log_likelihood(family), family_inputs(family))
    if "normal_mixture_log_likelihood" in args.ops:
        for sets in MIXTURE_SETS[device]:
            time_gradients("normal_mixture_log_likelihood", mixture_shape(sets), F.normal_mixture_log_likelihood,
                           mixture_same_family, mixture_inputs(sets))
    if device == "cpu":
        cpu_front_ends(args.ops, args.rounds, record)
    write_results("loglik", rows, device, "\n".join(lines) + "\n")


def cpu_front_ends(ops, rounds, record) -> None:
    """The numpy front-end and the fit routines, against scipy."""
    import scipy.special  # here, not above: a GPU machine that runs the rest need not have scipy
    import scipy.stats

    def scipy_categorical(labels, logits):
        return np.take_along_axis(scipy.special.log_softmax(logits, axis=-1), labels[..., None], axis=-1)[..., 0].sum(-1)

    def scipy_normal_mixture(x, logits, loc, scale):
        # every point's log-density under every component, (sets, points, components)
        components = scipy.stats.norm.logpdf(x[:, :, None], loc[:, None], scale[:, None]).sum(-1)
        return scipy.special.logsumexp(components + scipy.special.log_softmax(logits, axis=-1)[:, None], axis=-1).sum(-1)

    cases = {  # op -> (fusedgan, scipy, inputs, shape)
        "numpy.normal_log_likelihood": (fnp.normal_log_likelihood, lambda x, loc, scale: scipy.stats.norm.logpdf(x, loc, scale).sum(-1),
                                        lambda: family_inputs("normal"), (SETS, POINTS)),
        "numpy.categorical_log_likelihood": (fnp.categorical_log_likelihood, scipy_categorical, lambda: family_inputs("categorical"),
                                             (SETS, POINTS)),
        "numpy.normal_mixture_log_likelihood": (fnp.normal_mixture_log_likelihood, scipy_normal_mixture, lambda: mixture_inputs(64),
                                                mixture_shape(64)),
    }
    for op, (ours, theirs, inputs, shape) in cases.items():
        if op in ops:
            arrays = [t.numpy() for t in inputs()]
            timings = time_providers({"fusedgan": lambda: ours(*arrays), "scipy": lambda: theirs(*arrays)}, "cpu", rounds=rounds)
            record(op, "forward", shape, timings)


if __name__ == "__main__":
    main()
