"""The long-format CSV files of benchmarks/results/ (standard library only): their columns,
each benchmark's file, the latest run in a file, and how the reports write their figures.

One row per (op, provider, mode, shape, dtype) timed in a run: `shape` is the case's size,
its dims joined by "x" ("1024x16384"; "2x256" for two batches of 256), `dtype` the data's
("float32"), and p20_us, p50_us (the median) and p80_us the quantiles of the time per call
over the run's rounds, in µs. The rows of one run share the device, thread count, versions
and timestamp. results/<stem>.csv holds the CPU runs of benchmarks/bench_<stem>.py and
results/<stem>-cuda.csv its CUDA runs; each file keeps every run, appended.
"""

from __future__ import annotations

import csv
import datetime
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ["op", "provider", "mode", "shape", "dtype", "p20_us", "p50_us", "p80_us", "device", "threads", "torch",
          "fusedgan", "timestamp"]
KINDS = ("cpu", "cuda")  # the kinds of device, each with files of its own


class Key(NamedTuple):
    """What a row times."""

    op: str
    provider: str
    mode: str
    shape: str
    dtype: str = "float32"


class Times(NamedTuple):
    p20: float
    p50: float
    p80: float


@dataclass(frozen=True)
class Run:
    """The rows of one run: all those of the latest timestamp in a file on one kind of device."""

    times: dict  # Key -> Times in µs
    machines: set  # (device, threads, torch)
    timestamp: str

    @property
    def p50(self) -> dict:
        return {key: t.p50 for key, t in self.times.items()}


def results_folder() -> Path:
    """Where the benchmark scripts write their results: the folder FUSEDGAN_BENCH_RESULTS names
    (`make gpu-check` sets it to its OUT; a try-out run can keep its results apart), else RESULTS."""
    return Path(os.environ.get("FUSEDGAN_BENCH_RESULTS", RESULTS))


def results_csv(stem: str, device: str, folder: Path = RESULTS) -> Path:
    """A benchmark's long-format CSV file: results/<stem>.csv for CPU runs, <stem>-cuda.csv for
    CUDA runs (so that a GPU machine's results can be brought back without merging files)."""
    return folder / (f"{stem}.csv" if device == "cpu" else f"{stem}-{device}.csv")


def elements(shape: str) -> int:
    return math.prod(int(dim) for dim in shape.split("x"))


def device_kind(device: str) -> str:
    return "cuda" if "NVIDIA" in device else "cpu"


def parse_time(stamp: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def latest_runs(path: Path) -> dict[str, Run]:
    """The latest run of a long-format CSV file per kind of device; {} for other files."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
            return {}
        rows = list(reader)
    runs = {}
    for kind in KINDS:
        mine = [row for row in rows if device_kind(row["device"]) == kind]
        if not mine:
            continue
        latest = max(mine, key=lambda row: parse_time(row["timestamp"]))["timestamp"]
        mine = [row for row in mine if row["timestamp"] == latest]
        times = {Key(row["op"], row["provider"], row["mode"], row["shape"], row["dtype"]):
                 Times(float(row["p20_us"]), float(row["p50_us"]), float(row["p80_us"])) for row in mine}
        runs[kind] = Run(times, {(row["device"], row["threads"], row["torch"]) for row in mine}, latest)
    return runs


def latest_of_each(folder: Path = RESULTS) -> dict[tuple[str, str], Run]:
    """(stem, kind of device) -> the latest run, over every long-format CSV file in the folder."""
    runs = {}
    for path in sorted(folder.glob("*.csv")):
        stem = path.stem.removesuffix("-cuda")
        for kind, run in latest_runs(path).items():
            latest = runs.get((stem, kind))  # <stem>.csv may hold older GPU runs too
            if latest is None or parse_time(run.timestamp) > parse_time(latest.timestamp):
                runs[(stem, kind)] = run
    return runs


# ---- how the reports write figures


def readable_time(stamp: str) -> str:
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.utcoffset() is not None:
        moment = moment.astimezone(datetime.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def duration(us: float) -> str:
    if us < 1000:
        return f"{us:.1f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1_000_000:.2f} s"


def times(ratio: float) -> str:
    """A ratio to three significant figures (two decimals below 10)."""
    if ratio >= 100:
        return f"{ratio:.0f}×"
    return f"{ratio:.1f}×" if ratio >= 10 else f"{ratio:.2f}×"


def shape_label(shape: str) -> str:
    """"2x1048576" as "2 × 1M": dims that are whole multiples of 2^20 in M."""
    dims = [int(dim) for dim in shape.split("x")]
    return " × ".join(f"{dim >> 20}M" if dim >= 1 << 20 and dim % (1 << 20) == 0 else str(dim) for dim in dims)
