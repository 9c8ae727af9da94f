"""GAN costs, fusedgan vs the eager composition users write today vs torch.compile of it.

J(D): `discriminator_cost(real, fake)` against two BCE-with-logits calls with
`ones_like`/`zeros_like` targets, halves added. J(G): `generator_cost(fake, kind=...)` against
the same cost written with torch ops (non_saturating: half a BCE against ones; minimax: minus
half a BCE against zeros; maximum_likelihood: -exp(logits).mean() / 2). Every case is timed
forward + backward (gradients for both batches for J(D)), at a GAN batch (2x64), a PatchGAN
map (2x16x1x30x30) and 2x1M; `x.sum().backward()` on one batch is timed beside them as the
autograd floor. Writes benchmarks/results/gan_costs.csv (gan_costs-cuda.csv on a GPU) and
gan_costs-<device>.md.

    python benchmarks/bench_gan_costs.py [--device cpu|cuda] [--rounds N] [--costs discriminator_cost ...]
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

from common import Row, bench_parser, gpu_or_cpu, time_providers, timed_rows, write_results
from fusedgan import functional as F

torch._dynamo.config.recompile_limit = 64

SHAPES = {"2x64": (64,), "2x16x1x30x30": (16, 1, 30, 30), "2x1M": (1 << 20,)}


def eager_discriminator_cost(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_loss = TF.binary_cross_entropy_with_logits(real, torch.ones_like(real))
    fake_loss = TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return 0.5 * (real_loss + fake_loss)


EAGER_GENERATOR_COSTS = {
    "non_saturating": lambda fake: 0.5 * TF.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)),
    "minimax": lambda fake: -0.5 * TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)),
    "maximum_likelihood": lambda fake: -0.5 * torch.exp(fake).mean(),
}

COSTS = ["discriminator_cost", *(f"generator_cost[{kind}]" for kind in EAGER_GENERATOR_COSTS)]


def cases():
    """(op name, {provider: cost function}, number of batches) for every cost."""
    yield "discriminator_cost", {
        "fusedgan": F.discriminator_cost,
        "eager": eager_discriminator_cost,
        "compile": torch.compile(eager_discriminator_cost, fullgraph=True, dynamic=False),
    }, 2
    for kind, eager in EAGER_GENERATOR_COSTS.items():
        yield f"generator_cost[{kind}]", {
            "fusedgan": (lambda k: lambda fake: F.generator_cost(fake, kind=k))(kind),
            "eager": eager,
            "compile": torch.compile(eager, fullgraph=True, dynamic=False),
        }, 1


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--costs", nargs="+", choices=COSTS, default=COSTS)
    args = parser.parse_args()
    device = gpu_or_cpu(args.device)

    rows: list[Row] = []
    lines = [
        "| cost | shape | fusedgan µs | eager µs | compile µs | × eager | × compile | vs x.sum().backward() |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, costs, batches in cases():
        if op not in args.costs:
            continue
        for label, shape in SHAPES.items():
            g = torch.Generator(device=device).manual_seed(0)
            real = (torch.randn(shape, device=device, generator=g) * 2).requires_grad_()
            fake = (torch.randn(shape, device=device, generator=g) * 2).requires_grad_()
            inputs = (real, fake) if batches == 2 else (fake,)
            providers = {
                name: (lambda f: lambda: torch.autograd.grad(f(*inputs), inputs))(cost) for name, cost in costs.items()
            }
            providers["sum_backward"] = lambda: torch.autograd.grad(real.sum(), (real,))
            timings = time_providers(providers, device, rounds=args.rounds)
            rows += timed_rows(op, "full", (2, *shape) if batches == 2 else shape, timings)
            ours, eager, compiled, floor = (timings[p][1] for p in ("fusedgan", "eager", "compile", "sum_backward"))
            lines.append(
                f"| {op} | {label if batches == 2 else label[2:]} | {ours:.1f} | {eager:.1f} | {compiled:.1f} | "
                f"{eager / ours:.2f} | {compiled / ours:.2f} | {ours / floor:.2f}× |"
            )
            print(lines[-1], flush=True)
    write_results("gan_costs", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
