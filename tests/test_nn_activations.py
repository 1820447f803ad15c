"""Activation functions and layers against numpy formulas."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdl import nn

X = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 10.0], np.float32)


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


REFERENCE = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "silu": lambda x: x * _np_sigmoid(x),
    "sigmoid": _np_sigmoid,
    "tanh": np.tanh,
    "softplus": lambda x: np.log1p(np.exp(x.astype(np.float64))),
    "softmax": lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
    "log_softmax": lambda x: x - x.max() - np.log(np.exp(x - x.max()).sum()),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_matches_numpy(name):
    fn = nn.ACTIVATIONS[name]
    got = np.asarray(fn(jnp.asarray(X)))
    want = REFERENCE[name](X)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_gradients_float64(name):
    fn = nn.ACTIVATIONS[name]
    with jax.enable_x64(True):
        # Points away from the kinks of relu/leaky_relu/elu at 0.
        x = jnp.array([-2.3, -0.7, 0.4, 1.9], jnp.float64)
        check_grads(fn, (x,), order=2, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6)


def test_relu_family_at_zero_and_slope():
    x = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(nn.relu(x), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(nn.leaky_relu(x, 0.2), [-0.4, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(nn.prelu(x, jnp.float32(0.5)), [-1.0, 0.0, 3.0], rtol=1e-6)
    assert float(jax.grad(lambda v: nn.relu(v).sum())(jnp.array([0.0]))[0]) == 0.0
    # The leaky slope keeps a gradient alive below zero: no dying units.
    assert float(jax.grad(lambda v: nn.leaky_relu(v).sum())(jnp.array([-5.0]))[0]) == \
        pytest.approx(0.01)


def test_gelu_approximation_is_close():
    x = jnp.linspace(-4, 4, 101)
    np.testing.assert_allclose(nn.gelu(x, approximate=True), nn.gelu(x), atol=1e-3)


def test_softmax_is_stable_and_normalized():
    z = jnp.array([[1e4, 0.0, -1e4], [5.0, 5.0, 5.0]])
    p = nn.softmax(z)
    assert np.all(np.isfinite(np.asarray(p)))
    np.testing.assert_allclose(p.sum(-1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    logp = nn.log_softmax(z)
    assert np.all(np.isfinite(np.asarray(logp)))
    np.testing.assert_allclose(logp[0], [0.0, -1e4, -2e4], rtol=1e-6)
    g = jax.grad(lambda v: nn.log_softmax(v)[0, 1])(z)
    assert np.all(np.isfinite(np.asarray(g)))
    # Along another axis.
    np.testing.assert_allclose(nn.softmax(z, axis=0).sum(0), [1, 1, 1], rtol=1e-6)


def test_sigmoid_saturates_without_nan():
    x = jnp.array([-1000.0, 1000.0])
    np.testing.assert_array_equal(nn.sigmoid(x), [0.0, 1.0])
    g = jax.grad(lambda v: nn.sigmoid(v).sum())(x)
    np.testing.assert_array_equal(g, [0.0, 0.0])
    g = jax.grad(lambda v: nn.elu(v).sum())(jnp.array([-1000.0, 1000.0]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_activation_names_resolve_and_unknown_raises():
    layer = nn.Dense(4, activation="tanh")
    params, state = layer.init(jax.random.key(0), (3,))
    y, _ = layer.apply(params, state, jnp.ones((2, 3)))
    np.testing.assert_allclose(
        y, np.tanh(np.ones((2, 3)) @ np.asarray(params["kernel"])), rtol=1e-5)
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*relu"):
        nn.Dense(4, activation="rleu")
    with pytest.raises(ValueError, match="Activation"):
        nn.Activation("nope")


LAYERS = [
    (nn.ReLU(), nn.relu), (nn.LeakyReLU(0.2), lambda x: nn.leaky_relu(x, 0.2)),
    (nn.Sigmoid(), nn.sigmoid), (nn.Tanh(), nn.tanh), (nn.Softmax(), nn.softmax),
    (nn.ELU(), nn.elu), (nn.GELU(), nn.gelu), (nn.SiLU(), nn.silu),
    (nn.Activation("softplus"), nn.softplus), (nn.Activation(jnp.sin), jnp.sin),
]


@pytest.mark.parametrize("layer,fn", LAYERS, ids=lambda v: type(v).__name__)
def test_activation_layers_contract(layer, fn, layer_contract):
    params, state, y = layer_contract(layer, (5,))
    assert params == {} and state == {}
    x = jax.random.normal(jax.random.key(1), (4, 2, 5))
    np.testing.assert_allclose(layer.apply({}, {}, x)[0], fn(x), rtol=1e-6)


@pytest.mark.parametrize("layer,fn", LAYERS, ids=lambda v: type(v).__name__)
def test_activation_layers_cast_integer_input_like_every_layer(layer, fn):
    # One input policy (nn.base.layer_input): integer inputs are cast to float32.
    x = np.array([[-2, -1, 0, 1, 3]], np.int32)
    y, _ = layer.apply({}, {}, x)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, fn(jnp.asarray(x, jnp.float32)), rtol=1e-6)
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}: expected a real-valued "
                                        r"input, got dtype complex64"):
        layer.apply({}, {}, jnp.ones((2, 3), jnp.complex64))


def test_elementwise_factory_classes_are_dataclass_layers():
    assert nn.ReLU() == nn.ReLU() and hash(nn.ReLU()) == hash(nn.ReLU())
    assert nn.ReLU() != nn.Sigmoid() and nn.LeakyReLU(0.2) != nn.LeakyReLU(0.3)
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softmax(axis=1)) == "Softmax(axis=1)" and repr(nn.Tanh()) == "Tanh()"
    assert isinstance(nn.GELU(True), nn.Layer) and nn.GELU(True).approximate is True
    assert nn.ReLU.default_name() == "relu" and nn.LeakyReLU.default_name() == "leaky_relu"
    with pytest.raises(ValueError, match=r"LeakyReLU: `negative_slope` must be a finite "
                                         r"number >= 0, got -1"):
        nn.LeakyReLU(-1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        nn.ELU().alpha = 2.0
    # A user's own elementwise layer from the same factory.
    Scale = nn.activations.elementwise(lambda x, factor: factor * x, "Scale", "x * factor.",
                                       factor=2.0)
    y, _ = Scale(3.0).apply({}, {}, np.array([[1, 2]]))
    np.testing.assert_array_equal(y, [[3.0, 6.0]])


def test_prelu_contract_and_learned_slope(layer_contract):
    layer = nn.PReLU()
    params, state, _ = layer_contract(layer, (6,), wrong_shape=(7,), expected_in_message="(6,)")
    np.testing.assert_allclose(params["slope"], np.full((6,), 0.25))
    x = jnp.array([[-2.0, 1.0, -1.0, 3.0, 0.5, -4.0]])
    y, _ = layer.apply(params, state, x)
    np.testing.assert_allclose(y, [[-0.5, 1.0, -0.25, 3.0, 0.5, -1.0]], rtol=1e-6)
    # d y / d slope = x where x < 0, else 0: the slope is trainable.
    g = jax.grad(lambda p: layer.apply(p, state, x)[0].sum())(params)
    np.testing.assert_allclose(g["slope"], [-2.0, 0.0, -1.0, 0.0, 0.0, -4.0])


def test_prelu_shared_axes(layer_contract):
    layer = nn.PReLU(shared_axes=(1, 2))
    params, _, _ = layer_contract(layer, (4, 4, 3), wrong_shape=(4, 4, 5))
    assert params["slope"].shape == (1, 1, 3)
    with pytest.raises(ValueError, match="shared_axes"):
        nn.PReLU(shared_axes=(0,)).init(jax.random.key(0), (4, 4, 3))


# ------------------------------------------------ NaN propagation, kinks, gelu tails

# Each activation next to jax.nn's version of it, the independent reference.
JAX_NN = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "prelu": lambda x: jax.nn.leaky_relu(x, 0.25),
    "elu": jax.nn.elu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "softmax": jax.nn.softmax,
    "log_softmax": jax.nn.log_softmax,
}
OURS = {name: nn.ACTIVATIONS.get(name) for name in JAX_NN}
OURS["prelu"] = lambda x: nn.prelu(x, jnp.asarray(0.25, x.dtype))
LAYER_FORMS = {
    "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(), "elu": nn.ELU(), "gelu": nn.GELU(),
    "silu": nn.SiLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "softmax": nn.Softmax(),
    "linear": nn.Activation("linear"), "softplus": nn.Activation("softplus"),
    "log_softmax": nn.Activation("log_softmax"),
}
ROW_WISE = {"softmax", "log_softmax"}


def _apply_form(name, form, x):
    if form == "function":
        return OURS[name](x)
    if name == "prelu":
        layer = nn.PReLU()
        params, state = layer.init(jax.random.key(0), x.shape[1:])
        return layer.apply(params, state, x)[0]
    return LAYER_FORMS[name].apply({}, {}, x)[0]


@pytest.mark.parametrize("form", ["function", "layer"])
@pytest.mark.parametrize("name", sorted(JAX_NN))
def test_activation_propagates_nan_like_jax_nn(name, form):
    x = jnp.array([[0.5, -1.0, 2.0, 0.0], [-2.0, jnp.nan, 0.0, 1.0]], jnp.float32)
    got = np.asarray(_apply_form(name, form, x))
    want = np.asarray(JAX_NN[name](x))
    assert np.isnan(got[1, 1]), f"{name} ({form}) turned NaN into {got[1, 1]}"
    if name in ROW_WISE:
        assert np.isnan(got[1]).all(), f"{name} ({form}) left part of the NaN row finite"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(JAX_NN))
def test_activation_gradient_at_kinks_matches_jax_nn(name):
    # 0 is the kink of relu, leaky_relu, prelu and elu and the point where softplus
    # once had slope 0; for the row-wise ones, equal logits (a tie for the max).
    with jax.enable_x64(True):
        x = jnp.array([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [1e-12, -1e-12, 0.0]], jnp.float64)
        w = jnp.array([[0.3, -1.1, 2.0], [1.0, 0.5, -0.7], [0.2, 0.9, -0.4]], jnp.float64)

        def grad_of(fn):
            return np.asarray(jax.grad(lambda v: jnp.sum(w * fn(v)))(x))

        np.testing.assert_allclose(grad_of(OURS[name]), grad_of(JAX_NN[name]),
                                   rtol=1e-12, atol=1e-12)


def test_softplus_and_elu_slopes_at_zero_are_the_textbook_values():
    assert float(jax.grad(nn.softplus)(0.0)) == pytest.approx(0.5, abs=1e-7)
    assert float(jax.grad(nn.elu)(0.0)) == pytest.approx(1.0, abs=1e-7)


def test_losses_use_the_nn_activations():
    from jaxdl import losses

    # binary cross-entropy from logits has slope sigmoid(z) - y: 0.5 - 1 at z = 0.
    g = jax.grad(lambda z: losses.binary_crossentropy(z, jnp.ones((1, 1))).sum())
    assert float(g(jnp.zeros((1, 1)))[0, 0]) == pytest.approx(-0.5, abs=1e-7)
    assert losses.softplus is nn.softplus and losses.log_softmax is nn.log_softmax


def test_gelu_exact_keeps_relative_precision_in_the_negative_tail():
    xs = np.linspace(-10.0, -4.0, 61)
    truth = np.array([v * math.erfc(-v / math.sqrt(2.0)) / 2.0 for v in xs])  # float64
    got = np.asarray(nn.gelu(jnp.asarray(xs, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, truth, rtol=1e-5)
    ref = np.asarray(jax.nn.gelu(jnp.asarray(xs, jnp.float32), approximate=False), np.float64)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
