"""What every benchmark script shares: interleaved timing of several providers in one run,
quantiles over rounds, and long-format CSV + markdown output in benchmarks/results/ (or in the
folder that FUSEDGAN_BENCH_RESULTS names: `make gpu-check` puts them in its OUT)."""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

import fusedgan
from longformat import FIELDS, duration, results_csv, results_folder

# Every script compiles its baseline once per shape: more recompilations of one function than
# dynamo allows by default.
torch._dynamo.config.recompile_limit = 64


@dataclass
class Row:
    op: str
    provider: str
    mode: str
    shape: str  # the case's dims joined by "x", as shape_text writes them
    dtype: str
    p20_us: float
    p50_us: float
    p80_us: float


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def timed_rows(op: str, mode: str, shape: Sequence[int], timings: dict, dtype: torch.dtype = torch.float32) -> list[Row]:
    """One row per provider of a time_providers result."""
    return [Row(op, provider, mode, shape_text(shape), str(dtype).removeprefix("torch."), *t) for provider, t in timings.items()]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{cpu_model()} ({fusedgan.build_info()['simd']})"


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def compiled(fn: Callable) -> Callable:
    """The torch.compile baseline of an eager composition: default mode, one graph, static shapes
    (warmed up, as every provider, by time_providers)."""
    return torch.compile(fn, fullgraph=True, dynamic=False)


def forward_backward(fn: Callable, *inputs: torch.Tensor) -> Callable[[], object]:
    """A provider: fn(*inputs), summed if it is not a scalar, and its gradients for every input
    that requires grad."""
    wrt = [t for t in inputs if t.requires_grad]

    def step():
        out = fn(*inputs)
        return torch.autograd.grad(out.sum() if out.dim() else out, wrt)

    return step


def time_providers(
    providers: dict[str, Callable[[], object]], device: str, rounds: int = 15, min_seconds: float = 0.02
) -> dict[str, tuple[float, float, float]]:
    """(p20, p50, p80) microseconds per call for each provider. Providers are timed in turns,
    round after round, so that drift of a shared machine touches them all alike."""
    iterations = {}
    for name, fn in providers.items():  # warm up (compilation, caches) and size the inner loop
        for _ in range(3):
            fn()
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        once = max(time.perf_counter() - start, 1e-7)
        iterations[name] = max(1, int(min_seconds / once))
    samples: dict[str, list[float]] = {name: [] for name in providers}
    for _ in range(rounds):
        for name, fn in providers.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(iterations[name]):
                fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / iterations[name] * 1e6)
    result = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=10, method="inclusive")
        result[name] = (q[1], statistics.median(values), q[7])
    return result


def write_results(stem: str, rows: list[Row], device: str, table: str) -> None:
    """Appends the rows to results/<stem>.csv (CPU) or <stem>-cuda.csv and writes
    results/<stem>-<device>.md."""
    folder = results_folder()
    folder.mkdir(exist_ok=True)
    path = results_csv(stem, device, folder)
    new = not path.exists()
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    common = dict(
        device=device_name(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        fusedgan=fusedgan.__version__,
        timestamp=stamp,
    )
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({**row.__dict__, **{k: round(v, 3) if isinstance(v, float) else v for k, v in common.items()}})
    header = f"<!-- {stem}: {common['device']}, {common['threads']} threads, torch {common['torch']}, {stamp} -->\n"
    table_path = folder / f"{stem}-{device}.md"
    table_path.write_text(header + table)
    print(table)
    print(f"wrote {path} and {table_path}")


def size_label(n: int) -> str:
    for unit, scale in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def bench_parser(description: str, rounds: int = 15, devices: bool = True, ops: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The flags every timing script takes: --rounds, --device where it has a CUDA side, and
    --ops where it times several ops (all by default; a few while working on one)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if devices:
        parser.add_argument("--device", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=rounds)
    if ops:
        parser.add_argument("--ops", nargs="+", choices=ops, default=list(ops), metavar="OP", help=", ".join(ops))
    return parser


COMPARISON_HEADER = ["| op | shape | fusedgan | baseline | baseline's time | speed-up |", "|---|---|---|---|---|---|"]


def comparison_lines(op: str, shape: Sequence[int], timings: dict) -> list[str]:
    """Rows of a COMPARISON_HEADER table, printed as they come: fusedgan's median against each
    other provider's."""
    ours = timings["fusedgan"][1]
    lines = [f"| {op} | {shape_text(shape)} | {duration(ours)} | {provider} | {duration(t[1])} | {t[1] / ours:.2f} |"
             for provider, t in timings.items() if provider != "fusedgan"]
    print(*lines, sep="\n", flush=True)
    return lines


def gpu_or_cpu(argv_device: str | None) -> str:
    if argv_device:
        return argv_device
    return "cuda" if torch.cuda.is_available() and fusedgan.build_info()["cuda"] else "cpu"

