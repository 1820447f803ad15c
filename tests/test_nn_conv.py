"""Conv, pooling, reshape, dropout and embedding layers."""

import dataclasses
import inspect
import json

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
)

from jaxdl import nn

# ----------------------------------------------------------------------------- contract

CONTRACT_CASES = [
    # (layer, input_shape, wrong_shape, expected_in_message)
    (nn.Conv2D(4, 3, activation="tanh"), (6, 5, 3), (6, 5, 2), "(batch, height, width, 3)"),
    (nn.Conv2D(4, (2, 3), strides=2, padding="same", dilation=(1, 2), groups=2,
               use_bias=False), (7, 8, 2), (7, 8), "(batch, height, width, 2)"),
    (nn.Conv1D(3, 3, padding="causal", dilation=2), (9, 2), (9, 3), "(batch, length, 2)"),
    (nn.Conv2DTranspose(3, (3, 2), strides=(2, 1), padding="same"), (4, 3, 2), (4, 3, 5),
     "(batch, height, width, 2)"),
    (nn.MaxPool2D(3, 2, padding="same"), (7, 6, 2), (7, 6), "(batch, height, width, channels)"),
    (nn.AvgPool2D(2, padding="same"), (5, 5, 2), (5,), None),
    (nn.GlobalAvgPool2D(), (4, 5, 3), (4, 5), None),
    (nn.GlobalMaxPool2D(keepdims=True), (4, 5, 3), (4, 5), None),
    (nn.Flatten(), (3, 4, 2), None, None),
    (nn.Reshape((4, -1)), (3, 4, 2), (5,), "(4, -1)"),
    (nn.Dropout(0.3), (4, 5), None, None),
]


@pytest.mark.parametrize("layer,input_shape,wrong_shape,expected", CONTRACT_CASES,
                         ids=[type(c[0]).__name__ for c in CONTRACT_CASES])
def test_layer_contract(layer_contract, layer, input_shape, wrong_shape, expected):
    layer_contract(layer, input_shape, wrong_shape=wrong_shape, expected_in_message=expected)


def test_dropout_contract_in_training(layer_contract):
    # With a fixed key dropout is a fixed linear map: gradcheck applies.
    layer_contract(nn.Dropout(0.5), (6, 3), training=True)


def test_embedding_contract(layer_contract):
    x = jax.random.randint(jax.random.key(3), (3, 5), 0, 11)
    params, _, y = layer_contract(nn.Embedding(11, 4), (5,), x=x, gradcheck_input=False)
    np.testing.assert_array_equal(y, np.asarray(params["embedding"])[np.asarray(x)])


def test_cnn_contract(layer_contract):
    model = nn.Sequential([nn.Conv2D(3, 3, padding="same", activation="relu"),
                           nn.MaxPool2D(2), nn.Flatten(), nn.Dense(2)])
    layer_contract(model, (6, 6, 1), wrong_shape=(6, 6, 2), expected_in_message="conv2d_0")


# ----------------------------------------------------------------------------- Conv2D

def test_conv2d_layer_matches_reference():
    layer = nn.Conv2D(5, 3, strides=(2, 1), padding="same", activation="relu")
    params, state = layer.init(jax.random.key(0), (7, 6, 3))
    params["bias"] = jnp.linspace(-0.5, 0.5, 5)
    x = np.random.default_rng(1).normal(size=(2, 7, 6, 3)).astype(np.float32)
    y, new_state = layer.apply(params, state, x)
    want = np.maximum(conv2d_reference(x, params["kernel"], (2, 1), "same")
                      + np.asarray(params["bias"]), 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert new_state is state


def test_conv2d_layer_on_the_course_binary_image():
    layer = nn.Conv2D(1, 3, use_bias=False, kernel_init="ones")
    params, state = layer.init(jax.random.key(0), (9, 9, 1))
    # uint8-like integer images are cast to the kernel's float dtype.
    y, _ = layer.apply(params, state, jnp.asarray(BINARY_9x9[None, :, :, None], jnp.int32))
    np.testing.assert_array_equal(y[0, :, :, 0], ACTIVATION_7x7)


def test_conv2d_params_and_summary_of_the_course_example():
    layer = nn.Conv2D(500, 5)
    assert nn.output_shape(layer, (26, 26, 100)) == (22, 22, 500)
    params, _ = jax.eval_shape(lambda k: layer.init(k, (26, 26, 100)), jax.random.key(0))
    assert params["kernel"].shape == (5, 5, 100, 500) and params["bias"].shape == (500,)
    text = nn.summary(nn.Sequential([layer]), (26, 26, 100))
    assert "conv2d_0 (Conv2D)" in text and "(None, 22, 22, 500)" in text
    assert "1,250,500" in text and "Total params: 1,250,500" in text


def test_cnn_summary_and_output_shapes():
    model = nn.Sequential([
        nn.Conv2D(32, 3, activation="relu"), nn.MaxPool2D(2),
        nn.Conv2D(64, 3, padding="same", activation="relu"), nn.BatchNorm(),
        nn.MaxPool2D(2, padding="same"), nn.Dropout(0.25), nn.Flatten(), nn.Dense(10)])
    text = nn.summary(model, (28, 28, 1))
    for row in ["conv2d_0 (Conv2D)", "(None, 26, 26, 32)", "320",
                "max_pool2d_0 (MaxPool2D)", "(None, 13, 13, 32)",
                "conv2d_1 (Conv2D)", "(None, 13, 13, 64)", "18,496",
                "batch_norm_0 (BatchNorm)", "256",
                "max_pool2d_1 (MaxPool2D)", "(None, 7, 7, 64)", "flatten_0 (Flatten)",
                "(None, 3136)", "dense_0 (Dense)", "31,370",
                "Trainable params: 50,314", "Non-trainable params: 128"]:
        assert row in text, row
    assert nn.output_shape(model, (28, 28, 1)) == (10,)


def test_conv_hyperparameters_are_hashable_and_json_round_trip():
    layer = nn.Conv2D(8, 3, strides=[2, 2], padding=[[1, 0], [0, 1]], activation="relu")
    assert layer.kernel_size == (3, 3) and layer.strides == (2, 2)
    assert layer.padding == ((1, 0), (0, 1))
    again = nn.Conv2D(**json.loads(json.dumps(dataclasses.asdict(layer))))
    assert again == layer and hash(again) == hash(layer)
    for lay in (nn.Conv1D(4, 3), nn.Conv2DTranspose(4, 2), nn.MaxPool2D(3, 2, "same"),
                nn.BatchNorm(), nn.Dropout(0.1), nn.Reshape((2, -1)), nn.Embedding(5, 2)):
        again = type(lay)(**json.loads(json.dumps(dataclasses.asdict(lay))))
        assert again == lay and hash(again) == hash(lay)


def test_conv2d_errors():
    with pytest.raises(ValueError, match=r"Conv2D: `filters` must be a positive integer, got 0"):
        nn.Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"Conv2D: `kernel_size` must be positive"):
        nn.Conv2D(4, (3, 0))
    with pytest.raises(ValueError, match=r"Conv2D: `strides` must be positive"):
        nn.Conv2D(4, 3, strides=-1)
    with pytest.raises(TypeError, match=r"Conv2D: `kernel_size` must be a positive int"):
        nn.Conv2D(4, 2.5)
    with pytest.raises(ValueError, match=r"Conv2D: unknown padding 'full'.*'valid', 'same'"):
        nn.Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match=r"`filters` \(5\) must be divisible by `groups` \(2\)"):
        nn.Conv2D(5, 3, groups=2)
    layer = nn.Conv2D(4, 5)
    with pytest.raises(ValueError, match=r"Conv2D\(filters=4, kernel_size=\(5, 5\)\): the kernel "
                                         r"of size 5 is larger than the padded input of size 4"):
        layer.init(jax.random.key(0), (4, 8, 1))
    params, state = layer.init(jax.random.key(0), (8, 8, 3))
    with pytest.raises(ValueError, match=r"Conv2D.*kernel of size 5 is larger than the padded "
                                         r"input of size 3"):
        layer.apply(params, state, jnp.ones((2, 3, 8, 3)))
    with pytest.raises(ValueError, match=r"Conv2D.*expected input of shape \(batch, height, "
                                         r"width, 3\).*received x of shape \(8, 8, 3\)"):
        layer.apply(params, state, jnp.ones((8, 8, 3)))
    with pytest.raises(ValueError, match=r"expected an input_shape \(height, width, channels\)"):
        layer.init(jax.random.key(0), (28, 28))
    with pytest.raises(ValueError,
                       match=r"(?s)larger than the padded.*Sequential layer 'conv2d_1'"):
        nn.Sequential([nn.Conv2D(2, 3), nn.Conv2D(2, 5)]).init(jax.random.key(0), (6, 6, 1))


# ----------------------------------------------------------------------------- Conv1D

def test_conv1d_matches_reference_and_causal_padding_sees_no_future():
    layer = nn.Conv1D(3, 3, padding="causal", dilation=2)
    params, state = layer.init(jax.random.key(0), (10, 2))
    x = np.random.default_rng(2).normal(size=(2, 10, 2)).astype(np.float32)
    y, _ = layer.apply(params, state, x)
    assert y.shape == (2, 10, 3)
    # As a height-1 2-D convolution with 4 zeros on the left.
    xp = np.pad(x, ((0, 0), (4, 0), (0, 0)))
    want = conv2d_reference(xp[:, None], np.asarray(params["kernel"])[None],
                            dilation=(1, 2))[:, 0]
    np.testing.assert_allclose(y, want + np.asarray(params["bias"]), rtol=1e-5, atol=1e-5)
    x2 = x.copy()
    x2[:, 6:] += 10.0  # change the future from t = 6 on
    y2, _ = layer.apply(params, state, x2)
    np.testing.assert_array_equal(y2[:, :6], y[:, :6])
    assert not np.allclose(y2[:, 6:], y[:, 6:])
    assert nn.output_shape(nn.Conv1D(4, 5, strides=2), (20, 3)) == (8, 4)
    assert nn.output_shape(nn.Conv1D(4, 5, strides=2, padding="same"), (20, 3)) == (10, 4)


def test_conv1d_errors():
    with pytest.raises(ValueError, match=r"Conv1D: unknown padding 'full'.*'causal'"):
        nn.Conv1D(4, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv1D: `kernel_size` must be positive"):
        nn.Conv1D(4, 0)
    with pytest.raises(ValueError, match=r"Conv1D.*kernel of size 7 is larger"):
        nn.Conv1D(4, 7).init(jax.random.key(0), (5, 1))


# ----------------------------------------------------------------------------- Conv2DTranspose

@pytest.mark.parametrize("strides,padding", [(1, "valid"), (2, "valid"), (2, "same"),
                                             (3, "same")])
def test_conv2d_transpose_layer_matches_scatter_reference(strides, padding):
    layer = nn.Conv2DTranspose(2, 3, strides=strides, padding=padding)
    params, state = layer.init(jax.random.key(0), (4, 5, 3))
    x = np.random.default_rng(3).normal(size=(2, 4, 5, 3)).astype(np.float32)
    y, _ = layer.apply(params, state, x)
    want = conv2d_transpose_reference(x, params["kernel"], (strides, strides), padding)
    np.testing.assert_allclose(y, want + np.asarray(params["bias"]), rtol=1e-5, atol=1e-5)
    assert y.shape[1:] == nn.output_shape(layer, (4, 5, 3))


def test_conv2d_transpose_undoes_a_strided_conv_shape():
    down = nn.Conv2D(8, 3, strides=2, padding="same")
    up = nn.Conv2DTranspose(1, 3, strides=2, padding="same")
    assert nn.output_shape(up, nn.output_shape(down, (28, 28, 1))) == (28, 28, 1)
    assert nn.output_shape(nn.Conv2DTranspose(4, 5), (7, 7, 2)) == (11, 11, 4)
    with pytest.raises(ValueError, match=r"Conv2DTranspose: padding must be 'valid' or 'same'"):
        nn.Conv2DTranspose(4, 3, padding=1)


# ----------------------------------------------------------------------------- pooling

def test_max_pool_layer_on_the_course_example():
    layer = nn.MaxPool2D(pool_size=2, strides=2, padding="same")
    assert nn.output_shape(layer, (5, 5, 1)) == (3, 3, 1)
    y, _ = layer.apply({}, {}, FEATURE_MAP_5x5[None, :, :, None])
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 0], [4, 2, 1], [0, 2, 1]])
    # ...and flattened to the column the notes feed to the dense layers.
    flat, _ = nn.Flatten().apply({}, {}, y)
    np.testing.assert_array_equal(flat[0], [1, 1, 0, 4, 2, 1, 0, 2, 1])
    assert nn.output_shape(nn.MaxPool2D(2), (5, 5, 1)) == (2, 2, 1)


def test_global_pools():
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5)).astype(np.float32)
    y, _ = nn.GlobalAvgPool2D().apply({}, {}, x)
    np.testing.assert_allclose(y, x.mean(axis=(1, 2)), rtol=1e-6, atol=1e-7)
    y, _ = nn.GlobalMaxPool2D().apply({}, {}, x)
    np.testing.assert_array_equal(y, x.max(axis=(1, 2)))
    y, _ = nn.GlobalAvgPool2D(keepdims=True).apply({}, {}, x)
    assert y.shape == (2, 1, 1, 5)


def test_pool_errors():
    with pytest.raises(ValueError, match=r"MaxPool2D: `pool_size` must be positive"):
        nn.MaxPool2D(0)
    with pytest.raises(ValueError, match=r"AvgPool2D: `strides` must be positive"):
        nn.AvgPool2D(2, strides=0)
    with pytest.raises(ValueError, match=r"MaxPool2D: unknown padding 'Full'"):
        nn.MaxPool2D(2, padding="Full")
    with pytest.raises(ValueError, match=r"MaxPool2D\(pool_size=\(4, 4\)\): the pool window of "
                                         r"size 4 is larger than the padded input of size 3"):
        nn.MaxPool2D(4).init(jax.random.key(0), (3, 8, 2))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D: expected input of shape \(batch, "
                                         r"height, width, channels\).*\(2, 5\)"):
        nn.GlobalAvgPool2D().apply({}, {}, jnp.ones((2, 5)))
    # "SAME" in capitals is accepted, as in Keras.
    assert nn.MaxPool2D(2, padding="SAME").padding == "same"


# ----------------------------------------------------------------------------- Flatten, Reshape

def test_flatten_and_reshape():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    y, _ = nn.Flatten().apply({}, {}, x)
    np.testing.assert_array_equal(y, np.arange(24.0).reshape(2, 12))
    y, _ = nn.Reshape((2, 6)).apply({}, {}, x)
    np.testing.assert_array_equal(y, np.arange(24.0).reshape(2, 2, 6))
    assert nn.output_shape(nn.Reshape((-1, 3)), (3, 4)) == (4, 3)
    assert nn.output_shape(nn.Flatten(), (7, 7, 64)) == (3136,)
    with pytest.raises(ValueError, match=r"Reshape\(shape=\(5, 5\)\): cannot reshape inputs of "
                                         r"shape \(3, 4\) \(12 values per example\)"):
        nn.Reshape((5, 5)).init(jax.random.key(0), (3, 4))
    with pytest.raises(ValueError, match=r"at most one -1"):
        nn.Reshape((-1, -1))
    with pytest.raises(TypeError, match=r"tuple of ints"):
        nn.Reshape("7x7")


# ----------------------------------------------------------------------------- Dropout

def test_dropout_statistics():
    rate, n = 0.3, 200_000
    x = jnp.full((n,), 2.0)
    y, _ = nn.Dropout(rate).apply({}, {}, x[None], key=jax.random.key(0), training=True)
    y = np.asarray(y[0], np.float64)
    kept = np.mean(y != 0)
    sigma = np.sqrt(rate * (1 - rate) / n)
    assert abs(kept - (1 - rate)) < 4 * sigma
    # Inverted dropout: kept units are scaled by 1 / (1 - rate), so the mean is preserved.
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 2.0) < 4 * 2.0 / (1 - rate) * sigma


def test_dropout_identity_cases_and_keys():
    x = jax.random.normal(jax.random.key(1), (4, 8))
    assert nn.Dropout(0.0).apply({}, {}, x, key=jax.random.key(0), training=True)[0] is x
    assert nn.Dropout(0.5).apply({}, {}, x)[0] is x  # inference: identity
    layer = nn.Dropout(0.5)
    a, _ = layer.apply({}, {}, x, key=jax.random.key(7), training=True)
    b, _ = layer.apply({}, {}, x, key=jax.random.key(7), training=True)
    c, _ = layer.apply({}, {}, x, key=jax.random.key(8), training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.asarray(a) != 0, np.asarray(c) != 0)
    # Raw uint32 keys work too.
    layer.apply({}, {}, x, key=jax.random.PRNGKey(0), training=True)


def test_dropout_errors():
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"Dropout: `rate` must be in \[0, 1\)"):
            nn.Dropout(bad)
    with pytest.raises(TypeError, match=r"Dropout: `rate` must be a number"):
        nn.Dropout("0.5")
    with pytest.raises(ValueError, match=r"Dropout\(rate=0.5\): training=True needs a random "
                                         r"key.*key=jax.random.key"):
        nn.Dropout(0.5).apply({}, {}, jnp.ones((2, 3)), training=True)


# ----------------------------------------------------------------------------- Embedding

def test_embedding_lookup_gradient_and_errors():
    layer = nn.Embedding(6, 3)
    params, state = layer.init(jax.random.key(0), (4,))
    table = np.asarray(params["embedding"])
    assert table.shape == (6, 3) and np.abs(table).max() <= 0.05
    x = jnp.array([[0, 5, 2, 2], [1, 1, 1, 3]])
    y, _ = layer.apply(params, state, x)
    np.testing.assert_array_equal(y, table[np.asarray(x)])
    g = jax.grad(lambda p: jnp.sum(layer.apply(p, state, x)[0]))(params)["embedding"]
    # Row i's gradient counts how often id i occurs; id 4 never occurs.
    np.testing.assert_array_equal(g[:, 0], [1, 3, 2, 1, 0, 1])
    with pytest.raises(ValueError, match=r"Embedding\(vocab_size=6, features=3\): ids must be "
                                         r"in \[0, 6\).*ids from 0 to 6"):
        layer.apply(params, state, jnp.array([[0, 6]]))
    with pytest.raises(ValueError, match=r"ids from -1 to 2"):
        layer.apply(params, state, jnp.array([[-1, 2]]))
    with pytest.raises(TypeError, match=r"expected integer ids, got dtype float32"):
        layer.apply(params, state, jnp.ones((2, 4)))
    # Under jit ids cannot be checked: bad ones give NaN rows, never a wrapped-around row.
    y = jax.jit(lambda p, v: layer.apply(p, state, v)[0])(params, jnp.array([[-1, 6, 2]]))
    assert np.isnan(y[0, 0]).all() and np.isnan(y[0, 1]).all()
    np.testing.assert_array_equal(y[0, 2], table[2])


def test_conv1d_bfloat16_compute():
    layer = nn.Conv1D(6, 3, padding="causal")
    low = nn.Conv1D(6, 3, padding="causal", compute_dtype="bfloat16")
    params, state = layer.init(jax.random.key(0), (10, 4))
    x = jax.random.normal(jax.random.key(1), (2, 10, 4))
    y32, y16 = layer.apply(params, state, x)[0], low.apply(params, state, x)[0]
    assert y16.dtype == jnp.float32 and not np.array_equal(np.asarray(y16), np.asarray(y32))
    np.testing.assert_allclose(y16, y32, rtol=0.05, atol=0.05)


# ----------------------------------------------------------------------------- one conv base

@pytest.mark.parametrize("cls,positional", [
    (nn.Conv1D, ["filters", "kernel_size", "strides", "padding", "dilation", "activation"]),
    (nn.Conv2D, ["filters", "kernel_size", "strides", "padding", "dilation", "groups",
                 "activation"]),
    (nn.Conv2DTranspose, ["filters", "kernel_size", "strides", "padding"]),
])
def test_conv_positional_prefix_is_the_api_table_and_the_rest_keyword_only(cls, positional):
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    rest = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    assert {"use_bias", "kernel_init", "bias_init", "compute_dtype", "groups"} <= rest | set(
        positional)
    with pytest.raises(TypeError):
        cls(*range(1, len(positional) + 2))  # one positional argument too many
    # Every convolution lists its fields in one order.
    assert [f.name for f in dataclasses.fields(cls)] == [
        "filters", "kernel_size", "strides", "padding", "dilation", "groups", "activation",
        "use_bias", "kernel_init", "bias_init", "compute_dtype"]


def _grouped_transpose_reference(x, w, groups, strides, padding):
    """Each group of input channels scattered with its own block of filters, numpy."""
    cin, out = w.shape[2], w.shape[3] // groups
    return np.concatenate([
        conv2d_transpose_reference(x[..., g * cin:(g + 1) * cin],
                                   np.asarray(w)[..., g * out:(g + 1) * out], strides, padding)
        for g in range(groups)], axis=-1)


@pytest.mark.parametrize("strides,padding", [(1, "valid"), (2, "same")])
def test_conv2d_transpose_groups_match_per_group_reference(strides, padding):
    layer = nn.Conv2DTranspose(6, 3, strides, padding, groups=2, use_bias=False)
    params, state = layer.init(jax.random.key(0), (4, 5, 4))
    assert params["kernel"].shape == (3, 3, 2, 6)
    x = np.random.default_rng(4).normal(size=(2, 4, 5, 4)).astype(np.float32)
    y, _ = layer.apply(params, state, x)
    want = _grouped_transpose_reference(x, params["kernel"], 2, (strides, strides), padding)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert y.shape[1:] == nn.output_shape(layer, (4, 5, 4))
    with pytest.raises(ValueError, match=r"Conv2DTranspose.*5 input channels must be divisible "
                                         r"by groups=2"):
        layer.init(jax.random.key(0), (4, 5, 5))


def test_conv2d_transpose_compute_dtype_accumulates_in_float32():
    layer = nn.Conv2DTranspose(3, 3, 2, "same", compute_dtype="bfloat16")
    params, state = layer.init(jax.random.key(0), (5, 5, 4))
    x = jax.random.normal(jax.random.key(1), (2, 5, 5, 4))
    y, _ = layer.apply(params, state, x)
    assert y.dtype == jnp.float32
    # The reference on the same bfloat16-rounded operands, in float64.
    xr = np.asarray(x.astype(jnp.bfloat16).astype(jnp.float32))
    wr = np.asarray(params["kernel"].astype(jnp.bfloat16).astype(jnp.float32))
    want = conv2d_transpose_reference(xr, wr, (2, 2), "same") + np.asarray(params["bias"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    exact = conv2d_transpose_reference(x, params["kernel"], (2, 2), "same")
    assert not np.allclose(y, exact + np.asarray(params["bias"]), rtol=1e-6, atol=1e-6)


def test_conv1d_stores_tuples_and_round_trips():
    layer = nn.Conv1D(4, [3], 2, (1, 2), 2, "relu", groups=2)
    assert (layer.kernel_size, layer.strides, layer.dilation) == ((3,), (2,), (2,))
    assert layer.padding == ((1, 2),)
    again = nn.Conv1D(**json.loads(json.dumps(dataclasses.asdict(layer))))
    assert again == layer and hash(again) == hash(layer)


# ----------------------------------------------------------------------------- scan_friendly

def test_scan_friendly_walks_sublayers_and_honours_user_layers():
    @dataclasses.dataclass(frozen=True)
    class MyConv(nn.Layer):
        scan_friendly = False

        def init(self, key, input_shape):
            return {}, {}

        def apply(self, params, state, x, *, key=None, training=False):
            return x, state

    @dataclasses.dataclass(frozen=True)
    class Wrapper(nn.Layer):
        inner: tuple = ()
        by_name: tuple = ()

    assert nn.scan_friendly(nn.Sequential([nn.Dense(3), nn.ReLU(), nn.Dropout(0.1)]))
    assert not nn.scan_friendly(MyConv())
    assert not nn.scan_friendly(nn.Sequential([nn.Dense(3), MyConv()]))
    assert not nn.scan_friendly(Wrapper(inner=(nn.Dense(2), (nn.Flatten(), MyConv()))))
    assert nn.scan_friendly(Wrapper(inner=(nn.Dense(2), (nn.Flatten(),))))
    for conv in (nn.Conv1D(2, 3), nn.Conv2D(2, 3), nn.Conv2DTranspose(2, 3)):
        assert not nn.scan_friendly(nn.Sequential([nn.Sequential([conv])]))
