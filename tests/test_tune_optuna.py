"""The Optuna bridge: distributions, failures, pruning, shared storage, the missing extra."""

import math
import sys

import numpy as np
import pytest

from jaxdl import tune
from jaxdl.tune import optuna_bridge, search
from jaxdl.tune import space as sp


@pytest.fixture
def optuna():
    return pytest.importorskip("optuna")


SPACE = {"x": sp.uniform(-3.0, 3.0), "lr": sp.loguniform(1e-4, 1e-1), "n": sp.randint(1, 4),
         "act": sp.choice(["relu", "tanh"]), "kernel": sp.choice([(3, 3), (5, 5)]), "epochs": 2}


def quadratic(config):
    return ((config["x"] - 1.0) ** 2 + (math.log10(config["lr"]) + 2.0) ** 2
            + (config["n"] - 2) ** 2 + (config["act"] != "tanh") + (config["kernel"] != (5, 5)))


def test_the_space_maps_onto_optuna_distributions(optuna):
    dists, by_index = optuna_bridge.distributions(SPACE, optuna)
    d = optuna.distributions
    assert dists == {"x": d.FloatDistribution(-3.0, 3.0),
                     "lr": d.FloatDistribution(1e-4, 1e-1, log=True),
                     "n": d.IntDistribution(1, 3),                     # high excluded
                     "act": d.CategoricalDistribution(["relu", "tanh"]),
                     "kernel": d.CategoricalDistribution([0, 1])}      # tuples go by index
    assert by_index == {"kernel": ((3, 3), (5, 5))}
    config = optuna_bridge.config_of(SPACE, {"x": 0.5, "lr": 1e-3, "n": 3, "act": "relu",
                                             "kernel": 1}, by_index)
    assert config == {"x": 0.5, "lr": 1e-3, "n": 3, "act": "relu", "kernel": (5, 5),
                      "epochs": 2}


def test_tpe_search_draws_from_the_space_and_reports_the_best(optuna):
    seen = []

    def objective(config):
        seen.append(config)
        return quadratic(config)

    result = tune.optuna_search(objective, SPACE, n_trials=30, seed=0)
    assert [t["config"] for t in result.trials] == seen and len(seen) == 30
    assert all(-3 <= c["x"] <= 3 and 1e-4 <= c["lr"] <= 1e-1 and c["n"] in (1, 2, 3)
               and c["kernel"] in ((3, 3), (5, 5)) and c["epochs"] == 2 for c in seen)
    assert {c["n"] for c in seen} == {1, 2, 3}
    assert [t["index"] for t in result.trials] == list(range(30))
    assert result.best_value == min(quadratic(c) for c in seen)
    # TPE seed 0 reaches 0.12; random search's median best over 20 seeds is 1.08 here
    assert result.best_value < 0.5
    again = tune.optuna_search(quadratic, SPACE, n_trials=30, seed=0)
    assert [t["config"] for t in again.trials] == seen                # seeded sampler


def test_failures_are_told_as_fail_and_the_search_goes_on(optuna):
    def objective(config):
        if config["i"] == 0:
            raise RuntimeError("out of memory")
        return float("nan") if config["i"] == 1 else {"loss": float(config["i"])}

    storage = optuna.storages.InMemoryStorage()
    space = {"i": sp.randint(0, 3)}
    result = tune.optuna_search(objective, space, 12, optuna.samplers.RandomSampler(seed=1),
                                storage, study_name="s", metric="loss", mode="max")
    study = optuna.load_study(study_name="s", storage=storage)
    states = [t.state.name for t in study.trials]
    expected = {0: "FAIL", 1: "FAIL", 2: "COMPLETE"}
    assert states == [expected[t["config"]["i"]] for t in result.trials]
    assert len(states) == 12 and set(states) == {"FAIL", "COMPLETE"}
    errors = {t["config"]["i"]: t["error"] for t in result.trials if t["status"] == "failed"}
    assert errors[0] == "RuntimeError: out of memory" and "nan" in errors[1]
    assert result.best_config == {"i": 2} and result.best_value == 2.0
    assert result.best_trial["metrics"] == {"loss": 2.0}


def test_report_reaches_optunas_pruner_and_pruned_trials_are_excluded(optuna):
    def objective(config):
        trial = tune.current_trial()
        for step in range(4):
            tune.report(step, config["x"] * (step + 1))
            if trial.should_prune():
                raise tune.TrialPruned(f"step {step}")
        return config["x"]

    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    storage = optuna.storages.InMemoryStorage()
    result = tune.optuna_search(objective, {"x": sp.uniform(0.0, 1.0)}, 20,
                                optuna.samplers.RandomSampler(seed=0), storage,
                                study_name="p", pruner=pruner)
    study = optuna.load_study(study_name="p", storage=storage)
    pruned = [t for t in result.trials if t["status"] == "pruned"]
    assert pruned and len(pruned) < 20
    for ours, theirs in zip(result.trials, study.trials, strict=True):
        assert ours["intermediate"] == {str(k): v for k, v in theirs.intermediate_values.items()}
        assert (ours["status"] == "pruned") == (theirs.state.name == "PRUNED")
    for t in pruned:   # the median rule: worse than the median of earlier completed trials
        step = len(t["intermediate"]) - 1
        earlier = [u["intermediate"][str(step)] for u in result.trials[:t["index"]]
                   if u["status"] == "ok"]
        assert t["intermediate"][str(step)] > np.median(earlier)
    assert result.best_value == min(t["value"] for t in result.trials if t["status"] == "ok")


def test_optunas_own_trial_pruned_also_counts_as_pruned(optuna):
    def objective(config):
        raise optuna.TrialPruned()
    result = tune.optuna_search(objective, {"x": sp.uniform(0, 1)}, 2, seed=0)
    assert [t["status"] for t in result.trials] == ["pruned", "pruned"]


def test_a_shared_sqlite_storage_accumulates_trials_across_calls(optuna, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = {"x": sp.uniform(0, 1), "c": 7}
    first = tune.optuna_search(lambda c: c["x"], space, 2, storage=storage, study_name="shared",
                               seed=0)
    second = tune.optuna_search(lambda c: c["x"] + c["c"], space, 2, storage=storage,
                                study_name="shared", seed=1)
    assert len(first.trials) == 2 and len(second.trials) == 4
    assert [t["index"] for t in second.trials] == list(range(4))
    assert second.trials[:2] == first.trials
    assert second.best_trial["index"] < 2 and second.best_config["c"] == 7
    assert len(optuna.load_study(study_name="shared", storage=storage).trials) == 4


def test_results_print_and_plot(optuna, tmp_path):
    result = tune.optuna_search(lambda c: c["lr"], {"lr": sp.loguniform(1e-3, 1.0)}, 6, seed=0)
    assert len(result.table().splitlines()) == 7
    assert result.plot(tmp_path / "optuna.png").endswith("optuna.png")


def test_bad_arguments_name_the_argument(optuna):
    with pytest.raises(ValueError, match="tune.optuna_search: `mode`"):
        tune.optuna_search(quadratic, SPACE, 2, mode="down")
    with pytest.raises(ValueError, match="tune.optuna_search: `seed` seeds the default sampler"):
        tune.optuna_search(quadratic, SPACE, 2, optuna.samplers.RandomSampler(), seed=0)
    with pytest.raises(TypeError, match="tune.optuna_search: `space` must be a dict"):
        tune.optuna_search(quadratic, [1], 2)


def test_without_optuna_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)      # `import optuna` now fails
    with pytest.raises(ImportError, match=r"tune.optuna_search needs Optuna: pip install "
                                          r"'jaxdl\[tune\]'"):
        tune.optuna_search(quadratic, SPACE, 2)


def test_the_report_hook_is_cleared_after_the_search(optuna):
    tune.optuna_search(lambda c: c["x"], {"x": sp.uniform(0, 1)}, 1, seed=0)
    assert search.current_trial() is None
