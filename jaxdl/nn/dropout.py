"""Dropout: random zeroing of units during training."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


@dataclasses.dataclass(frozen=True)
class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014).

    In training each element is kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)``, otherwise set to zero:

    .. math::

        y = \\frac{m \\odot x}{1 - p}, \\qquad m_i \\sim \\mathrm{Bernoulli}(1 - p)

    so ``E[y] = x`` and inference needs no rescaling: with ``training=False``
    (the default) the layer is the identity. ``rate = 0`` is the identity too.

    Randomness comes only from the ``key`` given to ``apply``; the same key
    gives the same mask. Inside a ``Sequential`` each layer gets its own key
    derived from the model's.

    Args:
        rate: the drop probability ``p`` in ``[0, 1)`` (Keras's meaning;
            ``rate=0.2`` drops 20% of the units). A JAX array (or tracer) is
            accepted unchecked, so a rate can be a hyperparameter traced through
            ``jax.vmap`` (``tune.population_fit`` with a model factory).

    No params, no state. Shapes: unchanged.

    Raises:
        ValueError: ``rate`` outside ``[0, 1)``; ``training=True`` without a key.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> drop = nn.Dropout(0.5)
        >>> y, _ = drop.apply({}, {}, jnp.ones((2, 4)), key=jax.random.key(0), training=True)
        >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """

    rate: float

    def __post_init__(self):
        if isinstance(self.rate, jax.Array):  # a traced rate: a population hyperparameter
            return
        if not _checks.is_real(self.rate):
            raise TypeError(f"Dropout: `rate` must be a number in [0, 1) (the drop "
                            f"probability), got {self.rate!r} of type {type(self.rate).__name__}.")
        if not (math.isfinite(self.rate) and 0.0 <= self.rate < 1.0):
            raise ValueError(f"Dropout: `rate` must be in [0, 1) (the probability of dropping a "
                             f"unit; 1 would drop everything), got {self.rate}.")

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        _checks.shape_tuple("Dropout", input_shape)
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple("Dropout", input_shape)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        x = base.layer_input(f"Dropout(rate={self.rate})", x)
        if not training or (_checks.is_real(self.rate) and self.rate == 0.0):
            return x, state
        if key is None:
            raise ValueError(f"Dropout(rate={self.rate}): training=True needs a random key to "
                             f"draw the dropout mask, but key=None was given. Pass "
                             f"key=jax.random.key(seed) to apply (split a fresh key per step), "
                             f"or training=False for inference.")
        keep = jax.random.bernoulli(key, 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros((), x.dtype)), state
