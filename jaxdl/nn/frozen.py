"""Freezing layers for transfer learning: ``Frozen`` and ``trainable_mask``.

``nn.Frozen(layer)`` is Keras's ``layer.trainable = False`` as a wrapper: the
layer's params stay in the model's params tree (so checkpoints and
``Trainer.load_params`` see them), their gradients are stopped, and the layer
always runs in inference mode. ``nn.trainable_mask(model, params)`` tells the
optimizer which leaves it may touch (``TrainState.create`` and ``Trainer`` use
it through ``optim.masked``).

How ``trainable_mask`` walks a model, first rule that applies:

1. a layer with a method ``trainable_mask(params)`` answers for itself
   (``Frozen``: all False);
2. a container with parallel ``names`` and ``layers`` (``Sequential``) or with
   ``get_layer(name)`` (the graph ``Model``) maps each params entry through the
   layer of that name;
3. any other layer is trainable: all True.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

import jax

from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer

__all__ = ["Frozen", "trainable_mask"]


@dataclasses.dataclass(frozen=True)
class Frozen(Layer):
    """A layer whose params are not trained, like Keras ``trainable=False``.

    * Params: the inner layer's, same structure, under the inner layer's name
      (``Frozen(nn.Dense(4))`` inside a ``Sequential`` is ``dense_0``), so a
      checkpoint of the unfrozen model loads into the frozen one and back.
    * Gradients: ``jax.lax.stop_gradient`` on the params, so ``jax.grad``
      gives zeros for them; gradients still flow through to the input.
    * Mode: the inner layer always runs with ``training=False``: batch norm
      normalizes with its moving statistics and keeps them (the returned state
      is the given state), dropout is off.
    * Optimizer: :func:`trainable_mask` marks every leaf False, so the trainer
      gives them no update, no weight decay and no optimizer state.

    Args:
        layer: the layer to freeze (any layer, a ``Sequential`` or a ``Model``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> model = nn.Sequential([nn.Frozen(nn.Dense(3)), nn.Dense(1)])
        >>> params, state = model.init(jax.random.key(0), (2,))
        >>> sorted(params)
        ['dense_0', 'dense_1']
        >>> nn.trainable_mask(model, params)["dense_0"]
        {'bias': False, 'kernel': False}
    """

    layer: Any = None

    def __post_init__(self):
        layer = self.layer
        if isinstance(layer, type) or not (callable(getattr(layer, "init", None))
                                           and callable(getattr(layer, "apply", None))):
            raise TypeError(f"Frozen: expected a layer instance (an object with init and apply), "
                            f"got {layer!r} of type {type(layer).__name__}. Pass an instance, "
                            f"e.g. nn.Frozen(nn.Dense(4)) or nn.Frozen(base_model).")

    def default_name(self) -> str:
        """The inner layer's name prefix, so freezing never renames params."""
        inner = self.layer
        return inner.default_name() if hasattr(inner, "default_name") else \
            type(inner).__name__.lower()

    @property
    def scan_friendly(self) -> bool:
        """Whatever the inner layer declares (see :func:`jaxdl.nn.scan_friendly`)."""
        return base.scan_friendly(self.layer)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        return self.layer.init(key, input_shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        return self.layer.output_shape(input_shape)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        del training  # a frozen layer always runs in inference mode
        y, _ = self.layer.apply(jax.lax.stop_gradient(params), state, x, key=key,
                                training=False)
        return y, state

    def trainable_mask(self, params: Params) -> Any:
        """All False: no leaf of a frozen layer is trained."""
        return jax.tree.map(lambda _: False, params)


def _child_mask(layer: Any, params: Any) -> Any:
    return trainable_mask(layer, params) if layer is not None else \
        jax.tree.map(lambda _: True, params)


def trainable_mask(model: Any, params: Params) -> Any:
    """Which leaves of ``params`` the optimizer may change: a tree of Python bools.

    The tree has the structure of ``params``; a leaf is ``False`` when it
    belongs to an :class:`Frozen` layer anywhere in ``model`` (see the module
    docstring for how containers are walked). Only the structure of ``params``
    is used, so a tree of gradients or of shape structs works as well.

    Args:
        model: a layer (``Sequential``, ``Model``, ``Frozen``, any layer).
        params: its params tree (from ``model.init``).

    Returns:
        A tree of ``bool`` with the structure of ``params``.

    Example:
        >>> import jax
        >>> from jaxdl import nn
        >>> model = nn.Sequential([nn.Dense(3), nn.Frozen(nn.Dense(2))])
        >>> params, _ = model.init(jax.random.key(0), (4,))
        >>> mask = nn.trainable_mask(model, params)
        >>> mask["dense_0"]["kernel"], mask["dense_1"]["kernel"]
        (True, False)
    """
    own = getattr(model, "trainable_mask", None)
    if callable(own) and not isinstance(model, type):
        return own(params)
    if isinstance(params, Mapping):
        names, layers = getattr(model, "names", None), getattr(model, "layers", None)
        if names is not None and layers is not None and not callable(names):
            by_name = dict(zip(names, layers, strict=True))
            return {k: _child_mask(by_name.get(k), v) for k, v in params.items()}
        get_layer = getattr(model, "get_layer", None)
        if callable(get_layer):
            return {k: _child_mask(_find_layer(get_layer, k), v) for k, v in params.items()}
    return jax.tree.map(lambda _: True, params)


def _find_layer(get_layer: Any, name: str) -> Any:
    try:
        return get_layer(name)
    except (KeyError, ValueError):
        return None
