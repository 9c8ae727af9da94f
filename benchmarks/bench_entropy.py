"""Entropies, fusedgan vs torch.distributions, forward + backward.

`entropy_with_logits` against `Categorical(logits=...).entropy()` and `entropy` against
`torch.special.entr(q).sum(-1)`, on 16,384 rows of 16 (on a GPU: a row of a million, and
4096 rows of 50,257, a language model's vocabulary), and `binary_entropy_with_logits` against
`Bernoulli(logits=...).entropy()` on 1M elements. Writes benchmarks/results/entropy.csv
(entropy-cuda.csv on a GPU) and entropy-<device>.md.

    python benchmarks/bench_entropy.py [--device cpu|cuda] [--rounds N]
"""

from __future__ import annotations

import torch

from common import Row, bench_parser, gpu_or_cpu, time_providers, timed_rows, write_results
from fusedgan import functional as F

ROWS = {"cpu": [(16384, 16)], "cuda": [(1, 1_000_000), (4096, 50257)]}
ELEMENTS = {"cpu": [(1 << 20,)], "cuda": [(1 << 20,)]}
CASES = {  # op -> (shapes per device, fusedgan, torch, the baseline's name)
    "entropy_with_logits": (
        ROWS,
        F.entropy_with_logits,
        lambda z: torch.distributions.Categorical(logits=z).entropy(),
        "Categorical(logits).entropy()",
    ),
    "entropy": (ROWS, lambda z: F.entropy(z.softmax(-1)), lambda z: torch.special.entr(z.softmax(-1)).sum(-1), "entr(q).sum(-1)"),
    "binary_entropy_with_logits": (
        ELEMENTS,
        F.binary_entropy_with_logits,
        lambda z: torch.distributions.Bernoulli(logits=z).entropy(),
        "Bernoulli(logits).entropy()",
    ),
}


def main() -> None:
    parser = bench_parser(__doc__, rounds=11)
    args = parser.parse_args()
    device = gpu_or_cpu(args.device)
    rows: list[Row] = []
    lines = ["| op | shape | fusedgan µs | baseline µs | × baseline | baseline |", "|---|---|---|---|---|---|"]
    for op, (shapes, ours, theirs, baseline) in CASES.items():
        for shape in shapes[device]:
            g = torch.Generator(device=device).manual_seed(0)
            z = torch.randn(shape, generator=g, device=device).requires_grad_()
            providers = {name: (lambda f: lambda: torch.autograd.grad(f(z).sum(), z))(f) for name, f in (("fusedgan", ours), ("eager", theirs))}
            timings = time_providers(providers, device, rounds=args.rounds)
            rows += timed_rows(op, "full", shape, timings)
            a, b = timings["fusedgan"][1], timings["eager"][1]
            lines.append(f"| {op} | {'x'.join(map(str, shape))} | {a:.0f} | {b:.0f} | {b / a:.1f} | {baseline} |")
            print(lines[-1], flush=True)
    write_results("entropy", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
