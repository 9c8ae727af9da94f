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

Writes benchmarks/results/mle.csv and mle-cpu.md (CPU only: scikit-learn has no GPU side).

    python benchmarks/bench_mle.py [--rounds N] [--ops normal_mixture_em ...]
"""

from __future__ import annotations

import warnings

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


CASES = {"normal_mixture_em": normal_mixture_em}


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
