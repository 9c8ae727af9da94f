"""The numpy front-end against scipy: numpy in, numpy out, the same kernels as the ops."""

import numpy as np
import pytest
import scipy.stats
import torch

from references import REFERENCES

import fusedgan.numpy as fnp
from fusedgan import functional as F
from fusedgan.families import FAMILIES

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_log_likelihoods_match_scipy(family, dtype):
    reference = REFERENCES[family]
    x = reference.scipy_data(reference.data((5, 40), 3)).numpy()
    params = [make((5, 1)).numpy() for make in reference.params]
    expected = reference.scipy_logpdf(x, *params).sum(-1)
    actual = getattr(fnp, FAMILIES[family].function_name)(x.astype(dtype), *[p.astype(dtype) for p in params])
    assert isinstance(actual, np.ndarray) and actual.dtype == dtype and actual.shape == (5,)
    np.testing.assert_allclose(actual, expected, rtol=1e-12 if dtype == np.float64 else 2e-5)


def test_float16_and_integer_arrays_compute_in_float64():
    x = RNG.normal(size=(3, 20)).astype(np.float16)
    actual = fnp.normal_log_likelihood(x, np.float16(0.5), np.float16(2.0))
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, scipy.stats.norm.logpdf(x.astype(np.float64), 0.5, 2.0).sum(-1), rtol=1e-12)
    h = fnp.entropy(np.array([[0.25, 0.75]], dtype=np.float16))
    assert h.dtype == np.float64 and h[0] == pytest.approx(scipy.stats.entropy([0.25, 0.75]), rel=1e-12)


def test_reversed_strided_and_read_only_arrays():
    x = RNG.normal(size=(6, 40))
    views = {
        "reversed": x[::-1, ::-1],
        "strided": x[::2, 1::3],
        "transposed": x.T,
        "broadcast (read-only)": np.broadcast_to(x[:1], (6, 40)),
        "structured field": np.rec.fromarrays([x, np.zeros((6, 40), np.int32)])["f0"],
    }
    for name, view in views.items():
        expected = scipy.stats.norm.logpdf(view, 0.3, 1.7).sum(-1)
        np.testing.assert_allclose(fnp.normal_log_likelihood(view, 0.3, 1.7), expected, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(fnp.entropy_with_logits(view), scipy.stats.entropy(scipy.special.softmax(view, -1), axis=-1),
                                   rtol=1e-12, err_msg=name)
    assert fnp.binary_cross_entropy_with_logits(x[::-1], x[::-1] > 0, reduction="sum") == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(x), torch.from_numpy((x > 0) * 1.0),
                                                             reduction="sum").item(), rel=1e-12)


def test_axes_tuples_and_all():
    x = RNG.normal(size=(4, 3, 6))
    np.testing.assert_allclose(fnp.normal_log_likelihood(x, 0.0, 1.0, axis=(0, 2)), scipy.stats.norm.logpdf(x).sum((0, 2)))
    np.testing.assert_allclose(fnp.normal_log_likelihood(x, 0.0, 1.0, axis=None), scipy.stats.norm.logpdf(x).sum())
    np.testing.assert_allclose(fnp.normal_log_likelihood(x.transpose(2, 0, 1), 0.0, 1.0, axis=0), scipy.stats.norm.logpdf(x).sum(2))


def test_same_numbers_as_the_torch_ops():
    x, loc, scale = RNG.normal(size=(3, 50)), RNG.normal(size=(3, 1)), RNG.uniform(1, 2, size=(3, 1))
    via_torch = F.normal_log_likelihood(*(torch.from_numpy(a) for a in (x, loc, scale))).numpy()
    np.testing.assert_array_equal(fnp.normal_log_likelihood(x, loc, scale), via_torch)


def test_bernoulli_and_integer_inputs():
    x = RNG.integers(0, 2, size=(4, 30))
    logits = RNG.normal(size=(4, 1))
    expected = scipy.stats.bernoulli.logpmf(x, scipy.special.expit(logits)).sum(-1)
    np.testing.assert_allclose(fnp.bernoulli_log_likelihood(x, logits), expected, rtol=1e-12)


@pytest.mark.parametrize("base", [None, 2])
def test_entropy_matches_scipy(base):
    q = RNG.dirichlet(np.ones(6), size=(3, 4))
    np.testing.assert_allclose(fnp.entropy(q, base=base), scipy.stats.entropy(q, base=base, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(fnp.entropy(q, axis=0), scipy.special.entr(q).sum(0), rtol=1e-12)  # scipy would renormalise
    assert fnp.entropy([[0.5, 0.5], [1.0, 0.0]], base=2).tolist() == [1.0, 0.0]
    assert fnp.entropy(np.empty((3, 0))).tolist() == [0.0, 0.0, 0.0]
    z = RNG.normal(size=(3, 7))
    expected = scipy.stats.entropy(scipy.special.softmax(z, axis=-1), axis=-1)
    np.testing.assert_allclose(fnp.entropy_with_logits(z), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_matches_torch(reduction):
    x, y = RNG.normal(size=(4, 9)) * 5, RNG.uniform(size=(4, 9))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(x), torch.from_numpy(y), reduction=reduction)
    np.testing.assert_allclose(fnp.binary_cross_entropy_with_logits(x, y, reduction=reduction), expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, arrays, options", [
    ("normal_log_likelihood", (np.zeros((2, 3)), np.zeros(4), np.ones(())), {}),
    ("normal_log_likelihood", (np.zeros((2, 3)), np.zeros(()), np.zeros(())), {}),
    ("normal_log_likelihood", (np.zeros((2, 3)), np.zeros(()), np.ones(())), {"axis": (1, -1)}),
    ("student_t_log_likelihood", (np.zeros(3), np.array(-1.0), np.zeros(()), np.ones(())), {}),
    ("entropy", (np.array([0.5, -0.5]),), {}),
    ("entropy_with_logits", (np.zeros((2, 3)),), {"axis": 2}),
    ("normal_mixture_log_likelihood", (np.zeros((10, 2)), np.zeros(3), np.zeros((3, 1)), np.ones((3, 2))), {}),
    ("categorical_log_likelihood", (np.array([0, 5]), np.zeros(5)), {}),
    ("binary_cross_entropy_with_logits", (np.zeros(3), np.zeros(4)), {}),
], ids=["broadcast", "scale", "repeated-axis", "df", "probs", "axis", "mixture", "labels", "shape"])
def test_errors_are_the_torch_ops_own(name, arrays, options):
    """The numpy front-end runs the torch ops: a bad argument gets the same error as the
    functional's on tensors of the same arrays (with dim= for axis=)."""
    with pytest.raises(Exception) as from_numpy:
        getattr(fnp, name)(*arrays, **options)
    torch_options = {("dim" if key == "axis" else key): value for key, value in options.items()}
    with pytest.raises(type(from_numpy.value)) as from_torch:
        getattr(F, name)(*(torch.from_numpy(a) for a in arrays), **torch_options)
    assert str(from_numpy.value) == str(from_torch.value)


def test_bad_input():
    with pytest.raises(ValueError, match="scale must be positive"):
        fnp.normal_log_likelihood(np.zeros(3), 0.0, 0.0)
    with pytest.raises(ValueError, match="df must be positive"):
        fnp.student_t_log_likelihood(np.zeros(3), -1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        fnp.normal_log_likelihood(np.zeros((2, 3)), 0.0, 1.0, axis=2)
    with pytest.raises(ValueError, match=r"normal_log_likelihood: loc of shape \[4\] does not broadcast with the data's shape \[2, 3\]"):
        fnp.normal_log_likelihood(np.zeros((2, 3)), np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="probs must not be negative"):
        fnp.entropy([0.5, -0.5])
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        fnp.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2), reduction="max")
    with pytest.raises(TypeError, match="expected real arrays"):
        fnp.entropy(np.array(["a"]))


@pytest.mark.parametrize("logits_shape", [(4, 1, 5), (4, 30, 5), (5,)])
def test_categorical_matches_scipy_and_the_torch_op(logits_shape):
    labels = RNG.integers(0, 5, size=(4, 30))
    logits = RNG.normal(size=logits_shape) * 3
    probs = scipy.special.softmax(logits, axis=-1)
    expected = np.log(np.take_along_axis(np.broadcast_to(probs, (4, 30, 5)), labels[..., None], -1)[..., 0]).sum(-1)
    np.testing.assert_allclose(fnp.categorical_log_likelihood(labels, logits), expected, rtol=1e-12)
    via_torch = F.categorical_log_likelihood(torch.from_numpy(labels), torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(fnp.categorical_log_likelihood(labels, logits), via_torch, rtol=1e-13)
    np.testing.assert_allclose(fnp.categorical_log_likelihood(labels, logits, axis=None), expected.sum(), rtol=1e-12)


def test_empty_axes_sum_nothing():
    labels, logits = RNG.integers(0, 3, size=(2, 5)), RNG.normal(size=(2, 5, 3))
    per_point = np.log(np.take_along_axis(scipy.special.softmax(logits, -1), labels[..., None], -1)[..., 0])
    np.testing.assert_allclose(fnp.categorical_log_likelihood(labels, logits, axis=()), per_point, rtol=1e-12)
    x = RNG.normal(size=(2, 5))
    np.testing.assert_allclose(fnp.normal_log_likelihood(x, 0.0, 1.0, axis=()), scipy.stats.norm.logpdf(x), rtol=1e-12)


def test_categorical_bad_input():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        fnp.categorical_log_likelihood(np.array([0, 5]), np.zeros(5))
    with pytest.raises(TypeError, match="labels must be integers"):
        fnp.categorical_log_likelihood(np.array([0.5]), np.zeros(5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_mixture_matches_scipy_and_the_torch_op(dtype):
    x = RNG.normal(size=(3, 40, 2)) * 2
    logits, loc, scale = RNG.normal(size=(3, 4)), RNG.normal(size=(1, 4, 2)), RNG.uniform(0.5, 2, size=(3, 4, 2))
    weights = scipy.special.softmax(logits, -1)
    densities = np.stack([weights[:, k, None] * scipy.stats.norm.pdf(x, loc[:, None, k], scale[:, None, k]).prod(-1)
                          for k in range(4)], -1)
    expected = np.log(densities.sum(-1)).sum(-1)
    actual = fnp.normal_mixture_log_likelihood(x.astype(dtype), logits, loc.astype(dtype), scale)
    assert actual.dtype == dtype and actual.shape == (3,)
    np.testing.assert_allclose(actual, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)
    via_torch = F.normal_mixture_log_likelihood(*(torch.from_numpy(a) for a in (x, logits, loc, scale))).numpy()
    np.testing.assert_allclose(fnp.normal_mixture_log_likelihood(x, logits, loc, scale), via_torch, rtol=1e-14)


def test_normal_mixture_bad_input():
    x, logits, loc, scale = np.zeros((10, 2)), np.zeros(3), np.zeros((3, 2)), np.ones((3, 2))
    with pytest.raises(ValueError, match="scale must be positive"):
        fnp.normal_mixture_log_likelihood(x, logits, loc, -scale)
    with pytest.raises(ValueError, match=r"loc and scale need D = 2 dimensions like x"):
        fnp.normal_mixture_log_likelihood(x, logits, loc[:, :1], scale)
    with pytest.raises(ValueError, match="expected x"):
        fnp.normal_mixture_log_likelihood(np.zeros(10), logits, loc, scale)
