"""tune.fit_objective: a Trainer run as a search objective, median stopping of hopeless trials."""

import numpy as np
import pytest

from jaxdl import nn, optim, train, tune


def _blobs(n=96, seed=0):
    """Two well-separated Gaussian blobs: a linear model learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int32)
    x = rng.normal(size=(n, 2)).astype(np.float32) + 3.0 * (2 * y[:, None] - 1)
    return x, y


def _build(config):
    return nn.Sequential([nn.Dense(2)]), optim.sgd(config["lr"])


def test_fit_objective_returns_the_best_epoch_logs_of_a_real_fit():
    x, y = _blobs()
    objective = tune.fit_objective(_build, x, y, epochs=3, batch_size=16,
                                   validation_data=_blobs(48, seed=1), median_stopping=False)
    logs = objective({"lr": 0.1})
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch", "epochs_run"} <= set(logs)
    assert logs["epochs_run"] == 3
    assert logs["val_accuracy"] > 0.95  # the blobs were learned
    # The same configuration and seed trained by hand gives the same best val_loss.
    trainer = train.Trainer(nn.Sequential([nn.Dense(2)]), optimizer=optim.sgd(0.1))
    history = trainer.fit(x, y, epochs=3, batch_size=16, validation_data=_blobs(48, seed=1),
                          verbose=0)
    assert logs["val_loss"] == pytest.approx(min(history.history["val_loss"]), rel=1e-6)


def test_median_stopping_prunes_the_hopeless_trials_and_the_search_finds_the_good_rate():
    x, y = _blobs()
    objective = tune.fit_objective(_build, x, y, epochs=4, batch_size=32, min_trials=2,
                                   grace_epochs=1)
    # Two good rates first, then hopeless ones (1e-6 barely moves the weights).
    grid = {"lr": [0.3, 0.1, 1e-6, 2e-6]}
    result = tune.grid_search(objective, grid, metric="val_loss")
    status = [t["status"] for t in result.trials]
    assert status[:2] == ["ok", "ok"]
    assert status[2:] == ["pruned", "pruned"]
    pruned = result.trials[2]
    assert len(pruned["intermediate"]) == 2  # stopped after the grace epoch's comparison
    assert result.best_config["lr"] in (0.3, 0.1)


def test_median_stopping_maximizes_accuracy_in_a_max_search():
    x, y = _blobs()
    objective = tune.fit_objective(_build, x, y, epochs=3, batch_size=32, min_trials=1,
                                   metric="val_accuracy")
    result = tune.grid_search(objective, {"lr": [0.3, 1e-7]}, metric="val_accuracy",
                              mode="max")
    assert [t["status"] for t in result.trials] == ["ok", "pruned"]
    assert result.best_value > 0.9


def test_fit_objective_errors_name_the_problem():
    x, y = _blobs()
    with pytest.raises(TypeError, match="build must be a function"):
        tune.fit_objective("not a function", x, y, epochs=1)
    objective = tune.fit_objective(lambda c: nn.Dense(2), x, y, epochs=1)
    with pytest.raises(TypeError, match=r"must return \(model, optimizer\)"):
        objective({})
    objective = tune.fit_objective(_build, x, y, epochs=1, validation_split=0.0,
                                   metric="val_loss")
    with pytest.raises(ValueError, match="'val_loss' is not logged"):
        objective({"lr": 0.1})


def test_under_optuna_the_studys_pruner_decides():
    optuna = pytest.importorskip("optuna")
    x, y = _blobs()
    objective = tune.fit_objective(_build, x, y, epochs=3, batch_size=32)
    result = tune.optuna_search(
        objective, {"lr": tune.choice([0.3, 1e-6])}, n_trials=4, metric="val_loss",
        sampler=optuna.samplers.RandomSampler(seed=0),  # 1e-6, 0.3, 1e-6, 1e-6
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1))
    seen_good, checked = False, 0
    for trial in result.trials:  # in the order Optuna ran them
        if trial["config"]["lr"] == 0.3:
            assert trial["status"] == "ok"
            seen_good = True
        elif seen_good:  # a hopeless rate after a completed good one: Optuna's pruner stops it
            assert trial["status"] == "pruned"
            checked += 1
    assert checked >= 1
