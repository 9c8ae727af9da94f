"""Compares the latest runs of two long-format CSV files row by row: each matching row's
median, new over old, slowest first, so that a regression shows as a number above 1
(standard library only).

Rows match on op, provider, mode, shape and dtype. A row is marked `slower` when its new
p20 is above its old p80 (the two runs' bands do not overlap), `faster` the other way
round; the baselines' rows show how much the machine itself drifted between the runs.
Each kind of device (CPU, CUDA) that both files hold is compared on its own.

    cp benchmarks/results/loglik.csv /tmp/loglik-before.csv
    (change a kernel, rebuild, run benchmarks/bench_loglik.py)
    python benchmarks/compare.py /tmp/loglik-before.csv benchmarks/results/loglik.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from longformat import KINDS, Run, duration, latest_runs, readable_time


def describe(run: Run) -> str:
    machines = "; ".join(f"{device}, {threads} threads, torch {torch}" for device, threads, torch in sorted(run.machines))
    return f"{machines}, {readable_time(run.timestamp)}"


def comparison(old: Run, new: Run) -> list[str]:
    """The markdown table of the rows both runs hold, then the rows only one of them holds."""
    both = sorted(old.times.keys() & new.times.keys(), key=lambda key: (-new.times[key].p50 / old.times[key].p50, key))
    lines = ["| new / old | op | provider | mode | shape | dtype | old | new | bands |", "|---|---|---|---|---|---|---|---|---|"]
    for key in both:
        before, after = old.times[key], new.times[key]
        mark = "slower" if after.p20 > before.p80 else "faster" if after.p80 < before.p20 else ""
        lines.append(f"| {after.p50 / before.p50:.3f} | {' | '.join(key)} | {duration(before.p50)} | {duration(after.p50)} | {mark} |")
    for name, run, other in (("old", old, new), ("new", new, old)):
        alone = run.times.keys() - other.times.keys()
        if alone:
            cases = sorted({f"{key.op} ({key.mode}, {key.shape})" for key in alone})
            lines += ["", f"Only in the {name} run ({len(alone)} of its rows): {'; '.join(cases)}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    old, new = latest_runs(args.old), latest_runs(args.new)
    kinds = [kind for kind in KINDS if kind in old and kind in new]
    if not kinds:
        raise SystemExit(f"compare.py: {args.old} and {args.new} hold no run on the same kind of device")
    for kind in kinds:
        print(f"{kind.upper()}: old {describe(old[kind])}\n{' ' * len(kind)}  new {describe(new[kind])}\n")
        print("\n".join(comparison(old[kind], new[kind])), end="\n\n")


if __name__ == "__main__":
    main()
