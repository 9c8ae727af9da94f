"""The GAN costs J(D), J(G) and the discriminator's statistics, against float64 references
written from the formulas (Goodfellow's NIPS 2016 tutorial, section 3.2)."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as TF
from helpers import DEVICES, TOLERANCES, assert_close, opcheck_tests
from references import reference_discriminator_cost, reference_generator_cost

import fusedgan
from fusedgan import functional as F
from fusedgan import nn as fnn

KINDS = ["minimax", "non_saturating", "maximum_likelihood"]


def logits(shape, dtype=torch.float32, device="cpu", seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(device, dtype)


def grads_of(fn, *inputs, grad_output=2.5, in_float64=False):
    """Value and gradients of fn (in float64 for the references), with the cost scaled so
    that the incoming gradient is not 1."""
    leaves = [(x.double() if in_float64 else x).detach().requires_grad_() for x in inputs]
    value = fn(*leaves)
    return value, torch.autograd.grad(value * grad_output, leaves)


SHAPES = {
    "gan_batch": ((64,), (64,)),
    "different_sizes": ((64, 1), (17,)),
    "patchgan": ((2, 1, 30, 30), (2, 1, 30, 30)),
    "one_each": ((1,), (1,)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("shapes", list(SHAPES))
@pytest.mark.parametrize("labels", [(1.0, 0.0), (0.9, 0.0), (0.8, 0.15)])
def test_discriminator_cost_matches_the_probability_form(labels, shapes, dtype, device):
    real = logits(SHAPES[shapes][0], dtype, device, seed=1)
    fake = logits(SHAPES[shapes][1], dtype, device, seed=2)
    real_label, fake_label = labels
    cost, grads = grads_of(lambda r, f: F.discriminator_cost(r, f, real_label=real_label, fake_label=fake_label), real, fake)
    expected, expected_grads = grads_of(
        lambda r, f: reference_discriminator_cost(r, f, real_label, fake_label), real, fake, in_float64=True
    )
    assert cost.shape == () and cost.dtype == dtype and cost.device == real.device
    assert_close(cost, expected, dtype)
    for actual, want, x in zip(grads, expected_grads, (real, fake)):
        assert actual.shape == x.shape and actual.dtype == dtype
        assert_close(actual, want, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(TOLERANCES))
@pytest.mark.parametrize("kind", KINDS)
def test_generator_cost_matches_its_formula(kind, dtype, device):
    fake = logits((3, 50), dtype, device, seed=3, scale=2.0)
    cost, (grad,) = grads_of(lambda f: F.generator_cost(f, kind=kind), fake)
    expected, (expected_grad,) = grads_of(lambda f: reference_generator_cost(f, kind), fake, in_float64=True)
    assert cost.shape == () and cost.dtype == dtype
    assert_close(cost, expected, dtype)
    assert_close(grad, expected_grad, dtype)


def test_default_generator_cost_is_non_saturating():
    fake = logits((10,))
    assert torch.equal(F.generator_cost(fake), F.generator_cost(fake, kind="non_saturating"))


def test_minimax_generator_cost_is_minus_the_discriminator_cost_up_to_a_constant():
    """J(G) = -J(D): the real half of J(D) does not depend on G."""
    real, fake = logits((30,), seed=4), logits((40,), seed=5)
    full = -F.discriminator_cost(real, fake)
    real_half = -0.5 * TF.softplus(-real).mean()  # 1/2 E log D(x)
    torch.testing.assert_close(F.generator_cost(fake, kind="minimax"), full - real_half)


def test_discriminator_cost_equals_the_two_bce_composition_users_write():
    real, fake = logits((64,), seed=6), logits((64,), seed=7)
    composed = 0.5 * (
        TF.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9))
        + TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    )
    torch.testing.assert_close(F.discriminator_cost(real, fake, real_label=0.9), composed)


@pytest.mark.parametrize("device", DEVICES)
def test_views_and_one_batch_needing_grad(device):
    real = logits((20, 30), device=device, seed=8).t()  # transposed view
    fake = logits((30, 5), device=device, seed=9)[:, ::2]  # strided view
    fake.requires_grad_()
    cost = F.discriminator_cost(real, fake)
    (grad,) = torch.autograd.grad(cost, fake)
    _, (expected,) = grads_of(lambda f: reference_discriminator_cost(real, f), fake, grad_output=1.0, in_float64=True)
    assert_close(cost, reference_discriminator_cost(real, fake), torch.float32)
    assert_close(grad, expected, torch.float32)


def test_repeated_backward_through_a_retained_graph_gives_the_same_bits():
    real = logits((100,), seed=10).requires_grad_()
    fake = logits((60,), seed=11).requires_grad_()
    for make, inputs in ((lambda: F.discriminator_cost(real, fake, real_label=0.9), (real, fake)),
                         (lambda: F.generator_cost(fake), (fake,))):
        cost = make()
        first = torch.autograd.grad(3 * cost, inputs, retain_graph=True)
        second = torch.autograd.grad(3 * cost, inputs)
        for a, b in zip(first, second):
            assert torch.equal(a, b)


@pytest.mark.parametrize("labels", [(1.0, 0.0), (0.9, 0.1)])
def test_discriminator_cost_gradcheck_and_gradgradcheck(labels):
    real = logits((5, 3), torch.float64, seed=12)
    fake = logits((4,), torch.float64, seed=13)
    real[0, 0] = fake[0] = 0.0  # logits of exactly 0: the derivatives must hold there too
    real.requires_grad_()
    fake.requires_grad_()
    fn = lambda r, f: F.discriminator_cost(r, f, real_label=labels[0], fake_label=labels[1])
    assert torch.autograd.gradcheck(fn, (real, fake))
    assert torch.autograd.gradgradcheck(fn, (real, fake))


@pytest.mark.parametrize("kind", KINDS)
def test_generator_cost_gradcheck_and_gradgradcheck(kind):
    fake = logits((6,), torch.float64, seed=14, scale=1.0)
    fake[0] = 0.0
    fake.requires_grad_()
    fn = lambda f: F.generator_cost(f, kind=kind)
    assert torch.autograd.gradcheck(fn, (fake,))
    assert torch.autograd.gradgradcheck(fn, (fake,))


def stable_costs(kind, fake, real=None):
    """The costs in float64 from softplus (torch's stable BCE with logits): exact where the
    probability form's logs of sigmoids would round to log(0)."""
    fake = fake.double()
    if kind == "discriminator":
        real = real.double()
        return 0.5 * (TF.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9))
                      + TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    return {
        "minimax": -0.5 * TF.softplus(fake).mean(),
        "non_saturating": 0.5 * TF.softplus(-fake).mean(),
        "maximum_likelihood": -0.5 * torch.exp(fake).mean(),
    }[kind]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["discriminator", *KINDS])
def test_costs_match_float64_for_logits_from_minus_200_to_50(kind, dtype, device):
    x = torch.linspace(-200, 50, 2001, dtype=dtype, device=device)
    real = x.flip(0)
    if kind == "discriminator":
        fn = lambda f: F.discriminator_cost(real, f, real_label=0.9)
    else:
        fn = lambda f: F.generator_cost(f, kind=kind)
    cost, (grad,) = grads_of(fn, x, grad_output=1.0)
    expected, (expected_grad,) = grads_of(lambda f: stable_costs(kind, f, real), x.cpu(), grad_output=1.0, in_float64=True)
    # float32: e^-a below the smallest normal float (a > 87.3) is flushed to 0
    tolerance = TOLERANCES[torch.float64] if dtype == torch.float64 else dict(rtol=2e-5, atol=1.2e-38)
    torch.testing.assert_close(cost.double().cpu(), expected, **tolerance)
    torch.testing.assert_close(grad.double().cpu(), expected_grad, **tolerance)


def test_costs_at_extreme_logits_match_float64():
    x = torch.tensor([-200.0, -90.0, -30.0, -1e-3, 0.0, 20.0, 50.0])
    for kind in KINDS:
        cost, (grad,) = grads_of(lambda f: F.generator_cost(f, kind=kind), x, grad_output=1.0)
        expected_cost = {
            "minimax": -0.5 * TF.softplus(x.double()).mean(),
            "non_saturating": 0.5 * TF.softplus(-x.double()).mean(),
            "maximum_likelihood": -0.5 * torch.exp(x.double()).mean(),
        }[kind]
        torch.testing.assert_close(cost.double(), expected_cost, rtol=2e-6, atol=0)
        expected_grad = {
            "minimax": -0.5 * torch.sigmoid(x.double()),
            "non_saturating": -0.5 * torch.sigmoid(-x.double()),
            "maximum_likelihood": -0.5 * torch.exp(x.double()),
        }[kind] / len(x)
        # e^-a below the smallest normal float (a > 87.3) is flushed to 0
        torch.testing.assert_close(grad.double(), expected_grad, rtol=2e-5, atol=1.2e-38)
    cost = F.discriminator_cost(torch.tensor([1e4, -1e4]), torch.tensor([-1e4]))
    assert cost.item() == pytest.approx(0.25 * 1e4)


def test_differentiable_backward_matches_the_kernels():
    """With create_graph the gradients are csrc/math's derivatives in ATen ops; without, the
    kernels': the two must agree."""
    real, fake = logits((40,), torch.float64, seed=19), logits((30,), torch.float64, seed=20)
    costs = [lambda r, f: F.discriminator_cost(r, f, real_label=0.9, fake_label=0.05)]
    costs += [(lambda k: lambda r, f: F.generator_cost(f, kind=k))(kind) for kind in KINDS]
    for cost in costs:
        inputs = [real.clone().requires_grad_(), fake.clone().requires_grad_()]
        value = 1.7 * cost(*inputs)
        kernels = torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
        in_aten = torch.autograd.grad(value, inputs, create_graph=True, allow_unused=True)
        for a, b in zip(in_aten, kernels):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("device", DEVICES)
def test_discriminator_stats(device):
    real = logits((64, 1), device=device, seed=15)
    fake = logits((48,), device=device, seed=16)
    stats = F.discriminator_stats(real, fake)
    expected = torch.stack([
        torch.sigmoid(real.double()).mean(),
        torch.sigmoid(fake.double()).mean(),
        ((real > 0).sum() + (fake < 0).sum()).double() / (64 + 48),
    ])
    assert stats.shape == (3,) and not stats.requires_grad
    torch.testing.assert_close(stats.double().cpu(), expected.cpu(), rtol=1e-6, atol=1e-7)
    assert not F.discriminator_stats(real.requires_grad_(), fake).requires_grad


def test_large_batches_are_deterministic_across_thread_counts():
    real, fake = logits((1_000_003,), seed=17), logits((700_001,), seed=18)
    code = (
        "import sys, torch, fusedgan; torch.set_num_threads(int(sys.argv[1]));"
        "g = torch.Generator().manual_seed(0); r = torch.randn(1_000_003, generator=g) * 3; f = torch.randn(700_001, generator=g) * 3;"
        "print(fusedgan.F.discriminator_cost(r, f, real_label=0.9).item().hex(), fusedgan.F.generator_cost(f).item().hex(),"
        "fusedgan.F.discriminator_stats(r, f).tolist())"
    )
    outputs = {subprocess.run([sys.executable, "-c", code, str(n)], capture_output=True, text=True, check=True).stdout for n in (1, 2, 3)}
    assert len(outputs) == 1
    assert_close(F.discriminator_cost(real, fake), reference_discriminator_cost(real, fake), torch.float32)


# ---- bad input

def test_unknown_generator_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="kind must be 'minimax', 'non_saturating' or 'maximum_likelihood', got 'wasserstein'"):
        F.generator_cost(logits((3,)), kind="wasserstein")
    with pytest.raises(ValueError, match="kind must be one of"):
        fnn.GeneratorCost(kind="wasserstein")


@pytest.mark.parametrize("name", ["real_label", "fake_label"])
def test_labels_outside_the_unit_interval_are_named(name):
    with pytest.raises(ValueError, match=f"{name} must lie in \\[0, 1\\], got 1.5"):
        F.discriminator_cost(logits((3,)), logits((3,)), **{name: 1.5})
    with pytest.raises(ValueError, match=name):
        fnn.DiscriminatorCost(**{name: -0.1})


@pytest.mark.parametrize("name", ["real_logits", "fake_logits"])
def test_integer_logits_are_named(name):
    args = {"real_logits": logits((3,)), "fake_logits": logits((3,))}
    args[name] = torch.ones(3, dtype=torch.int64)
    with pytest.raises(RuntimeError, match=f"expected {name} to be a floating point tensor"):
        F.discriminator_cost(args["real_logits"], args["fake_logits"])
    with pytest.raises(RuntimeError, match=f"expected {name} to be a floating point tensor"):
        F.discriminator_stats(args["real_logits"], args["fake_logits"])
    with pytest.raises(RuntimeError, match="expected fake_logits to be a floating point tensor"):
        F.generator_cost(torch.ones(3, dtype=torch.int32))


def test_batches_on_different_devices_are_named():
    with pytest.raises(RuntimeError, match="expected fake_logits on cpu like input, got meta"):
        F.discriminator_cost(logits((3,)), torch.empty(3, device="meta"))


@pytest.mark.parametrize("name", ["real_logits", "fake_logits"])
def test_empty_batches_are_named(name):
    args = {"real_logits": logits((3,)), "fake_logits": logits((3,))}
    args[name] = torch.empty(0, 4)
    with pytest.raises(ValueError, match=f"{name} is empty"):
        F.discriminator_cost(args["real_logits"], args["fake_logits"])
    with pytest.raises(ValueError, match="fake_logits is empty"):
        F.generator_cost(torch.empty(0))


def test_and_grad_ops_are_first_order_only():
    x = logits((3,)).requires_grad_()
    with pytest.raises(RuntimeError, match="_discriminator_cost_and_grad is not differentiable"):
        torch.ops.fusedgan._discriminator_cost_and_grad(x, x, 1.0, 0.0)
    with pytest.raises(RuntimeError, match="_generator_cost_and_grad is not differentiable"):
        torch.ops.fusedgan._generator_cost_and_grad(x, "minimax")


# ---- registration: opcheck, torch.compile, modules

def opcheck_samples():
    ops = torch.ops.fusedgan
    real, fake = logits((4, 3), seed=19), logits((5,), seed=20)
    yield ops.discriminator_cost.default, (real.clone().requires_grad_(), fake.clone().requires_grad_(), 0.9, 0.0)
    yield ops.discriminator_cost.default, (real, fake.clone().requires_grad_(), 1.0, 0.0)
    yield ops._discriminator_cost_and_grad.default, (real, fake, 1.0, 0.1)
    yield ops.discriminator_stats.default, (real, fake)
    for kind in KINDS:
        yield ops.generator_cost.default, (fake.clone().requires_grad_(), kind)
        yield ops._generator_cost_and_grad.default, (fake, kind)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "discriminator" in name or "generator" in name)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph_of_both_costs(dynamic, backend):
    def step(real, fake):
        return F.discriminator_cost(real, fake, real_label=0.9) + F.generator_cost(fake, kind="non_saturating")

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic, backend=backend)
    for n in (8, 12):
        real = logits((n,), seed=n).requires_grad_()
        fake = logits((n + 3,), seed=n + 1).requires_grad_()
        expected = step(real, fake)
        expected_grads = torch.autograd.grad(expected, (real, fake))
        actual = compiled(real, fake)
        torch.testing.assert_close(actual, expected)
        for a, e in zip(torch.autograd.grad(actual, (real, fake)), expected_grads):
            torch.testing.assert_close(a, e)


def test_modules():
    real, fake = logits((8,), seed=21), logits((9,), seed=22)
    d_cost = fnn.DiscriminatorCost(real_label=0.9)
    assert torch.equal(d_cost(real, fake), F.discriminator_cost(real, fake, real_label=0.9))
    assert "real_label=0.9" in repr(d_cost)
    g_cost = fnn.GeneratorCost(kind="maximum_likelihood")
    assert torch.equal(g_cost(fake), F.generator_cost(fake, kind="maximum_likelihood"))
    assert fnn.GeneratorCost().kind == "non_saturating"
    assert fusedgan.nn.GeneratorCost is fnn.GeneratorCost
