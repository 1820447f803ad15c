"""Mixed precision: train.precision's policy, the train/eval steps' compute_dtype, float16
loss scaling end to end, and Embedding's compute_dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import data, losses, nn, optim, train
from jaxdl.train import precision


def _bf16(a):
    """``a`` rounded to bfloat16, as float64 (the reference arithmetic)."""
    return np.asarray(jnp.asarray(a, jnp.float32).astype(jnp.bfloat16).astype(jnp.float32),
                      np.float64)


# ------------------------------------------------------------------ the policy


def test_cast_apply_computes_in_bfloat16_and_returns_float32():
    model = nn.Sequential([nn.Dense(3)])
    params, state = model.init(jax.random.key(0), (5,))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)), jnp.float32)
    y, _ = precision.cast_apply(model, "bfloat16")(params, state, x)
    k, b = params["dense_0"]["kernel"], params["dense_0"]["bias"]
    exact = np.asarray(x, np.float64) @ np.asarray(k, np.float64) + np.asarray(b, np.float64)
    low = _bf16(x) @ _bf16(k) + _bf16(b)
    assert y.dtype == jnp.float32
    # bfloat16 keeps 8 significant bits: the result is the rounded operands' product...
    np.testing.assert_allclose(np.asarray(y), low, rtol=2 ** -7, atol=2 ** -7)
    # ...which is measurably not the float32 one.
    assert np.max(np.abs(np.asarray(y) - exact)) > 1e-4
    assert precision.cast_apply(model, None) == model.apply


def test_params_grads_and_model_state_stay_float32():
    """Multi-input graph: float features cast, integer ids untouched, BatchNorm state float32
    (the train step's params and optimizer state: the digits test below)."""
    ids, feats = nn.Input((3,)), nn.Input((4,))
    h = nn.Concatenate()([nn.Flatten()(nn.Embedding(10, 2)(ids)),
                          nn.BatchNorm()(nn.Dense(4)(feats))])
    model = nn.Model([ids, feats], nn.Dense(1)(h))
    params, model_state = model.init(jax.random.key(0), ((3,), (4,)))
    rng = np.random.default_rng(1)
    x = (jnp.asarray(rng.integers(0, 10, (8, 3)), jnp.int32),
         jnp.asarray(rng.normal(size=(8, 4)), jnp.float32))
    y = jnp.asarray(rng.normal(size=(8, 1)), jnp.float32)
    apply = precision.cast_apply(model, "bfloat16")

    def objective(params):
        pred, new_state = apply(params, model_state, x, training=True)
        return jnp.mean((pred - y) ** 2), (pred, new_state)

    grads, (pred, new_state) = jax.jit(jax.grad(objective, has_aux=True))(params)
    for leaf in jax.tree.leaves((grads, new_state, pred)):
        assert leaf.dtype == jnp.float32
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))
    # The same as applying the bfloat16-cast params to the bfloat16-cast features by hand.
    params16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    ref, _ = jax.jit(model.apply, static_argnames="training")(
        params16, model_state, (x[0], x[1].astype(jnp.bfloat16)), training=True)
    np.testing.assert_array_equal(pred, ref.astype(jnp.float32))


@pytest.mark.parametrize("bad", ["int8", "float17", 3, jnp.int32])
def test_bad_compute_dtype_is_refused(bad):
    model = nn.Sequential([nn.Dense(1)])
    with pytest.raises(TypeError, match="make_train_step: `compute_dtype` must be"):
        train.make_train_step(model, "mse", optim.sgd(0.1), compute_dtype=bad)
    with pytest.raises(TypeError, match="make_eval_step: `compute_dtype` must be"):
        train.make_eval_step(model, "mse", compute_dtype=bad)
    with pytest.raises(TypeError, match="compute_dtype"):
        precision.cast_apply(model, bad)


def test_with_loss_scaling_only_for_float16():
    opt = optim.sgd(0.1)
    assert precision.with_loss_scaling(opt, None) is opt
    assert precision.with_loss_scaling(opt, "bfloat16") is opt
    assert precision.with_loss_scaling(opt, jnp.float32) is opt
    wrapped = precision.with_loss_scaling(opt, jnp.float16)
    state = wrapped.init(jnp.zeros(2))
    assert isinstance(state, optim.DynamicLossScaleState)
    assert float(optim.loss_scale_of(state)) == 2.0 ** 15


def test_eval_step_compute_dtype_close_to_float32():
    model = nn.Sequential([nn.Dense(8, activation="tanh"), nn.Dense(3)])
    state = train.TrainState.create(model, optim.sgd(0.1), (5,), jax.random.key(2))
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 16), jnp.int32)
    loss = "sparse_categorical_crossentropy"
    full = train.make_eval_step(model, loss)(state, (x, y))["loss"]
    low = train.make_eval_step(model, loss, compute_dtype="bfloat16")(state, (x, y))["loss"]
    assert low.dtype == jnp.float32 and float(low) != float(full)
    np.testing.assert_allclose(float(low), float(full), rtol=2e-2)


# ------------------------------------------------------------------ loss scaling in the step


def test_loss_scaled_step_equals_plain_step_in_float32():
    """A power-of-two loss scale changes nothing in float32: same params, same logged loss."""
    model = nn.Sequential([nn.Dense(4, activation="relu"), nn.Dense(2)])
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
    runs = []
    for opt in (optim.adam(1e-2), optim.dynamic_loss_scale(optim.adam(1e-2), 2.0 ** 10)):
        state = train.TrainState.create(model, opt, (3,), jax.random.key(0))
        step = train.make_train_step(model, "mse", opt)
        for _ in range(5):
            state, logs = step(state, (x, y))
        runs.append((state.params, logs["loss"]))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)


def _tiny_loss_regression(compute_dtype, optimizer, steps=150):
    """Linear regression whose loss is multiplied by 2**-30 (and the learning rate by 2**30):
    in exact arithmetic plain SGD on the MSE; in float16 its gradients (~1e-10) flush to 0."""
    tiny = 2.0 ** -30
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(32, 3)), jnp.float32)
    y = x @ jnp.asarray([[1.0], [-2.0], [0.5]], jnp.float32)
    model = nn.Sequential([nn.Dense(1)])
    state = train.TrainState.create(model, optimizer, (3,), jax.random.key(0))
    start = state.params
    step = train.make_train_step(model, lambda p, t: tiny * losses.mean_squared_error(p, t),
                                 optimizer, compute_dtype=compute_dtype, donate=False)
    history = []
    for _ in range(steps):
        state, logs = step(state, (x, y))
        history.append(float(logs["loss"]) / tiny)
    return start, state, history


def test_float16_underflows_without_loss_scaling_and_trains_with_it():
    sgd = optim.sgd(0.05 * 2.0 ** 30)
    start, state, history = _tiny_loss_regression("float16", sgd)
    for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a, b)       # every gradient flushed to zero
    assert history[-1] == history[0] > 0.5
    _, state32, history32 = _tiny_loss_regression(None, sgd)
    assert history32[-1] < 1e-3 * history32[0]    # float32 has the range: it learns
    scaled = optim.dynamic_loss_scale(optim.sgd(0.05 * 2.0 ** 30), growth_interval=10)
    _, state16, history16 = _tiny_loss_regression("float16", scaled)
    assert history16[-1] < 1e-2 * history16[0]   # the scaled loss lifts them into range
    np.testing.assert_allclose(state16.params["dense_0"]["kernel"][:, 0], [1.0, -2.0, 0.5],
                               atol=0.05)
    assert state16.params["dense_0"]["kernel"].dtype == jnp.float32
    assert float(optim.loss_scale_of(state16.opt_state)) > 2.0 ** 15  # it grew


# ------------------------------------------------------------------ digits CNN in bfloat16


def _digits_cnn(compute_dtype, *, width, epochs, batch_size):
    (x, y), (xt, yt) = data.load_digits()
    model = nn.Sequential([nn.Conv2D(width, 3, padding="same", activation="relu"),
                           nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10)])
    trainer = train.Trainer(model, "sparse_categorical_crossentropy", optim.adam(1e-2),
                            metrics=("accuracy",), compute_dtype=compute_dtype)
    history = trainer.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=0)
    return trainer.state, history.history["loss"], trainer.evaluate(xt, yt)["accuracy"]


def _check_bfloat16_matches_float32(**kwargs):
    s32, loss32, acc32 = _digits_cnn(None, **kwargs)
    s16, loss16, acc16 = _digits_cnn("bfloat16", **kwargs)
    assert acc32 > 0.9
    assert abs(acc16 - acc32) <= 0.01, (acc16, acc32)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves((s16.params, s16.opt_state))
               if jnp.issubdtype(p.dtype, jnp.floating))
    assert loss16 != loss32  # it did compute in bfloat16


def test_bfloat16_digits_cnn_within_one_point_of_float32():
    _check_bfloat16_matches_float32(width=4, epochs=8, batch_size=64)


@pytest.mark.slow
def test_bfloat16_digits_cnn_within_one_point_of_float32_full():
    _check_bfloat16_matches_float32(width=16, epochs=30, batch_size=32)


# ------------------------------------------------------------------ Embedding


def test_embedding_compute_dtype_rounds_rows_returns_float32():
    emb = nn.Embedding(5, 3, compute_dtype=jnp.bfloat16)
    assert emb.compute_dtype == "bfloat16"
    params, state = emb.init(jax.random.key(0), (2,))
    params = {"embedding": jnp.asarray(np.random.default_rng(5).normal(size=(5, 3)),
                                       jnp.float32)}
    ids = jnp.asarray([[0, 4], [2, 2]], jnp.int32)
    y, _ = emb.apply(params, state, ids)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y, np.float64),
                                  _bf16(params["embedding"])[np.asarray(ids)])
    full, _ = nn.Embedding(5, 3).apply(params, state, ids)
    assert not np.array_equal(y, full)
    grads = jax.grad(lambda p: jnp.sum(emb.apply(p, state, ids)[0]))(params)
    assert grads["embedding"].dtype == jnp.float32
    np.testing.assert_array_equal(grads["embedding"][:, 0], [1.0, 0.0, 2.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="Embedding: `compute_dtype`"):
        nn.Embedding(5, 3, compute_dtype="int8")


# ------------------------------------------------------------------ Trainer(compute_dtype=...)


def test_trainer_float16_adds_loss_scaling_and_learns_the_tiny_loss():
    tiny = 2.0 ** -30
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    trainer = train.Trainer(nn.Sequential([nn.Dense(1)]),
                            lambda p, t: tiny * losses.mean_squared_error(p, t),
                            optim.sgd(0.05 / tiny), compute_dtype="float16")
    history = trainer.fit(x, y, epochs=60, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 1e-2 * history.history["loss"][0]
    assert float(optim.loss_scale_of(trainer.state.opt_state)) == 2.0 ** 15
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(trainer.state.params))
    np.testing.assert_allclose(trainer.state.params["dense_0"]["kernel"][:, 0],
                               [1.0, -2.0, 0.5], atol=0.05)
    with pytest.raises(TypeError, match="Trainer: `compute_dtype` must be"):
        train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", compute_dtype="int8")


def test_trainer_bfloat16_close_to_float32_with_float32_outputs():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=(5, 1))).astype(np.float32)
    results = {}
    for cd in (None, "bfloat16"):
        trainer = train.Trainer(nn.Sequential([nn.Dense(8, activation="tanh"), nn.Dense(1)]),
                                "mse", optim.adam(1e-2), compute_dtype=cd)
        history = trainer.fit(x, y, epochs=5, batch_size=16, verbose=0)
        results[cd] = (np.asarray(history.history["loss"]), trainer.predict(x),
                       trainer.evaluate(x, y)["loss"])
        assert trainer.state.params["dense_0"]["kernel"].dtype == jnp.float32
    (l32, p32, e32), (l16, p16, e16) = results[None], results["bfloat16"]
    assert p16.dtype == np.float32 and not np.array_equal(p16, p32)
    assert l16[-1] < 0.5 * l16[0]
    np.testing.assert_allclose(l16, l32, rtol=1e-2)
    np.testing.assert_allclose(p16, p32, atol=1e-2)
    np.testing.assert_allclose(e16, e32, rtol=1e-2)
