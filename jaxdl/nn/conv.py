"""Convolution layers: Conv1D, Conv2D, Conv2DTranspose.

Each layer holds only its hyperparameters and calls the jit-compiled kernels of
:mod:`jaxdl.kernels`. Inputs are channels-last: ``(batch, length, channels)``
for 1-D, ``(batch, height, width, channels)`` for 2-D.

Parameter count of a convolution with ``C`` input channels, ``O`` filters of
size ``f_h × f_w`` and ``G`` groups: ``(f_h f_w C / G + 1) O`` with a bias. The
course's ``Conv2D(500, 5)`` on a 26×26×100 input has ``(5·5·100 + 1)·500 =
1,250,500`` parameters and a 22×22×500 output.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

from jaxdl import _checks, kernels
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import _common, activations, base
from jaxdl.nn.base import Layer

InitLike = Union[str, Callable]
_HWC = ("height", "width", "channels")
_GRAYSCALE_HINT = "For grayscale images add a channel axis: (H, W, 1)."


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


def _input(owner: str, x, dtype, rank: int, layout: str, channels: int, fix: str):
    """Check the rank and channel count of ``x``; return it cast to ``dtype``."""
    x = _checks.floating_input(owner, x, dtype)
    if x.ndim != rank or x.shape[-1] != channels:
        raise ValueError(
            f"{owner}: expected input of shape {layout}{channels}) (channels last, "
            f"{channels} channels as the kernel was built for), but received x of shape "
            f"{tuple(x.shape)}. {fix}")
    return x


@dataclasses.dataclass(frozen=True)
class Conv2D(Layer):
    """2-D convolution layer (a cross-correlation, like every DL library's).

    .. math::

        y[n, i, j, o] = \\mathrm{act}\\Big(b_o + \\sum_{a, b, c}
            x_{pad}[n, i S_h + a d_h, j S_w + b d_w, c]\\, w[a, b, c, o]\\Big)

    Shapes: ``(batch, H, W, C) -> (batch, H', W', filters)`` with
    ``H' = floor((H + 2P - d (f - 1) - 1) / S) + 1`` (see
    :func:`jaxdl.kernels.conv_output_size`); ``"same"`` padding gives
    ``ceil(H / S)``.

    Args:
        filters: number of output channels ``O`` (one feature map per filter).
        kernel_size: int or ``(f_h, f_w)``.
        strides: int or pair ``S``.
        padding: ``"valid"``, ``"same"`` (TF/Keras), an int, a pair or a pair of
            ``(before, after)`` pairs.
        dilation: int or pair ``d``.
        groups: split the channels into ``G`` groups convolved separately;
            ``C`` and ``filters`` must be divisible by ``G``.
        activation: name, function or ``None`` (linear), as in ``Dense``.
        use_bias: add a per-filter bias.
        kernel_init: initializer of the kernel (Glorot uniform, like Keras).
        bias_init: initializer of the bias (zeros).
        compute_dtype: ``None`` or a lower precision such as ``"bfloat16"`` for
            the convolution's inputs, accumulated and returned in the kernel's
            dtype (float32), as in :class:`~jaxdl.nn.Dense`.

    Params: ``{"kernel": (f_h, f_w, C / G, filters), "bias": (filters,)}``
    (HWIO), ``(f_h f_w C / G + 1) · filters`` numbers.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Conv2D(500, 5)
        >>> params, state = layer.init(jax.random.key(0), (26, 26, 100))
        >>> params["kernel"].shape
        (5, 5, 100, 500)
        >>> nn.output_shape(layer, (26, 26, 100))
        (22, 22, 500)
    """

    filters: int
    kernel_size: Union[int, tuple[int, int]]
    strides: Union[int, tuple[int, int]] = 1
    padding: kernels.PaddingLike = "valid"
    dilation: Union[int, tuple[int, int]] = 1
    groups: int = 1
    activation: activations.ActivationLike = None
    use_bias: bool = True
    kernel_init: InitLike = "glorot_uniform"
    bias_init: InitLike = "zeros"
    compute_dtype: Optional[str] = None

    def __post_init__(self):
        owner = type(self).__name__
        _checks.positive_int(owner, "filters", self.filters)
        _set(self, "kernel_size", kernels._pair(owner, "kernel_size", self.kernel_size))
        _set(self, "strides", kernels._pair(owner, "strides", self.strides))
        _set(self, "dilation", kernels._pair(owner, "dilation", self.dilation))
        _set(self, "padding", kernels._normalize_padding(owner, self.padding))
        _checks.positive_int(owner, "groups", self.groups)
        _common.check_options(owner, self)

    @property
    def _owner(self) -> str:
        return f"Conv2D(filters={self.filters}, kernel_size={self.kernel_size})"

    def _geometry(self, in_hw):
        return kernels._geometry(self._owner, "kernel", in_hw, self.kernel_size, self.strides,
                                 self.dilation, self.padding)

    def _check_shape(self, input_shape) -> Shape:
        shape = _checks.input_shape_of_rank(self._owner, input_shape, _HWC, _GRAYSCALE_HINT)
        if shape[2] % self.groups:
            raise ValueError(f"{self._owner}: the {shape[2]} input channels must be divisible "
                             f"by groups={self.groups}.")
        return shape

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = self._check_shape(input_shape)
        self._geometry(shape[:2])
        kshape = self.kernel_size + (shape[2] // self.groups, self.filters)
        return _common.init_kernel_bias(self, key, kshape, self.filters), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        _, (oh, ow) = self._geometry(shape[:2])
        return (oh, ow, self.filters)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        kernel = _common.kernel(self._owner, self, params, x)
        cin = kernel.shape[2] * self.groups
        x = _input(self._owner, x, kernel.dtype, 4, "(batch, height, width, ", cin,
                   f"Pass NHWC images with {cin} channels (x[..., None] adds a channel axis to "
                   f"grayscale batches), or init the layer with the input's shape.")
        self._geometry(x.shape[1:3])
        base.check_params(self._owner, self, params, x)
        xc, kc, accumulate = _common.compute_operands(self, x, kernel)
        y = kernels.conv2d(xc, kc, self.strides, self.padding, self.dilation, self.groups,
                           preferred_element_type=accumulate)
        return _common.bias_activation(self, params, y), state


@dataclasses.dataclass(frozen=True)
class Conv1D(Layer):
    """1-D convolution over sequences ``(batch, length, channels)``.

    .. math::

        y[n, t, o] = \\mathrm{act}\\Big(b_o + \\sum_{a, c}
                     x_{pad}[n, t S + a d, c]\\, w[a, c, o]\\Big)

    Computed by :func:`jaxdl.kernels.conv2d` on a height-1 image. Output length
    ``floor((L + P_before + P_after - d (f - 1) - 1) / S) + 1``.

    Args:
        filters: number of output channels.
        kernel_size: window length ``f`` (an int).
        strides: step ``S``.
        padding: ``"valid"``, ``"same"`` (TF/Keras), ``"causal"`` (``d (f - 1)``
            zeros on the left only, so output ``t`` sees no input after ``t``),
            an int, or a ``(before, after)`` pair.
        dilation: spacing ``d`` between taps.
        activation, use_bias, kernel_init, bias_init: as in :class:`Conv2D`.
        groups: channel groups, as in :class:`Conv2D` (keyword, after the
            arguments of the API table).
        compute_dtype: low-precision compute, as in :class:`Conv2D`.

    Params: ``{"kernel": (f, C / G, filters), "bias": (filters,)}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Conv1D(8, 3, padding="causal")
        >>> params, state = layer.init(jax.random.key(0), (20, 4))
        >>> layer.apply(params, state, jnp.ones((2, 20, 4)))[0].shape
        (2, 20, 8)
    """

    filters: int
    kernel_size: int
    strides: int = 1
    padding: Union[str, int, tuple[int, int]] = "valid"
    dilation: int = 1
    activation: activations.ActivationLike = None
    use_bias: bool = True
    kernel_init: InitLike = "glorot_uniform"
    bias_init: InitLike = "zeros"
    groups: int = 1
    compute_dtype: Optional[str] = None

    def __post_init__(self):
        owner = "Conv1D"
        _checks.positive_int(owner, "filters", self.filters)
        for name in ("kernel_size", "strides", "dilation", "groups"):
            value = getattr(self, name)
            if isinstance(value, (tuple, list)) and len(value) == 1:
                _set(self, name, value[0])
            _checks.positive_int(owner, name, getattr(self, name))
        pad = kernels._normalize_padding(owner, self.padding, ndim=1,
                                         strings=("valid", "same", "causal"))
        _set(self, "padding", pad if isinstance(pad, str) else pad[0])
        _common.check_options(owner, self)

    @property
    def _owner(self) -> str:
        return f"Conv1D(filters={self.filters}, kernel_size={self.kernel_size})"

    def _geometry(self, length: int) -> tuple[tuple[int, int], int]:
        """(before, after) padding and output length for inputs of ``length``."""
        eff = self.dilation * (self.kernel_size - 1) + 1
        if self.padding == "causal":
            pads = (eff - 1, 0)
        elif self.padding == "same":
            pads = kernels._same_pads(length, eff, self.strides)
        elif self.padding == "valid":
            pads = (0, 0)
        else:
            pads = self.padding
        _, out = kernels._axis_geometry(self._owner, "kernel", length, self.kernel_size,
                                        self.strides, self.dilation, pads)
        return pads, out

    def _check_shape(self, input_shape) -> Shape:
        shape = _checks.input_shape_of_rank(self._owner, input_shape, ("length", "channels"))
        if shape[1] % self.groups:
            raise ValueError(f"{self._owner}: the {shape[1]} input channels must be divisible "
                             f"by groups={self.groups}.")
        return shape

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = self._check_shape(input_shape)
        self._geometry(shape[0])
        kshape = (self.kernel_size, shape[1] // self.groups, self.filters)
        return _common.init_kernel_bias(self, key, kshape, self.filters), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        return (self._geometry(shape[0])[1], self.filters)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        kernel = _common.kernel(self._owner, self, params, x)
        cin = kernel.shape[1] * self.groups
        x = _input(self._owner, x, kernel.dtype, 3, "(batch, length, ", cin,
                   f"Pass sequences with {cin} channels (x[..., None] adds a channel axis), "
                   f"or init the layer with the input's shape.")
        pads, _ = self._geometry(x.shape[1])
        base.check_params(self._owner, self, params, x)
        xc, kc, accumulate = _common.compute_operands(self, x, kernel)
        y = kernels.conv2d(xc[:, None], kc[None], (1, self.strides), ((0, 0), pads),
                           (1, self.dilation), self.groups, preferred_element_type=accumulate)
        return _common.bias_activation(self, params, y[:, 0]), state


@dataclasses.dataclass(frozen=True)
class Conv2DTranspose(Layer):
    """Transposed 2-D convolution: learned upsampling, the decoder's conv.

    Every input pixel adds a copy of the kernel, scaled by its value, to the
    output, ``S`` pixels apart (see :func:`jaxdl.kernels.conv2d_transpose`):

    .. math::

        y[n, i S_h + a d_h, j S_w + b d_w, o] \\mathrel{+}= x[n, i, j, c]\\, w[a, b, c, o]

    then bias and activation. Output size per axis: ``(H - 1) S + d (f - 1) + 1``
    for ``"valid"``, ``H S`` for ``"same"`` (the Keras formulas), so a
    ``Conv2DTranspose(k, 3, strides=2, padding="same")`` doubles the height and
    width, undoing a ``Conv2D(k, 3, strides=2, padding="same")``.

    Args:
        filters: number of output channels.
        kernel_size: int or pair.
        strides: int or pair (the upsampling factor).
        padding: ``"valid"`` or ``"same"``.
        dilation: int or pair.
        activation, use_bias, kernel_init, bias_init: as in :class:`Conv2D`.

    Params: ``{"kernel": (f_h, f_w, C, filters), "bias": (filters,)}`` (HWIO with
    I the layer's input channels; Keras stores the transpose, ``(f_h, f_w,
    filters, C)``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Conv2DTranspose(16, 3, strides=2, padding="same")
        >>> nn.output_shape(layer, (7, 7, 32))
        (14, 14, 16)
    """

    filters: int
    kernel_size: Union[int, tuple[int, int]]
    strides: Union[int, tuple[int, int]] = 1
    padding: str = "valid"
    dilation: Union[int, tuple[int, int]] = 1
    activation: activations.ActivationLike = None
    use_bias: bool = True
    kernel_init: InitLike = "glorot_uniform"
    bias_init: InitLike = "zeros"
    name_prefix = "conv2d_transpose"

    def __post_init__(self):
        owner = "Conv2DTranspose"
        _checks.positive_int(owner, "filters", self.filters)
        _set(self, "kernel_size", kernels._pair(owner, "kernel_size", self.kernel_size))
        _set(self, "strides", kernels._pair(owner, "strides", self.strides))
        _set(self, "dilation", kernels._pair(owner, "dilation", self.dilation))
        pad = kernels._normalize_padding(owner, self.padding)
        if not isinstance(pad, str):
            raise ValueError(f"{owner}: padding must be 'valid' or 'same', got {self.padding!r}.")
        _set(self, "padding", pad)
        _common.check_options(owner, self)

    @property
    def _owner(self) -> str:
        return f"Conv2DTranspose(filters={self.filters}, kernel_size={self.kernel_size})"

    def _check_shape(self, input_shape) -> Shape:
        return _checks.input_shape_of_rank(self._owner, input_shape, _HWC, _GRAYSCALE_HINT)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = self._check_shape(input_shape)
        kshape = self.kernel_size + (shape[2], self.filters)
        return _common.init_kernel_bias(self, key, kshape, self.filters), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        _, _, _, out = kernels._transpose_setup(self._owner, (1,) + shape,
                                                self.kernel_size + (shape[2], self.filters),
                                                self.strides, self.padding, self.dilation)
        return out + (self.filters,)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        kernel = _common.kernel(self._owner, self, params, x)
        cin = kernel.shape[2]
        x = _input(self._owner, x, kernel.dtype, 4, "(batch, height, width, ", cin,
                   f"Pass NHWC inputs with {cin} channels, or init the layer with the input's "
                   f"shape.")
        base.check_params(self._owner, self, params, x)
        y = kernels.conv2d_transpose(x, kernel, self.strides, self.padding, self.dilation)
        return _common.bias_activation(self, params, y), state
