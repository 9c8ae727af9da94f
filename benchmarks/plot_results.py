"""Plots the latest run of each benchmark from its long-format CSV: a panel per op and mode,
and at each shape a bar per baseline of fusedgan's speed-up over it, its median time over
fusedgan's (a log scale from 1: up is faster, down slower; the whisker spans its p20 over
fusedgan's p80 to its p80 over fusedgan's p20). The times themselves are in the
benchmark's table. Writes <stem>-<device>.png beside the CSV files, in benchmarks/results/
or the folder that FUSEDGAN_BENCH_RESULTS names; `make bench` plots every benchmark.

    python benchmarks/plot_results.py [bce loglik ...] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from longformat import Run, elements, latest_runs, readable_time, results_csv, results_folder, shape_label  # noqa: E402

COLUMNS = 4  # panels a row, at most


def plot(stem: str, device: str, run: Run) -> plt.Figure:
    panels = list(dict.fromkeys((key.op, key.mode, key.dtype) for key in run.times))  # in the order the script timed them
    baselines = dict.fromkeys(key.provider for key in run.times if key.provider != "fusedgan")
    colors = {provider: f"C{i}" for i, provider in enumerate(baselines)}
    columns = min(len(panels), COLUMNS)
    figure, axes = plt.subplots(math.ceil(len(panels) / columns), columns, figsize=(4.5 * columns, 3.8 * math.ceil(len(panels) / columns)),
                                squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        ours = {key.shape: t for key, t in run.times.items() if (key.op, key.mode, key.dtype) == panel and key.provider == "fusedgan"}
        shapes = sorted(ours, key=elements)
        keys = [key for key in run.times if (key.op, key.mode, key.dtype) == panel and key.shape in ours]
        providers = [provider for provider in baselines if any(key.provider == provider for key in keys)]
        width = 0.8 / len(providers)
        for i, provider in enumerate(providers):
            found = [(x, run.times[key], ours[shape]) for x, shape in enumerate(shapes) for key in keys
                     if (key.provider, key.shape) == (provider, shape)]
            xs = [x - 0.4 + (i + 0.5) * width for x, _, _ in found]
            speedups = [t.p50 / fused.p50 for _, t, fused in found]
            band = [[s - t.p20 / fused.p80 for s, (_, t, fused) in zip(speedups, found)],
                    [t.p80 / fused.p20 - s for s, (_, t, fused) in zip(speedups, found)]]
            axis.bar(xs, [s - 1 for s in speedups], width, bottom=1, yerr=band, color=colors[provider], label=provider, capsize=2)
        axis.axhline(1, color="black", linewidth=0.8)
        op, mode, dtype = panel
        title = f"{op} ({mode}{'' if dtype == 'float32' else ', ' + dtype})"
        axis.set_title(textwrap.fill(title, 40), fontsize=9)
        axis.set_xticks(range(len(shapes)), [shape_label(shape) for shape in shapes], fontsize=8)
        axis.set(yscale="log", ylabel="fusedgan's speed-up")
        axis.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}×"))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.grid(True, axis="y", which="both", alpha=0.3)
        axis.legend(fontsize=7)
    for axis in axes.flat[len(panels):]:
        axis.set_axis_off()
    machines = "; ".join(f"{name}, {threads} threads, torch {torch}" for name, threads, torch in sorted(run.machines))
    figure.suptitle(f"{stem} ({device}): {machines}, {readable_time(run.timestamp)}\nfusedgan's speed-up over each baseline: its median time over fusedgan's",
                    fontsize=10)
    figure.tight_layout()
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stems", nargs="*", help="the CSV files' names without .csv (default: every one with a run on the device)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    folder = results_folder()
    stems = args.stems or sorted({path.stem.removesuffix("-cuda") for path in folder.glob("*.csv")})
    for stem in stems:
        path = results_csv(stem, args.device, folder)
        run = latest_runs(path).get(args.device) if path.is_file() else None
        if run is None:
            if args.stems:
                raise SystemExit(f"plot_results.py: {path} holds no {args.device} run in the long format")
            continue
        out = folder / f"{stem}-{args.device}.png"
        plot(stem, args.device, run).savefig(out, dpi=110)
        plt.close("all")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
