"""Batched log-likelihoods against scipy.stats and torch.distributions."""

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import DEVICES, opcheck_tests

from fusedgan import functional as F


def data(shape, seed=0, positive=False, unit=False, counts=False):
    g = torch.Generator().manual_seed(seed)
    if counts:
        return torch.poisson(torch.full(shape, 4.0, dtype=torch.float64), generator=g)
    if unit:
        return torch.rand(shape, generator=g, dtype=torch.float64)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    return x.abs() + 0.1 if positive else x


def mixture_inputs(batch=(3,), n=25, k=4, d=2, seed=21):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, n, d, generator=g, dtype=torch.float64) * 2
    logits = torch.randn(*batch, k, generator=g, dtype=torch.float64)
    loc = torch.randn(*batch, k, d, generator=g, dtype=torch.float64)
    scale = torch.rand(*batch, k, d, generator=g, dtype=torch.float64) + 0.5
    return x, logits, loc, scale


def mixture_reference(x, logits, loc, scale):
    D = torch.distributions
    mixture = D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(loc, scale), 1))
    return mixture.log_prob(x.movedim(-2, 0)).sum(0)


# family -> (fusedgan function, torch.distributions constructor, scipy logpdf, data kind, parameter makers)
FAMILIES = {
    "normal": (
        F.normal_log_likelihood,
        lambda loc, scale: torch.distributions.Normal(loc, scale),
        lambda x, loc, scale: scipy.stats.norm.logpdf(x, loc, scale),
        {},
        (lambda s: data(s, 1), lambda s: data(s, 2, positive=True)),
    ),
    "laplace": (
        F.laplace_log_likelihood,
        lambda loc, scale: torch.distributions.Laplace(loc, scale),
        lambda x, loc, scale: scipy.stats.laplace.logpdf(x, loc, scale),
        {},
        (lambda s: data(s, 1), lambda s: data(s, 2, positive=True)),
    ),
    "exponential": (
        F.exponential_log_likelihood,
        lambda rate: torch.distributions.Exponential(rate),
        lambda x, rate: scipy.stats.expon.logpdf(x, scale=1 / rate),
        dict(positive=True),
        (lambda s: data(s, 3, positive=True),),
    ),
    "bernoulli": (
        F.bernoulli_log_likelihood,
        lambda logits: torch.distributions.Bernoulli(logits=logits, validate_args=False),  # soft x too
        lambda x, logits: scipy.stats.bernoulli.logpmf(x, scipy.special.expit(logits)),
        dict(unit=True),
        (lambda s: data(s, 4),),
    ),
    "poisson": (
        F.poisson_log_likelihood,
        lambda rate: torch.distributions.Poisson(rate, validate_args=False),
        lambda k, rate: scipy.stats.poisson.logpmf(k, rate),
        dict(counts=True),
        (lambda s: data(s, 5, positive=True) * 3,),
    ),
    "student_t": (
        F.student_t_log_likelihood,
        lambda df, loc, scale: torch.distributions.StudentT(df, loc, scale),
        lambda x, df, loc, scale: scipy.stats.t.logpdf(x, df, loc, scale),
        {},
        (lambda s: data(s, 6, positive=True) * 3, lambda s: data(s, 7), lambda s: data(s, 8, positive=True)),
    ),
}

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


def reference_scipy(family, x, params, dim):
    *_, logpdf, _, _ = FAMILIES[family]
    if family == "bernoulli":
        x = (x > 0.5).double()  # scipy's pmf takes 0/1
    values = torch.from_numpy(np.asarray(logpdf(x.numpy(), *[p.numpy() for p in params])))
    return values.sum(dim=tuple(range(values.dim())) if dim is None else dim), x


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_matches_scipy_on_batched_broadcast_data(family, layout):
    fn, _, _, kind, makers = FAMILIES[family]
    x_shape, p_shape, dim = LAYOUTS[layout]
    params = [make(p_shape) for make in makers]
    x = data(x_shape, 5, **kind)
    expected, x_scipy = reference_scipy(family, x, params, dim)
    torch.testing.assert_close(fn(x_scipy, *params, dim=dim), expected, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_values_and_gradients_match_torch_distributions(family, layout, dtype, device):
    fn, distribution, _, kind, makers = FAMILIES[family]
    x_shape, p_shape, dim = LAYOUTS[layout]
    x = data(x_shape, 6, **kind)
    params = [make(p_shape) for make in makers]
    grad_output = None

    def run(x, params, reference):
        x = x.detach().requires_grad_()
        params = [p.detach().requires_grad_() for p in params]
        if reference:
            log_prob = distribution(*params).log_prob(x)
            value = log_prob.sum(dim=tuple(range(log_prob.dim())) if dim is None else dim)
        else:
            value = fn(x, *params, dim=dim)
        nonlocal grad_output
        if grad_output is None:
            grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        grads = torch.autograd.grad(value, [x, *params], grad_output.to(value.device, value.dtype))
        return value, grads

    value, grads = run(x.to(device, dtype), [p.to(device, dtype) for p in params], reference=False)
    expected, expected_grads = run(x, params, reference=True)
    tolerance = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-3)
    assert value.dtype == dtype and value.shape == expected.shape
    torch.testing.assert_close(value.double().cpu(), expected, **tolerance)
    for actual, want in zip(grads, expected_grads):
        assert actual.shape == want.shape
        torch.testing.assert_close(actual.double().cpu(), want, **tolerance)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gradcheck_and_gradgradcheck(family):
    fn, _, _, kind, makers = FAMILIES[family]
    x = data((3, 4), 8, **kind).requires_grad_(family != "poisson")
    params = [make((3, 1)).requires_grad_() for make in makers]
    assert torch.autograd.gradcheck(lambda x, *p: fn(x, *p), (x, *params))
    assert torch.autograd.gradgradcheck(lambda x, *p: fn(x, *p), (x, *params))
    if family == "poisson":  # counts: the gradient in k is checked at non-integer k
        k = (x + 0.5).requires_grad_()
        assert torch.autograd.gradcheck(lambda k, *p: fn(k, *p), (k, *params))


def test_one_pass_over_many_data_sets():
    """1024 data sets in one call agree with a loop over them."""
    x = data((1024, 64), 9)
    loc, scale = data((1024, 1), 10), data((1024, 1), 11, positive=True)
    batched = F.normal_log_likelihood(x, loc, scale)
    looped = torch.stack([F.normal_log_likelihood(x[i], loc[i], scale[i]) for i in range(0, 1024, 97)])
    torch.testing.assert_close(batched[::97], looped, rtol=0, atol=0)


def test_long_rows_are_deterministic_and_accurate():
    x = data((2, 300_001), 12).float()
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


# ---- bad input

@pytest.mark.parametrize("fn,name,args", [
    (F.normal_log_likelihood, "scale", (torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))),
    (F.laplace_log_likelihood, "scale", (torch.zeros(3), torch.tensor(-1.0))),
    (F.exponential_log_likelihood, "rate", (torch.tensor(0.0),)),
    (F.poisson_log_likelihood, "rate", (torch.tensor(-1.0),)),
    (F.student_t_log_likelihood, "df", (torch.tensor(0.0), torch.zeros(()), torch.ones(()))),
    (F.student_t_log_likelihood, "scale", (torch.tensor(3.0), torch.zeros(()), torch.zeros(()))),
])
def test_non_positive_parameters_are_named(fn, name, args):
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        fn(torch.rand(3), *args)


def test_bad_dims_families_and_dtypes_are_named():
    x = torch.rand(3, 4)
    with pytest.raises(ValueError, match="dim 2 is out of range for data of 2 dimensions"):
        F.normal_log_likelihood(x, torch.zeros(()), torch.ones(()), dim=2)
    with pytest.raises(ValueError, match="dim -1 appears twice"):
        F.normal_log_likelihood(x, torch.zeros(()), torch.ones(()), dim=(1, -1))
    with pytest.raises(ValueError, match="unknown family 'cauchy'"):
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
    mixture = mixture_inputs()
    with pytest.raises(RuntimeError, match="expected grad on cpu like input, got meta"):
        torch.ops.fusedgan._normal_mixture_log_likelihood_backward(torch.ones(3, device="meta"), *mixture, [True] * 4)


def test_create_graph_with_no_summed_dims():
    x = data((3, 4), 22).requires_grad_()
    loc, scale = data((3, 4), 23).requires_grad_(), data((3, 4), 24, positive=True).requires_grad_()
    value = F.normal_log_likelihood(x, loc, scale, dim=())
    expected = torch.distributions.Normal(loc, scale).log_prob(x)
    torch.testing.assert_close(value, expected)
    (grad,) = torch.autograd.grad(value.sum(), loc, create_graph=True)
    (expected_grad,) = torch.autograd.grad(expected.sum(), loc, create_graph=True)
    torch.testing.assert_close(grad, expected_grad)


# ---- registration

def opcheck_samples():
    ops = torch.ops.fusedgan
    x, loc, scale = data((4, 6), 13).float(), data((4, 1), 14).float(), data((4, 1), 15, positive=True).float()
    yield ops.log_likelihood.default, ("normal", x.clone().requires_grad_(), loc.clone().requires_grad_(), scale, None, [-1])
    yield ops.log_likelihood.default, ("laplace", x, loc, scale.clone().requires_grad_(), None, None)
    yield ops.log_likelihood.default, ("exponential", x.abs(), scale.clone().requires_grad_(), None, None, [0])
    yield ops.log_likelihood.default, ("student_t", x, scale + 2, loc, scale.clone().requires_grad_(), [1])
    yield ops._log_likelihood_backward.default, (torch.rand(4), "normal", x, loc, scale, None, [-1], [True, True, True, False])
    yield ops._log_likelihood_backward.default, (torch.rand(6), "bernoulli", x.sigmoid(), x, None, None, [0], [False, True, False, False])
    yield ops._log_likelihood_backward.default, (torch.rand(4), "student_t", x, scale + 2, loc, scale, [-1], [True, True, True, True])
    yield ops.categorical_log_likelihood.default, (torch.tensor([[0, 2]]), torch.zeros(1, 1, 3, requires_grad=True), [-1])
    mx, mlogits, mloc, mscale = (t.float() for t in mixture_inputs(batch=(2,), n=5, k=3, d=2))
    yield ops.normal_mixture_log_likelihood.default, (mx, mlogits.clone().requires_grad_(), mloc, mscale.clone().requires_grad_())
    yield ops._normal_mixture_log_likelihood_backward.default, (torch.rand(2), mx, mlogits, mloc, mscale, [True] * 4)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "log_likelihood" in name)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def nll(x, loc, log_scale, labels, logits, mixture):
        return (
            -F.normal_log_likelihood(x, loc, log_scale.exp()).mean()
            - F.student_t_log_likelihood(x, log_scale.exp() + 2, loc, log_scale.exp()).mean()
            - F.categorical_log_likelihood(labels, logits).mean()
            - F.normal_mixture_log_likelihood(*mixture).mean()
        )

    compiled = torch.compile(nll, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    x = data((8, 32), 16).float()
    loc, log_scale = torch.zeros(8, 1, requires_grad=True), torch.zeros(8, 1, requires_grad=True)
    labels, logits = torch.randint(0, 3, (8, 32)), torch.zeros(8, 1, 3, requires_grad=True)
    mixture = [t.float().requires_grad_() for t in mixture_inputs(batch=(2,), n=6, k=3, d=2)]
    leaves = (loc, log_scale, logits, *mixture)
    expected, actual = nll(x, loc, log_scale, labels, logits, mixture), compiled(x, loc, log_scale, labels, logits, mixture)
    torch.testing.assert_close(actual, expected)
    for a, e in zip(torch.autograd.grad(actual, leaves), torch.autograd.grad(expected, leaves)):
        torch.testing.assert_close(a, e)


# ---- categorical (composed from ATen ops)

def test_categorical_matches_torch_distributions_and_gradcheck():
    labels = torch.randint(0, 5, (3, 40), generator=torch.Generator().manual_seed(17))
    for logits in (data((3, 1, 5), 18), data((3, 40, 5), 19)):
        logits.requires_grad_()
        value = F.categorical_log_likelihood(labels, logits)
        expected = torch.distributions.Categorical(logits=logits).log_prob(labels).sum(-1)
        torch.testing.assert_close(value, expected)
        assert torch.autograd.gradcheck(lambda l: F.categorical_log_likelihood(labels, l), (logits,))
    assert F.categorical_log_likelihood(labels, data((5,), 20), dim=None).shape == ()
    assert F.categorical_log_likelihood(torch.tensor(2), data((5,), 20), dim=-1).shape == ()


def test_categorical_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.categorical_log_likelihood(torch.tensor([0, 3]), torch.zeros(3))
    with pytest.raises(RuntimeError, match="expected labels to be an integer tensor"):
        F.categorical_log_likelihood(torch.tensor([0.0]), torch.zeros(3))


# ---- normal mixture

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [4, 70])  # 70: several blocks of components in the backward
def test_normal_mixture_matches_mixture_same_family(dtype, device, k):
    inputs = mixture_inputs(k=k)
    actual = [t.to(device, dtype).requires_grad_() for t in inputs]
    expected = [t.clone().requires_grad_() for t in inputs]
    value, reference = F.normal_mixture_log_likelihood(*actual), mixture_reference(*expected)
    tolerance = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(value.double().cpu(), reference, **tolerance)
    for a, e in zip(torch.autograd.grad(value.sum(), actual), torch.autograd.grad(reference.sum(), expected)):
        torch.testing.assert_close(a.double().cpu(), e, **tolerance)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("k", [16, 40])
def test_normal_mixture_low_precision_matches_float64(dtype, rtol, device, k):
    # 1001 points: full vectors of points and a partial one (for any vector width), and
    # several moves of the gradient sums into double; K = 40: two blocks of components.
    inputs = [t.to(dtype) for t in mixture_inputs(batch=(2,), n=1001, k=k, d=8)]
    actual = [t.to(device).requires_grad_() for t in inputs]
    expected = [t.double().requires_grad_() for t in inputs]
    value, reference = F.normal_mixture_log_likelihood(*actual), F.normal_mixture_log_likelihood(*expected)
    assert value.dtype == dtype
    torch.testing.assert_close(value.double().cpu(), reference, rtol=rtol, atol=0)
    for a, e in zip(torch.autograd.grad(value.sum(), actual), torch.autograd.grad(reference.sum(), expected)):
        assert a.dtype == dtype
        torch.testing.assert_close(a.double().cpu(), e, rtol=rtol, atol=rtol * e.abs().max().item())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [4, 40])
def test_normal_mixture_extreme_values(dtype, device, k):
    x, logits, loc, scale = (t.to(device, dtype) for t in mixture_inputs(batch=(5,), n=20, k=k))
    logits[:, : k - 3] = -torch.inf  # components of weight 0 take no part; with K = 40 a whole block of them
    x[1, 3, 0] = torch.nan  # NaN data gives NaN, in its own set only
    x[2, 5, 1] = torch.inf  # a point no component can reach: log-likelihood -inf
    x[3, 0, 0] = 1e15  # far out, but its square still fits in float32
    inputs = [t.requires_grad_() for t in (x, logits, loc, scale)]
    value = F.normal_mixture_log_likelihood(*inputs)
    assert torch.isnan(value[1]) and value[2] == -torch.inf and torch.isfinite(value[[0, 3, 4]]).all()
    finite = [0, 3, 4]
    expected = [t.detach()[finite].cpu().double().requires_grad_() for t in inputs]
    reference = mixture_reference(*expected)
    torch.testing.assert_close(value[finite].double().cpu(), reference, rtol=1e-5, atol=0)
    grads = torch.autograd.grad(value[finite].sum(), inputs)
    assert (grads[1][finite, : k - 3] == 0).all()
    for a, e in zip(grads, torch.autograd.grad(reference.sum(), expected)):
        a = a[finite].double().cpu()
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4 * e.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_mixture_without_points_or_components(dtype):
    x, logits, loc, scale = (t.to(dtype).requires_grad_() for t in mixture_inputs(batch=(2,), n=0))
    value = F.normal_mixture_log_likelihood(x, logits, loc, scale)
    assert (value == 0).all()  # a sum over no points
    assert all((g == 0).all() for g in torch.autograd.grad(value.sum(), (logits, loc, scale)))
    x, logits, loc, scale = (t.to(dtype) for t in mixture_inputs(batch=(2,), k=0))
    x.requires_grad_()
    value = F.normal_mixture_log_likelihood(x, logits, loc, scale)
    assert (value == -torch.inf).all()  # no component: density 0 everywhere
    assert (torch.autograd.grad(value.sum(), x)[0] == 0).all()


def test_normal_mixture_broadcasts_parameters_and_checks_them():
    x, logits, loc, scale = mixture_inputs(batch=(2, 3))
    shared = F.normal_mixture_log_likelihood(x, logits[0, 0], loc[0, 0], scale[0, 0])
    torch.testing.assert_close(shared, mixture_reference(x, logits[0, 0], loc[0, 0], scale[0, 0]))
    with pytest.raises(ValueError, match="loc and scale need K = 4 components like logits"):
        F.normal_mixture_log_likelihood(x, logits, loc[..., :3, :], scale)
    with pytest.raises(ValueError, match="scale must be positive"):
        F.normal_mixture_log_likelihood(x, logits, loc, -scale)


def test_normal_mixture_gradcheck_and_gradgradcheck():
    inputs = [t.requires_grad_() for t in mixture_inputs(batch=(1,), n=3, k=2, d=2)]
    assert torch.autograd.gradcheck(F.normal_mixture_log_likelihood, inputs)
    assert torch.autograd.gradgradcheck(F.normal_mixture_log_likelihood, inputs)
