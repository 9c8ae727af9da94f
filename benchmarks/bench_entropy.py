"""Entropies, fusedgan vs torch.distributions, forward + backward.

`entropy_with_logits` against `Categorical(logits=...).entropy()`, `entropy` against
`torch.special.entr(q).sum(-1)`, and `binary_entropy_with_logits` against
`Bernoulli(logits=...).entropy()`. Writes benchmarks/results/entropy.csv and
entropy-<device>.md.

    python benchmarks/bench_entropy.py [--rounds N]
"""

from __future__ import annotations

import torch

from common import Row, bench_parser, time_providers, write_results
from fusedgan import functional as F

CASES = {
    "entropy_with_logits": (
        (16384, 16),
        F.entropy_with_logits,
        lambda z: torch.distributions.Categorical(logits=z).entropy(),
        "Categorical(logits).entropy()",
    ),
    "entropy": ((16384, 16), lambda z: F.entropy(z.softmax(-1)), lambda z: torch.special.entr(z.softmax(-1)).sum(-1), "entr(q).sum(-1)"),
    "binary_entropy_with_logits": (
        (1 << 20,),
        F.binary_entropy_with_logits,
        lambda z: torch.distributions.Bernoulli(logits=z).entropy(),
        "Bernoulli(logits).entropy()",
    ),
}


def main() -> None:
    parser = bench_parser(__doc__, rounds=11, devices=False)
    args = parser.parse_args()
    rows: list[Row] = []
    lines = ["| op | shape | fusedgan µs | baseline µs | × baseline | baseline |", "|---|---|---|---|---|---|"]
    for op, (shape, ours, theirs, baseline) in CASES.items():
        z = torch.randn(shape, generator=torch.Generator().manual_seed(0)).requires_grad_()
        providers = {name: (lambda f: lambda: torch.autograd.grad(f(z).sum(), z))(f) for name, f in (("fusedgan", ours), ("torch", theirs))}
        timings = time_providers(providers, "cpu", rounds=args.rounds)
        rows += [Row(op, p, "full", z.numel(), *t) for p, t in timings.items()]
        a, b = timings["fusedgan"][1], timings["torch"][1]
        lines.append(f"| {op} | {'x'.join(map(str, shape))} | {a:.0f} | {b:.0f} | {b / a:.1f} | {baseline} |")
        print(lines[-1], flush=True)
    write_results("entropy", rows, "cpu", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
