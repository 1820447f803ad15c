"""Normalization layers: BatchNorm and LayerNorm.

Both standardize activations, ``x̂ = (x - μ) / sqrt(σ² + ε)``, then apply a
learned per-feature scale ``γ`` and shift ``β``: ``y = γ x̂ + β``. They differ
in where ``μ`` and ``σ²`` come from: BatchNorm takes them over the batch (and
the spatial axes), LayerNorm over the features of each example.

Statistics are computed in float32 for low-precision (bfloat16, float16)
inputs, and in float64 for float64 inputs; the output has the input's dtype.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax.numpy as jnp
from jax import lax

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


def _check_features(owner: str, x: Array, features: int, min_rank: int) -> None:
    if x.ndim < min_rank or x.shape[-1] != features:
        raise ValueError(
            f"{owner}: expected input of shape (batch, ..., {features}) with {features} "
            f"features on the last axis (as at init), but received x of shape "
            f"{tuple(x.shape)}. Pass inputs with {features} channels last, or init the layer "
            f"with input_shape={tuple(x.shape[1:]) or '(features,)'}.")


def _check_epsilon(owner: str, epsilon) -> None:
    if not _checks.is_real(epsilon):
        raise TypeError(f"{owner}: `epsilon` must be a positive number, got {epsilon!r}.")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"{owner}: `epsilon` must be a finite number > 0, got {epsilon}.")


def _scale_bias(owner: str, input_shape: Shape) -> Params:
    """``{"scale": ones, "bias": zeros}`` of the feature count of ``input_shape``."""
    c = _checks.shape_tuple(owner, input_shape, min_rank=1)[-1]
    return {"scale": jnp.ones((c,), jnp.float32), "bias": jnp.zeros((c,), jnp.float32)}


def _operands(owner: str, params: Params, x) -> tuple[Array, Array, Array, Array]:
    """``(x, x_c, scale_c, bias_c)``: ``x`` by the layer input policy, checked against the
    params, and the operands cast to the statistics dtype (at least float32)."""
    scale, bias = params["scale"], params["bias"]
    x = base.layer_input(owner, x)
    _check_features(owner, x, scale.shape[0], 2)
    cdt = _checks.at_least_float32(x.dtype)
    return x, x.astype(cdt), scale.astype(cdt), bias.astype(cdt)


def _normalize(xc: Array, mean: Array, var: Array, epsilon: float, scale: Array,
               bias: Array) -> Array:
    inv = lax.rsqrt(var + epsilon)
    return (xc - mean) * (inv * scale) + bias


@dataclasses.dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy, 2015), Keras defaults.

    Normalizes each feature (the last axis: a Dense unit or a conv channel)
    over every other axis (the batch, and height and width for images).

    Training (``training=True``), with ``μ_B`` and the biased variance ``σ²_B``
    of the batch:

    .. math::

        y = γ \\frac{x - μ_B}{\\sqrt{σ_B^2 + ε}} + β, \\qquad
        \\bar μ \\leftarrow m \\bar μ + (1 - m) μ_B, \\qquad
        \\bar σ^2 \\leftarrow m \\bar σ^2 + (1 - m) σ_B^2

    Inference (``training=False``): the moving statistics ``μ̄, σ̄²`` replace the
    batch ones and the state is returned unchanged (the same object).

    A training batch must hold at least two examples: with one, every feature
    equals its own mean and the layer would output ``β`` regardless of the
    input (and for dense inputs, σ²_B = 0), so this raises ``ValueError``.

    Args:
        momentum: ``m`` in ``[0, 1]``, the weight of the old moving statistic
            (0.99 as in Keras; PyTorch's ``momentum=0.1`` is ``m = 0.9``).
        epsilon: ``ε > 0`` added to the variance (1e-3 as in Keras).

    Params: ``{"scale": (C,), "bias": (C,)}`` (γ = 1, β = 0 at init).
    State: ``{"mean": (C,), "var": (C,)}`` in float32 (0 and 1 at init).

    Shapes: ``(batch, ..., C) -> (batch, ..., C)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> bn = nn.BatchNorm()
        >>> params, state = bn.init(jax.random.key(0), (8, 8, 16))
        >>> x = jax.random.normal(jax.random.key(1), (4, 8, 8, 16))
        >>> y, state = bn.apply(params, state, x, training=True)
        >>> state["mean"].shape
        (16,)
    """

    momentum: float = 0.99
    epsilon: float = 1e-3
    name_prefix = "batch_norm"

    def __post_init__(self):
        if not _checks.is_real(self.momentum):
            raise TypeError(f"BatchNorm: `momentum` must be a number in [0, 1], got "
                            f"{self.momentum!r}.")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"BatchNorm: `momentum` must be in [0, 1] (the weight of the old "
                             f"moving statistic, e.g. 0.99), got {self.momentum}.")
        _check_epsilon("BatchNorm", self.epsilon)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        params = _scale_bias("BatchNorm", input_shape)
        c = params["scale"].shape[0]
        return params, {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple("BatchNorm", input_shape, min_rank=1)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        owner = f"BatchNorm(momentum={self.momentum}, epsilon={self.epsilon})"
        x, xc, scale_c, bias_c = _operands(owner, params, x)
        if not training:
            y = _normalize(xc, state["mean"].astype(xc.dtype), state["var"].astype(xc.dtype),
                           self.epsilon, scale_c, bias_c)
            return y.astype(x.dtype), state
        if x.shape[0] < 2:
            raise ValueError(
                f"{owner}: training needs a batch of at least 2 examples to estimate batch "
                f"statistics, but received x of shape {tuple(x.shape)} (batch size "
                f"{x.shape[0]}). Use a larger batch (Trainer.fit folds a final batch of one "
                f"into the one before, or drops it with drop_remainder=True), or call with "
                f"training=False to use the moving statistics.")
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(xc, axis=axes)
        var = jnp.mean(jnp.square(xc - mean), axis=axes)  # two-pass, biased (divides by n)
        y = _normalize(xc, mean, var, self.epsilon, scale_c, bias_c)
        m = self.momentum
        old_mean, old_var = state["mean"], state["var"]
        new_state = {
            "mean": m * old_mean + (1.0 - m) * mean.astype(old_mean.dtype),
            "var": m * old_var + (1.0 - m) * var.astype(old_var.dtype),
        }
        return y.astype(x.dtype), new_state


@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """Layer normalization (Ba et al., 2016) over the last axis of each example.

    .. math::

        μ = \\frac{1}{C} \\sum_c x_c, \\quad σ^2 = \\frac{1}{C} \\sum_c (x_c - μ)^2, \\quad
        y_c = γ_c \\frac{x_c - μ}{\\sqrt{σ^2 + ε}} + β_c

    The same computation in training and inference; no state. Each example
    (and each position of a sequence or image) is normalized on its own, so
    batch size does not matter.

    Args:
        epsilon: ``ε > 0`` (1e-5, as in PyTorch).

    Params: ``{"scale": (C,), "bias": (C,)}`` (γ = 1, β = 0 at init).

    Shapes: ``(batch, ..., C) -> (batch, ..., C)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> ln = nn.LayerNorm()
        >>> params, state = ln.init(jax.random.key(0), (10, 32))
        >>> ln.apply(params, state, jnp.ones((2, 10, 32)))[0].shape
        (2, 10, 32)
    """

    epsilon: float = 1e-5
    name_prefix = "layer_norm"

    def __post_init__(self):
        _check_epsilon("LayerNorm", self.epsilon)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        return _scale_bias("LayerNorm", input_shape), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple("LayerNorm", input_shape, min_rank=1)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        owner = f"LayerNorm(epsilon={self.epsilon})"
        x, xc, scale_c, bias_c = _operands(owner, params, x)
        mean = jnp.mean(xc, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(xc - mean), axis=-1, keepdims=True)
        y = _normalize(xc, mean, var, self.epsilon, scale_c, bias_c)
        return y.astype(x.dtype), state
