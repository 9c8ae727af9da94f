"""The multivariate normal's log-likelihood, fusedgan vs torch.distributions and torch.compile.

Forward + backward with gradients for loc and scale_tril (the data fixed, as in maximum
likelihood), 64 data sets (on a GPU also 1) x 4096 points x 16 dims, one full-covariance normal
per data set, vs `torch.distributions.MultivariateNormal(loc, scale_tril=scale_tril,
validate_args=False).log_prob(x.movedim(-2, 0)).sum(0)` eager and under torch.compile. Writes
benchmarks/results/multivariate_normal.csv (multivariate_normal-cuda.csv on a GPU) and
multivariate_normal-<device>.md.

    python benchmarks/bench_multivariate_normal.py [--device cpu|cuda] [--rounds N]
"""

from __future__ import annotations

import torch

from common import (COMPARISON_HEADER, bench_parser, comparison_lines, compiled, forward_backward, gpu_or_cpu, time_providers,
                    timed_rows, write_results)
from fusedgan import functional as F

OP = "multivariate_normal_log_likelihood"
SETS = {"cpu": [64], "cuda": [1, 64]}
POINTS, DIMS = 4096, 16


def inputs(sets: int) -> list[torch.Tensor]:
    """x (sets, points, dims), loc (sets, dims) and a well-conditioned scale_tril (sets, dims,
    dims), drawn on the CPU so that every device times the same values."""
    g = torch.Generator().manual_seed(0)
    scale_tril = 0.3 * torch.randn(sets, DIMS, DIMS, generator=g).tril(-1) + torch.diag_embed(torch.rand(sets, DIMS, generator=g) + 0.5)
    return [torch.randn(sets, POINTS, DIMS, generator=g), torch.randn(sets, DIMS, generator=g), scale_tril]


def distributions_log_likelihood(x, loc, scale_tril):
    normal = torch.distributions.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)
    return normal.log_prob(x.movedim(-2, 0)).sum(0)


def main() -> None:
    args = bench_parser(__doc__, rounds=7).parse_args()
    device = gpu_or_cpu(args.device)
    rows, lines = [], list(COMPARISON_HEADER)
    for sets in SETS[device]:
        shape = (sets, POINTS, DIMS)
        x, loc, scale_tril = (t.to(device).requires_grad_(i > 0) for i, t in enumerate(inputs(sets)))
        costs = {"fusedgan": F.multivariate_normal_log_likelihood, "torch.distributions": distributions_log_likelihood,
                 "compile": compiled(distributions_log_likelihood)}
        timings = time_providers({name: forward_backward(f, x, loc, scale_tril) for name, f in costs.items()}, device,
                                 rounds=args.rounds)
        rows += timed_rows(OP, "full", shape, timings)
        lines += comparison_lines(OP, shape, timings)
    write_results("multivariate_normal", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
