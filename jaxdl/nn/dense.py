"""The fully connected layer."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

import jax

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import _common, activations, base
from jaxdl.nn.base import Layer

InitLike = Union[str, Callable]


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ kernel + bias)``.

    Acts on the last axis, so ``x`` of shape ``(batch, ..., in)`` gives
    ``(batch, ..., features)``. The computation runs in the kernel's dtype;
    integer inputs are cast to it.

    Args:
        features: number of output units.
        activation: a name from ``nn.activations.ACTIVATIONS`` (``"relu"``),
            a function, or ``None`` for linear.
        use_bias: whether to add a bias.
        kernel_init: initializer name or function for the ``(in, features)``
            kernel (Glorot uniform by default, like Keras).
        bias_init: initializer for the ``(features,)`` bias (zeros).
        compute_dtype: ``None`` (compute in the kernel's dtype) or a lower
            precision such as ``"bfloat16"``: the input and kernel are cast to
            it for the matmul, which accumulates and returns in the kernel's
            dtype (float32). Params, gradients and optimizer state stay float32.

    Params: ``{"kernel": (in, features), "bias": (features,)}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Dense(3, activation="relu")
        >>> params, state = layer.init(jax.random.key(0), (5,))
        >>> y, state = layer.apply(params, state, jnp.ones((2, 5)))
        >>> y.shape
        (2, 3)
    """

    features: int
    activation: activations.ActivationLike = None
    use_bias: bool = True
    kernel_init: InitLike = "glorot_uniform"
    bias_init: InitLike = "zeros"
    compute_dtype: Optional[str] = None

    def __post_init__(self):
        _checks.positive_int("Dense", "features", self.features)
        _common.check_options("Dense", self)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = _checks.shape_tuple("Dense", input_shape, min_rank=1)
        return _common.init_kernel_bias(self, key, (shape[-1], self.features), self.features), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = _checks.shape_tuple("Dense", input_shape, min_rank=1)
        return shape[:-1] + (self.features,)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        owner = f"Dense(features={self.features})"
        _checks.batched_rank(owner, x, 2)
        kernel = _common.kernel(owner, self, params, x)
        x = base.layer_input(owner, x, kernel.dtype)
        if x.shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"Dense(features={self.features}): expected input of shape (batch, ..., "
                f"{kernel.shape[0]}) to match its kernel of shape {tuple(kernel.shape)}, but "
                f"received x of shape {tuple(x.shape)}. Pass inputs with {kernel.shape[0]} "
                f"features, or init the layer with input_shape={tuple(x.shape[1:])}.")
        base.check_params(owner, self, params, x)
        xc, kc, accumulate = _common.compute_operands(self, x, kernel)
        y = jax.lax.dot_general(xc, kc, (((x.ndim - 1,), (0,)), ((), ())),
                                preferred_element_type=accumulate)
        return _common.bias_activation(self, params, y), state
