"""GAN costs, fusedgan vs the eager composition users write today vs torch.compile of it.

J(D): `discriminator_cost(real, fake)` against two BCE-with-logits calls with
`ones_like`/`zeros_like` targets, halves added. J(G): `generator_cost(fake, kind=...)` against
the same cost written with torch ops (non_saturating: half a BCE against ones; minimax: minus
half a BCE against zeros; maximum_likelihood: -exp(logits).mean() / 2). Every case is timed
forward + backward (gradients for both batches for J(D)), at a GAN batch (2x64), a PatchGAN
map (2x16x1x30x30) and 2x1M; `x.sum().backward()` on one batch is timed beside them as the
autograd floor.

`discriminator_stats(real, fake)` (not differentiable: forward only) against the torch ops it
replaces, `sigmoid(real).mean()`, `sigmoid(fake).mean()` and the accuracy
`((real > 0).sum() + (fake < 0).sum()) / (real.numel() + fake.numel())` stacked, eager and
compiled, at 2x256 and 2x1M.

Writes benchmarks/results/gan_costs.csv (gan_costs-cuda.csv on a GPU) and gan_costs-<device>.md.

    python benchmarks/bench_gan_costs.py [--device cpu|cuda] [--rounds N] [--ops discriminator_cost ...]
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as TF

from common import (COMPARISON_HEADER, Row, bench_parser, comparison_lines, compiled, forward_backward, gpu_or_cpu, time_providers,
                    timed_rows, write_results)
from fusedgan import functional as F

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
STATS_SHAPES = [(256,), (1 << 20,)]  # a batch of each kind


def eager_discriminator_stats(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    accuracy = ((real > 0).sum() + (fake < 0).sum()) / (real.numel() + fake.numel())
    return torch.stack([torch.sigmoid(real).mean(), torch.sigmoid(fake).mean(), accuracy])


def cases():
    """(op name, {provider: cost function}, number of batches) for every cost."""
    yield "discriminator_cost", {
        "fusedgan": F.discriminator_cost,
        "eager": eager_discriminator_cost,
        "compile": compiled(eager_discriminator_cost),
    }, 2
    for kind, eager in EAGER_GENERATOR_COSTS.items():
        yield f"generator_cost[{kind}]", {
            "fusedgan": (lambda k: lambda fake: F.generator_cost(fake, kind=k))(kind),
            "eager": eager,
            "compile": compiled(eager),
        }, 1


def batches_of(shape: tuple[int, ...], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and fake logits of the given shape."""
    g = torch.Generator(device=device).manual_seed(0)
    return tuple(torch.randn(shape, device=device, generator=g) * 2 for _ in range(2))


def time_costs(ops: list[str], device: str, rounds: int, rows: list) -> str:
    """The costs' forward + backward against eager, compiled and the autograd floor: adds the
    rows, returns the table."""
    lines = [
        "| cost | shape | fusedgan µs | eager µs | compile µs | × eager | × compile | vs x.sum().backward() |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, costs, batches in cases():
        if op not in ops:
            continue
        for label, shape in SHAPES.items():
            real, fake = (batch.requires_grad_() for batch in batches_of(shape, device))
            inputs = (real, fake) if batches == 2 else (fake,)
            providers = {name: forward_backward(cost, *inputs) for name, cost in costs.items()}
            providers["sum_backward"] = forward_backward(torch.sum, real)
            timings = time_providers(providers, device, rounds=rounds)
            rows.extend(timed_rows(op, "full", (2, *shape) if batches == 2 else shape, timings))
            ours, eager, compiled_cost, floor = (timings[p][1] for p in ("fusedgan", "eager", "compile", "sum_backward"))
            lines.append(
                f"| {op} | {label if batches == 2 else label[2:]} | {ours:.1f} | {eager:.1f} | {compiled_cost:.1f} | "
                f"{eager / ours:.2f} | {compiled_cost / ours:.2f} | {ours / floor:.2f}× |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def time_stats(device: str, rounds: int, rows: list) -> str:
    """discriminator_stats against the composition of torch ops it replaces, eager and compiled:
    adds the rows, returns the table."""
    lines = list(COMPARISON_HEADER)
    stats = {"fusedgan": F.discriminator_stats, "eager": eager_discriminator_stats, "compile": compiled(eager_discriminator_stats)}
    for shape in STATS_SHAPES:
        real, fake = batches_of(shape, device)
        timings = time_providers({name: partial(f, real, fake) for name, f in stats.items()}, device, rounds=rounds)
        rows.extend(timed_rows("discriminator_stats", "forward", (2, *shape), timings))
        lines += comparison_lines("discriminator_stats", (2, *shape), timings)
    return "\n".join(lines) + "\n"


def main() -> None:
    args = bench_parser(__doc__, ops=[*COSTS, "discriminator_stats"]).parse_args()
    device = gpu_or_cpu(args.device)
    rows: list[Row] = []
    tables = []
    if set(COSTS) & set(args.ops):
        tables.append(time_costs(args.ops, device, args.rounds, rows))
    if "discriminator_stats" in args.ops:
        tables.append(time_stats(device, args.rounds, rows))
    write_results("gan_costs", rows, device, "\n".join(tables))


if __name__ == "__main__":
    main()
