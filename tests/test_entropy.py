"""The entropy of probabilities and of a softmax along a dim (csrc/torch/entropy.cpp), against
scipy.stats.entropy, torch.distributions and float64 formulas."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import helpers
from helpers import DEVICES, ENTROPY_TOLERANCES, opcheck_tests, random_logits, value_and_grad

from fusedgan import functional as F

TOLERANCES = ENTROPY_TOLERANCES


def random_probs(shape, dim=-1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dim)


def assert_close(actual, expected, dtype):
    helpers.assert_close(actual, expected, dtype, TOLERANCES)


# ---- values against scipy and torch.distributions

def test_the_notes_two_class_examples_in_bits():
    """A certain outcome carries 0 bits; a fair coin 1 bit (0 log 0 = 0)."""
    q = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert F.entropy(q, base=2).tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("base", [None, 2, 10])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_entropy_matches_scipy(dim, base):
    q = random_probs((4, 7, 5), dim=dim)
    expected = scipy.stats.entropy(q.numpy(), base=base, axis=dim)
    np.testing.assert_allclose(F.entropy(q, dim, base=base).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("dim", [0, -1])
def test_entropy_matches_categorical(dim, dtype, device):
    q = random_probs((6, 9), dim=dim, seed=2)
    value, grad = value_and_grad(lambda q: F.entropy(q, dim), q.to(device, dtype))
    expected, expected_grad = value_and_grad(lambda q: torch.special.entr(q).sum(dim), q)
    categorical = torch.distributions.Categorical(probs=q if dim == -1 else q.t()).entropy()
    assert value.dtype == dtype and value.shape == expected.shape
    assert_close(value, categorical, dtype)
    assert_close(grad, expected_grad, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("dim", [1, -1])
def test_entropy_with_logits_matches_categorical(dim, dtype, device):
    z = random_logits((3, 8, 4), seed=3)
    value, grad = value_and_grad(lambda z: F.entropy_with_logits(z, dim), z.to(device, dtype))
    expected, expected_grad = value_and_grad(
        lambda z: torch.distributions.Categorical(logits=z.movedim(dim, -1)).entropy(), z
    )
    assert value.dtype == dtype and value.shape == expected.shape
    assert_close(value, expected, dtype)
    assert_close(grad, expected_grad, dtype)


@pytest.mark.parametrize("dtype,tops", [(torch.float32, [8.0, 12.0, 16.0, 20.0, 30.0]),
                                        (torch.float64, [20.0, 30.0, 36.0, 40.0])])
@pytest.mark.parametrize("rows,length", [(1, 3), (16, 3), (40, 3), (3, 100), (2, 5000)])  # short rows a row per lane, long rows
def test_entropy_with_logits_of_a_nearly_certain_row_keeps_its_relative_precision(dtype, tops, rows, length):
    """A row whose other classes weigh less than the epsilon next to the top one: its entropy
    is tiny, and it keeps its relative precision whether the row runs alone, among short rows
    a row per vector lane, or as a long row. The reference is the closed form of one logit
    `top` above length - 1 zeros: H = log1p(r) + top r / (1 + r), r = (length - 1) e^-top."""
    for top in tops:
        logits = torch.zeros(rows, length, dtype=dtype)
        logits[:, 1] = top
        r = (length - 1) * math.exp(-top)
        expected = torch.full((rows,), math.log1p(r) + top * r / (1 + r), dtype=torch.float64)
        rtol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(F.entropy_with_logits(logits).double(), expected, rtol=rtol, atol=0, msg=f"top {top}")


def test_base_divides_by_its_log():
    z = random_logits((4, 6), seed=5)
    for fn, x in ((F.entropy, random_probs((4, 6))), (F.entropy_with_logits, z)):
        torch.testing.assert_close(fn(x, base=2), fn(x) / math.log(2))


# ---- extremes, views, empty and zero-dimensional inputs

@pytest.mark.parametrize("device", DEVICES)
def test_minus_infinite_logits_are_classes_of_probability_zero(device):
    z = torch.tensor([[0.3, -math.inf, 1.2, -math.inf], [-math.inf, 2.0, -math.inf, -math.inf]], device=device)
    value, grad = value_and_grad(lambda z: F.entropy_with_logits(z), z)
    expected = torch.distributions.Categorical(logits=torch.tensor([0.3, 1.2])).entropy()
    torch.testing.assert_close(value.cpu(), torch.stack([expected, torch.tensor(0.0)]))
    finite_logits = torch.tensor([0.3, 1.2], requires_grad=True)
    grad_output = torch.randn(2, generator=torch.Generator().manual_seed(1))
    entropy = torch.distributions.Categorical(logits=finite_logits).entropy()
    (expected_grad,) = torch.autograd.grad(entropy, finite_logits, grad_output[0])
    assert (grad[z == -math.inf] == 0).all() and (grad[1] == 0).all()  # a certain row has entropy 0 for any logits
    torch.testing.assert_close(grad[0, [0, 2]].cpu(), expected_grad)


def test_probabilities_zero_and_one_and_their_gradient():
    q = torch.tensor([0.0, 1.0, 0.25])
    value, grad = value_and_grad(lambda q: F.entropy(q, 0), q, grad_seed=7)
    torch.testing.assert_close(value, -torch.tensor(0.25) * torch.log(torch.tensor(0.25)))
    _, expected_grad = value_and_grad(lambda q: torch.special.entr(q).sum(0), q, grad_seed=7)
    torch.testing.assert_close(grad, expected_grad)  # -(log 0 + 1) = inf at 0, as torch.special.entr


@pytest.mark.parametrize("device", DEVICES)
def test_views_and_empty_and_scalar_inputs(device):
    z = random_logits((10, 7), seed=8).to(device, torch.float32)
    torch.testing.assert_close(F.entropy_with_logits(z.t(), 0), F.entropy_with_logits(z, 1))
    q = random_probs((7, 10)).to(device, torch.float32)
    torch.testing.assert_close(F.entropy(q[:, ::2], 0), torch.special.entr(q[:, ::2]).sum(0))
    assert F.entropy(torch.empty(0, 3, device=device)).shape == (0,)
    assert F.entropy(torch.empty(3, 0, device=device)).tolist() == [0.0, 0.0, 0.0]  # a sum of nothing
    assert F.entropy_with_logits(torch.empty(4, 0, 3, device=device), 0).shape == (0, 3)
    assert F.entropy(torch.tensor(1.0, device=device)).item() == 0.0
    assert F.entropy_with_logits(torch.tensor(3.0, device=device)).item() == 0.0


def test_nan_propagates():
    assert F.entropy_with_logits(torch.tensor([0.0, math.nan])).isnan()


# ---- gradients

@pytest.mark.parametrize("base", [None, 2.0])
def test_gradcheck_and_gradgradcheck(base):
    q = random_probs((3, 4), seed=9).requires_grad_()
    z = random_logits((3, 4), seed=10, scale=1.0).requires_grad_()
    cases = [
        (lambda q: F.entropy(q, 0, base=base), q),
        (lambda z: F.entropy_with_logits(z, -1, base=base), z),
    ]
    for fn, x in cases:
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


def test_differentiable_backward_matches_the_kernels():
    """With create_graph the gradients are csrc/math's formulas in ATen ops; without, the
    kernels': the two must agree."""
    q = random_probs((5, 7), seed=11).requires_grad_()
    z = random_logits((5, 7), seed=12).requires_grad_()
    for fn, x in ((lambda q: F.entropy(q, 0, base=2.0), q), (lambda z: F.entropy_with_logits(z, -1), z)):
        value = fn(x)
        grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
        kernels = torch.autograd.grad(value, x, grad_output, retain_graph=True)[0]
        in_aten = torch.autograd.grad(value, x, grad_output, create_graph=True)[0]
        torch.testing.assert_close(in_aten, kernels, **TOLERANCES[torch.float64])


# ---- bad input

def test_negative_probabilities_raise():
    with pytest.raises(ValueError, match="probs must not be negative or NaN"):
        F.entropy(torch.tensor([0.5, -0.1, 0.6]))


@pytest.mark.parametrize("fn", [F.entropy, F.entropy_with_logits])
def test_dim_out_of_range_is_named(fn):
    with pytest.raises(ValueError, match=r"dim must be in \[-2, 1\] for an input of 2 dimensions, got 2"):
        fn(torch.rand(3, 4), 2)


@pytest.mark.parametrize("fn", [F.entropy, F.entropy_with_logits])
@pytest.mark.parametrize("base", [0.0, 1.0, -2.0, math.inf])
def test_bad_base_is_named(fn, base):
    with pytest.raises(ValueError, match="base must be positive, finite and not 1"):
        fn(torch.rand(3), base=base)


def test_integer_inputs_are_named():
    with pytest.raises(RuntimeError, match="expected probs to be a floating point tensor"):
        F.entropy(torch.ones(3, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="expected logits to be a floating point tensor"):
        F.entropy_with_logits(torch.ones(3, dtype=torch.int64))


# ---- the softmax form's gradient, computed in its forward pass and kept

@pytest.mark.parametrize("base", [None, 2.0])
@pytest.mark.parametrize("shape,dim", [((5000, 16), -1), ((16, 5000), 0), ((7, 300, 3), 1), ((), -1), ((0, 4), -1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_gradient_kept_from_the_forward_pass(shape, dim, dtype, base):
    """The first backward scales the gradient the forward computed; a second (retain_graph)
    and a differentiable one compute it again: the same bits, and the same value as without
    a gradient (to rounding)."""
    z = (torch.randn(shape, generator=torch.Generator().manual_seed(40), dtype=torch.float64) * 3).to(dtype)
    leaf = z.clone().requires_grad_()
    value = F.entropy_with_logits(leaf, dim, base=base)
    with torch.no_grad():
        torch.testing.assert_close(value, F.entropy_with_logits(z, dim, base=base), **ENTROPY_TOLERANCES[dtype])
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(41), dtype=torch.float64).to(dtype)
    first = torch.autograd.grad(value, leaf, grad_output, retain_graph=True)[0]
    again = torch.autograd.grad(value, leaf, grad_output, retain_graph=True)[0]
    graphed = torch.autograd.grad(value, leaf, grad_output, create_graph=True)[0]
    assert torch.equal(first, again)
    torch.testing.assert_close(first, graphed, **ENTROPY_TOLERANCES[dtype])
    if z.dim() and z.numel():
        reference = z.double().requires_grad_()
        expected = torch.distributions.Categorical(logits=reference.movedim(dim, -1)).entropy() / math.log(base or math.e)
        torch.testing.assert_close(first.double(), torch.autograd.grad(expected, reference, grad_output.double())[0],
                                   **ENTROPY_TOLERANCES[dtype])


def test_and_grad_is_not_differentiable_and_has_a_batching_rule():
    z = random_logits((4, 6, 5)).float()
    op = torch.ops.fusedgan._entropy_with_logits_and_grad.default
    with pytest.raises(RuntimeError, match="_entropy_with_logits_and_grad is not differentiable"):
        op(z.clone().requires_grad_(), -1, None)
    batched = torch.func.vmap(lambda x: op(x, 0, 2.0), in_dims=1)(z)
    looped = [op(z[:, i], 0, 2.0) for i in range(6)]
    for k in range(2):
        torch.testing.assert_close(batched[k], torch.stack([r[k] for r in looped]))


# ---- registration

def opcheck_samples():
    ops = torch.ops.fusedgan
    q = random_probs((3, 5)).float()
    z = random_logits((3, 5)).float()
    for dim in (0, -1):
        yield ops.entropy.default, (q.clone().requires_grad_(), dim, None)
        yield ops.entropy_with_logits.default, (z.clone().requires_grad_(), dim, 2.0)
        grad = torch.rand(5 if dim == 0 else 3)
        yield ops._entropy_backward.default, (grad, q, dim, None)
        yield ops._entropy_with_logits_backward.default, (grad, z, dim, None)
        yield ops._entropy_with_logits_and_grad.default, (z, dim, 2.0)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: name.removeprefix("fusedgan::_").removeprefix("fusedgan::").startswith("entropy"))


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def fn(z):
        return F.entropy_with_logits(z, base=2).sum() + F.entropy(z.softmax(0), 0).sum()

    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for rows in (4, 6):
        z = random_logits((rows, 5)).float().requires_grad_()
        expected = fn(z)
        actual = compiled(z)
        torch.testing.assert_close(actual, expected)
        torch.testing.assert_close(torch.autograd.grad(actual, z)[0], torch.autograd.grad(expected, z)[0])
