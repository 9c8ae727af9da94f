"""The diagonal normal mixture's log-likelihood (csrc/torch/mixture.cpp) against
torch.distributions.MixtureSameFamily and float64."""

import pytest
import torch
from helpers import DEVICES, TOLERANCES, opcheck_tests
from references import mixture_reference

from fusedgan import functional as F


def mixture_inputs(batch=(3,), n=25, k=4, d=2, seed=21):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, n, d, generator=g, dtype=torch.float64) * 2
    logits = torch.randn(*batch, k, generator=g, dtype=torch.float64)
    loc = torch.randn(*batch, k, d, generator=g, dtype=torch.float64)
    scale = torch.rand(*batch, k, d, generator=g, dtype=torch.float64) + 0.5
    return x, logits, loc, scale


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [4, 70])  # 70: several blocks of components in the backward
def test_normal_mixture_matches_mixture_same_family(dtype, device, k):
    inputs = mixture_inputs(k=k)
    actual = [t.to(device, dtype).requires_grad_() for t in inputs]
    expected = [t.clone().requires_grad_() for t in inputs]
    value, reference = F.normal_mixture_log_likelihood(*actual), mixture_reference(*expected)
    tolerance = TOLERANCES[torch.float64] if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-3)
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


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("k", [3, 1000])
def test_normal_mixture_of_equal_components(dtype, rtol, k):
    # Each point's terms sum to K, the most they can: the running products of those sums (the
    # CPU takes one log of many points') stay in range, in the forward and in EM's E step.
    x = torch.randn(2, 5000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum((-2, -1))
    start = (torch.zeros(k, dtype=torch.float64), torch.zeros(k, 2, dtype=torch.float64), torch.ones(k, 2, dtype=torch.float64))
    value = F.normal_mixture_log_likelihood(x.to(dtype), *(t.to(dtype) for t in start))
    torch.testing.assert_close(value.double(), expected, rtol=rtol, atol=0)
    lower_bound = torch.ops.fusedgan._normal_mixture_em(x.to(dtype), *start, 0.0, 1, 0.0)[3]
    torch.testing.assert_close(lower_bound * 5000, expected, rtol=rtol, atol=0)


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


@pytest.mark.parametrize("shared", ["all", "logits", "loc_and_scale", "x"])
def test_normal_mixture_parameters_shared_across_the_batch(shared):
    """Batch dims broadcast: parameters (or data) of one set serve every set, and their
    gradients are summed over the sets, as torch's broadcasting gives."""
    x, logits, loc, scale = mixture_inputs(batch=(2, 3))
    one = {"all": (False, True, True, True), "logits": (False, True, False, False),
           "loc_and_scale": (False, False, True, True), "x": (True, False, False, False)}[shared]
    inputs = [(t[0, 0] if first else t).clone().requires_grad_() for t, first in zip((x, logits, loc, scale), one)]
    value = F.normal_mixture_log_likelihood(*inputs)
    expected = mixture_reference(*inputs)
    assert value.shape == (2, 3)
    torch.testing.assert_close(value, expected, **TOLERANCES[torch.float64])
    grad_output = torch.randn(2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for a, e in zip(torch.autograd.grad(value, inputs, grad_output), torch.autograd.grad(expected, inputs, grad_output)):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, **TOLERANCES[torch.float64])


def test_normal_mixture_checks_its_arguments():
    x, logits, loc, scale = mixture_inputs(batch=(2, 3))
    with pytest.raises(ValueError, match="loc and scale need K = 4 components like logits"):
        F.normal_mixture_log_likelihood(x, logits, loc[..., :3, :], scale)
    with pytest.raises(ValueError, match="scale must be positive"):
        F.normal_mixture_log_likelihood(x, logits, loc, -scale)


def test_normal_mixture_gradcheck_and_gradgradcheck():
    inputs = [t.requires_grad_() for t in mixture_inputs(batch=(1,), n=3, k=2, d=2)]
    assert torch.autograd.gradcheck(F.normal_mixture_log_likelihood, inputs)
    assert torch.autograd.gradgradcheck(F.normal_mixture_log_likelihood, inputs)


def test_differentiable_backward_matches_the_kernels():
    """With create_graph the gradients are the ATen reference's (forming N x K x D); without,
    the kernels': the two must agree."""
    inputs = [t.requires_grad_() for t in mixture_inputs(batch=(2,), n=30, k=40, d=3)]
    value = F.normal_mixture_log_likelihood(*inputs)
    grad_output = torch.tensor([0.7, -1.3], dtype=torch.float64)
    kernels = torch.autograd.grad(value, inputs, grad_output, retain_graph=True)
    reference = torch.autograd.grad(value, inputs, grad_output, create_graph=True)
    for a, b in zip(reference, kernels):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


def test_bad_grad_is_named():
    mixture = mixture_inputs()
    with pytest.raises(RuntimeError, match="expected grad on cpu like input, got meta"):
        torch.ops.fusedgan._normal_mixture_log_likelihood_backward(torch.ones(3, device="meta"), *mixture, [True] * 4)


def opcheck_samples():
    ops = torch.ops.fusedgan
    x, logits, loc, scale = (t.float() for t in mixture_inputs(batch=(2,), n=5, k=3, d=2))
    yield ops.normal_mixture_log_likelihood.default, (x, logits.clone().requires_grad_(), loc, scale.clone().requires_grad_())
    yield ops._normal_mixture_log_likelihood_backward.default, (torch.rand(2), x, logits, loc, scale, [True] * 4)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "mixture_log_likelihood" in name)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def nll(x, logits, loc, log_scale):
        return -F.normal_mixture_log_likelihood(x, logits, loc, log_scale.exp()).mean()

    compiled = torch.compile(nll, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for sets in (2, 3):
        x, logits, loc, scale = (t.float() for t in mixture_inputs(batch=(sets,), n=6, k=3, d=2))
        leaves = [logits.requires_grad_(), loc.requires_grad_(), scale.log().requires_grad_()]
        expected, actual = nll(x, *leaves), compiled(x, *leaves)
        torch.testing.assert_close(actual, expected)
        for a, e in zip(torch.autograd.grad(actual, leaves), torch.autograd.grad(expected, leaves)):
            torch.testing.assert_close(a, e)
