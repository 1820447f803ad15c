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
from typing import Callable, Optional, Sequence, Union

from jaxdl import _checks, kernels
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import _common, activations, base
from jaxdl.nn.base import Layer

InitLike = Union[str, Callable]
IntOrTuple = Union[int, Sequence[int]]


def _kw(default):
    """A keyword-only field: everything after the positional prefix of the API table."""
    return dataclasses.field(default=default, kw_only=True)


@dataclasses.dataclass(frozen=True)
class _Conv(Layer):
    """What every convolution shares, for ``num_spatial_dims`` spatial axes.

    Subclasses fix ``num_spatial_dims`` (as equinox's ``Conv1d``/``Conv2d`` do),
    the padding strings they accept, whether they are transposed, and which
    fields are positional: every field is declared here, in one order, and a
    subclass only turns some of them positional by declaring them again.
    Hyperparameters are validated and normalized once, in ``__post_init__``:
    ``kernel_size``, ``strides`` and ``dilation`` become tuples of
    ``num_spatial_dims`` ints, ``padding`` a string or one pair per axis.
    """

    filters: int
    kernel_size: IntOrTuple
    strides: IntOrTuple = 1
    padding: kernels.PaddingLike = "valid"
    dilation: IntOrTuple = _kw(1)
    groups: int = _kw(1)
    activation: activations.ActivationLike = _kw(None)
    use_bias: bool = _kw(True)
    kernel_init: InitLike = _kw("glorot_uniform")
    bias_init: InitLike = _kw("zeros")
    compute_dtype: Optional[str] = _kw(None)

    num_spatial_dims = 2
    transpose = False
    padding_strings = kernels.PADDING_STRINGS
    input_axes = ("height", "width", "channels")
    # XLA:CPU convolutions run ~7x slower inside a loop body (jax-ml/jax#12868).
    scan_friendly = False

    def __post_init__(self):
        owner, n = type(self).__name__, self.num_spatial_dims
        _checks.positive_int(owner, "filters", self.filters)
        for name in ("kernel_size", "strides", "dilation"):
            object.__setattr__(self, name,
                               kernels.normalize_tuple(owner, name, getattr(self, name), n))
        _checks.positive_int(owner, "groups", self.groups)
        if self.transpose and not isinstance(self.padding, str):
            raise ValueError(f"{owner}: padding must be 'valid' or 'same', got "
                             f"{self.padding!r}.")
        object.__setattr__(self, "padding", kernels.normalize_padding(
            owner, self.padding, n, strings=self.padding_strings))
        _common.check_options(owner, self)

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}(filters={self.filters}, kernel_size={self.kernel_size})"

    def _geometry(self, spatial: Sequence[int]):
        """``(pads, out_spatial)``: padding of the equivalent convolution, output shape."""
        if self.transpose:
            return kernels.conv_transpose_geometry(self._owner, spatial, self.kernel_size,
                                                   self.strides, self.dilation, self.padding)
        return kernels.conv_geometry(self._owner, "kernel", spatial, self.kernel_size,
                                     self.strides, self.dilation, self.padding)

    def _check_shape(self, input_shape) -> Shape:
        hint = ("For grayscale images add a channel axis: (H, W, 1)."
                if self.num_spatial_dims == 2 else "")
        shape = _checks.input_shape_of_rank(self._owner, input_shape, self.input_axes, hint)
        if shape[-1] % self.groups:
            raise ValueError(f"{self._owner}: the {shape[-1]} input channels must be divisible "
                             f"by groups={self.groups}.")
        self._geometry(shape[:-1])
        return shape

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = self._check_shape(input_shape)
        kshape = self.kernel_size + (shape[-1] // self.groups, self.filters)
        return _common.init_kernel_bias(self, key, kshape, self.filters), {}

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        return self._geometry(shape[:-1])[1] + (self.filters,)

    def _input(self, x, dtype, channels: int) -> Array:
        """``x`` by the layer input policy, with the rank and channels the kernel expects."""
        x = base.layer_input(self._owner, x, dtype)
        if x.ndim != self.num_spatial_dims + 2 or x.shape[-1] != channels:
            layout = ", ".join(("batch",) + self.input_axes[:-1] + (str(channels),))
            raise ValueError(
                f"{self._owner}: expected input of shape ({layout}) (channels last, {channels} "
                f"channels as the kernel was built for), but received x of shape "
                f"{tuple(x.shape)}. Pass inputs with {channels} channels (x[..., None] adds a "
                f"channel axis, x[None] a batch axis), or init the layer with the input's "
                f"shape.")
        return x

    def _convolve(self, x: Array, kernel: Array, pads, accumulate) -> Array:
        """The kernels call: N-d inputs are computed as 2-D ones with leading 1-axes."""
        if self.transpose:
            return kernels.conv2d_transpose(x, kernel, self.strides, self.padding, self.dilation,
                                            self.groups, preferred_element_type=accumulate)
        lead = 2 - self.num_spatial_dims
        y = kernels.conv2d(x.reshape(x.shape[:1] + (1,) * lead + x.shape[1:]),
                           kernel.reshape((1,) * lead + kernel.shape),
                           (1,) * lead + self.strides, ((0, 0),) * lead + tuple(pads),
                           (1,) * lead + self.dilation, self.groups,
                           preferred_element_type=accumulate)
        return y.reshape(y.shape[:1] + y.shape[1 + lead:])

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        kernel = _common.kernel(self._owner, self, params, x)
        x = self._input(x, kernel.dtype, kernel.shape[-2] * self.groups)
        pads, _ = self._geometry(x.shape[1:-1])
        base.check_params(self._owner, self, params, x)
        xc, kc, accumulate = _common.compute_operands(self, x, kernel)
        y = self._convolve(xc, kc, pads, accumulate)
        return _common.bias_activation(self, params, y), state


@dataclasses.dataclass(frozen=True)
class Conv2D(_Conv):
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

    Keyword-only:
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

    dilation: IntOrTuple = 1
    groups: int = 1
    activation: activations.ActivationLike = None


@dataclasses.dataclass(frozen=True)
class Conv1D(_Conv):
    """1-D convolution over sequences ``(batch, length, channels)``.

    .. math::

        y[n, t, o] = \\mathrm{act}\\Big(b_o + \\sum_{a, c}
                     x_{pad}[n, t S + a d, c]\\, w[a, c, o]\\Big)

    Computed by :func:`jaxdl.kernels.conv2d` on a height-1 image. Output length
    ``floor((L + P_before + P_after - d (f - 1) - 1) / S) + 1``.

    Args:
        filters: number of output channels.
        kernel_size: window length ``f`` (an int; stored as ``(f,)``).
        strides: step ``S``.
        padding: ``"valid"``, ``"same"`` (TF/Keras), ``"causal"`` (``d (f - 1)``
            zeros on the left only, so output ``t`` sees no input after ``t``),
            an int, or a ``(before, after)`` pair (stored as ``((before, after),)``).
        dilation: spacing ``d`` between taps.
        activation: as in :class:`Conv2D`.
        groups, use_bias, kernel_init, bias_init, compute_dtype: keyword-only,
            as in :class:`Conv2D`.

    Params: ``{"kernel": (f, C / G, filters), "bias": (filters,)}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Conv1D(8, 3, padding="causal")
        >>> params, state = layer.init(jax.random.key(0), (20, 4))
        >>> layer.apply(params, state, jnp.ones((2, 20, 4)))[0].shape
        (2, 20, 8)
    """

    dilation: IntOrTuple = 1
    activation: activations.ActivationLike = None

    num_spatial_dims = 1
    padding_strings = ("valid", "same", "causal")
    input_axes = ("length", "channels")


@dataclasses.dataclass(frozen=True)
class Conv2DTranspose(_Conv):
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

    Keyword-only:
        dilation: int or pair.
        groups: channel groups ``G``: input channels of group ``g`` scatter
            only into the output channels of group ``g``; ``C`` and
            ``filters`` divisible by ``G``.
        activation, use_bias, kernel_init, bias_init, compute_dtype: as in
            :class:`Conv2D`.

    Params: ``{"kernel": (f_h, f_w, C / G, filters), "bias": (filters,)}`` (HWIO
    with I the layer's input channels; Keras stores the transpose, ``(f_h, f_w,
    filters, C)``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Conv2DTranspose(16, 3, strides=2, padding="same")
        >>> nn.output_shape(layer, (7, 7, 32))
        (14, 14, 16)
    """

    transpose = True
    name_prefix = "conv2d_transpose"
