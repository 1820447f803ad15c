"""An autoencoder: an encoder and a decoder as one layer, trained to reproduce its input.

``Autoencoder(encoder, decoder)`` is an ordinary jaxdl layer, so everything
that takes a model takes it: ``train.Trainer(ae, "mse", optim.adam(1e-3))
.fit(x, x)``, ``nn.summary``, ``nn.trainable_mask`` (an ``nn.Frozen``
encoder stays fixed), checkpoints. :meth:`Autoencoder.encode` and
:meth:`Autoencoder.decode` run each half on its own, in inference mode.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, Optional

import jax

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer

__all__ = ["Autoencoder"]

_PARTS = ("encoder", "decoder")


def _is_layer(obj: Any) -> bool:
    return (not isinstance(obj, type) and callable(getattr(obj, "init", None))
            and callable(getattr(obj, "apply", None)))


@functools.partial(jax.jit, static_argnums=0)
def _inference(layer: Any, params: Params, state: State, x: Array) -> Array:
    """``layer.apply`` in inference mode, compiled once per layer and input shape."""
    return layer.apply(params, state, x, training=False)[0]


@dataclasses.dataclass(frozen=True)
class Autoencoder(Layer):
    """``decoder(encoder(x))``: a layer whose output has the shape of its input.

    Params and state are ``{"encoder": ..., "decoder": ...}`` (a part without
    any has no entry, as in ``Sequential``). The encoder maps inputs of shape
    ``input_shape`` to codes of shape ``code_shape(input_shape)``; the decoder
    must map those codes back to ``input_shape``, which ``init`` checks.
    Either part may be any layer: a ``Sequential`` of ``Dense`` or of
    ``Conv2D`` / ``Conv2DTranspose`` layers, an ``nn.Model``, another
    ``Autoencoder``. ``apply`` gives the encoder ``fold_in(key, 0)`` and the
    decoder ``fold_in(key, 1)`` (dropout in either part).

    Args:
        encoder: the layer from inputs to codes.
        decoder: the layer from codes back to inputs.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> ae = Autoencoder(nn.Sequential([nn.Dense(2)]), nn.Sequential([nn.Dense(64)]))
        >>> params, state = ae.init(jax.random.key(0), (64,))
        >>> sorted(params), ae.code_shape((64,))
        (['decoder', 'encoder'], (2,))
        >>> x = jnp.ones((5, 64))
        >>> ae.encode(params, state, x).shape, ae.apply(params, state, x)[0].shape
        ((5, 2), (5, 64))
    """

    encoder: Layer
    decoder: Layer
    #: The parts' names, keys of params and state (read by ``nn.summary``, ``nn.trainable_mask``).
    names = _PARTS

    def __post_init__(self):
        for name in _PARTS:
            part = getattr(self, name)
            if not _is_layer(part):
                hint = (f" Did you pass the class {part.__name__} instead of an instance?"
                        if isinstance(part, type) else "")
                raise TypeError(f"Autoencoder: `{name}` must be a layer (an object with init "
                                f"and apply, e.g. nn.Sequential([...])), got {part!r:.80} of "
                                f"type {type(part).__name__}.{hint}")

    @property
    def layers(self) -> tuple[Layer, Layer]:
        """``(encoder, decoder)``, in the order of :attr:`names`."""
        return (self.encoder, self.decoder)

    def code_shape(self, input_shape: Shape) -> Shape:
        """The encoder's output shape (no batch axis) for inputs of ``input_shape``."""
        shape = _checks.shape_tuple("Autoencoder", input_shape)
        return base.output_shape(self.encoder, shape)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = _checks.shape_tuple("Autoencoder", input_shape)
        base.check_key("Autoencoder.init", key)
        params, state = {}, {}
        p, s = base.init_child("Autoencoder", "encoder", self.encoder,
                               jax.random.fold_in(key, 0), shape, params, state)
        code = base.abstract_output_shape(self.encoder, p, s, shape)
        p, s = base.init_child("Autoencoder", "decoder", self.decoder,
                               jax.random.fold_in(key, 1), code, params, state)
        out = base.abstract_output_shape(self.decoder, p, s, code)
        if out != shape:
            raise ValueError(
                f"Autoencoder: the decoder must reproduce the input shape {shape}, but it maps "
                f"the encoder's codes of shape {code} to {out}. Change the decoder so that its "
                f"output has shape {shape} (e.g. end it with nn.Dense({math.prod(shape)}) and "
                f"nn.Reshape({shape}), or adjust its Conv2DTranspose strides and padding).")
        return params, state

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = _checks.shape_tuple("Autoencoder", input_shape)
        jax.eval_shape(lambda k: self.init(k, shape), jax.random.key(0))  # init checks shapes
        return shape

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        self._check_trees(params, state)
        z, s_enc = self._part("encoder", params, state, x, key, training)
        y, s_dec = self._part("decoder", params, state, z, key, training)
        new_state = {name: s for name, s in zip(_PARTS, (s_enc, s_dec), strict=True)
                     if jax.tree.leaves(s)}
        return y, new_state

    def _part(self, name: str, params: Params, state: State, x: Array,
              key: Optional[PRNGKey], training: bool) -> tuple[Array, State]:
        """Apply the encoder or the decoder (its key folded from ``key`` by its index)."""
        index = _PARTS.index(name)
        sub_key = None if key is None else jax.random.fold_in(key, index)
        try:
            return getattr(self, name).apply(params.get(name, {}), state.get(name, {}), x,
                                             key=sub_key, training=training)
        except Exception as e:
            base.add_note(e, f"in Autoencoder {name}")
            raise

    def _check_trees(self, params: Params, state: State) -> None:
        for what, tree in (("params", params), ("state", state)):
            if not isinstance(tree, Mapping):
                raise TypeError(f"Autoencoder: `{what}` must be the dict that init returned, "
                                f"got {type(tree).__name__}. Create them with params, state = "
                                f"ae.init(jax.random.key(0), input_shape).")
            unknown = sorted(set(tree) - set(_PARTS))
            if unknown:
                raise ValueError(f"Autoencoder: `{what}` hold the entries {unknown}; expected "
                                 f"only 'encoder' and 'decoder' (what init returns). Were they "
                                 f"made by another model's init?")

    def encode(self, params: Params, state: State, x: Any) -> Array:
        """The codes of ``x`` (inference mode); ``params``/``state`` are the autoencoder's.

        Compiled once per input shape: a second call with the same shape does
        not recompile. Returns a JAX array of shape ``(batch, *code_shape)``.
        """
        self._check_trees(params, state)
        x = base.layer_input("Autoencoder.encode", x)
        return _inference(self.encoder, params.get("encoder", {}), state.get("encoder", {}), x)

    def decode(self, params: Params, state: State, z: Any) -> Array:
        """The reconstructions decoded from the codes ``z`` (inference mode).

        Returns a JAX array of shape ``(batch, *input_shape)``; compiled once
        per code shape, like :meth:`encode`.
        """
        self._check_trees(params, state)
        z = base.layer_input("Autoencoder.decode", z)
        return _inference(self.decoder, params.get("decoder", {}), state.get("decoder", {}), z)
