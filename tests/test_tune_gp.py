"""The Gaussian process of tune.bayesian_search against numpy/scipy float64 references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy.special import log_ndtr
from scipy.stats import norm

from jaxdl.tune import gp

RNG = np.random.default_rng(0)
X = RNG.random((5, 3))
Y = np.sin(3.0 * X).sum(axis=1) + 0.3 * X[:, 0]
THETA = np.array([0.7, -0.4, 1.3, 0.2, math.log(2e-3), 0.15])  # ARD, log s, log noise, mean


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def params(theta=THETA):
    return gp.GPParams.from_vector(jnp.asarray(theta))


def np_kernel(theta, a, b):
    """Matern-5/2 with ARD, written from the formula in numpy."""
    q, s = np.exp(theta[:-3]), np.exp(theta[-3])
    r = np.sqrt(5.0 * (((a[:, None, :] - b[None, :, :]) ** 2) * q).sum(-1))
    return s * (1.0 + r + r ** 2 / 3.0) * np.exp(-r)


def np_lml(theta, x=X, y=Y):
    """The log marginal likelihood by the Cholesky formula, numpy float64."""
    noise, mean = gp.MIN_NOISE + np.exp(theta[-2]), theta[-1]
    c = np_kernel(theta, x, x) + noise * np.eye(len(x))
    chol = np.linalg.cholesky(c)
    w = scipy.linalg.solve_triangular(chol, y - mean, lower=True)
    return -0.5 * w @ w - np.log(np.diag(chol)).sum() - 0.5 * len(x) * math.log(2 * math.pi)


def padded(capacity, x=X, y=Y):
    n = len(x)
    xp, yp = np.zeros((capacity, x.shape[1])), np.zeros(capacity)
    xp[:n], yp[:n] = x, y
    xp[n:] = 0.5  # padded rows hold junk that must not matter
    yp[n:] = 7.0
    return xp, yp, np.arange(capacity) < n


def test_kernel_matrix_matches_numpy():
    x2 = RNG.random((4, 3))
    np.testing.assert_allclose(gp.kernel_matrix(params(), X, x2), np_kernel(THETA, X, x2),
                               rtol=1e-12)
    np.testing.assert_allclose(np.diag(gp.kernel_matrix(params(), X, X)), np.exp(THETA[-3]))


def test_log_marginal_likelihood_and_its_gradient_match_float64_references():
    xp, yp, mask = padded(8)
    expected = np_lml(THETA)
    assert jax.jit(gp.log_marginal_likelihood)(params(), xp, yp, mask) == pytest.approx(
        expected, rel=1e-10)
    value, grad = jax.jit(gp.log_likelihood_and_grad)(params(), xp, yp, mask)
    assert value == pytest.approx(expected, rel=1e-10)
    h = 1e-6
    numeric = [(np_lml(THETA + h * e) - np_lml(THETA - h * e)) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(gp.GPParams(*grad).vector(), numeric, rtol=1e-6, atol=1e-7)
    autodiff = jax.jit(jax.grad(gp.log_marginal_likelihood))(params(), xp, yp, mask)
    np.testing.assert_allclose(gp.GPParams(*grad).vector(), autodiff.vector(), rtol=1e-9)


def test_log_prior_gradient_matches_finite_differences():
    value, grad = gp.log_prior_and_grad(jnp.asarray(THETA))
    assert value == pytest.approx(float(gp.log_prior(params())))
    h = 1e-6
    f = [float(gp.log_prior(params(THETA + h * e))) - float(gp.log_prior(params(THETA - h * e)))
         for e in np.eye(6)]
    np.testing.assert_allclose(grad, np.array(f) / (2 * h), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n", [5, 8])
def test_triangular_inverse_matches_numpy(n):
    a = RNG.random((n, n))
    chol = np.linalg.cholesky(a @ a.T + 1e-3 * np.eye(n))
    np.testing.assert_allclose(jax.jit(gp.triangular_inverse)(chol), np.linalg.inv(chol),
                               rtol=1e-9, atol=1e-9)


@jax.jit
def posterior_at(p, x, y, mask, xq):
    return gp.predict(gp.condition(p, x, y, mask), xq)


def test_posterior_interpolates_noise_free_data():
    theta = THETA.copy()
    theta[-2] = -60.0  # noise = MIN_NOISE
    xq = np.concatenate([X, np.full((1, 3), 30.0)])  # the data, then a point far away
    mean, var = map(np.asarray, posterior_at(params(theta), *padded(8), xq))
    np.testing.assert_allclose(mean[:5], Y, atol=1e-4)
    assert np.all(var[:5] < 1e-5)
    far_mean, far_var = mean[5], var[5]
    assert far_mean == pytest.approx(theta[-1]) and far_var == pytest.approx(math.exp(theta[-3]))


def test_fitted_gp_explains_smooth_data():
    """Fitting raises the objective over the default start and interpolates a smooth function."""
    xp, yp, mask = padded(8, X, gp.standardize(Y))
    fit = jax.jit(gp.fit, static_argnames="steps")
    post = fit(xp, yp, mask, gp.random_starts(np.random.default_rng(0), 3, 4), steps=100)
    theta = np.asarray(post.params.vector())
    fitted = np_lml(theta, y=gp.standardize(Y))
    start = np.asarray(gp.default_params(3).vector())
    assert fitted > np_lml(start, y=gp.standardize(Y)) + 1.0
    mean, _ = jax.jit(gp.predict)(post, X)
    np.testing.assert_allclose(mean, gp.standardize(Y), atol=0.05)


def test_padding_does_not_change_the_posterior_or_the_likelihood():
    """Padded rows change neither predictions nor the likelihood and its gradient (so the fit)."""
    xq = RNG.random((6, 3))
    exact = posterior_at(params(), X, Y, np.ones(5, bool), xq)
    value, grad = jax.jit(gp.log_likelihood_and_grad)(params(), X, Y, np.ones(5, bool))
    for capacity in (8, 16):
        np.testing.assert_allclose(posterior_at(params(), *padded(capacity), xq), exact,
                                   rtol=1e-9, atol=1e-12)
        v, g = jax.jit(gp.log_likelihood_and_grad)(params(), *padded(capacity))
        assert v == pytest.approx(float(value), rel=1e-12)
        np.testing.assert_allclose(g.vector(), grad.vector(), rtol=1e-9, atol=1e-12)


def test_expected_improvement_matches_the_closed_form():
    mean = np.array([0.3, -0.2, 1.5, 4.0, 0.0, 40.0])
    var = np.array([0.04, 1.0, 0.25, 0.01, 1e-4, 1.0])
    best = 0.1
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    closed = sigma * (z * norm.cdf(z) + norm.pdf(z))      # EI for minimization, by hand
    got = jax.jit(gp.log_expected_improvement)(mean, var, best)
    np.testing.assert_allclose(np.exp(got[:5]), closed[:5], rtol=1e-10)
    # far below the best (z = -39.9), where EI underflows: the log against scipy's log_ndtr
    log_phi = -0.5 * z[5] ** 2 - 0.5 * math.log(2 * math.pi)
    tail = math.log(sigma[5]) + log_phi + math.log1p(z[5] * math.exp(log_ndtr(z[5]) - log_phi))
    assert float(got[5]) == pytest.approx(tail, rel=1e-8)


@pytest.mark.parametrize("z", [-50.0, -21.0, -19.0, -3.0, 0.0, 2.5])
def test_log_ei_derivative_matches_finite_differences(z):
    h = 1e-5 * max(1.0, abs(z))
    numeric = (float(gp.log_h(z + h)) - float(gp.log_h(z - h))) / (2 * h)
    assert float(jax.grad(gp.log_h)(z)) == pytest.approx(numeric, rel=1e-6)


def test_maximize_ei_reaches_the_best_point_of_a_fine_grid():
    x = np.array([[0.05], [0.3], [0.55], [0.9]])
    y = gp.standardize((x[:, 0] - 0.42) ** 2)
    theta = np.array([math.log(1 / 0.3 ** 2), 0.0, -60.0, 0.0])
    post = jax.jit(gp.condition)(gp.GPParams.from_vector(jnp.asarray(theta)), *padded(8, x, y))
    best, i_best = float(y.min()), int(y.argmin())
    uniform, steps = gp.candidate_draws(np.random.default_rng(0), 1, 200, 50)
    u, value = jax.jit(gp.maximize_ei)(post, best, jnp.asarray(x[i_best]), uniform, steps)
    grid = np.linspace(0, 1, 20001)[:, None]
    grid_values = jax.jit(lambda p, g: gp.log_expected_improvement(*gp.predict(p, g), best))(
        post, grid)
    assert float(value) >= float(grid_values.max()) - 1e-7
    assert abs(float(u[0]) - grid[int(np.argmax(grid_values)), 0]) < 1e-3


def test_suggest_is_deterministic_and_heads_for_the_minimum():
    x = np.array([[0.05], [0.3], [0.55], [0.9], [0.7]])
    y = (x[:, 0] - 0.42) ** 2
    u = gp.suggest(x, y, seed=[3, 5])
    np.testing.assert_array_equal(u, gp.suggest(x, y, seed=[3, 5]))
    assert u.shape == (1,) and abs(u[0] - 0.42) < 0.1


def test_capacity_is_a_power_of_two_covering_the_data():
    assert [gp.capacity_for(n, 30) for n in (1, 20, 32, 33)] == [32, 32, 32, 64]
    assert gp.capacity_for(3) == 8 and gp.capacity_for(100, 1000) == 128


def test_suggest_rejects_bad_data():
    with pytest.raises(ValueError, match=r"gp.suggest.*`x`.*\(n, d\)"):
        gp.suggest(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"gp.suggest.*`y`.*3"):
        gp.suggest(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"gp.suggest.*finite"):
        gp.suggest(np.zeros((2, 1)), np.array([1.0, np.nan]))


def test_suggest_copes_with_degenerate_data(monkeypatch):
    """Repeated points and equal values still give a point of the cube; a failed fit explores."""
    x = np.array([[0.2], [0.2], [0.2], [0.6], [0.6]])
    u = gp.suggest(x, np.ones(5), seed=0)
    assert np.all(np.isfinite(u)) and 0.0 <= u[0] <= 1.0
    monkeypatch.setattr(gp, "_next_point", lambda *args: (np.full(1, np.nan), np.zeros(4)))
    u = gp.suggest(x, np.arange(5.0), seed=0)
    assert np.all(np.isfinite(u)) and 0.0 <= u[0] <= 1.0
