"""Plots a benchmark's latest run from its long-format CSV: time per call against n, one
line per provider, one panel per op and mode. Writes benchmarks/results/<op>-<device>.png.

    python benchmarks/plot_results.py bce
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from longformat import RESULTS, elements, results_csv  # noqa: E402


def latest_rows(stem: str, device: str) -> list[dict]:
    """The rows of the newest run on a GPU (NVIDIA devices) or on the CPU."""
    with results_csv(stem, device).open() as f:
        rows = [row for row in csv.DictReader(f) if ("NVIDIA" in row["device"]) == (device == "cuda")]
    latest = max(row["timestamp"] for row in rows)
    return [row for row in rows if row["timestamp"] == latest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stem", help="the CSV's name in benchmarks/results, without .csv")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    rows = latest_rows(args.stem, args.device)
    mode_order = ["forward", "backward", "full"]
    panels = sorted({(row["op"], row["mode"]) for row in rows}, key=lambda p: (p[0], mode_order.index(p[1])))
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (op, mode) in zip(axes[0], panels):
        lines = defaultdict(list)
        for row in rows:
            if (row["op"], row["mode"]) == (op, mode):
                lines[row["provider"]].append((elements(row["shape"]), float(row["p20_us"]), float(row["p50_us"]), float(row["p80_us"])))
        for provider, points in sorted(lines.items()):
            points.sort()
            n, low, median, high = zip(*points)
            axis.plot(n, median, marker="o", label=provider)
            axis.fill_between(n, low, high, alpha=0.2)
        axis.set(xscale="log", yscale="log", xlabel="n", ylabel="µs per call (p20–p80 band)", title=mode if len({p[0] for p in panels}) == 1 else f"{op} ({mode})")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    device = rows[0]["device"]
    figure.suptitle(f"{args.stem}: {device}, {rows[0]['threads']} threads, torch {rows[0]['torch']}")
    figure.tight_layout()
    path = RESULTS / f"{args.stem}-{args.device}.png"
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
