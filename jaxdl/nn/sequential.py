"""A stack of layers applied in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Optional, Sequence

import jax

from jaxdl import _checks, compilation
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


def _is_layer(obj) -> bool:
    return (not isinstance(obj, type) and callable(getattr(obj, "init", None))
            and callable(getattr(obj, "apply", None)))


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
        >>> fast = jax.jit(model.apply, static_argnames="training")  # a Python bool flag
        >>> y, state = fast(params, state, jnp.ones((4, 8)), training=True)

    Errors raised inside a layer keep their type and gain a note naming the
    layer (``in Sequential layer 'dense_1'``). Params are checked against what
    ``init`` makes for the input's shape (see :func:`jaxdl.nn.base.check_params`).
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
        """Create ``(params, state)`` for inputs of ``input_shape``: one compiled program
        (:func:`jaxdl.compilation.call_compiled`), or part of the caller's inside a trace."""
        shape = _checks.shape_tuple("Sequential", input_shape)
        base.check_key("Sequential.init", key)
        return compilation.call_compiled(lambda k: self._init_layers(k, shape), key)

    def _init_layers(self, key: PRNGKey, shape: Shape) -> tuple[Params, State]:
        params, state = {}, {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers, strict=True)):
            p, s = base.init_child("Sequential", name, layer, jax.random.fold_in(key, i), shape,
                                   params, state)
            try:
                shape = base.abstract_output_shape(layer, p, s, shape)
            except Exception as e:
                base.add_note(e, f"in Sequential layer '{name}' (input_shape {shape})")
                raise
        return params, state

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = _checks.shape_tuple("Sequential", input_shape)
        for name, layer in zip(self.names, self.layers, strict=True):
            try:
                shape = layer.output_shape(shape)
            except Exception as e:
                base.add_note(e, f"in Sequential layer '{name}' (input_shape {shape})")
                raise
        return shape

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        names = self.names
        self._check_trees(params, state, x)
        new_state = {}
        for i, (name, layer) in enumerate(zip(names, self.layers, strict=True)):
            sub_key = None if key is None else jax.random.fold_in(key, i)
            try:
                x, s = layer.apply(params.get(name, {}), state.get(name, {}), x,
                                   key=sub_key, training=training)
            except KeyError as e:
                raise ValueError(f"Sequential layer '{name}': its params or state lack the entry "
                                 f"{e}; were they made by this model's init?") from e
            except Exception as e:
                base.add_note(e, _apply_note(e, name))
                raise
            if jax.tree.leaves(s):
                new_state[name] = s
        return x, new_state

    def _check_trees(self, params: Params, state: State, x: Array) -> None:
        """Params and state must be dicts made by this model's init for inputs like ``x``."""
        if not isinstance(params, Mapping):
            base.check_params("Sequential", self, params, x)  # raises its TypeError
        if not isinstance(state, Mapping):
            raise TypeError(f"Sequential: `state` must be the dict that init returned, got "
                            f"{type(state).__name__}. Create it with params, state = "
                            f"model.init(jax.random.key(0), input_shape) and pass both.")
        unknown = set(params) - set(self.names) or set(state) - set(self.names)
        if unknown:
            raise ValueError(f"Sequential: params/state hold entries {sorted(unknown)} that match "
                             f"no layer of this model (its layers are {list(self.names)}). Were "
                             f"they made by another model's init?")
        base.check_params("Sequential", self, params, x)


def _apply_note(error: BaseException, name: str) -> str:
    """The note naming the layer; for a traced ``training`` flag, also the fix."""
    note = f"in Sequential layer '{name}'"
    hinted = any("static_argnames" in n for n in getattr(error, "__notes__", ()))
    if isinstance(error, jax.errors.ConcretizationTypeError) and not hinted:
        note += (" (if `training` is traced, make it static: "
                 "jax.jit(model.apply, static_argnames='training'))")
    return note
