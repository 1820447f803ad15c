"""The layer protocol.

A layer is a frozen dataclass that holds only hyperparameters (hashable,
printable, JSON-friendly) and two pure methods:

* ``init(key, input_shape) -> (params, state)``: ``input_shape`` excludes the
  batch axis. ``params`` are trainable arrays, ``state`` non-trainable ones
  (e.g. batch-norm moving statistics); both are nested dicts, ``{}`` when empty.
* ``apply(params, state, x, *, key=None, training=False) -> (y, state)``: ``x``
  has the batch axis first (channels last for images). ``key`` supplies
  randomness (dropout), ``training`` switches train/inference behaviour. A
  layer without state returns the ``state`` it was given.

Because layers are hashable they can be closed over or passed as static
arguments to ``jax.jit``; because params are plain dicts, ``jax.grad``,
``jax.vmap`` and optax work on them directly.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Optional

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base class of every jaxdl layer. Subclasses are frozen dataclasses.

    Subclasses implement ``init`` and ``apply``; ``output_shape`` has a generic
    default (shape inference with ``jax.eval_shape``, no FLOPs spent) that
    layers may override with their formula.
    """

    #: Prefix of the layer's auto-generated name in a ``Sequential`` (``dense`` -> ``dense_0``).
    name_prefix = None

    @classmethod
    def default_name(cls) -> str:
        """The snake-case prefix used to name this layer inside containers."""
        return cls.name_prefix or _snake(cls.__name__)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        """Create ``(params, state)`` for inputs of ``input_shape`` (no batch axis)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement init.")

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        """Apply the layer to the batch ``x``; return ``(y, new_state)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement apply.")

    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape, without the batch axis, for inputs of ``input_shape``."""
        shape = _checks.shape_tuple(type(self).__name__, input_shape)
        params, state = jax.eval_shape(lambda k: self.init(k, shape), jax.random.key(0))
        return _abstract_output_shape(self, params, state, shape)


def _abstract_output_shape(layer: Any, params: Params, state: State, shape: Shape) -> Shape:
    """Output shape of ``layer.apply`` on a batch of one, computed without FLOPs."""
    x = jax.ShapeDtypeStruct((1,) + tuple(shape), jnp.float32)
    y, _ = jax.eval_shape(lambda p, s, v: layer.apply(p, s, v, training=False), params, state, x)
    return tuple(int(d) for d in y.shape[1:])


def output_shape(layer: Layer, input_shape: Shape) -> Shape:
    """The shape ``layer`` produces for inputs of ``input_shape`` (both without batch axis).

    Example:
        >>> from jaxdl import nn
        >>> nn.output_shape(nn.Dense(10), (784,))
        (10,)
    """
    return layer.output_shape(_checks.shape_tuple(type(layer).__name__, input_shape))


def describe(layer: Any) -> str:
    """A short description of a layer for error messages, e.g. ``Dense(features=3)``."""
    if dataclasses.is_dataclass(layer):
        fields = [f for f in dataclasses.fields(layer) if f.repr]
        shown = ", ".join(f"{f.name}={getattr(layer, f.name)!r}" for f in fields[:2])
        return f"{type(layer).__name__}({shown})"
    return type(layer).__name__


def count_params(tree: Any) -> int:
    """Number of scalar entries in all array leaves of ``tree``."""
    return sum(math.prod(jnp.shape(leaf) if not hasattr(leaf, "shape") else leaf.shape)
               for leaf in jax.tree.leaves(tree))
