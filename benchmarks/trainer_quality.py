"""Sample quality of `fusedgan train` with its default settings over seeds, beside the
figures the PacGAN paper (Lin et al. 2018) reports for the same benchmarks.

Benchmarks: the 2-D mixtures ring8 and grid25 (PacGAN's Table 1: modes, high-quality
samples, reverse KL); Stacked MNIST with the default players (Table 2: modes of 1,000, KL)
and with a discriminator a quarter the size of the generator's (Table 3); the MNIST digits
with the DCGAN and the MLP players (Fréchet and kernel distances in the digit classifier's
feature space, beside the same figures for held-out real digits, the floor).

Runs `fusedgan train --dataset D --seed S` for every benchmark and seed (`--jobs` at a time,
sharing the cores; a run whose metrics.json is already complete is not trained again, so an
interrupted script can simply be run again), reads each run's metrics.json and updates
benchmarks/results/trainer_quality.csv (one row per run; the rows of the benchmarks and seeds
not run this time are kept) and writes trainer_quality-cpu.md (means per benchmark).

    python benchmarks/trainer_quality.py [--benchmarks ring8 grid25] [--seeds 0 1 2 3 4] [--jobs 2] [--threads N]
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
from dataclasses import dataclass, field
from pathlib import Path

import torch

import fusedgan
from common import device_name
from longformat import RESULTS
from fusedgan.train.config import defaults_for

METRICS = ("modes", "high_quality", "reverse_kl", "kl", "frechet_distance", "kid", "frechet_distance_real", "kid_real")


@dataclass
class Benchmark:
    dataset: str
    settings: dict = field(default_factory=dict)  # beyond the dataset's defaults (a --config file)
    # published rows, as reported in the PacGAN paper: (method, modes, high-quality % or KL)
    published: list = field(default_factory=list)
    target: str = ""


# The image rows measured while the images' default learning rates were 2e-4 (they take 30-50
# minutes a seed here and were not run again when the defaults rose): their settings, so that
# the script reproduces the figures it reports.
LEARNING_RATES_2E4 = {"lr_generator": 2e-4, "lr_discriminator": 2e-4}

BENCHMARKS = {
    "ring8": Benchmark("ring8", published=[("VEEGAN", 8.0, 52.9), ("PacGAN4", 7.8, 95.9)],
                       target="8 modes, ≥ 98 % high quality"),
    "grid25": Benchmark("grid25", published=[("VEEGAN", 24.6, 40.0), ("PacGAN4", 24.8, 93.6)],
                        target="25 modes, ≥ 96 % high quality"),
    "stacked_mnist": Benchmark("stacked_mnist", published=[
        ("DCGAN", 99.0, 3.40), ("VEEGAN", 150.0, 2.95), ("Unrolled GAN", 48.7, 4.32), ("PacDCGAN2", 1000.0, 0.06)],
        target="1,000 modes, KL ≤ 0.10"),
    "stacked_mnist_quarter_d": Benchmark("stacked_mnist", {"hidden_discriminator": 16, **LEARNING_RATES_2E4}, published=[
        ("PacDCGAN4", 667.0, 1.81), ("Unrolled GAN, 10 unrolling steps", 327.0, 4.66)],
        target="above PacDCGAN4"),
    "mnist": Benchmark("mnist", LEARNING_RATES_2E4),
    "mnist_mlp": Benchmark("mnist", {"model": "mlp", "hidden": 256, **LEARNING_RATES_2E4}),
}


def train(name: str, seed: int, runs: Path, threads: int) -> dict:
    """The metrics of `fusedgan train` for benchmark `name` and `seed` (a run already finished
    in `runs` is not trained again)."""
    benchmark = BENCHMARKS[name]
    out = runs / f"{name}-seed{seed}"
    metrics = out / "metrics.json"
    if metrics.exists():
        finished = json.loads(metrics.read_text())
        if finished["step"] == defaults_for(benchmark.dataset).replace(**benchmark.settings).steps:
            return finished
    out.mkdir(parents=True, exist_ok=True)
    config = out / "benchmark.toml"
    config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in benchmark.settings.items()))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "fusedgan", "train", "--dataset", benchmark.dataset, "--seed", str(seed),
               "--config", str(config), "--out", str(out), "--quiet"]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(metrics.read_text())


def mean_of(runs: list[dict], key: str) -> float | None:
    values = [float(row[key]) for row in runs if row.get(key) not in (None, "")]
    return statistics.mean(values) if values else None


def text(value: float | None, form: str) -> str:
    return "–" if value is None else format(value, form)


def tables(rows: list[dict]) -> str:
    points = ["| benchmark | method | modes | high-quality samples | reverse KL | seconds per run | target |",
              "|---|---|---|---|---|---|---|"]
    images = ["| benchmark | method | modes (of 1,000) | KL | Fréchet distance | KID | seconds per run | target |",
              "|---|---|---|---|---|---|---|---|"]
    for name in [name for name in BENCHMARKS if any(row["benchmark"] == name for row in rows)]:
        runs = [row for row in rows if row["benchmark"] == name]
        benchmark = BENCHMARKS[name]
        modes = [int(row["modes"]) for row in runs if row["modes"] not in (None, "")]
        method = f"fusedgan, {len(runs)} seed(s)" + (f" (modes {min(modes)}–{max(modes)})" if modes else "")
        if "lr_generator" in benchmark.settings:
            method += f", learning rates {benchmark.settings['lr_generator']:g}"
        seconds = text(mean_of(runs, "seconds"), ".0f")
        if benchmark.dataset in ("ring8", "grid25"):
            quality = mean_of(runs, "high_quality")
            points.append(f"| {name} | {method} | {text(mean_of(runs, 'modes'), '.1f')} | {text(100 * quality, '.1f')} % | "
                          f"{text(mean_of(runs, 'reverse_kl'), '.3f')} | {seconds} | {benchmark.target} |")
            points += [f"| {name} | {who} (PacGAN paper) | {m} | {q} % | | | |" for who, m, q in benchmark.published]
            continue
        images.append(f"| {name} | {method} | {text(mean_of(runs, 'modes'), '.1f')} | {text(mean_of(runs, 'kl'), '.3f')} | "
                      f"{text(mean_of(runs, 'frechet_distance'), '.1f')} | {text(mean_of(runs, 'kid'), '.2f')} | {seconds} | "
                      f"{benchmark.target} |")
        if name == "mnist":
            images.append(f"| {name} | held-out real digits (the floor) | | | {text(mean_of(runs, 'frechet_distance_real'), '.1f')} "
                          f"| {text(mean_of(runs, 'kid_real'), '.2f')} | | |")
        images += [f"| {name} | {who} (PacGAN paper) | {m:g} | {kl} | | | | |" for who, m, kl in benchmark.published]
    return "\n\n".join("\n".join(table) for table in (points, images) if len(table) > 2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", nargs="+", default=["ring8", "grid25"], choices=list(BENCHMARKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="threads per run (default: the cores shared by the jobs)")
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()
    jobs = [(name, seed) for name in args.benchmarks for seed in args.seeds]
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: train(*job, args.runs, threads), jobs))
    fresh = [{"benchmark": name, "dataset": BENCHMARKS[name].dataset, "seed": seed, "step": m["step"],
              **{key: m.get(key, "") for key in METRICS}, "seconds": m["seconds"],
              "device": device_name("cpu"), "torch": torch.__version__, "fusedgan": fusedgan.__version__}
             for (name, seed), m in zip(jobs, results)]
    path = RESULTS / "trainer_quality.csv"
    kept = []  # the rows of runs not repeated this time stay
    if path.exists():
        with open(path, newline="") as f:
            kept = [{"benchmark": row.get("benchmark") or row["dataset"], **row} for row in csv.DictReader(f)]
            kept = [row for row in kept if (row["benchmark"], int(row["seed"])) not in jobs]
    rows = kept + fresh
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fresh[0]), restval="")
        writer.writeheader()
        writer.writerows(rows)
    table = tables(rows)
    (RESULTS / "trainer_quality-cpu.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
