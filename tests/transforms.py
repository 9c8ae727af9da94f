"""The transform matrix, for any op: its results under torch.func's transforms and their
nesting, compared with the same transforms of a torch reference composition, in float64 and
float32, with tangents, cotangents and output weights that are not 1. A test module gets these
tests for its cases from transform_tests(cases), as it gets the opcheck tests from
opcheck_tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap


def random(shape, seed, low=None, high=None, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    if low is not None:
        return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


@dataclass
class Case:
    ours: Callable
    theirs: Callable
    inputs: Callable[[int], tuple]  # seed -> float64 inputs, all differentiated


def tolerance(dtype):
    return dict(rtol=1e-9, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)


def assert_trees_close(actual, expected, dtype):
    actual_leaves, expected_leaves = torch.utils._pytree.tree_leaves(actual), torch.utils._pytree.tree_leaves(expected)
    assert len(actual_leaves) == len(expected_leaves)
    for a, e in zip(actual_leaves, expected_leaves):
        assert a.shape == e.shape
        torch.testing.assert_close(a.double(), e.double(), **tolerance(dtype))


def scalar(fn, out_shape, seed=7):
    """fn's output weighted by fixed random numbers and summed: a scalar whose gradient
    (the cotangent of fn) is not 1."""
    weights = random(out_shape, seed, 0.5, 1.5)
    return lambda *args: (fn(*args) * weights.to(fn(*args).dtype)).sum()


def run(transform, fn, inputs, dtype):
    """The transform of fn at inputs (cast to dtype), with its own random tangents and cotangents."""
    inputs = tuple(t.to(dtype) for t in inputs)
    argnums = tuple(range(len(inputs)))
    out_shape = fn(*inputs).shape
    tangents = tuple(random(t.shape, 40 + i).to(dtype) for i, t in enumerate(inputs))
    if transform == "jvp":
        return jvp(fn, inputs, tangents)
    if transform == "jacfwd":
        return jacfwd(fn, argnums=argnums)(*inputs)
    if transform == "grad":
        return grad(scalar(fn, out_shape), argnums=argnums)(*inputs)
    if transform == "vjp":
        value, pullback = vjp(fn, *inputs)
        return value, pullback(random(out_shape, 50).to(dtype))
    if transform == "jacrev":
        return jacrev(fn, argnums=argnums)(*inputs)
    if transform == "hessian":
        return hessian(scalar(fn, out_shape), argnums=0)(*inputs)
    if transform == "grad_grad":  # d/dx of sum(d/dx)
        inner = grad(scalar(fn, out_shape), argnums=0)
        return grad(lambda *a: (inner(*a) * random(inputs[0].shape, 51).to(dtype)).sum(), argnums=argnums)(*inputs)
    raise AssertionError(transform)


TRANSFORMS = ["jvp", "jacfwd", "grad", "vjp", "jacrev", "hessian", "grad_grad"]


def batch_of(case: Case, in_dims):
    """Three samples of the case's inputs stacked along each input's vmapped dim (None: one
    sample, shared)."""
    samples = [case.inputs(seed) for seed in (1, 2, 3)]
    return tuple(torch.stack([s[i] for s in samples], d) if d is not None else samples[0][i]
                 for i, d in enumerate(in_dims))


def vmap_variants(case: Case):
    """in_dims per variant: all inputs at 0; the first at its last dim, the others shared; the
    first shared and the others batched (a batch of parameters for shared data)."""
    count = len(case.inputs(1))
    variants = {"all_at_0": (0,) * count, "first_at_last": (-1,) + (None,) * (count - 1)}
    if count > 1:
        variants["others_batched"] = (None,) + (0,) * (count - 1)
    return variants


def transform_tests(cases: dict[str, Case]):
    """The two tests of the matrix for these cases: every transform of TRANSFORMS, and vmap
    with per-sample gradients (vmap(grad)) over the in_dims of vmap_variants."""

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("transform", TRANSFORMS)
    @pytest.mark.parametrize("case", list(cases))
    def test_transform_matches_the_reference(case, transform, dtype):
        c = cases[case]
        inputs = c.inputs(1)
        assert_trees_close(run(transform, c.ours, inputs, dtype), run(transform, c.theirs, inputs, dtype), dtype)

    vmap_cases = [(case, name, dims) for case in cases for name, dims in vmap_variants(cases[case]).items()]

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("case, variant, in_dims", vmap_cases, ids=[f"{c}-{v}" for c, v, _ in vmap_cases])
    def test_vmap_and_per_sample_gradients_match_the_reference(case, variant, in_dims, dtype):
        c = cases[case]
        inputs = tuple(t.to(dtype) for t in batch_of(c, in_dims))
        argnums = tuple(range(len(inputs)))
        assert_trees_close(vmap(c.ours, in_dims=in_dims)(*inputs), vmap(c.theirs, in_dims=in_dims)(*inputs), dtype)
        out_shape = c.ours(*c.inputs(1)).shape
        per_sample = lambda fn: vmap(grad(scalar(fn, out_shape), argnums=argnums), in_dims=in_dims)(*inputs)  # noqa: E731
        assert_trees_close(per_sample(c.ours), per_sample(c.theirs), dtype)

    return test_transform_matches_the_reference, test_vmap_and_per_sample_gradients_match_the_reference
