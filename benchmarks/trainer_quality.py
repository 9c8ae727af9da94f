"""Sample quality of `fusedgan train` with its default settings over seeds, beside the
figures the PacGAN paper (Lin et al. 2018) reports for the same benchmarks.

Runs `fusedgan train --dataset D --seed S` for every dataset and seed (`--jobs` at a time,
one thread each; a run whose metrics.json is already complete is not trained again, so an
interrupted script can simply be run again), reads each run's metrics.json and updates
benchmarks/results/trainer_quality.csv (one row per run; the rows of datasets not run this
time are kept) and writes trainer_quality-cpu.md (means per dataset).

    python benchmarks/trainer_quality.py [--datasets ring8 grid25] [--seeds 0 1 2 3 4] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

import fusedgan
from common import device_name
from longformat import RESULTS
from fusedgan.train.config import defaults_for

# published figures for the same protocol (modes, high-quality samples %), as reported in
# the PacGAN paper (Lin et al. 2018)
PUBLISHED = {
    "ring8": [("VEEGAN", 8.0, 52.9), ("PacGAN4", 7.8, 95.9)],
    "grid25": [("VEEGAN", 24.6, 40.0), ("PacGAN4", 24.8, 93.6)],
}
TARGETS = {"ring8": (8.0, 95.0), "grid25": (24.5, 90.0)}


def train(dataset: str, seed: int, runs: Path) -> dict:
    """The metrics of `fusedgan train --dataset dataset --seed seed` (a run already finished
    in `runs` is not trained again)."""
    out = runs / f"{dataset}-seed{seed}"
    metrics = out / "metrics.json"
    if metrics.exists():
        finished = json.loads(metrics.read_text())
        if finished["step"] == defaults_for(dataset).steps:
            return finished
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "fusedgan", "train", "--dataset", dataset, "--seed", str(seed),
               "--out", str(out), "--quiet"]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(metrics.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()
    jobs = [(dataset, seed) for dataset in args.datasets for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: train(*job, args.runs), jobs))
    fresh = [{"dataset": dataset, "seed": seed, **{k: m[k] for k in ("step", "modes", "high_quality", "reverse_kl", "seconds")},
              "device": device_name("cpu"), "torch": torch.__version__, "fusedgan": fusedgan.__version__}
             for (dataset, seed), m in zip(jobs, results)]
    path = RESULTS / "trainer_quality.csv"
    kept = []  # the rows of datasets not run this time stay
    if path.exists():
        with open(path, newline="") as f:
            kept = [row for row in csv.DictReader(f) if row["dataset"] not in args.datasets]
    rows = kept + fresh
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fresh[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| dataset | method | modes | high-quality samples | reverse KL | seconds per run | target |",
             "|---|---|---|---|---|---|---|"]
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        runs = [row for row in rows if row["dataset"] == dataset]
        modes = [int(row["modes"]) for row in runs]
        quality = 100 * statistics.mean(float(row["high_quality"]) for row in runs)
        kls = [float(row["reverse_kl"]) for row in runs if row["reverse_kl"] not in (None, "")]
        kl = f"{statistics.mean(kls):.3f}" if kls else "–"
        seconds = statistics.mean(float(row["seconds"]) for row in runs)
        target_modes, target_quality = TARGETS[dataset]
        met = "met" if statistics.mean(modes) >= target_modes and quality >= target_quality else "not met"
        lines.append(f"| {dataset} | fusedgan, {len(runs)} seeds (modes {min(modes)}–{max(modes)}) | "
                     f"{statistics.mean(modes):.1f} | {quality:.1f} % | {kl} | {seconds:.0f} | "
                     f"≥ {target_modes} / ≥ {target_quality:.0f} %: {met} |")
        for name, published_modes, published_quality in PUBLISHED[dataset]:
            lines.append(f"| {dataset} | {name} (PacGAN paper) | {published_modes} | {published_quality} % | | | |")
    table = "\n".join(lines) + "\n"
    (RESULTS / "trainer_quality-cpu.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
