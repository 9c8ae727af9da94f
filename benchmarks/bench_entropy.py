"""Entropies, fusedgan vs torch eager vs torch.compile of the same composition, forward + backward.

- `entropy_with_logits(z)` against `-(p * log p).sum(-1)` with `log p = z.log_softmax(-1)`
  (twice as fast as `Categorical(logits=z).entropy()` here);
- `entropy(q)` against `torch.special.entr(q).sum(-1)`, with q a tensor of probabilities
  (the gradient is q's);
- `binary_entropy_with_logits(z)` against `Bernoulli(logits=z, validate_args=False).entropy()`.

The first two on 16,384 rows of 16 and 256 rows of 50,257, a language model's vocabulary (on
a GPU: a row of a million and 4096 rows of 50,257), the binary one on 1M elements. Writes
benchmarks/results/entropy.csv (entropy-cuda.csv on a GPU) and entropy-<device>.md.

    python benchmarks/bench_entropy.py [--device cpu|cuda] [--rounds N] [--ops entropy ...]
"""

from __future__ import annotations

import torch

from common import (COMPARISON_HEADER, bench_parser, comparison_lines, compiled, forward_backward, gpu_or_cpu, time_providers,
                    timed_rows, write_results)
from fusedgan import functional as F

ROWS = {"cpu": [(16384, 16), (256, 50257)], "cuda": [(1, 1_000_000), (4096, 50257)]}
ELEMENTS = {"cpu": [(1 << 20,)], "cuda": [(1 << 20,)]}


def eager_entropy_with_logits(z: torch.Tensor) -> torch.Tensor:
    log_p = z.log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1)


def eager_entropy(q: torch.Tensor) -> torch.Tensor:
    return torch.special.entr(q).sum(-1)


def eager_binary_entropy_with_logits(z: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Bernoulli(logits=z, validate_args=False).entropy()


OPS = {  # op -> (shapes per device, fusedgan, the eager composition, whether its input is probabilities)
    "entropy_with_logits": (ROWS, F.entropy_with_logits, eager_entropy_with_logits, False),
    "entropy": (ROWS, F.entropy, eager_entropy, True),
    "binary_entropy_with_logits": (ELEMENTS, F.binary_entropy_with_logits, eager_binary_entropy_with_logits, False),
}


def main() -> None:
    args = bench_parser(__doc__, rounds=11, ops=list(OPS)).parse_args()
    device = gpu_or_cpu(args.device)
    rows, lines = [], list(COMPARISON_HEADER)
    for op in args.ops:
        shapes, ours, eager, probabilities = OPS[op]
        for shape in shapes[device]:
            g = torch.Generator(device=device).manual_seed(0)
            z = torch.randn(shape, generator=g, device=device)
            z = (z.softmax(-1) if probabilities else z).requires_grad_()
            costs = {"fusedgan": ours, "eager": eager, "compile": compiled(eager)}
            timings = time_providers({name: forward_backward(f, z) for name, f in costs.items()}, device, rounds=args.rounds)
            rows += timed_rows(op, "full", shape, timings)
            lines += comparison_lines(op, shape, timings)
    write_results("entropy", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
