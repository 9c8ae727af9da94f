"""The fused ops under torch.func's transforms, against torch's own functions under the same
transform, in one run:

- `vmap` of BCE with logits (mean) over 64 samples of 256 and of 16384 elements;
- per-sample gradients of J(D) with respect to a discriminator's parameters,
  `vmap(grad(J(D)))` over 256 samples (one real and one fake point each) through an MLP
  2-64-64-1 (`torch.func.functional_call`), as per-sample clipping (DP-SGD) needs; torch's
  side is the two-BCE composition;
- `jvp` of BCE with logits (mean) at 1M elements (forward-mode AD).

Writes benchmarks/results/transforms.csv (long format) and transforms-<device>.md.

    python benchmarks/bench_transforms.py [--device cpu|cuda] [--rounds N]
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch.func import functional_call, grad, jvp, vmap

from common import Row, bench_parser, gpu_or_cpu, shape_text, time_providers, timed_rows, write_results
from fusedgan import functional as F


def two_bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (TF.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                  + TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def cases(device: str) -> list[tuple[str, tuple[int, ...], str, dict]]:
    """(op, shape, mode, providers) of every case."""
    g = torch.Generator(device=device).manual_seed(0)

    def vmapped(samples: int, n: int) -> dict:
        x, y = torch.randn(samples, n, device=device, generator=g), torch.rand(samples, n, device=device, generator=g)
        return {name: (lambda f: lambda: vmap(f)(x, y))(f)
                for name, f in (("fusedgan", F.binary_cross_entropy_with_logits),
                                ("torch", TF.binary_cross_entropy_with_logits))}

    net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1)).to(device)
    params = {name: p.detach() for name, p in net.named_parameters()}
    real, fake = torch.randn(256, 1, 2, device=device, generator=g), torch.randn(256, 1, 2, device=device, generator=g)

    def per_sample(cost):
        def sample_cost(params, real, fake):
            logits = lambda points: functional_call(net, params, (points,)).squeeze(-1)  # noqa: E731
            return cost(logits(real), logits(fake))

        return lambda: vmap(grad(sample_cost), in_dims=(None, 0, 0))(params, real, fake)

    per_sample_grads = {"fusedgan": per_sample(F.discriminator_cost), "torch": per_sample(two_bce)}

    big_x, big_y = torch.randn(1 << 20, device=device, generator=g), torch.rand(1 << 20, device=device, generator=g)
    tangent = torch.randn(1 << 20, device=device, generator=g)
    forward_mode = {
        name: (lambda f: lambda: jvp(lambda a: f(a, big_y), (big_x,), (tangent,)))(f)
        for name, f in (("fusedgan", F.binary_cross_entropy_with_logits), ("torch", TF.binary_cross_entropy_with_logits))
    }
    return [
        ("vmap of BCE with logits (mean)", (64, 256), "vmap", vmapped(64, 256)),
        ("vmap of BCE with logits (mean)", (64, 16384), "vmap", vmapped(64, 16384)),
        ("per-sample gradients of J(D), vmap(grad), MLP 2-64-64-1", (256,), "vmap_grad", per_sample_grads),
        ("jvp of BCE with logits (mean)", (1 << 20,), "jvp", forward_mode),
    ]


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    device = gpu_or_cpu(args.device)
    rows: list[Row] = []
    lines = ["| case | shape | fusedgan µs | torch µs | × torch |", "|---|---|---|---|---|"]
    for op, shape, mode, providers in cases(device):
        timings = time_providers(providers, device, rounds=args.rounds)
        rows += timed_rows(op, mode, shape, timings)
        ours, theirs = timings["fusedgan"][1], timings["torch"][1]
        lines.append(f"| {op} | {shape_text(shape)} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} |")
        print(lines[-1], flush=True)
    write_results("transforms", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
