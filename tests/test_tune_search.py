"""The study runner: strategies, failed trials, the resumable log, results, report/pruning."""

import itertools
import json
import math
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxdl import tune
from jaxdl.tune import search
from jaxdl.tune import space as sp

SPACE = {"x": sp.uniform(-3.0, 3.0), "lr": sp.loguniform(1e-4, 1e-1), "n": sp.randint(1, 5),
         "act": sp.choice(["relu", "tanh"]), "epochs": 3}


def quadratic(config):
    """Minimum 0 at x = 1, lr = 1e-2, n = 3, act = 'tanh'."""
    return ((config["x"] - 1.0) ** 2 + (math.log10(config["lr"]) + 2.0) ** 2
            + (config["n"] - 3) ** 2 + (config["act"] != "tanh"))


class Counter:
    """An objective that records the configs it was called with."""

    def __init__(self, fn=quadratic):
        self.fn, self.calls = fn, []

    def __call__(self, config):
        self.calls.append(config)
        return self.fn(config)


def without_seconds(trials):
    return [{k: v for k, v in t.items() if k != "seconds"} for t in trials]


def test_random_search_draws_config_i_from_rng_seed_i_and_finds_the_optimum():
    result = tune.random_search(quadratic, SPACE, n_trials=200, seed=3)
    assert len(result.trials) == 200 and all(t["status"] == "ok" for t in result.trials)
    for i in (0, 57, 199):   # resume-safe: each config depends on (seed, index) only
        assert result.trials[i]["config"] == sp.sample_config(
            SPACE, np.random.default_rng([3, i]))
        assert result.trials[i]["value"] == pytest.approx(quadratic(result.trials[i]["config"]))
    best = result.best_config
    assert best["act"] == "tanh" and best["n"] == 3 and best["epochs"] == 3
    assert abs(best["x"] - 1.0) < 0.5 and abs(math.log10(best["lr"]) + 2.0) < 0.5
    assert result.best_value == min(t["value"] for t in result.trials)
    assert result.best_value < 0.3


def test_grid_search_enumerates_exactly_the_product():
    grid = {"a": [1, 2, 3], "b": [0.5, -1.0], "c": ["p", "q"]}
    counter = Counter(lambda c: c["a"] * c["b"] + (c["c"] == "q"))
    result = tune.grid_search(counter, grid)
    product = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    assert counter.calls == product
    assert [t["config"] for t in result.trials] == product
    assert result.best_config == {"a": 3, "b": -1.0, "c": "p"} and result.best_value == -3.0
    assert tune.grid_search(counter, grid, mode="max").best_config == {"a": 3, "b": 0.5, "c": "q"}


def test_failures_are_recorded_and_the_search_goes_on():
    def objective(config):
        i = len(calls)
        calls.append(i)
        if i == 1:
            raise ZeroDivisionError("division by zero in layer 2")
        return [1.0, None, float("nan"), float("inf"), "0.5", np.float32(2.0), -1.0][i]

    calls = []
    result = tune.grid_search(objective, {"k": list(range(7))})
    assert calls == list(range(7))
    status = [t["status"] for t in result.trials]
    assert status == ["ok", "failed", "failed", "failed", "failed", "ok", "ok"]
    errors = [t["error"] for t in result.trials]
    assert errors[1] == "ZeroDivisionError: division by zero in layer 2"
    assert "nan" in errors[2] and "inf" in errors[3] and "str" in errors[4]
    assert all(t["value"] is None for t in result.trials if t["status"] == "failed")
    assert result.trials[5]["value"] == 2.0 and type(result.trials[5]["value"]) is float
    assert result.best_trial["index"] == 6 and result.best_value == -1.0


def test_no_ok_trial_means_no_best_and_the_error_says_why():
    result = tune.grid_search(lambda c: float("nan"), {"k": [1, 2]})
    with pytest.raises(ValueError, match="no trial finished with status 'ok' out of 2.*nan"):
        _ = result.best_config


def test_keyboard_interrupt_is_not_swallowed():
    def objective(config):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        tune.grid_search(objective, {"k": [1, 2]})
    assert tune.current_trial() is None


def test_metric_picks_from_a_dict_and_a_missing_metric_lists_the_keys():
    def objective(config):
        acc = 1.0 - abs(config["k"] - 2) / 10
        return {"val_accuracy": acc, "val_loss": 1 - acc} if config["k"] != 4 else {"acc": 1.0}
    result = tune.grid_search(objective, {"k": [0, 1, 2, 3, 4]}, mode="max",
                              metric="val_accuracy")
    assert result.best_config == {"k": 2} and result.best_value == 1.0
    assert result.trials[0]["metrics"] == {"val_accuracy": 0.8, "val_loss": pytest.approx(0.2)}
    assert result.trials[4]["status"] == "failed"
    assert "'val_accuracy'" in result.trials[4]["error"] and "['acc']" in result.trials[4]["error"]
    no_metric = tune.grid_search(objective, {"k": [0]})
    assert no_metric.trials[0]["status"] == "failed" and "metric=" in no_metric.trials[0]["error"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "minimize"}, ValueError, "tune.random_search: `mode` must be 'min'"),
    ({"metric": 3}, TypeError, "tune.random_search: `metric` must be None or the name"),
    ({"n_trials": 0}, ValueError, "tune.random_search: `n_trials`"),
    ({"seed": -1}, ValueError, "tune.random_search: `seed`"),
    ({"log": 3.5}, TypeError, "tune.random_search: `log` must be a file path"),
    ({"verbose": -1}, ValueError, "tune.random_search: `verbose`"),
])
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = {"n_trials": 2, **kwargs}
    with pytest.raises(error, match=match):
        tune.random_search(quadratic, SPACE, **args)


def test_a_bad_objective_is_named():
    with pytest.raises(TypeError, match="tune.grid_search: `objective` must be a function"):
        tune.grid_search("loss", {"k": [1]})


def test_resume_runs_only_the_remaining_trials_and_equals_an_uninterrupted_run(tmp_path):
    log = tmp_path / "study.jsonl"
    first = Counter()
    tune.random_search(first, SPACE, n_trials=4, seed=1, log=log)
    assert len(first.calls) == 4
    second = Counter()
    resumed = tune.random_search(second, SPACE, n_trials=10, seed=1, log=log)
    reference = tune.random_search(quadratic, SPACE, n_trials=10, seed=1)
    assert second.calls == [t["config"] for t in reference.trials[4:]]
    assert without_seconds(resumed.trials) == without_seconds(reference.trials)
    third = Counter()
    again = tune.random_search(third, SPACE, n_trials=10, seed=1, log=log)
    assert third.calls == [] and without_seconds(again.trials) == without_seconds(resumed.trials)
    lines = log.read_text().splitlines()
    assert len(lines) == 11 and json.loads(lines[0])["strategy"] == "random"
    assert [json.loads(line)["index"] for line in lines[1:]] == list(range(10))


def test_resume_keeps_failed_and_pruned_trials_and_restores_constants_and_choices(tmp_path):
    log = tmp_path / "study.jsonl"
    space = {"k": sp.choice([(3, 3), (5, 5)]), "f": math.sqrt, "x": sp.uniform(0, 1)}

    def objective(config):
        if config["x"] < 0.3:
            raise RuntimeError("too small")
        if config["x"] > 0.8:
            raise tune.TrialPruned("hopeless")
        return config["f"](config["x"]) + config["k"][0]

    before = tune.random_search(objective, space, n_trials=12, seed=0, log=log)
    assert {t["status"] for t in before.trials} == {"ok", "failed", "pruned"}
    counter = Counter(objective)
    after = tune.random_search(counter, space, n_trials=12, seed=0, log=log)
    assert counter.calls == []
    assert without_seconds(after.trials) == without_seconds(before.trials)
    assert after.best_config["f"] is math.sqrt and isinstance(after.best_config["k"], tuple)


KILLED_CHILD = textwrap.dedent("""
    import os, signal, sys
    from jaxdl import tune
    def objective(config):
        if config["i"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return float(config["i"])
    tune.grid_search(objective, {"i": list(range(6))}, log=sys.argv[1])
""")


def test_a_search_killed_mid_trial_resumes_without_losing_or_repeating_trials(tmp_path):
    log = tmp_path / "study.jsonl"
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(log)], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == -9, child.stderr
    assert len(log.read_text().splitlines()) == 1 + 3            # header and trials 0..2
    counter = Counter(lambda c: float(c["i"]))
    result = tune.grid_search(counter, {"i": list(range(6))}, log=log)
    assert counter.calls == [{"i": i} for i in range(3, 6)]       # 0..2 not rerun, 3 was
    assert [t["value"] for t in result.trials] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_torn_last_line_is_dropped_and_the_trial_rerun(tmp_path):
    log = tmp_path / "study.jsonl"
    tune.grid_search(lambda c: c["i"] * 2.0, {"i": [0, 1, 2, 3]}, log=log)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3]) + lines[3][:25])                # kill while writing 2
    counter = Counter(lambda c: c["i"] * 2.0)
    result = tune.grid_search(counter, {"i": [0, 1, 2, 3]}, log=log)
    assert counter.calls == [{"i": 2}, {"i": 3}]
    assert [t["value"] for t in result.trials] == [0.0, 2.0, 4.0, 6.0]
    assert [json.loads(line)["index"] for line in log.read_text().splitlines()[1:]] == [0, 1, 2, 3]


def test_a_log_of_another_search_is_refused(tmp_path):
    log = tmp_path / "study.jsonl"
    tune.random_search(quadratic, SPACE, n_trials=2, seed=1, log=log)
    with pytest.raises(ValueError, match=r"study.jsonl.*different search.*seed: log has 1, "
                                         r"this search has 2.*new log file"):
        tune.random_search(quadratic, SPACE, n_trials=2, seed=2, log=log)
    with pytest.raises(ValueError, match="mode: log has 'min'"):
        tune.random_search(quadratic, SPACE, n_trials=2, seed=1, log=log, mode="max")
    with pytest.raises(ValueError, match="strategy"):
        tune.grid_search(quadratic, {"x": [1.0]}, log=log)


def test_a_damaged_line_in_the_middle_is_an_error(tmp_path):
    log = tmp_path / "study.jsonl"
    tune.grid_search(lambda c: 1.0, {"i": [0, 1, 2]}, log=log)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + "{oops\n" + "".join(lines[2:]))
    with pytest.raises(ValueError, match="damaged at line 2"):
        tune.grid_search(lambda c: 1.0, {"i": [0, 1, 2]}, log=log)


def test_table_lists_every_trial_with_its_parameters_and_marks_the_best():
    result = tune.random_search(quadratic, SPACE, n_trials=6, seed=0)
    lines = result.table().splitlines()
    assert lines[0].split() == ["#", "status", "value", "seconds", "x", "lr", "n", "act"]
    assert len(lines) == 7
    best = result.best_trial
    row = lines[1 + best["index"]].split()
    assert row[0] == f"{best['index']}*" and float(row[2]) == pytest.approx(best["value"],
                                                                            rel=1e-3)
    assert row[-1] == best["config"]["act"] and int(row[-2]) == best["config"]["n"]
    short = result.table(max_rows=2, sort=True).splitlines()
    assert short[1].split()[0].endswith("*") and short[-1] == "... 4 more trials"


def test_plot_writes_a_png(tmp_path):
    def objective(config):
        if config["n"] == 1:
            raise RuntimeError("no")
        return quadratic(config)
    result = tune.random_search(objective, SPACE, n_trials=12, seed=0)
    path = result.plot(tmp_path / "sub" / "search.png")
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_report_and_earlier_see_what_earlier_trials_reported():
    seen, modes = {}, []

    def objective(config):
        trial = tune.current_trial()
        assert trial.config == config
        modes.append(trial.mode)
        seen[trial.index] = trial.earlier(1)
        for step in range(3):
            tune.report(step, config["v"] * (step + 1))
        assert trial.intermediate == {"0": config["v"], "1": 2 * config["v"],
                                      "2": 3 * config["v"]}
        if config["v"] == 3.0:
            raise tune.TrialPruned("worse than the median")
        return config["v"]

    result = tune.grid_search(objective, {"v": [1.0, 3.0, 2.0, 4.0]})
    assert seen == {0: [], 1: [2.0], 2: [2.0], 3: [2.0, 4.0]}   # pruned trial 1 not counted
    assert [t["status"] for t in result.trials] == ["ok", "pruned", "ok", "ok"]
    assert result.trials[1]["error"] == "TrialPruned: worse than the median"
    assert result.trials[1]["intermediate"] == {"0": 3.0, "1": 6.0, "2": 9.0}
    result_max = tune.grid_search(objective, {"v": [1.0, 3.0, 2.0]}, mode="max")
    assert result_max.best_config == {"v": 2.0}                  # the pruned 3.0 is excluded
    assert modes == ["min"] * 4 + ["max"] * 3
    assert tune.current_trial() is None


def test_report_outside_a_search_and_bad_values_raise():
    with pytest.raises(RuntimeError, match="tune.report: no trial is running"):
        tune.report(0, 1.0)

    def objective(config):
        tune.report(0, "high")
    result = tune.grid_search(objective, {"k": [0]})
    assert "tune.report: `value` must be a number" in result.trials[0]["error"]


def test_verbose_prints_a_line_per_trial_and_nothing_by_default(capsys):
    tune.grid_search(lambda c: c["k"], {"k": [1, 2]})
    assert capsys.readouterr().out == ""
    tune.grid_search(lambda c: c["k"], {"k": [1, 2]}, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("trial 2/2 ok: 2 ")


def test_run_search_with_a_custom_suggest_sees_finished_trials():
    def suggest(index, finished):
        assert [t["index"] for t in finished] == list(range(index))
        return {"x": 0.0 if not finished else finished[-1]["config"]["x"] + 1.0}
    result = search.run_search(lambda c: (c["x"] - 3) ** 2, suggest, 6, header={"s": "walk"},
                               owner="walk")
    assert result.best_config == {"x": 3.0} and repr(result).startswith("SearchResult(6 trials")


def test_a_torn_header_starts_the_log_afresh_and_a_shorter_rerun_reads_a_prefix(tmp_path):
    log = tmp_path / "study.jsonl"
    log.write_text('{"strategy": "gr')                                  # killed at once
    result = tune.grid_search(lambda c: c["i"] * 1.0, {"i": [0, 1, 2]}, log=log)
    assert [t["value"] for t in result.trials] == [0.0, 1.0, 2.0]
    assert json.loads(log.read_text().splitlines()[0])["strategy"] == "grid"
    counter = Counter(quadratic)
    tune.random_search(counter, SPACE, n_trials=5, seed=0, log=tmp_path / "r.jsonl")
    shorter = tune.random_search(counter, SPACE, n_trials=3, seed=0, log=tmp_path / "r.jsonl")
    assert len(counter.calls) == 5 and [t["index"] for t in shorter.trials] == [0, 1, 2]


def test_a_result_built_by_another_strategy_needs_only_the_core_keys():
    result = search.SearchResult([
        {"index": 0, "config": {"a": 1}, "value": None, "status": "failed"},
        {"index": 1, "config": {"a": 2}, "value": 0.5, "status": "ok", "seconds": None}],
        mode="max")
    assert result.best_config == {"a": 2} and result.best_so_far() == [None, 0.5]
    assert result.table().splitlines()[2].split() == ["1*", "ok", "0.5", "-", "2"]
    with pytest.raises(ValueError, match="tune.SearchResult: `mode`"):
        search.SearchResult([], mode="best")


def test_a_nan_reported_mid_trial_reads_back_as_a_float_nan(tmp_path):
    def objective(config):
        tune.report(0, float("nan"))
        return {"loss": float("nan"), "acc": 0.5}
    log = tmp_path / "study.jsonl"
    tune.grid_search(objective, {"i": [0]}, metric="loss", log=log)
    trial = tune.grid_search(objective, {"i": [0]}, metric="loss", log=log).trials[0]
    assert trial["status"] == "failed" and math.isnan(trial["intermediate"]["0"])
    assert math.isnan(trial["metrics"]["loss"]) and trial["metrics"]["acc"] == 0.5
