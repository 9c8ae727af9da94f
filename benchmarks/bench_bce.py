"""BCE-with-logits, fusedgan vs torch eager vs torch.compile, forward / backward / both.

Modes: `forward` is the loss alone (no gradient wanted); `backward` repeats the backward of
one retained graph, so it times the backward op, which computes the gradient from the saved
inputs; `full` is forward + backward as in training, where a mean/sum loss whose target
needs no gradient computes the input gradient in its forward pass and the backward only
hands it on.

Also timed in the same run: `x.sum().backward()` (the autograd floor every loss pays) and a
copy of x (the memory roofline). Writes benchmarks/results/bce.csv (long format; bce-cuda.csv
on a GPU) and benchmarks/results/bce-<device>.md.

    python benchmarks/bench_bce.py [--device cpu|cuda] [--sizes 128 1048576 ...] [--modes full ...]
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

from common import Row, bench_parser, compiled, gpu_or_cpu, size_label, time_providers, timed_rows, write_results
from fusedgan import functional as F

CPU_SIZES = [128, 4096, 1 << 16, 1 << 20, 1 << 24]
GPU_SIZES = [128, 1 << 16, 1 << 20, 1 << 24, 1 << 26]
MODES = ["forward", "backward", "full"]


def providers_for(n: int, device: str, mode: str) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, device=device, generator=g).requires_grad_()
    y = torch.rand(n, device=device, generator=g)
    losses = {
        "fusedgan": F.binary_cross_entropy_with_logits,
        "eager": TF.binary_cross_entropy_with_logits,
        "compile": compiled(TF.binary_cross_entropy_with_logits),
    }
    providers = {}
    for name, loss_fn in losses.items():
        if mode == "forward":
            providers[name] = (lambda f: lambda: f(x.detach(), y))(loss_fn)
        elif mode == "backward":
            loss = loss_fn(x, y)
            providers[name] = (lambda l: lambda: torch.autograd.grad(l, (x,), retain_graph=True))(loss)
        else:
            providers[name] = (lambda f: lambda: torch.autograd.grad(f(x, y), (x,)))(loss_fn)
    if mode == "full":
        providers["sum_backward"] = lambda: torch.autograd.grad(x.sum(), (x,))
    out = torch.empty_like(y)
    providers["copy"] = lambda: out.copy_(y)
    return providers


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    args = parser.parse_args()
    device = gpu_or_cpu(args.device)
    sizes = args.sizes or (GPU_SIZES if device == "cuda" else CPU_SIZES)

    rows: list[Row] = []
    lines = [
        "| mode | n | fusedgan µs | eager µs | compile µs | × eager | × compile | vs sum().backward() | copy GB/s | fusedgan GB/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in args.modes:
        for n in sizes:
            timings = time_providers(providers_for(n, device, mode), device, rounds=args.rounds)
            rows += timed_rows("bce_with_logits", mode, (n,), timings)
            ours, eager, compile_time = (timings[p][1] for p in ("fusedgan", "eager", "compile"))
            floor = f"{ours / timings['sum_backward'][1]:.2f}×" if "sum_backward" in timings else ""
            copy_gbs = 2 * 4 * n / timings["copy"][1] / 1e3
            # the bytes the op must move: forward reads x and y; backward and full (which computes
            # the gradient in its forward pass) read x and y and write the gradient
            moved = {"forward": 2, "backward": 3, "full": 3}[mode] * 4 * n
            lines.append(
                f"| {mode} | {size_label(n)} | {ours:.1f} | {eager:.1f} | {compile_time:.1f} | {eager / ours:.2f} | "
                f"{compile_time / ours:.2f} | {floor} | {copy_gbs:.1f} | {moved / ours / 1e3:.1f} |"
            )
            print(lines[-1], flush=True)
    write_results("bce", rows, device, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
