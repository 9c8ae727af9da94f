"""The binary entropy of sigmoids (csrc/torch/binary_entropy.cpp) against
torch.distributions.Bernoulli and float64 formulas."""

import math

import pytest
import torch
from helpers import DEVICES, ENTROPY_TOLERANCES, assert_close, opcheck_tests, random_logits, value_and_grad

from fusedgan import functional as F


def test_the_notes_fair_coin_in_bits():
    """A certain outcome carries 0 bits; a fair coin 1 bit."""
    assert F.binary_entropy_with_logits(torch.tensor([0.0, math.inf, -math.inf]), base=2).tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(ENTROPY_TOLERANCES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_entropy_matches_bernoulli(reduction, dtype, device):
    x = random_logits((5, 40), seed=4)
    value, grad = value_and_grad(lambda x: F.binary_entropy_with_logits(x, reduction=reduction), x.to(device, dtype))
    reduce = {"none": lambda h: h, "mean": torch.mean, "sum": torch.sum}[reduction]
    expected, expected_grad = value_and_grad(lambda x: reduce(torch.distributions.Bernoulli(logits=x).entropy()), x)
    assert value.dtype == dtype and value.shape == expected.shape
    assert_close(value, expected, dtype, ENTROPY_TOLERANCES)
    assert_close(grad, expected_grad, dtype, ENTROPY_TOLERANCES)


def test_base_divides_by_its_log():
    z = random_logits((4, 6), seed=5)
    torch.testing.assert_close(F.binary_entropy_with_logits(z, base=2), F.binary_entropy_with_logits(z) / math.log(2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_entropy_of_large_logits_is_exact(dtype):
    """H = e^-|x| (1 + |x|) to first order at large |x|: no cancellation in 1 - sigmoid."""
    x = torch.tensor([-80.0, -30.0, 17.0, 30.0, 80.0, 1e4], dtype=dtype)
    e = torch.exp(-x.double().abs())
    expected = torch.log1p(e) + x.double().abs() * e / (1 + e)
    value, grad = value_and_grad(F.binary_entropy_with_logits, x, grad_seed=3)
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=0)
    # dH/dx = -x sigmoid(x) sigmoid(-x) = -x e / (1 + e)^2, 0 where e underflows
    grad_output = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(grad.double(), grad_output * -x.double() * e / (1 + e) ** 2, rtol=1e-5, atol=0)


def test_empty_nan_and_infinite():
    assert F.binary_entropy_with_logits(torch.empty(0), reduction="sum").item() == 0.0
    assert F.binary_entropy_with_logits(torch.empty(0), reduction="mean").isnan()  # a mean of nothing, as torch
    assert F.binary_entropy_with_logits(torch.tensor([math.nan])).isnan().all()
    value, grad = value_and_grad(F.binary_entropy_with_logits, torch.tensor([math.inf, -math.inf]))
    assert value.tolist() == [0.0, 0.0] and grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("base", [None, 2.0])
def test_gradcheck_and_gradgradcheck(base, reduction):
    z = random_logits((3, 4), seed=10, scale=1.0)
    z[0, 0] = 0.0  # exactly 0: the derivatives must hold there too
    z.requires_grad_()
    fn = lambda z: F.binary_entropy_with_logits(z, reduction=reduction, base=base)
    assert torch.autograd.gradcheck(fn, (z,))
    assert torch.autograd.gradgradcheck(fn, (z,))


def test_differentiable_backward_matches_the_kernels():
    z = random_logits((5, 40), seed=11).requires_grad_()
    value = F.binary_entropy_with_logits(z, reduction="mean", base=2.0)
    kernels = torch.autograd.grad(value, z, retain_graph=True)[0]
    in_aten = torch.autograd.grad(value, z, create_graph=True)[0]
    torch.testing.assert_close(in_aten, kernels, **ENTROPY_TOLERANCES[torch.float64])


@pytest.mark.parametrize("base", [0.0, 1.0, -2.0, math.inf])
def test_bad_base_is_named(base):
    with pytest.raises(ValueError, match="binary_entropy_with_logits: base must be positive, finite and not 1"):
        F.binary_entropy_with_logits(torch.rand(3), base=base)


def test_integer_inputs_and_unknown_reductions_are_named():
    with pytest.raises(RuntimeError, match="expected logits to be a floating point tensor"):
        F.binary_entropy_with_logits(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.binary_entropy_with_logits(torch.rand(3), reduction="max")


def opcheck_samples():
    ops = torch.ops.fusedgan
    z = random_logits((3, 5)).float()
    for reduction in (0, 1, 2):
        grad = torch.rand(3, 5) if reduction == 0 else torch.rand(())
        yield ops.binary_entropy_with_logits.default, (z.clone().requires_grad_(), reduction, None)
        yield ops._binary_entropy_with_logits_backward.default, (grad, z, reduction, 2.0)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "binary_entropy" in name)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def fn(z):
        return F.binary_entropy_with_logits(z, reduction="mean", base=2) + F.binary_entropy_with_logits(z).sum()

    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for rows in (4, 6):
        z = random_logits((rows, 5)).float().requires_grad_()
        expected, actual = fn(z), compiled(z)
        torch.testing.assert_close(actual, expected)
        torch.testing.assert_close(torch.autograd.grad(actual, z)[0], torch.autograd.grad(expected, z)[0])
