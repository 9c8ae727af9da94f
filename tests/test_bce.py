"""Binary cross-entropy, both forms, against torch (computed in float64) and float64 math."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from helpers import DEVICES, TOLERANCES, assert_close, opcheck_tests

import fusedgan
from fusedgan import functional as F
from fusedgan import nn as fnn

REDUCTIONS = ["none", "mean", "sum"]
FORMS = {
    "logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits),
    "probabilities": (F.binary_cross_entropy, TF.binary_cross_entropy),
}


def make_inputs(shape, dtype, device, form, generator_seed=0):
    g = torch.Generator().manual_seed(generator_seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if form == "probabilities":
        x = x.sigmoid().clamp(0.01, 0.99)  # p in {0, 1} has its own tests; its gradient overflows float16
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(device, dtype), y.to(device, dtype)


def reference(form, x, y, reduction, weight=None, pos_weight=None, grad_output=None):
    """torch's own loss in float64: values and gradients for input and target."""
    x64 = x.detach().double().requires_grad_()
    y64 = y.detach().double().requires_grad_()
    w64 = None if weight is None else weight.double()
    kwargs = {} if pos_weight is None else {"pos_weight": pos_weight.double()}
    loss = FORMS[form][1](x64, y64, w64, reduction=reduction, **kwargs)
    grads = torch.autograd.grad(loss, (x64, y64), grad_output.double() if grad_output is not None else torch.ones_like(loss))
    return loss, grads


def run(form, x, y, reduction, weight=None, pos_weight=None, grad_output=None, target_requires_grad=True):
    """Loss and gradients; with target_requires_grad=False only the input's (a reduced loss
    then computes it in its forward pass)."""
    x = x.detach().requires_grad_()
    y = y.detach().requires_grad_(target_requires_grad)
    kwargs = {} if pos_weight is None else {"pos_weight": pos_weight}
    loss = FORMS[form][0](x, y, weight, reduction=reduction, **kwargs)
    inputs = (x, y) if target_requires_grad else (x,)
    grads = torch.autograd.grad(loss, inputs, grad_output if grad_output is not None else torch.ones_like(loss))
    return loss, grads


# weight and pos_weight makers for an input shape: None where the pattern needs more dims.
WEIGHTS = {
    "none": lambda shape: (None, None),
    "full": lambda shape: (torch.rand(shape, dtype=torch.float64) + 0.5, None),
    "per_column": lambda shape: (torch.rand(shape[-1:], dtype=torch.float64) + 0.5, None),
    "per_row": lambda shape: (torch.rand(shape[:1] + (1,) * (len(shape) - 1), dtype=torch.float64) + 0.5, None),
    "scalar": lambda shape: (torch.tensor(0.7, dtype=torch.float64), None),
    "pos_weight": lambda shape: (None, torch.rand(shape[-1:], dtype=torch.float64) * 3 + 0.1),
    "pos_weight_per_row": lambda shape: (None, torch.rand(shape[:1] + (1,), dtype=torch.float64) * 3 + 0.1)
    if len(shape) == 2 else None,
    "pos_weight_per_channel": lambda shape: (None, torch.rand((1, shape[1], 1), dtype=torch.float64) * 3 + 0.1)
    if len(shape) == 3 else None,
    "both": lambda shape: (torch.rand(shape[:1] + (1,) * (len(shape) - 1), dtype=torch.float64), torch.rand(shape[-1:], dtype=torch.float64) * 3),
}
SHAPES = [(1,), (7,), (5, 33), (3, 4, 129), (2, 1, 5000)]


def weight_cases():
    """The (form, weights, shape) that exist: pos_weight belongs to the logits form, and some
    weight patterns need more dims than a shape has."""
    for form in FORMS:
        for weights, make in WEIGHTS.items():
            for shape in SHAPES:
                if make(shape) is not None and not (form == "probabilities" and make(shape)[1] is not None):
                    yield form, weights, shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form, weights, shape", list(weight_cases()))
def test_matches_torch(form, weights, shape, reduction, dtype, device):
    x, y = make_inputs(shape, dtype, device, form)
    weight, pos_weight = WEIGHTS[weights](shape)
    weight = None if weight is None else weight.to(device, dtype)
    pos_weight = None if pos_weight is None else pos_weight.to(device, dtype)
    grad_output = torch.randn(shape if reduction == "none" else (), dtype=dtype).to(device)
    expected_loss, expected_grads = reference(form, x, y, reduction, weight, pos_weight, grad_output)
    for target_requires_grad in (True, False):
        loss, grads = run(form, x, y, reduction, weight, pos_weight, grad_output, target_requires_grad)
        assert loss.dtype == dtype and loss.shape == expected_loss.shape and loss.device == x.device
        assert_close(loss, expected_loss, dtype)
        for actual, expected in zip(grads, expected_grads):
            assert actual.dtype == dtype
            assert_close(actual, expected, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_non_contiguous_and_broadcast_views(form, reduction, device):
    x, y = make_inputs((40, 30), torch.float32, device, form)
    x_t, y_t = x.t(), y[:, ::1].t()  # transposed views
    weight = torch.rand(30, 1, device=device).expand(30, 40)  # stride-0 view
    kwargs = dict(pos_weight=torch.rand(40, device=device) + 0.5) if form == "logits" else {}
    grad_output = torch.randn(30, 40, device=device).t().t() if reduction == "none" else None
    loss, grads = run(form, x_t, y_t, reduction, weight, kwargs.get("pos_weight"), grad_output)
    expected_loss, expected_grads = reference(form, x_t, y_t, reduction, weight, kwargs.get("pos_weight"), grad_output)
    assert_close(loss, expected_loss, torch.float32)
    for actual, expected in zip(grads, expected_grads):
        assert_close(actual, expected, torch.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("form", list(FORMS))
def test_empty_inputs(form, device):
    x, y = make_inputs((0, 3), torch.float32, device, form)
    for reduction in REDUCTIONS:
        loss, grads = run(form, x, y, reduction)
        expected, _ = reference(form, x, y, reduction)
        torch.testing.assert_close(loss.cpu().double(), expected, equal_nan=True)
        assert grads[0].shape == (0, 3)
    assert F.binary_cross_entropy_with_logits(torch.empty(0), torch.empty(0)).isnan()  # mean of nothing, as torch


def test_mixed_dtypes_promote_for_logits():
    x = torch.randn(10, dtype=torch.float16)
    y = torch.rand(10, dtype=torch.float32)
    assert F.binary_cross_entropy_with_logits(x, y).dtype == torch.float32
    assert F.binary_cross_entropy_with_logits(x.double(), y).dtype == torch.float64


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_and_gradgradcheck(form, reduction):
    x, y = make_inputs((4, 6), torch.float64, "cpu", form)
    if form == "probabilities":
        x = x.clamp(0.05, 0.95)
    else:
        x[0, :2] = 0.0  # logits of exactly 0: the derivatives must hold there too
    x.requires_grad_()
    y.requires_grad_()
    weight = torch.rand(4, 1, dtype=torch.float64) + 0.5
    if form == "logits":
        pos_weight = torch.rand(6, dtype=torch.float64) + 0.5
        fn = lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight, reduction=reduction, pos_weight=pos_weight)
    else:
        fn = lambda x, y: F.binary_cross_entropy(x, y, weight, reduction=reduction)
    assert torch.autograd.gradcheck(fn, (x, y))
    assert torch.autograd.gradgradcheck(fn, (x, y))


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_differentiable_backward_matches_the_kernels(form, reduction):
    """With create_graph the gradients are csrc/math's derivatives in ATen ops; without, the
    kernels': the two must agree, for input and target, with weights."""
    x, y = make_inputs((6, 9), torch.float64, "cpu", form)
    x.requires_grad_()
    y.requires_grad_()
    weight = torch.rand(6, 1, dtype=torch.float64) + 0.5
    extra = {"pos_weight": torch.rand(9, dtype=torch.float64) + 0.5} if form == "logits" else {}
    loss = FORMS[form][0](x, y, weight, reduction=reduction, **extra)
    grad_output = torch.randn(loss.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    kernels = torch.autograd.grad(loss, (x, y), grad_output, retain_graph=True)
    in_aten = torch.autograd.grad(loss, (x, y), grad_output, create_graph=True)
    for a, b in zip(in_aten, kernels):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_differentiable_backward_computes_16_bit_types_in_float32(dtype):
    """As the kernels do: with create_graph, p in {0, 1} with y = p keeps torch's 1e-12 guard
    (which float16 cannot hold) and gives 0, not 0/0."""
    p = torch.tensor([0.0, 1.0, 0.5, 0.25], dtype=dtype, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    kernels = torch.autograd.grad(F.binary_cross_entropy(p, y, reduction="sum"), p)[0]
    in_aten = torch.autograd.grad(F.binary_cross_entropy(p, y, reduction="sum"), p, create_graph=True)[0]
    assert in_aten.dtype == dtype
    torch.testing.assert_close(in_aten, kernels)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_from_the_forward_pass_survives_repeated_backward(form, reduction):
    """The input gradient of a reduced loss is computed in the forward pass; a second backward
    through a retained graph, accumulation into .grad and create_graph still give torch's."""
    x, y = make_inputs((5, 7), torch.float64, "cpu", form)
    x.requires_grad_()
    expected = torch.autograd.grad(FORMS[form][1](x, y, reduction=reduction), x, create_graph=True)[0]
    loss = FORMS[form][0](x, y, reduction=reduction)
    (3 * loss).backward(retain_graph=True)
    torch.testing.assert_close(x.grad, 3 * expected)
    loss.backward(retain_graph=True)
    torch.testing.assert_close(x.grad, 4 * expected)
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    torch.testing.assert_close(grad, expected)
    torch.testing.assert_close(torch.autograd.grad(grad.sum(), x)[0], torch.autograd.grad(expected.sum(), x)[0])


@pytest.mark.parametrize("form", list(FORMS))
def test_and_grad_ops_are_first_order_only(form):
    x, y = make_inputs((3,), torch.float32, "cpu", form)
    op = getattr(torch.ops.fusedgan, f"_{'binary_cross_entropy_with_logits' if form == 'logits' else 'binary_cross_entropy'}_and_grad")
    extra = (None,) if form == "logits" else ()
    with pytest.raises(ValueError, match="reduction must be 1 \\(mean\\) or 2 \\(sum\\)"):
        op(x, y, None, *extra, 0)
    with pytest.raises(RuntimeError, match="_and_grad is not differentiable"):
        op(x.requires_grad_(), y, None, *extra, 1)


def opcheck_samples():
    x, y = make_inputs((3, 5), torch.float32, "cpu", "logits")
    p, _ = make_inputs((3, 5), torch.float32, "cpu", "probabilities")
    w, pw = torch.rand(3, 1), torch.rand(5) + 0.5
    ops = torch.ops.fusedgan
    for reduction in (0, 1, 2):
        grad = torch.randn(3, 5) if reduction == 0 else torch.randn(())
        yield ops.binary_cross_entropy_with_logits.default, (x.requires_grad_(), y, w, pw, reduction)
        yield ops.binary_cross_entropy_with_logits.default, (x, y.requires_grad_(), None, None, reduction)
        yield ops.binary_cross_entropy.default, (p.requires_grad_(), y, w, reduction)
        yield ops._binary_cross_entropy_with_logits_backward.default, (grad, x, y, w, pw, reduction, [True, True])
        yield ops._binary_cross_entropy_with_logits_backward.default, (grad, x, y, None, None, reduction, [True, False])
        yield ops._binary_cross_entropy_backward.default, (grad, p, y, w, reduction, [True, True])
        yield ops._binary_cross_entropy_backward.default, (grad, p, y, None, reduction, [False, True])
        if reduction != 0:
            yield ops._binary_cross_entropy_with_logits_and_grad.default, (x.detach(), y.detach(), w, pw, reduction)
            yield ops._binary_cross_entropy_and_grad.default, (p.detach(), y.detach(), None, reduction)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "cross_entropy" in name)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic, backend):
    def loss_fn(logits, probs, target):
        return F.binary_cross_entropy_with_logits(logits, target) + F.binary_cross_entropy(probs, target, reduction="sum")

    compiled = torch.compile(loss_fn, fullgraph=True, dynamic=dynamic, backend=backend)
    for n in (8, 12):
        x, y = make_inputs((n,), torch.float32, "cpu", "logits")
        p = x.sigmoid().detach().requires_grad_()
        x.requires_grad_()
        expected = loss_fn(x, p, y)
        expected_grads = torch.autograd.grad(expected, (x, p))
        actual = compiled(x, p, y)
        torch.testing.assert_close(actual, expected)
        for a, e in zip(torch.autograd.grad(actual, (x, p)), expected_grads):
            torch.testing.assert_close(a, e)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_infinite_logits_give_limits_and_finite_gradients(dtype, device):
    inf = float("inf")
    x = torch.tensor([inf, inf, -inf, -inf, inf, 1e4, -1e4], dtype=dtype, device=device, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0], dtype=dtype, device=device)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert loss.tolist() == [0.0, inf, 0.0, inf, inf, 0.0, 0.0]
    loss.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, -1.0, 0.5, 0.0, 0.0]
    pos_weight = torch.tensor(2.0, dtype=dtype, device=device).expand(7)
    assert F.binary_cross_entropy_with_logits(x[[0, 2, 5, 6]], y[[0, 2, 5, 6]], pos_weight=pos_weight[:4]).item() == 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_large_logits_stay_finite_and_exact(device):
    x = torch.tensor([-1e4, -100.0, -20.0, 20.0, 100.0, 1e4], dtype=torch.float32, device=device)
    for target in (0.0, 0.3, 1.0):
        y = torch.full_like(x, target)
        loss, grads = run("logits", x, y, "none")
        expected, expected_grads = reference("logits", x, y, "none")
        assert_close(loss, expected, torch.float32)
        assert_close(grads[0], expected_grads[0], torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_of_a_confident_right_logit_keeps_its_relative_precision(device):
    """With target 1 and logits past 17, sigmoid(x) rounds to 1 in float32: the gradient
    sigmoid(x) - 1 = -sigmoid(-x) must not cancel to 0, in BCE (with and without pos_weight),
    the Bernoulli log-likelihood and the discriminator's cost alike (torch's BCE gives 0)."""
    x = torch.tensor([5.0, 17.0, 20.0, 40.0, 80.0], device=device)
    ones = torch.ones_like(x)
    fake = torch.tensor([-30.0], device=device)
    expected = -torch.sigmoid(-x.double()).cpu()  # d/dx bce(x, 1)
    costs = {  # each scaled to the sum of bce(x, 1)
        "bce": lambda v: F.binary_cross_entropy_with_logits(v, ones, reduction="sum"),
        "bce, pos_weight 2": lambda v: F.binary_cross_entropy_with_logits(v, ones, reduction="sum",
                                                                           pos_weight=2 * ones) / 2,
        "bernoulli": lambda v: -F.bernoulli_log_likelihood(ones, v),
        "discriminator_cost": lambda v: 2 * len(v) * F.discriminator_cost(v, fake),
    }
    for name, cost in costs.items():
        v = x.clone().requires_grad_()
        (grad,) = torch.autograd.grad(cost(v), v)
        torch.testing.assert_close(grad.double().cpu(), expected, rtol=1e-5, atol=0, msg=name)


def test_probability_form_clamps_log_at_minus_100_like_torch():
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-45, 1 - 1e-7])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    torch.testing.assert_close(F.binary_cross_entropy(p, y, reduction="none"), TF.binary_cross_entropy(p, y, reduction="none"))


def test_probability_form_is_computed_in_float32_for_float16():
    p64 = torch.tensor([1e-4, 0.3, 0.999], dtype=torch.float64)
    y64 = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    half = F.binary_cross_entropy(p64.half(), y64.half(), reduction="none")
    expected = TF.binary_cross_entropy(p64.half().double(), y64, reduction="none")
    torch.testing.assert_close(half.double(), expected, rtol=1e-3, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.binary_cross_entropy(p64.bfloat16(), y64.bfloat16())
    expected = TF.binary_cross_entropy(p64.bfloat16().double(), y64.bfloat16().double())
    assert_close(loss, expected, torch.bfloat16)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probability_form_at_the_edges_like_torch(reduction):
    """Values and both gradients at p in {0, 1, 1e-45, 1 - 1e-7}: torch's clamped logs, its
    1e-12 guard in d/dp and its unclamped d/dy (infinite at 0 and 1)."""
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 1e-45, 1 - 1e-7, 1e-45, 1 - 1e-7])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.3, 0.6])
    grad_output = torch.linspace(0.5, 2.0, 8) if reduction == "none" else torch.tensor(1.5)
    loss, grads = run("probabilities", p, y, reduction, grad_output=grad_output)
    p_ref, y_ref = p.clone().requires_grad_(), y.clone().requires_grad_()
    expected = TF.binary_cross_entropy(p_ref, y_ref, reduction=reduction)
    expected_grads = torch.autograd.grad(expected, (p_ref, y_ref), grad_output)
    torch.testing.assert_close(loss, expected)
    for actual, want in zip(grads, expected_grads):
        torch.testing.assert_close(actual, want)


def test_nan_propagates_like_torch():
    x = torch.tensor([float("nan"), 0.5, 1.0])
    y = torch.tensor([1.0, float("nan"), 0.0])
    for reduction in REDUCTIONS:
        torch.testing.assert_close(
            F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
            TF.binary_cross_entropy_with_logits(x, y, reduction=reduction),
            equal_nan=True,
        )
    p = torch.tensor([0.5, 0.2])
    assert F.binary_cross_entropy(p, torch.tensor([float("nan"), 1.0]), reduction="none")[0].isnan()


def test_legacy_size_average_and_reduce():
    x, y = make_inputs((4, 3), torch.float32, "cpu", "logits")
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        actual = F.binary_cross_entropy_with_logits(x, y, size_average=False)
    torch.testing.assert_close(actual, TF.binary_cross_entropy_with_logits(x, y, reduction="sum"))
    with pytest.warns(UserWarning):
        actual = F.binary_cross_entropy(x.sigmoid(), y, reduce=False)
    torch.testing.assert_close(actual, TF.binary_cross_entropy(x.sigmoid(), y, reduction="none"))


def float32_ulps(actual: float, exact: float) -> float:
    """|actual - exact| in units of the float32 spacing at exact."""
    return abs(actual - exact) / float(np.spacing(np.float32(exact)))


@pytest.mark.parametrize("scale", [0.1, 4.0, 30.0])
@pytest.mark.parametrize("seed", [1, 4])
def test_float32_reductions_over_4m_within_one_ulp_of_float64(seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * 1024 * 1024, generator=g) * scale
    y = torch.rand(x.shape, generator=g)
    for reduction in ("mean", "sum"):
        actual = F.binary_cross_entropy_with_logits(x, y, reduction=reduction).item()
        exact = TF.binary_cross_entropy_with_logits(x.double(), y.double(), reduction=reduction).item()
        assert float32_ulps(actual, exact) <= 1, reduction


@pytest.mark.parametrize("shape, weight_shape", [((8 * 1024 * 1024 + 5,), None), ((8193, 1025), (8193, 1))])
def test_outputs_of_32mb_and_more_are_exact(shape, weight_shape):
    # Such outputs are written with streaming stores where a vector is whole and aligned: the
    # flat case has aligned vectors and a partial one at the end; rows of 1025 mostly neither.
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(shape, generator=g) * 3).requires_grad_()
    y = torch.rand(shape, generator=g)
    weight = torch.rand(weight_shape, generator=g) if weight_shape else None
    x64 = x.detach().double().requires_grad_()
    w64 = weight.double() if weight_shape else None
    for reduction in ("none", "mean"):
        loss = F.binary_cross_entropy_with_logits(x, y, weight, reduction=reduction)
        expected = TF.binary_cross_entropy_with_logits(x64, y.double(), w64, reduction=reduction)
        torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)
        grad_output = torch.rand(loss.shape, generator=g)  # none: the backward op's streamed gradient
        (grad,) = torch.autograd.grad(loss, x, grad_output)
        (grad_expected,) = torch.autograd.grad(expected, x64, grad_output.double())
        atol = 1e-6 * grad_expected.abs().max().item()
        torch.testing.assert_close(grad.double(), grad_expected, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("form", list(FORMS))
def test_reductions_are_bitwise_identical_for_any_thread_count(form):
    x, y = make_inputs((3_000_001,), torch.float32, "cpu", form, generator_seed=3)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append([FORMS[form][0](x, y, reduction=r).item() for r in ("mean", "sum")])
    finally:
        torch.set_num_threads(threads)
    assert results[0] == results[1] == results[2]


def test_large_outputs_reuse_freed_memory_never_live_memory():
    """A large CPU output (4M elements) takes the memory of an earlier one of its size once
    that one is freed, so its pages need no faulting in, but never that of a live one."""
    x, y = make_inputs((4_000_000,), torch.float32, "cpu", "logits")
    first = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    second = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert second.data_ptr() != first.data_ptr()
    freed = first.data_ptr()
    del first
    third = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert third.data_ptr() == freed and torch.equal(third, second)
    third.resize_(5_000_000)  # an ordinary, resizable tensor
    assert third.shape == (5_000_000,)


# ---- bad input


@pytest.mark.parametrize("form", list(FORMS))
def test_target_shape_mismatch_is_a_value_error(form):
    x, y = make_inputs((4, 3), torch.float32, "cpu", form)
    with pytest.raises(ValueError, match="target size"):
        FORMS[form][0](x, y[:2])


@pytest.mark.parametrize("form", list(FORMS))
def test_unknown_reduction(form):
    x, y = make_inputs((4,), torch.float32, "cpu", form)
    with pytest.raises(ValueError, match="bad is not a valid value for reduction"):
        FORMS[form][0](x, y, reduction="bad")
    op = torch.ops.fusedgan.binary_cross_entropy_with_logits
    with pytest.raises(ValueError, match="reduction must be"):
        op(x, y, None, None, 5)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("argument", ["input", "target"])
def test_integer_dtypes_are_named(form, argument):
    x, y = make_inputs((4,), torch.float32, "cpu", form)
    args = {"input": x, "target": y}
    args[argument] = args[argument].long()
    with pytest.raises(RuntimeError, match=f"expected {argument} to be a floating point tensor"):
        FORMS[form][0](args["input"], args["target"])


def test_probability_form_needs_matching_dtypes():
    p, y = make_inputs((4,), torch.float32, "cpu", "probabilities")
    with pytest.raises(RuntimeError, match="expected target of dtype Float"):
        F.binary_cross_entropy(p, y.double())


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_weights_that_do_not_broadcast_are_named(name):
    x, y = make_inputs((4, 3), torch.float32, "cpu", "logits")
    with pytest.raises(RuntimeError, match=f"{name} of shape \\[2\\] cannot be broadcast"):
        F.binary_cross_entropy_with_logits(x, y, **{name: torch.ones(2)})
    with pytest.raises(RuntimeError, match=f"expected {name} to be a floating point tensor"):
        F.binary_cross_entropy_with_logits(x, y, **{name: torch.ones(3, dtype=torch.long)})


def test_mismatched_devices_are_named():
    x, y = make_inputs((4, 3), torch.float32, "cpu", "logits")
    with pytest.raises(RuntimeError, match="expected target on cpu like input, got meta"):
        F.binary_cross_entropy_with_logits(x, y.to("meta"))
    with pytest.raises(RuntimeError, match="expected weight on cpu like input, got meta"):
        F.binary_cross_entropy_with_logits(x, y, torch.ones(3, device="meta"))
    with pytest.raises(RuntimeError, match="expected pos_weight on cpu like input, got meta"):
        F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(2.0, device="meta"))


@pytest.mark.cuda
def test_zero_dim_cpu_weights_of_cuda_inputs_as_torch_accepts():
    x, y = make_inputs((4, 3), torch.float32, "cuda", "logits")
    w, pw = torch.tensor(0.7), torch.tensor(2.0)
    for reduction in ("none", "mean"):
        expected = TF.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw, reduction=reduction)
        actual = F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw, reduction=reduction)
        assert actual.device == x.device
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_probabilities_outside_unit_interval_raise(bad):
    p = torch.tensor([0.2, bad, 0.7])
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(p, torch.ones(3))


@pytest.mark.parametrize("form, name", [("logits", "weight"), ("logits", "pos_weight"), ("probabilities", "weight")])
def test_weights_requiring_grad_are_refused_like_torch(form, name):
    x, y = make_inputs((3,), torch.float32, "cpu", form)
    for input_requires_grad in (True, False):
        with pytest.raises(RuntimeError, match=f"not differentiable with respect to {name}"):
            FORMS[form][0](x.detach().requires_grad_(input_requires_grad), y, **{name: torch.ones(3, requires_grad=True)})


# ---- modules


def test_modules_are_torch_compatible():
    weight, pos_weight = torch.rand(3), torch.rand(3) + 0.5
    ours, theirs = fnn.BCEWithLogitsLoss(weight=weight, pos_weight=pos_weight), torch.nn.BCEWithLogitsLoss(weight=weight, pos_weight=pos_weight)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    ours.load_state_dict(theirs.state_dict())
    x, y = make_inputs((4, 3), torch.float32, "cpu", "logits")
    torch.testing.assert_close(ours(x, y), theirs(x, y))
    ours, theirs = fnn.BCELoss(weight=weight, reduction="sum"), torch.nn.BCELoss(weight=weight, reduction="sum")
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    torch.testing.assert_close(ours(x.sigmoid(), y), theirs(x.sigmoid(), y))


def test_build_info():
    info = fusedgan.build_info()
    assert info["version"] == fusedgan.__version__
    assert isinstance(info["cuda"], bool)
    assert info["simd"] in ("avx512", "avx2", "generic")
