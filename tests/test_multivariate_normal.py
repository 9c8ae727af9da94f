"""The multivariate normal's log-likelihood (csrc/torch/multivariate_normal.cpp) against
torch.distributions.MultivariateNormal, scipy.stats.multivariate_normal and float64."""

import numpy as np
import pytest
import scipy.stats
import torch
from helpers import DEVICES, TOLERANCES, opcheck_tests
from references import multivariate_normal_reference

import fusedgan.numpy as fnp
from fusedgan import functional as F


def scale_tril_of(batch, d, g):
    """Lower-triangular factors with positive diagonals, well conditioned."""
    off_diagonal = (torch.randn(*batch, d, d, generator=g, dtype=torch.float64) * 0.3).tril(-1)
    return off_diagonal + torch.diag_embed(torch.rand(*batch, d, generator=g, dtype=torch.float64) + 0.5)


def mvn_inputs(batch=(3,), n=25, d=4, seed=21, loc_batch=None, scale_tril_batch=None):
    """x (*batch, n, d), loc (*loc_batch, d), scale_tril (*scale_tril_batch, d, d) in float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, n, d, generator=g, dtype=torch.float64) * 2
    loc = torch.randn(*(batch if loc_batch is None else loc_batch), d, generator=g, dtype=torch.float64)
    return x, loc, scale_tril_of(batch if scale_tril_batch is None else scale_tril_batch, d, g)


# x's batch, loc's batch, scale_tril's batch: each broadcasts against the others
LAYOUTS = {
    "batched": ((3,), (3,), (3,)),
    "two_batch_dims": ((2, 3), (2, 3), (2, 3)),
    "shared_parameters": ((4,), (), ()),
    "shared_scale_tril": ((2, 3), (3,), ()),
    "shared_data": ((), (5,), (5,)),
    "broadcast_against_each_other": ((2, 1), (1, 3), (3,)),
    "one_set": ((), (), ()),
}


def grads_of(value, inputs, seed=3):
    grad_output = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.autograd.grad(value, inputs, grad_output.to(value.dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 5, 16])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_matches_torch_distributions(layout, d, dtype, device):
    x_batch, loc_batch, scale_tril_batch = LAYOUTS[layout]
    inputs = mvn_inputs(x_batch, n=37, d=d, loc_batch=loc_batch, scale_tril_batch=scale_tril_batch)
    actual = [t.to(device, dtype).requires_grad_() for t in inputs]
    expected = [t.clone().requires_grad_() for t in inputs]
    value, reference = F.multivariate_normal_log_likelihood(*actual), multivariate_normal_reference(*expected)
    assert value.dtype == dtype and value.shape == reference.shape
    tolerance = TOLERANCES[torch.float64] if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-3)
    torch.testing.assert_close(value.double().cpu(), reference, **tolerance)
    for a, e in zip(grads_of(value, actual), grads_of(reference, expected), strict=True):
        assert a.shape == e.shape and a.dtype == dtype
        torch.testing.assert_close(a.double().cpu(), e, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1, e.abs().max().item()))


@pytest.mark.parametrize("d", [1, 2, 5, 16])
def test_matches_scipy(d):
    x, loc, scale_tril = mvn_inputs((4,), n=50, d=d, seed=d)
    value = F.multivariate_normal_log_likelihood(x, loc, scale_tril)
    for s in range(4):
        covariance = (scale_tril[s] @ scale_tril[s].mT).numpy()
        expected = scipy.stats.multivariate_normal.logpdf(x[s].numpy(), loc[s].numpy(), covariance).sum()
        np.testing.assert_allclose(value[s].item(), expected, rtol=1e-11)
    np.testing.assert_allclose(fnp.multivariate_normal_log_likelihood(x.numpy(), loc.numpy(), scale_tril.numpy()),
                               value.numpy(), rtol=1e-14)


def test_non_contiguous_inputs_match_contiguous_ones():
    x, loc, scale_tril = mvn_inputs((3,), n=40, d=5)
    strided = (x.mT.contiguous().mT,                                    # points along the inner stride
               torch.stack([loc, loc], -1)[..., 0],                      # every other element
               scale_tril.mT.contiguous().mT)                            # column-major factors
    assert not any(t.is_contiguous() for t in strided)
    inputs = [t.clone().requires_grad_() for t in (x, loc, scale_tril)]
    strided = [t.requires_grad_() for t in strided]
    value, expected = F.multivariate_normal_log_likelihood(*strided), F.multivariate_normal_log_likelihood(*inputs)
    assert torch.equal(value, expected)
    for a, e in zip(grads_of(value, strided), grads_of(expected, inputs), strict=True):
        assert torch.equal(a, e)


def test_the_upper_triangle_is_ignored():
    x, loc, scale_tril = mvn_inputs((2,), d=4)
    noisy = (scale_tril + torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64).triu(1))
    noisy.requires_grad_()
    value = F.multivariate_normal_log_likelihood(x, loc, noisy)
    torch.testing.assert_close(value, multivariate_normal_reference(x, loc, scale_tril), **TOLERANCES[torch.float64])
    (grad,) = torch.autograd.grad(value.sum(), noisy)
    lower = torch.ones(4, 4, dtype=torch.bool).tril()
    assert (grad[:, ~lower] == 0).all() and (grad[:, lower] != 0).all()


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
def test_low_precision_matches_float64(dtype, rtol):
    # 1001 points: full vectors of points and a partial one (for any vector width), and
    # several moves of the gradient sums into double
    inputs = [t.to(dtype) for t in mvn_inputs((2,), n=1001, d=6)]
    actual = [t.clone().requires_grad_() for t in inputs]
    expected = [t.double().requires_grad_() for t in inputs]
    value, reference = F.multivariate_normal_log_likelihood(*actual), F.multivariate_normal_log_likelihood(*expected)
    assert value.dtype == dtype
    torch.testing.assert_close(value.double(), reference, rtol=rtol, atol=0)
    for a, e in zip(grads_of(value, actual), grads_of(reference, expected), strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a.double(), e, rtol=rtol, atol=rtol * e.abs().max().item())


def test_the_sums_do_not_depend_on_the_thread_count():
    inputs = [t.float().requires_grad_() for t in mvn_inputs((64,), n=300, d=5)]
    threads = torch.get_num_threads()
    results = []
    for count in (1, 2):
        torch.set_num_threads(count)
        try:
            value = F.multivariate_normal_log_likelihood(*inputs)
            results.append((value, *grads_of(value, inputs)))
        finally:
            torch.set_num_threads(threads)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_without_points_or_dimensions(dtype):
    inputs = [t.to(dtype).requires_grad_() for t in mvn_inputs((2,), n=0)]
    value = F.multivariate_normal_log_likelihood(*inputs)
    assert value.shape == (2,) and (value == 0).all()  # a sum over no points
    grads = torch.autograd.grad(value.sum(), inputs)
    assert grads[0].shape == (2, 0, 4) and all((g == 0).all() for g in grads)
    inputs = [t.to(dtype).requires_grad_() for t in mvn_inputs((2,), d=0)]
    value = F.multivariate_normal_log_likelihood(*inputs)
    assert value.shape == (2,) and (value == 0).all()  # a 0-dimensional normal has density 1
    assert [g.shape for g in torch.autograd.grad(value.sum(), inputs)] == [(2, 25, 0), (2, 0), (2, 0, 0)]


def test_nan_and_infinite_data_stay_in_their_set():
    x, loc, scale_tril = mvn_inputs((3,), d=3)
    x[0, 4, 1] = torch.nan
    x[1, 2, 0] = torch.inf
    value = F.multivariate_normal_log_likelihood(x, loc, scale_tril)
    assert torch.isnan(value[0]) and value[1] == -torch.inf
    torch.testing.assert_close(value[2], multivariate_normal_reference(x[2], loc[2], scale_tril[2]))


def test_checks_its_arguments():
    x, loc, scale_tril = mvn_inputs((2, 3), d=4)
    op = F.multivariate_normal_log_likelihood
    with pytest.raises(ValueError, match=r"expected x \(\*B, N, D\), loc \(\*B, D\) and scale_tril \(\*B, D, D\), got shapes \[25, 4\], \[\], "):
        op(x[0, 0], loc[0, 0, 0], scale_tril)
    with pytest.raises(ValueError, match=r"loc needs D = 4 dimensions like x, got shape \[2, 3, 3\]"):
        op(x, loc[..., :3], scale_tril)
    with pytest.raises(ValueError, match=r"scale_tril needs D x D = 4 x 4 like x, got shape \[2, 3, 4, 3\]"):
        op(x, loc, scale_tril[..., :3])
    with pytest.raises(ValueError, match=r"the batch dims of loc \[2, 2\] do not broadcast with the others' \[2, 3\]"):
        op(x, loc[:, :2], scale_tril)
    with pytest.raises(ValueError, match=r"the batch dims of scale_tril \[5\] do not broadcast"):
        op(x, loc, scale_tril[0, 0].expand(5, 4, 4))
    for bad in (0.0, -1.0, torch.nan):
        diagonal = scale_tril.clone()
        diagonal[1, 2, 3, 3] = bad
        with pytest.raises(ValueError, match="multivariate_normal_log_likelihood: the diagonal of scale_tril must be positive"):
            op(x, loc, diagonal)
    with pytest.raises(RuntimeError, match="expected loc to be a floating point tensor"):
        op(x, loc.long(), scale_tril)
    with pytest.raises(RuntimeError, match="expected scale_tril on cpu like input, got meta"):
        op(x, loc, scale_tril.to("meta"))


def test_bad_grad_is_named():
    with pytest.raises(RuntimeError, match=r"grad of shape \[2\] does not match the output's shape \[3\]"):
        torch.ops.fusedgan._multivariate_normal_log_likelihood_backward(torch.ones(2, dtype=torch.float64), *mvn_inputs(),
                                                                        [True] * 3)


def test_gradcheck_and_gradgradcheck():
    # loc and scale_tril shared across two sets: their gradients are summed over the batch
    inputs = [t.requires_grad_() for t in mvn_inputs((2,), n=4, d=3, loc_batch=(), scale_tril_batch=())]
    assert torch.autograd.gradcheck(F.multivariate_normal_log_likelihood, inputs)
    assert torch.autograd.gradgradcheck(F.multivariate_normal_log_likelihood, inputs)


def test_differentiable_backward_matches_the_kernels():
    """With create_graph the gradients are the ATen formulas' (triangular solves over every
    point); without, the kernels': the two must agree."""
    inputs = [t.requires_grad_() for t in mvn_inputs((2,), n=30, d=5)]
    value = F.multivariate_normal_log_likelihood(*inputs)
    grad_output = torch.tensor([0.7, -1.3], dtype=torch.float64)
    kernels = torch.autograd.grad(value, inputs, grad_output, retain_graph=True)
    reference = torch.autograd.grad(value, inputs, grad_output, create_graph=True)
    for a, b in zip(reference, kernels, strict=True):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


# ---- the parameters' gradients taken in the forward pass (the data needing none)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["batched", "two_batch_dims", "shared_scale_tril", "shared_data"])
@pytest.mark.parametrize("wanted", [(True, True), (True, False), (False, True)])
def test_parameter_gradients_kept_from_the_forward_pass(wanted, layout, dtype, device):
    # "batched" and "two_batch_dims" keep them; a shared parameter's sum over sets takes the backward
    x_batch, loc_batch, scale_tril_batch = LAYOUTS[layout]
    x, *params = mvn_inputs(x_batch, n=37, d=5, loc_batch=loc_batch, scale_tril_batch=scale_tril_batch)
    actual = [p.to(device, dtype).requires_grad_(w) for p, w in zip(params, wanted)]
    expected = [p.clone().requires_grad_(w) for p, w in zip(params, wanted)]
    value = F.multivariate_normal_log_likelihood(x.to(device, dtype), *actual)
    reference = multivariate_normal_reference(x, *expected)
    tolerance = TOLERANCES[torch.float64] if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-3)
    torch.testing.assert_close(value.double().cpu(), reference, **tolerance)
    leaves = lambda inputs: [t for t in inputs if t.requires_grad]  # noqa: E731
    ours = grads_of(value, leaves(actual))  # the first backward scales what the forward kept
    for a, e in zip(ours, grads_of(reference, leaves(expected)), strict=True):
        assert a.shape == e.shape and a.dtype == dtype
        torch.testing.assert_close(a.double().cpu(), e, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1, e.abs().max().item()))


def test_kept_gradients_take_each_sets_incoming_gradient_and_match_the_backward():
    """The first backward scales the gradients kept from the forward pass by each set's incoming
    gradient; a retained graph's second backward takes the backward op: the same values."""
    x, loc, scale_tril = mvn_inputs((2, 3), n=40, d=4)
    loc, scale_tril = loc.requires_grad_(), scale_tril.requires_grad_()
    value = F.multivariate_normal_log_likelihood(x, loc, scale_tril)
    grad_output = torch.linspace(-2, 3, 6, dtype=torch.float64).reshape(2, 3)
    first = torch.autograd.grad(value, [loc, scale_tril], grad_output, retain_graph=True)
    second = torch.autograd.grad(value, [loc, scale_tril], grad_output)
    expected = torch.autograd.grad(multivariate_normal_reference(x, loc, scale_tril), [loc, scale_tril], grad_output)
    for a, b, e in zip(first, second, expected, strict=True):
        torch.testing.assert_close(a, e, **TOLERANCES[torch.float64])
        torch.testing.assert_close(b, e, **TOLERANCES[torch.float64])


def test_and_grad_op_gives_the_forward_and_backward_ops_values():
    ops = torch.ops.fusedgan
    x, loc, scale_tril = (t.float() for t in mvn_inputs((4,), n=50, d=6))
    value, grad_loc, grad_scale_tril = ops._multivariate_normal_log_likelihood_and_grad(x, loc, scale_tril, [True, True])
    assert torch.equal(value, ops.multivariate_normal_log_likelihood(x, loc, scale_tril))
    backward = ops._multivariate_normal_log_likelihood_backward(torch.ones(4), x, loc, scale_tril, [False, True, True])
    assert torch.equal(grad_loc, backward[1]) and torch.equal(grad_scale_tril, backward[2])
    _, none, grad_scale_tril_only = ops._multivariate_normal_log_likelihood_and_grad(x, loc, scale_tril, [False, True])
    assert none is None and torch.equal(grad_scale_tril_only, grad_scale_tril)


def test_and_grad_op_is_first_order_only():
    x, loc, scale_tril = mvn_inputs((2,), n=5, d=3)
    op = torch.ops.fusedgan._multivariate_normal_log_likelihood_and_grad
    with pytest.raises(RuntimeError, match="_and_grad is not differentiable"):
        op(x, loc.requires_grad_(), scale_tril, [True, False])


@pytest.mark.parametrize("in_dims", [(None, 0, 0), (1, None, 2)])
def test_and_grad_under_vmap_matches_a_loop(in_dims):
    x, loc, scale_tril = mvn_inputs((3, 2), n=9, d=3)
    inputs = [t[0] if d is None else t.movedim(0, d) for t, d in zip((x, loc, scale_tril), in_dims)]
    op = torch.ops.fusedgan._multivariate_normal_log_likelihood_and_grad.default
    batched = torch.func.vmap(lambda *t: op(*t, [True, True]), in_dims=in_dims)(*inputs)
    for sample in range(3):
        one = [t if d is None else t.select(d, sample) for t, d in zip(inputs, in_dims)]
        for a, e in zip(batched, op(*one, [True, True]), strict=True):
            torch.testing.assert_close(a[sample], e, rtol=1e-12, atol=1e-12)


def opcheck_samples():
    ops = torch.ops.fusedgan
    x, loc, scale_tril = (t.float() for t in mvn_inputs((2,), n=5, d=3))
    yield ops.multivariate_normal_log_likelihood.default, (x, loc.clone().requires_grad_(), scale_tril.clone().requires_grad_())
    yield ops._multivariate_normal_log_likelihood_backward.default, (torch.rand(2), x, loc, scale_tril, [True] * 3)
    yield ops._multivariate_normal_log_likelihood_and_grad.default, (x, loc, scale_tril, [True, True])
    yield ops._multivariate_normal_log_likelihood_and_grad.default, (x.double(), loc[0], scale_tril, [False, True])


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()),
                                                                  lambda name: "multivariate_normal" in name)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def nll(x, loc, off_diagonal, log_diagonal):
        scale_tril = off_diagonal.tril(-1) + torch.diag_embed(log_diagonal.exp())
        return -F.multivariate_normal_log_likelihood(x, loc, scale_tril).mean()

    compiled = torch.compile(nll, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for sets in (2, 3):
        x, loc, scale_tril = (t.float() for t in mvn_inputs((sets,), n=6, d=3))
        leaves = [loc.requires_grad_(), scale_tril.clone().requires_grad_(), scale_tril.diagonal(0, -2, -1).log().requires_grad_()]
        expected, actual = nll(x, *leaves), compiled(x, *leaves)
        torch.testing.assert_close(actual, expected)
        for a, e in zip(torch.autograd.grad(actual, leaves), torch.autograd.grad(expected, leaves), strict=True):
            torch.testing.assert_close(a, e)
