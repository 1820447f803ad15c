"""Populations: K configurations trained at once, each equal to its own Trainer.fit run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import nn, optim, train, tune
from jaxdl.tune import population


def _blobs(n=96, seed=0):
    """Three Gaussian classes in 4-D, well separated: a model can learn them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    x = (centers[y] + rng.normal(scale=0.7, size=(n, 4))).astype(np.float32)
    return x, y


def _mlp(rate=None):
    layers = [nn.Dense(8, activation="relu")]
    if rate is not None:
        layers.append(nn.Dropout(rate))
    return nn.Sequential([*layers, nn.Dense(3)])


def _assert_same_run(member_state, member_history, trainer):
    for a, b in zip(jax.tree.leaves(member_state.params), jax.tree.leaves(trainer.state.params),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(member_state.step) == int(trainer.state.step)
    assert member_history.epoch == trainer.history.epoch
    assert set(member_history.history) == set(trainer.history.history)
    for name, values in trainer.history.history.items():
        assert member_history.history[name] == pytest.approx(values, rel=1e-5, abs=1e-6), name


def test_each_member_equals_its_own_trainer_fit_run():
    x, y = _blobs()
    xv, yv = _blobs(40, seed=1)
    lrs = [1e-3, 1e-2, 5e-2]
    pop = tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                              lambda hp: optim.adam(hp["lr"]), {"lr": np.array(lrs)}, x, y,
                              epochs=2, batch_size=16, validation_data=(xv, yv), seed=3,
                              verbose=0)
    assert pop.size == 3 and pop.metric == "val_loss"
    assert list(pop.histories[0].history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    for i, lr in enumerate(lrs):
        t = train.Trainer(_mlp(), "sparse_categorical_crossentropy", optim.adam(lr))
        t.fit(x, y, epochs=2, batch_size=16, validation_data=(xv, yv), seed=3, verbose=0)
        _assert_same_run(pop.member_state(i), pop.histories[i], t)
        assert pop.final[i] == pytest.approx({k: v[-1] for k, v in t.history.history.items()},
                                             rel=1e-5, abs=1e-6)
        assert all(isinstance(v, float) for v in pop.final[i].values())
    order = np.argsort([f["val_loss"] for f in pop.final])
    assert pop.best_index == order[0] and pop.best_config == {"lr": pop.config(order[0])["lr"]}
    assert pop.best_config["lr"] == pytest.approx(lrs[order[0]], rel=1e-6)


def test_dropout_rates_and_init_seeds_are_member_hyperparameters():
    x, y = _blobs(64)
    hp = {"rate": np.array([0.0, 0.3, 0.5]), "seed": np.array([0, 1, 1]),
          "lr": np.full(3, 0.02)}
    pop = tune.population_fit(lambda h: _mlp(h["rate"]), "sparse_categorical_crossentropy",
                              lambda h: optim.sgd(h["lr"], momentum=0.9), hp, x, y, epochs=2,
                              batch_size=16, seed=5, verbose=0, metrics=())
    for i in range(3):
        t = train.Trainer(_mlp(float(hp["rate"][i])), "sparse_categorical_crossentropy",
                          optim.sgd(0.02, momentum=0.9), metrics=())
        t.build((4,), seed=int(hp["seed"][i]))  # the member's own init
        t.fit(x, y, epochs=2, batch_size=16, seed=5, verbose=0)
        _assert_same_run(pop.member_state(i), pop.histories[i], t)
    # Members 1 and 2 share an init but not a dropout rate: they start equal, end apart.
    assert pop.histories[1].history["loss"] != pop.histories[2].history["loss"]
    assert pop.config(2) == {"rate": pytest.approx(0.5), "seed": 1, "lr": pytest.approx(0.02)}


def test_one_compilation_trains_the_whole_population():
    x, y = _blobs(64)
    traces = []

    def make_optimizer(hp):
        traces.append(1)  # counts how often the step (or the init) is traced
        return optim.adam(hp["lr"])

    pop = tune.population_fit(_mlp(), "sparse_categorical_crossentropy", make_optimizer,
                              {"lr": np.geomspace(1e-3, 1e-1, 4)}, x, y, epochs=3,
                              batch_size=16, verbose=0)
    runner = pop.trainer.runner
    assert runner.chunk._cache_size() == 1  # one program for every chunk of every epoch
    traced = len(traces)
    pop.trainer.fit(x, y, epochs=6, initial_epoch=3, batch_size=16, verbose=0)
    assert len(traces) == traced and runner.chunk._cache_size() == 1  # no retrace, no recompile


def test_the_population_learns_and_ranks_its_members():
    x, y = _blobs(192)
    lrs = np.array([1e-5, 3e-3, 3e-2, 3.0e-1])
    pop = tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                              lambda hp: optim.adam(hp["lr"]), {"lr": lrs}, x, y, epochs=8,
                              batch_size=32, verbose=0, metric="accuracy")
    assert pop.mode == "max" and pop.ranking()[-1] == 0  # lr 1e-5 barely moves: the worst
    best = pop.histories[pop.best_index].history
    assert best["accuracy"][-1] > 0.9 and best["loss"][-1] < 0.3 * best["loss"][0], best
    slow = pop.histories[0].history["loss"]
    assert abs(slow[-1] - slow[0]) < 0.05 * slow[0]


def test_vector_logs_show_their_range_in_the_progress_line(capsys):
    x, y = _blobs(32)
    tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                        lambda hp: optim.sgd(hp["lr"]), {"lr": [0.0, 0.1]}, x, y, epochs=1,
                        batch_size=16, verbose=2)
    line = capsys.readouterr().out.splitlines()[-1]
    assert " - loss: " in line and ".." in line and "[" not in line.split("loss")[1], line


@pytest.mark.parametrize("hparams, match", [
    ([0.1, 0.2], "hparams must be a non-empty dict"),
    ({}, "hparams must be a non-empty dict"),
    ({"lr": [0.1, 0.2], "wd": [0.1]}, "same length, got lengths"),
    ({"lr": [[0.1, 0.2]]}, r"hparams\['lr'\] must be a non-empty 1-D array"),
    ({"lr": []}, r"hparams\['lr'\] must be a non-empty 1-D array"),
    ({"lr": ["a", "b"]}, r"hparams\['lr'\] must be a non-empty 1-D array"),
])
def test_bad_hparams_are_refused_with_a_clear_message(hparams, match):
    x, y = _blobs(16)
    with pytest.raises((TypeError, ValueError), match=match):
        tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                            lambda hp: optim.sgd(hp["lr"]), hparams, x, y, 1, 8, verbose=0)


def test_bad_arguments_are_refused_with_a_clear_message():
    x, y = _blobs(16)
    with pytest.raises(TypeError, match="make_optimizer must be a function hp -> optimizer"):
        tune.population_fit(_mlp(), "sparse_categorical_crossentropy", optim.adam(1e-3),
                            {"lr": [0.1]}, x, y, 1, 8, verbose=0)
    with pytest.raises(TypeError, match="model must be a layer .* or a function hp -> layer"):
        tune.population_fit("mlp", "sparse_categorical_crossentropy",
                            lambda hp: optim.sgd(hp["lr"]), {"lr": [0.1]}, x, y, 1, 8)
    with pytest.raises(TypeError, match="the model function must return a layer"):
        tune.population_fit(lambda hp: None, "sparse_categorical_crossentropy",
                            lambda hp: optim.sgd(hp["lr"]), {"lr": [0.1]}, x, y, 1, 8)
    with pytest.raises(ValueError, match="metric='val_loss' was not logged"):
        tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                            lambda hp: optim.sgd(hp["lr"]), {"lr": [0.1]}, x, y, 1, 8,
                            verbose=0, metric="val_loss")
    with pytest.raises(ValueError, match=r"same number of examples.*y: 5"):
        tune.population_fit(_mlp(), "sparse_categorical_crossentropy",
                            lambda hp: optim.sgd(hp["lr"]), {"lr": [0.1]}, x, y[:5], 1, 8)


def test_check_hparams_casts_to_float32_and_int32():
    hp = population.check_hparams("f", {"lr": jnp.logspace(-3, -1, 3), "seed": range(3)})
    assert hp["lr"].dtype == np.float32 and hp["seed"].dtype == np.int32
    np.testing.assert_allclose(hp["lr"], [1e-3, 1e-2, 1e-1], rtol=1e-6)


def test_population_search_rounds_improve_on_the_first():
    # Linear regression by SGD for 8 steps: any rate up to about 0.5 learns faster the
    # larger it is, and every initial rate is far below that, so the search must climb.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [1.5]])).astype(np.float32)
    lrs = np.geomspace(1e-3, 1e-2, 4)
    result = tune.population_search(nn.Sequential([nn.Dense(1)]), "mse",
                                    lambda hp: optim.sgd(hp["lr"]), {"lr": lrs}, x, y,
                                    epochs=2, batch_size=16, rounds=3, keep=0.25, sigma=1.0)
    assert isinstance(result, tune.SearchResult) and result.metric == "loss"
    assert result.mode == "min"
    assert [t["round"] for t in result.trials] == [0] * 4 + [1] * 4 + [2] * 4
    assert [t["index"] for t in result.trials] == list(range(12))
    assert all(t["status"] == "ok" and set(t["intermediate"]) == {"0", "1"}
               and t["intermediate"]["1"] == t["value"] == t["metrics"]["loss"]
               for t in result.trials)
    best = [min(t["value"] for t in result.trials if t["round"] == r) for r in range(3)]
    assert best[2] < best[0], best
    assert result.best_config["lr"] > lrs.max()
    assert result.trials[0]["config"] == {"lr": pytest.approx(1e-3, rel=1e-6)}
    # Round 1's only parent is round 0's best member (keep=0.25 of 4), lr 1e-2; each child
    # multiplies it by exp(sigma * z), z drawn from the round's generator default_rng([seed, 1]).
    assert min(result.trials[:4], key=lambda t: t["value"])["config"]["lr"] == pytest.approx(1e-2)
    z = np.random.default_rng([0, 1]).standard_normal(4)
    children = [t["config"]["lr"] for t in result.trials[4:8]]
    np.testing.assert_allclose(children, 1e-2 * np.exp(z), rtol=1e-12)


def test_population_search_draws_from_a_space_and_stays_inside_it():
    x, y = _blobs(64)
    space = {"lr": tune.loguniform(1e-3, 3e-2), "rate": tune.uniform(0.0, 0.4), "seed": 7}
    result = tune.population_search(lambda h: _mlp(h["rate"]),
                                    "sparse_categorical_crossentropy",
                                    lambda hp: optim.adam(hp["lr"]), space, x, y, epochs=1,
                                    batch_size=32, rounds=2, population=4, seed=1)
    assert len(result.trials) == 8 and result.space is not None
    for t in result.trials:
        c = t["config"]
        assert 1e-3 <= c["lr"] <= 3e-2 and 0.0 <= c["rate"] <= 0.4 and c["seed"] == 7, c
    assert len({t["config"]["lr"] for t in result.trials}) == 8
    with pytest.raises(ValueError, match="keep must be a fraction"):
        tune.population_search(_mlp(), "mse", lambda hp: optim.adam(hp["lr"]), {"lr": [0.1]},
                               x, y, 1, 8, keep=0.0)


def test_dropout_takes_an_array_rate_and_still_checks_python_numbers():
    x, key = jnp.arange(1.0, 401.0).reshape(4, 100), jax.random.key(3)
    y_array = jax.jit(lambda r: nn.Dropout(r).apply({}, {}, x, key=key, training=True)[0])(
        jnp.float32(0.25))
    y_float, _ = nn.Dropout(0.25).apply({}, {}, x, key=key, training=True)
    np.testing.assert_allclose(np.asarray(y_array), np.asarray(y_float), rtol=1e-6)
    assert 0.6 < float(jnp.mean(y_array != 0)) < 0.9  # about 75% kept
    with pytest.raises(ValueError, match="rate` must be in \\[0, 1\\)"):
        nn.Dropout(1.0)
    with pytest.raises(TypeError, match="rate` must be a number"):
        nn.Dropout("0.5")


@pytest.mark.slow
def test_the_population_benchmark_runs(tmp_path):
    """The benchmark's wiring and report, not its numbers (timings are never asserted)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / \
        "bench_tune_population.py"
    spec = importlib.util.spec_from_file_location("bench_tune_population", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "report.md"
    results = bench.main(["--quick", "--members", "2", "--out", str(out)])
    assert set(results) == {"sequential cold", "sequential warm", "population cold",
                            "population warm", "speedup"}
    assert "| with compilation |" in out.read_text()
