"""The batched log-likelihoods of every family (csrc/torch/loglik.cpp) against scipy.stats
and torch.distributions (tests/references.py)."""

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import DEVICES, TOLERANCES, opcheck_tests
from references import REFERENCES, draw, reference_log_likelihood

from fusedgan import functional as F
from fusedgan.families import FAMILIES


def function(family):
    return getattr(F, FAMILIES[family].function_name)


def inputs(family, x_shape, p_shape, seed=5):
    reference = REFERENCES[family]
    return reference.data(x_shape, seed), [make(p_shape) for make in reference.params]


# (data shape, parameter shape, dim): data sets along the leading dims, parameters per set,
# shared, or per point.
LAYOUTS = [
    ((6, 50), (6, 1), -1),
    ((6, 50), (), -1),
    ((4, 3, 20), (4, 1, 1), (1, 2)),
    ((20, 5), (1, 5), 0),
    ((6, 50), (6, 50), -1),
    ((30,), (30,), None),
]


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_matches_scipy_on_batched_broadcast_data(family, layout):
    x_shape, p_shape, dim = LAYOUTS[layout]
    x, params = inputs(family, x_shape, p_shape)
    reference = REFERENCES[family]
    x = reference.scipy_data(x)
    values = torch.from_numpy(np.asarray(reference.scipy_logpdf(x.numpy(), *[p.numpy() for p in params])))
    expected = values.sum(dim=tuple(range(values.dim())) if dim is None else dim)
    torch.testing.assert_close(function(family)(x, *params, dim=dim), expected, rtol=1e-12, atol=1e-10)


def values_and_grads(fn, x, params, grad_seed=7):
    """fn(x, params) and the gradients of its value times a random incoming gradient (float64)."""
    x = x.detach().requires_grad_()
    params = [p.detach().requires_grad_() for p in params]
    value = fn(x, params)
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=torch.float64)
    return value, torch.autograd.grad(value, [x, *params], grad_output.to(value.device, value.dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_values_and_gradients_match_torch_distributions(family, layout, dtype, device):
    x_shape, p_shape, dim = LAYOUTS[layout]
    x, params = inputs(family, x_shape, p_shape, seed=6)
    expected, expected_grads = values_and_grads(lambda x, p: reference_log_likelihood(family, x, p, dim), x, params)
    value, grads = values_and_grads(lambda x, p: function(family)(x, *p, dim=dim), x.to(device, dtype),
                                    [p.to(device, dtype) for p in params])
    # float32: sums of up to 50 terms of a few units each
    tolerance = TOLERANCES[torch.float64] if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-3)
    assert value.dtype == dtype and value.shape == expected.shape
    torch.testing.assert_close(value.double().cpu(), expected, **tolerance)
    for actual, want in zip(grads, expected_grads):
        assert actual.shape == want.shape
        torch.testing.assert_close(actual.double().cpu(), want, **tolerance)


@pytest.mark.cuda
@pytest.mark.parametrize("family", list(FAMILIES))
def test_zero_dim_cpu_parameters_of_cuda_data_as_torch_accepts(family):
    """Shared parameters as 0-dim CPU tensors: the values and the gradients (which autograd
    hands back on the CPU) match those of the same parameters on the GPU."""
    x, params = inputs(family, (6, 50), (), seed=8)
    x = x.cuda()
    value, grads = values_and_grads(lambda x, p: function(family)(x, *p), x, params)
    expected, expected_grads = values_and_grads(lambda x, p: function(family)(x, *p), x, [p.cuda() for p in params])
    torch.testing.assert_close(value, expected)
    for actual, want in zip(grads, expected_grads):
        assert actual.device == want.device or actual.dim() == 0 and actual.is_cpu
        torch.testing.assert_close(actual, want, check_device=False)


# Non-contiguous data: a transpose, a strided slice and an expanded (stride-0) view, summed
# over dim tuples; the parameters per set, shared, or per point.
VIEWS = {
    "transposed": (lambda x: x.transpose(0, 2), (1, 2)),
    "strided": (lambda x: x[:, ::2, 1:], (0, 2)),
    "expanded": (lambda x: x[:, :1].expand(-1, 5, -1), (-1, -2)),
}


@pytest.mark.parametrize("params_per", ["set", "all", "point"])
@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_non_contiguous_data_and_dim_tuples(family, view, params_per):
    make_view, dim = VIEWS[view]
    reference = REFERENCES[family]
    base = reference.data((4, 6, 5), 9).requires_grad_()
    x = make_view(base)
    kept = [i for i in range(x.dim()) if i not in [d % x.dim() for d in dim]]
    p_shape = {"set": tuple(x.shape[i] if i in kept else 1 for i in range(x.dim())), "all": (), "point": x.shape}[params_per]
    params = [make(p_shape).requires_grad_() for make in reference.params]
    value = function(family)(x, *params, dim=dim)
    expected = reference_log_likelihood(family, x, params, dim)
    torch.testing.assert_close(value, expected, **TOLERANCES[torch.float64])
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    for actual, want in zip(torch.autograd.grad(value, [base, *params], grad_output),
                            torch.autograd.grad(expected, [base, *params], grad_output)):
        torch.testing.assert_close(actual, want, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gradcheck_and_gradgradcheck(family):
    reference = REFERENCES[family]
    x = reference.data((3, 4), 8).requires_grad_(family != "poisson")
    params = [make((3, 1)) for make in reference.params]
    for name, p in zip(FAMILIES[family].params, params):
        if name not in FAMILIES[family].positive:
            p[0] = 0.0  # exactly 0 (logits, locations): the derivatives must hold there too
    params = [p.requires_grad_() for p in params]
    fn = function(family)
    assert torch.autograd.gradcheck(lambda x, *p: fn(x, *p), (x, *params))
    assert torch.autograd.gradgradcheck(lambda x, *p: fn(x, *p), (x, *params))
    if family == "poisson":  # counts: the gradient in k is checked at non-integer k
        k = (x + 0.5).requires_grad_()
        assert torch.autograd.gradcheck(lambda k, *p: fn(k, *p), (k, *params))


def test_poisson_counts_on_both_sides_of_the_lgamma_table():
    """float32 vectors take lgamma(k + 1) and digamma(k + 1) from a table where every lane holds a
    whole count up to 1023, per lane otherwise: both paths, and vectors mixing them, must agree
    with torch.distributions."""
    g = torch.Generator().manual_seed(13)
    whole = torch.randint(0, 1023, (4, 4096), generator=g).double()
    mixed = torch.cat([whole[:, :2048], whole[:, 2048:] + 1000], 1)  # some lanes past the table
    fractional = whole + torch.rand(whole.shape, generator=g, dtype=torch.float64)
    rate = torch.full((4, 1), 300.0, dtype=torch.float64)
    for k in (whole, mixed, fractional, mixed[:, torch.randperm(4096, generator=g)]):
        k32 = k.float().requires_grad_()
        rate32 = rate.float().requires_grad_()
        value = F.poisson_log_likelihood(k32, rate32)
        value.sum().backward()
        k64 = k32.detach().double().requires_grad_()
        rate64 = rate.clone().requires_grad_()
        expected = torch.distributions.Poisson(rate64, validate_args=False).log_prob(k64).sum(-1)
        expected.sum().backward()
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=0)
        torch.testing.assert_close(k32.grad.double(), k64.grad, rtol=2e-6, atol=2e-6)
        torch.testing.assert_close(rate32.grad.double(), rate64.grad, rtol=1e-6, atol=1e-6)


PER_SET_LAYOUTS = {  # name -> (data shape, parameter shape, dim): one parameter value per data set
    "rows": ((3, 700), (3, 1), -1),
    "columns": ((700, 3), (3,), 0),
    "middle": ((2, 700, 3), (2, 1, 3), 1),
    "long_rows": ((2, 40000), (2, 1), -1),  # rows in several parts
    "all": ((50,), (), None),
}


@pytest.mark.parametrize("layout", list(PER_SET_LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_parameter_gradients_from_the_forward_pass(family, dtype, layout):
    """Where the data need no gradient and each parameter has one value per data set, the forward
    computes the parameters' gradients in its pass over the data and the backward scales them,
    the same bits again on a second backward. The separate kernels' (the data needing a gradient
    too) and the plain forward's value agree to rounding: theirs are other loops, in which the
    compiler may fuse a multiply and an add where it does not in this one."""
    x_shape, p_shape, dim = PER_SET_LAYOUTS[layout]
    reference = REFERENCES[family]
    x = reference.data(x_shape, 31).to(dtype)
    params = [make(p_shape).to(dtype).requires_grad_() for make in reference.params]
    fn = function(family)
    value = fn(x, *params, dim=dim)
    assert value.grad_fn is not None
    with torch.no_grad():
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(value, fn(x, *params, dim=dim), rtol=4 * eps, atol=4 * eps)
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(32)).to(dtype)
    first = torch.autograd.grad(value, params, grad_output, retain_graph=True)
    again = torch.autograd.grad(value, params, grad_output)
    x_too = x.clone().requires_grad_()
    separate = torch.autograd.grad(fn(x_too, *params, dim=dim), [x_too, *params], grad_output)[1:]
    for a, b, c in zip(first, again, separate):
        assert a.shape == b.shape == c.shape and torch.equal(a, b)
    params64 = [p.detach().double().requires_grad_() for p in params]
    expected = torch.autograd.grad(reference_log_likelihood(family, x.double(), params64, dim), params64, grad_output.double())
    # Each gradient sums hundreds of terms that may cancel: besides the tolerances, the rounding
    # of each term, eps relative to the sum of their magnitudes (the float32 lanes' order of
    # addition differs between instruction sets).
    shape = torch.broadcast_shapes(x.shape, *(p.shape for p in params))
    per_point = [p.detach().double().expand(shape).clone().requires_grad_() for p in params]
    terms = torch.autograd.grad(reference_log_likelihood(family, x.double(), per_point, dim), per_point, grad_output.double())
    tolerance = TOLERANCES[dtype]
    for a, c, e, t in zip(first, separate, expected, terms):
        bound = tolerance["atol"] + tolerance["rtol"] * e.abs() + 8 * eps * t.abs().sum_to_size(e.shape)
        for ours in (a, c):
            assert ((ours.double() - e).abs() <= bound).all(), (ours, e)


def test_parameter_gradients_from_the_forward_pass_take_each_its_own_incoming_gradient():
    """loss.backward() on a mean of the per-set values, and a per-set weighting: the kept
    gradients are scaled per data set."""
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(33), dtype=torch.float64)
    loc = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(4, 1, dtype=torch.float64).add(0.5).requires_grad_()
    weights = torch.tensor([1.0, -2.0, 0.0, 3.5], dtype=torch.float64)
    (F.normal_log_likelihood(x, loc, scale) * weights).mean().backward()
    expected_loc, expected_scale = torch.autograd.grad(
        (torch.distributions.Normal(loc, scale).log_prob(x).sum(-1) * weights).mean(), [loc, scale])
    torch.testing.assert_close(loc.grad, expected_loc)
    torch.testing.assert_close(scale.grad, expected_scale)


def test_parameters_broadcast_across_data_sets_take_the_separate_backward():
    """A parameter shared by every data set (its gradient sums over the sets) or varying along
    the data is not kept from the forward: its gradient is still right."""
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(34), dtype=torch.float64)
    for loc, scale in ((torch.zeros(1, 1), torch.ones(4, 1)), (torch.zeros(4, 50), torch.ones(1))):
        loc, scale = loc.double().requires_grad_(), scale.double().add(0.5).requires_grad_()
        value = F.normal_log_likelihood(x, loc, scale)
        grad_output = torch.randn(4, dtype=torch.float64)
        ours = torch.autograd.grad(value, [loc, scale], grad_output)
        expected = torch.autograd.grad(torch.distributions.Normal(loc, scale).log_prob(x).sum(-1), [loc, scale], grad_output)
        for a, e in zip(ours, expected):
            torch.testing.assert_close(a, e)


@pytest.mark.parametrize("data_needs_grad", [False, True])
def test_expanded_parameters_get_a_gradient_per_element(data_needs_grad):
    """A parameter expanded along the data (stride 0, full shape) has one value per data set in
    memory but a gradient per element, which its expansion's backward then sums."""
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(36), dtype=torch.float64).requires_grad_(data_needs_grad)
    loc = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(4, 1, dtype=torch.float64).add(0.5).requires_grad_()
    grad_output = torch.randn(4, dtype=torch.float64)
    ours = torch.autograd.grad(F.normal_log_likelihood(x, loc.expand(4, 50), scale.expand(4, 50)), [loc, scale], grad_output)
    expected = torch.autograd.grad(torch.distributions.Normal(loc, scale).log_prob(x).sum(-1), [loc, scale], grad_output)
    for a, e in zip(ours, expected):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("layout", ["one_point_sets", "expanded"])
def test_student_t_df_gradient_per_element(layout):
    """df constant along each data set but its gradient stored per element (sets of one point, or
    df expanded along the data): the digamma terms, taken once per set, are in it."""
    g = torch.Generator().manual_seed(37)
    points = 1 if layout == "one_point_sets" else 6
    x = torch.randn(5, points, generator=g, dtype=torch.float64)
    base_df = torch.rand(5, 1, generator=g, dtype=torch.float64).add(1).requires_grad_()
    df = base_df if layout == "one_point_sets" else base_df.expand(5, points)
    loc, scale = torch.zeros(5, 1, dtype=torch.float64), torch.ones(5, 1, dtype=torch.float64)
    ours = torch.autograd.grad(F.student_t_log_likelihood(x, df, loc, scale).sum(), base_df)[0]
    expected = torch.autograd.grad(torch.distributions.StudentT(base_df, loc, scale).log_prob(x).sum(), base_df)[0]
    torch.testing.assert_close(ours, expected)


STUDENT_T_DFS = [0.5, 3.0, 29.0, 30.0, 31.0, 1e3, 1e5, 1e7, 1e10, 1e20]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("df_layout", ["per_set", "per_point"])
def test_student_t_keeps_its_precision_at_large_df(dtype, df_layout):
    """lgamma((df + 1)/2) - lgamma(df/2) grows as log df where each lgamma grows as df log df:
    the value against scipy's (which tends to the normal one) up to df = 1e20, with df per set
    (its normaliser taken in double) and per point (in the data's dtype)."""
    dfs = torch.tensor(STUDENT_T_DFS, dtype=torch.float64).unsqueeze(-1)
    x = (torch.arange(-40, 41, dtype=torch.float64) / 8).expand(len(dfs), -1)  # exact in float32
    df = dfs if df_layout == "per_set" else dfs.expand_as(x)
    zero, one = torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)
    actual = F.student_t_log_likelihood(x.to(dtype), df.to(dtype), zero, one)
    expected = torch.from_numpy(scipy.stats.t.logpdf(x.numpy(), dfs.numpy()).sum(-1))
    torch.testing.assert_close(actual.double(), expected, rtol={torch.float32: 2e-6, torch.float64: 1e-13}[dtype], atol=0)


@pytest.mark.parametrize("df_layout", ["per_set", "per_point"])
def test_student_t_df_gradient_keeps_its_precision_at_large_df(df_layout):
    """psi((df + 1)/2) - psi(df/2) - 1/df tends to 1/(2 df^2) where each psi grows as log df:
    the df gradient against mpmath's derivative of the log-likelihood at 50 digits."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    dfs = torch.tensor(STUDENT_T_DFS[:8], dtype=torch.float64).unsqueeze(-1).requires_grad_()
    x = (torch.arange(-40, 41, dtype=torch.float64) / 8).expand(len(dfs), -1)
    df = dfs if df_layout == "per_set" else dfs.expand_as(x)
    actual = torch.autograd.grad(F.student_t_log_likelihood(x, df, torch.zeros((), dtype=torch.float64),
                                                           torch.ones((), dtype=torch.float64)).sum(), dfs)[0]

    def log_likelihood(df, points=[mpmath.mpf(float(v)) for v in x[0]]):
        half = df / 2
        return sum(mpmath.loggamma(half + 0.5) - mpmath.loggamma(half) - mpmath.log(df * mpmath.pi) / 2
                   - (half + 0.5) * mpmath.log1p(v * v / df) for v in points)

    expected = torch.tensor([[float(mpmath.diff(log_likelihood, mpmath.mpf(df)))] for df in STUDENT_T_DFS[:8]],
                            dtype=torch.float64)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize("df_layout", ["per_set", "per_point"])
def test_student_t_second_derivatives_on_both_sides_of_the_series(df_layout):
    """The differentiable backward (create_graph) takes the normaliser's df terms through the
    same branches as the kernels: gradgradcheck on both sides of df = 30, where the series
    takes over, and first derivatives equal to the kernels' with finite second ones at 1e-30
    (where the series, not taken, would overflow if it read df) and at 1e10."""
    g = torch.Generator().manual_seed(41)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64).requires_grad_()
    loc = torch.zeros(3, 1, dtype=torch.float64).requires_grad_()
    scale = torch.ones(3, 1, dtype=torch.float64).requires_grad_()
    df_shape = (3, 1) if df_layout == "per_set" else (3, 5)
    for base in (1e-30, 29.0, 30.0, 31.0, 1e3, 1e10):
        df = (base * (1 + 0.01 * torch.rand(df_shape, generator=g, dtype=torch.float64))).requires_grad_()
        inputs = (x, df, loc, scale)
        if 1 < base < 1e10:  # finite differences in df step past 1e-30, and see only rounding at 1e10
            assert torch.autograd.gradgradcheck(F.student_t_log_likelihood, inputs)
        value = F.student_t_log_likelihood(*inputs).sum()
        kernels = torch.autograd.grad(value, inputs, retain_graph=True)
        in_aten = torch.autograd.grad(value, inputs, create_graph=True)
        for a, b in zip(in_aten, kernels):
            torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])
        second = torch.autograd.grad(in_aten[1].sum(), inputs, allow_unused=True)
        assert all(s is None or bool(s.isfinite().all()) for s in second)


def test_a_parameter_modified_in_place_after_the_forward_pass_is_refused():
    """The gradients kept from the forward pass were taken at the old value: the backward must not
    hand them on."""
    x, loc, scale = torch.randn(3, 20), torch.zeros(3, 1, requires_grad=True), torch.ones(3, 1)
    scaled_loc = loc * 1.0
    value = F.normal_log_likelihood(x, scaled_loc, scale).sum()
    with torch.no_grad():
        scaled_loc.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        value.backward()


def test_and_grad_under_vmap_matches_a_loop():
    """The _and_grad op's batching rule, called directly (the log-likelihood's autograd does not
    keep gradients under torch.func)."""
    g = torch.Generator().manual_seed(35)
    x, loc, scale = torch.randn(5, 3, 40, generator=g), torch.randn(5, 3, 1, generator=g), torch.rand(3, 1, generator=g) + 0.5
    op = torch.ops.fusedgan._log_likelihood_and_grad.default
    batched = torch.func.vmap(lambda x, loc: op("normal", x, loc, scale, None, [-1], [True, True, False])[:3])(x, loc)
    looped = [op("normal", x[i], loc[i], scale, None, [-1], [True, True, False]) for i in range(5)]
    for k in range(3):  # the value, and the gradients of loc (per sample) and scale (shared)
        torch.testing.assert_close(batched[k], torch.stack([r[k] for r in looped]))


def test_and_grad_is_not_differentiable():
    x, loc, scale = torch.randn(2, 5), torch.zeros(2, 1, requires_grad=True), torch.ones(2, 1)
    with pytest.raises(RuntimeError, match="_log_likelihood_and_grad is not differentiable"):
        torch.ops.fusedgan._log_likelihood_and_grad("normal", x, loc, scale, None, [-1], [True, False, False])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_differentiable_backward_matches_the_kernels(family):
    """With create_graph the gradients are the family's partials in ATen ops; without, the
    kernels': the two must agree."""
    reference = REFERENCES[family]
    x = reference.data((5, 40), 11).requires_grad_()
    params = [make((5, 1)).requires_grad_() for make in reference.params]
    value = function(family)(x, *params)
    grad_output = torch.randn(5, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    kernels = torch.autograd.grad(value, [x, *params], grad_output, retain_graph=True)
    in_aten = torch.autograd.grad(value, [x, *params], grad_output, create_graph=True)
    for a, b in zip(in_aten, kernels):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


def test_one_pass_over_many_data_sets():
    """1024 data sets in one call agree with a loop over them."""
    x = draw((1024, 64), 9)
    loc, scale = draw((1024, 1), 10), draw((1024, 1), 11, positive=True)
    batched = F.normal_log_likelihood(x, loc, scale)
    looped = torch.stack([F.normal_log_likelihood(x[i], loc[i], scale[i]) for i in range(0, 1024, 97)])
    torch.testing.assert_close(batched[::97], looped, rtol=0, atol=0)


def test_long_rows_are_deterministic_and_accurate():
    x = draw((2, 300_001), 12).float()
    value = F.normal_log_likelihood(x, torch.tensor(0.5), torch.tensor(1.5))
    exact = torch.distributions.Normal(0.5, 1.5).log_prob(x.double()).sum(-1)
    torch.testing.assert_close(value.double(), exact, rtol=1e-6, atol=0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = F.normal_log_likelihood(x, torch.tensor(0.5), torch.tensor(1.5))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(single, value)


def test_empty_data_sets_sum_to_zero():
    value = F.normal_log_likelihood(torch.empty(3, 0), torch.zeros(3, 1), torch.ones(3, 1))
    assert value.tolist() == [0.0, 0.0, 0.0]
    assert F.normal_log_likelihood(torch.empty(0, 5), torch.zeros(()), torch.ones(())).shape == (0,)


def test_support_edges():
    assert F.exponential_log_likelihood(torch.tensor([1.0, -1.0]), torch.tensor(2.0)).item() == -float("inf")
    x = torch.tensor([1.0, 0.0])
    logits = torch.tensor([200.0, -200.0], requires_grad=True)
    value = F.bernoulli_log_likelihood(x, logits)
    assert value.item() == 0.0 and torch.autograd.grad(value, logits)[0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_nan_data_give_nan_not_a_number_outside_the_support(family, dtype):
    """A NaN datum fails every support test, yet it lies outside no support: its set's value
    and every gradient are NaN, never -inf with the NaN point's gradient dropped; the other set
    keeps its finite value and gradients."""
    x, params = inputs(family, (2, 5), (2, 1))
    x = x.to(dtype)
    x[0, 2] = float("nan")
    params = [p.to(dtype).requires_grad_() for p in params]
    for data in (x, x.clone().requires_grad_()):  # the parameters' gradients from the forward, and the separate kernels'
        value = function(family)(data, *params)
        assert value[0].isnan() and value[1].isfinite()
        inputs_with_grad = [p for p in (data, *params) if p.requires_grad]
        for grad in torch.autograd.grad(value.sum(), inputs_with_grad):
            if grad.shape == x.shape:  # the data's: NaN at the NaN point, but where it does not depend on x
                assert grad[0, 2].isnan() or family in ("exponential", "bernoulli", "geometric")
            else:
                assert grad[0].isnan().all() and grad[1].isfinite().all(), (family, grad)


@pytest.mark.parametrize("family,x,params,expected", [
    ("gamma", 0.0, (1.0, 2.0), -2.0),  # d/dx [(a - 1) log x - b x] with a = 1
    ("beta", 0.0, (1.0, 3.0), -2.0),  # -(b - 1) / (1 - x)
    ("beta", 1.0, (3.0, 1.0), 2.0),  # (a - 1) / x
    ("beta", 0.0, (1.0, 1.0), 0.0),  # uniform
    ("weibull", 0.0, (2.0, 1.0), -0.5),  # -(k / s) (x / s)^(k - 1) with k = 1
])
def test_data_gradient_at_the_support_edge_where_its_limit_is_finite(family, x, params, expected):
    """A term (a - 1) log x with a = 1 is absent: its derivative is 0 at x = 0, not 0/0."""
    data = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    value = function(family)(data, *(torch.tensor([p], dtype=torch.float64) for p in params))
    assert value.isfinite()
    assert torch.autograd.grad(value, data)[0].item() == pytest.approx(expected, rel=1e-12)


def test_create_graph_with_no_summed_dims():
    x = draw((3, 4), 22).requires_grad_()
    loc, scale = draw((3, 4), 23).requires_grad_(), draw((3, 4), 24, positive=True).requires_grad_()
    value = F.normal_log_likelihood(x, loc, scale, dim=())
    expected = torch.distributions.Normal(loc, scale).log_prob(x)
    torch.testing.assert_close(value, expected)
    (grad,) = torch.autograd.grad(value.sum(), loc, create_graph=True)
    (expected_grad,) = torch.autograd.grad(expected.sum(), loc, create_graph=True)
    torch.testing.assert_close(grad, expected_grad)


# ---- bad input

@pytest.mark.parametrize("fn,name,args", [
    (F.normal_log_likelihood, "scale", (torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))),
    (F.normal_log_likelihood, "scale", (torch.zeros(3), torch.tensor([1.0, float("nan"), 1.0]))),
    (F.laplace_log_likelihood, "scale", (torch.zeros(3), torch.tensor(-1.0))),
    (F.exponential_log_likelihood, "rate", (torch.tensor(0.0),)),
    (F.poisson_log_likelihood, "rate", (torch.tensor(-1.0),)),
    (F.student_t_log_likelihood, "df", (torch.tensor(0.0), torch.zeros(()), torch.ones(()))),
    (F.student_t_log_likelihood, "scale", (torch.tensor(3.0), torch.zeros(()), torch.zeros(()))),
])
def test_non_positive_parameters_are_named(fn, name, args):
    with pytest.raises(ValueError, match=f"{fn.__name__}: {name} must be positive"):
        fn(torch.rand(3), *args)


def test_bad_dims_families_and_dtypes_are_named():
    x = torch.rand(3, 4)
    with pytest.raises(ValueError, match="dim 2 is out of range for data of 2 dimensions"):
        F.normal_log_likelihood(x, torch.zeros(()), torch.ones(()), dim=2)
    with pytest.raises(ValueError, match="dim -1 appears twice"):
        F.normal_log_likelihood(x, torch.zeros(()), torch.ones(()), dim=(1, -1))
    with pytest.raises(ValueError, match="unknown family 'cauchy'; known: normal, laplace"):
        torch.ops.fusedgan.log_likelihood("cauchy", x, x)
    with pytest.raises(ValueError, match="the normal family takes 2 parameters"):
        torch.ops.fusedgan.log_likelihood("normal", x, x)
    with pytest.raises(ValueError, match="the student_t family takes 3 parameters"):
        torch.ops.fusedgan.log_likelihood("student_t", x, x, x)
    with pytest.raises(RuntimeError, match="expected loc to be a floating point tensor"):
        F.normal_log_likelihood(x, torch.zeros(3, 4, dtype=torch.int64), torch.ones(()))
    with pytest.raises(ValueError, match=r"loc of shape \[5\] does not broadcast with the data's shape \[3, 4\]"):
        F.normal_log_likelihood(x, torch.zeros(5), torch.ones(()))
    with pytest.raises(RuntimeError, match="expected scale on cpu like input, got meta"):
        F.normal_log_likelihood(x, torch.zeros(()), torch.ones((), device="meta"))
    with pytest.raises(RuntimeError, match="expected grad on cpu like input, got meta"):
        torch.ops.fusedgan._log_likelihood_backward(torch.ones(3, device="meta"), "normal", x, x, x, None, [-1], [True] * 4)


# ---- registration

def opcheck_samples():
    ops = torch.ops.fusedgan
    x, loc, scale = draw((4, 6), 13).float(), draw((4, 1), 14).float(), draw((4, 1), 15, positive=True).float()
    yield ops.log_likelihood.default, ("normal", x.clone().requires_grad_(), loc.clone().requires_grad_(), scale, None, [-1])
    yield ops.log_likelihood.default, ("laplace", x, loc, scale.clone().requires_grad_(), None, None)
    yield ops.log_likelihood.default, ("exponential", x.abs(), scale.clone().requires_grad_(), None, None, [0])
    yield ops.log_likelihood.default, ("student_t", x, scale + 2, loc, scale.clone().requires_grad_(), [1])
    yield ops._log_likelihood_backward.default, (torch.rand(4), "normal", x, loc, scale, None, [-1], [True, True, True, False])
    yield ops._log_likelihood_backward.default, (torch.rand(6), "bernoulli", x.sigmoid(), x, None, None, [0], [False, True, False, False])
    yield ops._log_likelihood_backward.default, (torch.rand(4), "student_t", x, scale + 2, loc, scale, [-1], [True, True, True, True])
    yield ops._log_likelihood_and_grad.default, ("normal", x, loc, scale, None, [-1], [True, True, False])
    yield ops._log_likelihood_and_grad.default, ("student_t", x, scale + 2, loc, scale, [1], [True, False, True])
    for family in FAMILIES:  # every family through the op, a parameter needing its gradient
        data, params = inputs(family, (4, 6), (4, 1), seed=17)
        params = [p.float() for p in params] + [None] * (3 - len(params))
        params[0] = params[0].clone().requires_grad_()
        yield ops.log_likelihood.default, (family, data.float(), *params, [-1])


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(
    list(opcheck_samples()),
    lambda name: name in ("fusedgan::log_likelihood", "fusedgan::_log_likelihood_backward", "fusedgan::_log_likelihood_and_grad"))


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def nll(x, loc, log_scale):
        return (
            -F.normal_log_likelihood(x, loc, log_scale.exp()).mean()
            - F.student_t_log_likelihood(x, log_scale.exp() + 2, loc, log_scale.exp()).mean()
            - F.laplace_log_likelihood(x, loc, log_scale.exp(), dim=(0, 1))
        )

    compiled = torch.compile(nll, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    x = draw((8, 32), 16).float()
    loc, log_scale = torch.zeros(8, 1, requires_grad=True), torch.zeros(8, 1, requires_grad=True)
    expected, actual = nll(x, loc, log_scale), compiled(x, loc, log_scale)
    torch.testing.assert_close(actual, expected)
    for a, e in zip(torch.autograd.grad(actual, (loc, log_scale)), torch.autograd.grad(expected, (loc, log_scale))):
        torch.testing.assert_close(a, e)


def test_torch_compile_fullgraph_of_every_family():
    """One compiled graph summing every family's log-likelihood: values and the parameters'
    gradients as eager."""
    cases = {family: inputs(family, (4, 16), (4, 1), seed=18) for family in FAMILIES}
    leaves = {family: [p.float().requires_grad_() for p in params] for family, (_, params) in cases.items()}

    def total(leaves):
        return sum(function(family)(cases[family][0].float(), *leaves[family]).sum() for family in FAMILIES)

    compiled = torch.compile(total, fullgraph=True, backend="aot_eager")
    expected, actual = total(leaves), compiled(leaves)
    torch.testing.assert_close(actual, expected)
    every = [p for params in leaves.values() for p in params]
    for a, e in zip(torch.autograd.grad(actual, every), torch.autograd.grad(expected, every)):
        torch.testing.assert_close(a, e)


def test_von_mises_across_concentrations_matches_scipy():
    """i0e and i1e switch from the power series to the asymptotic one at 30: both sides, tiny
    and huge concentrations, against scipy's von Mises (the value) and torch.special (the
    concentration's gradient, i1e/i0e - 1 + cos(x - loc))."""
    kappa = torch.tensor([1e-3, 0.5, 1.0, 29.99, 30.01, 100.0, 1e4, 1e7], dtype=torch.float64)
    x = torch.linspace(-3, 3, 9, dtype=torch.float64)
    loc = torch.tensor(0.3, dtype=torch.float64)
    kappa_ = kappa.unsqueeze(-1).requires_grad_()
    value = F.von_mises_log_likelihood(x, loc, kappa_, dim=())
    expected = scipy.stats.vonmises.logpdf(x.numpy(), kappa.unsqueeze(-1).numpy(), loc.item())
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-12, atol=1e-9)
    (grad,) = torch.autograd.grad(value.sum(), kappa_)
    ratio = torch.special.i1e(kappa) / torch.special.i0e(kappa)
    torch.testing.assert_close(grad.squeeze(-1), (torch.cos(x - loc) - ratio.unsqueeze(-1)).sum(-1), rtol=1e-12, atol=1e-12)


def test_geometric_and_von_mises_match_torch_distributions_own():
    """The references of these two are exact rewrites (tests/references.py); torch's own
    distributions agree to their precision: von Mises' log I_0 approximation is good to about
    1e-7."""
    k = draw((5, 40), 40, counts=True)
    logits = draw((5, 1), 41)
    expected = torch.distributions.Geometric(logits=logits).log_prob(k).sum(-1)
    torch.testing.assert_close(F.geometric_log_likelihood(k, logits), expected, rtol=1e-10, atol=1e-10)
    x, loc, kappa = draw((5, 40), 42), draw((5, 1), 43), draw((5, 1), 44, positive=True) * 3
    expected = torch.distributions.VonMises(loc, kappa).log_prob(x).sum(-1)
    torch.testing.assert_close(F.von_mises_log_likelihood(x, loc, kappa), expected, rtol=1e-6, atol=1e-5)


def test_float32_vector_special_functions_and_their_fallbacks():
    """float32 takes sin and cos by quadrant up to |x| = 8192 and lane by lane beyond (and for
    inf and NaN), and lgamma and digamma from a table for whole counts, by series for other
    positive arguments: each path, and vectors mixing them, within float precision of float64."""
    angles = torch.cat([torch.linspace(-8192, 8192, 40961), torch.tensor([9000.5, -1e6, 3.25e7])])
    zero, one = torch.zeros(()), torch.ones(())
    for x in (angles, angles[torch.randperm(len(angles), generator=torch.Generator().manual_seed(1))]):
        value = F.von_mises_log_likelihood(x, zero, one, dim=())
        expected = F.von_mises_log_likelihood(x.double(), zero.double(), one.double(), dim=())
        torch.testing.assert_close(value.double(), expected, rtol=0, atol=2e-6)
    g = torch.Generator().manual_seed(2)
    counts = torch.cat([torch.randint(0, 60, (4096,), generator=g).float(), torch.rand(4096, generator=g) * 60,
                        torch.tensor([1e-30, 1e-3, 0.5, 1e6, 3e7])])
    for k in (counts, counts[torch.randperm(len(counts), generator=g)]):
        for total_count in (torch.tensor(3.7), torch.tensor(200.0)):
            k_ = k.clone().requires_grad_()
            value = F.negative_binomial_log_likelihood(k_, total_count, zero, dim=())
            (grad,) = torch.autograd.grad(value.sum(), k_)
            k64 = k.double().requires_grad_()
            expected = F.negative_binomial_log_likelihood(k64, total_count.double(), zero.double(), dim=())
            (expected_grad,) = torch.autograd.grad(expected.sum(), k64)
            # float rounds each lgamma term to its own ulp: the error is relative to the terms, not their difference
            terms = torch.lgamma(k.double() + total_count).abs() + torch.lgamma(k.double() + 1).abs() + 1
            assert ((value.double() - expected).abs() / terms).max() < 1e-6
            torch.testing.assert_close(grad.double(), expected_grad, rtol=2e-6, atol=2e-6)
