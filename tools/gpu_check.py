"""`make gpu-check OUT=dir`: fusedgan's check on a machine with a CUDA GPU (docs/gpu-check.md).

Builds fusedgan with its CUDA kernels for the GPU's architecture against the torch of the
python that runs this script, with no network, then runs the stages below, each with a time
limit and a log of its own in OUT. A stage that fails does not stop the others, but nothing
runs without the build, and the whole check ends within BUDGET_S: a stage that would start
later is not run.

  build          pip install . (FUSEDGAN_CUDA=ON) into a virtual environment that sees the
                 machine's packages, then a check that the CUDA kernels were built
  device checks  tests/test_cuda_device.py
  tests          the test suite, less its CPU-only modules
  memcheck       compute-sanitizer --tool memcheck over tests/cuda_cases.py (every op, small sizes)
  racecheck      compute-sanitizer --tool racecheck over the same
  bench <name>   a short GPU run of benchmarks/bench_<name>.py into OUT/<name>-cuda.csv and .md

The four stages after the build run at the same time, the benchmarks one at a time after
them. OUT/summary.md (also printed) gives each stage's result and time, the GPU, the versions
and whether the performance targets are met, from the benchmarks' results. Standard library
only.

    python3 tools/gpu_check.py --out DIR [--rehearse]

--rehearse runs the script where there is no GPU, to test it: torch must still be a CUDA build
and nvcc present. The build is for sm_90, the device checks skip, the sanitizers' workload
runs on the CPU without compute-sanitizer, the benchmarks run on the CPU at small sizes, and
nothing has a time limit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from longformat import RESULTS, Key, latest_runs, parse_time, results_csv  # noqa: E402 (standard library only, as this script)

# A task's device time is 15 minutes, the machine's start and a rerun included.
BUDGET_S = 470
MIN_STAGE_S = 10  # a stage is not started this close to the end of the budget
VENV = ROOT / "build" / "gpu-check-venv"
MODULES = ["pip", "scikit_build_core", "pybind11", "numpy", "pytest", "scipy"]
PROGRAMS = ["nvcc", "cmake", "ninja", "compute-sanitizer"]
CUDA_BIN_DIRS = [Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin", Path("/usr/local/cuda/compute-sanitizer")]

# What the interpreter under test has: its version, which MODULES it can import, and torch's
# versions and device, as JSON.
PROBE = """
import importlib.util, json, sys
info = {"python": sys.version.split()[0], "modules": {m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}}
try:
    import torch
except Exception as error:
    info["torch_error"] = repr(error)
else:
    info.update(torch=torch.__version__, cuda=torch.version.cuda, gpus=torch.cuda.device_count())
    if info["gpus"]:
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), arch=f"{p.major}{p.minor}", memory_gib=round(p.total_memory / 2**30, 1))
print(json.dumps(info))
"""
CHECK_CUDA_BUILD = "import sys, fusedgan; info = fusedgan.build_info(); print(info); sys.exit(0 if info['cuda'] else 'no CUDA kernels')"

# The benchmarks' arguments: few shapes, few rounds, few torch.compile warm-ups (each a
# compilation of its own). BCE_N is the size of the BCE targets.
BCE_N = 1 << 26
LOGLIK_OPS = ["normal_log_likelihood", "normal_mixture_log_likelihood"]  # each with a compiled baseline per shape
BENCHMARKS = {
    "cuda": {
        "bce": ["--modes", "full", "--sizes", "128", str(1 << 20), str(1 << 24), str(BCE_N), "--rounds", "7"],
        "gan_costs": ["--ops", "discriminator_cost", "--rounds", "7"],
        "loglik": ["--ops", *LOGLIK_OPS, "--rounds", "5"],
        "entropy": ["--rounds", "5"],
    },
    "cpu": {
        "bce": ["--modes", "full", "--sizes", "4096", "65536", "--rounds", "2"],
        "gan_costs": ["--ops", "discriminator_cost", "--rounds", "2"],
        "loglik": ["--ops", *LOGLIK_OPS, "--rounds", "2"],
        "entropy": ["--rounds", "2"],
    },
}
BENCH_LIMITS_S = {"bce": 120, "gan_costs": 90, "loglik": 90, "entropy": 90}  # a killed script writes nothing
EAGER = ("eager", "torch.distributions")  # the benchmarks' names for torch's ops run eagerly
# test_cuda_device.py's test of the same bits run after run (the summary reads its outcome)
BIT_IDENTICAL_TEST = "test_every_op_gives_the_same_bits_run_after_run"


@dataclass
class Stage:
    name: str
    commands: list[list[str]]  # run in turn, up to the first that fails
    limit_s: float
    needs: tuple[str, ...] = ()  # modules and programs, as in MODULES and PROGRAMS
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    stage: str
    status: str  # "pass", "FAIL" or "not run"
    start: float  # seconds after the check's start
    seconds: float = 0.0
    detail: str = ""
    log: str = ""


def run_command(command: list[str], log, env: dict[str, str], timeout: float) -> Optional[int]:
    """The command's exit status, or None if it ran out of time (then it and the processes it
    started are killed)."""
    try:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    except OSError as error:
        log.write(f"{error}\n")
        return 127
    try:
        return process.wait(timeout=max(timeout, 0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def run_stage(stage: Stage, out: Path, available: dict[str, bool], start: float, deadline: float) -> Result:
    began = time.monotonic()
    missing = [need for need in stage.needs if not available[need]]
    if missing:
        return Result(stage.name, "not run", began - start, detail=f"missing {', '.join(missing)}")
    if deadline - began < MIN_STAGE_S:
        return Result(stage.name, "not run", began - start, detail="out of time")
    limit = min(stage.limit_s, deadline - began)
    log = out / f"{stage.name.replace(' ', '-')}.log"
    with log.open("w") as f:
        for command in stage.commands:
            f.write(f"$ {shlex.join(command)}\n")
            f.flush()
            code = run_command(command, f, stage.env, began + limit - time.monotonic())
            if code != 0:
                break
    seconds = time.monotonic() - began
    if code == 0:
        return Result(stage.name, "pass", began - start, seconds, log=log.name)
    detail = f"killed at its limit of {limit:.0f} s" if code is None else f"exit status {code}"
    return Result(stage.name, "FAIL", began - start, seconds, detail, log.name)


def run_groups(groups: list[list[Stage]], out: Path, available: dict[str, bool], start: float,
               deadline: float) -> list[Result]:
    """Runs the groups in turn, and the stages of a group at the same time."""
    results = []
    for group in groups:
        with ThreadPoolExecutor(len(group)) as pool:
            results += pool.map(lambda stage: run_stage(stage, out, available, start, deadline), group)
    return results


def not_run(groups: list[list[Stage]], why: str) -> list[Result]:
    return [Result(stage.name, "not run", 0.0, detail=why) for group in groups for stage in group]


# ---- the stages


def build_stage(arch: str) -> tuple[Stage, str]:
    """The build and the python that has the package afterwards: this one where it is a
    virtual environment's, else that of a virtual environment over its packages (torch
    included), so that the machine's python is left as it was."""
    commands, python = [], sys.executable
    if sys.prefix == sys.base_prefix:
        commands.append([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(VENV)])
        python = str(VENV / "bin" / "python")
    commands += [
        [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "-v",
         "--config-settings=build-dir=build/gpu-check", "."],
        [python, "-c", CHECK_CUDA_BUILD],
    ]
    env = {"FUSEDGAN_CUDA": "ON", "FUSEDGAN_CUDA_ARCHITECTURES": arch, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count())}
    return Stage("build", commands, 300, ("pip", "scikit_build_core", "pybind11", "numpy", "nvcc", "cmake"), env), python


def check_groups(python: str, out: Path, device: str) -> list[list[Stage]]:
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    workload = [python, "tests/cuda_cases.py"]
    if device == "cuda":
        # Without torch's caching allocator each tensor is an allocation of its own, whose
        # bounds memcheck knows; API errors are torch's probing (ours raise in Python).
        sanitize = ["compute-sanitizer", "--error-exitcode", "1", "--report-api-errors", "no", "--tool"]
        sanitizers = [Stage(tool, [[*sanitize, tool, *workload]], 150, ("compute-sanitizer",),
                            {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}) for tool in ("memcheck", "racecheck")]
    else:
        sanitizers = [Stage(tool, [[*workload, "--device", "cpu"]], 150) for tool in ("memcheck", "racecheck")]
    checks = [
        Stage("device checks", [[*pytest, "--junitxml", str(out / "device-checks.xml"), "tests/test_cuda_device.py"]],
              150, ("pytest",)),
        # test_simd_levels (the CPU's instruction sets) and test_train (the trainer) run on the CPU only
        Stage("tests", [[*pytest, "--durations=10", "tests", "--ignore=tests/test_cuda_device.py",
                         "--ignore=tests/test_simd_levels.py", "--ignore=tests/test_train.py"]], 180, ("pytest", "scipy")),
        *sanitizers,
    ]
    benchmarks = [[Stage(f"bench {name}", [[python, f"benchmarks/bench_{name}.py", "--device", device, *args]],
                         BENCH_LIMITS_S[name], env={"FUSEDGAN_BENCH_RESULTS": str(out)})]
                  for name, args in BENCHMARKS[device].items()]
    return [checks, *benchmarks]


# ---- the environment


def probe(python: str) -> dict:
    run = subprocess.run([python, "-c", PROBE, *MODULES], capture_output=True, text=True)
    if run.returncode != 0:
        return {"torch_error": run.stderr.strip()[-2000:]}
    return json.loads(run.stdout)


def tool_versions(path: str) -> dict[str, Optional[str]]:
    """Each program of PROGRAMS: the line of its --version output that names the version, or
    None if it is not found."""
    versions = {}
    for program in PROGRAMS:
        found = shutil.which(program, path=path)
        if found is None:
            versions[program] = None
            continue
        output = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.splitlines()
        lines = [line for line in output if "version" in line.lower() or "release" in line.lower()]
        versions[program] = (lines or output or ["found"])[-1].strip()
    return versions


def environment_problem(info: dict, rehearse: bool) -> Optional[str]:
    """Why nothing can be checked here, if so."""
    if "torch_error" in info:
        return f"torch cannot be imported by {sys.executable}: {info['torch_error']}"
    if rehearse:
        return None
    if not info["cuda"]:
        return f"no CUDA device: torch {info['torch']} of {sys.executable} is a CPU build"
    if not info["gpus"]:
        return f"no CUDA device: torch {info['torch']} (CUDA {info['cuda']}) sees none (--rehearse tests this script without one)"
    return None


# ---- the targets


def bce_targets(p50: dict) -> list[tuple[str, str, str]]:
    names = ("BCE fwd+bwd at 64M: ≥ 85% of a copy's bandwidth", "BCE fwd+bwd at 64M: ≥ 1.5 × torch.compile")
    fused, compiled, copy = (p50.get(Key("bce_with_logits", provider, "full", str(BCE_N))) for provider in ("fusedgan", "compile", "copy"))
    if None in (fused, compiled, copy):
        return [(name, "not measured", "") for name in names]
    # The fused pass reads x and y and writes x's gradient: 12 bytes an element to the copy's 8.
    copy_gbs = 8 * BCE_N / copy / 1e3
    share = 12 * BCE_N / fused / 1e3 / copy_gbs
    return [
        (names[0], "met" if share >= 0.85 else "MISSED", f"{share:.0%} of the copy's {copy_gbs:.0f} GB/s"),
        (names[1], "met" if compiled / fused >= 1.5 else "MISSED", f"{compiled / fused:.2f}×"),
    ]


def eager_target(runs: dict[str, dict]) -> tuple[str, str, str]:
    name = "no op slower than torch eager at any benchmarked shape"
    times = []  # (fusedgan's time over eager's, case)
    for p50 in runs.values():
        for key, fused in p50.items():
            eager = [p50[other] for other in (key._replace(provider=baseline) for baseline in EAGER) if other in p50]
            if key.provider == "fusedgan" and eager:
                times.append((fused / eager[0], f"{key.op} ({key.mode}, {key.shape})"))
    if not times:
        return name, "not measured", ""
    slower = sorted((t for t in times if t[0] > 1), reverse=True)
    if slower:
        return name, "MISSED", "; ".join(f"{case}: {ratio:.2f}× eager's time" for ratio, case in slower)
    return name, "met", f"{len(times)} cases, at most {max(times)[0]:.2f}× eager's time"


def bit_identical_target(junit: Path) -> tuple[str, str, str]:
    name = "bit-identical reductions, run after run"
    try:
        cases = [case for case in ET.parse(junit).getroot().iter("testcase") if case.get("name") == BIT_IDENTICAL_TEST]
    except (OSError, ET.ParseError):
        return name, "not measured", f"no {junit.name}"
    if not cases or cases[0].find("skipped") is not None:
        return name, "not measured", f"{BIT_IDENTICAL_TEST} did not run"
    failed = cases[0].find("failure") is not None or cases[0].find("error") is not None
    return name, "MISSED" if failed else "met", f"tests/test_cuda_device.py::{BIT_IDENTICAL_TEST}"


def targets(out: Path, device: str, since: datetime.datetime) -> list[tuple[str, str, str]]:
    """(target, "met" | "MISSED" | "not measured", what was measured) from the latest run of
    each benchmark in OUT, if it began at `since` or later, and the device checks' JUnit file."""
    runs = {}
    for stem in BENCHMARKS[device]:
        path = results_csv(stem, device, out)
        run = latest_runs(path).get(device) if path.is_file() else None
        if run is not None and parse_time(run.timestamp) >= since:
            runs[stem] = run.p50
    return [*bce_targets(runs.get("bce", {})), eager_target(runs), bit_identical_target(out / "device-checks.xml")]


# ---- the summary


def summary(info: dict, versions: dict, results: list[Result], goals: list, seconds: float) -> str:
    lines = ["# fusedgan GPU check", ""]
    if "gpu" in info:
        lines.append(f"- GPU: {info['gpu']} (sm_{info['arch']}, {info['memory_gib']} GiB)")
    if "torch" in info:
        lines.append(f"- torch {info['torch']}, CUDA {info['cuda']}, Python {info['python']} ({sys.executable})")
    lines.append("- tools: " + "; ".join(f"{program}: {version or 'MISSING'}" for program, version in versions.items()))
    missing = [module for module, found in info.get("modules", {}).items() if not found]
    if missing:
        lines.append(f"- Python modules MISSING: {', '.join(missing)}")
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines += [f"- finished {stamp}, {seconds:.0f} s in all", ""]
    lines += ["| stage | result | started at (s) | seconds | log |", "|---|---|---|---|---|"]
    for r in results:
        result = f"{r.status} ({r.detail})" if r.detail else r.status
        lines.append(f"| {r.stage} | {result} | {r.start:.0f} | {r.seconds:.0f} | {r.log} |")
    if goals:
        lines += ["", "| target | result | measured |", "|---|---|---|"]
        lines += [f"| {name} | {status} | {measured} |" for name, status, measured in goals]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where the logs, results and summary.md go")
    parser.add_argument("--rehearse", action="store_true", help="test this script on a machine without a GPU")
    args = parser.parse_args()
    start, started = time.monotonic(), datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.rehearse else "cuda"
    # nvcc and compute-sanitizer may lie outside PATH, in the toolkit's folders
    path = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent), *map(str, CUDA_BIN_DIRS)])
    os.environ["PATH"] = path

    info, versions = probe(sys.executable), tool_versions(path)
    available = {**info.get("modules", {}), **{program: version is not None for program, version in versions.items()}}
    (out / "environment.log").write_text(json.dumps({"python": info, "tools": versions}, indent=2) + "\n")
    problem = environment_problem(info, args.rehearse)
    if problem:
        text = summary(info, versions, [Result("environment", "FAIL", 0.0, detail=problem, log="environment.log")], [],
                       time.monotonic() - start)
        (out / "summary.md").write_text(text)
        print(text)
        print(problem, file=sys.stderr)
        return 1

    build, python = build_stage(info.get("arch", "90"))  # rehearsals build for the H100/H200's sm_90
    groups = check_groups(python, out, device)
    deadline = start + BUDGET_S
    if args.rehearse:  # on whatever machine is at hand, however slow: no time limits
        deadline = math.inf
        for stage in [build, *(s for group in groups for s in group)]:
            stage.limit_s = math.inf
    for csv_file in RESULTS.glob("*-cuda.csv"):  # the runs so far, so that OUT's files can replace them
        shutil.copy(csv_file, out)
    (out / "device-checks.xml").unlink(missing_ok=True)  # an earlier check's, into the same OUT
    results = run_groups([[build]], out, available, start, deadline)
    if results[0].status == "pass":
        results += run_groups(groups, out, available, start, deadline)
    else:
        results += not_run(groups, "the build failed")
    goals = targets(out, device, started)
    for r in results:  # the end of each failed stage's log, for a reader of the console only
        if r.status == "FAIL":
            tail = (out / r.log).read_text(errors="replace").splitlines()[-15:]
            print(f"---- {r.stage} ({r.detail}), the end of {r.log}:", *tail, sep="\n")
    text = summary(info, versions, results, goals, time.monotonic() - start)
    (out / "summary.md").write_text(text)
    print(text)
    return 0 if all(r.status == "pass" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
