"""Every op forward and backward against float64 torch, run by test_simd_levels.py once per CPU
instruction set (FUSEDGAN_SIMD=generic|avx2|avx512, a process each), so that every build of the
CPU kernels is tested, not only the widest this machine has. Sizes are odd and span more than
one 16K-element chunk (the unit of the CPU loops), with broadcast operands, so each build's
vector bodies, tails and chunk sums all run."""

from __future__ import annotations

import os

import pytest
import scipy.special
import torch
import torch.nn.functional as TF
from helpers import ENTROPY_TOLERANCES, TOLERANCES
from references import (REFERENCES, em_reference, mixture_reference, multivariate_normal_reference,
                        reference_discriminator_cost, reference_generator_cost)

import fusedgan
from fusedgan import functional as F
from fusedgan.families import FAMILIES

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
SHAPE = (257, 131)  # 33,667 elements: two full chunks and an odd tail; rows of odd length
# The mixture's and the multivariate normal's float32 lanes compute in float (their gradients
# near zero lose digits).
MIXTURE_TOLERANCES = {torch.float64: TOLERANCES[torch.float64], torch.float32: dict(rtol=2e-5, atol=2e-5)}
# Families whose data gradient cancels in float32 near a point of the support, whatever the
# kernel: log-normal's -(z/s + 1)/x near the mode, von Mises' kappa sin(x - loc) where x - loc is
# rounded near a multiple of pi, Weibull's (k - 1 - k (x/s)^k)/x near the mode.
CANCELLING_FAMILIES = {"lognormal", "von_mises", "weibull"}


def test_the_requested_instruction_set_is_in_use():
    assert fusedgan.build_info()["simd"] == os.environ["FUSEDGAN_SIMD"]


def randn(shape, seed, scale=2.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def rand(shape, seed, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def value_and_grads(fn, inputs, seed=0):
    """fn(*inputs) and the gradients of its floating inputs times a seeded incoming gradient."""
    leaves = [t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs]
    value = fn(*leaves)
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    grads = torch.autograd.grad(value, [t for t in leaves if t.requires_grad], grad_output.to(value.dtype))
    return (value, *grads)


def rounded(t, dtype):
    """t as the op sees it in dtype, back in float64 for the reference (None stays None)."""
    return None if t is None else t.to(dtype).double()


def check(fn, reference, inputs, dtype, tolerances=TOLERANCES):
    """fn on the inputs in dtype against reference on the same values in float64: the value and
    every floating input's gradient."""
    actual = value_and_grads(fn, [t.to(dtype) if t.is_floating_point() else t for t in inputs])
    expected = value_and_grads(reference, [rounded(t, dtype) if t.is_floating_point() else t for t in inputs])
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == dtype and a.shape == e.shape
        torch.testing.assert_close(a.double(), e, equal_nan=True, **tolerances[dtype])


OPERANDS = {  # name -> (weight, pos_weight) of the elementwise losses
    "plain": (None, None),
    "weight_per_row": (rand((257, 1), 3, 0.5, 1.5), None),
    "pos_weight_per_column": (None, rand((131,), 4, 0.5, 2)),
    "scalar_weight": (torch.tensor(0.7, dtype=torch.float64), rand((257, 1), 4, 0.5, 2)),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("operands", list(OPERANDS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits(dtype, operands, reduction):
    weight, pos_weight = OPERANDS[operands]
    x, y = randn(SHAPE, 1), rand(SHAPE, 2)
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    check(lambda x, y: F.binary_cross_entropy_with_logits(x, y, cast(weight), reduction=reduction,
                                                          pos_weight=cast(pos_weight)),
          lambda x, y: TF.binary_cross_entropy_with_logits(x, y, rounded(weight, dtype), reduction=reduction,
                                                           pos_weight=rounded(pos_weight, dtype)),
          (x, y), dtype)
    # with the target constant, a reduced loss takes the forward-with-gradient kernel
    check(lambda x: F.binary_cross_entropy_with_logits(x, y.to(dtype), reduction=reduction),
          lambda x: TF.binary_cross_entropy_with_logits(x, rounded(y, dtype), reduction=reduction), (x,), dtype)


def test_streamed_outputs():
    """float32 outputs of 32 MiB and more are stored past the cache, a store of its own per
    instruction set."""
    x, y = randn((8 * 2**20 + 5,), 1), rand((8 * 2**20 + 5,), 2)
    check(lambda x: F.binary_cross_entropy_with_logits(x, y.float(), reduction="none"),
          lambda x: TF.binary_cross_entropy_with_logits(x, rounded(y, torch.float32), reduction="none"), (x,),
          torch.float32)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("operands", ["plain", "weight_per_row"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce(dtype, operands, reduction):
    weight = OPERANDS[operands][0]
    p, y = randn(SHAPE, 1).sigmoid().clamp(0.01, 0.99), rand(SHAPE, 2)
    w = None if weight is None else weight.to(dtype)
    check(lambda p, y: F.binary_cross_entropy(p, y, w, reduction=reduction),
          lambda p, y: TF.binary_cross_entropy(p, y, rounded(weight, dtype), reduction=reduction), (p, y), dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_entropy_with_logits(dtype, reduction):
    reduce = {"none": lambda h: h, "mean": torch.mean, "sum": torch.sum}[reduction]
    check(lambda x: F.binary_entropy_with_logits(x, reduction=reduction),
          lambda x: reduce(torch.distributions.Bernoulli(logits=x).entropy()), (randn(SHAPE, 5),), dtype,
          ENTROPY_TOLERANCES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gan_costs(dtype):
    real, fake = randn((2 * 16384 + 3, 1), 7), randn((16411,), 8)  # batches of different shapes
    check(lambda r, f: F.discriminator_cost(r, f, real_label=0.9, fake_label=0.1),
          lambda r, f: reference_discriminator_cost(r, f, 0.9, 0.1), (real, fake), dtype)
    for kind in ("minimax", "non_saturating", "maximum_likelihood"):
        check(lambda f: F.generator_cost(f, kind=kind), lambda f: reference_generator_cost(f, kind),
              (fake.clamp(max=10),), dtype)
    stats = F.discriminator_stats(real.to(dtype), fake.to(dtype))
    real, fake = rounded(real, dtype), rounded(fake, dtype)
    expected = torch.stack([real.sigmoid().mean(), fake.sigmoid().mean(),
                            ((real > 0).sum() + (fake < 0).sum()).double() / (real.numel() + fake.numel())])
    torch.testing.assert_close(stats.double(), expected, **TOLERANCES[dtype])


ROWS = {  # name -> (shape, dim)
    "long_rows": ((5, 16411), -1),
    "short_rows": ((20001, 3), -1),
    "along_dim_0": ((257, 131), 0),
}


@pytest.mark.parametrize("rows", list(ROWS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_entropies(dtype, rows):
    shape, dim = ROWS[rows]
    z = randn(shape, 9)
    check(lambda q: F.entropy(q, dim), lambda q: torch.special.entr(q).sum(dim), (torch.softmax(z, dim),), dtype,
          ENTROPY_TOLERANCES)
    check(lambda z: F.entropy_with_logits(z, dim),
          lambda z: torch.distributions.Categorical(logits=z.movedim(dim, -1)).entropy(), (z,), dtype,
          ENTROPY_TOLERANCES)


LOGLIK_LAYOUTS = {  # name -> (data shape, parameter shape, dim)
    "per_set": ((3, 11113), (3, 1), -1),
    "per_point": ((3, 11113), (3, 11113), -1),
    "along_dim_0": ((11113, 3), (1, 3), 0),
    "all_dims": ((33339,), (), None),
}


@pytest.mark.parametrize("layout", list(LOGLIK_LAYOUTS))
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_likelihoods(family, layout, dtype):
    x_shape, p_shape, dim = LOGLIK_LAYOUTS[layout]
    reference = REFERENCES[family]
    params = [make(p_shape) for make in reference.params]
    dims = dim if dim is not None else tuple(range(len(x_shape)))
    fn = getattr(F, FAMILIES[family].function_name)
    check(lambda *args: fn(*args, dim=dim),
          lambda x, *params: reference.distribution(*params).log_prob(x).sum(dims),
          (reference.data(x_shape, 12), *params), dtype, MIXTURE_TOLERANCES if family in CANCELLING_FAMILIES else TOLERANCES)


@pytest.mark.parametrize("k", [3, 40])  # 40: more than one 32-component block in the backward
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normal_mixture(dtype, k):
    inputs = (randn((2, 1001, 3), 20), randn((2, k), 21), randn((2, k, 3), 22), rand((2, k, 3), 23, 0.5, 1.5))
    check(F.normal_mixture_log_likelihood, mixture_reference, inputs, dtype, MIXTURE_TOLERANCES)


@pytest.mark.parametrize("d", [3, 16])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_multivariate_normal(dtype, d):
    scale_tril = randn((2, d, d), 32, 0.3).tril(-1) + torch.diag_embed(rand((2, d), 33, 0.5, 1.5))
    inputs = (randn((2, 1001, d), 30), randn((2, d), 31), scale_tril)
    check(F.multivariate_normal_log_likelihood, multivariate_normal_reference, inputs, dtype, MIXTURE_TOLERANCES)


@pytest.mark.parametrize("k", [3, 40])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normal_mixture_em(dtype, k):
    # 5001 points: pieces of a set, full vectors and a partial one; one iteration (the float
    # lanes' rounding cannot change the path), its results within their tolerance of the largest
    x, *start = (randn((2, 5001, 3), 24), randn((2, k), 25), randn((2, k, 3), 26), rand((2, k, 3), 27, 0.5, 1.5))
    tolerance = MIXTURE_TOLERANCES[dtype]["rtol"]
    actual = torch.ops.fusedgan._normal_mixture_em(x.to(dtype), *start, 1e-3, 1, 1e-6)
    expected = em_reference(x.to(dtype), *start, 1e-3, 1, 1e-6)
    for a, e in zip(actual[:4], expected[:4], strict=True):  # the fit and lower bounds
        assert a.dtype == e.dtype and a.shape == e.shape
        torch.testing.assert_close(a, e, rtol=tolerance, atol=tolerance * e.abs().max().item())
    for a, e in zip(actual[4:], expected[4:], strict=True):  # iterations and convergence
        assert torch.equal(a, e)


def test_log_sums():
    # rows of odd length: full vectors and a partial one, in every build's double lanes
    x = rand(SHAPE, 28)
    expected = torch.stack([x.log().sum(-1), torch.log1p(-x).sum(-1)], -1)
    torch.testing.assert_close(torch.ops.fusedgan._log_sums(x), expected, rtol=1e-13, atol=1e-13)


def test_digamma_and_trigamma():
    # vector bodies and a partial tail in every build's double lanes, across the recurrence's range
    x = rand((33_667,), 29, 0.001, 40.0)
    digamma, trigamma = torch.ops.fusedgan._digamma_and_trigamma(x)
    # against scipy's: torch's trigamma is good to ~1e-9 only
    torch.testing.assert_close(digamma, torch.from_numpy(scipy.special.digamma(x.numpy())), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(trigamma, torch.from_numpy(scipy.special.polygamma(1, x.numpy())), rtol=1e-14, atol=0)
