"""Inference from mle.fit(..., return_result=True): the observed information's standard errors
against a finite-difference Hessian of the fused log-likelihood and against statsmodels, the
coverage of their 95 % intervals, and the statistics of FitResult."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from references import REFERENCES
from test_mle import fit_data, sample

from fusedgan import functional as F
from fusedgan import mle
from fusedgan.families import FAMILIES


def set_log_likelihood(family: str, x: torch.Tensor, params: dict) -> torch.Tensor:
    return getattr(F, FAMILIES[family].function_name)(x, *(params[name].unsqueeze(-1) for name in FAMILIES[family].params))


def finite_difference_information(family: str, x: torch.Tensor, params: dict, estimated: list[str], step=1e-4):
    """Minus the Hessian of each set's log-likelihood by central differences, relative steps."""
    count = len(estimated)
    information = torch.zeros(x.shape[0], count, count, dtype=torch.float64)

    def shifted(moves):
        p = {name: value.clone() for name, value in params.items()}
        for name, amount in moves:
            p[name] = p[name] + amount * step * p[name].abs().clamp_min(1.0)
        return set_log_likelihood(family, x, p)

    for i, a in enumerate(estimated):
        for j, b in enumerate(estimated):
            second = (shifted([(a, 1), (b, 1)]) - shifted([(a, 1), (b, -1)]) - shifted([(a, -1), (b, 1)])
                      + shifted([(a, -1), (b, -1)])) / 4
            information[:, i, j] = -second / (step**2 * params[a].abs().clamp_min(1.0) * params[b].abs().clamp_min(1.0))
    return information


# Laplace's log-likelihood is not twice differentiable in loc: its observed information is
# singular there (test_laplace_...).
@pytest.mark.parametrize("family", [name for name in FAMILIES if name != "laplace"])
def test_covariance_inverts_a_finite_difference_hessian(family):
    x, options = fit_data(family)
    result = mle.fit(family, x, return_result=True, **options)
    assert result.fitted.all() and result.converged.all()
    estimated = [name for name in FAMILIES[family].params if name not in options]
    information = finite_difference_information(family, x, result.params, estimated)
    scale = information.abs().amax((-2, -1), keepdim=True)
    torch.testing.assert_close(torch.linalg.inv(result.covariance) / scale, information / scale, rtol=1e-5, atol=1e-5)
    for k, name in enumerate(estimated):
        torch.testing.assert_close(result.stderr[name], result.covariance[:, k, k].sqrt())
    for name in options:  # given, not estimated
        assert (result.stderr[name] == 0).all()


def test_normal_standard_errors_are_the_textbook_ones():
    x = sample(scipy.stats.norm, (5, 80), seed=12, loc=1.0, scale=2.0)
    result = mle.fit("normal", x, return_result=True)
    scale = result.params["scale"]
    torch.testing.assert_close(result.stderr["loc"], scale / math.sqrt(80), rtol=1e-10, atol=0)
    torch.testing.assert_close(result.stderr["scale"], scale / math.sqrt(160), rtol=1e-10, atol=0)
    torch.testing.assert_close(result.covariance[:, 0, 1], torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)
    expected = torch.from_numpy(scipy.stats.norm.logpdf(x.numpy(), result.params["loc"][:, None].numpy(),
                                                        result.params["scale"][:, None].numpy()).sum(-1))
    torch.testing.assert_close(result.log_likelihood, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(result.aic, 2 * 2 - 2 * expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(result.bic, 2 * math.log(80) - 2 * expected, rtol=1e-12, atol=0)
    assert (result.iterations == 0).all() and result.converged.all()


@pytest.mark.parametrize("family, scipy_name, to_scipy", [
    ("gamma", "gamma", lambda c, r: (c, 0, 1 / r)),
    ("weibull", "weibull_min", lambda s, c: (c, 0, s)),
    ("lognormal", "lognorm", lambda m, s: (s, 0, math.exp(m))),
])
def test_standard_errors_match_statsmodels(family, scipy_name, to_scipy):
    """statsmodels' GenericLikelihoodModel at our estimate: its numerical Hessian's standard
    errors."""
    GenericLikelihoodModel = pytest.importorskip("statsmodels.base.model").GenericLikelihoodModel  # a GPU machine may lack it

    distribution = getattr(scipy.stats, scipy_name)
    x, _ = fit_data(family)
    result = mle.fit(family, x[:3], return_result=True)
    names = FAMILIES[family].params
    for i in range(3):
        data = x[i].numpy()

        class Model(GenericLikelihoodModel):
            def loglike(self, theta):
                return distribution.logpdf(data, *to_scipy(*theta)).sum()

        start = np.array([result.params[name][i].item() for name in names])
        with warnings.catch_warnings():  # no iterations asked for: statsmodels warns that it did not converge
            warnings.simplefilter("ignore")
            fitted = Model(data).fit(start_params=start, method="nm", maxiter=0, disp=False)
        np.testing.assert_allclose([result.stderr[name][i].item() for name in names], fitted.bse, rtol=1e-4)


@pytest.mark.parametrize("family, truth, draw", [
    ("normal", {"loc": 1.0, "scale": 2.0}, lambda rng, shape: rng.normal(1.0, 2.0, shape)),
    ("gamma", {"concentration": 3.0, "rate": 2.0}, lambda rng, shape: rng.gamma(3.0, 0.5, shape)),
])
def test_95_percent_intervals_cover_the_truth_95_percent_of_the_time(family, truth, draw):
    """2,000 simulated data sets of 200 points: each parameter's estimate +- 1.96 standard
    errors covers the true value in 93.5 % to 96.5 % of the sets (the Monte Carlo error of 2,000
    sets is 0.5 %)."""
    x = torch.from_numpy(draw(np.random.default_rng(2024), (2000, 200)))
    result = mle.fit(family, x, return_result=True)
    for name, value in truth.items():
        covered = ((result.params[name] - value).abs() <= 1.96 * result.stderr[name]).double().mean().item()
        assert 0.935 <= covered <= 0.965, (name, covered)


@pytest.mark.parametrize("family", ["lognormal", "half_normal", "geometric", "binomial", "normal", "exponential"])
def test_closed_forms_equal_the_reference_fit(family):
    reference = REFERENCES[family]
    x, options = fit_data(family)
    fitted = mle.fit(family, x, **options)
    for i in range(x.shape[0]):
        expected = [float(p) for p in reference.scipy_fit(x[i].numpy())]
        np.testing.assert_allclose([fitted[name][i].item() for name in FAMILIES[family].params], expected, rtol=1e-9)


def test_normalised_logits_take_the_pseudo_inverse():
    """The categorical log-likelihood does not change when every logit moves by one amount, so
    the information is singular along that shift: the covariance is its pseudo-inverse, which
    has no variance along the shift, and the statistics count one parameter fewer."""
    labels = torch.randint(0, 3, (4, 300), generator=torch.Generator().manual_seed(3)).double()
    result = mle.fit("categorical", labels, num_classes=3, return_result=True)
    assert result.covariance.shape == (4, 3, 3) and result.covariance.isfinite().all()
    ones = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(result.covariance @ ones, torch.zeros(4, 3, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(result.aic, 2 * 2 - 2 * result.log_likelihood)


def test_laplace_location_has_no_observed_information():
    x, _ = fit_data("laplace")
    result = mle.fit("laplace", x, return_result=True)
    assert result.fitted.all() and result.covariance.isnan().all() and result.log_likelihood.isfinite().all()


def test_boundary_estimates_have_nan_covariance_but_stay_fitted():
    coins = torch.tensor([[1.0, 1, 1, 1], [1, 0, 1, 0]])
    result = mle.fit("bernoulli", coins, return_result=True)
    assert result.fitted.all() and result.params["logits"][0] == math.inf
    assert result.stderr["logits"][0].isnan() and result.stderr["logits"][1].isfinite()


def test_multivariate_normal_standard_errors_of_the_mean_are_sigma_over_root_n():
    """The estimated entries are loc's D and scale_tril's lower triangle: P = D + D (D + 1) / 2;
    the mean's covariance is the fitted covariance over N, and scale_tril's upper triangle has
    no error."""
    x, _ = fit_data("multivariate_normal")
    result = mle.fit("multivariate_normal", x, return_result=True)
    n, d = x.shape[-2:]
    assert result.covariance.shape == (x.shape[0], d + d * (d + 1) // 2, d + d * (d + 1) // 2)
    tril = result.params["scale_tril"]
    torch.testing.assert_close(result.covariance[:, :d, :d], tril @ tril.mT / n, rtol=1e-8, atol=1e-12)
    assert (result.stderr["scale_tril"].triu(1) == 0).all() and (result.stderr["scale_tril"].tril() > 0).sum() == x.shape[0] * 6
    torch.testing.assert_close(result.aic, 2 * 9 - 2 * result.log_likelihood)


def test_normal_mixture_result_counts_its_iterations_and_its_free_parameters():
    x, options = fit_data("normal_mixture")
    result = mle.fit("normal_mixture", x, return_result=True, **options)
    k, d = 2, x.shape[-1]
    assert result.covariance.shape == (x.shape[0], k + 2 * k * d, k + 2 * k * d) and result.covariance.isfinite().all()
    assert (result.iterations > 0).all() and result.converged.all() and result.fitted.all()
    torch.testing.assert_close(result.bic, (k - 1 + 2 * k * d) * math.log(x.shape[-2]) - 2 * result.log_likelihood)
