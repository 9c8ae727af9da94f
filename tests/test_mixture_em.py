"""The diagonal normal mixture's EM (fusedgan.mle's normal_mixture fit) against scikit-learn's
GaussianMixture(covariance_type="diag") from the same start, its k-means++ start, restarts,
per-set convergence and errors; and its op (_normal_mixture_em) against EM in float64 ATen
ops."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import DEVICES, opcheck_tests
from references import em_reference
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from fusedgan import functional as F
from fusedgan import mle

fit_mixture = mle.FAMILIES["normal_mixture"]


def mixture_data(sets: int, n: int, d: int, k: int, seed: int, spread: float = 3.0) -> torch.Tensor:
    """(sets, n, d) float64 points from a random diagonal mixture of k components per set."""
    g = torch.Generator().manual_seed(seed)
    centres = spread * torch.randn(sets, k, d, generator=g, dtype=torch.float64)
    scales = 0.5 + torch.rand(sets, k, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (sets, n, 1), generator=g).expand(sets, n, d)
    noise = torch.randn(sets, n, d, generator=g, dtype=torch.float64)
    return centres.gather(1, labels) + scales.gather(1, labels) * noise


def random_start(x: torch.Tensor, k: int, seed: int) -> dict[str, torch.Tensor]:
    """Per set: k distinct points as the means, equal weights, the set's spread as the scales."""
    g = torch.Generator().manual_seed(seed)
    sets, n, d = x.shape
    chosen = torch.rand(sets, n, generator=g).argsort(-1)[:, :k]
    loc = x.gather(1, chosen.unsqueeze(-1).expand(sets, k, d))
    return {"logits": torch.zeros(sets, k, dtype=x.dtype), "loc": loc, "scale": x.std(1, keepdim=True).expand(sets, k, d)}


def sklearn_fit(points: torch.Tensor, start: dict[str, torch.Tensor], **options) -> GaussianMixture:
    """scikit-learn's fit of one set (n, d) from the start (one set's parameters)."""
    model = GaussianMixture(start["logits"].shape[-1], covariance_type="diag", weights_init=start["logits"].softmax(-1).numpy(),
                            means_init=start["loc"].numpy(), precisions_init=start["scale"].pow(-2).numpy(),
                            init_params="random_from_data", random_state=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(points.numpy())


def mean_log_likelihood(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.normal_mixture_log_likelihood(x, params["logits"], params["loc"], params["scale"]) / x.shape[-2]


@pytest.mark.parametrize("sets, n, d, k, seed, options", [
    (4, 300, 2, 3, 0, {}),
    (3, 1000, 5, 4, 1, {}),
    (3, 5000, 3, 6, 2, dict(tol=1e-6, max_iter=300)),  # overlapping components, slow to converge
    (2, 2500, 8, 16, 3, {}),
    (3, 400, 2, 3, 4, dict(reg_covar=1e-2)),  # the regularisation counts
    (2, 400, 3, 4, 5, dict(tol=0.0, max_iter=7)),  # the cap reached, not converged
])
def test_same_start_gives_sklearns_fit(sets, n, d, k, seed, options):
    x = mixture_data(sets, n, d, k, seed, spread=2.0)
    start = random_start(x, k, seed)
    estimate = fit_mixture(x, 1, init=start, **options)  # dim=1: the points
    ours = mean_log_likelihood(x, estimate.params)
    for s in range(sets):
        model = sklearn_fit(x[s], {name: value[s] for name, value in start.items()}, **options)
        assert abs(ours[s].item() - model.score(x[s].numpy())) < 1e-8
        assert estimate.iterations[s].item() == model.n_iter_ and estimate.converged[s].item() == model.converged_
        torch.testing.assert_close(estimate.params["logits"][s].exp(), torch.from_numpy(model.weights_), rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(estimate.params["loc"][s], torch.from_numpy(model.means_), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(estimate.params["scale"][s].square(), torch.from_numpy(model.covariances_), rtol=1e-6, atol=1e-9)


def test_float32_data_fits_sklearns_log_likelihood_within_1e_4():
    x = mixture_data(3, 2000, 4, 5, seed=6)
    start = random_start(x, 5, seed=6)
    params = mle.fit("normal_mixture", x.float(), init=start)
    assert params["loc"].dtype == torch.float32
    ours = mean_log_likelihood(x, {name: value.double() for name, value in params.items()})
    for s in range(3):
        model = sklearn_fit(x[s], {name: value[s] for name, value in start.items()})
        assert abs(ours[s].item() - model.score(x[s].numpy())) < 1e-4


def test_sets_far_from_the_origin_fit_as_near_it():
    # the E step sums deviations from the components' means: a shift of the data shifts loc alone
    x = mixture_data(2, 500, 3, 3, seed=7)
    start = random_start(x, 3, seed=7)
    near = fit_mixture(x, -2, init=start)
    shifted = {**start, "loc": start["loc"] + 1e6}
    far = fit_mixture(x + 1e6, -2, init=shifted)
    torch.testing.assert_close(far.params["loc"] - 1e6, near.params["loc"], rtol=0, atol=1e-7)
    torch.testing.assert_close(far.params["scale"], near.params["scale"], rtol=1e-8, atol=0)
    assert torch.equal(far.iterations, near.iterations)


def test_converged_sets_are_frozen():
    # a set that converges early ends as it would alone, while the others go on
    easy = mixture_data(1, 600, 2, 2, seed=8, spread=20.0)
    hard = mixture_data(1, 600, 2, 4, seed=9, spread=1.0)
    x = torch.cat([easy, hard])
    start = {name: torch.cat([a, b]) for (name, a), b in zip(random_start(easy, 4, 10).items(), random_start(hard, 4, 11).values())}
    together = fit_mixture(x, -2, init=start, tol=1e-8, max_iter=500)
    assert together.converged[0] and together.iterations[0] < together.iterations[1]
    for s in range(2):
        alone = fit_mixture(x[s], -2, init={name: value[s] for name, value in start.items()}, tol=1e-8, max_iter=500)
        assert alone.iterations.item() == together.iterations[s].item()
        for name, value in alone.params.items():
            assert torch.equal(value, together.params[name][s]), name


def test_iteration_cap_leaves_sets_unconverged():
    x = mixture_data(3, 400, 2, 3, seed=12, spread=1.0)
    capped = fit_mixture(x, -2, k=3, max_iter=2, tol=0.0)
    assert capped.iterations.tolist() == [2, 2, 2] and not capped.converged.any()
    free = fit_mixture(x, -2, k=3, max_iter=1000, tol=1e-4)
    assert free.converged.all() and (free.iterations > 2).all()


def test_batch_dims_and_dim():
    x = mixture_data(6, 200, 2, 3, seed=13).reshape(2, 3, 200, 2)
    estimate = fit_mixture(x, -2, k=3, seed=4)
    assert estimate.params["loc"].shape == (2, 3, 3, 2) and estimate.params["logits"].shape == (2, 3, 3)
    assert estimate.iterations.shape == (2, 3) and estimate.iterations.dtype == torch.int64
    assert estimate.converged.shape == (2, 3) and estimate.converged.dtype == torch.bool
    moved = fit_mixture(x.movedim(-2, 0), 0, k=3, seed=4)
    for name, value in estimate.params.items():
        assert torch.equal(value, moved.params[name])


# ---- k-means++


def test_kmeans_plusplus_centres_are_distinct_points_of_their_set():
    x = mixture_data(5, 300, 3, 4, seed=14)
    centres = mle._kmeans_plusplus(x, 6, torch.Generator().manual_seed(0))
    assert centres.shape == (5, 6, 3)
    for s in range(5):
        matches = (centres[s].unsqueeze(1) == x[s].unsqueeze(0)).all(-1)  # (6, 300)
        assert (matches.sum(-1) == 1).all()  # each centre is one point of its own set
        assert matches.any(0).sum() == 6  # six different points


def test_kmeans_plusplus_finds_every_separated_cluster():
    # greedy k-means++ puts one centre in each of k tight, far-apart clusters
    g = torch.Generator().manual_seed(15)
    sets, k = 50, 5
    centres = 100 * torch.randn(sets, k, 2, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (sets, 400, 1), generator=g).expand(sets, 400, 2)
    x = centres.gather(1, labels) + 0.1 * torch.randn(sets, 400, 2, generator=g, dtype=torch.float64)
    chosen = mle._kmeans_plusplus(x, k, torch.Generator().manual_seed(1))
    nearest_true = mle._squared_distances(chosen, centres).argmin(-1)  # (sets, k): the cluster of each centre
    assert all(sorted(row) == list(range(k)) for row in nearest_true.tolist())


def test_kmeans_plusplus_is_seeded():
    x = mixture_data(3, 200, 2, 3, seed=16)
    draw = lambda seed: mle._kmeans_plusplus(x, 4, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    assert torch.equal(fit_mixture(x, -2, k=4, seed=3).params["loc"], fit_mixture(x, -2, k=4, seed=3).params["loc"])


def test_kmeans_plusplus_start_fits_at_least_as_well_as_random_points():
    x = mixture_data(20, 500, 2, 5, seed=17)
    from_kmeans = mean_log_likelihood(x, fit_mixture(x, -2, k=5, seed=0).params)
    from_points = mean_log_likelihood(x, fit_mixture(x, -2, init=random_start(x, 5, seed=0)).params)
    assert (from_kmeans > from_points - 1e-3).float().mean() >= 0.8 and from_kmeans.mean() > from_points.mean()


def test_n_init_keeps_each_sets_best_start():
    x = mixture_data(12, 300, 2, 5, seed=18, spread=1.5)
    options = dict(tol=1e-3, max_iter=100, reg_covar=1e-6)
    best = fit_mixture(x, -2, k=5, n_init=4, seed=7, **options)
    # the four starts, drawn from the seed's generator in turn, each run alone
    generator = torch.Generator().manual_seed(7)
    runs = [mle._expectation_maximisation(x, mle._kmeans_plusplus_start(x, 5, generator, 1e-6), **options) for _ in range(4)]
    bounds = torch.stack([run[1] for run in runs])  # (starts, sets)
    chosen = bounds.argmax(0)
    assert len(set(chosen.tolist())) > 1  # the best start differs between sets
    for s in range(12):
        params, _, iterations, converged = runs[chosen[s]]
        torch.testing.assert_close(best.params["loc"][s], params["loc"][s], rtol=0, atol=1e-12)
        torch.testing.assert_close(best.params["scale"][s], params["scale"][s], rtol=0, atol=1e-12)
        assert best.iterations[s] == iterations[s] and best.converged[s] == converged[s]
    one = fit_mixture(x, -2, k=5, n_init=1, seed=7, **options)
    assert (mean_log_likelihood(x, best.params) >= mean_log_likelihood(x, one.params) - 1e-3).all()


# ---- errors


@pytest.mark.parametrize("options, match", [
    ({}, "needs k="),
    ({"k": 0}, "needs k="),
    ({"k": 101}, "at least k = 101 points per data set, got 100"),
    ({"k": 2, "init": "kmeans"}, "init must be"),
    ({"init": {"logits": torch.zeros(2), "loc": torch.zeros(2, 3)}}, 'dict of "logits", "loc" and "scale"'),
    ({"init": {"logits": torch.zeros(2), "loc": torch.zeros(2, 3), "scale": torch.ones(2, 3)}}, r"init\['loc'\] must be \(\.\.\., 2, 2\)"),
    ({"init": {"logits": torch.zeros(3, 2), "loc": torch.zeros(2, 2), "scale": torch.ones(2, 2)}}, "does not broadcast"),
    ({"init": {"logits": torch.zeros(2), "loc": torch.zeros(2, 2), "scale": torch.zeros(2, 2)}}, "positive scales"),
    ({"k": 3, "init": {"logits": torch.zeros(2), "loc": torch.zeros(2, 2), "scale": torch.ones(2, 2)}}, "2 components but k = 3"),
    ({"n_init": 2, "init": {"logits": torch.zeros(2), "loc": torch.zeros(2, 2), "scale": torch.ones(2, 2)}}, "n_init=1"),
    ({"k": 2, "n_init": 0}, "n_init >= 1"),
    ({"k": 2, "max_iter": 0}, "max_iter >= 1"),
    ({"k": 2, "tol": -1.0}, "tol >= 0"),
    ({"k": 2, "reg_covar": -1e-6}, "reg_covar >= 0"),
])
def test_bad_options_are_refused(options, match):
    x = mixture_data(2, 100, 2, 2, seed=19)
    with pytest.raises(ValueError, match=match):
        fit_mixture(x, -2, **options)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        mle.fit("normal_mixture", x[0, :, 0], k=2)


# ---- the EM op


def em_inputs(batch=(3,), n=50, k=4, d=3, seed=20):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(*batch, n, d, generator=g, dtype=torch.float64), torch.randn(*batch, k, generator=g, dtype=torch.float64),
            torch.randn(*batch, k, d, generator=g, dtype=torch.float64), 0.5 + torch.rand(*batch, k, d, generator=g, dtype=torch.float64))


def em_op(x, logits, loc, scale, tol=1e-3, max_iter=100, reg_covar=1e-6):
    return torch.ops.fusedgan._normal_mixture_em(x, logits, loc, scale, tol, max_iter, reg_covar)


def assert_fits_equal(actual, expected, rtol):
    """The fitted parameters and lower bounds within rtol of their largest; the iterations and
    the convergence flags equal."""
    assert [t.dtype for t in actual] == [torch.float64] * 4 + [torch.int64, torch.bool]
    for a, e in zip(actual[:4], expected[:4]):
        assert a.shape == e.shape
        torch.testing.assert_close(a.cpu(), e, rtol=rtol, atol=rtol * e.abs().max().item())
    for a, e in zip(actual[4:], expected[4:]):
        assert torch.equal(a.cpu(), e)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("shape", [dict(), dict(k=40, d=2), dict(batch=(2,), n=5000, k=3, d=2), dict(batch=(), n=17, k=1, d=9)])
def test_em_iteration_matches_float64_reference(device, dtype, rtol, shape):
    # one iteration (max_iter=1), so that the float32 E step's rounding cannot change the path;
    # n = 5000: several pieces of a set, vectors of points and a partial one; k = 40: two blocks of components
    x, *start = em_inputs(**shape)
    actual = em_op(x.to(device, dtype), *(t.to(device) for t in start), max_iter=1, reg_covar=1e-3)
    assert_fits_equal(actual, em_reference(x.to(dtype), *start, 1e-3, 1, 1e-3), rtol)


@pytest.mark.parametrize("device", DEVICES)
def test_em_runs_each_set_to_its_own_stop(device):
    x = mixture_data(sets=6, n=300, d=2, k=3, seed=8)
    start = random_start(x, 3, seed=9)
    start["logits"] = torch.randn(6, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    actual = em_op(x.to(device), *(start[name].to(device) for name in ("logits", "loc", "scale")), tol=1e-4, max_iter=60)
    expected = em_reference(x, start["logits"], start["loc"], start["scale"], 1e-4, 60, 1e-6)
    assert len(set(expected[4].tolist())) > 2  # the sets stop at different iterations
    assert_fits_equal(actual, expected, 1e-9)


def test_em_stops_at_max_iter_unconverged():
    x, *start = em_inputs(n=400, k=6)
    *_, iterations, converged = em_op(x, *start, tol=0.0, max_iter=4)
    assert iterations.tolist() == [4, 4, 4] and not converged.any()


def test_em_does_not_depend_on_the_thread_count():
    inputs = [t.float() if i == 0 else t for i, t in enumerate(em_inputs(batch=(3,), n=9000, k=5, d=2))]
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, max(2, threads)):
            torch.set_num_threads(count)
            results.append(em_op(*inputs, tol=0.0, max_iter=5))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_em_broadcasts_the_start_and_leaves_it_unchanged():
    x, logits, loc, scale = em_inputs(batch=(4,))
    shared_start = [logits[0], loc[0], scale[0]]
    copies = [t.clone() for t in shared_start]
    shared = em_op(x, *shared_start, max_iter=5)
    assert_fits_equal(shared, em_op(x, *(t.expand(4, *t.shape) for t in shared_start), max_iter=5), 0.0)
    assert all(torch.equal(t, c) for t, c in zip(shared_start, copies))


def test_em_of_no_sets():
    x, logits, loc, scale = em_inputs(batch=(0,))
    fit = em_op(x, logits, loc, scale)
    assert [tuple(t.shape) for t in fit] == [(0, 4), (0, 4, 3), (0, 4, 3), (0,), (0,), (0,)]


@pytest.mark.parametrize("in_dims", [(0, None, 0, None), (1, 0, None, 2)])
def test_em_under_vmap(in_dims):
    # the batching rule: one call on the whole batch, the vmapped dim first in every output
    # sets (3, 4): the vmapped dim of 3 (moved to in_dims, or left out of the unbatched), a logical one of 4
    inputs = [t[0] if d is None else t.movedim(0, d) for t, d in zip(em_inputs(batch=(3, 4)), in_dims)]
    batched = torch.func.vmap(em_op, in_dims=in_dims)(*inputs)
    for sample in range(3):
        one = [t if d is None else t.select(d, sample) for t, d in zip(inputs, in_dims)]
        for a, e in zip(batched, em_op(*one)):
            assert torch.equal(a[sample], e)


def test_em_compiles_without_graph_breaks():
    x, logits, loc, scale = em_inputs()
    compiled = torch.compile(lambda *t: em_op(*t, tol=1e-3, max_iter=20), fullgraph=True)
    for a, e in zip(compiled(x.float(), logits, loc, scale), em_op(x.float(), logits, loc, scale, max_iter=20), strict=True):
        assert torch.equal(a, e)


@pytest.mark.parametrize("change, message", [
    (dict(loc=lambda t: t[..., :3, :]), "loc and scale need K = 4"),
    (dict(scale=lambda t: -t), "scale must be positive"),
    (dict(x=lambda t: t[..., :0, :]), "needs at least one point and one component"),
    (dict(tol=-1.0), "needs tol >= 0, max_iter >= 1 and reg_covar >= 0"),
    (dict(max_iter=0), "needs tol >= 0, max_iter >= 1 and reg_covar >= 0"),
    (dict(reg_covar=-1e-6), "needs tol >= 0, max_iter >= 1 and reg_covar >= 0"),
])
def test_em_errors_name_the_op(change, message):
    arguments = dict(zip(("x", "logits", "loc", "scale"), em_inputs()))
    settings = {name: change.pop(name) for name in ("tol", "max_iter", "reg_covar") if name in change}
    arguments.update({name: edit(arguments[name]) for name, edit in change.items()})
    with pytest.raises(ValueError, match=f"_normal_mixture_em: {message}"):
        em_op(**arguments, **settings)


def opcheck_samples():
    x, logits, loc, scale = em_inputs(batch=(2,), n=7, k=3, d=2)
    yield torch.ops.fusedgan._normal_mixture_em.default, (x.float(), logits, loc, scale, 1e-3, 10, 1e-6)
    yield torch.ops.fusedgan._normal_mixture_em.default, (x, logits[0].float(), loc, scale, 0.0, 3, 0.0)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "mixture_em" in name)
