"""BatchNorm and LayerNorm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import nn

RNG = np.random.default_rng(0)


def _data(shape, loc=3.0, scale=5.0):
    return (loc + scale * RNG.normal(size=shape)).astype(np.float32)


def _bn_state(c):
    return {"mean": jnp.asarray(RNG.normal(size=c), jnp.float32),
            "var": jnp.asarray(RNG.uniform(0.5, 2.0, size=c), jnp.float32)}


# ----------------------------------------------------------------------------- contract

@pytest.mark.parametrize("training", [False, True])
def test_batchnorm_contract(layer_contract, training):
    layer_contract(nn.BatchNorm(), (4, 3, 5), training=training, wrong_shape=(4, 3, 6),
                   expected_in_message="(batch, ..., 5)")


def test_layernorm_contract(layer_contract):
    layer_contract(nn.LayerNorm(), (3, 6), wrong_shape=(3, 5),
                   expected_in_message="(batch, ..., 6)")


# ----------------------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("shape", [(64, 7), (8, 5, 6, 3)])
def test_batchnorm_training_output_is_standardized(shape):
    bn = nn.BatchNorm()
    params, state = bn.init(jax.random.key(0), shape[1:])
    x = _data(shape)  # mean 3, std 5: ε = 1e-3 shifts the variance by only 4e-5
    y, _ = bn.apply(params, state, x, training=True)
    y = np.asarray(y, np.float64)
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, atol=1e-4)


def test_batchnorm_training_matches_numpy_formula():
    bn = nn.BatchNorm(momentum=0.9, epsilon=1e-3)
    params = {"scale": jnp.array([1.5, -0.5, 2.0]), "bias": jnp.array([0.1, 0.2, -0.3])}
    x = _data((6, 4, 3))
    y, new_state = bn.apply(params, _bn_state(3), x, training=True)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 1)), x64.var(axis=(0, 1))  # biased variance
    want = (x64 - mean) / np.sqrt(var + 1e-3) * np.asarray(params["scale"]) + np.asarray(
        params["bias"])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert new_state["mean"].dtype == jnp.float32 and new_state["var"].dtype == jnp.float32


def test_batchnorm_moving_statistics_rule_is_exact():
    x = _data((10, 4))
    params, _ = nn.BatchNorm().init(jax.random.key(0), (4,))
    old = _bn_state(4)
    # With momentum 0 the new moving statistics are the batch statistics themselves.
    _, batch = nn.BatchNorm(momentum=0.0).apply(params, old, x, training=True)
    for m in (0.99, 0.9, 0.5):
        _, new = nn.BatchNorm(momentum=m).apply(params, old, x, training=True)
        for k in ("mean", "var"):
            want = (np.float32(m) * np.asarray(old[k])
                    + np.float32(1.0 - m) * np.asarray(batch[k]))
            np.testing.assert_array_equal(new[k], want)
    np.testing.assert_allclose(batch["mean"], x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(batch["var"], x.astype(np.float64).var(axis=0), rtol=1e-5)
    # Momentum 1 freezes them.
    _, frozen = nn.BatchNorm(momentum=1.0).apply(params, old, x, training=True)
    np.testing.assert_array_equal(frozen["mean"], old["mean"])


def test_batchnorm_inference_uses_moving_statistics_and_keeps_state():
    bn = nn.BatchNorm()
    params, _ = bn.init(jax.random.key(0), (4,))
    state = _bn_state(4)
    before = jax.tree.map(np.array, state)
    x = _data((5, 4))
    y, new_state = bn.apply(params, state, x, training=False)
    assert new_state is state
    for k in state:
        np.testing.assert_array_equal(new_state[k], before[k])
    want = (x - before["mean"]) / np.sqrt(before["var"] + 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    # A batch of one is fine in inference.
    bn.apply(params, state, x[:1], training=False)


def test_batchnorm_momentum_zero_makes_inference_equal_training():
    bn = nn.BatchNorm(momentum=0.0)
    params = {"scale": jnp.array([2.0, 0.5, 1.0]), "bias": jnp.array([0.0, 1.0, -1.0])}
    x = _data((16, 3))
    y_train, state = bn.apply(params, _bn_state(3), x, training=True)
    y_infer, _ = bn.apply(params, state, x, training=False)
    np.testing.assert_allclose(y_infer, y_train, rtol=1e-6, atol=1e-6)


def test_batchnorm_low_precision_statistics_in_float32():
    # bfloat16 has 8 significant bits: summing 4096 values near 1000 in bf16 would lose the
    # mean entirely, float32 statistics keep it.
    xb = jnp.asarray(1000.0 + _data((4096, 2), 0.0, 4.0), jnp.bfloat16)
    bn = nn.BatchNorm(momentum=0.0)
    params, state = bn.init(jax.random.key(0), (2,))
    y, new_state = bn.apply(params, state, xb, training=True)
    assert y.dtype == jnp.bfloat16 and new_state["mean"].dtype == jnp.float32
    x32 = np.asarray(xb.astype(jnp.float32), np.float64)
    np.testing.assert_allclose(new_state["mean"], x32.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(new_state["var"], x32.var(axis=0), rtol=1e-4)
    want = (x32 - x32.mean(axis=0)) / np.sqrt(x32.var(axis=0) + 1e-3)
    np.testing.assert_allclose(np.asarray(y.astype(jnp.float32)), want, atol=0.05)


def test_batchnorm_in_a_sequential_updates_named_state():
    model = nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.ReLU(), nn.Dense(2)])
    params, state = model.init(jax.random.key(0), (3,))
    assert set(state) == {"batch_norm_0"} and set(params["batch_norm_0"]) == {"scale", "bias"}
    x = _data((8, 3))
    _, new_state = model.apply(params, state, x, training=True)
    assert not np.allclose(new_state["batch_norm_0"]["mean"], state["batch_norm_0"]["mean"])

    def loss(p, s):
        y, s = model.apply(p, s, x, training=True)
        return jnp.mean(y ** 2), s

    (value, s2), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, state)
    assert np.isfinite(value) and set(grads["batch_norm_0"]) == {"scale", "bias"}
    np.testing.assert_allclose(s2["batch_norm_0"]["mean"], new_state["batch_norm_0"]["mean"],
                               rtol=1e-6)


def test_batchnorm_errors():
    bn = nn.BatchNorm()
    params, state = bn.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"BatchNorm\(momentum=0.99, epsilon=0.001\): training "
                                         r"needs a batch of at least 2 examples.*\(1, 3\)"):
        bn.apply(params, state, jnp.ones((1, 3)), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm.*expected input of shape \(batch, ..., 3\)"
                                         r".*received x of shape \(4, 5\)"):
        bn.apply(params, state, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"BatchNorm: `momentum` must be in \[0, 1\]"):
        nn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm: `epsilon` must be a finite number > 0"):
        nn.BatchNorm(epsilon=0.0)
    with pytest.raises(TypeError, match=r"BatchNorm: `momentum` must be a number"):
        nn.BatchNorm(momentum="0.9")


# ----------------------------------------------------------------------------- LayerNorm

def test_layernorm_matches_numpy_and_ignores_the_batch():
    ln = nn.LayerNorm()
    params = {"scale": jnp.array([1.0, 2.0, 0.5, -1.0]), "bias": jnp.array([0.0, 1.0, 0.0, 2.0])}
    x = _data((3, 5, 4))
    y, state = ln.apply(params, {}, x)
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, xhat * np.asarray(params["scale"]) + np.asarray(
        params["bias"]), rtol=1e-5, atol=1e-5)
    assert state == {}
    # Each example on its own: a batch of one gives the same rows, in training too.
    y1, _ = ln.apply(params, {}, x[:1], training=True)
    np.testing.assert_allclose(y1[0], y[0], rtol=1e-6, atol=1e-6)
    # With γ = 1, β = 0 every row has mean 0 and variance σ²/(σ² + ε) ≈ 1.
    p0, _ = ln.init(jax.random.key(0), (4,))
    y0 = np.asarray(ln.apply(p0, {}, x)[0], np.float64)
    np.testing.assert_allclose(y0.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y0.var(-1), 1.0, atol=1e-4)


def test_layernorm_bf16_and_errors():
    ln = nn.LayerNorm()
    params, _ = ln.init(jax.random.key(0), (8,))
    y, _ = ln.apply(params, {}, jnp.asarray(_data((2, 8)), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match=r"LayerNorm\(epsilon=1e-05\): expected input of shape "
                                         r"\(batch, ..., 8\)"):
        ln.apply(params, {}, jnp.ones((2, 7)))
    with pytest.raises(ValueError, match=r"LayerNorm: `epsilon` must be a finite number > 0"):
        nn.LayerNorm(epsilon=-1.0)
