"""Every op under torch.func's transforms (the matrix of tests/transforms.py), forward-mode AD,
vmap without PyTorch's per-sample fallback, autocast and torch.export, against torch's own
functions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from references import REFERENCES
from torch.func import grad, vmap
from transforms import Case, batch_of, random, scalar, transform_tests

from fusedgan import functional as F
from fusedgan.families import FAMILIES

D = torch.distributions


# weights exact in bfloat16, so that the autocast tests compare with the same values in float64
W, PW = (random(shape, seed, 0.5, 1.5).bfloat16().double() for shape, seed in (((4, 1), 90), ((5,), 91)))
LABELS = torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(92))


def bce_inputs(seed, probabilities=False):
    x = random((4, 5), seed, 0.05, 0.95) if probabilities else random((4, 5), seed)
    return x, random((4, 5), seed + 1, 0.0, 1.0)


CASES: dict[str, Case] = {}
for reduction in ("none", "mean", "sum"):
    CASES[f"bce_with_logits[{reduction}]"] = Case(
        lambda x, y, r=reduction: F.binary_cross_entropy_with_logits(x, y, W.to(x.dtype), reduction=r,
                                                                     pos_weight=PW.to(x.dtype)),
        lambda x, y, r=reduction: TF.binary_cross_entropy_with_logits(x, y, W.to(x.dtype), reduction=r,
                                                                      pos_weight=PW.to(x.dtype)),
        bce_inputs)
    CASES[f"bce[{reduction}]"] = Case(
        lambda p, y, r=reduction: F.binary_cross_entropy(p, y, W.to(p.dtype), reduction=r),
        lambda p, y, r=reduction: TF.binary_cross_entropy(p, y, W.to(p.dtype), reduction=r),
        lambda seed: bce_inputs(seed, probabilities=True))
    CASES[f"binary_entropy_with_logits[{reduction}]"] = Case(
        lambda x, r=reduction: F.binary_entropy_with_logits(x, reduction=r, base=2.0),
        lambda x, r=reduction: {"none": lambda h: h, "mean": torch.mean, "sum": torch.sum}[r](
            D.Bernoulli(logits=x).entropy() / math.log(2.0)),
        lambda seed: (random((4, 5), seed),))
CASES["discriminator_cost"] = Case(
    lambda r, f: F.discriminator_cost(r, f, real_label=0.9),
    lambda r, f: 0.5 * (TF.binary_cross_entropy_with_logits(r, torch.full_like(r, 0.9))
                        + TF.binary_cross_entropy_with_logits(f, torch.zeros_like(f))),
    lambda seed: (random((6,), seed), random((3, 2), seed + 1)))
for kind, reference in {  # as users write them: -1/2 of J(D)'s fake half, -1/2 E log D, -1/2 E exp(logit)
    "minimax": lambda x: -0.5 * TF.binary_cross_entropy_with_logits(x, torch.zeros_like(x)),
    "non_saturating": lambda x: 0.5 * TF.binary_cross_entropy_with_logits(x, torch.ones_like(x)),
    "maximum_likelihood": lambda x: -0.5 * torch.exp(x).mean(),
}.items():
    CASES[f"generator_cost[{kind}]"] = Case(lambda x, k=kind: F.generator_cost(x, kind=k), reference,
                                            lambda seed: (random((7,), seed, scale=1.0),))
CASES["entropy"] = Case(lambda q: F.entropy(q, 0), lambda q: torch.special.entr(q).sum(0),
                        lambda seed: (random((4, 5), seed, 0.05, 0.95),))
CASES["entropy_with_logits"] = Case(lambda z: F.entropy_with_logits(z, -1), lambda z: D.Categorical(logits=z).entropy(),
                                    lambda seed: (random((4, 5), seed),))
for family, reference in REFERENCES.items():
    CASES[f"{family}_log_likelihood"] = Case(
        lambda x, *p, f=family: getattr(F, FAMILIES[f].function_name)(x, *p),
        lambda x, *p, r=reference: r.distribution(*p).log_prob(x).sum(-1),
        lambda seed, r=reference: (r.data((3, 6), seed), *[make((3, 1)) + 0.01 * seed for make in r.params]))
CASES["normal_mixture_log_likelihood"] = Case(
    F.normal_mixture_log_likelihood,
    lambda x, logits, loc, scale: D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(loc, scale), 1))
    .log_prob(x.movedim(-2, 0)).sum(0),
    lambda seed: (random((2, 6, 2), seed), random((2, 3), seed + 1), random((2, 3, 2), seed + 2),
                  random((2, 3, 2), seed + 3, 0.5, 1.5)))
CASES["multivariate_normal_log_likelihood"] = Case(
    F.multivariate_normal_log_likelihood,
    lambda x, loc, scale_tril: D.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)
    .log_prob(x.movedim(-2, 0)).sum(0),
    lambda seed: (random((2, 6, 3), seed), random((2, 3), seed + 1),
                  random((2, 3, 3), seed + 2, scale=0.3).tril(-1) + torch.diag_embed(random((2, 3), seed + 3, 0.5, 1.5))))
CASES["categorical_log_likelihood"] = Case(
    lambda logits: F.categorical_log_likelihood(LABELS, logits),
    lambda logits: D.Categorical(logits=logits).log_prob(LABELS).sum(-1),
    lambda seed: (random((4, 1, 3), seed),))



test_transform_matches_the_reference, test_vmap_and_per_sample_gradients_match_the_reference = transform_tests(CASES)


def test_every_op_has_a_batching_rule():
    ops = [name for name in torch._C._dispatch_get_all_op_names() if name.startswith("fusedgan::")]
    missing = [name for name in ops if not any(torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
                                               for key in ("FuncTorchBatched", "FuncTorchBatchedDecomposition"))]
    assert ops and not missing, missing


def test_no_op_falls_back_to_a_per_sample_loop(capfd):
    """vmap and vmap(grad) of every op run its batching rules: PyTorch never warns (on stderr,
    from C++) that it fell back to a loop over the samples."""
    torch._C._functorch._set_vmap_fallback_warning_enabled(True)
    for case in CASES:
        c = CASES[case]
        inputs = batch_of(c, (0,) * len(c.inputs(1)))
        vmap(c.ours)(*inputs)
        vmap(grad(scalar(c.ours, c.ours(*c.inputs(1)).shape)))(*inputs)
    vmap(F.discriminator_stats)(random((3, 8), 1), random((3, 5), 2))
    captured = capfd.readouterr()
    assert "performance drop" not in captured.err + captured.out


def test_per_sample_gradients_of_the_discriminator_cost_for_a_network():
    """vmap(grad(J(D))) over a discriminator's parameters (functional_call), as DP-SGD or
    per-sample clipping needs, equals the loop over samples of torch's two-BCE composition."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    params = {name: p.detach() for name, p in net.named_parameters()}
    real, fake = random((5, 4, 3), 60), random((5, 4, 3), 61)

    def cost(params, real, fake, fn):
        logits = lambda x: torch.func.functional_call(net, params, (x,)).squeeze(-1)  # noqa: E731
        return fn(logits(real), logits(fake))

    ours = vmap(grad(cost), in_dims=(None, 0, 0, None))(params, real, fake, CASES["discriminator_cost"].ours)
    for i in range(5):
        expected = grad(cost)(params, real[i], fake[i], CASES["discriminator_cost"].theirs)
        for name in params:
            torch.testing.assert_close(ours[name][i], expected[name], rtol=1e-10, atol=1e-12)


def test_forward_mode_ad_gives_tangents_not_zeros():
    """torch.autograd.forward_ad: the tangent is the directional derivative (not None, not 0)."""
    import torch.autograd.forward_ad as fwAD

    x, y = bce_inputs(3)
    t = random(x.shape, 4)
    with fwAD.dual_level():
        ours = fwAD.unpack_dual(F.binary_cross_entropy_with_logits(fwAD.make_dual(x, t), y)).tangent
        theirs = fwAD.unpack_dual(TF.binary_cross_entropy_with_logits(fwAD.make_dual(x, t), y)).tangent
    assert ours is not None and ours.abs() > 0
    torch.testing.assert_close(ours, theirs)


def test_weights_with_tangents_are_refused_like_weights_requiring_grad():
    import torch.autograd.forward_ad as fwAD

    x, y = bce_inputs(3)
    with fwAD.dual_level(), pytest.raises(RuntimeError, match="not differentiable with respect to weight"):
        F.binary_cross_entropy_with_logits(x, y, fwAD.make_dual(W, torch.ones_like(W)))


# ---- autocast: the dtype torch gives the op's counterpart, and float32's precision there

AUTOCAST_CASES = ["bce_with_logits[mean]", "bce[none]", "binary_entropy_with_logits[mean]", "discriminator_cost",
                  "generator_cost[non_saturating]", "entropy", "entropy_with_logits", "normal_log_likelihood",
                  "normal_mixture_log_likelihood"]


@pytest.mark.parametrize("case", AUTOCAST_CASES)
@pytest.mark.parametrize("input_dtype", [torch.bfloat16, torch.float32])
def test_autocast_on_cpu_gives_the_counterparts_dtype(case, input_dtype):
    c = CASES[case]
    inputs = tuple(t.to(input_dtype) for t in c.inputs(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = c.ours(*inputs), c.theirs(*inputs)
    assert ours.dtype == theirs.dtype
    exact = c.theirs(*(t.double() for t in inputs))
    # ours computes in float inside: as close to float64 as the rounding of its output allows
    rounding = 2e-5 if ours.dtype == torch.float32 else 1e-2
    torch.testing.assert_close(ours.double(), exact, rtol=rounding, atol=rounding)


def test_torch_export():
    class Losses(torch.nn.Module):
        def forward(self, x, y, real, fake, z, loc, scale):
            return (F.binary_cross_entropy_with_logits(x, y) + F.discriminator_cost(real, fake)
                    + F.generator_cost(fake) + F.entropy_with_logits(z).sum()
                    + F.binary_entropy_with_logits(x, reduction="mean") + F.normal_log_likelihood(x, loc, scale).sum())

    args = (*bce_inputs(5), random((6,), 6), random((3,), 7), random((2, 7), 8), random((4, 1), 9),
            random((4, 1), 10, 0.5, 1.5))
    exported = torch.export.export(Losses(), args)
    torch.testing.assert_close(exported.module()(*args), Losses()(*args))
