"""Pooling layers: MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D.

Pooling downsamples each channel separately and has no parameters: the
course's "number of parameters in a pooling layer = 0". The usual choice is a
2×2 max pool with stride 2, which halves the height and width.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import jax.numpy as jnp

from jaxdl import _checks, kernels
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer

PairLike = Union[int, tuple[int, int]]


def _nhwc_input(owner: str, x) -> Array:
    """``x`` by the layer input policy, required to be ``(batch, height, width, channels)``."""
    x = base.layer_input(owner, x)
    if x.ndim != 4:
        raise ValueError(f"{owner}: expected input of shape (batch, height, width, channels), "
                         f"but received x of shape {tuple(x.shape)}. Add the batch axis with "
                         f"x[None] or a channel axis with x[..., None].")
    return x


class _Pool2D(Layer):
    """Shared code of MaxPool2D and AvgPool2D."""

    _kind = "max"

    def __post_init__(self):
        owner = type(self).__name__
        object.__setattr__(self, "pool_size",
                           kernels.normalize_tuple(owner, "pool_size", self.pool_size))
        if self.strides is not None:
            object.__setattr__(self, "strides",
                               kernels.normalize_tuple(owner, "strides", self.strides))
        object.__setattr__(self, "padding", kernels.normalize_padding(owner, self.padding))
        if self.method not in kernels.POOL_METHODS:
            raise ValueError(f"{owner}: unknown method {self.method!r}; expected one of "
                             f"{kernels.POOL_METHODS}.")

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}(pool_size={self.pool_size})"

    @property
    def _strides(self) -> tuple[int, int]:
        return self.pool_size if self.strides is None else self.strides

    def _out_hw(self, in_hw) -> tuple[int, int]:
        return kernels.conv_geometry(self._owner, "pool window", in_hw, self.pool_size,
                                     self._strides, (1, 1), self.padding)[1]

    def _check_shape(self, input_shape) -> Shape:
        return _checks.input_shape_of_rank(self._owner, input_shape,
                                           ("height", "width", "channels"))

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = self._check_shape(input_shape)
        self._out_hw(shape[:2])
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        return self._out_hw(shape[:2]) + (shape[2],)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        x = _nhwc_input(self._owner, x)
        self._out_hw(x.shape[1:3])
        pool = kernels.max_pool2d if self._kind == "max" else kernels.avg_pool2d
        return pool(x, self.pool_size, self._strides, self.padding, method=self.method), state


@dataclasses.dataclass(frozen=True)
class MaxPool2D(_Pool2D):
    """Max pooling: the largest value of each window, per channel.

    .. math:: y[n, i, j, c] = \\max_{a < f_h,\\, b < f_w} x_{pad}[n, i S_h + a, j S_w + b, c]

    Shapes: ``(batch, H, W, C) -> (batch, H', W', C)``, ``H' = floor((H + 2P -
    f) / S) + 1``; with ``"same"`` padding ``H' = ceil(H / S)`` and the padding
    (``-inf``, so it never wins) goes mostly at the bottom/right, as in Keras.
    The course's 5×5 feature map pooled 2×2, stride 2, ``"same"`` gives the
    3×3 map ``[[1, 1, 0], [4, 2, 1], [0, 2, 1]]``.

    Args:
        pool_size: int or ``(f_h, f_w)``.
        strides: int or pair; ``None`` (default) means ``pool_size``.
        padding: ``"valid"``, ``"same"``, an int, a pair or a pair of pairs.
        method: implementation, see :func:`jaxdl.kernels.max_pool2d`
            (``"auto"`` picks the fastest measured one).

    No params, no state.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.output_shape(nn.MaxPool2D(2), (28, 28, 32))
        (14, 14, 32)
    """

    pool_size: PairLike = 2
    strides: Optional[PairLike] = None
    padding: kernels.PaddingLike = "valid"
    method: str = "auto"
    _kind = "max"


@dataclasses.dataclass(frozen=True)
class AvgPool2D(_Pool2D):
    """Average pooling: the mean of each window, per channel.

    .. math:: y[n, i, j, c] = \\frac{1}{|W_{ij}|} \\sum_{(r, s) \\in W_{ij}} x[n, r, s, c]

    ``W_ij`` holds only real input cells: windows that overhang the edge under
    ``"same"`` padding average what they cover (Keras semantics). Shapes as in
    :class:`MaxPool2D`.

    Args:
        pool_size, strides, padding, method: as in :class:`MaxPool2D`.

    No params, no state.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> y, _ = nn.AvgPool2D(2).apply({}, {}, jnp.arange(16.0).reshape(1, 4, 4, 1))
        >>> y[0, :, :, 0]
        Array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """

    pool_size: PairLike = 2
    strides: Optional[PairLike] = None
    padding: kernels.PaddingLike = "valid"
    method: str = "auto"
    _kind = "avg"


class _GlobalPool2D(Layer):
    """Shared code of the global pools."""

    def _check_shape(self, input_shape) -> Shape:
        return _checks.input_shape_of_rank(type(self).__name__, input_shape,
                                           ("height", "width", "channels"))

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        self._check_shape(input_shape)
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        return (1, 1, shape[2]) if self.keepdims else (shape[2],)

    def _reduce(self, x: Array) -> Array:
        raise NotImplementedError

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        return self._reduce(_nhwc_input(type(self).__name__, x)), state


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool2D(_GlobalPool2D):
    """Mean over all positions of each channel: ``(batch, H, W, C) -> (batch, C)``.

    .. math:: y[n, c] = \\frac{1}{H W} \\sum_{i, j} x[n, i, j, c]

    Low-precision inputs are summed in float32. Replaces ``Flatten`` before the
    classifier in modern CNNs, independent of the image size.

    Args:
        keepdims: keep the spatial axes, giving ``(batch, 1, 1, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.GlobalAvgPool2D().apply({}, {}, jnp.ones((2, 7, 7, 64)))[0].shape
        (2, 64)
    """

    keepdims: bool = False

    def _reduce(self, x: Array) -> Array:
        acc = x.astype(_checks.at_least_float32(x.dtype))
        return jnp.mean(acc, axis=(1, 2), keepdims=self.keepdims).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class GlobalMaxPool2D(_GlobalPool2D):
    """Maximum over all positions of each channel: ``(batch, H, W, C) -> (batch, C)``.

    .. math:: y[n, c] = \\max_{i, j} x[n, i, j, c]

    Args:
        keepdims: keep the spatial axes, giving ``(batch, 1, 1, C)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.GlobalMaxPool2D().apply({}, {}, jnp.ones((2, 7, 7, 64)))[0].shape
        (2, 64)
    """

    keepdims: bool = False

    def _reduce(self, x: Array) -> Array:
        return jnp.max(x, axis=(1, 2), keepdims=self.keepdims)
