"""Shared by the test modules."""

import csv

import pytest
import torch

import fusedgan
from longformat import FIELDS

CUDA_AVAILABLE = torch.cuda.is_available() and fusedgan.build_info()["cuda"]

# Agreement with a float64 reference, per dtype of the op's inputs.
TOLERANCES = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=2e-6, atol=2e-6),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
}


# Looser for the entropies, whose float32 kernels round each row's sum once more.
ENTROPY_TOLERANCES = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=2e-5, atol=2e-6),
    torch.float16: dict(rtol=4e-3, atol=4e-3),
    torch.bfloat16: dict(rtol=3e-2, atol=3e-2),
}


def assert_close(actual, expected, dtype, tolerances=TOLERANCES):
    torch.testing.assert_close(actual.double().cpu(), expected.double().cpu(), **tolerances[dtype])


def random_logits(shape, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


def value_and_grad(fn, x, grad_seed=1):
    """fn(x) and its gradient times a random incoming gradient (float64, seeded)."""
    x = x.detach().requires_grad_()
    value = fn(x)
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=torch.float64)
    (grad,) = torch.autograd.grad(value, x, grad_output.to(value.device, value.dtype))
    return value, grad


# Every device-parametrised test runs on CPU and, where a GPU and a CUDA build exist, on CUDA.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def opcheck_tests(samples, is_covered_op):
    """The two registration tests of an op module: torch.library.opcheck on every (op, args)
    sample, and a sample for every registered fusedgan op whose name is_covered_op accepts."""

    # torch 2.14's opcheck reads .grad of its own non-leaf copies of the inputs.
    @pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf Tensor:UserWarning")
    @pytest.mark.parametrize("op,args", samples, ids=lambda v: getattr(v, "__name__", None) or "")
    def test_opcheck(op, args):
        torch.library.opcheck(op, args)

    def test_every_op_has_an_opcheck_sample():
        covered = {op.name() for op, _ in samples}
        registered = {n for n in torch._C._dispatch_get_all_op_names() if n.startswith("fusedgan::") and is_covered_op(n)}
        assert registered == covered

    return test_opcheck, test_every_op_has_an_opcheck_sample


def append_results(path, stamp: str, rows, device: str = "Some CPU (avx2)", threads: int = 2,
                   torch_version: str = "2.13.0+cpu") -> None:
    """Appends a run of (op, provider, mode, shape, (p20, p50, p80) µs) rows to a benchmark
    results CSV, as the benchmark scripts write them."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for op, provider, mode, shape, (p20, p50, p80) in rows:
            writer.writerow(dict(op=op, provider=provider, mode=mode, shape=shape, dtype="float32", p20_us=p20, p50_us=p50,
                                 p80_us=p80, device=device, threads=threads, torch=torch_version, fusedgan="0.1.0",
                                 timestamp=stamp))
