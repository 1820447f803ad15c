"""JIT-compiled compute kernels: matmul, 2-D convolution, pooling, output sizes.

Every kernel is a pure function of arrays. The arguments that fix the shape of
the computation (strides, padding, dilation, groups, window sizes, precision)
are checked and normalized in Python, then passed as static arguments to a
``jax.jit``-compiled core, so the same call compiles once per configuration and
runs unchanged on CPU, GPU and TPU. The kernels can also be called inside a
user's own ``jax.jit``, ``jax.grad`` or ``jax.vmap``.

Layout conventions (the TensorFlow/Keras ones):

* images are **NHWC**: ``(batch, height, width, channels)``;
* convolution kernels are **HWIO**: ``(kernel_h, kernel_w, in_channels // groups,
  out_channels)``.

What the course calls "convolution" is, like in every deep-learning library, a
*cross-correlation*: the kernel is slid over the image without flipping,

.. math::

    y[n, i, j, o] = \\sum_{a, b, c} x_{pad}[n, i S_h + a d_h, j S_w + b d_w, c]\\;
                    w[a, b, c, o],

with strides ``S``, dilation ``d`` and the input zero-padded first.

Padding
-------
``padding`` is one of

* ``"valid"``: no padding; the window only visits positions where it fits;
* ``"same"``: TensorFlow/Keras semantics. The output has ``ceil(H / S)`` rows;
  the total padding ``max((ceil(H/S) - 1) S + d (f - 1) + 1 - H, 0)`` is split
  with the extra row (when odd) at the bottom/right;
* an int ``p``: ``p`` rows/columns on every side;
* a pair ``(p_h, p_w)``: ``p_h`` at top and bottom, ``p_w`` left and right;
* a pair of pairs ``((top, bottom), (left, right))``.

Output size
-----------
With symmetric padding ``P`` the output size along one axis is

.. math::

    H' = \\left\\lfloor \\frac{H + 2P - d (f - 1) - 1}{S} \\right\\rfloor + 1,

which for ``d = 1`` is the course's ``(H + 2P - f) / S + 1`` (rounded down).
:func:`conv_output_size` evaluates it.

The helpers behind these rules are public so that layers (jaxdl.nn's, or a
user's own) validate and size their windows exactly as the kernels do:
:func:`normalize_tuple` and :func:`normalize_padding` check and normalize the
arguments, :func:`same_padding` is the ``"same"`` rule, and
:func:`axis_geometry`, :func:`conv_geometry` and
:func:`conv_transpose_geometry` give explicit pads and output sizes for any
number of spatial axes.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxdl import kernels
    >>> x = jnp.ones((1, 28, 28, 1))
    >>> w = jnp.ones((3, 3, 1, 8))
    >>> kernels.conv2d(x, w, strides=2, padding="same").shape
    (1, 14, 14, 8)
    >>> kernels.conv_output_size(28, 3, stride=2)
    13
"""

from __future__ import annotations

import functools
from typing import Any, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdl import _checks
from jaxdl._typing import Array

__all__ = [
    "matmul", "conv2d", "conv2d_im2col", "conv2d_transpose", "max_pool2d", "avg_pool2d",
    "conv_output_size", "POOL_METHODS", "resolve_pool_method",
    # padding and window geometry, shared with the layers
    "PADDING_STRINGS", "normalize_tuple", "normalize_padding", "same_padding", "axis_geometry",
    "conv_geometry", "conv_transpose_geometry",
]

PaddingLike = Union[str, int, Sequence[int], Sequence[Sequence[int]]]
Pads = tuple[tuple[int, int], tuple[int, int]]


POOL_METHODS = ("auto", "reduce_window", "reshape", "slices")
"""Implementations of :func:`max_pool2d` and :func:`avg_pool2d` (see there)."""

_DN = ("NHWC", "HWIO", "NHWC")


# ------------------------------------------------------------------------------------------
# Padding and window geometry. Public so that every layer (jaxdl.nn's and a user's own)
# validates and sizes its windows by the kernels' rules; `owner` names the caller in errors.
# ------------------------------------------------------------------------------------------

PADDING_STRINGS = ("valid", "same")
"""The padding strings the kernels accept (see :func:`normalize_padding`)."""


def normalize_tuple(owner: str, name: str, value: Any, ndim: int = 2) -> tuple[int, ...]:
    """A window size, stride or dilation as a tuple of ``ndim`` positive ints.

    Args:
        owner: the caller, named in error messages (e.g. ``"Conv2D"``).
        name: the argument, named in error messages (e.g. ``"strides"``).
        value: a positive int (the same on every axis) or ``ndim`` positive ints.
        ndim: the number of spatial axes.

    Returns:
        A tuple of ``ndim`` Python ints, hashable (usable as a static argument).

    Raises:
        TypeError: ``value`` is neither an int nor a sequence of ``ndim`` ints
            (bools are refused).
        ValueError: an entry is zero or negative.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.normalize_tuple("Conv2D", "strides", 2)
        (2, 2)
        >>> kernels.normalize_tuple("Conv1D", "kernel_size", [5], ndim=1)
        (5,)
    """
    if _checks.is_int(value):
        value = (value,) * ndim
    if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != ndim
            or not all(_checks.is_int(v) for v in value)):
        many = "a pair of positive ints (height, width)" if ndim == 2 else (
            f"a sequence of {ndim} positive ints")
        raise TypeError(f"{owner}: `{name}` must be a positive int or {many}, got {value!r}. "
                        f"Use e.g. {name}=2.")
    if any(v <= 0 for v in value):
        raise ValueError(f"{owner}: `{name}` must be positive, got {tuple(value)!r}. Use e.g. "
                         f"{name}=1 or {name}={(2,) * ndim}.")
    return tuple(int(v) for v in value)


def _padding_pairs(padding: Any, ndim: int) -> list[tuple[int, int]] | None:
    """Explicit ``padding`` as ``ndim`` ``(before, after)`` pairs; ``None`` if malformed."""
    if _checks.is_int(padding):
        return [(int(padding), int(padding))] * ndim
    if not isinstance(padding, Sequence) or isinstance(padding, str):
        return None
    if ndim == 1 and len(padding) == 2 and all(_checks.is_int(v) for v in padding):
        return [(int(padding[0]), int(padding[1]))]  # one axis: (before, after)
    if len(padding) != ndim:
        return None
    pairs = []
    for p in padding:
        if _checks.is_int(p):
            pairs.append((int(p), int(p)))
        elif (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
              and all(_checks.is_int(v) for v in p)):
            pairs.append((int(p[0]), int(p[1])))
        else:
            return None
    return pairs


def normalize_padding(owner: str, padding: Any, ndim: int = 2,
                      strings: Sequence[str] = PADDING_STRINGS):
    """A ``padding`` argument as a lowercase string or ``ndim`` ``(before, after)`` pairs.

    Accepted forms (see the module docstring): one of ``strings`` (any case);
    an int ``p`` (``p`` on both sides of every axis); ``ndim`` entries, each an
    int or a ``(before, after)`` pair; and, for ``ndim = 1``, one
    ``(before, after)`` pair.

    Args:
        owner: the caller, named in error messages.
        padding: the padding as the user gave it.
        ndim: the number of spatial axes.
        strings: the padding names the caller supports (``Conv1D`` adds
            ``"causal"``).

    Returns:
        One of ``strings``, or a hashable tuple of ``ndim`` pairs of ints >= 0.

    Raises:
        ValueError: an unknown string or a negative amount.
        TypeError: any other malformed value.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.normalize_padding("Conv2D", "SAME")
        'same'
        >>> kernels.normalize_padding("Conv2D", (1, (0, 2)))
        ((1, 1), (0, 2))
    """
    expected = (f"one of {', '.join(repr(s) for s in strings)}, an int, a pair of ints or a "
                f"pair of (before, after) pairs")
    if isinstance(padding, str):
        if padding.lower() not in strings:
            raise ValueError(f"{owner}: unknown padding {padding!r}; expected {expected}.")
        return padding.lower()
    pairs = _padding_pairs(padding, ndim)
    if pairs is None:
        raise TypeError(f"{owner}: padding must be {expected}; got {padding!r}.")
    if any(v < 0 for p in pairs for v in p):
        raise ValueError(f"{owner}: padding amounts must be >= 0, got {padding!r}. Use 0 for "
                         f"no padding, or crop the input instead.")
    return tuple(pairs)


def same_padding(size: int, window: int, stride: int = 1, dilation: int = 1
                 ) -> tuple[int, int]:
    """TensorFlow/Keras ``"same"`` padding along one axis.

    The output has ``ceil(size / stride)`` positions; the total padding
    ``max((ceil(size / stride) - 1) S + d (f - 1) + 1 - size, 0)`` is split
    with the odd row, if any, after (bottom/right).

    Args:
        size: input length.
        window: window (kernel or pool) length ``f``.
        stride: step ``S``.
        dilation: spacing ``d`` between window taps.

    Returns:
        ``(before, after)``.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.same_padding(5, 2, stride=2)  # the course's 5x5 map pooled 2x2 to 3x3
        (0, 1)
        >>> kernels.same_padding(7, 3, dilation=2)
        (2, 2)
    """
    eff = dilation * (window - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def axis_geometry(owner: str, what: str, size: int, window: int, stride: int, dilation: int,
                  padding) -> tuple[tuple[int, int], int]:
    """Explicit padding and output length of a window slid along one axis.

    Args:
        owner: the caller, named in error messages.
        what: the window, named in error messages (``"kernel"``, ``"pool window"``).
        size: input length ``H``.
        window: window length ``f``.
        stride: step ``S``.
        dilation: spacing ``d`` between taps.
        padding: one axis of a normalized padding: ``"valid"``, ``"same"``,
            ``"causal"`` (``d (f - 1)`` before, nothing after: output ``t``
            sees inputs up to ``t`` only) or a ``(before, after)`` pair.

    Returns:
        ``((before, after), H')`` with
        ``H' = floor((H + before + after - d (f - 1) - 1) / S) + 1``.

    Raises:
        ValueError: the (dilated) window is longer than the padded input.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.axis_geometry("Conv2D", "kernel", 28, 3, 2, 1, "same")
        ((0, 1), 14)
        >>> kernels.axis_geometry("Conv1D", "kernel", 10, 3, 1, 2, "causal")
        ((4, 0), 10)
    """
    eff = dilation * (window - 1) + 1
    if padding == "valid":
        pads = (0, 0)
    elif padding == "same":
        pads = same_padding(size, window, stride, dilation)
    elif padding == "causal":
        pads = (eff - 1, 0)
    else:
        pads = tuple(padding)
    padded = size + pads[0] + pads[1]
    if eff > padded:
        dil = f" (dilated to {eff})" if dilation > 1 else ""
        raise ValueError(
            f"{owner}: the {what} of size {window}{dil} is larger than the padded input of "
            f"size {padded} (input {size} + padding {pads[0]} + {pads[1]}). Use a smaller "
            f"{what}, padding='same', or a larger input.")
    return pads, (padded - eff) // stride + 1


def conv_geometry(owner: str, what: str, in_shape: Sequence[int], window: Sequence[int],
                  strides: Sequence[int], dilation: Sequence[int], padding
                  ) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Explicit padding and output shape of a window slid over ``len(in_shape)`` axes.

    :func:`axis_geometry` on every spatial axis.

    Args:
        owner: the caller, named in error messages.
        what: the window, named in error messages.
        in_shape: the spatial input shape, e.g. ``(H, W)``.
        window: the window shape, one entry per axis.
        strides: one entry per axis.
        dilation: one entry per axis.
        padding: a normalized padding (:func:`normalize_padding`): one string
            for all axes or one ``(before, after)`` pair per axis.

    Returns:
        ``(pads, out_shape)``: one ``(before, after)`` pair and one output
        length per axis.

    Raises:
        ValueError: on some axis the window is longer than the padded input.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.conv_geometry("Conv2D", "kernel", (5, 7), (3, 2), (2, 1), (1, 1), "same")
        (((1, 1), (0, 1)), (3, 7))
    """
    per_axis = padding if isinstance(padding, tuple) else (padding,) * len(in_shape)
    geo = [axis_geometry(owner, what, *axis) for axis in
           zip(in_shape, window, strides, dilation, per_axis, strict=True)]
    return tuple(pads for pads, _ in geo), tuple(out for _, out in geo)


def conv_transpose_geometry(owner: str, in_shape: Sequence[int], window: Sequence[int],
                            strides: Sequence[int], dilation: Sequence[int], padding: str
                            ) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Padding of the equivalent convolution and output shape of a transposed convolution.

    A transposed convolution is computed as a stride-1 convolution of the
    input dilated by the strides, with the flipped kernel. Along an axis with
    input ``H``, window ``f``, stride ``S``, dilation ``d`` (``f_eff = d (f - 1)
    + 1``) the full scatter has ``(H - 1) S + f_eff`` rows (``"valid"``);
    ``"same"`` crops it to ``H S`` rows, ``floor((f_eff - S) / 2)`` off the
    top and the rest off the bottom (zero rows are added when ``f_eff < S``).

    Args:
        owner: the caller, named in error messages.
        in_shape: the spatial input shape.
        window: the kernel's spatial shape.
        strides: one entry per axis.
        dilation: one entry per axis.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        ``(pads, out_shape)``: the ``(before, after)`` padding of the dilated
        input for the equivalent convolution, and the output length, per axis.

    Raises:
        ValueError: ``padding`` is not ``"valid"`` or ``"same"``.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.conv_transpose_geometry("Conv2DTranspose", (7, 7), (3, 3), (2, 2),
        ...                                 (1, 1), "same")
        (((2, 1), (2, 1)), (14, 14))
    """
    if padding not in PADDING_STRINGS:
        raise ValueError(f"{owner}: padding must be 'valid' or 'same', got {padding!r}.")
    pads, out = [], []
    for size, f, s, d in zip(in_shape, window, strides, dilation, strict=True):
        eff = d * (f - 1) + 1
        before, after = 0, 0
        if padding == "same":  # crop (or zero-extend) the full scatter to size * s, TF style
            total = eff - s
            before = max(total, 0) // 2
            after = total - before
        pads.append((eff - 1 - before, eff - 1 - after))
        out.append((size - 1) * s + eff - before - after)
    return tuple(pads), tuple(out)


def _check_float(owner: str, name: str, x: Any) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"{owner}: `{name}` must be a floating-point array, got dtype "
                        f"{jnp.result_type(x)}. Cast it, e.g. {name}.astype(jnp.float32).")


def _check_same_dtype(owner: str, x: Any, w: Any) -> None:
    if jnp.result_type(x) != jnp.result_type(w):
        raise TypeError(f"{owner}: `x` and `w` must have the same dtype, got {jnp.result_type(x)}"
                        f" and {jnp.result_type(w)}. Cast one of them; for low-precision "
                        f"compute with float32 accumulation pass both in bfloat16 with "
                        f"preferred_element_type=jnp.float32.")


def _normalize_pet(preferred_element_type):
    return None if preferred_element_type is None else jnp.dtype(preferred_element_type)


def _normalize_precision(owner: str, precision):
    """``None``, a ``lax.Precision`` or its name (any case) as a hashable static value."""
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str) and precision.upper() in lax.Precision.__members__:
        return lax.Precision[precision.upper()]
    raise ValueError(f"{owner}: unknown precision {precision!r}; expected None, "
                     f"'default', 'high', 'highest' or a jax.lax.Precision.")


# ------------------------------------------------------------------------------------------
# matmul
# ------------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnames=("dims", "precision", "preferred_element_type"))
def _dot_general(a, b, dims, precision, preferred_element_type):
    return lax.dot_general(a, b, dims, precision=precision,
                           preferred_element_type=preferred_element_type)


def matmul(a: Array, b: Array, precision=None, preferred_element_type=None) -> Array:
    """Matrix product on ``lax.dot_general``, jit-compiled.

    Two forms are accepted:

    * ``a`` of shape ``(..., k)`` and ``b`` of shape ``(k, n)``: contracts the
      last axis of ``a`` with ``b`` (the dense-layer case), giving ``(..., n)``;
    * ``a`` of shape ``(B..., m, k)`` and ``b`` of shape ``(B..., k, n)`` with
      the same leading batch axes: one batched product ``(B..., m, n)``.

    .. math:: c_{ij} = \\sum_k a_{ik} b_{kj}

    Args:
        a: left operand.
        b: right operand, same dtype as ``a``.
        precision: ``None`` (the backend default), ``"default"``, ``"high"``,
            ``"highest"`` or a ``jax.lax.Precision``. On GPUs and TPUs the
            default may compute float32 products in reduced precision
            (TF32/bf16 passes); ``"highest"`` asks for full float32.
        preferred_element_type: dtype of the accumulation and the result, e.g.
            ``jnp.float32`` for bfloat16 inputs: bf16 multiplies with float32
            accumulation, the mixed-precision recipe of accelerators.

    Returns:
        The product, in ``preferred_element_type`` if given, else ``a.dtype``.

    Raises:
        ValueError: the shapes do not fit one of the two forms.
        TypeError: ``a`` and ``b`` have different dtypes.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> a = jnp.ones((4, 3), jnp.bfloat16)
        >>> c = kernels.matmul(a, jnp.ones((3, 2), jnp.bfloat16),
        ...                    preferred_element_type=jnp.float32)
        >>> c.shape, c.dtype
        ((4, 2), dtype('float32'))
    """
    owner = "kernels.matmul"
    a, b = jnp.asarray(a), jnp.asarray(b)
    _check_same_dtype(owner, a, b)
    if a.ndim < 1 or b.ndim < 2:
        raise ValueError(f"{owner}: expected a of shape (..., k) and b of shape (k, n) (or "
                         f"batched (B..., m, k) @ (B..., k, n)), got a {a.shape} and b {b.shape}.")
    if b.ndim == 2:
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"{owner}: the last axis of a ({a.shape[-1]}) must equal the first "
                             f"axis of b ({b.shape[0]}); got a {a.shape} and b {b.shape}.")
        dims = (((a.ndim - 1,), (0,)), ((), ()))
    else:
        if a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"{owner}: batched operands must be (B..., m, k) and (B..., k, n) "
                             f"with the same batch axes B; got a {a.shape} and b {b.shape}.")
        batch = tuple(range(a.ndim - 2))
        dims = (((a.ndim - 1,), (b.ndim - 2,)), (batch, batch))
    return _dot_general(a, b, dims, _normalize_precision(owner, precision),
                        _normalize_pet(preferred_element_type))


# ------------------------------------------------------------------------------------------
# conv2d
# ------------------------------------------------------------------------------------------

def _conv_setup(owner: str, x, w, strides, padding, dilation, groups):
    """Check a conv2d call; return normalized (strides, pads, dilation, groups, out_hw)."""
    strides = normalize_tuple(owner, "strides", strides)
    dilation = normalize_tuple(owner, "dilation", dilation)
    padding = normalize_padding(owner, padding)
    if not _checks.is_int(groups) or groups <= 0:
        raise ValueError(f"{owner}: `groups` must be a positive int, got {groups!r}.")
    groups = int(groups)
    xs, ws = tuple(jnp.shape(x)), tuple(jnp.shape(w))
    if len(xs) != 4:
        raise ValueError(f"{owner}: expected x of shape (batch, height, width, channels) (NHWC), "
                         f"got shape {xs}. Add the batch axis with x[None] or the channel axis "
                         f"with x[..., None].")
    if len(ws) != 4:
        raise ValueError(f"{owner}: expected a kernel w of shape (kernel_h, kernel_w, "
                         f"in_channels // groups, out_channels) (HWIO), got shape {ws}.")
    if xs[3] != ws[2] * groups:
        raise ValueError(f"{owner}: x has {xs[3]} channels but the kernel of shape {ws} with "
                         f"groups={groups} expects {ws[2] * groups} (= kernel in-channels "
                         f"{ws[2]} x groups {groups}). Use a kernel of shape "
                         f"{ws[:2] + (xs[3] // groups if xs[3] % groups == 0 else '?', ws[3])}.")
    if ws[3] % groups:
        raise ValueError(f"{owner}: the kernel's {ws[3]} output channels must be divisible by "
                         f"groups={groups}.")
    pads, out_hw = conv_geometry(owner, "kernel", xs[1:3], ws[:2], strides, dilation, padding)
    return strides, pads, dilation, groups, out_hw


@functools.partial(jax.jit, static_argnames=("strides", "pads", "dilation", "groups",
                                             "precision", "preferred_element_type"))
def _conv2d_xla(x, w, strides, pads, dilation, groups, precision, preferred_element_type):
    return lax.conv_general_dilated(
        x, w, window_strides=strides, padding=pads, rhs_dilation=dilation,
        dimension_numbers=_DN, feature_group_count=groups, precision=precision,
        preferred_element_type=preferred_element_type)


def conv2d(x: Array, w: Array, strides=1, padding: PaddingLike = "valid", dilation=1,
           groups: int = 1, *, precision=None, preferred_element_type=None) -> Array:
    """2-D cross-correlation ("convolution" in deep learning), jit-compiled.

    Runs ``lax.conv_general_dilated`` with NHWC input and an HWIO kernel:

    .. math::

        y[n, i, j, o] = \\sum_{a, b, c} x_{pad}[n,\\, i S_h + a d_h,\\, j S_w + b d_w,\\,
                        g(o) C_g + c]\\; w[a, b, c, o]

    where ``C_g = C / groups`` and ``g(o) = o // (O / groups)`` is the group of
    output channel ``o``: with ``groups = G`` the input channels are split into
    ``G`` contiguous blocks, each convolved with its own ``O / G`` filters
    (``groups = C`` with ``O = C`` is a depthwise convolution).

    Args:
        x: input of shape ``(N, H, W, C)``.
        w: kernel of shape ``(f_h, f_w, C / groups, O)``, same dtype as ``x``.
        strides: int or pair ``S``.
        padding: ``"valid"``, ``"same"``, an int, a pair or a pair of pairs (see
            the module docstring).
        dilation: int or pair ``d``: kernel taps are ``d`` pixels apart.
        groups: number of channel groups ``G``; ``C`` and ``O`` divisible by ``G``.
        precision: as in :func:`matmul`.
        preferred_element_type: accumulation/result dtype, as in :func:`matmul`.

    Returns:
        ``(N, H', W', O)`` with ``H'`` from :func:`conv_output_size`.

    Raises:
        ValueError: wrong ranks, a channel mismatch between ``x`` and ``w``, a
            kernel larger than the padded input, an unknown padding string or a
            non-positive stride/dilation.
        TypeError: ``x`` and ``w`` differ in dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> img = jnp.arange(25.0).reshape(1, 5, 5, 1)
        >>> edge = jnp.array([[1.0, 0, -1]] * 3).reshape(3, 3, 1, 1)
        >>> kernels.conv2d(img, edge).shape
        (1, 3, 3, 1)
    """
    owner = "kernels.conv2d"
    x, w = jnp.asarray(x), jnp.asarray(w)
    strides, pads, dilation, groups, _ = _conv_setup(owner, x, w, strides, padding, dilation,
                                                     groups)
    _check_same_dtype(owner, x, w)
    return _conv2d_xla(x, w, strides, pads, dilation, groups,
                       _normalize_precision(owner, precision),
                       _normalize_pet(preferred_element_type))


def _window_slices(xp, window, strides, dilation, out_hw):
    """The ``f_h * f_w`` strided views of the padded ``xp``, one per window tap.

    View ``(a, b)`` holds ``xp[:, i S_h + a d_h, j S_w + b d_w, :]`` for all
    output positions ``(i, j)``: stacking them is im2col; reducing them with
    max or sum is pooling.
    """
    n, _, _, c = xp.shape
    oh, ow = out_hw
    views = []
    for a in range(window[0]):
        for b in range(window[1]):
            r0, c0 = a * dilation[0], b * dilation[1]
            views.append(lax.slice(xp, (0, r0, c0, 0),
                                   (n, r0 + (oh - 1) * strides[0] + 1,
                                    c0 + (ow - 1) * strides[1] + 1, c),
                                   (1, strides[0], strides[1], 1)))
    return views


@functools.partial(jax.jit, static_argnames=("strides", "pads", "dilation", "groups", "out_hw",
                                             "precision", "preferred_element_type"))
def _conv2d_im2col(x, w, strides, pads, dilation, groups, out_hw, precision,
                   preferred_element_type):
    n, _, _, c = x.shape
    fh, fw, cg, o = w.shape
    og = o // groups
    oh, ow = out_hw
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    # (N, H', W', f_h * f_w, C): each output position's receptive field, unrolled.
    cols = jnp.stack(_window_slices(xp, (fh, fw), strides, dilation, out_hw), axis=3)
    # Split channels into groups: rows (N H' W'), columns (f_h f_w C_g), one matrix per group.
    cols = cols.reshape(n * oh * ow, fh * fw, groups, cg).transpose(2, 0, 1, 3)
    cols = cols.reshape(groups, n * oh * ow, fh * fw * cg)
    wm = w.reshape(fh * fw, cg, groups, og).transpose(2, 0, 1, 3).reshape(groups, fh * fw * cg,
                                                                          og)
    y = lax.dot_general(cols, wm, (((2,), (1,)), ((0,), (0,))), precision=precision,
                        preferred_element_type=preferred_element_type)  # (G, N H' W', O_g)
    return y.reshape(groups, n, oh, ow, og).transpose(1, 2, 3, 0, 4).reshape(n, oh, ow, o)


def conv2d_im2col(x: Array, w: Array, strides=1, padding: PaddingLike = "valid", dilation=1,
                  groups: int = 1, *, precision=None, preferred_element_type=None) -> Array:
    """The same result as :func:`conv2d`, computed the way the course draws it.

    1. Pad ``x``.
    2. **im2col**: for every output position, unroll its ``f_h × f_w × C``
       receptive field into one row; all rows form the matrix
       ``X_col`` of shape ``(N H' W', f_h f_w C)``.
    3. Reshape the kernel to ``W_col`` of shape ``(f_h f_w C, O)``.
    4. One matrix product ``Y = X_col W_col`` gives every output pixel of every
       filter; reshape to ``(N, H', W', O)``.

    With ``groups = G`` step 4 is one batched product over the ``G`` groups.
    The patch matrix is ``f_h f_w`` times larger than the input, which is why
    libraries prefer direct algorithms; this version exists to show, and to
    test, that a convolution *is* a matrix product over patches.

    Args, returns and errors as in :func:`conv2d`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
        >>> w = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))
        >>> bool(jnp.allclose(kernels.conv2d_im2col(x, w, padding="same"),
        ...                   kernels.conv2d(x, w, padding="same"), atol=1e-4))
        True
    """
    owner = "kernels.conv2d_im2col"
    x, w = jnp.asarray(x), jnp.asarray(w)
    strides, pads, dilation, groups, out_hw = _conv_setup(owner, x, w, strides, padding,
                                                          dilation, groups)
    _check_same_dtype(owner, x, w)
    return _conv2d_im2col(x, w, strides, pads, dilation, groups, out_hw,
                          _normalize_precision(owner, precision),
                          _normalize_pet(preferred_element_type))


# ------------------------------------------------------------------------------------------
# conv2d_transpose
# ------------------------------------------------------------------------------------------

def _transpose_setup(owner, x_shape, w_shape, strides, padding, dilation, groups=1):
    """Check a conv2d_transpose call; return normalized (strides, pads, dilation, out_hw)."""
    if not _checks.is_int(groups) or groups <= 0 or (len(w_shape) == 4 and w_shape[3] % groups):
        raise ValueError(f"{owner}: `groups` must be a positive int dividing the kernel's output "
                         f"channels, got groups={groups!r} for a kernel of shape "
                         f"{tuple(w_shape)}.")
    strides = normalize_tuple(owner, "strides", strides)
    dilation = normalize_tuple(owner, "dilation", dilation)
    padding = normalize_padding(owner, padding)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{owner}: expected x of shape (batch, height, width, channels) and a "
                         f"kernel (kernel_h, kernel_w, in_channels, out_channels); got x "
                         f"{tuple(x_shape)} and w {tuple(w_shape)}.")
    if x_shape[3] != w_shape[2] * groups:
        raise ValueError(f"{owner}: x has {x_shape[3]} channels but the kernel of shape "
                         f"{tuple(w_shape)} with groups={groups} expects {w_shape[2] * groups}.")
    pads, out_hw = conv_transpose_geometry(owner, x_shape[1:3], w_shape[:2], strides, dilation,
                                           padding)
    return strides, pads, dilation, out_hw


@functools.partial(jax.jit, static_argnames=("strides", "pads", "dilation", "groups",
                                             "preferred_element_type"))
def _conv2d_transpose(x, w, strides, pads, dilation, groups, preferred_element_type):
    return lax.conv_general_dilated(x, jnp.flip(w, (0, 1)), window_strides=(1, 1),
                                    padding=pads, lhs_dilation=strides, rhs_dilation=dilation,
                                    dimension_numbers=_DN, feature_group_count=groups,
                                    preferred_element_type=preferred_element_type)


def conv2d_transpose(x: Array, w: Array, strides=1, padding: str = "valid",
                     dilation=1, groups: int = 1, *, preferred_element_type=None) -> Array:
    """Transposed 2-D convolution (a.k.a. "deconvolution"), jit-compiled.

    Each input pixel scatters a copy of the kernel, scaled by its value, into
    the output, ``S`` pixels apart:

    .. math::

        y_{full}[n, i S_h + a d_h, j S_w + b d_w, o] \\mathrel{+}= x[n, i, j, c]\\; w[a, b, c, o]

    This is the gradient of :func:`conv2d` with respect to its input (with the
    kernel's in/out axes swapped), so it undoes a strided convolution's change
    of shape. The full output has ``(H - 1) S + d (f - 1) + 1`` rows
    (``"valid"``); ``"same"`` crops it to ``H S`` rows as TensorFlow/Keras do
    (``floor((f_eff - S) / 2)`` rows off the top, the rest off the bottom; zero
    rows are appended instead when ``f_eff < S``).

    Args:
        x: input ``(N, H, W, C)``.
        w: kernel ``(f_h, f_w, C, O)`` (HWIO from the layer's point of view).
        strides: int or pair ``S`` (the upsampling factor).
        padding: ``"valid"`` or ``"same"``.
        dilation: int or pair ``d``.
        groups: channel groups ``G``: input channels ``g C / G ...`` scatter
            only into output channels ``g O / G ...``; ``w`` is then
            ``(f_h, f_w, C / G, O)``.
        preferred_element_type: accumulation/result dtype, as in :func:`matmul`.

    Returns:
        ``(N, H_out, W_out, O)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> kernels.conv2d_transpose(jnp.ones((1, 7, 7, 4)), jnp.ones((3, 3, 4, 2)),
        ...                          strides=2, padding="same").shape
        (1, 14, 14, 2)
    """
    owner = "kernels.conv2d_transpose"
    x, w = jnp.asarray(x), jnp.asarray(w)
    strides, pads, dilation, _ = _transpose_setup(owner, x.shape, w.shape, strides, padding,
                                                  dilation, groups)
    _check_same_dtype(owner, x, w)
    return _conv2d_transpose(x, w, strides, pads, dilation, int(groups),
                             _normalize_pet(preferred_element_type))


# ------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------

def _pool_setup(owner, x, pool_size, strides, padding, method):
    pool = normalize_tuple(owner, "pool_size", pool_size)
    strides = pool if strides is None else normalize_tuple(owner, "strides", strides)
    padding = normalize_padding(owner, padding)
    if method not in POOL_METHODS:
        raise ValueError(f"{owner}: unknown method {method!r}; expected one of {POOL_METHODS}.")
    xs = tuple(jnp.shape(x))
    if len(xs) != 4:
        raise ValueError(f"{owner}: expected x of shape (batch, height, width, channels) (NHWC), "
                         f"got shape {xs}. Add the batch axis with x[None] or the channel axis "
                         f"with x[..., None].")
    _check_float(owner, "x", x)
    if isinstance(padding, tuple):
        for (b, a), f in zip(padding, pool, strict=True):
            if b >= f or a >= f:
                raise ValueError(f"{owner}: explicit padding {padding!r} must be smaller than "
                                 f"the pool window {pool} on each side, or some windows would "
                                 f"hold padding only.")
    pads, out_hw = conv_geometry(owner, "pool window", xs[1:3], pool, strides, (1, 1), padding)
    return pool, strides, pads, out_hw


def _separable_reduce(xp, pool, strides, out_hw, op):
    """Reduce each ``f_h × f_w`` window of ``xp`` with ``op`` (max or add), in two passes.

    Both reductions are separable: first over the ``f_h`` strided row views
    (giving ``(N, H', W_pad, C)``), then over the ``f_w`` strided column views
    of that. ``f_h + f_w`` slices instead of ``f_h · f_w``, and the gradient is
    as many cheap (interior-)pads.
    """
    n, _, wp, c = xp.shape
    (fh, fw), (sh, sw), (oh, ow) = pool, strides, out_hw
    rows = None
    for a in range(fh):
        v = lax.slice(xp, (0, a, 0, 0), (n, a + (oh - 1) * sh + 1, wp, c), (1, sh, 1, 1))
        rows = v if rows is None else op(rows, v)
    y = None
    for b in range(fw):
        v = lax.slice(rows, (0, 0, b, 0), (n, oh, b + (ow - 1) * sw + 1, c), (1, 1, sw, 1))
        y = v if y is None else op(y, v)
    return y


def resolve_pool_method(method: str, kind: str, pool, strides) -> str:
    """The pooling implementation that ``method`` names; for ``"auto"``, the one picked.

    ``"auto"`` was chosen by measurement (benchmarks/bench_kernels.py reports it
    next to the alternatives).

    On XLA:CPU the gradient of a ``reduce_window`` max is a select-and-scatter that
    runs 3-10x slower than the gradient of the separable max over strided views
    ("slices"), which also beat "reshape" in every measured max case. For average
    pooling ``reduce_window`` (whose gradient is cheap) was as fast as or faster
    than the alternatives. Other backends keep XLA's native ``reduce_window``.

    Args:
        method: ``"auto"``, ``"reduce_window"``, ``"slices"`` or ``"reshape"``.
        kind: ``"max"`` or ``"avg"``.
        pool: the window ``(f_h, f_w)``.
        strides: the steps ``(s_h, s_w)``.

    Returns:
        The method name :func:`max_pool2d` / :func:`avg_pool2d` run with.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.resolve_pool_method("reduce_window", "max", (2, 2), (2, 2))
        'reduce_window'
    """
    if method != "auto":
        return method
    if kind == "max" and jax.default_backend() == "cpu":
        return "slices"
    return "reduce_window"


def _pool_counts(in_hw, pool, strides, pads, out_hw) -> np.ndarray:
    """How many real (non-padding) inputs each window covers, shape (1, H', W', 1)."""
    counts = []
    for size, f, s, (b, _), o in zip(in_hw, pool, strides, pads, out_hw, strict=True):
        start = np.arange(o) * s - b
        counts.append(np.minimum(start + f, size) - np.maximum(start, 0))
    return (counts[0][:, None] * counts[1][None, :]).astype(np.float64)[None, :, :, None]


@functools.partial(jax.jit, static_argnames=("kind", "pool", "strides", "pads", "out_hw",
                                             "method"))
def _pool(x, kind, pool, strides, pads, out_hw, method):
    n, h, w, c = x.shape
    dtype = x.dtype
    if kind == "avg":  # sums accumulate in at least float32 for low-precision inputs
        x = x.astype(_checks.at_least_float32(dtype))
    # A concrete (numpy) init value lets reduce_window recognize max/add and differentiate.
    init = np.array(-np.inf if kind == "max" else 0, x.dtype)
    oh, ow = out_hw
    if method == "reduce_window":
        op = lax.max if kind == "max" else lax.add
        y = lax.reduce_window(x, init, op, (1,) + pool + (1,), (1,) + strides + (1,),
                              ((0, 0),) + pads + ((0, 0),))
    else:
        xp = lax.pad(x, init, ((0, 0, 0), pads[0] + (0,), pads[1] + (0,), (0, 0, 0)))
        if method == "reshape":
            # Window == stride: the windows tile the padded input; crop the rows and columns
            # that "valid" pooling drops and reduce the two window axes.
            xp = xp[:, :oh * strides[0], :ow * strides[1], :]
            xp = xp.reshape(n, oh, strides[0], ow, strides[1], c)
            y = jnp.max(xp, axis=(2, 4)) if kind == "max" else jnp.sum(xp, axis=(2, 4))
        else:  # "slices"
            y = _separable_reduce(xp, pool, strides, out_hw,
                                  jnp.maximum if kind == "max" else jnp.add)
    if kind == "avg":
        counts = _pool_counts((h, w), pool, strides, pads, out_hw)
        y = y / jnp.asarray(counts, y.dtype)
    return y.astype(dtype)


def _pool_call(owner: str, kind: str, x, pool_size, strides, padding, method: str) -> Array:
    """Check and normalize a pooling call, pick the method and run the jitted pooling."""
    x = jnp.asarray(x)
    pool, strides, pads, out_hw = _pool_setup(owner, x, pool_size, strides, padding, method)
    method = resolve_pool_method(method, kind, pool, strides)
    if method == "reshape" and pool != strides:
        raise ValueError(f"{owner}: method='reshape' needs pool_size == strides, got pool_size "
                         f"{pool} and strides {strides}; use method='slices' or 'auto'.")
    return _pool(x, kind, pool, strides, pads, out_hw, method)


def max_pool2d(x: Array, pool_size=2, strides=None, padding: PaddingLike = "valid", *,
               method: str = "auto") -> Array:
    """2-D max pooling over NHWC input, jit-compiled.

    .. math:: y[n, i, j, c] = \\max_{0 \\le a < f_h,\\, 0 \\le b < f_w}
              x_{pad}[n, i S_h + a, j S_w + b, c]

    Padding pads with ``-inf``, so padded cells never win. ``"same"`` follows
    TensorFlow/Keras: the course's 5×5 feature map pooled 2×2, stride 2 gives
    3×3, the last row and column being windows that hang over the edge.

    Implementations (``method``), all giving bit-identical outputs:

    * ``"reduce_window"``: ``lax.reduce_window`` with ``lax.max``, XLA's native
      pooling; its gradient is a select-and-scatter, which XLA:CPU runs slowly
      (about 10× slower than the alternatives on a 2×2/2 pool of a small CNN).
    * ``"reshape"`` (window == stride only): pad, crop to whole windows,
      reshape to ``(N, H', f_h, W', f_w, C)`` and take the max over the window
      axes. Its gradient is a cheap compare-and-broadcast.
    * ``"slices"``: elementwise maxima of strided views of the padded input,
      first of the ``f_h`` row views, then of the ``f_w`` column views of that
      (max is separable); works for any window, stride and padding, and its
      gradient is a sum of cheap pads.
    * ``"auto"`` (default): ``"slices"`` on CPU, the fastest of the three in
      every case measured by ``benchmarks/bench_kernels.py`` (forward plus
      backward of a 2×2/2 pool: about 10× faster than ``"reduce_window"`` and
      slightly faster than ``"reshape"``); ``"reduce_window"`` on GPU and TPU.

    Gradients agree between methods except at ties (several equal maxima in a
    window): ``reduce_window`` routes the whole gradient to one of them,
    ``reshape`` splits it evenly between them, ``slices`` splits it pairwise.
    Each is a valid subgradient; for inputs without ties all three route it to
    the same elements (bit for bit when windows do not overlap; where they
    overlap, an element that is the maximum of several windows sums their
    gradients in a method-dependent order, so equal to rounding).

    Args:
        x: floating input ``(N, H, W, C)``.
        pool_size: int or pair, the window ``(f_h, f_w)``.
        strides: int or pair; ``None`` (default) means ``pool_size``.
        padding: ``"valid"``, ``"same"``, an int, a pair or a pair of pairs.
            Explicit padding must be smaller than the window.
        method: one of :data:`POOL_METHODS`.

    Returns:
        ``(N, H', W', C)``, same dtype as ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> fmap = jnp.array([[0, 1, 0, 0, 0], [0, 1, 1, 1, 0], [1, 0, 1, 2, 1],
        ...                   [1, 4, 2, 1, 0], [0, 0, 1, 2, 1]], jnp.float32)
        >>> kernels.max_pool2d(fmap[None, :, :, None], 2, padding="same")[0, :, :, 0]
        Array([[1., 1., 0.],
               [4., 2., 1.],
               [0., 2., 1.]], dtype=float32)
    """
    return _pool_call("kernels.max_pool2d", "max", x, pool_size, strides, padding, method)


def avg_pool2d(x: Array, pool_size=2, strides=None, padding: PaddingLike = "valid", *,
               method: str = "auto") -> Array:
    """2-D average pooling over NHWC input, jit-compiled.

    .. math:: y[n, i, j, c] = \\frac{1}{|W_{ij}|} \\sum_{(r, s) \\in W_{ij}} x[n, r, s, c]

    where ``W_ij`` is the set of *real* input cells under window ``(i, j)``:
    padding cells are not counted (Keras semantics for ``"same"``; PyTorch's
    ``count_include_pad=False`` for explicit padding). Low-precision inputs are
    summed in float32.

    ``method`` as in :func:`max_pool2d`, except that ``"auto"`` is
    ``"reduce_window"`` everywhere: the gradient of a windowed sum is cheap on
    every backend, and the alternatives were no faster on CPU. The methods add
    in different orders, so results agree to rounding (about 1 ulp), not bit
    for bit.

    Args:
        x: floating input ``(N, H, W, C)``.
        pool_size: int or pair.
        strides: int or pair; ``None`` means ``pool_size``.
        padding: ``"valid"``, ``"same"``, an int, a pair or a pair of pairs.
        method: one of :data:`POOL_METHODS`.

    Returns:
        ``(N, H', W', C)``, same dtype as ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import kernels
        >>> kernels.avg_pool2d(jnp.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0]
        Array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """
    return _pool_call("kernels.avg_pool2d", "avg", x, pool_size, strides, padding, method)


# ------------------------------------------------------------------------------------------
# Output size
# ------------------------------------------------------------------------------------------

def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding=0,
                     dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    .. math::

        H' = \\left\\lfloor \\frac{H + 2P - d (f - 1) - 1}{S} \\right\\rfloor + 1

    For ``d = 1`` this is the course's ``(H + 2P - f) / S + 1``, rounded down
    when the stride does not divide evenly (the last partial window is
    dropped): ``(28 - 3) / 2 + 1`` gives 13.

    Args:
        size: input length ``H``.
        kernel_size: window length ``f``.
        stride: step ``S``.
        padding: ``P`` on each side (int), a ``(before, after)`` pair,
            ``"valid"`` (``P = 0``) or ``"same"`` (``ceil(H / S)``, TF/Keras).
        dilation: spacing ``d`` between kernel taps.

    Returns:
        ``H'`` as a Python int (plain arithmetic: nothing to compile).

    Raises:
        ValueError: a non-positive size, kernel, stride or dilation, negative
            padding, an unknown padding string, or a (dilated) kernel larger
            than the padded input.

    Example:
        >>> from jaxdl import kernels
        >>> kernels.conv_output_size(26, 5)           # the course's Conv2D(5x5, 500)
        22
        >>> kernels.conv_output_size(5, 2, 2, "same")  # the 5x5 max-pool example
        3
    """
    owner = "kernels.conv_output_size"
    for name, v in (("size", size), ("kernel_size", kernel_size), ("stride", stride),
                    ("dilation", dilation)):
        if not _checks.is_int(v) or v <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive int, got {v!r}.")
    pad = normalize_padding(owner, padding, ndim=1)
    pad = pad if isinstance(pad, str) else pad[0]
    return axis_geometry(owner, "kernel", int(size), int(kernel_size), int(stride),
                         int(dilation), pad)[1]
