"""Dense, Sequential, summary, output_shape and initializers."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import nn
from jaxdl.nn import initializers

# ----------------------------------------------------------------------------- Dense

def test_dense_contract(layer_contract):
    layer = nn.Dense(4, activation="tanh")
    params, _, _ = layer_contract(layer, (5,), wrong_shape=(6,),
                                  expected_in_message="(batch, ..., 5)")
    assert params["kernel"].shape == (5, 4) and params["bias"].shape == (4,)


def test_dense_on_higher_rank_input(layer_contract):
    layer_contract(nn.Dense(3), (2, 5), wrong_shape=(2, 4))


def test_dense_without_bias(layer_contract):
    params, _, _ = layer_contract(nn.Dense(3, use_bias=False), (4,))
    assert set(params) == {"kernel"}


def test_dense_matches_numpy():
    layer = nn.Dense(3, activation="relu")
    params, state = layer.init(jax.random.key(1), (4,))
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    y, new_state = layer.apply(params, state, x)
    want = np.maximum(x @ np.asarray(params["kernel"]) + np.asarray(params["bias"]), 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert new_state is state


def test_dense_casts_integer_input():
    layer = nn.Dense(2)
    params, state = layer.init(jax.random.key(0), (3,))
    y, _ = layer.apply(params, state, jnp.ones((1, 3), jnp.int32))
    assert y.dtype == jnp.float32


def test_dense_bad_arguments():
    with pytest.raises(ValueError, match=r"Dense: `features` must be a positive integer, got 0"):
        nn.Dense(0)
    with pytest.raises(TypeError, match=r"`features`.*2.5"):
        nn.Dense(2.5)
    with pytest.raises(ValueError, match=r"Dense: `kernel_init`: unknown initializer 'glorot'; "
                                         r"expected one of.*glorot_uniform"):
        nn.Dense(2, kernel_init="glorot")
    layer = nn.Dense(2)
    params, state = layer.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"Dense\(features=2\).*batch axis.*\(3,\)"):
        layer.apply(params, state, jnp.ones((3,)))
    with pytest.raises(ValueError, match=r"input_shape"):
        layer.init(jax.random.key(0), (0,))
    with pytest.raises(TypeError, match=r"input_shape"):
        layer.init(jax.random.key(0), "784")


def test_layers_are_hashable_frozen_and_json_friendly():
    layer = nn.Dense(3, activation="relu", kernel_init="he_normal")
    assert hash(layer) == hash(nn.Dense(3, activation="relu", kernel_init="he_normal"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.features = 4
    assert json.loads(json.dumps(dataclasses.asdict(layer)))["features"] == 3
    # A layer can be a static argument of jit.
    f = jax.jit(lambda lay, p, x: lay.apply(p, {}, x)[0], static_argnums=0)
    params, _ = layer.init(jax.random.key(0), (2,))
    assert f(layer, params, jnp.ones((1, 2))).shape == (1, 3)


# ----------------------------------------------------------------------------- Sequential

def _mlp():
    return nn.Sequential([nn.Dense(8, activation="relu"), nn.LeakyReLU(), nn.Dense(8),
                          nn.PReLU(), nn.Dense(3), nn.Softmax()])


def test_sequential_names_and_param_keys():
    model = _mlp()
    assert model.names == ("dense_0", "leaky_relu_0", "dense_1", "prelu_0", "dense_2",
                           "softmax_0")
    params, state = model.init(jax.random.key(0), (4,))
    assert sorted(params) == ["dense_0", "dense_1", "dense_2", "prelu_0"]
    assert state == {}


def test_sequential_contract(layer_contract):
    layer_contract(_mlp(), (4,), wrong_shape=(5,), expected_in_message="dense_0")


def test_sequential_equals_manual_composition():
    model = _mlp()
    params, state = model.init(jax.random.key(0), (4,))
    x = jax.random.normal(jax.random.key(2), (5, 4))
    h = nn.relu(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
    h = nn.leaky_relu(h)
    h = h @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]
    h = nn.prelu(h, params["prelu_0"]["slope"])
    h = nn.softmax(h @ params["dense_2"]["kernel"] + params["dense_2"]["bias"])
    y, _ = model.apply(params, state, x)
    np.testing.assert_allclose(y, h, rtol=1e-5, atol=1e-6)


def test_sequential_layer_keys_do_not_shift_when_appending():
    base = [nn.Dense(8), nn.Dense(4)]
    p1, _ = nn.Sequential(base).init(jax.random.key(0), (3,))
    p2, _ = nn.Sequential(base + [nn.Dense(2)]).init(jax.random.key(0), (3,))
    for name in ("dense_0", "dense_1"):
        np.testing.assert_array_equal(p1[name]["kernel"], p2[name]["kernel"])
    # Different layers get different keys.
    assert not np.allclose(p2["dense_0"]["kernel"][:, :4], p2["dense_1"]["kernel"][:3, :4])


def test_nested_sequential(layer_contract):
    inner = nn.Sequential([nn.Dense(6, activation="tanh"), nn.Dense(6)])
    model = nn.Sequential([inner, nn.ReLU(), nn.Dense(2)])
    params, _, _ = layer_contract(model, (3,), wrong_shape=(4,))
    assert set(params["sequential_0"]) == {"dense_0", "dense_1"}


def test_sequential_errors():
    with pytest.raises(TypeError, match=r"layers\[1\].*nn.ReLU\(\)"):
        nn.Sequential([nn.Dense(2), nn.ReLU])
    with pytest.raises(TypeError, match="wrap it in a list"):
        nn.Sequential(nn.Dense(2))
    model = nn.Sequential([nn.Dense(2)])
    params, state = model.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"\['conv2d_0'\].*\['dense_0'\]"):
        model.apply({"conv2d_0": {}}, state, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"lack the leaf 'dense_0/kernel'"):
        model.apply({"dense_0": {"bias": params["dense_0"]["bias"]}}, state, jnp.ones((1, 3)))


def test_output_shape_without_flops():
    model = _mlp()
    assert nn.output_shape(model, (4,)) == (3,)
    assert nn.output_shape(nn.Dense(7), (2, 5)) == (2, 7)
    assert nn.output_shape(model, 4) == (3,)


# ----------------------------------------------------------------------------- summary

def test_summary_counts_match_params():
    model = nn.Sequential([nn.Dense(32, activation="relu"), nn.Dense(1, activation="sigmoid")])
    text = nn.summary(model, (8,))
    # The course's Keras MLP: Dense(32, input_dim=8) has (8+1)*32 = 288 params, Dense(1) 33.
    assert "dense_0 (Dense)" in text and "(None, 32)" in text and "288" in text
    assert "dense_1 (Dense)" in text and "(None, 1)" in text and "33" in text
    assert "Total params: 321" in text
    assert "Trainable params: 321" in text
    assert "Non-trainable params: 0" in text
    params, _ = model.init(jax.random.key(0), (8,))
    assert sum(a.size for a in jax.tree.leaves(params)) == 321


def test_summary_of_single_layer():
    text = nn.summary(nn.Dense(10), (784,))
    assert "dense_0 (Dense)" in text and "7,850" in text


# ----------------------------------------------------------------------------- initializers

@pytest.mark.parametrize("name,scale,mode", [
    ("glorot_uniform", 1.0, "avg"), ("glorot_normal", 1.0, "avg"),
    ("he_uniform", 2.0, "in"), ("he_normal", 2.0, "in"),
    ("lecun_uniform", 1.0, "in"), ("lecun_normal", 1.0, "in"),
])
def test_variance_scaling_statistics(name, scale, mode):
    shape = (3, 3, 64, 128)  # a conv kernel: receptive field 9
    fan_in, fan_out = 9 * 64, 9 * 128
    n = fan_in if mode == "in" else (fan_in + fan_out) / 2
    w = np.asarray(getattr(initializers, name)(jax.random.key(0), shape))
    assert w.shape == shape and w.dtype == np.float32
    # 73,728 draws: the sample variance is within ~1.5 % of the target.
    np.testing.assert_allclose(w.var(), scale / n, rtol=0.03)
    assert abs(w.mean()) < 4 * np.sqrt(scale / n / w.size)
    if "uniform" in name:
        assert np.abs(w).max() <= np.sqrt(3 * scale / n)
    else:
        assert np.abs(w).max() <= 2 * np.sqrt(scale / n) / 0.87962566103423978 + 1e-6


def test_simple_initializers():
    k = jax.random.key(0)
    np.testing.assert_array_equal(initializers.zeros(k, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.ones(k, (4,)), np.ones(4))
    w = np.asarray(initializers.normal(0.5)(k, (200, 200)))
    np.testing.assert_allclose(w.std(), 0.5, rtol=0.02)
    u = np.asarray(initializers.uniform(0.3)(k, (200, 200)))
    assert u.min() >= -0.3 and u.max() <= 0.3 and u.max() > 0.29
    assert initializers.glorot_uniform(k, (3, 4), jnp.bfloat16).dtype == jnp.bfloat16


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (3, 3, 8, 16)])
def test_orthogonal(shape):
    w = np.asarray(initializers.orthogonal(gain=2.0)(jax.random.key(0), shape), np.float64)
    m = w.reshape(-1, shape[-1])
    small = min(m.shape)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-4)


def test_initializer_errors():
    with pytest.raises(TypeError, match="floating"):
        initializers.he_normal(jax.random.key(0), (2, 2), jnp.int32)
    with pytest.raises(ValueError, match="rank >= 2"):
        initializers.orthogonal()(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("nope")
    assert initializers.get("kaiming_normal") is initializers.he_normal


@pytest.mark.parametrize("layer,shape", [(nn.Dense(16), (32,)),
                                         (nn.Conv2D(8, 3, padding="same"), (6, 6, 4))],
                         ids=["Dense", "Conv2D"])
def test_bfloat16_compute_with_float32_accumulation(layer, shape):
    low = dataclasses.replace(layer, compute_dtype="bfloat16")
    assert low.compute_dtype == "bfloat16" and hash(low) != hash(layer)
    params, state = layer.init(jax.random.key(0), shape)
    x = jax.random.normal(jax.random.key(1), (4,) + shape)
    y32, _ = layer.apply(params, state, x)
    y16, _ = low.apply(params, state, x)
    assert y16.dtype == jnp.float32
    # bf16 keeps 8 bits of mantissa: inputs are rounded to ~0.4 %, the sums are exact-ish.
    np.testing.assert_allclose(y16, y32, rtol=0.05, atol=0.05)
    assert not np.array_equal(np.asarray(y16), np.asarray(y32))  # it really ran in bf16
    g = jax.grad(lambda p: low.apply(p, state, x)[0].sum())(params)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(g))
    with pytest.raises(TypeError, match="compute_dtype"):
        dataclasses.replace(layer, compute_dtype="int8")


# ------------------------------------------------- params of another model, notes, bad args

def test_params_of_another_model_raise_naming_the_leaf():
    trunk = nn.Sequential([nn.Dense(32, activation="relu"), nn.Dense(1)])
    model = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(1)])
    trunk_params, state = trunk.init(jax.random.key(0), (8,))
    x = jnp.ones((4, 8))
    for apply in (model.apply, jax.jit(model.apply, static_argnames="training")):
        with pytest.raises(ValueError, match=r"Sequential.*'dense_0/kernel' has shape \(8, 32\)"
                                             r".*init makes \(8, 16\)"):
            apply(trunk_params, state, x)
    # A standalone layer names its own leaf.
    with pytest.raises(ValueError, match=r"Dense\(features=16\).*'kernel' has shape \(8, 32\)"):
        nn.Dense(16).apply(trunk_params["dense_0"], {}, x)
    # An extra leaf is another model's too (a bias fed to a bias-free layer).
    with pytest.raises(ValueError, match=r"'bias'.*that init does not make"):
        nn.Dense(32, use_bias=False).apply(trunk_params["dense_0"], {}, x)
    # The model's own params are unchanged: same numbers as by hand, eager and jitted.
    params, state = model.init(jax.random.key(1), (8,))
    want = np.maximum(np.ones((4, 8)) @ np.asarray(params["dense_0"]["kernel"]), 0.0) \
        @ np.asarray(params["dense_1"]["kernel"])
    for apply in (model.apply, jax.jit(model.apply)):
        np.testing.assert_allclose(apply(params, state, x)[0], want, rtol=1e-5, atol=1e-6)


def test_traced_training_flag_keeps_jax_error_with_layer_note():
    model = nn.Sequential([nn.Dense(4), nn.Dropout(0.5), nn.Dense(1)])
    params, state = model.init(jax.random.key(0), (3,))
    x = jnp.ones((2, 3))
    with pytest.raises(jax.errors.ConcretizationTypeError) as info:
        jax.jit(model.apply)(params, state, x, key=jax.random.key(1), training=True)
    notes = "\n".join(getattr(info.value, "__notes__", ()))
    assert "Sequential layer 'dropout_0'" in notes
    assert "static_argnames='training'" in notes
    # The fix the note gives works.
    y, _ = jax.jit(model.apply, static_argnames="training")(
        params, state, x, key=jax.random.key(1), training=True)
    assert y.shape == (2, 1)


def test_value_errors_of_inner_layers_keep_their_type_and_gain_the_layer_name():
    model = nn.Sequential([nn.Dense(2), nn.Reshape((3,))])
    with pytest.raises(ValueError, match=r"Reshape\(shape=\(3,\)\): cannot reshape") as info:
        model.init(jax.random.key(0), (3,))
    assert type(info.value) is ValueError
    assert "Sequential layer 'reshape_0' (input_shape (2,))" in "\n".join(info.value.__notes__)


def _dense_params():
    return nn.Dense(3).init(jax.random.key(0), (4,))[0]


BAD_CALLS = {
    "sequential apply(None, None, x)": (
        lambda: nn.Sequential([nn.Dense(3)]).apply(None, None, jnp.ones((2, 4))),
        TypeError, r"Sequential: `params` must be the dict.*got NoneType.*init\("),
    "sequential state None": (
        lambda: nn.Sequential([nn.Dense(3)]).apply({"dense_0": _dense_params()}, None,
                                                   jnp.ones((2, 4))),
        TypeError, r"Sequential: `state` must be the dict.*got NoneType"),
    "dense apply(None, None, x)": (
        lambda: nn.Dense(3).apply(None, None, jnp.ones((2, 4))),
        TypeError, r"Dense\(features=3\): `params` must be the dict.*got NoneType"),
    "conv apply(None, None, x)": (
        lambda: nn.Conv2D(2, 3).apply(None, None, jnp.ones((1, 5, 5, 1))),
        TypeError, r"Conv2D.*`params` must be the dict.*got NoneType"),
    "Dense.init key=None": (
        lambda: nn.Dense(3).init(None, (4,)),
        TypeError, r"Dense.init: `key` must be a JAX random key, got None.*jax.random.key\(0\)"),
    "Dense.init key=int": (
        lambda: nn.Dense(3).init(0, (4,)),
        TypeError, r"Dense.init: `key` must be a JAX random key, got int 0.*jax.random.key\(0\)"),
    "Conv2D.init key=None": (
        lambda: nn.Conv2D(2, 3).init(None, (5, 5, 1)),
        TypeError, r"Conv2D.init: `key`.*jax.random.key\(0\)"),
    "Sequential.init key=int": (
        lambda: nn.Sequential([nn.Dense(3)]).init(7, (4,)),
        TypeError, r"Sequential.init: `key`.*got int 7.*jax.random.key\(0\)"),
    "Embedding.init key=None": (
        lambda: nn.Embedding(10, 4).init(None, (3,)),
        TypeError, r"Embedding.init: `key`.*jax.random.key\(0\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_arguments_get_a_clear_error(case):
    call, error, pattern = BAD_CALLS[case]
    with pytest.raises(error, match=pattern):
        call()


def test_raw_uint32_keys_still_work():
    params, _ = nn.Dense(3).init(jax.random.PRNGKey(0), (4,))
    assert params["kernel"].shape == (4, 3)


def test_flatten_empty_batch():
    y, _ = nn.Flatten().apply({}, {}, jnp.ones((0, 5, 4, 3)))
    assert y.shape == (0, 60)
    model = nn.Sequential([nn.Flatten(), nn.Dense(2)])
    params, state = model.init(jax.random.key(0), (5, 4, 3))
    assert model.apply(params, state, jnp.ones((0, 5, 4, 3)))[0].shape == (0, 2)


# ----------------------------------------------------------------------------- input policy

POLICY_LAYERS = [
    (nn.Dense(3), (4,)), (nn.Conv1D(2, 2), (5, 3)), (nn.Conv2D(2, 2), (4, 4, 3)),
    (nn.Conv2DTranspose(2, 2), (3, 3, 2)), (nn.MaxPool2D(2), (4, 4, 2)),
    (nn.AvgPool2D(2), (4, 4, 2)), (nn.GlobalAvgPool2D(), (3, 3, 2)),
    (nn.GlobalMaxPool2D(), (3, 3, 2)), (nn.Dropout(0.5), (4,)), (nn.BatchNorm(), (4,)),
    (nn.LayerNorm(), (4,)), (nn.PReLU(), (4,)), (nn.ReLU(), (4,)), (nn.Softmax(), (4,)),
    (nn.Activation("tanh"), (4,)),
]


@pytest.mark.parametrize("layer,shape", POLICY_LAYERS, ids=lambda v: type(v).__name__)
def test_every_computing_layer_casts_integers_and_rejects_complex(layer, shape):
    params, state = layer.init(jax.random.key(0), shape)
    x = np.arange(2 * math.prod(shape)).reshape((2,) + shape) % 5 - 2
    for training in (False, True):
        key = jax.random.key(1)
        y_int, _ = layer.apply(params, state, x.astype(np.int32), key=key, training=training)
        y_float, _ = layer.apply(params, state, x.astype(np.float32), key=key,
                                 training=training)
        assert y_int.dtype == jnp.float32
        np.testing.assert_array_equal(y_int, y_float)
    with pytest.raises(TypeError, match=r"expected a real-valued input, got dtype complex64"):
        layer.apply(params, state, x.astype(np.complex64))
