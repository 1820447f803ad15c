"""tune.bayesian_search: better than random at a small budget, resumable, max mode, failures."""

import json
import statistics

import numpy as np
import pytest

from jaxdl import tune
from jaxdl.tune import bayes

SPACE = {"x": tune.uniform(-2.0, 2.0), "y": tune.uniform(-2.0, 2.0)}  # width 2: one program


def bowl(config):
    """Minimum 0 at (0.7, -1.1)."""
    return (config["x"] - 0.7) ** 2 + 2.0 * (config["y"] + 1.1) ** 2


def test_beats_random_search_at_the_same_small_budget():
    seeds = range(3)
    ours = [tune.bayesian_search(bowl, SPACE, 12, seed=s).best_value for s in seeds]
    rand = [tune.random_search(bowl, SPACE, 12, seed=s).best_value for s in seeds]
    assert statistics.median(ours) < 0.2 * statistics.median(rand)
    assert statistics.median(ours) < 0.02


def test_first_trials_are_those_of_random_search():
    ours = tune.bayesian_search(bowl, SPACE, 6, n_initial=5, seed=4)
    rand = tune.random_search(bowl, SPACE, 5, seed=4)
    assert [t["config"] for t in ours.trials[:5]] == [t["config"] for t in rand.trials]


def test_a_resumed_search_proposes_what_the_uninterrupted_one_did(tmp_path):
    full = tmp_path / "full.jsonl"
    done = tune.bayesian_search(bowl, SPACE, 9, n_initial=5, seed=1, log=full)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(full.read_text().splitlines(keepends=True)[:7]))  # header + 6 trials
    calls = []
    resumed = tune.bayesian_search(lambda c: calls.append(c) or bowl(c), SPACE, 9, n_initial=5,
                                   seed=1, log=cut)
    assert calls == [t["config"] for t in done.trials[6:]]  # only the 3 missing trials ran
    assert [t["config"] for t in resumed.trials] == [t["config"] for t in done.trials]
    assert json.loads(cut.read_text().splitlines()[0])["strategy"] == "bayesian"


def test_mode_max_maximizes():
    result = tune.bayesian_search(lambda c: 3.0 - bowl(c), SPACE, 12, seed=0, mode="max")
    assert result.best_value > 2.98
    assert result.best_value == max(t["value"] for t in result.trials)


def test_a_failing_trial_is_recorded_and_skipped():
    def objective(config):
        if config["x"] > 1.0:
            raise RuntimeError("diverged")
        return bowl(config)

    result = tune.bayesian_search(objective, SPACE, 12, n_initial=5, seed=2)
    statuses = [t["status"] for t in result.trials]
    assert len(statuses) == 12 and statuses[:5].count("failed") == 2  # seed 2: 2 random fail
    assert all("diverged" in t["error"] for t in result.trials if t["status"] == "failed")
    assert statuses[5:].count("failed") <= 1  # the GP learned to stay out of x > 1
    first = min(t["value"] for t in result.trials[:5] if t["status"] == "ok")
    assert result.best_value < 0.5 * first and result.best_config["x"] <= 1.0


def test_failed_trials_count_as_the_worst_value_and_max_is_negated():
    finished = [{"config": {"x": 0.0, "y": 0.0}, "status": "ok", "value": 2.0},
                {"config": {"x": 1.0, "y": 0.0}, "status": "failed", "value": None},
                {"config": {"x": -2.0, "y": 2.0}, "status": "ok", "value": 5.0}]
    x, y = bayes.observations(SPACE, finished, "min")
    np.testing.assert_allclose(x, [[0.5, 0.5], [0.75, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(y, [2.0, 5.0, 5.0])
    np.testing.assert_allclose(bayes.observations(SPACE, finished, "max")[1], [-2.0, -2.0, -5.0])
    assert bayes.observations(SPACE, finished[1:2], "min")[1].shape == (0,)


def test_mixed_space_gives_valid_configs_and_finds_the_optimum():
    space = {"lr": tune.loguniform(1e-4, 1e-1), "units": tune.choice([16, 32, 64]),
             "layers": tune.randint(1, 4), "epochs": 3}

    def objective(c):
        return (np.log10(c["lr"]) + 2.0) ** 2 + (c["units"] != 32) + abs(c["layers"] - 2)

    result = tune.bayesian_search(objective, space, 14, seed=0)
    for t in result.trials:
        c = t["config"]
        assert 1e-4 <= c["lr"] <= 1e-1 and c["units"] in (16, 32, 64)
        assert c["layers"] in (1, 2, 3) and c["epochs"] == 3
    assert result.best_config["units"] == 32 and result.best_config["layers"] == 2
    assert result.best_value < 0.05


def test_bad_arguments_name_the_function():
    with pytest.raises(ValueError, match="tune.bayesian_search.*n_initial"):
        tune.bayesian_search(bowl, SPACE, 5, n_initial=0)
    with pytest.raises(TypeError, match="tune.bayesian_search.*seed"):
        tune.bayesian_search(bowl, SPACE, 5, seed=1.5)
    with pytest.raises(ValueError, match="tune.bayesian_search.*mode"):
        tune.bayesian_search(bowl, SPACE, 5, mode="maximize")
