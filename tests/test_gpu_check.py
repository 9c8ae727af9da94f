"""tools/gpu_check.py (`make gpu-check`) where there is no GPU: stages that fail, run past their
limit or lack a tool; the targets from benchmark results and the device checks' JUnit file;
the workload it runs under compute-sanitizer; and its refusal to start without a GPU."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path

import gpu_check
import pytest
import torch
from cuda_cases import every_op, run
from helpers import append_results

from fusedgan import functional as F

ROOT = Path(__file__).resolve().parent.parent
SINCE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)  # when the check began


def stage(name, code, limit_s=30, needs=()):
    return gpu_check.Stage(name, [[sys.executable, "-c", code]], limit_s, needs)


def run_groups(groups, out, available=None):
    start = time.monotonic()
    return gpu_check.run_groups(groups, out, available or {}, start, start + 120)


def test_a_failed_stage_stops_none_of_the_others_and_missing_tools_are_named(tmp_path):
    results = run_groups([[stage("fails", "import sys; sys.exit(3)")],
                          [stage("passes", "print('ok')"), stage("lacks nvcc", "", needs=("nvcc",))]],
                         tmp_path, {"nvcc": False})
    assert [(r.stage, r.status, r.detail) for r in results] == [
        ("fails", "FAIL", "exit status 3"), ("passes", "pass", ""), ("lacks nvcc", "not run", "missing nvcc")]
    assert (tmp_path / "passes.log").read_text().endswith("\nok\n")


def test_the_stages_of_a_group_run_at_the_same_time(tmp_path):
    began = time.monotonic()
    results = run_groups([[stage("one", "import time; time.sleep(2)"), stage("two", "import time; time.sleep(2)")]], tmp_path)
    assert [r.status for r in results] == ["pass", "pass"]
    assert time.monotonic() - began < 3.5


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stage_past_its_limit_is_killed_with_the_processes_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    began = time.monotonic()
    (result,) = run_groups([[stage("sleeps", code, limit_s=3)]], tmp_path)
    assert (result.status, result.detail) == ("FAIL", "killed at its limit of 3 s")
    assert time.monotonic() - began < 10
    child = int(pid_file.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child)


def test_no_stage_starts_near_the_end_of_the_budget(tmp_path):
    start = time.monotonic()
    (result,) = gpu_check.run_groups([[stage("late", "")]], tmp_path, {}, start, start + gpu_check.MIN_STAGE_S / 2)
    assert (result.status, result.detail) == ("not run", "out of time")


def write_run(path: Path, stamp: str, rows) -> None:
    """Appends a run of (op, provider, mode, shape, p50 µs) rows measured on an H200 to a results CSV."""
    append_results(path, stamp, [(*row[:4], (row[4],) * 3) for row in rows], device="NVIDIA H200", threads=16,
                   torch_version="2.11.0+cu130")


def bce_run(fused, compiled, copy, eager=5000.0):
    return [("bce_with_logits", provider, "full", str(gpu_check.BCE_N), p50)
            for provider, p50 in (("fusedgan", fused), ("compile", compiled), ("copy", copy), ("eager", eager))]


def write_junit(path: Path, outcome: str) -> None:
    path.write_text(f'<testsuites><testsuite><testcase name="{gpu_check.BIT_IDENTICAL_TEST}">{outcome}'
                    '</testcase></testsuite></testsuites>')


def test_targets_met_from_the_latest_run(tmp_path):
    write_run(tmp_path / "bce-cuda.csv", "2026-01-01T00:00:10+00:00", bce_run(fused=900.0, compiled=300.0, copy=100.0))
    # 12 bytes an element in 140 µs against the copy's 8 in 100 µs: 107%; torch.compile 300 µs
    write_run(tmp_path / "bce-cuda.csv", "2026-02-01T00:00:00+00:00", bce_run(fused=140.0, compiled=300.0, copy=100.0))
    write_run(tmp_path / "loglik-cuda.csv", "2026-02-01T00:00:00+00:00",
              [("normal_log_likelihood", "fusedgan", "full", "2x5", 10.0), ("normal_log_likelihood", "torch.distributions", "full", "2x5", 20.0)])
    write_junit(tmp_path / "device-checks.xml", "")
    assert gpu_check.targets(tmp_path, "cuda", SINCE) == [
        ("BCE fwd+bwd at 64M: ≥ 85% of a copy's bandwidth", "met", "107% of the copy's 5369 GB/s"),
        ("BCE fwd+bwd at 64M: ≥ 1.5 × torch.compile", "met", "2.14×"),
        ("no op slower than torch eager at any benchmarked shape", "met", "2 cases, at most 0.50× eager's time"),
        ("bit-identical reductions, run after run", "met", f"tests/test_cuda_device.py::{gpu_check.BIT_IDENTICAL_TEST}"),
    ]


def test_targets_missed_name_what_missed_them(tmp_path):
    write_run(tmp_path / "bce-cuda.csv", "2026-02-01T00:00:00+00:00", bce_run(fused=200.0, compiled=250.0, copy=100.0))
    write_run(tmp_path / "entropy-cuda.csv", "2026-02-01T00:00:00+00:00",
              [("entropy", "fusedgan", "full", "1x1000000", 300.0), ("entropy", "eager", "full", "1x1000000", 100.0),
               ("entropy", "fusedgan", "full", "4096x50257", 20.0), ("entropy", "eager", "full", "4096x50257", 10.0)])
    write_junit(tmp_path / "device-checks.xml", '<failure message="mismatched"/>')
    assert [(status, measured) for _, status, measured in gpu_check.targets(tmp_path, "cuda", SINCE)] == [
        ("MISSED", "75% of the copy's 5369 GB/s"),
        ("MISSED", "1.25×"),
        ("MISSED", "entropy (full, 1x1000000): 3.00× eager's time; entropy (full, 4096x50257): 2.00× eager's time"),
        ("MISSED", f"tests/test_cuda_device.py::{gpu_check.BIT_IDENTICAL_TEST}"),
    ]


def test_the_bit_identical_target_is_a_device_check():
    assert f"def {gpu_check.BIT_IDENTICAL_TEST}():" in (ROOT / "tests" / "test_cuda_device.py").read_text()


def test_targets_not_measured_without_results_of_this_check(tmp_path):
    write_run(tmp_path / "bce-cuda.csv", "2025-12-31T23:59:59+00:00", bce_run(fused=140.0, compiled=300.0, copy=100.0))
    write_junit(tmp_path / "device-checks.xml", '<skipped message="needs a CUDA device"/>')
    assert [status for _, status, _ in gpu_check.targets(tmp_path, "cuda", SINCE)] == ["not measured"] * 4


def test_the_sanitizer_workload_covers_every_functional_and_runs():
    cases = every_op(7, 1283, device="cpu")
    assert {name.split("[")[0] for name in cases} == set(F.__all__)
    for fn, inputs in cases.values():
        assert all(t.isfinite().all() for t in run(fn, inputs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal to run without a GPU")
def test_without_a_gpu_it_stops_at_once_and_says_why(tmp_path):
    began = time.monotonic()
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True)
    assert check.returncode == 1
    assert check.stderr.startswith("no CUDA device: torch ")
    assert "| environment | FAIL (no CUDA device: " in (tmp_path / "summary.md").read_text()
    assert time.monotonic() - began < 60
