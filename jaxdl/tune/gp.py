"""A Gaussian process on the unit cube and expected improvement, in JAX, jitted.

The surrogate behind :func:`jaxdl.tune.bayesian_search`. Inputs ``x`` lie in
``[0, 1]^d`` (a search space's unit-cube encoding); targets ``y`` are
standardized (zero mean, unit variance) and minimized.

Model::

    f ~ GP(c, k),   y_i = f(x_i) + eps_i,   eps_i ~ N(0, noise)
    k(a, b) = s * m52(r2),   r2 = sum_j (a_j - b_j)^2 / l_j^2       (ARD: one l_j per column)
    m52(r2) = (1 + sqrt(5 r2) + 5 r2 / 3) * exp(-sqrt(5 r2))        (Matern-5/2)

The hyperparameters (``l``, ``s``, ``noise >= MIN_NOISE``, the constant mean
``c``) are log-parametrized and fitted by maximizing the log marginal
likelihood plus mild log priors (those of Optuna's ``GPSampler``: a penalty on
very short and very long length scales, Gamma priors on ``s`` and ``noise``),
with Adam from several starts side by side (``vmap``). Expected improvement
below the best observed value is computed in log space (stable far from the
data), scored on many random candidates and on points around the incumbent,
and the best few are refined by projected gradient ascent inside the cube.

Fixed shapes: the data are padded to a ``capacity`` with a boolean ``mask``.
A padded row has unit prior variance, no covariance with anything and a zero
target, so it adds nothing to the likelihood or the posterior; a whole search
therefore compiles one program per capacity (see :func:`capacity_for`). The
random draws (fitting starts, candidates) are made on the host with numpy, so
equal seeds give equal suggestions and the program holds no random-number
generator.

Categorical columns (a one-hot block) are searched as their continuous
relaxation inside the cube; the caller decodes by argmax (``decode_config``)
and feeds the GP the re-encoded, one-hot point. Integers are rounded the same
way.

Speed: on CPU, LAPACK triangular solves against a matrix are slow (they may
wait on BLAS threads), so the factorization's inverse is built from matrix
products (:func:`triangular_inverse`) and the likelihood's gradient is written
out by hand (:func:`log_likelihood_and_grad`), which keeps the compiled
program small too.

Precision: everything runs in float64 (inside ``jax.enable_x64``), as a GP
with noise near ``1e-6`` needs; the caller's own JAX setting is left as is.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.1], [0.4], [0.9]]); y = np.array([1.0, -0.5, 2.0])
    >>> u = suggest(x, y, seed=0)
    >>> u.shape, bool(np.all((u >= 0) & (u <= 1)))
    ((1,), True)
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: The smallest noise variance (of standardized targets): keeps the Cholesky factor stable.
MIN_NOISE = 1e-6
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_TAIL = -20.0  # below, log h(z) comes from its asymptotic series


class GPParams(NamedTuple):
    """Hyperparameters in the unconstrained (log) parametrization.

    Attributes:
        log_inv_sq_length: ``log(1 / l_j^2)``, shape ``(d,)``.
        log_signal: ``log(s)``, the prior variance of ``f``.
        log_noise: ``log(noise - MIN_NOISE)``.
        mean: the constant prior mean ``c``.
    """

    log_inv_sq_length: jax.Array
    log_signal: jax.Array
    log_noise: jax.Array
    mean: jax.Array

    @property
    def length_scales(self):
        return jnp.exp(-0.5 * self.log_inv_sq_length)

    @property
    def signal(self):
        return jnp.exp(self.log_signal)

    @property
    def noise(self):
        return MIN_NOISE + jnp.exp(self.log_noise)

    def vector(self):
        """The fields as one flat vector ``[log_inv_sq_length..., log_signal, log_noise, mean]``."""
        return jnp.concatenate([self.log_inv_sq_length, jnp.stack(self[1:])])

    @classmethod
    def from_vector(cls, theta):
        """Inverse of :meth:`vector`."""
        return cls(theta[:-3], theta[-3], theta[-2], theta[-1])


def default_params(dim: int) -> GPParams:
    """Length scales 1, signal variance 1, noise 1e-3, mean 0: the first fitting start."""
    return GPParams(jnp.zeros(dim), jnp.zeros(()), jnp.full((), math.log(1e-3)), jnp.zeros(()))


@jax.custom_jvp
def matern52(sq_dist):
    """Matern-5/2 correlation of a squared (scaled) distance ``r2 >= 0``.

    ``(1 + sqrt(5 r2) + 5 r2 / 3) exp(-sqrt(5 r2))``; its derivative in ``r2``,
    ``-5/6 (1 + sqrt(5 r2)) exp(-sqrt(5 r2))``, is finite at ``r2 = 0``
    (written out, as autodiff of the square root would give ``0 * inf``).

    >>> float(matern52(0.0)), round(float(matern52(1.0)), 6)
    (1.0, 0.523994)
    """
    s = jnp.sqrt(5.0 * sq_dist)
    return (1.0 + s + 5.0 / 3.0 * sq_dist) * jnp.exp(-s)


@matern52.defjvp
def _matern52_jvp(primals, tangents):
    (r2,), (dr2,) = primals, tangents
    s = jnp.sqrt(5.0 * r2)
    e = jnp.exp(-s)
    return (1.0 + s + 5.0 / 3.0 * r2) * e, -5.0 / 6.0 * (1.0 + s) * e * dr2


def kernel_matrix(params: GPParams, x1, x2):
    """``k(x1_i, x2_j)``: shape ``(n1, n2)`` for ``x1`` of shape ``(n1, d)``, ``x2`` ``(n2, d)``."""
    diff = x1[:, None, :] - x2[None, :, :]
    r2 = jnp.sum(diff * diff * jnp.exp(params.log_inv_sq_length), axis=-1)
    return params.signal * matern52(r2)


def _covariance(params: GPParams, x, mask):
    """``K + noise I`` over the rows in ``mask``; the identity on padded rows."""
    pair = mask[:, None] & mask[None, :]
    k = jnp.where(pair, kernel_matrix(params, x, x), 0.0)
    eye = jnp.eye(x.shape[0], dtype=k.dtype)
    return k + eye * jnp.where(mask, params.noise, 1.0)[:, None]


def log_marginal_likelihood(params: GPParams, x, y, mask):
    """``log p(y | x, params)`` over the rows in ``mask`` (padded rows count for nothing).

    ``-1/2 r^T C^-1 r - sum log diag(L) - n/2 log(2 pi)`` with ``r = y - c``,
    ``C = K + noise I = L L^T`` and ``n`` the number of real rows. (The plain
    form, with a triangular solve; :func:`log_likelihood_and_grad` is what
    fitting runs.)
    """
    chol = jnp.linalg.cholesky(_covariance(params, x, mask))
    r = jnp.where(mask, y - params.mean, 0.0)
    w = jax.scipy.linalg.solve_triangular(chol, r, lower=True)
    n = jnp.sum(mask.astype(w.dtype))
    return -0.5 * w @ w - jnp.sum(jnp.log(jnp.diagonal(chol))) - n * _LOG_SQRT_2PI


def log_prior(params: GPParams):
    """Mild log priors (up to constants), as Optuna's ``GPSampler``.

    ``-(0.1 / q + 0.1 q)`` for each inverse squared length scale ``q`` (neither
    far shorter than the data spacing nor far longer than the cube),
    ``Gamma(2, 1)`` on the signal variance, ``Gamma(1.1, 30)`` on the noise and
    ``N(0, 1)`` on the constant mean.
    """
    q = jnp.exp(params.log_inv_sq_length)
    s, noise = params.signal, params.noise
    return (-jnp.sum(0.1 / q + 0.1 * q) + (jnp.log(s) - s)
            + (0.1 * jnp.log(noise) - 30.0 * noise) - 0.5 * params.mean ** 2)


def log_prior_and_grad(theta):
    """:func:`log_prior` at the vector ``theta`` (see :meth:`GPParams.vector`) and its gradient."""
    p = GPParams.from_vector(theta)
    q, s, noise = jnp.exp(p.log_inv_sq_length), p.signal, p.noise
    grad = jnp.concatenate([0.1 / q - 0.1 * q,
                            jnp.stack([1.0 - s, (0.1 / noise - 30.0) * (noise - MIN_NOISE),
                                       -p.mean])])
    return log_prior(p), grad


def random_starts(rng: np.random.Generator, dim: int, n_starts: int) -> np.ndarray:
    """``(n_starts, dim + 3)`` fitting starts (rows like :meth:`GPParams.vector`).

    The first is :func:`default_params`.

    Random starts: length scales ``exp(-u/2)``, ``u ~ U(-2, 4)`` (about 0.14 to
    2.7), signal variance ``exp(U(-1, 1))``, noise ``exp(U(-12, -3))``, mean 0.
    """
    starts = np.concatenate([rng.uniform(-2.0, 4.0, (n_starts, dim)),
                             rng.uniform(-1.0, 1.0, (n_starts, 1)),
                             rng.uniform(-12.0, -3.0, (n_starts, 1)),
                             np.zeros((n_starts, 1))], axis=1)
    starts[0] = np.concatenate([np.zeros(dim), [0.0, math.log(1e-3), 0.0]])  # default_params
    return starts


def diagonal_blocks(a, size: int):
    """The ``(n // size, size, size)`` blocks on the diagonal of a square ``a`` (``size | n``).

    Gather-free: element ``(k, r, c)`` sits at flat offset ``k (size n + size) +
    r n + c``, so padding the flattened matrix by ``n`` and reshaping lines the
    blocks up for plain slices.

    >>> diagonal_blocks(jnp.arange(16.0).reshape(4, 4), 2).tolist()
    [[[0.0, 1.0], [4.0, 5.0]], [[10.0, 11.0], [14.0, 15.0]]]
    """
    n = a.shape[0]
    m = n // size
    flat = jnp.concatenate([a.reshape(-1), jnp.zeros(n, a.dtype)])
    return flat.reshape(m, size * n + size)[:, :size * n].reshape(m, size, n)[:, :, :size]


def triangular_inverse(chol):
    """``L^-1`` of a lower-triangular ``(n, n)`` matrix, by block doubling with matrix products.

    The inverses of the diagonal blocks of size ``b`` give those of size ``2b``
    as ``[[A, 0], [B, C]]^-1 = [[A^-1, 0], [-C^-1 B A^-1, C^-1]]``, all blocks
    of a size at once, from ``1 / L_ii`` up (``n`` is padded with the identity
    to a power of two). Small batched products only: on CPU this beats a
    LAPACK solve against the identity many times over, and it batches well.

    >>> L = jnp.array([[2.0, 0.0], [1.0, 4.0]])
    >>> triangular_inverse(L).tolist()
    [[0.5, 0.0], [-0.125, 0.25]]
    """
    n = chol.shape[0]
    size = 1 << max(n - 1, 0).bit_length()
    if size != n:
        chol = jnp.eye(size, dtype=chol.dtype).at[:n, :n].set(chol)
    blocks = (1.0 / jnp.diagonal(chol))[:, None, None]
    b = 1
    while b < size:
        pairs = blocks.reshape(size // (2 * b), 2, b, b)
        first, second = pairs[:, 0], pairs[:, 1]
        lower = -(second @ diagonal_blocks(chol, 2 * b)[:, b:, :b] @ first)
        blocks = jnp.concatenate([jnp.concatenate([first, jnp.zeros_like(first)], axis=2),
                                  jnp.concatenate([lower, second], axis=2)], axis=1)
        b *= 2
    return blocks[0, :n, :n]


def _factor(theta, diff2, y, mask):
    """The pieces of the likelihood at ``theta`` (a :meth:`GPParams.vector`)."""
    p = GPParams.from_vector(theta)
    q = jnp.exp(p.log_inv_sq_length)
    r2 = diff2 @ q
    pair = mask[:, None] & mask[None, :]
    root = jnp.sqrt(5.0 * r2)
    decay = jnp.exp(-root)
    k = jnp.where(pair, p.signal * (1.0 + root + 5.0 / 3.0 * r2) * decay, 0.0)
    dk_dr2 = jnp.where(pair, p.signal * (-5.0 / 6.0) * (1.0 + root) * decay, 0.0)
    eye = jnp.eye(y.shape[0], dtype=k.dtype)
    chol = jnp.linalg.cholesky(k + eye * jnp.where(mask, p.noise, 1.0)[:, None])
    chol_inv = triangular_inverse(chol)
    r = jnp.where(mask, y - p.mean, 0.0)
    alpha = chol_inv.T @ (chol_inv @ r)
    value = (-0.5 * r @ alpha - jnp.sum(jnp.log(jnp.diagonal(chol)))
             - jnp.sum(mask.astype(r.dtype)) * _LOG_SQRT_2PI)
    return value, (p, q, pair, k, dk_dr2, chol_inv, alpha)


def _value_and_grad(theta, diff2, y, mask):
    """``(log likelihood, its gradient in theta, L^-1, alpha)``; see log_likelihood_and_grad."""
    value, (p, q, pair, k, dk_dr2, chol_inv, alpha) = _factor(theta, diff2, y, mask)
    w = jnp.where(pair, alpha[:, None] * alpha[None, :] - chol_inv.T @ chol_inv, 0.0)
    grad = jnp.concatenate([0.5 * q * jnp.einsum("ij,ijd->d", w * dk_dr2, diff2),
                            jnp.stack([0.5 * jnp.sum(w * k),
                                       0.5 * jnp.exp(p.log_noise) * jnp.trace(w),
                                       jnp.sum(alpha)])])
    return value, grad, chol_inv, alpha


def log_likelihood_and_grad(params: GPParams, x, y, mask):
    """:func:`log_marginal_likelihood` and its gradient in ``params``, worked out by hand.

    With ``W = alpha alpha^T - C^-1`` (``alpha = C^-1 (y - c)``), each
    parameter ``t`` of the covariance has ``d/dt = 1/2 sum(W * dC/dt)``, and
    ``d/dc = sum(alpha)``. One Cholesky factor and its inverse (products only,
    :func:`triangular_inverse`) per call: on CPU, several times faster than
    autodiff through the factorization, and a much smaller program.

    Returns:
        ``(value, grad)``, ``grad`` a :class:`GPParams`.
    """
    diff2 = jnp.square(x[:, None, :] - x[None, :, :])
    value, grad, _, _ = _value_and_grad(params.vector(), diff2, y, mask)
    return value, GPParams.from_vector(grad)


class Posterior(NamedTuple):
    """What prediction needs: the data, ``L^-1`` (``L L^T = C``) and ``C^-1 (y - c)``."""

    params: GPParams
    x: jax.Array
    mask: jax.Array
    chol_inv: jax.Array
    alpha: jax.Array


def condition(params: GPParams, x, y, mask) -> Posterior:
    """The GP with hyperparameters ``params`` conditioned on the rows of ``(x, y)`` in ``mask``."""
    diff2 = jnp.square(x[:, None, :] - x[None, :, :])
    _, (_, _, _, _, _, chol_inv, alpha) = _factor(params.vector(), diff2, y, mask)
    return Posterior(params, x, mask, chol_inv, alpha)


def fit(x, y, mask, starts, steps=200, learning_rate: float = 0.1) -> Posterior:
    """The GP conditioned on the data, its hyperparameters maximizing likelihood + prior.

    Adam on the log parameters from all ``starts`` at once (``vmap``), the
    step size decaying tenfold over ``steps``; the start with the best final
    objective wins. Its factorization comes with it (no second one).

    Args:
        x: ``(capacity, d)`` inputs in the unit cube; y: ``(capacity,)``
            standardized targets; mask: ``(capacity,)`` bool, the real rows.
        starts: ``(n_starts, d + 3)`` parameter vectors (:func:`random_starts`).
        steps: Adam steps, an int or a traced integer (one program for any).

    Returns:
        Posterior (its ``params`` the fitted hyperparameters).
    """
    diff2 = jnp.square(x[:, None, :] - x[None, :, :])

    def step(i, carry):
        theta, m, v, _ = carry
        t = (i + 1).astype(y.dtype)
        value, grad, chol_inv, alpha = _value_and_grad(theta, diff2, y, mask)
        prior, g_prior = log_prior_and_grad(theta)
        g = -(grad + g_prior)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lr = learning_rate * 0.1 ** (t / jnp.asarray(steps, y.dtype))
        m_hat, v_hat = m / (1.0 - 0.9 ** t), v / (1.0 - 0.999 ** t)
        new = theta - lr * m_hat / (jnp.sqrt(v_hat) + 1e-8)
        return new, m, v, (theta, value + prior, chol_inv, alpha)

    def run(theta0):
        n = y.shape[0]
        init = (theta0, jnp.zeros_like(theta0), jnp.zeros_like(theta0),
                (theta0, -jnp.inf, jnp.zeros((n, n), y.dtype), jnp.zeros(n, y.dtype)))
        return jax.lax.fori_loop(0, steps, step, init)[3]

    thetas, values, chol_invs, alphas = jax.vmap(run)(jnp.asarray(starts, y.dtype))
    best = jnp.argmax(jnp.where(jnp.isfinite(values), values, -jnp.inf))
    return Posterior(GPParams.from_vector(thetas[best]), x, mask, chol_invs[best], alphas[best])


def predict(post: Posterior, xq):
    """Posterior mean and variance of ``f`` at ``xq`` (shape ``(m, d)``): two ``(m,)`` arrays.

    ``mean = c + k_q^T C^-1 (y - c)``, ``var = s - |L^-1 k_q|^2`` (clipped at 0).
    """
    kq = jnp.where(post.mask[None, :], kernel_matrix(post.params, xq, post.x), 0.0)
    mean = post.params.mean + kq @ post.alpha
    v = kq @ post.chol_inv.T
    var = post.params.signal - jnp.sum(v * v, axis=1)
    return mean, jnp.maximum(var, 0.0)


def _log_h_and_slope(z):
    """``(log h(z), h'(z) / h(z))`` with ``h(z) = z Phi(z) + phi(z)``, ``h' = Phi``.

    Direct for ``z >= -20`` (float64 loses at most 3 digits to the cancellation
    there); below, the asymptotic series ``h = phi / z^2 (1 - 3/z^2 + 15/z^4 -
    105/z^6)`` and ``Phi = phi / |z| (1 - 1/z^2 + 3/z^4 - 15/z^6)``, whose next
    terms are below 4e-8 relative. One ``erfc`` in all, so a small program.
    """
    zd = jnp.maximum(z, _TAIL)
    cdf = 0.5 * jax.lax.erfc(-zd * _SQRT_HALF)
    h = zd * cdf + jnp.exp(-0.5 * zd * zd - _LOG_SQRT_2PI)
    za = jnp.minimum(z, _TAIL)
    w = 1.0 / (za * za)
    h_series = 1.0 - 3.0 * w + 15.0 * w * w - 105.0 * w ** 3
    tail = -0.5 * za * za - _LOG_SQRT_2PI + jnp.log(w * h_series)
    tail_slope = -za * (1.0 - w + 3.0 * w * w - 15.0 * w ** 3) / h_series
    direct = z >= _TAIL
    return jnp.where(direct, jnp.log(h), tail), jnp.where(direct, cdf / h, tail_slope)


@jax.custom_jvp
def log_h(z):
    """``log(z Phi(z) + phi(z))``, stable for every ``z`` (very negative ones included).

    Its derivative ``Phi(z) / h(z)`` is written out and shares the terms of
    the value (see ``_log_h_and_slope``).
    """
    return _log_h_and_slope(z)[0]


@log_h.defjvp
def _log_h_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    value, slope = _log_h_and_slope(z)
    return value, slope * dz


def log_expected_improvement(mean, var, best):
    """``log E[max(best - f, 0)]`` for ``f ~ N(mean, var)`` (minimization).

    ``EI = sigma (z Phi(z) + phi(z))`` with ``z = (best - mean) / sigma``.
    """
    sigma = jnp.sqrt(jnp.maximum(var, 1e-30))
    return jnp.log(sigma) + log_h((best - mean) / sigma)


def candidate_draws(rng: np.random.Generator, dim: int, n_random: int = 1000,
                    n_local: int = 200):
    """Host draws for :func:`maximize_ei`: ``(uniform, local_steps)``.

    ``uniform``: ``(n_random, dim)`` points of the cube; ``local_steps``:
    ``(n_local, dim)`` Gaussian steps whose sizes spread log-uniformly from
    1e-3 to 0.2 (in units of the length scales).
    """
    sizes = np.exp(rng.uniform(math.log(1e-3), math.log(0.2), (n_local, 1)))
    return rng.random((n_random, dim)), sizes * rng.standard_normal((n_local, dim))


def maximize_ei(post: Posterior, best, best_x, uniform, local_steps, n_refine: int = 10,
                steps: int = 100, learning_rate: float = 0.01):
    """The point of the cube with the largest expected improvement below ``best``.

    Scores the ``uniform`` candidates, the incumbent ``best_x`` and the points
    ``best_x + local_steps * length_scales`` (clipped into the cube), then
    refines the best ``n_refine`` by projected Adam ascent on log-EI (each
    step clipped back into ``[0, 1]^d``), keeping each one's best point. See
    :func:`candidate_draws`.

    Returns:
        ``(x, log_ei)``: a ``(d,)`` point and its log-EI.
    """
    def score(xq):
        mean, var = predict(post, xq)
        return log_expected_improvement(mean, var, best)

    local = jnp.clip(best_x + local_steps * post.params.length_scales, 0.0, 1.0)
    cands = jnp.concatenate([uniform, local, best_x[None]], axis=0)
    values0, top = jax.lax.top_k(score(cands), n_refine)
    x0 = cands[top]
    def total(xs):
        values = score(xs)
        return jnp.sum(values), values

    def step(carry, t):
        xs, m, v, best_xs, best_values = carry
        g, values = jax.grad(total, has_aux=True)(xs)
        better = values > best_values
        best_xs = jnp.where(better[:, None], xs, best_xs)
        best_values = jnp.where(better, values, best_values)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        move = (m / (1.0 - 0.9 ** t)) / (jnp.sqrt(v / (1.0 - 0.999 ** t)) + 1e-12)
        return (jnp.clip(xs + learning_rate * move, 0.0, 1.0), m, v, best_xs, best_values), None

    ts = jnp.arange(1, steps + 1, dtype=x0.dtype)
    zeros = jnp.zeros_like(x0)
    _, _, _, xs, values = jax.lax.scan(step, (x0, zeros, zeros, x0, values0), ts)[0]
    i = jnp.argmax(values)
    return xs[i], values[i]


#: XLA options for the GP's program, which is small and compiled once per search: the
#: classic fusion emitters and LLVM -O1 halve its compile time on CPU and run it as fast.
COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


@functools.partial(jax.jit, static_argnames="ei_steps", compiler_options=COMPILER_OPTIONS)
def _next_point(x, y, mask, starts, uniform, local_steps, fit_steps, ei_steps):
    """Fit and maximize EI: one program per shape (capacity, d, number of draws)."""
    post = fit(x, y, mask, starts, steps=fit_steps)
    masked_y = jnp.where(mask, y, jnp.inf)
    i_best = jnp.argmin(masked_y)
    u, _ = maximize_ei(post, masked_y[i_best], x[i_best], uniform, local_steps, steps=ei_steps)
    return u, post.params.vector()


def capacity_for(n: int, n_trials: int = 0) -> int:
    """The padded size for ``n`` data points: a power of two, at least ``min(n_trials, 64)``.

    A search of up to 64 trials thus compiles one program; longer ones one
    more per doubling.

    >>> capacity_for(5, 30), capacity_for(31, 30), capacity_for(70, 200)
    (32, 32, 128)
    """
    need = max(n, min(n_trials, 64), 8)
    return 1 << (need - 1).bit_length()


def standardize(y):
    """``(y - mean) / std`` (std floored at 1e-12, so equal values give zeros)."""
    y = np.asarray(y, dtype=np.float64)
    return (y - y.mean()) / max(float(y.std()), 1e-12)


def _check_data(x, y):
    """``x`` and ``y`` as float64 arrays, or a ValueError that says what is wrong."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"gp.suggest: `x` must have shape (n, d) with n >= 1 (one row per "
                         f"observed point), got shape {x.shape}; reshape a 1-D input "
                         f"with x.reshape(-1, 1).")
    if y.shape != (x.shape[0],):
        raise ValueError(f"gp.suggest: `y` must hold one value per row of `x`, shape "
                         f"({x.shape[0]},), got shape {y.shape}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("gp.suggest: `x` and `y` must be finite; drop or replace the NaN/inf "
                         "observations (bayesian_search gives failed trials the worst value).")
    return x, y


#: Adam steps fitting the hyperparameters from scratch, and from the previous trial's fit.
COLD_STEPS, WARM_STEPS = 200, 60


def propose(x, y, seed=0, *, init=None, capacity=None, n_starts: int = 8, n_random: int = 1000,
            n_local: int = 200, fit_steps=None, ei_steps: int = 100):
    """The next point to evaluate, to minimize ``y``, and the fitted hyperparameters.

    Args:
        x: ``(n, d)`` observed inputs in the unit cube (``n >= 1``).
        y: ``(n,)`` observed values (any scale; standardized here).
        seed: an int or a sequence of ints (e.g. ``[seed, trial_index]``)
            seeding the fitting starts and the candidates: equal arguments give
            equal suggestions.
        init: a ``theta`` this function returned for the data minus the
            latest point(s): it replaces the last random start and the fit
            shortens to ``WARM_STEPS`` (from ``COLD_STEPS``), as the optimum
            moves little when one point is added. ``None`` fits from scratch.
        capacity: the padded size (default :func:`capacity_for` ``(n)``).
        n_starts, n_random, n_local: fitting starts, uniform candidates and
            candidates around the incumbent.
        fit_steps, ei_steps: Adam steps fitting the hyperparameters (default
            from ``init``; any number runs in the same compiled program) and
            refining the candidates.

    Returns:
        ``(u, theta)``: a ``(d,)`` numpy point in ``[0, 1]`` and the fitted
        :meth:`GPParams.vector` as numpy.
    """
    x, y = _check_data(x, y)
    n, d = x.shape
    capacity = capacity or capacity_for(n)
    xp = np.zeros((capacity, d))
    xp[:n] = x
    yp = np.zeros(capacity)
    yp[:n] = standardize(y)
    mask = np.arange(capacity) < n
    rng = np.random.default_rng(seed)
    starts = random_starts(rng, d, n_starts)
    uniform, local_steps = candidate_draws(rng, d, n_random, n_local)
    if init is not None:
        starts[-1] = init
    steps = fit_steps or (COLD_STEPS if init is None else WARM_STEPS)
    with jax.enable_x64(True):
        u, theta = _next_point(xp, yp, mask, starts, uniform, local_steps, np.int64(steps),
                               ei_steps)
    u = np.asarray(u)
    if not np.all(np.isfinite(u)):  # every fit failed (degenerate data): explore instead
        u = uniform[0]
    return np.clip(u, 0.0, 1.0), np.asarray(theta)


def suggest(x, y, seed=0, **kwargs):
    """The next point to evaluate, to minimize ``y``: :func:`propose`'s point alone.

    A ``(d,)`` numpy array in ``[0, 1]``; equal arguments give equal points.
    """
    return propose(x, y, seed, **kwargs)[0]
