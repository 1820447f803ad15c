"""Shape-only layers: Flatten and Reshape."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn.base import Layer


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flattens each example to a vector: ``(batch, d1, ..., dk) -> (batch, d1·…·dk)``.

    The bridge from convolutional feature maps to dense layers, in row-major
    (C) order: the course's 3×3 pooled map ``[[1, 1, 0], [4, 2, 1], [0, 2, 1]]``
    becomes ``[1, 1, 0, 4, 2, 1, 0, 2, 1]``. A ``(batch,)`` input gives
    ``(batch, 1)``; an empty batch ``(0, d1, ..., dk)`` gives ``(0, d1·…·dk)``.

    No params, no state.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Flatten().apply({}, {}, jnp.ones((2, 5, 5, 64)))[0].shape
        (2, 1600)
    """

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        _checks.shape_tuple("Flatten", input_shape)
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(_checks.shape_tuple("Flatten", input_shape)),)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        x = jnp.asarray(x)
        _checks.batched_rank("Flatten", x, 1)
        # The size, not -1: -1 is undefined for an empty batch (0 values to spread).
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), state


@dataclasses.dataclass(frozen=True)
class Reshape(Layer):
    """Reshapes each example to ``shape`` (the batch axis is kept).

    ``(batch, *input_shape) -> (batch, *shape)`` in row-major order; the
    number of values per example must match. One entry of ``shape`` may be
    ``-1``, inferred from the others.

    Args:
        shape: the target shape without the batch axis, e.g. ``(7, 7, 64)``.

    No params, no state.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Reshape((7, 7, -1)).apply({}, {}, jnp.ones((2, 3136)))[0].shape
        (2, 7, 7, 64)
    """

    shape: Sequence[int]

    def __post_init__(self):
        shape = self.shape
        if _checks.is_int(shape):
            shape = (shape,)
        if (not isinstance(shape, Sequence) or isinstance(shape, str)
                or not all(_checks.is_int(d) for d in shape)):
            raise TypeError(f"Reshape: `shape` must be a tuple of ints without the batch axis, "
                            f"e.g. (7, 7, 64), got {self.shape!r}.")
        shape = tuple(int(d) for d in shape)
        if any(d == 0 or d < -1 for d in shape) or shape.count(-1) > 1:
            raise ValueError(f"Reshape: `shape` must hold positive ints and at most one -1 "
                             f"(inferred), got {shape}.")
        object.__setattr__(self, "shape", shape)

    def _resolve(self, in_shape: Shape, received: str) -> Shape:
        n = math.prod(in_shape)
        known = math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            if n % known:
                raise ValueError(
                    f"Reshape(shape={self.shape}): cannot reshape {received} ({n} values per "
                    f"example) into {self.shape}: {n} is not a multiple of {known}. Choose a "
                    f"shape whose known entries divide {n}.")
            return tuple(n // known if d == -1 else d for d in self.shape)
        if n != known:
            raise ValueError(
                f"Reshape(shape={self.shape}): cannot reshape {received} ({n} values per "
                f"example) into {self.shape} ({known} values). Choose a shape with {n} values, "
                f"or use -1 for one entry.")
        return self.shape

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        self.output_shape(input_shape)
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = _checks.shape_tuple("Reshape", input_shape)
        return self._resolve(shape, f"inputs of shape {shape}")

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        x = jnp.asarray(x)
        _checks.batched_rank(f"Reshape(shape={self.shape})", x, 1)
        target = self._resolve(x.shape[1:], f"x of shape {tuple(x.shape)}")
        return x.reshape((x.shape[0],) + target), state
