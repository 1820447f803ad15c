"""The epoch engine on its own: plans, executors, and a trainer that is not supervised.

``ReconstructionTrainer`` below fits ``x`` alone (a linear autoencoder): it
supplies its state and its step and nothing else, and gets the whole loop
(shuffling, fused chunks, partial batches, progress, History, callbacks,
checkpoints and bit-identical resume) from :class:`jaxdl.train.EpochTrainer`.
That is how the GAN/AAE and population trainers are meant to be written.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import losses, nn, optim, train
from jaxdl.train import executors, loop


class ReconstructionTrainer(train.EpochTrainer):
    """Trains ``model`` to reproduce its input: data are ``x`` only."""

    checkpoint_kind = "tests.ReconstructionTrainer"

    def __init__(self, model, optimizer):
        super().__init__()
        self.model = model
        self.tx = optim.chain(optimizer, optim.lr_multiplier())
        self.runner = executors.compile_steps(self._step)

    def _step(self, state, x):
        def objective(params):
            x_hat, model_state = self.model.apply(params, state.model_state, x, training=True)
            return losses.mean_squared_error(x_hat, x).mean(), model_state

        (loss, model_state), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = jax.tree.map(jnp.add, state.params, updates)
        return state._replace(step=state.step + 1, params=params, model_state=model_state,
                              opt_state=opt_state), {"loss": loss}

    def fit(self, x, epochs, batch_size=16, seed=0, callbacks=(), verbose=0, initial_epoch=0,
            steps_per_execution="auto"):
        if self.state is None:
            self.state = train.TrainState.create(self.model, self.tx, x.shape[1:],
                                                 jax.random.key(seed))
        return self.run_epochs(self.runner, jax.device_put(x), len(x), epochs=epochs,
                               batch_size=batch_size, seed=seed, callbacks=callbacks,
                               verbose=verbose, initial_epoch=initial_epoch,
                               steps_per_execution=steps_per_execution)

    def reconstruction_error(self, x):
        x_hat, _ = self.model.apply(self.state.params, self.state.model_state, x)
        return float(losses.mean_squared_error(x_hat, x).mean())


def _low_rank_data(n=203, dim=8, rank=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, rank)) @ rng.normal(size=(rank, dim))).astype(np.float32)


def _autoencoder():
    return nn.Sequential([nn.Dense(2, use_bias=False), nn.Dense(8, use_bias=False)])


def test_a_non_supervised_trainer_learns_through_the_engine():
    x = _low_rank_data()
    t = ReconstructionTrainer(_autoencoder(), optim.adam(0.02))
    t.fit(x, epochs=1)
    before = t.reconstruction_error(x)
    history = t.fit(x, epochs=60)
    after = t.reconstruction_error(x)
    # Rank-2 data through a width-2 bottleneck: the reconstruction becomes near exact.
    assert after < 0.01 * before, (before, after)
    assert len(history.history["loss"]) == 60
    assert history.history["loss"][-1] < history.history["loss"][0] / 20


def test_a_non_supervised_trainer_gets_callbacks_checkpoints_and_exact_resume(tmp_path):
    x = _low_rank_data()
    full = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    full.fit(x, epochs=4)

    first = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    first.fit(x, epochs=2, callbacks=[train.ModelCheckpoint(tmp_path, monitor="loss")])
    resumed = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    resumed.state = train.TrainState.create(resumed.model, resumed.tx, x.shape[1:],
                                            jax.random.key(123))  # a different init
    meta = resumed.restore(tmp_path)
    assert meta["kind"] == "tests.ReconstructionTrainer" and resumed.epoch == 2
    resumed.fit(x, epochs=4, initial_epoch=resumed.epoch)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_reduce_lr_on_plateau_lowers_the_multiplier_in_any_engine_trainer():
    x = _low_rank_data()
    t = ReconstructionTrainer(_autoencoder(), optim.sgd(1e-9))  # no progress: a plateau
    cb = train.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=1e-3)
    h = t.fit(x, epochs=4, callbacks=[cb])
    # Logged before each epoch's decision: flat from epoch 2 on, so halved after each.
    assert h.history["lr_multiplier"] == pytest.approx([1.0, 1.0, 0.5, 0.25])
    assert float(optim.get_hyperparams(t.state.opt_state)["lr_multiplier"]) == 0.125


def test_early_stopping_stops_an_engine_trainer():
    x = _low_rank_data()
    t = ReconstructionTrainer(_autoencoder(), optim.sgd(0.0))  # never improves
    h = t.fit(x, epochs=10, callbacks=train.EarlyStopping(monitor="loss", patience=2))
    assert len(h.history["loss"]) == 3 and t.epoch == 3


def test_a_checkpoint_of_another_trainer_kind_is_refused(tmp_path):
    x = _low_rank_data()
    supervised = train.Trainer(_autoencoder(), "mse", optim.adam(0.01))
    supervised.fit(x, x, epochs=1, verbose=0)
    supervised.save(tmp_path / "s.ckpt")
    t = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    t.fit(x, epochs=1)
    with pytest.raises(ValueError, match="jaxdl.train.Trainer.*ReconstructionTrainer"):
        t.restore(tmp_path / "s.ckpt")


# ------------------------------------------------------------------------- executors

@pytest.mark.parametrize("steps_per_execution", [1, 4, "epoch", "auto"])
def test_every_execution_plan_gives_the_same_run(steps_per_execution):
    x = _low_rank_data(n=99)
    reference = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    reference.fit(x, epochs=2, steps_per_execution=1)
    t = ReconstructionTrainer(_autoencoder(), optim.adam(0.01))
    h = t.fit(x, epochs=2, steps_per_execution=steps_per_execution)
    for a, b in zip(jax.tree.leaves(reference.state), jax.tree.leaves(t.state), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert h.history["loss"] == pytest.approx(reference.history.history["loss"], rel=1e-5)


def test_compile_steps_sums_weight_each_step_by_its_batch():
    def step(total, x):
        return total + x.sum(), {"mean": x.mean()}

    runner = executors.compile_steps(step)
    data = jnp.arange(10.0)
    idx = jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32)
    total, sums = runner.chunk(jnp.float32(0.0), data, idx)
    assert float(total) == 15.0
    assert float(sums["mean"]) == pytest.approx(3 * 1.0 + 3 * 4.0)  # batch size x batch mean
    sums = runner.zero_sums(jnp.float32(0.0), data, idx[0])
    total, sums = runner.single(jnp.float32(0.0), sums, data, jnp.array([9, 8], jnp.int32))
    assert float(total) == 17.0 and float(sums["mean"]) == pytest.approx(17.0)


# ------------------------------------------------------------------------- plans and callbacks

@pytest.mark.parametrize("n, batch, kwargs, expected", [
    (100, 32, {}, (3, 4, True)),
    (97, 32, {}, (2, 33, True)),                      # a remainder of one joins the last batch
    (97, 32, {"drop_remainder": True}, (3, 0, True)),
    (100, 32, {"scan_friendly": False}, (3, 4, False)),
    (100, 32, {"steps_per_execution": 1}, (3, 4, False)),
    (100, 32, {"steps_per_execution": "epoch"}, (3, 4, True)),
    (20, 32, {}, (0, 20, False)),
])
def test_plan_epoch(n, batch, kwargs, expected):
    plan = loop.plan_epoch("fit", n, batch, **kwargs)
    assert (plan.full, plan.rest, plan.fused) == expected


@pytest.mark.parametrize("full, report", [(22, 2), (24, 3), (64, 8), (29, 4), (7, 1)])
def test_auto_chunks_divide_the_full_batches_when_a_length_is_near(full, report):
    # 22 batches: chunks of 2 (11 calls, one program), not 3+3+...+1 (two programs);
    # 29 is prime: chunks of 4 and a leftover of 1, as before.
    plan = loop.plan_epoch("fit", full * 10, 10)
    assert (plan.full, plan.report) == (full, report)
    assert plan.full % plan.report == 0 or report == math.ceil(full / 8)


def test_plan_epoch_rejects_a_bad_steps_per_execution():
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer"):
        loop.plan_epoch("Trainer.fit", 100, 10, steps_per_execution=0)


def test_callback_list_keys_and_states():
    cbs = train.CallbackList([train.EarlyStopping(monitor="loss"), train.TerminateOnNaN(),
                              train.EarlyStopping(monitor="loss", patience=3)])
    assert list(cbs.keyed()) == ["EarlyStopping_0", "TerminateOnNaN_0", "EarlyStopping_1"]
    cbs.on_train_begin()
    assert set(cbs.state_dicts()) == {"EarlyStopping_0", "EarlyStopping_1"}
    with pytest.raises(TypeError, match=r"callbacks\[0\] is the class EarlyStopping"):
        train.CallbackList([train.EarlyStopping])


class TwoNetworkState(NamedTuple):
    a_params: dict
    b_params: dict
    a_opt: tuple
    b_opt: tuple


class TwoNetworkTrainer(train.EpochTrainer):
    """Two linear maps with an optimizer each: the state layout of a GAN or an AAE."""

    checkpoint_kind = "tests.TwoNetworkTrainer"
    weight_fields = ("a_params", "b_params")
    optimizer_fields = ("a_opt", "b_opt")

    def __init__(self, lr_a, lr_b):
        super().__init__()
        self.tx_a = optim.chain(optim.sgd(lr_a), optim.lr_multiplier())
        self.tx_b = optim.chain(optim.sgd(lr_b), optim.lr_multiplier())
        self.runner = executors.compile_steps(self._step)

    def _step(self, state, x):
        def loss(w):  # a loss the step can make NaN on demand: sqrt of a negative number
            return jnp.mean(jnp.square(x @ w["w"] - 1.0)) + jnp.sqrt(jnp.min(x))

        out = {}
        for p, o, tx, name in (("a_params", "a_opt", self.tx_a, "a"),
                               ("b_params", "b_opt", self.tx_b, "b")):
            value, g = jax.value_and_grad(loss)(getattr(state, p))
            u, opt = tx.update(g, getattr(state, o))
            state = state._replace(**{p: optax.apply_updates(getattr(state, p), u), o: opt})
            out[f"{name}_loss"] = value
        return state, out

    def fit(self, x, epochs, callbacks=()):
        if self.state is None:
            a, b = {"w": jnp.zeros((x.shape[1], 1))}, {"w": jnp.zeros((x.shape[1], 1))}
            self.state = TwoNetworkState(a, b, self.tx_a.init(a), self.tx_b.init(b))
        return self.run_epochs(self.runner, jax.device_put(x), len(x), epochs=epochs,
                               batch_size=8, callbacks=callbacks, verbose=0)


def test_callbacks_act_on_every_named_weight_and_optimizer_field():
    x = np.abs(_low_rank_data(n=32, dim=3))
    t = TwoNetworkTrainer(0.05, 0.01)
    # Both losses flat from the start (learning rates of 0 after the first epoch's halving
    # would still show): ReduceLROnPlateau must lower the multiplier of both optimizers.
    cb = train.ReduceLROnPlateau(monitor="a_loss", patience=1, factor=0.5, min_delta=10.0)
    t.fit(x, epochs=3, callbacks=[cb])
    for field in ("a_opt", "b_opt"):
        assert float(optim.get_hyperparams(getattr(t.state, field))["lr_multiplier"]) == 0.25

    t = TwoNetworkTrainer(0.05, 0.01)
    best = train.EarlyStopping(monitor="b_loss", mode="max", patience=5,
                               restore_best_weights=True)  # "best" = the first epoch
    t.fit(x, epochs=1)
    first = jax.tree.map(np.asarray, (t.state.a_params, t.state.b_params))
    t.state, t.epoch = None, 0
    t.fit(x, epochs=3, callbacks=[best])
    restored = (t.state.a_params, t.state.b_params)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_terminate_on_nan_watches_every_loss_a_trainer_logs():
    x = np.abs(_low_rank_data(n=32, dim=3))
    x[5, 0] = -1.0  # sqrt(-1): b_loss (and a_loss) become NaN in the batch holding row 5
    t = TwoNetworkTrainer(0.05, 0.01)
    stop = train.TerminateOnNaN()
    h = t.fit(x, epochs=5, callbacks=[stop])
    assert stop.terminated and np.isnan(stop.loss)
    assert len(h.history["a_loss"]) == 1


def test_learning_rate_scheduler_sets_every_optimizer_from_the_epoch():
    x = np.abs(_low_rank_data(n=32, dim=3))
    t = TwoNetworkTrainer(0.05, 0.01)
    h = t.fit(x, epochs=3, callbacks=[train.LearningRateScheduler(lambda e, m: 0.5 ** e)])
    assert h.history["lr_multiplier"] == [1.0, 0.5, 0.25]
    for field in ("a_opt", "b_opt"):
        assert float(optim.get_hyperparams(getattr(t.state, field))["lr_multiplier"]) == 0.25
    # The rate really used: an epoch at multiplier 0 leaves the weights unchanged.
    before = jax.tree.map(np.asarray, t.state.a_params)
    t.fit(x, epochs=1, callbacks=[train.LearningRateScheduler(lambda e, m: 0.0)])
    np.testing.assert_array_equal(before["w"], np.asarray(t.state.a_params["w"]))
    with pytest.raises(ValueError, match=r"schedule\(0, 0.0\) returned nan"):
        t.fit(x, epochs=1, callbacks=[train.LearningRateScheduler(lambda e, m: float("nan"))])
    with pytest.raises(TypeError, match="schedule must be a function"):
        train.LearningRateScheduler(0.1)
