"""Every function of fusedgan.functional, forward and backward: the cases that
test_cuda_device.py runs on a GPU (run after run, on two streams at once, on the current
stream), and, run as a script, the workload that `make gpu-check` runs under
compute-sanitizer's memcheck and racecheck, at sizes within one block of threads, across 36
blocks and past one pass of the grid (1024 blocks of 256).

    python tests/cuda_cases.py [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
from typing import Callable

import torch

from fusedgan import functional as F
from fusedgan.families import FAMILIES

SANITIZER_SHAPES = [(3, 5), (7, 1283), (3, 100_003)]


def every_op(rows: int, cols: int, device: str = "cuda") -> dict[str, tuple[Callable, tuple]]:
    """name -> (fn, inputs): each function of fusedgan.functional (the name up to "[") on
    rows x cols data (the log-likelihoods: rows data sets of cols points; the mixture: points of
    2 dims, 40 components; the multivariate normal: points of 3 dims), where every input gets a gradient and what must not (weights,
    labels) is closed over. The reduced BCE runs with both operands differentiable and
    with a constant target, whose forward computes the input gradient. The data are drawn on
    the CPU, so that both devices' cases hold the same numbers."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape):
        return (torch.randn(shape, generator=g) * 2).to(device)

    def rand(*shape, low=0.0):
        return (low + torch.rand(shape, generator=g)).to(device)

    x, y, p = randn(rows, cols), rand(rows, cols), torch.sigmoid(randn(rows, cols))
    w, pw = rand(rows, 1, low=0.5), rand(cols, low=0.5)
    fake = randn(rows * cols // 2 + 3)  # J(D)'s second batch, of another size and shape
    cases = {}
    for r in ("none", "mean", "sum"):
        cases[f"binary_cross_entropy_with_logits[{r}]"] = (
            lambda x, y, r=r: F.binary_cross_entropy_with_logits(x, y, w, reduction=r, pos_weight=pw), (x, y))
        cases[f"binary_cross_entropy_with_logits[{r}, constant target]"] = (
            lambda x, r=r: F.binary_cross_entropy_with_logits(x, y, reduction=r), (x,))
        cases[f"binary_cross_entropy[{r}]"] = (lambda p, y, r=r: F.binary_cross_entropy(p, y, w, reduction=r), (p, y))
        cases[f"binary_entropy_with_logits[{r}]"] = (lambda x, r=r: F.binary_entropy_with_logits(x, reduction=r), (x,))
    cases["discriminator_cost"] = (lambda real, fake: F.discriminator_cost(real, fake, real_label=0.9), (x, fake))
    for kind in F.GENERATOR_KINDS:
        cases[f"generator_cost[{kind}]"] = (lambda fake, k=kind: F.generator_cost(fake, kind=k), (fake.clamp(max=10),))
    cases["discriminator_stats"] = (F.discriminator_stats, (x, fake))
    for dim in (-1, 0):  # a row per thread: few long rows, and many short ones
        cases[f"entropy[dim={dim}]"] = (lambda q, d=dim: F.entropy(q, d), (torch.softmax(x, dim),))
        cases[f"entropy_with_logits[dim={dim}]"] = (lambda z, d=dim: F.entropy_with_logits(z, d), (x,))
    for family in FAMILIES.values():  # data in [0, 1) lie in every family's support (binomial's: below total_count >= 1)
        params = [rand(rows, 1, low=1.0) if name in family.positive else randn(rows, 1) for name in family.params]
        cases[family.function_name] = (getattr(F, family.function_name), (rand(rows, cols), *params))
    labels = torch.randint(0, 7, (rows, cols), generator=g).to(device)
    cases["categorical_log_likelihood"] = (lambda logits: F.categorical_log_likelihood(labels, logits), (randn(rows, 1, 7),))
    cases["normal_mixture_log_likelihood"] = (
        F.normal_mixture_log_likelihood, (randn(rows, cols, 2), randn(rows, 40), randn(rows, 40, 2), rand(rows, 40, 2, low=0.5)))
    scale_tril = 0.3 * randn(rows, 3, 3).tril(-1) + torch.diag_embed(rand(rows, 3, low=0.5))
    cases["multivariate_normal_log_likelihood"] = (F.multivariate_normal_log_likelihood,
                                                   (randn(rows, cols, 3), randn(rows, 3), scale_tril))
    return cases


def run(fn: Callable, inputs: tuple) -> tuple[torch.Tensor, ...]:
    """fn(*inputs) and, where it is differentiable, its gradients for the inputs, for an
    incoming gradient of 0.75 (not 1, so that the backward scales what the forward kept)."""
    leaves = [t.detach().requires_grad_() for t in inputs]
    value = fn(*leaves)
    if not value.requires_grad:  # discriminator_stats
        return (value,)
    return (value.detach(), *torch.autograd.grad(value, leaves, torch.full_like(value, 0.75)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args()
    for rows, cols in SANITIZER_SHAPES:
        cases = every_op(rows, cols, args.device)
        for fn, inputs in cases.values():
            run(fn, inputs)
        print(f"{rows} x {cols}: {len(cases)} cases", flush=True)
    if args.device == "cuda":
        torch.cuda.synchronize()  # a kernel's fault surfaces here at the latest


if __name__ == "__main__":
    main()
