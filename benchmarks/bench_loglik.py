"""Batched log-likelihoods and fits, fusedgan vs torch.distributions, torch.compile and scipy.

- normal log-likelihood, forward + backward (gradients for loc and scale), 1024 data sets x
  16384 points, vs `torch.distributions.Normal(loc, scale).log_prob(x).sum(-1)` eager and
  compiled;
- normal-mixture log-likelihood, forward + backward, 64 data sets (on a GPU also 1) x 1024
  points x 8 dims, 16 components, vs torch.distributions.MixtureSameFamily;
- on the CPU only (front-ends without a GPU side): the numpy front-end's normal
  log-likelihood vs `scipy.stats.norm.logpdf(x, loc, scale).sum(-1)`, and
  `fusedgan.mle.fit("student_t", x)` of 10,000 data sets of 100 points vs `scipy.stats.t.fit`
  in a loop (timed on 20 of the sets), as time per data set.
Writes benchmarks/results/loglik.csv (loglik-cuda.csv on a GPU) and loglik-<device>.md.

    python benchmarks/bench_loglik.py [--device cpu|cuda] [--rounds N]
"""

from __future__ import annotations

import time

import numpy as np
import torch

import fusedgan.numpy as fnp
from common import Row, bench_parser, gpu_or_cpu, shape_text, time_providers, timed_rows, write_results
from fusedgan import functional as F
from fusedgan import mle

SETS, POINTS = 1024, 16384
MIXTURE_SETS = {"cpu": [64], "cuda": [1, 64]}


def distributions_normal(x, loc, scale):
    return torch.distributions.Normal(loc, scale).log_prob(x).sum(-1)


def mixture_same_family(x, logits, loc, scale):
    D = torch.distributions
    mixture = D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(loc, scale), 1))
    return mixture.log_prob(x.movedim(-2, 0)).sum(0)


def gradients_of(fn, *args, wrt):
    """A provider: the gradients of fn(*args).sum() for the tensors in wrt."""
    return lambda: torch.autograd.grad(fn(*args).sum(), wrt)


def main() -> None:
    parser = bench_parser(__doc__, rounds=7)
    args = parser.parse_args()
    device = gpu_or_cpu(args.device)
    rows: list[Row] = []
    lines = ["| case | shape | fusedgan | baseline | × baseline | baseline is |", "|---|---|---|---|---|---|"]

    def record(op, mode, shape, timings, baseline, unit="ms", dtype=torch.float32):
        rows.extend(timed_rows(op, mode, shape, timings, dtype))
        ours, theirs = timings["fusedgan"][1], timings[baseline][1]
        scale = 1e-3 if unit == "ms" else 1.0
        lines.append(f"| {op} | {shape_text(shape)} | {ours * scale:.2f} {unit} | {theirs * scale:.2f} {unit} | {theirs / ours:.1f} | {baseline} |")
        print(lines[-1], flush=True)

    # The data are drawn on the CPU, so that every device times the same values.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SETS, POINTS, generator=g).to(device)
    loc = torch.randn(SETS, 1, generator=g).to(device).requires_grad_()
    scale = (torch.rand(SETS, 1, generator=g) + 0.5).to(device).requires_grad_()
    compiled = torch.compile(distributions_normal, fullgraph=True, dynamic=False)
    costs = {"fusedgan": F.normal_log_likelihood, "torch.distributions": distributions_normal, "compile": compiled}
    providers = {name: gradients_of(f, x, loc, scale, wrt=(loc, scale)) for name, f in costs.items()}
    timings = time_providers(providers, device, rounds=args.rounds)
    record("normal_log_likelihood", "full", x.shape, timings, "torch.distributions")
    lines.append(f"| (same, vs torch.compile) | | | {timings['compile'][1] / 1e3:.2f} ms | {timings['compile'][1] / timings['fusedgan'][1]:.1f} | compile |")

    for sets in MIXTURE_SETS[device]:
        mx = torch.randn(sets, 1024, 8, generator=g).to(device)
        mparams = [torch.randn(sets, 16, generator=g), torch.randn(sets, 16, 8, generator=g), torch.rand(sets, 16, 8, generator=g) + 0.5]
        mparams = [p.to(device).requires_grad_() for p in mparams]
        providers = {name: gradients_of(f, mx, *mparams, wrt=mparams)
                     for name, f in {"fusedgan": F.normal_mixture_log_likelihood, "torch.distributions": mixture_same_family}.items()}
        timings = time_providers(providers, device, rounds=args.rounds)
        record("normal_mixture_log_likelihood", "full", (*mx.shape, 16), timings, "torch.distributions")

    if device == "cpu":
        cpu_front_ends(x, loc, scale, args.rounds, record)
    write_results("loglik", rows, device, "\n".join(lines) + "\n")


def cpu_front_ends(x, loc, scale, rounds, record) -> None:
    """The numpy front-end and the fit routines, against scipy."""
    import scipy.stats  # here, not above: a GPU machine that runs the rest need not have scipy

    xn, locn, scalen = x.numpy(), loc.detach().numpy(), scale.detach().numpy()
    timings = time_providers(
        {"fusedgan": lambda: fnp.normal_log_likelihood(xn, locn, scalen),
         "scipy": lambda: scipy.stats.norm.logpdf(xn, locn, scalen).sum(-1)},
        "cpu", rounds=rounds,
    )
    record("numpy.normal_log_likelihood", "forward", xn.shape, timings, "scipy")

    t_sets = torch.from_numpy(scipy.stats.t.rvs(4.0, 1.0, 2.0, size=(10_000, 100), random_state=np.random.default_rng(0)))
    start = time.perf_counter()
    mle.fit("student_t", t_sets)
    ours = (time.perf_counter() - start) / len(t_sets) * 1e6
    start = time.perf_counter()
    for row in t_sets[:20].numpy():
        scipy.stats.t.fit(row)
    theirs = (time.perf_counter() - start) / 20 * 1e6
    record("student_t_fit", "fit", t_sets.shape, {"fusedgan": (ours, ours, ours), "scipy": (theirs, theirs, theirs)},
           "scipy", unit="µs", dtype=t_sets.dtype)


if __name__ == "__main__":
    main()
