"""Every build of the CPU kernels this machine can run (AVX-512, AVX2, generic), each in a
process of its own with FUSEDGAN_SIMD set, through every op of simd_cases.py."""

import os
import subprocess
import sys

import pytest

import fusedgan

LEVELS = ["generic", "avx2", "avx512"]  # each a superset of the one before
SUPPORTED = LEVELS[:LEVELS.index(fusedgan.build_info()["simd"]) + 1]


@pytest.mark.parametrize("level", SUPPORTED)
def test_every_op_under_each_instruction_set(level):
    cases = os.path.join(os.path.dirname(__file__), "simd_cases.py")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cases],
                         env=dict(os.environ, FUSEDGAN_SIMD=level), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout
