"""Training: the pure step, the Trainer, metrics, callbacks and the progress line."""

import csv
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import data, losses, nn, optim, train
from jaxdl.nn.base import Layer


def _digits_flat():
    (x, y), (xt, yt) = data.load_digits(flatten=True)
    return x, y, xt, yt


def _mlp(hidden=32):
    return nn.Sequential([nn.Dense(hidden, activation="relu"), nn.Dense(10)])


def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    return x, y


# ------------------------------------------------------------------------- pure core

def test_train_step_equals_hand_computed_gradient_descent():
    model = nn.Sequential([nn.Dense(1)])
    opt = optim.sgd(0.1)
    state = train.TrainState.create(model, opt, (3,), jax.random.key(0))
    x, y = _regression(8)
    w0, b0 = np.asarray(state.params["dense_0"]["kernel"]), np.asarray(
        state.params["dense_0"]["bias"])
    # MSE = mean((xw + b - y)^2); dMSE/dw = 2/n x^T (xw + b - y)
    err = x @ w0 + b0 - y
    want_w = w0 - 0.1 * 2 / len(x) * x.T @ err
    want_b = b0 - 0.1 * 2 / len(x) * err.sum(0)
    step = train.make_train_step(model, losses.mean_squared_error, opt)
    state, logs = step(state, (x, y))
    np.testing.assert_allclose(state.params["dense_0"]["kernel"], want_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.params["dense_0"]["bias"], want_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["loss"], np.mean(err ** 2), rtol=1e-5)
    assert int(state.step) == 1


def test_train_step_compiles_once_and_regularizer_counts():
    traces = []

    def loss(p, t):
        traces.append(1)
        return losses.mean_squared_error(p, t)

    from jaxdl import regularizers
    model = nn.Sequential([nn.Dense(1)])
    opt = optim.sgd(0.1)
    step = train.make_train_step(model, loss, opt, regularizer=regularizers.l2(0.5))
    ev = train.make_eval_step(model, losses.mean_squared_error, regularizer=regularizers.l2(0.5))
    state = train.TrainState.create(model, opt, (3,), jax.random.key(0))
    x, y = _regression(8)
    before = ev(state, (x, y))["loss"]
    w = state.params["dense_0"]["kernel"]
    plain = train.make_eval_step(model, losses.mean_squared_error)(state, (x, y))["loss"]
    np.testing.assert_allclose(before, plain + 0.5 * jnp.sum(w ** 2), rtol=1e-6)
    for i in range(3):
        state, logs = step(state, (x + i, y))
    assert len(traces) == 1
    assert int(state.step) == 3


def test_eval_step_weights_mask_padding():
    model = _mlp()
    x, y, _, _ = _digits_flat()
    state = train.TrainState.create(model, optim.sgd(0.1), (64,), jax.random.key(0))
    ev = train.make_eval_step(model, "sparse_categorical_crossentropy", metrics=("accuracy",))
    full = ev(state, (x[:10], y[:10]))
    padded = np.concatenate([x[:10], np.zeros((6, 64), np.float32)])
    ypad = np.concatenate([y[:10], np.zeros(6, np.int32)])
    w = np.r_[np.ones(10), np.zeros(6)].astype(np.float32)
    masked = ev(state, (padded, ypad, w))
    for k in full:
        np.testing.assert_allclose(masked[k], full[k], rtol=1e-6)


# ------------------------------------------------------------------------- Trainer.fit

def test_fit_learns_digits_and_is_bit_identical_per_seed():
    x, y, xt, yt = _digits_flat()

    def run():
        t = train.Trainer(_mlp(64), losses.sparse_categorical_crossentropy, optim.adam(3e-3),
                          metrics=("accuracy",))
        h = t.fit(x, y, epochs=8, batch_size=32, seed=3, verbose=0)
        return t, h

    t1, h1 = run()
    t2, h2 = run()
    assert h1.history["loss"][-1] * 5 <= h1.history["loss"][0]  # loss falls >= 5x
    assert t1.evaluate(xt, yt)["accuracy"] >= 0.93
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 t1.state, t2.state)
    assert h1.history == h2.history


def test_fit_trains_on_the_last_partial_batch_and_compiles_once_per_shape():
    traces = []

    def loss(p, t):
        traces.append(p.shape)
        return losses.mean_squared_error(p, t)

    x, y = _regression(10)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), loss, optim.sgd(0.05), metrics=())
    t.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert int(t.state.step) == 3  # 4 + 4 + 2: the last 2 examples are a step of their own
    after_one = len(traces)
    t.fit(x, y, epochs=4, batch_size=4, verbose=0)
    assert int(t.state.step) == 3 + 4 * 3
    assert len(traces) == after_one  # later epochs reuse the compiled chunks
    assert {s[0] for s in traces} == {4, 2}  # one full-batch and one partial-batch shape


def test_fit_epoch_means_weight_every_example():
    x, y = _regression(10)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.0), metrics=("mae",))
    h = t.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    pred = t.predict(x)
    np.testing.assert_allclose(h.history["loss"][0], np.mean((pred - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(h.history["mae"][0], np.mean(np.abs(pred - y)), rtol=1e-5)


@pytest.mark.slow  # test_fit_vs_loop.py and test_loop.py cover the plans in CI
def test_steps_per_execution_does_not_change_the_result():
    x, y, _, _ = _digits_flat()
    states = []
    for spe in (1, 5, "epoch"):
        t = train.Trainer(_mlp(), "sparse_categorical_crossentropy", optim.adam(1e-3))
        t.fit(x[:300], y[:300], epochs=2, batch_size=32, verbose=0, steps_per_execution=spe)
        states.append(t.state)
    for other in states[1:]:
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                             rtol=1e-5, atol=1e-6),
                     states[0].params, other.params)


def test_evaluate_and_predict_match_the_model():
    x, y, xt, yt = _digits_flat()
    t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3),
                      metrics=("accuracy", "top3"))
    # 4 full batches: one compiled chunk (all 1,437 rows compiled three: 3-step chunks, a
    # 1-step tail and the 29-row last batch).
    t.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    logits, _ = t.model.apply(t.state.params, t.state.model_state, xt)
    pred = t.predict(xt, batch_size=100)  # 359 rows: last batch padded
    np.testing.assert_allclose(pred, logits, rtol=1e-5, atol=1e-5)
    res = t.evaluate(xt, yt, batch_size=100)
    assert all(isinstance(v, float) for v in res.values())
    want_loss = float(np.mean(losses.sparse_categorical_crossentropy(logits, yt)))
    np.testing.assert_allclose(res["loss"], want_loss, rtol=1e-5)
    np.testing.assert_allclose(res["accuracy"], np.mean(np.argmax(logits, -1) == yt), rtol=1e-6)
    top3 = np.argsort(-np.asarray(logits), axis=1)[:, :3]
    np.testing.assert_allclose(res["top3"], np.mean((top3 == yt[:, None]).any(1)), rtol=1e-6)


def test_validation_split_and_history_plot(tmp_path):
    x, y, _, _ = _digits_flat()
    x, y = x[:1280], y[:1280]  # 1,024 rows left to train on: 16 full batches, one chunk shape
    t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3))
    h = t.fit(x, y, epochs=2, batch_size=64, validation_split=0.2, verbose=0)
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(h.history["val_loss"]) == 2 and h.epoch == [0, 1]
    # The held-out part is the last 20 % of the data, as in Keras.
    n_val = int(len(x) * 0.2)
    val = t.evaluate(x[-n_val:], y[-n_val:])
    np.testing.assert_allclose(h.history["val_loss"][-1], val["loss"], rtol=1e-6)
    out = h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000 and out.endswith("curves.png")


@dataclasses.dataclass(frozen=True)
class _TwoInputs(Layer):
    """Concatenates two inputs and applies a Dense layer (a multi-input model for tests)."""

    features: int = 2

    def init(self, key, input_shape):
        (a,), (b,) = input_shape
        return nn.Dense(self.features).init(key, (a + b,))

    def apply(self, params, state, x, *, key=None, training=False):
        x1, x2 = x
        return nn.Dense(self.features).apply(params, state, jnp.concatenate([x1, x2], -1))


def test_fit_with_multi_input_tuples():
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(64, 2)).astype(np.float32), rng.normal(size=(64, 3)).astype(
        np.float32)
    y = (x1[:, 0] + x2[:, 1] > 0).astype(np.int32)
    t = train.Trainer(_TwoInputs(), losses.sparse_categorical_crossentropy, optim.adam(0.05))
    h = t.fit((x1, x2), y, epochs=30, batch_size=16, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    assert t.predict((x1, x2)).shape == (64, 2)


# ------------------------------------------------------------------------- errors

@pytest.fixture(scope="module")
def fitted_mlp_trainer():
    """One fitted trainer for all the error cases (each call raises before it trains; a
    trainer per case compiled the same steps nine times)."""
    x, y, _, _ = _digits_flat()
    t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3))
    t.fit(x[:64], y[:64], epochs=1, verbose=0)
    return t


_FIT_ERRORS = {
    "mismatched lengths": (ValueError, r"same number of examples.*x: 100.*y: 99",
                           lambda t, x, y: t.fit(x[:100], y[:99], verbose=0)),
    "empty data": (ValueError, "empty", lambda t, x, y: t.fit(x[:0], y[:0], verbose=0)),
    "zero batch size": (ValueError, r"batch_size. must be a positive integer, got 0",
                        lambda t, x, y: t.fit(x, y, batch_size=0, verbose=0)),
    "label out of range": (ValueError, r"labels must be class ids in \[0, 9\].*\[0, 12\]",
                           lambda t, x, y: t.fit(x[:10], np.r_[y[:9], 12].astype(np.int32),
                                                 verbose=0)),
    "another input shape": (ValueError, r"built for inputs of shape \(batch, 64\).*\(10, 8, 8\)",
                            lambda t, x, y: t.fit(x[:10].reshape(10, 8, 8), y[:10], verbose=0)),
    "unknown metric": (ValueError, r"unknown metric 'acuracy'",
                       lambda t, x, y: train.Trainer(_mlp(), "sparse_categorical_crossentropy",
                                                     optim.adam(1e-3), metrics=("acuracy",))),
    "unknown loss": (ValueError, r"unknown loss 'crossentropy'",
                     lambda t, x, y: train.Trainer(_mlp(), "crossentropy", optim.adam(1e-3))),
    "predict before fit": (ValueError, "call fit first",
                           lambda t, x, y: train.Trainer(_mlp(), "mse",
                                                         optim.adam(1e-3)).predict(x)),
    "optimizer as a string": (TypeError, "optax GradientTransformation",
                              lambda t, x, y: train.Trainer(_mlp(), "mse", "adam")),
}


@pytest.mark.parametrize("case", list(_FIT_ERRORS))
def test_fit_errors(case, fitted_mlp_trainer):
    error, pattern, call = _FIT_ERRORS[case]
    x, y, _, _ = _digits_flat()
    def trained(t):
        return [np.array(a) for a in jax.tree.leaves((t.state.step, t.state.params,
                                                       t.state.opt_state))]

    before = trained(fitted_mlp_trainer)
    with pytest.raises(error, match=pattern):
        call(fitted_mlp_trainer, x, y)
    after = trained(fitted_mlp_trainer)  # a refused fit trained nothing
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


# ------------------------------------------------------------------------- metrics

def test_metric_functions_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 6)).astype(np.float32)
    labels = rng.integers(0, 6, 50).astype(np.int32)
    onehot = np.eye(6, dtype=np.float32)[labels]
    np.testing.assert_allclose(train.sparse_categorical_accuracy(logits, labels),
                               np.argmax(logits, 1) == labels)
    np.testing.assert_allclose(train.categorical_accuracy(logits, onehot),
                               np.argmax(logits, 1) == labels)
    rank = (logits > logits[np.arange(50), labels][:, None]).sum(1)
    np.testing.assert_allclose(train.top_k_accuracy(logits, labels, k=2), rank < 2)
    z = rng.normal(size=(50, 1)).astype(np.float32)
    t = rng.integers(0, 2, (50, 1)).astype(np.float32)
    np.testing.assert_allclose(train.binary_accuracy(z, t), ((z > 0) == (t > 0.5))[:, 0])
    np.testing.assert_allclose(losses.mean_absolute_error(z, t), np.abs(z - t)[:, 0], rtol=1e-6)


def test_accuracy_follows_the_loss():
    from jaxdl.train import metrics

    p = jnp.array([[0.3], [0.7]])
    y = jnp.array([[1.0], [1.0]])
    probs = metrics.accuracy_for(functools.partial(losses.binary_crossentropy, from_logits=False))
    logits = metrics.accuracy_for(losses.binary_crossentropy)
    np.testing.assert_array_equal(probs(p, y), [0.0, 1.0])   # threshold 0.5 on probabilities
    np.testing.assert_array_equal(logits(p, y), [1.0, 1.0])  # threshold 0 on logits


# ------------------------------------------------------------------------- callbacks

def _fake_metric(values):
    def inject(epoch, logs):
        logs["fake"] = float(values[epoch])
    return train.LambdaCallback(on_epoch_end=inject)


def _param_recorder(trainer, store):
    """A callback appending a copy of the trainer's params to ``store`` after each epoch."""
    return train.LambdaCallback(
        on_epoch_end=lambda epoch, logs: store.append(jax.tree.map(np.array,
                                                                   trainer.state.params)))


def test_early_stopping_stops_and_restores_best_weights():
    x, y = _regression(20)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.01), metrics=())
    saved = []
    rec = _param_recorder(t, saved)
    stop = train.EarlyStopping(monitor="fake", patience=2, restore_best_weights=True)
    h = t.fit(x, y, epochs=20, batch_size=20, verbose=0,
              callbacks=[_fake_metric([3, 2, 1, 2, 3, 4, 5, 6] + [7] * 12), rec, stop])
    assert stop.stopped_epoch == 4 and len(h.epoch) == 5  # 2 epochs without improvement
    assert stop.best_epoch == 2
    jax.tree.map(np.testing.assert_array_equal, t.state.params, saved[2])
    assert not np.allclose(saved[2]["dense_0"]["kernel"], saved[4]["dense_0"]["kernel"])


def test_early_stopping_restores_even_when_patience_never_runs_out():
    x, y = _regression(20)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.01), metrics=())
    saved = []
    rec = _param_recorder(t, saved)
    stop = train.EarlyStopping(monitor="fake", patience=10, restore_best_weights=True)
    t.fit(x, y, epochs=3, batch_size=20, verbose=0, callbacks=[_fake_metric([3, 1, 2]), rec, stop])
    assert stop.stopped_epoch is None
    jax.tree.map(np.testing.assert_array_equal, t.state.params, saved[1])


def test_early_stopping_on_missing_monitor_is_a_clear_error():
    x, y = _regression(20)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.01), metrics=())
    with pytest.raises(ValueError, match=r"monitor='val_loss'.*\['loss'\].*validation_data"):
        t.fit(x, y, epochs=2, verbose=0, callbacks=[train.EarlyStopping()])


def test_terminate_on_nan_stops_a_diverging_run():
    x, y = _regression(40)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(1e4), metrics=())
    guard = train.TerminateOnNaN()
    h = t.fit(x, y * 1e3, epochs=50, batch_size=4, verbose=0, callbacks=[guard])
    assert guard.terminated
    assert len(h.epoch) < 50
    assert not np.isfinite(h.history["loss"][-1])


@pytest.mark.parametrize("make_opt", [lambda: optim.sgd(0.1), lambda: optax.sgd(0.1)],
                         ids=["jaxdl", "optax"])
def test_reduce_lr_on_plateau_lowers_the_rate_really_used(make_opt):
    x, y = _regression(16)
    model = nn.Sequential([nn.Dense(1)])
    t = train.Trainer(model, "mse", make_opt(), metrics=())
    deltas = []

    def loss_of(params):
        return jnp.mean(losses.mean_squared_error(model.apply(params, {}, x)[0], y))

    def before(epoch, logs):
        deltas.append([jax.tree.map(np.array, t.state.params)])

    def after(epoch, logs):
        p0 = deltas[-1][0]
        g = jax.grad(loss_of)(p0)
        step = jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), t.state.params, p0)
        # step = -lr * multiplier * grad  =>  ratio = multiplier * lr
        deltas[-1].append(float(step["dense_0"]["kernel"][0, 0] / -g["dense_0"]["kernel"][0, 0]))

    plateau = train.ReduceLROnPlateau(monitor="fake", factor=0.1, patience=2)
    cbs = [train.LambdaCallback(on_epoch_begin=before, on_epoch_end=after),
           _fake_metric([1.0] * 6), plateau]
    h = t.fit(x, y, epochs=6, batch_size=16, shuffle=False, verbose=0, callbacks=cbs)
    rates = [d[1] for d in deltas]
    np.testing.assert_allclose(rates[:3], [0.1] * 3, rtol=1e-4)  # epochs 0-2 at lr 0.1
    np.testing.assert_allclose(rates[3:5], [0.01] * 2, rtol=1e-4)  # reduced after epoch 2
    np.testing.assert_allclose(rates[5], 0.001, rtol=1e-4)  # and again after epoch 4
    assert h.history["lr_multiplier"][:4] == pytest.approx([1.0, 1.0, 1.0, 0.1])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y, _, _ = _digits_flat()
    path = tmp_path / "log.csv"
    t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3))
    h = t.fit(x[:200], y[:200], epochs=3, batch_size=50, validation_split=0.25, verbose=0,
              callbacks=[train.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], h.history["loss"], rtol=1e-6)


def test_progress_line_has_the_course_fields(capsys):
    x, y, _, _ = _digits_flat()
    t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3))
    t.fit(x, y, epochs=3, batch_size=32, validation_split=0.1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 3/3" in out
    line = re.compile(r"41/41 \[=+\] \d+m?s \d+(us|ms|s)/step - loss: \d+\.\d{4} - "
                      r"accuracy: \d\.\d{4} - val_loss: \d+\.\d{4} - val_accuracy: \d\.\d{4}")
    assert len(line.findall(out)) == 3, out
    n_train = len(x) - int(len(x) * 0.1)  # the rows trained on above: no new batch shapes
    t.fit(x[:n_train], y[:n_train], epochs=1, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""


def test_live_bar_on_a_terminal_shows_the_keras_line():
    import io

    from jaxdl.train.progress import EpochProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = EpochProgress(2, 10, 54, verbose=1, stream=term)
    assert bar.bar is not None  # a live tqdm bar, not the one-line fallback
    bar.update(27, {"loss": 0.5})
    bar.close({"loss": 0.2103, "accuracy": 0.9412, "val_loss": 0.25, "val_accuracy": 0.93})
    shown = term.getvalue().replace("\r", "\n")
    assert "Epoch 3/10" in shown
    assert "27/54 [" in shown
    assert re.search(r"54/54 \[=+\] \d+m?s \d+(us|ms|s)/step - loss: 0\.2103 - accuracy: "
                     r"0\.9412 - val_loss: 0\.2500 - val_accuracy: 0\.9300", shown), shown


# ------------------------------------------------------------------------- issue 10 items

def _binary_blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:] > 0.3).astype(np.float32)
    return x, y


@pytest.mark.parametrize("make_loss, metric", [
    (lambda: losses.BinaryCrossentropy(from_logits=False), "accuracy"),
    (lambda: functools.partial(losses.binary_crossentropy, from_logits=False),
     "accuracy"),
    (lambda: (lambda p, y: losses.binary_crossentropy(p, y, from_logits=False)),
     "binary_accuracy"),
], ids=["loss_object", "partial", "lambda_named_metric"])
def test_accuracy_of_a_sigmoid_model_is_the_true_one(make_loss, metric):
    """Issue 10 item 5: the reported accuracy of probabilities thresholds them at 0.5."""
    x, y = _binary_blobs()
    model = nn.Sequential([nn.Dense(1, activation="sigmoid")])
    t = train.Trainer(model, make_loss(), optim.adam(0.05), metrics=(metric,))
    t.fit(x, y, epochs=10, batch_size=32, verbose=0)
    true = float(np.mean((t.predict(x) > 0.5) == (y > 0.5)))
    assert 0.8 < true < 1.0  # neither trivial nor the fraction of positives
    np.testing.assert_allclose(t.evaluate(x, y)[metric], true, rtol=1e-6)


def test_accuracy_with_a_loss_of_unknown_task_is_a_clear_error():
    bce = lambda p, y: losses.binary_crossentropy(p, y, from_logits=False)  # noqa: E731
    with pytest.raises(ValueError, match=r"'accuracy'.*unknown.*'binary_accuracy'.*"
                                         r"'categorical_accuracy'.*'sparse_categorical_accuracy'"):
        train.Trainer(nn.Sequential([nn.Dense(1)]), bce, optim.adam(0.05), metrics=("accuracy",))


def test_loss_kind_never_reads_the_function_name():
    def binary_crossentropy(p, y):  # a user function named like the jaxdl loss
        return losses.binary_crossentropy(p, y, from_logits=False)

    assert losses.kind(binary_crossentropy) == (None, None)
    assert losses.kind(losses.binary_crossentropy) == ("binary", True)
    assert losses.kind(losses.SparseCategoricalCrossentropy()) == ("sparse_categorical", True)
    assert losses.kind(losses.MeanSquaredError()).task == "regression"


@pytest.mark.parametrize("loss", ["mse", losses.mean_squared_error, losses.MeanSquaredError(),
                                  lambda p, y: losses.mean_absolute_error(p, y)],
                         ids=["name", "function", "object", "lambda"])
def test_default_metrics_log_no_accuracy_for_regression_or_autoencoders(loss):
    x, y = _regression(32)
    h = train.Trainer(nn.Sequential([nn.Dense(1)]), loss, optim.sgd(0.01)).fit(
        x, y, epochs=1, batch_size=8, verbose=0)
    assert list(h.history) == ["loss"]
    ae = train.Trainer(nn.Sequential([nn.Dense(2), nn.Dense(3)]), loss, optim.sgd(0.01))
    assert list(ae.fit(x, x, epochs=1, batch_size=8, verbose=0).history) == ["loss"]


def test_default_metrics_log_accuracy_for_classification():
    x, y, _, _ = _digits_flat()
    t = train.Trainer(_mlp(), losses.SparseCategoricalCrossentropy(), optim.adam(1e-3))
    assert list(t.fit(x[:64], y[:64], verbose=0).history) == ["loss", "accuracy"]


def _bn_loss_reference(model, x, y, batches, seed=0):
    """Per-example mean of the training-mode MSE over ``batches`` with the initial params."""
    init = train.TrainState.create(model, optim.sgd(0.0), (x.shape[1],), jax.random.key(seed))
    params, state = init.params, init.model_state
    total = 0.0
    for ids in batches:
        pred, _ = model.apply(params, state, x[ids], training=True)
        total += float(np.sum((np.asarray(pred) - y[ids]) ** 2))
    return total / sum(len(ids) for ids in batches)


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_batch_norm_fit_with_a_remainder_of_one(drop_remainder):
    """Issue 10 item 4: n = 3 * batch + 1 never crashes; the logs count the examples used."""
    batch = 8
    x, y = _regression(3 * batch + 1)
    model = nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.Dense(1)])
    t = train.Trainer(model, "mse", optim.sgd(0.0))  # lr 0: the loss is the initial model's
    h = t.fit(x, y, epochs=1, batch_size=batch, seed=0, verbose=0,
              drop_remainder=drop_remainder)
    assert int(t.state.step) == 3
    order = data.epoch_permutation(len(x), 0, 0)
    if drop_remainder:  # the last example of the shuffled order is left out
        batches = [order[:8], order[8:16], order[16:24]]
    else:  # the remainder of one joins the last batch: 8 + 8 + 9
        batches = [order[:8], order[8:16], order[16:]]
    want = _bn_loss_reference(model, x, y, batches)
    np.testing.assert_allclose(h.history["loss"][0], want, rtol=1e-5)


@pytest.mark.parametrize("call, pattern", [
    (lambda t, x, y: t.fit(np.where(np.arange(64)[:, None] * 64 + np.arange(64) == 5 * 64 + 3,
                                    np.nan, x), y, verbose=0),
     r"Trainer\.fit: x holds a non-finite value \(nan\) at row 5, position \(3,\)"),
    (lambda t, x, y: t.fit((x[:, :32], np.where(np.arange(32) == 7, np.inf, x[:, 32:])), y,
                           verbose=0),
     r"Trainer\.fit: x\[1\] holds a non-finite value \(inf\) at row 0, position \(7,\)"),
    (lambda t, x, y: t.fit(x, y, validation_data=(np.r_[x[:3], np.full((1, 64), np.nan)],
                                                  y[:4]), verbose=0),
     r"validation x holds a non-finite value \(nan\) at row 3, position \(0,\)"),
    (lambda t, x, y: t.evaluate(np.r_[x[:9], -np.full((1, 64), np.inf)], y[:10]),
     r"Trainer\.evaluate: x holds a non-finite value \(-inf\) at row 9"),
    (lambda t, x, y: t.predict(np.r_[np.full((1, 64), np.nan), x]),
     r"Trainer\.predict: x holds a non-finite value \(nan\) at row 0, position \(0,\)"),
], ids=["fit_x", "fit_multi_input", "validation", "evaluate", "predict"])
def test_non_finite_data_is_refused_up_front(call, pattern):
    """Issue 10 item 2: NaN or inf in the data is named with its first index."""
    x, y, _, _ = _digits_flat()
    x, y = x[:64], y[:64]
    model = _TwoInputs(10) if "x\\[1\\]" in pattern else _mlp()
    t = train.Trainer(model, losses.sparse_categorical_crossentropy, optim.adam(1e-3))
    if "fit" not in pattern:
        t.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=pattern):
        call(t, x, y)


def test_regression_targets_with_nan_are_refused():
    x, y = _regression(20)
    y[11, 0] = np.nan
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.1))
    with pytest.raises(ValueError, match=r"y holds a non-finite value \(nan\) at row 11, "
                                         r"position \(0,\)"):
        t.fit(x, y, verbose=0)


def test_fit_takes_a_nested_list_of_rows_as_one_array():
    """Issue 10 item 14: a list of 64 rows is 64 examples, not 64 inputs."""
    x, y, _, _ = _digits_flat()
    x, y = x[:64], y[:64]

    def run(xs, ys):
        t = train.Trainer(_mlp(), losses.sparse_categorical_crossentropy, optim.adam(1e-3))
        return t.fit(xs, ys, epochs=2, batch_size=16, verbose=0).history

    assert run(x.tolist(), y.tolist()) == run(x, y)


def _donate_the_state(t, x, y):
    step = train.make_train_step(t.model, t.loss, t.transformation)
    step(t.state, (x, y))  # the result is dropped: trainer.state is now donated
    t.evaluate(x, y)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda t, x, y: t.fit([[1.0, 2.0], [3.0]], [0, 1], verbose=0), ValueError,
     r"x must be an array \(n, \.\.\.\) or a rectangular nested list"),
    (lambda t, x, y: t.fit(x, y, callbacks=[train.EarlyStopping], verbose=0), TypeError,
     r"callbacks\[0\] is the class EarlyStopping, not an instance.*EarlyStopping\(\.\.\.\)"),
    (lambda t, x, y: t.fit(x, y, callbacks=[object()], verbose=0), TypeError,
     r"callbacks\[0\] must be a Callback instance.*Subclass jaxdl\.train\.Callback"),
    (lambda t, x, y: t.fit(x, y, seed="abc", verbose=0), TypeError,
     r"Trainer\.fit: `seed` must be a non-negative integer, got 'abc'"),
    (lambda t, x, y: train.Trainer(None), TypeError,
     r"Trainer: model must be a layer with init.*got None"),
    (lambda t, x, y: t.fit(x, y, validation_data=x, verbose=0), ValueError,
     r"validation_data must be a pair \(x_val, y_val\)"),
    (_donate_the_state, ValueError,
     r"Trainer\.evaluate: trainer\.state can no longer be used: its buffers were donated.*"
     r"donate=False"),
], ids=["ragged_list", "callback_class", "not_a_callback", "seed_string", "model_none",
        "validation_not_a_pair", "donated_state"])
def test_fit_misuse_is_a_clear_error(call, error, pattern):
    x, y = _regression(16)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.01))
    t.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(error, match=pattern):
        call(t, x, y)


def test_fit_accepts_a_single_callback():
    x, y = _regression(16)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(0.0))
    stop = train.EarlyStopping(monitor="loss", patience=0)
    h = t.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=stop)
    assert stop.trainer is t and stop.stopped_epoch == 1 and len(h.epoch) == 2


@pytest.mark.parametrize("size", [(80, 24), (0, 0)], ids=["80x24", "0x0"])
def test_live_bar_on_a_narrow_terminal_shows_whole_entries_and_the_complete_line(monkeypatch,
                                                                                 size):
    """Issue 10 item 16: no value is cut, and the epoch ends with the complete Keras line."""
    import io
    import os
    import shutil

    from jaxdl.train.progress import EpochProgress

    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size(size))
    monkeypatch.setattr(os, "get_terminal_size", lambda *a, **k: os.terminal_size(size))

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = EpochProgress(0, 10, 54, verbose=1, stream=term)
    bar.update(27, {"loss": 0.5, "accuracy": 0.8765, "top5": 0.9901, "mae": 0.1234})
    bar.close({"loss": 0.2103, "accuracy": 0.9412, "val_loss": 0.25, "val_accuracy": 0.93})
    shown = term.getvalue()
    assert re.search(r"(^|[\r\n])54/54 \[={30}\] \d+m?s \d+(us|ms|s)/step - loss: 0\.2103 - "
                     r"accuracy: 0\.9412 - val_loss: 0\.2500 - val_accuracy: 0\.9300\n", shown)
    live = [line.rstrip() for line in re.split(r"[\r\n]", shown) if line.startswith("27/54")]
    assert live, shown
    for line in live:  # fits 80 columns, and holds only whole "name: value" entries
        assert len(line) < 80 and re.fullmatch(
            r"27/54 \[[.=]{30}\] \d+m?s \d+(us|ms|s)/step( - \w+: \d\.\d{4})+", line), line


def test_terminate_on_nan_message_follows_the_epoch_line(capsys):
    x, y = _regression(40)
    t = train.Trainer(nn.Sequential([nn.Dense(1)]), "mse", optim.sgd(1e4), metrics=())
    h = t.fit(x, y * 1e3, epochs=50, batch_size=4, verbose=2, callbacks=[train.TerminateOnNaN()])
    out = capsys.readouterr().out.splitlines()
    at = [i for i, line in enumerate(out) if line.startswith("TerminateOnNaN")]
    assert len(at) == 1, out
    assert re.match(r"10/10 \[=+\] .* - loss: (nan|inf)$", out[at[0] - 1]), out
    assert out[at[0]].startswith(f"TerminateOnNaN: epoch {len(h.epoch)}: loss is ")


@pytest.mark.parametrize("loss, head", [
    (losses.sparse_categorical_crossentropy, nn.Softmax()),
    (losses.CategoricalCrossentropy(), nn.Softmax()),
    (losses.BinaryCrossentropy(), nn.Sigmoid()),
], ids=["sparse_function", "categorical_object", "binary_object"])
def test_fit_warns_once_when_a_loss_taking_logits_gets_probabilities(loss, head):
    """Issue 10 item 15: a softmax/sigmoid output with from_logits=True warns at fit's start."""
    import warnings

    x, y, _, _ = _digits_flat()
    x, y = x[:64], y[:64]
    if isinstance(loss, losses.CategoricalCrossentropy):
        y = np.eye(10, dtype=np.float32)[y]
    elif isinstance(loss, losses.BinaryCrossentropy):
        y = (y[:, None] > 4).astype(np.float32)
    units = 1 if isinstance(head, nn.Sigmoid) else 10
    model = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(units), head])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = train.Trainer(model, loss, optim.adam(1e-3))
        t.fit(x, y, epochs=1, verbose=0)
        t.fit(x, y, epochs=1, verbose=0)
        logits_model = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(units)])
        train.Trainer(logits_model, loss, optim.adam(1e-3)).fit(x, y, epochs=1, verbose=0)
        probs_loss = dataclasses.replace(loss, from_logits=False) \
            if isinstance(loss, losses.Loss) else \
            functools.partial(loss, from_logits=False)
        train.Trainer(model, probs_loss, optim.adam(1e-3)).fit(x, y, epochs=1, verbose=0)
    hits = [w for w in caught if issubclass(w.category, losses.ProbabilitiesAsLogitsWarning)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    assert "from_logits=False" in str(hits[0].message)
