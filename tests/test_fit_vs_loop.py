"""``Trainer.fit`` against the plain loop a user writes with ``make_train_step``.

The loop reproduces fit's data order through the documented mechanism
(:func:`jaxdl.data.epoch_permutation` of ``(seed, epoch)``, cut as
:func:`jaxdl.train.loop.plan_epoch` cuts it: full batches, then the smaller
last one) and starts from the same ``TrainState`` (same model, the trainer's
``transformation``, ``jax.random.key(seed)``). Both must end with the same
weights, and fit's epoch logs must be the example-weighted means of the
loop's per-step logs. No timing here: speed is ``benchmarks/bench_fit_loop.py``.
"""

import functools
import io
import sys

import jax
import numpy as np
import pytest

from jaxdl import data, losses, nn, optim, train
from jaxdl.train.loop import plan_epoch

SEED, EPOCHS, BATCH = 3, 2, 16


def _mlp():
    return nn.Sequential([nn.Dense(8, activation="relu"), nn.Dense(3)]), (5,)


def _conv():  # with Dropout: fit's and the loop's dropout keys must be the same per step
    return nn.Sequential([nn.Conv1D(4, 3, activation="relu"), nn.Flatten(), nn.Dropout(0.2),
                          nn.Dense(3)]), (10, 1)


def _data(shape, n=50):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    y = (x.reshape(n, -1).sum(axis=1) > 0).astype(np.int32) + (x.reshape(n, -1)[:, 0] > 1)
    return x, y.astype(np.int32)


@functools.lru_cache(maxsize=None)  # one reference run per model, shared by the spe cases
def _plain_loop(make):
    """The user's loop: the same initial state and batches as fit; per-epoch weighted means."""
    model, shape = make()
    x, y = _data(shape)
    tx = _trainer(model).transformation  # what fit's state uses: the optimizer, lr multiplier
    state = train.TrainState.create(model, tx, x.shape[1:], jax.random.key(SEED))
    step = train.make_train_step(model, losses.sparse_categorical_crossentropy, tx,
                                 metrics=("accuracy",))
    plan = plan_epoch("test", len(x), BATCH)
    means = []
    for epoch in range(EPOCHS):
        order = data.epoch_permutation(len(x), SEED, epoch)
        cuts = [order[i * BATCH:(i + 1) * BATCH] for i in range(plan.full)]
        cuts += [order[plan.full * BATCH:]] if plan.rest else []
        sums = {"loss": 0.0, "accuracy": 0.0}
        for rows in cuts:
            state, logs = step(state, (x[rows], y[rows]))
            for k in sums:
                sums[k] += float(logs[k]) * len(rows)
        means.append({k: v / len(x) for k, v in sums.items()})
    return state, means


def _trainer(model):
    return train.Trainer(model, losses.sparse_categorical_crossentropy, optim.adam(1e-2),
                         metrics=("accuracy",))


def _fit(model, x, y, spe, callbacks=()):
    trainer = _trainer(model)
    history = trainer.fit(x, y, epochs=EPOCHS, batch_size=BATCH, seed=SEED, verbose=0,
                          steps_per_execution=spe, callbacks=callbacks)
    return trainer, history


@pytest.mark.parametrize("spe", ["auto", 1])
@pytest.mark.parametrize("make", [_mlp, _conv], ids=["mlp", "conv1d"])
def test_fit_equals_plain_loop_over_the_same_batches(make, spe):
    model, shape = make()
    x, y = _data(shape)  # 50 rows: 3 batches of 16 and a last one of 2, per epoch
    trainer, history = _fit(model, x, y, spe)
    state, means = _plain_loop(make)
    assert int(trainer.state.step) == int(state.step) == EPOCHS * 4
    for got, want in zip(jax.tree.leaves(trainer.state.params), jax.tree.leaves(state.params),
                         strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    for epoch, want in enumerate(means):
        for k, v in want.items():
            assert history.history[k][epoch] == pytest.approx(v, rel=1e-5, abs=1e-7), (k, epoch)
    # it learned something: the loss fell from the first epoch to the last
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_logs_and_weights_do_not_depend_on_when_the_engine_fetches_them(monkeypatch):
    """With an on_batch_end hook the engine syncs after every chunk; a live bar fetches one
    chunk behind; otherwise an epoch's sums are fetched once. Same programs, same sums in
    the same order: same bits."""
    model, shape = _mlp()
    x, y = _data(shape)
    seen = []
    hook = train.LambdaCallback(on_batch_end=lambda step, logs: seen.append((step, logs["loss"])))
    trainer, h_eager = _fit(model, x, y, 2, callbacks=[hook])
    eager = jax.device_get(trainer.state)
    trainer.state = None  # the next fit starts afresh from key(seed), with the same programs
    h_lazy = trainer.fit(x, y, epochs=EPOCHS, batch_size=BATCH, seed=SEED, verbose=0,
                         steps_per_execution=2, callbacks=[train.EarlyStopping(monitor="loss")])
    assert h_eager.history == h_lazy.history
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(trainer.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # chunks of 2 steps, then the last small batch: steps 2, 3, 4 in each epoch
    assert [s for s, _ in seen] == [2, 3, 4] * EPOCHS
    assert seen[2][1] == pytest.approx(h_eager.history["loss"][0], rel=1e-12)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    trainer.state = None
    h_live = trainer.fit(x, y, epochs=EPOCHS, batch_size=BATCH, seed=SEED, verbose=1,
                         steps_per_execution=2)
    shown = sys.stdout.getvalue().replace("\r", "\n")
    assert h_live.history == h_eager.history
    # the live line moved to 2/4 and 3/4 (each shown once the next chunk was dispatched)
    assert "2/4 [" in shown and "3/4 [" in shown and "4/4 [=====" in shown, shown
