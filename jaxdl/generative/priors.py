"""Priors for adversarial autoencoders: the distributions codes are matched to.

A prior is any callable ``prior(key, n) -> z`` of shape ``(n, dim)``; the two
here are small frozen dataclasses (hashable, printable) that also carry what
the adversarial autoencoder needs to know about them:

- :func:`gaussian_prior`: ``N(0, I)`` in ``dim`` dimensions.
- :func:`mixture_prior`: an equal-weight mixture of isotropic Gaussians, on
  a circle (2-D) or at given centres. ``prior(key, n, labels)`` draws sample
  ``i`` from component ``labels[i]`` (Makhzani et al.'s "incorporating label
  information": each class gets its own component).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl import data as _data
from jaxdl._typing import Array

__all__ = ["GaussianPrior", "MixturePrior", "gaussian_prior", "mixture_prior"]


@dataclasses.dataclass(frozen=True)
class GaussianPrior:
    """The standard normal ``N(0, I)`` in ``dim`` dimensions (see :func:`gaussian_prior`)."""

    dim: int
    #: Labels select nothing here (a mixture prior has components, this one none).
    components = None

    def __call__(self, key: Array, n: int, labels: Optional[Array] = None) -> Array:
        if labels is not None:
            raise ValueError("gaussian_prior: labels pick a mixture component, but a Gaussian "
                             "prior has none; use mixture_prior(components, ...) to train with "
                             "labels, or fit without y.")
        return jax.random.normal(_key(key), (n, self.dim), jnp.float32)


@dataclasses.dataclass(frozen=True)
class MixturePrior:
    """Equal-weight Gaussians of std ``std`` at ``centers`` (see :func:`mixture_prior`)."""

    centers: tuple[tuple[float, ...], ...]
    std: float

    @property
    def components(self) -> int:
        return len(self.centers)

    @property
    def dim(self) -> int:
        return len(self.centers[0])

    def __call__(self, key: Array, n: int, labels: Optional[Array] = None) -> Array:
        pick, noise = jax.random.split(_key(key))
        if labels is None:
            labels = jax.random.randint(pick, (n,), 0, self.components)
        centers = jnp.asarray(self.centers, jnp.float32)
        eps = jax.random.normal(noise, (n, self.dim), jnp.float32)
        return centers[jnp.asarray(labels).reshape(n)] + self.std * eps


def _key(key: Any) -> Array:
    """A typed key from a typed key or raw uint32 key data (what states carry)."""
    if jnp.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))


def gaussian_prior(dim: int) -> GaussianPrior:
    """The prior ``z ~ N(0, I)`` of ``dim`` dimensions.

    Args:
        dim: the code size, a positive int.

    Returns:
        ``prior(key, n) -> (n, dim)`` float32 samples.

    Example:
        >>> import jax
        >>> prior = gaussian_prior(2)
        >>> prior(jax.random.key(0), 5).shape
        (5, 2)
    """
    return GaussianPrior(_checks.positive_int("gaussian_prior", "dim", dim))


def mixture_prior(components: int, dim: int = 2, radius: float = 4.0, std: float = 0.5,
                  centers: Any = None) -> MixturePrior:
    """An equal-weight mixture of ``components`` Gaussians ``N(c_k, std² I)``.

    Without ``centers`` the components sit at equal angles on a circle of
    ``radius`` (``dim`` must be 2): ``c_k = radius·(cos 2πk/K, sin 2πk/K)``
    (:func:`jaxdl.data.gaussian_mixture_centers`). The defaults (radius 4,
    std 0.5) put ten neighbouring centres ``2·4·sin(π/10) ≈ 2.5``, about five
    stds, apart.

    Args:
        components: the number ``K`` of components, a positive int.
        dim: the code size (2 for a circle).
        radius: the circle's radius, >= 0.
        std: each component's standard deviation, >= 0.
        centers: optional ``(components, dim)`` array of centres instead of the circle.

    Returns:
        ``prior(key, n, labels=None) -> (n, dim)``: with ``labels`` (ints in
        ``[0, K)``, shape ``(n,)``) sample ``i`` comes from component
        ``labels[i]``, otherwise each sample from a uniformly drawn component.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> prior = mixture_prior(4, radius=2.0, std=0.0)
        >>> prior(jax.random.key(0), 2, labels=jnp.array([1, 2])).round(4).tolist()
        [[0.0, 2.0], [-2.0, 0.0]]
    """
    owner = "mixture_prior"
    components = _checks.positive_int(owner, "components", components)
    dim = _checks.positive_int(owner, "dim", dim)
    std = _checks.non_negative_float(owner, "std", std)
    if centers is None:
        if dim != 2:
            raise ValueError(f"{owner}: components on a circle need dim=2, got dim={dim}; "
                             f"pass centers=<array of shape ({components}, {dim})> for other "
                             f"code sizes.")
        centers = _data.gaussian_mixture_centers(components, radius)
    centers = np.asarray(centers, dtype=np.float64)
    if centers.shape != (components, dim):
        raise ValueError(f"{owner}: centers must have shape (components, dim) = "
                         f"({components}, {dim}), got {centers.shape}. Give one row of "
                         f"{dim} coordinates per component.")
    if not np.isfinite(centers).all():
        raise ValueError(f"{owner}: centers must be finite, got non-finite values in "
                         f"{centers.tolist()}.")
    return MixturePrior(tuple(tuple(float(v) for v in row) for row in centers), std)
