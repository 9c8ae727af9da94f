"""The CUDA kernels (csrc/cuda), run by the CUDA simulator on the CPU, against the CPU kernels:
every op forward and backward, every dtype, strided and broadcast operands, empty shapes,
sizes past the grid-stride loops' first pass, infinities and NaN. The two compute the same
formulas (csrc/math) but with different elementary functions (the CPU's polynomials, the C
library's on the simulated GPU) and reduction orders, so they agree to a float tolerance per
dtype; the simulated reductions give the same bits on every run."""

from __future__ import annotations

import contextlib

import pytest
import torch
from references import REFERENCES

import fusedgan
from fusedgan import _C
from fusedgan import functional as F
from fusedgan.families import FAMILIES

pytestmark = pytest.mark.skipif(not fusedgan.build_info()["cuda_simulator"],
                                reason="needs the CUDA simulator (make install builds it)")

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# The two sides' elementary functions differ by an ulp or two, 16-bit outputs by one rounding;
# in float32 the mixture's CUDA kernel computes in double where the CPU's float lanes use float.
TOLERANCES = {
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.float32: dict(rtol=2e-5, atol=2e-5),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
}


@contextlib.contextmanager
def simulated_cuda(reverse_threads=False):
    _C.simulate_cuda(True, reverse_threads=reverse_threads)
    try:
        yield
    finally:
        _C.simulate_cuda(False)


def compare(compute, dtype, tolerance=None):
    """compute() (a tuple of tensors) with the CPU kernels, and with the simulated CUDA kernels
    twice, the second time with each block's threads run in reverse order: the CUDA results
    agree with the CPU's and are the same bits both times (a race would change them)."""
    expected = compute()
    with simulated_cuda():
        actual = compute()
    with simulated_cuda(reverse_threads=True):
        again = compute()
    assert len(actual) == len(expected)
    for a, b, e in zip(actual, again, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan())
        torch.testing.assert_close(a.double(), e.double(), equal_nan=True, **(tolerance or TOLERANCES[dtype]))


def value_and_grads(fn, inputs, seed=0):
    """fn(*inputs) and its gradients for the inputs that are floating, times a random
    incoming gradient."""
    leaves = [t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs]
    value = fn(*leaves)
    differentiable = [t for t in leaves if t.requires_grad]
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    grads = torch.autograd.grad(value, differentiable, grad_output.to(value.dtype))
    return (value.detach(), *grads)


def randn(shape, seed, scale=2.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def rand(shape, seed, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- elementwise losses: operands of shape (37, 129), more elements than the simulated grid's
# 1024 threads, so every grid-stride loop goes round

def nonfinite(x):
    x = x.clone()
    x.view(-1)[:6] = torch.tensor([float("inf"), -float("inf"), float("nan"), 1e30, -1e30, 0.0], dtype=x.dtype)
    return x


LAYOUTS = {  # name -> (input maker, target maker, weight, pos_weight) for a logits form
    "plain": (lambda: randn((37, 129), 1), lambda: rand((37, 129), 2), None, None),
    "weight_per_row": (lambda: randn((37, 129), 1), lambda: rand((37, 129), 2), rand((37, 1), 3, 0.5, 1.5), None),
    "pos_weight_per_column": (lambda: randn((37, 129), 1), lambda: rand((37, 129), 2), None, rand((129,), 4, 0.5, 2)),
    "scalar_weight": (lambda: randn((37, 129), 1), lambda: rand((37, 129), 2), torch.tensor(0.7, dtype=torch.float64), None),
    "transposed": (lambda: randn((129, 37), 1).t(), lambda: rand((129, 37), 2).t(), None, rand((37, 1), 4, 0.5, 2)),
    "expanded": (lambda: randn((1, 129), 1).expand(37, 129), lambda: rand((37, 129), 2), None, None),
    "empty": (lambda: randn((0, 3), 1), lambda: rand((0, 3), 2), None, None),
    "nonfinite": (lambda: nonfinite(randn((37, 129), 1)), lambda: rand((37, 129), 2), None, None),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits(dtype, layout, reduction):
    make_x, make_y, weight, pos_weight = LAYOUTS[layout]
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    x, y = make_x().to(dtype), make_y().to(dtype)
    fn = lambda x, y: F.binary_cross_entropy_with_logits(x, y, cast(weight), reduction=reduction,  # noqa: E731
                                                         pos_weight=cast(pos_weight))
    compare(lambda: value_and_grads(fn, (x, y)), dtype)  # input and target gradients (the backward op)
    compare(lambda: value_and_grads(lambda x: fn(x, y), (x,)), dtype)  # a reduced loss: the _and_grad op


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", ["plain", "weight_per_row", "scalar_weight", "transposed", "expanded", "empty"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce(dtype, layout, reduction):
    make_x, make_y, weight, _ = LAYOUTS[layout]
    p = make_x().sigmoid().clamp(0.01, 0.99).to(dtype)
    y = make_y().to(dtype)
    w = None if weight is None else weight.to(dtype)
    fn = lambda p, y: F.binary_cross_entropy(p, y, w, reduction=reduction)  # noqa: E731
    compare(lambda: value_and_grads(fn, (p, y)), dtype)
    compare(lambda: value_and_grads(lambda p: fn(p, y), (p,)), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_bce_at_the_edges(dtype):
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-45, 1 - 1e-7, 0.5], dtype=dtype)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.3], dtype=dtype)
    compare(lambda: value_and_grads(lambda p, y: F.binary_cross_entropy(p, y, reduction="none"), (p, y)), dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", ["plain", "transposed", "expanded", "empty", "nonfinite"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_entropy_with_logits(dtype, layout, reduction):
    x = LAYOUTS[layout][0]().to(dtype)
    compare(lambda: value_and_grads(lambda x: F.binary_entropy_with_logits(x, reduction=reduction, base=2.0), (x,)), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_elementwise_losses_past_3m_elements(dtype):
    x, y = randn((3_000_017,), 5).to(dtype), rand((3_000_017,), 6).to(dtype)
    compare(lambda: value_and_grads(lambda x, y: F.binary_cross_entropy_with_logits(x, y), (x, y)), dtype)
    compare(lambda: value_and_grads(lambda x: F.binary_entropy_with_logits(x, reduction="none"), (x,)), dtype)


# ---- the GAN costs

BATCHES = {
    "gan_batch": lambda: (randn((64,), 7), randn((64,), 8)),
    "different_shapes": lambda: (randn((17, 3), 7), randn((5,), 8)),
    "patchgan": lambda: (randn((2, 1, 30, 30), 7), randn((2, 1, 30, 30), 8).transpose(2, 3)),
    "past_3m": lambda: (randn((2_000_003,), 7), randn((1_000_033,), 8)),
    "nonfinite": lambda: (nonfinite(randn((40,), 7)), nonfinite(randn((30,), 8))),
}


# the large batches in float32 and float64 only (time)
@pytest.mark.parametrize(("dtype", "batches"), [(dtype, batches) for dtype in DTYPES for batches in BATCHES
                                                if batches != "past_3m" or dtype in (torch.float32, torch.float64)])
def test_gan_costs(dtype, batches):
    real, fake = (t.to(dtype) for t in BATCHES[batches]())
    compare(lambda: value_and_grads(lambda r, f: F.discriminator_cost(r, f, real_label=0.9, fake_label=0.1), (real, fake)),
            dtype)
    for kind in ("minimax", "non_saturating", "maximum_likelihood"):
        compare(lambda: value_and_grads(lambda f: F.generator_cost(f, kind=kind), (fake.clamp(max=50),)), dtype)
    compare(lambda: (F.discriminator_stats(real, fake),), dtype)


# ---- the entropies along a dim: rows of many lengths, more rows than threads

ROWS = {
    "rows_of_129": ((37, 129), -1),
    "along_dim_0": ((37, 129), 0),
    "many_short_rows": ((5000, 3), -1),
    "rows_longer_than_a_block": ((3, 70001), -1),
    "empty_rows": ((5, 0), -1),
    "no_rows": ((0, 4), -1),
    "zero_dim": ((), -1),
}


@pytest.mark.parametrize("rows", list(ROWS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_entropies(dtype, rows):
    shape, dim = ROWS[rows]
    z = randn(shape, 9).to(dtype)
    q = torch.softmax(randn(shape, 10), dim if shape else 0).to(dtype) if shape else torch.tensor(1.0, dtype=dtype)
    compare(lambda: value_and_grads(lambda q: F.entropy(q, dim, base=2.0), (q,)), dtype)
    compare(lambda: value_and_grads(lambda z: F.entropy_with_logits(z, dim), (z,)), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_entropy_with_minus_infinite_and_nan_logits(dtype):
    z = randn((40, 9), 11).to(dtype)
    z[:, ::2] = -float("inf")
    z[3, 1] = float("nan")
    compare(lambda: value_and_grads(lambda z: F.entropy_with_logits(z), (z,)), dtype)


@pytest.mark.parametrize("length", [3, 100, 5000])
def test_entropy_of_nearly_certain_rows_keeps_its_relative_precision(length):
    """One logit 20 to 40 above the others: the entropy, down to ~1e-16, to the CPU's relative
    precision (log s as log1p of the terms below the max on both sides)."""
    z = torch.zeros(5, length, dtype=torch.float64)
    z[:, 1] = torch.tensor([20.0, 25.0, 30.0, 36.0, 40.0])
    compare(lambda: (F.entropy_with_logits(z),), torch.float64, dict(rtol=1e-12, atol=0))


# ---- the log-likelihoods: every family, data sets per row, parameters per set, shared and per point

LOGLIK_LAYOUTS = {  # name -> (data shape, parameter shape, dim)
    "per_set": ((37, 129), (37, 1), -1),
    "short_sets": ((3001, 3), (3001, 1), -1),
    "sets_in_slices": ((3, 20011), (3, 1), -1),
    "shared": ((37, 129), (), -1),
    "per_point": ((37, 129), (37, 129), -1),
    "along_dim_0": ((129, 37), (1, 37), 0),
    "dim_tuple": ((4, 9, 33), (4, 1, 1), (1, 2)),
    "all_dims": ((2000,), (), None),
    "empty_sets": ((5, 0), (5, 1), -1),
    "one_point_sets": ((50, 1), (50, 1), -1),
}


@pytest.mark.parametrize("layout", list(LOGLIK_LAYOUTS))
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_likelihoods(family, layout, dtype):
    x_shape, p_shape, dim = LOGLIK_LAYOUTS[layout]
    reference = REFERENCES[family]
    x = reference.data(x_shape, 12).to(dtype)
    params = [make(p_shape).to(dtype) for make in reference.params]
    fn = getattr(F, FAMILIES[family].function_name)
    compare(lambda: value_and_grads(lambda *args: fn(*args, dim=dim), (x, *params)), dtype)


@pytest.mark.parametrize("layout", ["per_set", "sets_in_slices", "along_dim_0"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_log_likelihoods_with_parameter_gradients_from_the_forward_pass(family, layout):
    """The data fixed, as in maximum likelihood: the values and the parameters' gradients from
    one pass (the backward kernels summing the log-likelihoods too)."""
    x_shape, p_shape, dim = LOGLIK_LAYOUTS[layout]
    reference = REFERENCES[family]
    x = reference.data(x_shape, 12).float()
    params = [make(p_shape).float() for make in reference.params]
    fn = getattr(F, FAMILIES[family].function_name)
    compare(lambda: value_and_grads(lambda *p: fn(x, *p, dim=dim), params), torch.float32)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_likelihoods_of_nan_data_and_data_at_zero(family, dtype):
    """A NaN datum makes its set's value and gradients NaN (no support test reads it as
    outside), and a datum at 0 (the edge of the positive families' supports) gives the
    CPU's value and gradients, finite limits included; the parameters' gradients both from
    the forward pass and from the backward kernels."""
    reference = REFERENCES[family]
    x = reference.data((37, 129), 12).to(dtype)
    x[3, 5], x[7, :3] = float("nan"), 0.0
    params = [make((37, 1)).to(dtype) for make in reference.params]
    fn = getattr(F, FAMILIES[family].function_name)
    compare(lambda: value_and_grads(fn, (x, *params)), dtype)
    compare(lambda: value_and_grads(lambda *p: fn(x, *p), params), dtype)


@pytest.mark.parametrize("base", [None, 2.0])
def test_entropy_gradient_kept_from_the_forward_pass_has_the_bits_of_the_backward(base):
    """The first backward scales the kept gradient; a retained graph's second computes it with
    the backward kernel: the same bits on the simulated GPU too."""
    z = randn((37, 129), 44).float().requires_grad_()
    grad_output = randn((37,), 45).float()
    with simulated_cuda():
        value = F.entropy_with_logits(z, -1, base=base)
        first = torch.autograd.grad(value, z, grad_output, retain_graph=True)[0]
        again = torch.autograd.grad(value, z, grad_output)[0]
    assert torch.equal(first, again)


def test_label_counts():
    """The same counts (atomic additions of whole numbers in any order); a label out of range
    makes its row's counts NaN, where the CPU raises."""
    labels = torch.randint(0, 5, (9, 700), generator=torch.Generator().manual_seed(43))
    compare(lambda: (torch.ops.fusedgan._label_counts(labels, 5),), torch.float64, dict(rtol=0, atol=0))
    labels[4, 3] = 5
    with simulated_cuda():
        counts = torch.ops.fusedgan._label_counts(labels, 5)
    assert counts[4].isnan().any() and not counts[torch.arange(9) != 4].isnan().any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_log_likelihoods_in_16_bits(dtype):
    x, loc, scale = randn((37, 129), 13).to(dtype), randn((37, 1), 14).to(dtype), rand((37, 1), 15, 0.5, 2).to(dtype)
    compare(lambda: value_and_grads(F.normal_log_likelihood, (x, loc, scale)), dtype)


def test_log_likelihood_of_5000_sets_of_1000_points():
    """More sets than the real GPU's 4096 row blocks; every row loop goes round."""
    x = randn((5000, 1000), 16).float()
    loc, scale = randn((5000, 1), 17).float(), rand((5000, 1), 18, 0.5, 2).float()
    # the scale's gradient sums 1000 float32 terms per set: the CPU in float blocks, CUDA in double
    compare(lambda: value_and_grads(F.normal_log_likelihood, (x, loc, scale)), torch.float32, dict(rtol=5e-5, atol=5e-5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_likelihood_of_3m_points_in_one_set(dtype):
    """dim=None: one row of 3M points, summed in 367 slices."""
    x, loc, scale = randn((3_000_017,), 21).to(dtype), randn((), 22).to(dtype), rand((), 23, 0.5, 2).to(dtype)
    compare(lambda: value_and_grads(lambda *args: F.normal_log_likelihood(*args, dim=None), (x, loc, scale)), dtype,
            dict(rtol=2e-5, atol=2e-5) if dtype == torch.float32 else None)


@pytest.mark.parametrize(("df", "dtype"), [(df, dtype) for df in (1.0, 30.0, 1e4, 1e6, 1e10, 1e20)
                                           for dtype in (torch.float64, torch.float32, torch.float16)
                                           if df < 65504 or dtype != torch.float16])  # float16's largest
@pytest.mark.parametrize("df_layout", ["per_set", "per_point"])
def test_student_t_normaliser_matches_float64(df, dtype, df_layout):
    """lgamma(df/2 + 1/2) - lgamma(df/2) cancels: taken once per set in double, or per point by its
    series in 1/df, the sum over 20,000 points stays within the data's own rounding of scipy's
    float64 value (which tends to the normal one as df grows)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    x = randn((2, 10_000), 24).to(dtype)
    df_shape = (2, 1) if df_layout == "per_set" else x.shape
    params = (torch.full(df_shape, df, dtype=dtype), torch.zeros(2, 1, dtype=dtype), torch.ones(2, 1, dtype=dtype))
    expected = torch.from_numpy(scipy_stats.t.logpdf(x.double().numpy(), df).sum(-1))
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 1e-3}[dtype]
    for simulate in (False, True):
        _C.simulate_cuda(simulate)
        try:
            actual = F.student_t_log_likelihood(x, *params)
        finally:
            _C.simulate_cuda(False)
        torch.testing.assert_close(actual.double(), expected, rtol=tolerance, atol=0)


def test_log_likelihood_with_nonfinite_data():
    x = nonfinite(randn((6, 50), 19))
    compare(lambda: value_and_grads(F.normal_log_likelihood, (x, torch.zeros(6, 1, dtype=torch.float64),
                                                               torch.ones(6, 1, dtype=torch.float64))), torch.float64)


# ---- the normal mixture

def mixture(batch=(3,), n=25, k=4, d=2, seed=20):
    return (randn((*batch, n, d), seed), randn((*batch, k), seed + 1), randn((*batch, k, d), seed + 2),
            rand((*batch, k, d), seed + 3, 0.5, 1.5))


MIXTURES = {
    "small": lambda: mixture(),
    "several_component_blocks": lambda: mixture(k=40, d=3),
    "several_coordinate_tiles": lambda: mixture(k=5, d=9),
    "sets_in_slices": lambda: mixture(batch=(2,), n=9001, k=3, d=2),
    "many_sets": lambda: mixture(batch=(300,), n=8, k=3),
    "shared_parameters": lambda: (mixture(batch=(6,))[0], *mixture(batch=())[1:]),
    "no_points": lambda: mixture(n=0),
    "no_components": lambda: mixture(k=0),
}


@pytest.mark.parametrize("case", list(MIXTURES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_mixture(dtype, case):
    inputs = tuple(t.to(dtype) for t in MIXTURES[case]())
    compare(lambda: value_and_grads(F.normal_mixture_log_likelihood, inputs), dtype)


# ---- the multivariate normal

def multivariate_normal(batch=(3,), n=25, d=4, seed=30):
    scale_tril = (randn((*batch, d, d), seed + 2, 0.3).tril(-1)
                  + torch.diag_embed(rand((*batch, d), seed + 3, 0.5, 1.5)))
    return randn((*batch, n, d), seed), randn((*batch, d), seed + 1), scale_tril


MULTIVARIATE_NORMALS = {
    "small": lambda: multivariate_normal(),
    "one_dimension": lambda: multivariate_normal(d=1),
    "several_entry_tiles": lambda: multivariate_normal(d=16),
    "sets_in_slices": lambda: multivariate_normal(batch=(2,), n=9001, d=3),
    "many_sets": lambda: multivariate_normal(batch=(300,), n=8, d=2),
    "shared_parameters": lambda: (multivariate_normal(batch=(6,))[0], *multivariate_normal(batch=())[1:]),
    "no_points": lambda: multivariate_normal(n=0),
    "no_dimensions": lambda: multivariate_normal(d=0),
}


@pytest.mark.parametrize("case", list(MULTIVARIATE_NORMALS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_multivariate_normal(dtype, case):
    inputs = tuple(t.to(dtype) for t in MULTIVARIATE_NORMALS[case]())
    compare(lambda: value_and_grads(F.multivariate_normal_log_likelihood, inputs), dtype)


@pytest.mark.parametrize("case", list(MULTIVARIATE_NORMALS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_multivariate_normal_and_grad(dtype, case):
    """The log-likelihoods with the parameters' gradients in one call (their autograd's forward
    where the data need no gradient)."""
    inputs = tuple(t.to(dtype) for t in MULTIVARIATE_NORMALS[case]())
    compare(lambda: torch.ops.fusedgan._multivariate_normal_log_likelihood_and_grad(*inputs, [True, True]), dtype)


@pytest.mark.parametrize("wanted", ["x", "loc", "scale_tril"])
def test_multivariate_normal_one_gradient_at_a_time(wanted):
    """Each of the backward's outputs alone: the kernels skip the sums nobody asked for."""
    x, loc, scale_tril = multivariate_normal(d=5)
    inputs = {"x": x, "loc": loc, "scale_tril": scale_tril}

    def compute():
        leaf = inputs[wanted].clone().requires_grad_()
        value = F.multivariate_normal_log_likelihood(**{**inputs, wanted: leaf})
        return (value.detach(), *torch.autograd.grad(value, leaf, torch.linspace(-1, 1, 3, dtype=torch.float64)))

    compare(compute, torch.float64)


# The E step's data in dtype, the fit in float64. Where a component holds few points, its M
# step magnifies a difference in the E step (its mean is a ratio of tiny sums): float64 (double
# on both sides) is held over three iterations of every set (tol = 0), the others (float lanes
# on the CPU) over one, and not on many_sets' 8 points for 3 components.
EM_CASES = [(dtype, case) for case in MIXTURES if case not in ("no_points", "no_components") for dtype in DTYPES
            if dtype == torch.float64 or case != "many_sets"]


@pytest.mark.parametrize("dtype, case", EM_CASES)
def test_normal_mixture_em(dtype, case):
    x, logits, loc, scale = MIXTURES[case]()
    iterations = 3 if dtype == torch.float64 else 1
    compare(lambda: torch.ops.fusedgan._normal_mixture_em(x.to(dtype), logits, loc, scale, 0.0, iterations, 1e-6),
            dtype, dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else None)


def test_normal_mixture_em_stops_each_set_as_the_cpu_does():
    x, logits, loc, scale = MIXTURES["many_sets"]()
    fit = lambda: torch.ops.fusedgan._normal_mixture_em(x, logits, loc, scale, 1e-2, 30, 1e-6)  # noqa: E731
    assert len(set(fit()[4].tolist())) > 2  # the sets stop at different iterations
    compare(fit, torch.float64)


@pytest.mark.parametrize("shape", [(37, 129), (3, 20_000), (4, 0), (0, 5)])  # 20,000: rows in slices
def test_log_sums(shape):
    x = rand(shape, 40)
    if x.numel():
        x[0, :4] = torch.tensor([0.0, 1.0, float("nan"), 1e-300], dtype=torch.float64)
    compare(lambda: (torch.ops.fusedgan._log_sums(x),), torch.float64)


def test_digamma_and_trigamma():
    x = torch.cat([rand((3000,), 41, 0.0, 30.0), torch.tensor([0.0, 1e-300, 1e300, float("inf"), float("nan"), -2.5],
                                                               dtype=torch.float64)])
    compare(lambda: torch.ops.fusedgan._digamma_and_trigamma(x), torch.float64)
