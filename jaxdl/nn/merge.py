"""Merge layers: combine several inputs (graph nodes) into one.

Each merge layer takes a list of inputs: ``init(key, input_shapes)`` with one
shape (no batch axis) per input, ``apply(params, state, xs)`` with a list or
tuple of arrays, and in a graph ``nn.Concatenate()([node_a, node_b])``. None
has params or state.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Optional

import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


def _shapes(owner: str, input_shapes: Any) -> tuple[Shape, ...]:
    """The list of input shapes, each a tuple of ints; at least two of them."""
    if (not isinstance(input_shapes, Sequence) or isinstance(input_shapes, str)
            or not all(isinstance(s, Sequence) for s in input_shapes)):
        raise TypeError(f"{owner}: expected a list of input shapes (one per merged input, "
                        f"without the batch axis), e.g. [(4,), (4,)], received {input_shapes!r}. "
                        f"A merge layer is called on a list of nodes: {owner}([a, b]).")
    shapes = tuple(_checks.shape_tuple(owner, s) for s in input_shapes)
    if len(shapes) < 2:
        raise ValueError(f"{owner}: expected at least 2 inputs to merge, received {len(shapes)} "
                         f"(shapes {list(shapes)}). Pass a list of two or more nodes or arrays.")
    return shapes


def _shown(shapes) -> str:
    return ", ".join(str((None,) + tuple(s)) for s in shapes)


def _arrays(owner: str, xs: Any) -> list:
    """The merged arrays, each cast by the layer input policy."""
    if not isinstance(xs, (tuple, list)):
        raise TypeError(f"{owner}: expected a list or tuple of arrays (one per merged input), "
                        f"received {type(xs).__name__} of shape {tuple(jnp.shape(xs))}. Pass "
                        f"[x1, x2, ...].")
    arrays = [base.layer_input(owner, x) for x in xs]
    for x in arrays:
        _checks.batched_rank(owner, x, 1)
    return arrays


@dataclasses.dataclass(frozen=True)
class _SameShapeMerge(Layer):
    """A merge of inputs that all have one shape, combined value by value."""

    def init(self, key: PRNGKey, input_shapes: Any) -> tuple[Params, State]:
        self.output_shape(input_shapes)
        return {}, {}

    def output_shape(self, input_shapes: Any) -> Shape:
        owner = f"{type(self).__name__}()"
        shapes = _shapes(owner, input_shapes)
        if len(set(shapes)) > 1:
            raise ValueError(f"{owner}: expected inputs of one and the same shape, received "
                             f"shapes {_shown(shapes)}. Make them agree (e.g. a Dense layer "
                             f"with the same number of units on each branch), or use "
                             f"nn.Concatenate to join inputs of different sizes.")
        return shapes[0]

    def apply(self, params: Params, state: State, x: Any, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        arrays = _arrays(f"{type(self).__name__}()", x)
        self.output_shape([a.shape[1:] for a in arrays])
        return self.combine(arrays), state

    def combine(self, arrays: list) -> Array:
        """The merged value of ``arrays`` (all of one shape)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Add(_SameShapeMerge):
    """Sum of its inputs, all of one shape: ``y = x1 + x2 + ...``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Add().apply({}, {}, [jnp.ones((1, 2)), 2 * jnp.ones((1, 2))])[0]
        Array([[3., 3.]], dtype=float32)
    """

    def combine(self, arrays: list) -> Array:
        return functools.reduce(jnp.add, arrays)


@dataclasses.dataclass(frozen=True)
class Multiply(_SameShapeMerge):
    """Value-by-value product of its inputs, all of one shape: ``y = x1 * x2 * ...``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Multiply().apply({}, {}, [jnp.full((1, 2), 3.0), 2 * jnp.ones((1, 2))])[0]
        Array([[6., 6.]], dtype=float32)
    """

    def combine(self, arrays: list) -> Array:
        return functools.reduce(jnp.multiply, arrays)


@dataclasses.dataclass(frozen=True)
class Average(_SameShapeMerge):
    """Mean of its ``n`` inputs, all of one shape: ``y = (x1 + ... + xn) / n``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Average().apply({}, {}, [jnp.ones((1, 2)), 2 * jnp.ones((1, 2))])[0]
        Array([[1.5, 1.5]], dtype=float32)
    """

    def combine(self, arrays: list) -> Array:
        return functools.reduce(jnp.add, arrays) / len(arrays)


@dataclasses.dataclass(frozen=True)
class Concatenate(Layer):
    """Joins its inputs along ``axis``; all other axes must agree.

    ``axis`` counts the batch axis like Keras: ``-1`` (the default) is the last
    axis, ``1`` the first axis after the batch. Inputs of shapes ``(batch, 40)``
    and ``(batch, 50)`` give ``(batch, 90)``.

    Args:
        axis: the axis to join along (not the batch axis ``0``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.Concatenate().apply({}, {}, [jnp.ones((2, 40)), jnp.ones((2, 50))])[0].shape
        (2, 90)
    """

    axis: int = -1

    def __post_init__(self):
        if not _checks.is_int(self.axis) or self.axis == 0:
            raise ValueError(f"Concatenate: `axis` must be a non-zero int (axis 0 is the batch "
                             f"axis), received {self.axis!r}. Use axis=-1 for the last axis.")

    def init(self, key: PRNGKey, input_shapes: Any) -> tuple[Params, State]:
        self.output_shape(input_shapes)
        return {}, {}

    def output_shape(self, input_shapes: Any) -> Shape:
        owner = f"Concatenate(axis={self.axis})"
        shapes = _shapes(owner, input_shapes)
        rank = len(shapes[0]) + 1
        axis = self.axis % rank if -rank <= self.axis < rank else None
        others = {s[:axis - 1] + s[axis:] for s in shapes} if axis else set()
        if axis is None or len({len(s) for s in shapes}) > 1 or len(others) > 1:
            raise ValueError(f"{owner}: expected inputs of one rank whose shapes agree on every "
                             f"axis but axis {self.axis}, received shapes {_shown(shapes)}. "
                             f"Reshape or flatten the inputs first, or choose the axis to join "
                             f"along with Concatenate(axis=...).")
        joined = sum(s[axis - 1] for s in shapes)
        return shapes[0][:axis - 1] + (joined,) + shapes[0][axis:]

    def apply(self, params: Params, state: State, x: Any, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        arrays = _arrays(f"Concatenate(axis={self.axis})", x)
        self.output_shape([a.shape[1:] for a in arrays])
        return jnp.concatenate(arrays, axis=self.axis), state
