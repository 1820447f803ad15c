"""A stack of layers applied in order."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import jax

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn.base import Layer, _abstract_output_shape


def _is_layer(obj) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "init", None)) and callable(getattr(obj, "apply", None))


@dataclasses.dataclass(frozen=True)
class Sequential(Layer):
    """Layers applied one after another; itself a layer.

    Each layer gets a unique, readable name: its type in snake case and a
    per-type counter (``dense_0``, ``relu_0``, ``dense_1``). Params and state
    are dicts keyed by those names, holding only the layers that have any:
    ``{"dense_0": {"kernel": ..., "bias": ...}, "dense_1": {...}}``.

    Randomness: layer ``i`` receives ``jax.random.fold_in(key, i)``, so adding
    a layer at the end never changes the keys (and initial weights) of the
    layers before it.

    Args:
        layers: the layers, first applied first.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> model = nn.Sequential([nn.Dense(32, activation="relu"), nn.Dense(1)])
        >>> params, state = model.init(jax.random.key(0), (8,))
        >>> sorted(params)
        ['dense_0', 'dense_1']
        >>> y, state = model.apply(params, state, jnp.ones((4, 8)))
        >>> y.shape
        (4, 1)
    """

    layers: Sequence[Layer] = ()

    def __post_init__(self):
        layers = self.layers
        if _is_layer(layers):
            raise TypeError("Sequential: expected a list of layers, got a single layer; wrap it "
                            "in a list: Sequential([layer]).")
        layers = tuple(layers)
        for i, layer in enumerate(layers):
            if not _is_layer(layer):
                raise TypeError(f"Sequential: layers[{i}] is {layer!r} of type "
                                f"{type(layer).__name__}, not a layer (an object with init and "
                                f"apply). Did you pass a class instead of an instance, e.g. "
                                f"nn.ReLU instead of nn.ReLU()?")
        object.__setattr__(self, "layers", layers)

    @property
    def names(self) -> tuple[str, ...]:
        """The layers' names, in order (``("dense_0", "relu_0", "dense_1")``)."""
        counts: dict[str, int] = {}
        names = []
        for layer in self.layers:
            prefix = layer.default_name() if hasattr(layer, "default_name") else \
                type(layer).__name__.lower()
            names.append(f"{prefix}_{counts.get(prefix, 0)}")
            counts[prefix] = counts.get(prefix, 0) + 1
        return tuple(names)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = _checks.shape_tuple("Sequential", input_shape)
        params, state = {}, {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            try:
                p, s = layer.init(jax.random.fold_in(key, i), shape)
                shape = _abstract_output_shape(layer, p, s, shape)
            except (ValueError, TypeError) as e:
                raise type(e)(f"Sequential layer '{name}' (input_shape {shape}): {e}") from e
            if jax.tree.leaves(p):
                params[name] = p
            if jax.tree.leaves(s):
                state[name] = s
        return params, state

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = _checks.shape_tuple("Sequential", input_shape)
        for name, layer in zip(self.names, self.layers):
            try:
                shape = layer.output_shape(shape)
            except (ValueError, TypeError) as e:
                raise type(e)(f"Sequential layer '{name}' (input_shape {shape}): {e}") from e
        return shape

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        names = self.names
        unknown = set(params) - set(names) or set(state) - set(names)
        if unknown:
            raise ValueError(f"Sequential: params/state hold entries {sorted(unknown)} that match "
                             f"no layer of this model (its layers are {list(names)}). Were they "
                             f"made by another model's init?")
        new_state = {}
        for i, (name, layer) in enumerate(zip(names, self.layers)):
            sub_key = None if key is None else jax.random.fold_in(key, i)
            try:
                x, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                                   key=sub_key, training=training)
            except (ValueError, TypeError) as e:
                raise type(e)(f"Sequential layer '{name}': {e}") from e
            except KeyError as e:
                raise ValueError(f"Sequential layer '{name}': its params or state lack the entry "
                                 f"{e}; were they made by this model's init?") from e
            if jax.tree.leaves(s):
                new_state[name] = s
        return x, new_state
