"""Sample-quality measures for generative models: mode coverage and MMD.

Both work on host arrays (numpy or JAX, any float dtype) and compute in
float64, so they are a reference, not a training-time loss. Both return
Python numbers.

- :func:`mode_coverage`: for samples of a known mixture (the 8-Gaussian ring,
  the 5x5 grid), how many modes were reached, how many samples are of high
  quality, and how evenly they spread over the modes (the convention of the
  Unrolled-GAN, VEEGAN and PacGAN papers).
- :func:`mmd`: the squared maximum mean discrepancy between two sample sets
  with a Gaussian (RBF) kernel, e.g. an autoencoder's codes against its prior.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxdl import _checks

__all__ = ["mode_coverage", "mmd", "median_bandwidth"]

#: Row block of the kernel sums: bounds the memory of :func:`mmd` to a
#: (block x m) float64 matrix whatever the sample sizes.
_BLOCK = 1024
#: Points of the pooled sample the median heuristic looks at (a fixed-seed
#: subsample above this size keeps it at ~8M pairs).
_MEDIAN_POINTS = 4096


def _points(owner: str, name: str, x: Any, dim: int | None = None) -> np.ndarray:
    """``x`` as a float64 ``(n, d)`` array with ``n >= 1`` (and ``d == dim`` if given)."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{owner}: `{name}` must be a real-valued array, got dtype {x.dtype}.")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{owner}: `{name}` must be a non-empty 2-D array (points, features), "
                         f"got shape {x.shape}. Flatten images first: x.reshape(len(x), -1).")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{owner}: `{name}` must have {dim} features per point (as the first "
                         f"set), got shape {x.shape}.")
    return x.astype(np.float64)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a_i - b_j|²`` as an ``(len(a), len(b))`` float64 matrix (never negative)."""
    d = (np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :]) - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def mode_coverage(samples: Any, centers: Any, std: float, *,
                  min_count: int = 1) -> tuple[int, float, float]:
    """Modes reached, share of high-quality samples, reverse KL of the mode histogram.

    The rule (Metz et al. 2017, Srivastava et al. 2017, Lin et al. 2018):

    - each sample belongs to its nearest centre (ties: the lower index);
    - a sample is **high quality** when it lies within ``3 * std`` (Euclidean
      distance, inclusive) of that centre;
    - a centre is **covered** when at least ``min_count`` high-quality samples
      belong to it (1 by default, as in VEEGAN; PacGAN's ring and grid
      tables use 20 of 2,500 samples);
    - ``reverse_kl = KL(q || u) = sum_k q_k log(K q_k)``, with ``q`` the
      histogram of the high-quality samples over the ``K`` centres and ``u``
      uniform. Empty centres contribute ``0 log 0 = 0``, so a generator that
      puts all its good samples on one mode scores the maximum ``log K`` and a
      perfectly even one scores 0. With no high-quality sample at all ``q``
      does not exist and ``reverse_kl`` is ``inf``.

    Args:
        samples: ``(n, d)`` generated points.
        centers: ``(K, d)`` the mixture's centres.
        std: the mixture components' standard deviation, > 0.
        min_count: high-quality samples a centre needs to count as covered.

    Returns:
        ``(modes, hq_fraction, reverse_kl)``: an int in ``0..K``, a float in
        ``[0, 1]``, a float in ``[0, log K]`` (or ``inf``).

    Example:
        >>> centers = [[0.0, 0.0], [10.0, 0.0]]
        >>> samples = [[0.1, 0.0], [-0.1, 0.2], [10.0, 0.05], [5.0, 5.0]]
        >>> modes, hq, kl = mode_coverage(samples, centers, std=0.1)
        >>> modes, hq, round(kl, 6)   # q = (2/3, 1/3): KL = sum q log(2q)
        (2, 0.75, 0.056633)
    """
    owner = "mode_coverage"
    samples = _points(owner, "samples", samples)
    centers = _points(owner, "centers", centers, samples.shape[1])
    std = _checks.non_negative_float(owner, "std", std)
    if std == 0.0:
        raise ValueError(f"{owner}: `std` must be > 0 (the mixture components' standard "
                         f"deviation), got {std}.")
    min_count = _checks.positive_int(owner, "min_count", min_count)
    d2 = _squared_distances(samples, centers)
    nearest = np.argmin(d2, axis=1)
    good = d2[np.arange(len(samples)), nearest] <= (3.0 * std) ** 2
    counts = np.bincount(nearest[good], minlength=len(centers))
    modes = int(np.sum(counts >= min_count))
    if counts.sum() == 0:
        return modes, 0.0, float("inf")
    q = counts[counts > 0] / counts.sum()
    return modes, float(good.mean()), float(np.sum(q * np.log(len(centers) * q)))


def median_bandwidth(a: Any, b: Any) -> float:
    """The median heuristic: the median Euclidean distance between pooled points.

    ``median{|z_i - z_j| : i < j}`` over ``z = a ∪ b`` (every pair once, no
    point with itself). Above 4,096 pooled points, the median is taken over a
    fixed-seed subsample of 4,096 of them, so the result is deterministic.

    Example:
        >>> median_bandwidth([[0.0], [1.0]], [[3.0]])   # distances 1, 3, 2
        2.0
    """
    a = _points("median_bandwidth", "a", a)
    z = np.concatenate([a, _points("median_bandwidth", "b", b, a.shape[1])])
    if len(z) < 2:
        raise ValueError("median_bandwidth: needs at least two points in a and b together, "
                         f"got {len(z)}.")
    if len(z) > _MEDIAN_POINTS:
        z = z[np.random.default_rng(0).choice(len(z), _MEDIAN_POINTS, replace=False)]
    upper = np.triu_indices(len(z), k=1)
    return float(np.median(np.sqrt(_squared_distances(z, z)[upper])))


def _kernel_sum(a: np.ndarray, b: np.ndarray, gamma: float, skip_diagonal: bool) -> float:
    """``sum_ij exp(-gamma |a_i - b_j|²)``, by row blocks; without ``i == j`` if asked."""
    total = 0.0
    for start in range(0, len(a), _BLOCK):
        k = np.exp(-gamma * _squared_distances(a[start:start + _BLOCK], b))
        total += k.sum()
        if skip_diagonal:
            total -= np.trace(k, offset=start)
    return total


def mmd(a: Any, b: Any, bandwidth: float | str = 1.0, *, unbiased: bool = False) -> float:
    """The squared maximum mean discrepancy of two sample sets, Gaussian kernel.

    With ``k(x, y) = exp(-|x - y|² / (2 bandwidth²))``, ``a`` of ``n`` points
    and ``b`` of ``m``::

        biased   (default) = mean_ij k(a_i, a_j) + mean_ij k(b_i, b_j) - 2 mean_ij k(a_i, b_j)
        unbiased           = same, the first two means over i != j only

    The default (Gretton et al. 2012, the V-statistic) is the exact squared
    RKHS distance between the two empirical distributions: never negative,
    0 for identical sets, but above the population value by about
    ``(1 - E k) (1/n + 1/m)``, so compare sets of equal sizes. ``unbiased=True``
    (their ``MMD²_u``) averages to the population value but may be slightly
    negative when the distributions agree.

    ``bandwidth="median"`` uses :func:`median_bandwidth` of the pooled sets
    (the median heuristic; a fixed bandwidth is better when comparing several
    models against one reference, since the median moves with each model).

    Args:
        a: ``(n, d)`` points; images are flattened by the caller.
        b: ``(m, d)`` points.
        bandwidth: the kernel's length scale, > 0, or ``"median"``.
        unbiased: drop the ``i == j`` terms of the within-set means.

    Returns:
        The squared MMD as a Python float.

    Example:
        >>> round(mmd([[0.0], [1.0]], [[0.0], [1.0]]), 12)
        0.0
        >>> round(mmd([[0.0]], [[1.0]], bandwidth=1.0), 6)   # 2 - 2 exp(-1/2)
        0.786939
    """
    owner = "mmd"
    a = _points(owner, "a", a)
    b = _points(owner, "b", b, a.shape[1])
    if isinstance(bandwidth, str) and bandwidth == "median":
        bandwidth = median_bandwidth(a, b)
    elif isinstance(bandwidth, str) or not _checks.is_real(bandwidth):
        raise TypeError(f"{owner}: `bandwidth` must be a positive number or 'median', got "
                        f"{bandwidth!r}.")
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"{owner}: `bandwidth` must be a finite number > 0, got {bandwidth} "
                         f"(the median heuristic is 0 when all points coincide: pass a "
                         f"bandwidth).")
    if unbiased and min(len(a), len(b)) < 2:
        raise ValueError(f"{owner}: unbiased=True needs at least 2 points per set, got "
                         f"{len(a)} and {len(b)}.")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    n, m = len(a), len(b)
    within = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    return float(_kernel_sum(a, a, gamma, unbiased) / within[0]
                 + _kernel_sum(b, b, gamma, unbiased) / within[1]
                 - 2.0 * _kernel_sum(a, b, gamma, False) / (n * m))
