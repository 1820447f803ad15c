"""The adversarial objectives of GANs and adversarial autoencoders, from logits.

Each objective is a pair of per-example losses on the discriminator's raw
outputs (logits, or a critic's scores): ``discriminator(real, fake)``, which
the discriminator minimizes, and ``generator(fake)``, which the generator
minimizes. With ``p = sigmoid(logit)`` the probability that a sample is real:

=================  ==========================================  ==================
name               discriminator                               generator
=================  ==========================================  ==================
``minimax``        ``-log p(real) - log(1 - p(fake))``         ``log(1 - p(fake))``
``non_saturating`` same                                        ``-log p(fake)``
``least_squares``  ``((real - 1)² + fake²) / 2``               ``(fake - 1)² / 2``
``hinge``          ``relu(1 - real) + relu(1 + fake)``         ``-fake``
``wasserstein_gp`` ``fake - real`` (+ gradient penalty)        ``-fake``
=================  ==========================================  ==================

The logarithms are written with softplus (``-log sigmoid(t) = softplus(-t)``,
``-log(1 - sigmoid(t)) = softplus(t)``), so no probability is ever rounded
to 0 or 1 before its logarithm: the losses stay finite and their gradients
exact for logits of any size. ``minimax`` is Goodfellow et al.'s original
game; its generator gradient vanishes when the discriminator wins, which is
why ``non_saturating`` (the paper's practical variant) is the default.
``wasserstein_gp`` (Gulrajani et al.) adds :func:`gradient_penalty` on
random interpolates of real and generated samples.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array
from jaxdl.nn.activations import relu, sigmoid, softplus

__all__ = ["Objective", "OBJECTIVES", "get", "gradient_penalty", "mean_probability"]


class Objective(NamedTuple):
    """One adversarial game: per-example losses on discriminator logits.

    Attributes:
        name: the registry name (``"non_saturating"``...).
        discriminator: ``(real_logits, fake_logits) -> per-example loss``.
        generator: ``fake_logits -> per-example loss``.
        gradient_penalty: whether the discriminator loss adds
            :func:`gradient_penalty` (the WGAN-GP critic).
    """

    name: str
    discriminator: Callable[[Array, Array], Array]
    generator: Callable[[Array], Array]
    gradient_penalty: bool = False


def _cross_entropy_d(real: Array, fake: Array) -> Array:
    return softplus(-real) + softplus(fake)


def _minimax_g(fake: Array) -> Array:
    return -softplus(fake)  # log(1 - sigmoid(fake)), minimized by the generator


def _non_saturating_g(fake: Array) -> Array:
    return softplus(-fake)  # -log sigmoid(fake)


def _least_squares_d(real: Array, fake: Array) -> Array:
    return 0.5 * (jnp.square(real - 1.0) + jnp.square(fake))


def _least_squares_g(fake: Array) -> Array:
    return 0.5 * jnp.square(fake - 1.0)


def _hinge_d(real: Array, fake: Array) -> Array:
    return relu(1.0 - real) + relu(1.0 + fake)


def _negated(fake: Array) -> Array:
    return -fake


def _wasserstein_d(real: Array, fake: Array) -> Array:
    return fake - real


OBJECTIVES = {
    "minimax": Objective("minimax", _cross_entropy_d, _minimax_g),
    "non_saturating": Objective("non_saturating", _cross_entropy_d, _non_saturating_g),
    "least_squares": Objective("least_squares", _least_squares_d, _least_squares_g),
    "hinge": Objective("hinge", _hinge_d, _negated),
    "wasserstein_gp": Objective("wasserstein_gp", _wasserstein_d, _negated, True),
}


def get(name: str | Objective, owner: str = "GAN") -> Objective:
    """The :class:`Objective` named ``name`` (an Objective is returned as is).

    >>> get("hinge").name
    'hinge'
    >>> get("wgan")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: GAN: unknown loss 'wgan'; expected one of hinge, least_squares, minimax, ...
    """
    if isinstance(name, Objective):
        return name
    return _checks.lookup(owner, "loss", name, OBJECTIVES)


def gradient_penalty(critic: Callable[[Array], Array], real: Array, fake: Array,
                     key: Array) -> Array:
    """Per-example ``(|grad critic(x_hat)| - 1)²`` at ``x_hat = e·real + (1 - e)·fake``.

    ``e ~ U(0, 1)`` is drawn per example; the gradient is that of each
    example's score with respect to its own input (all axes but the first), as
    in WGAN-GP. ``critic`` maps a batch to one score per example.

    >>> import jax, jax.numpy as jnp
    >>> real, fake = jnp.ones((4, 3)), jnp.zeros((4, 3))
    >>> critic = lambda x: 2.0 * x.sum(axis=1)      # |grad| = 2·sqrt(3) everywhere
    >>> gp = gradient_penalty(critic, real, fake, jax.random.key(0))
    >>> round(float(gp[0]), 4) == round((2 * 3 ** 0.5 - 1) ** 2, 4)
    True
    """
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = jax.random.uniform(key, shape, real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1) + 1e-12)
    return jnp.square(norms - 1.0)


def mean_probability(logits: Array) -> Array:
    """The mean of ``sigmoid(logits)``: how real the discriminator finds a batch."""
    return jnp.mean(sigmoid(logits.astype(jnp.float32)))
