"""The `fusedgan` command."""

from __future__ import annotations

import argparse
import sys
import time

import torch

import fusedgan
from fusedgan import functional as F


def demo(args: argparse.Namespace) -> int:
    """Trains a logistic-regression discriminator to tell two Gaussian blobs apart with the
    fused discriminator cost J(D), logging its statistics, then shows the stable BCE."""
    torch.manual_seed(args.seed)
    print(f"fusedgan {fusedgan.__version__}: {fusedgan.build_info()}")
    n = 4096
    real = torch.randn(n, 2) + torch.tensor([2.0, 0.0])
    fake = torch.randn(n, 2) - torch.tensor([2.0, 0.0])
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    start = time.perf_counter()
    for step in range(args.steps + 1):
        real_logits, fake_logits = model(real).squeeze(1), model(fake).squeeze(1)
        loss = F.discriminator_cost(real_logits, fake_logits, real_label=0.9)
        if step % max(1, args.steps // 5) == 0:
            d_real, d_fake, accuracy = F.discriminator_stats(real_logits, fake_logits).tolist()
            print(f"step {step:4d}  J(D) {loss.item():.4f}  D(x) {d_real:.3f}  D(G(z)) {d_fake:.3f}  accuracy {accuracy:.3f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"{args.steps} steps in {time.perf_counter() - start:.2f} s")
    extreme = torch.tensor([float("inf"), -float("inf"), 1e4], requires_grad=True)
    value = F.binary_cross_entropy_with_logits(extreme, torch.tensor([1.0, 0.0, 1.0]), reduction="none")
    value.sum().backward()
    print(f"stable at extreme logits: loss {value.tolist()}, grad {extreme.grad.tolist()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fusedgan", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="a short demonstration of the fused ops")
    demo_parser.add_argument("--steps", type=int, default=200)
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.set_defaults(run=demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
