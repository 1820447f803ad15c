"""jaxdl.kernels against plain numpy loops and the course's worked examples."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import (
    ACTIVATION_7x7,
    BINARY_9x9,
    FEATURE_MAP_5x5,
    conv2d_reference,
    conv2d_transpose_reference,
    pool_reference,
)

from jaxdl import kernels

RNG = np.random.default_rng(0)


def _normal(shape, dtype=np.float32):
    return RNG.normal(size=shape).astype(dtype)


# ------------------------------------------------------------------------- the course

# The course's first worked example (notes 000): 5x5 image * the 3x3 vertical-edge kernel.
IMAGE_5x5 = np.array([[7, 2, 3, 3, 8],
                      [4, 5, 3, 8, 4],
                      [3, 3, 2, 8, 4],
                      [2, 8, 7, 2, 7],
                      [5, 4, 4, 5, 4]], np.float32)
EDGE_3x3 = np.array([[1, 0, -1]] * 3, np.float32)


def test_course_5x5_edge_kernel_is_cross_correlation():
    y = kernels.conv2d(IMAGE_5x5[None, :, :, None], EDGE_3x3[:, :, None, None])
    assert y.shape == (1, 3, 3, 1)
    # 7·1 + 4·1 + 3·1 + 2·0 + 5·0 + 3·0 + 3·(−1) + 3·(−1) + 2·(−1) = 6, as the notes work out.
    assert float(y[0, 0, 0, 0]) == 6.0
    np.testing.assert_array_equal(
        y[0, :, :, 0], conv2d_reference(IMAGE_5x5[None, :, :, None],
                                        EDGE_3x3[:, :, None, None])[0, :, :, 0])
    # A true (flipped-kernel) convolution would give −6 here: deep learning "convolution"
    # slides the kernel unflipped.
    flipped = kernels.conv2d(IMAGE_5x5[None, :, :, None], EDGE_3x3[::-1, ::-1, None, None])
    assert float(flipped[0, 0, 0, 0]) == -6.0


@pytest.mark.parametrize("conv", [kernels.conv2d, kernels.conv2d_im2col])
def test_course_9x9_binary_image_with_ones_filter(conv):
    y = conv(BINARY_9x9[None, :, :, None], np.ones((3, 3, 1, 1), np.float32))
    np.testing.assert_array_equal(y[0, :, :, 0], ACTIVATION_7x7)


@pytest.mark.parametrize("method", kernels.POOL_METHODS)
def test_course_max_pool_example(method):
    y = kernels.max_pool2d(FEATURE_MAP_5x5[None, :, :, None], 2, 2, "same", method=method)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 0], [4, 2, 1], [0, 2, 1]])
    # "valid" drops the overhanging windows.
    y = kernels.max_pool2d(FEATURE_MAP_5x5[None, :, :, None], 2, method=method)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1], [4, 2]])


def test_course_output_size_formulas():
    # (26 − 5)/1 + 1 = 22 (Conv2D 5x5 on 26x26); (256 − 2)/2 + 1 = 128 (pooling).
    assert kernels.conv_output_size(26, 5) == 22
    assert kernels.conv_output_size(256, 2, 2) == 128
    # The notes write (28 − 3)/2 + 1 = 14; the exact value 13.5 rounds *down*: the last
    # partial window is dropped. "same" padding is what gives ceil(28 / 2) = 14.
    assert kernels.conv_output_size(28, 3, 2) == 13
    assert kernels.conv_output_size(28, 3, 2, "same") == 14
    # (H + 2P − f)/S + 1 with P = 1, f = 3: the size is kept.
    assert kernels.conv_output_size(28, 3, 1, 1) == 28


# ------------------------------------------------------------------------- conv2d

CONV_CASES = [
    # (x shape, w shape, strides, padding, dilation, groups)
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), "valid", (1, 1), 1),
    ((2, 7, 6, 3), (3, 2, 3, 4), (2, 1), "same", (1, 1), 1),
    ((1, 8, 8, 4), (3, 3, 2, 6), (2, 2), 1, (1, 1), 2),
    ((1, 9, 7, 2), (2, 3, 2, 3), (1, 2), ((2, 0), (1, 3)), (2, 1), 1),
    ((2, 6, 6, 4), (3, 3, 1, 4), (1, 1), "same", (2, 2), 4),  # depthwise, dilated
    ((1, 5, 5, 2), (5, 5, 2, 1), (3, 3), "same", (1, 1), 1),
]


@pytest.mark.parametrize("xs,ws,strides,padding,dilation,groups", CONV_CASES)
def test_conv2d_matches_numpy_loop(xs, ws, strides, padding, dilation, groups):
    x, w = _normal(xs), _normal(ws)
    y = kernels.conv2d(x, w, strides, padding, dilation, groups)
    want = conv2d_reference(x, w, strides, padding, dilation, groups)
    assert y.shape == want.shape and y.dtype == jnp.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


IM2COL_GRID = list(itertools.product(
    [1, (2, 3)],                             # strides
    ["valid", "same", 1, ((0, 2), (1, 0))],  # padding
    [1, 2],                                  # dilation
    [1, 2],                                  # groups
))


def test_im2col_equals_conv2d_over_a_grid():
    x = _normal((2, 9, 8, 4))
    w = _normal((3, 2, 4, 6))

    @jax.jit  # one compilation for the whole grid keeps the test fast
    def both(x, w):
        out = []
        for strides, padding, dilation, groups in IM2COL_GRID:
            ws = w[:, :, :4 // groups]
            out.append((kernels.conv2d(x, ws, strides, padding, dilation, groups),
                        kernels.conv2d_im2col(x, ws, strides, padding, dilation, groups)))
        return out

    for case, (a, b) in zip(IM2COL_GRID, jax.device_get(both(x, w)), strict=True):
        assert a.shape == b.shape, case
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=str(case))


def test_conv_output_size_matches_applied_shapes():
    # Shapes only: jax.eval_shape traces without compiling or computing.
    for size, f, s, d, pad in itertools.product([5, 8, 13], [1, 2, 3, 5], [1, 2, 3], [1, 2],
                                                ["valid", "same", 0, 1, 2, (0, 3)]):
        if isinstance(pad, tuple):
            pad2d = (pad, (0, 0))
        else:
            pad2d = pad if isinstance(pad, str) else ((pad, pad), (0, 0))
        eff = d * (f - 1) + 1
        total_pad = {"valid": 0, "same": None}.get(pad, None) if isinstance(pad, str) else (
            sum(pad) if isinstance(pad, tuple) else 2 * pad)
        if total_pad is not None and eff > size + total_pad:
            with pytest.raises(ValueError, match="larger than the padded input"):
                kernels.conv_output_size(size, f, s, pad, d)
            continue
        want = kernels.conv_output_size(size, f, s, pad, d)
        if isinstance(pad, int):  # the formula, spelled out
            assert want == (size + 2 * pad - d * (f - 1) - 1) // s + 1
        x = jax.ShapeDtypeStruct((1, size, 4, 1), jnp.float32)
        w = jax.ShapeDtypeStruct((f, 1, 1, 1), jnp.float32)
        conv = functools.partial(kernels.conv2d, strides=(s, 1), padding=pad2d, dilation=(d, 1))
        got = jax.eval_shape(conv, x, w)
        assert got.shape[1] == want, (size, f, s, d, pad)


def test_conv2d_bf16_with_float32_accumulation():
    x, w = _normal((2, 8, 8, 16)), _normal((3, 3, 16, 8))
    xb, wb = jnp.asarray(x, jnp.bfloat16), jnp.asarray(w, jnp.bfloat16)
    y = kernels.conv2d(xb, wb, padding="same", preferred_element_type=jnp.float32)
    assert y.dtype == jnp.float32
    # Same products of the bf16-rounded inputs, accumulated in float32.
    want = conv2d_reference(np.asarray(xb.astype(jnp.float32)),
                            np.asarray(wb.astype(jnp.float32)), padding="same")
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-3)


def test_conv2d_under_jit_grad_and_vmap_without_recompiling(count_compiles):
    x, w = _normal((2, 6, 6, 3)), _normal((3, 3, 3, 2))

    def loss(w, x):
        return jnp.sum(kernels.conv2d(x, w, 2, "same") ** 2)

    g = jax.jit(jax.grad(loss))(w, x)
    # The gradient of the (linear) conv w.r.t. w: also a conv of the input with dL/dy.
    eps = 1e-3
    e = np.zeros_like(w)
    e[1, 2, 0, 1] = eps
    fd = (loss(w + e, x) - loss(w - e, x)) / (2 * eps)
    np.testing.assert_allclose(g[1, 2, 0, 1], fd, rtol=1e-2)
    per_example = jax.vmap(lambda xi: kernels.conv2d(xi[None], w)[0])(x)
    np.testing.assert_allclose(per_example, kernels.conv2d(x, w), rtol=1e-6, atol=1e-6)
    kernels.conv2d(x, w)  # compiled here (if no earlier test did)
    x2 = x + 1.0
    with count_compiles() as compiles:
        kernels.conv2d(x, w)
        kernels.conv2d(x2, w)
    assert compiles == [], "a second call with the same shapes compiled again"


_X, _W = jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 3, 4))


@pytest.mark.parametrize("call, error, match", [
    (lambda: kernels.conv2d(_X[0], _W), ValueError,
     r"kernels.conv2d: expected x of shape \(batch, height, width, channels\).*\(5, 5, 3\)"),
    (lambda: kernels.conv2d(jnp.ones((1, 5, 5, 2)), _W), ValueError,
     r"x has 2 channels but the kernel of shape \(3, 3, 3, 4\).*expects 3"),
    (lambda: kernels.conv2d(_X, jnp.ones((7, 3, 3, 4))), ValueError,
     r"kernel of size 7 is larger than the padded input of size 5"),
    (lambda: kernels.conv2d(jnp.ones((1, 4, 5, 3)), _W, dilation=2), ValueError,
     r"dilated to 5\) is larger"),
    (lambda: kernels.conv2d(_X, _W, padding="full"), ValueError, r"unknown padding 'full'"),
    (lambda: kernels.conv2d(_X, _W, strides=0), ValueError, r"`strides` must be positive"),
    (lambda: kernels.conv2d(_X, _W, padding=-1), ValueError, r"padding amounts must be >= 0"),
    (lambda: kernels.conv2d(jnp.ones((1, 5, 5, 3)), jnp.ones((3, 3, 1, 4)), groups=3),
     ValueError, r"divisible by groups=3"),
    (lambda: kernels.conv2d(_X, _W.astype(jnp.bfloat16)), TypeError,
     r"same dtype.*float32 and bfloat16"),
], ids=["rank", "channels", "kernel_too_big", "dilated_too_big", "padding_name", "strides",
        "negative_padding", "groups", "dtypes"])
def test_conv2d_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------- conv2d_transpose

@pytest.mark.parametrize("strides,padding,ksize,dilation", [
    ((1, 1), "valid", (3, 3), (1, 1)), ((2, 2), "valid", (3, 3), (1, 1)),
    ((2, 2), "same", (3, 3), (1, 1)), ((2, 3), "same", (4, 2), (1, 1)),
    ((3, 3), "same", (2, 2), (1, 1)), ((2, 1), "valid", (3, 2), (2, 1)),
    ((1, 2), "same", (3, 3), (2, 2)),
])
def test_conv2d_transpose_matches_scatter_reference(strides, padding, ksize, dilation):
    x, w = _normal((2, 4, 5, 3)), _normal(ksize + (3, 2))
    y = kernels.conv2d_transpose(x, w, strides, padding, dilation)
    want = conv2d_transpose_reference(x, w, strides, padding, dilation)
    assert y.shape == want.shape
    if padding == "same":
        assert y.shape[1:3] == (4 * strides[0], 5 * strides[1])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv2d_transpose_is_the_gradient_of_conv2d():
    x, w = _normal((2, 4, 4, 3)), _normal((3, 3, 3, 5))
    # A stride-2 conv from 9x9x5 to 4x4x3 with the kernel's in/out axes swapped.
    w_fwd = jnp.transpose(w, (0, 1, 3, 2))
    _, vjp = jax.vjp(lambda v: kernels.conv2d(v, w_fwd, 2), jnp.zeros((2, 9, 9, 5)))
    np.testing.assert_allclose(kernels.conv2d_transpose(x, w, 2), vjp(jnp.asarray(x))[0],
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- pooling

POOL_CASES = [
    # (x shape, pool, strides, padding)
    ((2, 8, 8, 3), (2, 2), (2, 2), "valid"),
    ((2, 7, 9, 3), (2, 2), (2, 2), "valid"),   # odd sizes: the last row/column is dropped
    ((2, 7, 9, 3), (2, 2), (2, 2), "same"),
    ((1, 4, 7, 2), (3, 3), (3, 3), "same"),    # padding before and after
    ((2, 9, 9, 2), (3, 3), (2, 2), "valid"),   # overlapping windows
    ((2, 9, 8, 2), (3, 2), (2, 1), "same"),
    ((1, 6, 6, 2), (3, 3), (1, 1), 1),
    ((1, 6, 7, 2), (2, 3), (2, 3), ((1, 0), (0, 2))),
]


def _tie_free(shape):
    """A random permutation of distinct values: no window holds two equal maxima."""
    return (RNG.permutation(math.prod(shape)).reshape(shape) / 7.0).astype(np.float32)


@pytest.mark.parametrize("xs,pool,strides,padding", POOL_CASES)
def test_pools_match_numpy_and_methods_agree(xs, pool, strides, padding):
    x = _tie_free(xs)
    tiles = pool == strides
    # "auto" is one of the others by definition; it is covered by the layer tests.
    methods = [m for m in ("reduce_window", "reshape", "slices") if tiles or m != "reshape"]
    ref = {k: pool_reference(x, pool, strides, padding, k) for k in ("max", "avg")}
    r = jnp.asarray(_normal(ref["max"].shape))

    @jax.jit  # one compilation for all methods keeps the test fast
    def all_methods(v):
        res = {}
        for kind, fn in (("max", kernels.max_pool2d), ("avg", kernels.avg_pool2d)):
            for m in methods:
                y, vjp = jax.vjp(lambda u, fn=fn, m=m: fn(u, pool, strides, padding, method=m), v)
                res[kind, m] = (y, vjp(r)[0])
        return res

    res = jax.device_get(all_methods(jnp.asarray(x)))
    outs = {k: v[0] for k, v in res.items()}
    grads = {k: v[1] for k, v in res.items()}
    for (kind, m), y in outs.items():
        np.testing.assert_allclose(y, ref[kind], rtol=1e-6, atol=1e-6, err_msg=f"{kind} {m}")
    overlapping = any(f > s for f, s in zip(pool, strides, strict=True))
    for m in methods:
        # Max pooling is exact: every method returns the same bits, and on tie-free input
        # routes the gradient to the same elements. Where windows overlap, an element that
        # is the maximum of several windows sums their gradients, in an order that depends
        # on the method: equal to rounding there, bit for bit otherwise.
        np.testing.assert_array_equal(outs["max", m], outs["max", "reduce_window"])
        if overlapping:
            np.testing.assert_allclose(grads["max", m], grads["max", "reduce_window"],
                                       rtol=1e-6, atol=0)
            np.testing.assert_array_equal(grads["max", m] != 0,
                                          grads["max", "reduce_window"] != 0)
        else:
            np.testing.assert_array_equal(grads["max", m], grads["max", "reduce_window"])
        # Averages add in different orders: equal to rounding.
        np.testing.assert_allclose(outs["avg", m], outs["avg", "reduce_window"], rtol=1e-6)
        np.testing.assert_allclose(grads["avg", m], grads["avg", "reduce_window"], rtol=1e-6,
                                   atol=1e-7)


def test_max_pool_gradient_at_ties_is_a_valid_subgradient():
    # A constant 4x4 image: every 2x2 window is a four-way tie. reduce_window sends the
    # whole gradient to one element per window, reshape splits it evenly; both put exactly
    # the upstream gradient (1) into each window.
    x = jnp.ones((1, 4, 4, 1))
    for m in ("reduce_window", "reshape", "slices"):
        g = jax.grad(lambda v, m=m: jnp.sum(kernels.max_pool2d(v, 2, method=m)))(x)[0, :, :, 0]
        window_sums = np.asarray(g).reshape(2, 2, 2, 2).sum(axis=(1, 3))
        np.testing.assert_allclose(window_sums, np.ones((2, 2)))
        assert np.all(np.asarray(g) >= 0)
    g = jax.grad(lambda v: jnp.sum(kernels.max_pool2d(v, 2, method="reshape")))(x)
    np.testing.assert_allclose(g, np.full((1, 4, 4, 1), 0.25))


def test_avg_pool_same_divides_by_real_cells_only():
    y = kernels.avg_pool2d(FEATURE_MAP_5x5[None, :, :, None], 2, padding="same")[0, :, :, 0]
    # The bottom-right window covers the single cell 1; the right column windows cover 2.
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [1.5, 1.5, 0.5], [0.0, 1.5, 1.0]])


def test_avg_pool_bf16_accumulates_in_float32():
    x = jnp.full((1, 8, 8, 1), 1.0 + 2.0 ** -7, jnp.bfloat16)  # exactly representable
    y = kernels.avg_pool2d(x, 8)
    assert y.dtype == jnp.bfloat16
    assert float(y[0, 0, 0, 0]) == 1.0 + 2.0 ** -7


_XP = jnp.ones((1, 5, 5, 2))


@pytest.mark.parametrize("call, error, match", [
    (lambda: kernels.max_pool2d(_XP[0]), ValueError, r"kernels.max_pool2d: expected x of shape"),
    (lambda: kernels.max_pool2d(_XP, 6), ValueError,
     r"pool window of size 6 is larger than the padded"),
    (lambda: kernels.avg_pool2d(_XP, padding="SAMEE"), ValueError, r"unknown padding 'SAMEE'"),
    (lambda: kernels.max_pool2d(_XP, (2, 0)), ValueError, r"`pool_size` must be positive"),
    (lambda: kernels.max_pool2d(_XP, 3, 2, method="reshape"), ValueError,
     r"method='reshape' needs pool_size == strides"),
    (lambda: kernels.max_pool2d(_XP, method="fast"), ValueError, r"unknown method"),
    (lambda: kernels.max_pool2d(_XP, 2, padding=2), ValueError, r"smaller than the pool window"),
    (lambda: kernels.max_pool2d(jnp.ones((1, 4, 4, 1), jnp.int32)), TypeError,
     r"floating-point"),
], ids=["rank", "window_too_big", "padding_name", "zero_window", "reshape_strides",
        "method_name", "padding_too_big", "integer_input"])
def test_pool_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_resolve_pool_method_names_what_auto_runs(kind):
    for method in ("reduce_window", "slices", "reshape"):
        assert kernels.resolve_pool_method(method, kind, (2, 2), (2, 2)) == method
    picked = kernels.resolve_pool_method("auto", kind, (3, 3), (2, 2))
    assert picked in kernels.POOL_METHODS and picked != "auto"
    fn = kernels.max_pool2d if kind == "max" else kernels.avg_pool2d
    x = jnp.asarray(_normal((2, 7, 7, 3)))
    np.testing.assert_array_equal(fn(x, 3, 2, method="auto"), fn(x, 3, 2, method=picked))


# ------------------------------------------------------------------------- matmul

def test_matmul_forms_and_dtypes():
    a, b = _normal((5, 7)), _normal((7, 3))
    np.testing.assert_allclose(kernels.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-5,
                               atol=1e-5)
    a3 = _normal((2, 4, 7))
    np.testing.assert_allclose(kernels.matmul(a3, b), a3.astype(np.float64) @ b, rtol=1e-5,
                               atol=1e-5)
    bb = _normal((2, 7, 3))
    np.testing.assert_allclose(kernels.matmul(a3, bb), np.einsum("bik,bkj->bij", a3, bb),
                               rtol=1e-5, atol=1e-5)
    ab, bb16 = jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16)
    c = kernels.matmul(ab, bb16, preferred_element_type=jnp.float32, precision="highest")
    assert c.dtype == jnp.float32
    want = np.asarray(ab.astype(jnp.float32), np.float64) @ np.asarray(bb16.astype(jnp.float32))
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    assert kernels.matmul(ab, bb16).dtype == jnp.bfloat16


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"last axis of a \(7\) must equal the first axis of "
                                         r"b \(6\)"):
        kernels.matmul(jnp.ones((5, 7)), jnp.ones((6, 3)))
    with pytest.raises(ValueError, match=r"batched operands"):
        kernels.matmul(jnp.ones((2, 5, 7)), jnp.ones((3, 7, 3)))
    with pytest.raises(TypeError, match=r"same dtype"):
        kernels.matmul(jnp.ones((2, 2)), jnp.ones((2, 2), jnp.bfloat16))
    with pytest.raises(ValueError, match=r"unknown precision"):
        kernels.matmul(jnp.ones((2, 2)), jnp.ones((2, 2)), precision="ultra")


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match=r"`stride` must be a positive int, got 0"):
        kernels.conv_output_size(5, 3, 0)
    with pytest.raises(ValueError, match=r"unknown padding 'full'"):
        kernels.conv_output_size(5, 3, 1, "full")
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        kernels.conv_output_size(3, 5)


# ------------------------------------------------------------------------- padding helpers


def test_normalize_tuple_forms_and_errors():
    assert kernels.normalize_tuple("Conv2D", "strides", 3) == (3, 3)
    assert kernels.normalize_tuple("Conv2D", "strides", [2, 1]) == (2, 1)
    assert kernels.normalize_tuple("Conv1D", "kernel_size", 5, ndim=1) == (5,)
    assert kernels.normalize_tuple("Conv3D", "dilation", (1, 2, 3), ndim=3) == (1, 2, 3)
    got = kernels.normalize_tuple("Conv2D", "strides", (np.int64(2), 2))
    assert got == (2, 2) and all(type(v) is int for v in got)  # hashable, static-arg ready
    with pytest.raises(TypeError, match=r"Conv2D: `strides` must be a positive int or a pair"
                                        r".*got True"):
        kernels.normalize_tuple("Conv2D", "strides", True)
    with pytest.raises(TypeError, match=r"Conv1D: `kernel_size` must be .*1 positive ints"):
        kernels.normalize_tuple("Conv1D", "kernel_size", (3, 3), ndim=1)
    with pytest.raises(TypeError, match=r"`pool_size`"):
        kernels.normalize_tuple("MaxPool2D", "pool_size", "2")
    with pytest.raises(ValueError, match=r"MaxPool2D: `pool_size` must be positive, got "
                                         r"\(2, 0\)"):
        kernels.normalize_tuple("MaxPool2D", "pool_size", (2, 0))


@pytest.mark.parametrize("padding,ndim,want", [
    ("VALID", 2, "valid"),
    ("same", 2, "same"),
    (1, 2, ((1, 1), (1, 1))),
    ((1, 2), 2, ((1, 1), (2, 2))),  # (p_h, p_w)
    (((0, 1), (2, 3)), 2, ((0, 1), (2, 3))),
    ((1, (0, 2)), 2, ((1, 1), (0, 2))),
    (2, 1, ((2, 2),)),
    ((1, 2), 1, ((1, 2),)),  # one axis: (before, after)
    ([3], 1, ((3, 3),)),
    (0, 3, ((0, 0), (0, 0), (0, 0))),
])
def test_normalize_padding_forms(padding, ndim, want):
    assert kernels.normalize_padding("Conv", padding, ndim) == want


def test_normalize_padding_errors_name_the_owner():
    assert kernels.normalize_padding("Conv1D", "Causal", 1, ("valid", "same", "causal")) == (
        "causal")
    with pytest.raises(ValueError, match=r"Conv2D: unknown padding 'causal'; expected one of "
                                         r"'valid', 'same'"):
        kernels.normalize_padding("Conv2D", "causal")
    with pytest.raises(ValueError, match=r"Conv2D: padding amounts must be >= 0, got \(1, -1\)"):
        kernels.normalize_padding("Conv2D", (1, -1))
    for bad in [(1, 2, 3), ((1, 2, 3), 1), 1.5, True, None, ((1, 2), (3, 4))]:
        ndim = 1 if bad == ((1, 2), (3, 4)) else 2
        with pytest.raises(TypeError, match=r"Conv2D: padding must be one of 'valid', 'same'"):
            kernels.normalize_padding("Conv2D", bad, ndim)


@pytest.mark.parametrize("size,window,stride,dilation,want", [
    (5, 2, 2, 1, (0, 1)),    # the course's 5x5 map pooled 2x2/2 to 3x3: one extra column after
    (28, 3, 2, 1, (0, 1)),   # out 14: 13 * 2 + 3 - 28 = 1
    (28, 3, 1, 1, (1, 1)),   # out 28: 27 + 3 - 28 = 2
    (7, 3, 1, 2, (2, 2)),    # dilated window 5: 6 + 5 - 7 = 4
    (6, 1, 3, 1, (0, 0)),    # out 2: 3 + 1 - 6 < 0, no padding
    (10, 4, 3, 1, (1, 2)),   # out 4: 9 + 4 - 10 = 3, the odd one after
])
def test_same_padding_by_hand(size, window, stride, dilation, want):
    assert kernels.same_padding(size, window, stride, dilation) == want


@pytest.mark.parametrize("size,window,stride,dilation,padding,want", [
    (28, 3, 2, 1, "valid", ((0, 0), 13)),     # (28 - 3) // 2 + 1
    (28, 3, 2, 1, "same", ((0, 1), 14)),
    (5, 3, 1, 1, (1, 2), ((1, 2), 6)),        # padded 8: 8 - 3 + 1
    (10, 3, 1, 2, "causal", ((4, 0), 10)),    # d (f - 1) = 4 before, nothing after
    (10, 3, 2, 1, "causal", ((2, 0), 5)),     # padded 12: (12 - 3) // 2 + 1
    (9, 3, 1, 3, "valid", ((0, 0), 3)),       # dilated window 7: 9 - 7 + 1
])
def test_axis_geometry_by_hand(size, window, stride, dilation, padding, want):
    assert kernels.axis_geometry("Conv", "kernel", size, window, stride, dilation,
                                 padding) == want


def test_axis_geometry_window_too_large_names_owner_and_sizes():
    with pytest.raises(ValueError, match=r"Conv1D: the kernel of size 3 \(dilated to 5\) is "
                                         r"larger than the padded input of size 4 \(input 3 "
                                         r"\+ padding 0 \+ 1\)"):
        kernels.axis_geometry("Conv1D", "kernel", 3, 3, 1, 2, (0, 1))


def test_conv_geometry_per_axis_and_any_rank():
    # H: 5 rows, window 3, stride 2, same: out 3, total 2 * 2 + 3 - 5 = 2 -> (1, 1);
    # W: 7 columns, window 2, stride 1, same: out 7, total 6 + 2 - 7 = 1 -> (0, 1).
    assert kernels.conv_geometry("Conv2D", "kernel", (5, 7), (3, 2), (2, 1), (1, 1),
                                 "same") == (((1, 1), (0, 1)), (3, 7))
    assert kernels.conv_geometry("Conv2D", "kernel", (5, 7), (3, 2), (1, 1), (1, 1),
                                 ((0, 0), (2, 1))) == (((0, 0), (2, 1)), (3, 9))
    assert kernels.conv_geometry("Conv1D", "kernel", (10,), (3,), (1,), (2,),
                                 "causal") == (((4, 0),), (10,))
    assert kernels.conv_geometry("Conv3D", "kernel", (4, 6, 8), (2, 3, 4), (2, 3, 4),
                                 (1, 1, 1), "valid") == (((0, 0),) * 3, (2, 2, 2))
    with pytest.raises(ValueError, match=r"MaxPool2D: the pool window of size 4"):
        kernels.conv_geometry("MaxPool2D", "pool window", (8, 3), (2, 4), (2, 2), (1, 1),
                              "valid")


def test_conv_geometry_agrees_with_conv2d_shapes():
    x = jax.ShapeDtypeStruct((1, 9, 8, 2), jnp.float32)
    w = jax.ShapeDtypeStruct((3, 2, 2, 4), jnp.float32)
    for padding in ("valid", "same", ((2, 0), (1, 3))):
        _, out = kernels.conv_geometry("t", "kernel", (9, 8), (3, 2), (2, 3), (2, 1), padding)
        conv = functools.partial(kernels.conv2d, strides=(2, 3), padding=padding,
                                 dilation=(2, 1))
        assert jax.eval_shape(conv, x, w).shape == (1, *out, 4), padding


@pytest.mark.parametrize("size,window,stride,dilation,padding,want", [
    # full scatter (H - 1) S + f_eff; pads of the equivalent conv are f_eff - 1 - crop.
    (7, 3, 2, 1, "valid", ((2, 2), 15)),   # 6 * 2 + 3
    (7, 3, 2, 1, "same", ((2, 1), 14)),    # crop f_eff - S = 1: 0 before, 1 after
    (4, 5, 2, 1, "same", ((3, 2), 8)),     # crop 3: 1 before, 2 after; 3 * 2 + 5 - 3
    (3, 1, 3, 1, "same", ((0, 2), 9)),     # f_eff < S: 2 zero rows appended; 2 * 3 + 1 + 2
    (5, 3, 1, 2, "valid", ((4, 4), 9)),    # dilated window 5: 4 + 5
])
def test_conv_transpose_geometry_by_hand(size, window, stride, dilation, padding, want):
    pads, out = kernels.conv_transpose_geometry("Conv2DTranspose", (size,), (window,),
                                                (stride,), (dilation,), padding)
    assert (pads[0], out[0]) == want
    x = jnp.ones((1, size, 1, 1))
    w = jnp.ones((window, 1, 1, 1))
    y = kernels.conv2d_transpose(x, w, (stride, 1), padding, (dilation, 1))
    assert y.shape[1] == want[1]


def test_conv_transpose_geometry_rejects_explicit_padding():
    with pytest.raises(ValueError, match=r"Conv2DTranspose: padding must be 'valid' or 'same', "
                                         r"got \(\(1, 1\), \(1, 1\)\)"):
        kernels.conv_transpose_geometry("Conv2DTranspose", (4, 4), (3, 3), (2, 2), (1, 1),
                                        ((1, 1), (1, 1)))
