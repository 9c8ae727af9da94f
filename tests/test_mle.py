"""Maximum-likelihood fits against scipy.stats' .fit."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from helpers import opcheck_tests
from references import REFERENCES

from fusedgan import functional as F
from fusedgan import mle
from fusedgan.families import FAMILIES


def sample(distribution, shape, seed=0, **kwargs):
    return torch.from_numpy(distribution.rvs(size=shape, random_state=np.random.default_rng(seed), **kwargs))


def assert_relative(actual, expected, rtol=1e-9):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=rtol)


def test_normal_is_scipys_fit_batched_over_data_sets():
    x = sample(scipy.stats.norm, (3, 4, 50), loc=2.0, scale=3.0)
    p = mle.fit("normal", x)
    assert p["loc"].shape == (3, 4)
    for i in range(3):
        for j in range(4):
            loc, scale = scipy.stats.norm.fit(x[i, j].numpy())
            assert_relative([p["loc"][i, j], p["scale"][i, j]], [loc, scale])


def test_fit_along_another_dim():
    x = sample(scipy.stats.norm, (40, 3), seed=1)
    p = mle.fit("normal", x, dim=0)
    torch.testing.assert_close(p["loc"], x.mean(0))
    assert F.normal_log_likelihood(x, p["loc"], p["scale"], dim=0).shape == (3,)


def test_exponential_poisson_bernoulli_and_laplace_closed_forms():
    x = sample(scipy.stats.expon, (5, 30), seed=2, scale=2.0)
    _, scale = scipy.stats.expon.fit(x[0].numpy(), floc=0)
    assert_relative(1 / mle.fit("exponential", x)["rate"][0], scale)
    counts = sample(scipy.stats.poisson, (5, 30), seed=3, mu=4.0).double()
    assert_relative(mle.fit("poisson", counts)["rate"], counts.mean(-1))
    coins = sample(scipy.stats.bernoulli, (5, 31), seed=4, p=0.3).double()
    assert_relative(torch.sigmoid(mle.fit("bernoulli", coins)["logits"]), coins.mean(-1))
    for n in (30, 31):  # even and odd: the median of an even set is the middle two's mean
        x = sample(scipy.stats.laplace, (4, n), seed=5, loc=1.0, scale=0.5)
        p = mle.fit("laplace", x)
        for i in range(4):
            assert_relative([p["loc"][i], p["scale"][i]], scipy.stats.laplace.fit(x[i].numpy()))


def test_categorical_log_frequencies():
    labels = torch.tensor([[0.0, 1, 1, 2], [2, 2, 2, 2]])
    logits = mle.fit("categorical", labels, num_classes=4)["logits"]
    torch.testing.assert_close(logits.exp(), torch.tensor([[0.25, 0.5, 0.25, 0], [0, 0, 1, 0]]))
    assert F.categorical_log_likelihood(labels.long(), logits.unsqueeze(-2)).isfinite().all()
    with pytest.raises(ValueError, match="the categorical family needs num_classes="):
        mle.fit("categorical", labels)
    result = mle.fit("categorical", torch.tensor([[0.0, 1, 1, 0], [0, 1, 2, 1], [0, 1.5, 1, 0]]), num_classes=2,
                     return_result=True)
    assert result.reason.tolist() == ["", "outside the support", "outside the support"]
    torch.testing.assert_close(result.params["logits"][0].exp(), torch.tensor([0.5, 0.5]))
    assert result.params["logits"][1:].isnan().all()


def test_normal_mixture_em_finds_separated_clusters():
    g = torch.Generator().manual_seed(9)
    centers = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]], dtype=torch.float64)
    labels = torch.randint(0, 3, (4, 300), generator=g)
    x = centers[labels] + 0.5 * torch.randn(4, 300, 2, generator=g, dtype=torch.float64)
    p = mle.fit("normal_mixture", x, k=3, seed=1)
    assert p["loc"].shape == (4, 3, 2) and p["logits"].shape == (4, 3)
    for s in range(4):
        found = p["loc"][s][p["loc"][s][:, 0].argsort()]
        torch.testing.assert_close(found, centers[centers[:, 0].argsort()], atol=0.2, rtol=0)
    fitted = F.normal_mixture_log_likelihood(x, p["logits"], p["loc"], p["scale"])
    truth = F.normal_mixture_log_likelihood(x, torch.zeros(3, dtype=torch.float64), centers, torch.full((3, 2), 0.5, dtype=torch.float64))
    assert (fitted >= truth - 1e-6 * truth.abs()).all()
    with pytest.raises(ValueError, match="needs k="):
        mle.fit("normal_mixture", x)


def correlated_points(batch, n, d, seed):
    """Points of a multivariate normal with a full covariance (float64, (*batch, n, d))."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(*batch, n, d, generator=g, dtype=torch.float64) @ mixing.mT + torch.arange(d, dtype=torch.float64)


@pytest.mark.parametrize("batch, n, d", [((), 50, 1), ((3,), 40, 2), ((2, 2), 100, 5), ((4,), 17, 16)])
def test_multivariate_normal_is_the_closed_form_and_at_least_scipys_fit(batch, n, d):
    x = correlated_points(batch, n, d, seed=d)
    p = mle.fit("multivariate_normal", x)
    assert p["loc"].shape == (*batch, d) and p["scale_tril"].shape == (*batch, d, d)
    ours = F.multivariate_normal_log_likelihood(x, p["loc"], p["scale_tril"])
    for index in np.ndindex(*batch):
        points = x[index].numpy()
        mean = points.mean(0)
        covariance = (points - mean).T @ (points - mean) / n  # biased: the maximum-likelihood covariance
        assert_relative(p["loc"][index], mean)
        assert_relative(p["scale_tril"][index] @ p["scale_tril"][index].mT, covariance)
        assert_relative(p["scale_tril"][index], np.linalg.cholesky(covariance))
        theirs = scipy.stats.multivariate_normal.logpdf(points, *scipy.stats.multivariate_normal.fit(points)).sum()
        assert ours[index].item() >= theirs - 1e-9 * abs(theirs)


def test_multivariate_normal_points_along_another_dim():
    x = correlated_points((3,), 30, 2, seed=4)
    moved = mle.fit("multivariate_normal", x.movedim(-2, 0), dim=0)
    for name, value in mle.fit("multivariate_normal", x).items():
        torch.testing.assert_close(moved[name], value, rtol=1e-12, atol=1e-12)


def test_multivariate_normal_sets_without_a_positive_definite_covariance_are_flagged():
    x = correlated_points((3,), 20, 3, seed=5)
    x[1, :, 2] = 1.5  # the second set lies in a plane
    result = mle.fit("multivariate_normal", x, return_result=True)
    assert result.reason.tolist() == ["", "no finite maximum", ""]
    assert result.params["scale_tril"][1].isnan().all() and result.params["scale_tril"][[0, 2]].isfinite().all()
    assert mle.fit("multivariate_normal", x[:, :1], return_result=True).reason.tolist() == ["too few points"] * 3
    with pytest.raises(ValueError, match=r"at least 2 dimensions \(the data points along dim, the coordinates last\)"):
        mle.fit("multivariate_normal", torch.rand(5, dtype=torch.float64), dim=0)


def test_closed_forms_maximise_the_fused_log_likelihood():
    x = sample(scipy.stats.norm, (6, 40), seed=6)
    p = mle.fit("normal", x)
    best = F.normal_log_likelihood(x, p["loc"].unsqueeze(-1), p["scale"].unsqueeze(-1))
    for nudge in (0.99, 1.01):
        assert (F.normal_log_likelihood(x, p["loc"].unsqueeze(-1), nudge * p["scale"].unsqueeze(-1)) < best).all()


def test_student_t_reaches_at_least_scipys_log_likelihood():
    x = sample(scipy.stats.t, (8, 200), seed=7, df=4.0, loc=1.0, scale=2.0)
    p = mle.fit("student_t", x)
    ours = F.student_t_log_likelihood(x, *(p[k].unsqueeze(-1) for k in ("df", "loc", "scale")))
    for i in range(8):
        theirs = scipy.stats.t.logpdf(x[i].numpy(), *scipy.stats.t.fit(x[i].numpy())).sum()
        assert ours[i].item() >= theirs - 1e-9 * abs(theirs)


def test_student_t_of_normal_data_goes_to_the_normal_limit():
    x = sample(scipy.stats.norm, (2, 500), seed=8)
    p = mle.fit("student_t", x)
    assert torch.isfinite(p["df"]).all() and (p["df"] > 20).all()


@pytest.mark.parametrize("x,match", [
    (torch.tensor(1.0), "at least 1 dimension"),
    (torch.tensor([1, 2]), "floating point"),
])
def test_bad_calls_are_refused(x, match):
    with pytest.raises(ValueError, match=match):
        mle.fit("normal", x)


def test_unknown_families_missing_options_and_bad_dims_are_refused():
    with pytest.raises(ValueError, match="unknown family 'cauchy'; known: normal"):
        mle.fit("cauchy", torch.rand(5))
    with pytest.raises(ValueError, match="dim is out of range"):
        mle.fit("normal", torch.rand(5), dim=1)
    with pytest.raises(ValueError, match="the binomial family needs total_count="):
        mle.fit("binomial", torch.ones(5))
    with pytest.raises(ValueError, match=r"at least 2 dimensions \(the data points along dim, the coordinates last\)"):
        mle.fit("normal_mixture", torch.rand(5), k=2)


def test_sets_that_cannot_be_fitted_are_flagged_and_the_others_fitted():
    """Each bad set gets NaN estimates and its reason; every other set gets the estimate it
    gets alone."""
    x = sample(scipy.stats.norm, (6, 40), seed=11)
    x[1, 3] = float("nan")
    x[2, 5] = float("inf")
    x[3] = 2.5  # constant: no spread
    result = mle.fit("normal", x, return_result=True)
    assert result.reason.tolist() == ["", "non-finite data", "non-finite data", "no spread", "", ""]
    assert result.fitted.tolist() == [True, False, False, False, True, True]
    for i in (0, 4, 5):
        alone = mle.fit("normal", x[i])
        assert torch.equal(result.params["loc"][i], alone["loc"]) and torch.equal(result.params["scale"][i], alone["scale"])
    for value in (result.params["loc"], result.params["scale"], result.log_likelihood, result.stderr["loc"], result.aic):
        assert value[1:4].isnan().all() and value[[0, 4, 5]].isfinite().all()
    assert not result.converged[1:4].any() and result.converged[[0, 4, 5]].all()
    positive = torch.tensor([[1.0, 2.0, 3.0], [1.0, -1.0, 2.0], [0.0, 0.0, 0.0]])
    assert mle.fit("exponential", positive, return_result=True).reason.tolist() == ["", "outside the support", "all zero"]
    assert mle.fit("normal", torch.rand(3, 1), return_result=True).reason.tolist() == ["too few points"] * 3
    assert mle.fit("normal", torch.empty(2, 0))["loc"].isnan().all()
    overdispersed = torch.tensor([[0.0, 5, 1, 9, 0, 3], [1, 1, 2, 1, 1, 2]])  # the second: variance below the mean
    assert mle.fit("negative_binomial", overdispersed, return_result=True).reason.tolist() == ["", "no finite maximum"]


def fit_data(family: str) -> tuple[torch.Tensor, dict]:
    """float64 data for `family`'s fit (4 data sets) and the options it needs."""
    if family == "categorical":
        return torch.randint(0, 4, (4, 200), generator=torch.Generator().manual_seed(1)).double(), {"num_classes": 4}
    if family == "normal_mixture":
        g = torch.Generator().manual_seed(2)
        centers = torch.tensor([[-4.0, 0.0], [4.0, 1.0]], dtype=torch.float64)
        x = centers[torch.randint(0, 2, (4, 200), generator=g)] + torch.randn(4, 200, 2, generator=g, dtype=torch.float64)
        return x, {"k": 2, "seed": 0}
    if family == "negative_binomial":  # overdispersed, so that the maximum is finite
        return sample(scipy.stats.nbinom, (4, 300), seed=3, n=3.0, p=0.4).double(), {}
    if family == "multivariate_normal":
        return correlated_points((4,), 200, 3, seed=2), {}
    if family == "student_t":  # heavy tails, so that df stays finite (normal data sends it to the normal limit)
        return sample(scipy.stats.t, (4, 300), seed=3, df=4.0, loc=1.0, scale=2.0), {}
    return REFERENCES[family].data((4, 300), 3), REFERENCES[family].fit_options


@pytest.mark.parametrize("family", list(mle.FAMILIES))
def test_float32_data_fits_like_float64(family):
    x, options = fit_data(family)
    fitted32, fitted64 = mle.fit(family, x.float(), **options), mle.fit(family, x, **options)
    assert fitted32.keys() == fitted64.keys()
    for name, value in fitted32.items():
        assert value.dtype == torch.float32 and value.shape == fitted64[name].shape
        torch.testing.assert_close(value.double(), fitted64[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", [name for name, reference in REFERENCES.items() if reference.scipy_fit])
def test_fits_reach_at_least_scipys_log_likelihood(family):
    """Per data set, the fitted log-likelihood is at least that of scipy's fit (or of the
    reference's closed form where scipy has no fit)."""
    reference = REFERENCES[family]
    x, options = fit_data(family)
    fitted = mle.fit(family, x, **options)
    log_likelihood = getattr(F, FAMILIES[family].function_name)
    ours = log_likelihood(x, *(fitted[name].unsqueeze(-1) for name in FAMILIES[family].params))
    for i in range(x.shape[0]):
        theirs = [torch.tensor(float(p), dtype=torch.float64) for p in reference.scipy_fit(x[i].numpy())]
        best = log_likelihood(x[i], *theirs).item()
        assert ours[i].item() >= best - 1e-9 * abs(best)


# ---- the beta fit's fused sufficient statistics: per set, the sums of log x and log(1 - x)


def log_sums_reference(x):
    return torch.stack([x.log().sum(-1), torch.log1p(-x).sum(-1)], -1)


@pytest.mark.parametrize("shape", [(3, 101), (2, 3, 16), (5, 1), (1, 20_001)])
def test_log_sums_are_the_float64_sums(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    actual = torch.ops.fusedgan._log_sums(x)
    assert actual.shape == shape[:-1] + (2,) and actual.dtype == torch.float64
    torch.testing.assert_close(actual, log_sums_reference(x), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(torch.ops.fusedgan._log_sums(x.mT.contiguous().mT), actual, rtol=0, atol=0)  # strided


def test_log_sums_of_one_point_are_log_and_log1p_to_two_ulp():
    """A set of one point is the vector log and log1p themselves: from the smallest subnormal
    to the largest double, points near 1 (log1p(-x) of x near 1 and near 0), and the edges."""
    magnitudes = torch.logspace(-323, 308, 20_000, dtype=torch.float64)
    near_one = 1 - torch.logspace(-16, -1, 2_000, dtype=torch.float64)
    edges = torch.tensor([0.0, 1.0, 2.0, -1.0, float("inf"), float("nan"), 5e-324, 2.0**-1024, 0.5, 2**-53])
    x = torch.cat([magnitudes, near_one, edges]).unsqueeze(-1)
    actual, expected = torch.ops.fusedgan._log_sums(x), log_sums_reference(x)
    assert torch.equal(actual.isnan(), expected.isnan()) and torch.equal(actual.isinf(), expected.isinf())
    finite = expected.isfinite()
    ulp = torch.finfo(torch.float64).eps * expected[finite].abs().clamp_min(torch.finfo(torch.float64).tiny)
    assert ((actual[finite] - expected[finite]).abs() <= 2 * ulp).all()
    assert torch.equal(actual[~finite].nan_to_num(), expected[~finite].nan_to_num())


def test_log_sums_of_empty_sets_and_no_sets():
    assert torch.equal(torch.ops.fusedgan._log_sums(torch.ones(4, 0, dtype=torch.float64)), torch.zeros(4, 2, dtype=torch.float64))
    assert torch.ops.fusedgan._log_sums(torch.ones(0, 5, dtype=torch.float64)).shape == (0, 2)


def test_log_sums_do_not_depend_on_the_thread_count():
    x = torch.rand(3000, 257, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = torch.ops.fusedgan._log_sums(x)
        torch.set_num_threads(max(2, threads))
        assert torch.equal(torch.ops.fusedgan._log_sums(x), alone)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("x,match", [(torch.rand(3, 4), "expected x to be float64, got Float"),
                                     (torch.tensor(0.5, dtype=torch.float64), "0-dim")])
def test_log_sums_refuse_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        torch.ops.fusedgan._log_sums(x)


# ---- the Newton fits' di- and trigammas


def polygamma_arguments():
    """From the smallest subnormal to the largest double, through the recurrence's range and
    digamma's root near 1.4616, and the edges."""
    return torch.cat([torch.logspace(-323, 308, 5_000, dtype=torch.float64), torch.linspace(0.01, 30, 5_001, dtype=torch.float64),
                      torch.tensor([1.4616321449683622, 9.999999999999998, 10.0, 0.0, float("inf"), float("nan"), -0.5, -3.0])])


def test_digamma_and_trigamma_match_scipy():
    x = polygamma_arguments()
    digamma, trigamma = torch.ops.fusedgan._digamma_and_trigamma(x)
    expected_digamma = torch.from_numpy(scipy.special.digamma(x.numpy()))
    expected_trigamma = torch.from_numpy(scipy.special.polygamma(1, x.numpy()))
    positive = x > 0  # below 0 both are NaN here (the fits need x > 0), where scipy reflects
    torch.testing.assert_close(digamma[positive], expected_digamma[positive], rtol=1e-14, atol=1e-15, equal_nan=True)
    torch.testing.assert_close(trigamma[positive], expected_trigamma[positive], rtol=1e-14, atol=0, equal_nan=True)
    assert digamma[x == 0].item() == -math.inf and trigamma[x == 0].item() == math.inf
    assert digamma[x < 0].isnan().all() and trigamma[x < 0].isnan().all()


def test_digamma_and_trigamma_keep_the_shape_of_any_layout():
    x = torch.rand(4, 6, dtype=torch.float64).mT + 0.5  # strided
    digamma, trigamma = torch.ops.fusedgan._digamma_and_trigamma(x)
    assert digamma.shape == trigamma.shape == (6, 4)
    torch.testing.assert_close(digamma, torch.from_numpy(scipy.special.digamma(x.numpy())), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(trigamma, torch.from_numpy(scipy.special.polygamma(1, x.numpy())), rtol=1e-14, atol=0)
    assert all(t.shape == (0, 3) for t in torch.ops.fusedgan._digamma_and_trigamma(torch.ones(0, 3, dtype=torch.float64)))
    with pytest.raises(ValueError, match="expected x to be float64, got Float"):
        torch.ops.fusedgan._digamma_and_trigamma(torch.rand(3))


def test_digamma_and_trigamma_under_vmap():
    x = torch.rand(5, 7, dtype=torch.float64) + 0.1
    batched = torch.vmap(torch.ops.fusedgan._digamma_and_trigamma, in_dims=1)(x)
    for a, e in zip(batched, torch.ops.fusedgan._digamma_and_trigamma(x.mT.contiguous())):
        assert torch.equal(a, e)


def test_the_fit_helpers_compile_without_graph_breaks():
    x = torch.rand(6, 33, dtype=torch.float64) + 0.01

    def helpers(x):
        digamma, trigamma = torch.ops.fusedgan._digamma_and_trigamma(x)
        return torch.ops.fusedgan._log_sums(x.clamp_max(0.99)), digamma, trigamma

    for compiled, eager in zip(torch.compile(helpers, fullgraph=True)(x), helpers(x), strict=True):
        assert torch.equal(compiled, eager)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(
    [(torch.ops.fusedgan._log_sums.default, (torch.rand(3, 7, dtype=torch.float64),)),
     (torch.ops.fusedgan._log_sums.default, (torch.rand(2, 3, 9, dtype=torch.float64),)),
     (torch.ops.fusedgan._digamma_and_trigamma.default, (torch.rand(3, 7, dtype=torch.float64) + 0.1,)),
     (torch.ops.fusedgan._digamma_and_trigamma.default, (torch.rand(40_000, dtype=torch.float64) + 0.1,))],
    lambda name: name in ("fusedgan::_log_sums", "fusedgan::_digamma_and_trigamma"))


@pytest.mark.parametrize("concentrations", [(300.0, 400.0), (3000.0, 1.0)])
def test_beta_fits_of_concentrated_data_converge(concentrations):
    """Their Hessian is nearly singular: the steps stay at ~1e-12 of the estimates from
    rounding alone, and must still count as converged, at scipy's maximum."""
    x = sample(scipy.stats.beta, (200, 100), 5, a=concentrations[0], b=concentrations[1])
    result = mle.fit("beta", x, return_result=True)
    assert result.converged.all() and (result.iterations < 20).all()
    for i in range(3):
        theirs = scipy.stats.beta.fit(x[i].numpy(), floc=0, fscale=1)[:2]
        best = F.beta_log_likelihood(x[i], *(torch.tensor(float(p), dtype=torch.float64) for p in theirs)).item()
        assert result.log_likelihood[i].item() >= best - 1e-9 * abs(best)


# ---- edge cases that once gave a wrong finite number, or raised and lost the other sets


@pytest.mark.parametrize("factor", [1e-6, 1e-16, 1e140])
def test_student_t_fit_is_the_same_for_data_of_any_scale(factor):
    """Newton works on standardised data: a scaled set gets the scaled estimate and the
    log-likelihood shifted by -N log(factor) (it once stopped at its start for small scales)."""
    x = torch.tensor([3.09, -1.06, -0.34, -0.46, -1.45, -0.18, 0.02, -0.63], dtype=torch.float64)
    unit, scaled = mle.fit("student_t", x, return_result=True), mle.fit("student_t", x * factor, return_result=True)
    assert scaled.converged.item()
    assert_relative(scaled.params["df"], unit.params["df"], rtol=1e-7)
    assert_relative([scaled.params["loc"], scaled.params["scale"]],
                    [unit.params["loc"] * factor, unit.params["scale"] * factor], rtol=1e-7)
    assert_relative(scaled.log_likelihood, unit.log_likelihood - len(x) * math.log(factor), rtol=1e-9)


@pytest.mark.parametrize("family,data", [
    ("multivariate_normal", [[[0.1, 0.2], [0.4, 0.7]], [[0.0, 1.0], [1.0, 3.0]]]),  # 2 points in 2-D: a line
    ("multivariate_normal", [[[0.1, 0.3], [0.2, 0.6], [0.7, 2.1]], [[0.1, 0.3], [0.2, 0.6], [0.3, 0.9]]]),  # on a line
    ("von_mises", [[0.1, 0.1 + 2 * math.pi], [1.0, 1.0 - 2 * math.pi]]),  # one angle, up to turns
    ("negative_binomial", [[1.0, 2, 3, 5, 2, 5, 1, 6, 5], [6.0, 3, 6, 0, 3, 7, 5, 5, 7]]),  # variance = mean, rounded
])
def test_sets_degenerate_up_to_rounding_are_flagged(family, data):
    """Data whose maximum is at infinity in exact arithmetic, where rounding alone made it look
    finite: flagged, never a huge estimate reported as converged."""
    x = torch.tensor(data, dtype=torch.float64)
    if family == "negative_binomial":
        assert x.var(-1, correction=0).tolist() == pytest.approx(x.mean(-1).tolist(), rel=1e-14)
    for sets in (x, *x):  # together and alone (the sums' rounding differs)
        result = mle.fit(family, sets, dim=-2 if family == "multivariate_normal" else -1, return_result=True)
        assert not result.fitted.any() and not result.converged.any()
        assert all(value.isnan().all() for value in result.params.values())


@pytest.mark.parametrize("family", ["normal", "half_normal", "lognormal", "laplace", "exponential"])
@pytest.mark.parametrize("factor", [1e-30, 1e20])
def test_float32_closed_forms_neither_overflow_nor_underflow(family, factor):
    """Squares of 1e20 overflow float32 and those of 1e-30 underflow: the closed forms compute
    in float64, and a set far from 1 is fitted beside one near it."""
    base = torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=torch.float64)
    x = torch.stack([base, base * factor]).float()
    result = mle.fit(family, x, return_result=True)
    expected = mle.fit(family, x.double())
    assert result.fitted.all() and result.log_likelihood.isfinite().all()
    for name, value in result.params.items():
        assert value.dtype == torch.float32
        assert_relative(value, expected[name].float(), rtol=1e-6)


def test_estimates_the_data_dtype_cannot_hold_are_flagged():
    """A Student's t fit of normal-looking data goes to df ~ 1e6, past float16's range; a
    beta fit of data spread by 1e-9 breaks down: flagged, the other set fitted."""
    normal_looking = torch.tensor([[1.0, 2, 3, 4, 5], [0.1, 2.0, 2.5, 2.9, 9.0]], dtype=torch.float16)
    result = mle.fit("student_t", normal_looking, return_result=True)
    assert result.reason.tolist() == ["no finite estimate", ""] and result.params["df"][1].isfinite()
    rng = np.random.default_rng(3)
    beta = torch.tensor(np.stack([np.linspace(0.1, 0.9, 50), 0.5 + 1e-9 * rng.normal(size=50)]))
    result = mle.fit("beta", beta, return_result=True)
    assert result.reason.tolist() == ["", "no finite estimate"] and result.log_likelihood[0].isfinite()


def test_bad_sets_of_discrete_families_are_flagged():
    """Poisson counts must be whole, as every count family's; a binomial set of no trials has
    no estimate; with one category every label is 0."""
    result = mle.fit("poisson", torch.tensor([[0.5, 1.5, 2.25], [1.0, 2.0, 4.0]], dtype=torch.float64), return_result=True)
    assert result.reason.tolist() == ["outside the support", ""]
    assert_relative(result.params["rate"][1], 7 / 3)
    result = mle.fit("binomial", torch.tensor([[0.0, 0], [1, 2]]), total_count=torch.tensor([0.0, 5.0]), return_result=True)
    assert result.reason.tolist() == ["no finite estimate", ""] and result.log_likelihood[1].isfinite()
    result = mle.fit("categorical", torch.tensor([[0.0, 0], [0, 1]]), num_classes=1, return_result=True)
    assert result.reason.tolist() == ["", "outside the support"] and result.params["logits"][0].tolist() == [0.0]


@pytest.mark.parametrize("family,shape,options", [
    ("normal", (0, 5), {}), ("laplace", (2, 0, 5), {}), ("student_t", (0, 5), {}),
    ("categorical", (0, 4), {"num_classes": 3}), ("multivariate_normal", (0, 6, 2), {}),
])
def test_no_data_sets_give_empty_results(family, shape, options):
    dims = 2 if family == "multivariate_normal" else 1
    batch = shape[:-dims]
    params = mle.fit(family, torch.zeros(shape, dtype=torch.float64), **options)
    result = mle.fit(family, torch.zeros(shape, dtype=torch.float64), return_result=True, **options)
    for value in (*params.values(), *result.params.values(), *result.stderr.values()):
        assert value.shape[:len(batch)] == batch and value.numel() == 0
    for value in (result.log_likelihood, result.aic, result.converged, result.failure):
        assert value.shape == batch
    assert result.covariance.shape[:len(batch)] == batch


def test_a_root_beyond_the_search_bracket_is_not_reported_converged():
    """Gamma data spread by 1e-9 have a concentration near 1e18, beyond the bracket's e^50:
    the fit stops at the bracket's end and says it did not converge; the other set did."""
    rng = np.random.default_rng(0)
    x = torch.tensor(np.stack([1 + 1e-9 * rng.normal(size=50), rng.gamma(2.0, size=50)]))
    result = mle.fit("gamma", x, return_result=True)
    assert result.converged.tolist() == [False, True] and result.fitted.all()
    assert_relative(result.params["concentration"][0], math.exp(50.0))
