"""Run a jaxdl search space through Optuna, for its samplers, pruners and shared storage.

Each dimension maps onto an Optuna distribution:

================  ==========================================================
jaxdl             Optuna
================  ==========================================================
``uniform``       ``FloatDistribution(low, high)``
``loguniform``    ``FloatDistribution(low, high, log=True)``
``randint``       ``IntDistribution(low, high - 1)`` (jaxdl excludes ``high``)
``choice``        ``CategoricalDistribution(values)``; values Optuna cannot store
                  (anything but None, bool, int, float, str) go by their index
constants         passed to the objective, not shown to Optuna
================  ==========================================================

Trials run through ``study.ask``/``study.tell``, so a failing objective is told
as ``FAIL`` and the search goes on, as in every jaxdl search. Inside the
objective, ``tune.report(step, value)`` also reports to the Optuna trial, and
``tune.current_trial().should_prune()`` asks Optuna's pruner; raise
``tune.TrialPruned`` (or ``optuna.TrialPruned``) to stop, and the trial is told
as ``PRUNED``.

Optuna is an optional extra: ``pip install 'jaxdl[tune]'``.

>>> from jaxdl import tune
>>> result = tune.optuna_search(lambda c: (c["x"] - 1) ** 2, {"x": tune.uniform(-2, 2)},
...                             n_trials=20, seed=0)
>>> abs(result.best_config["x"] - 1) < 0.5
True
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

from jaxdl import _checks
from jaxdl.tune import search
from jaxdl.tune import space as spaces

OPTUNA_CHOICE_TYPES = (type(None), bool, int, float, str)


def import_optuna():
    """The ``optuna`` module, or an ImportError that names the extra to install."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("tune.optuna_search needs Optuna: pip install 'jaxdl[tune]'") from exc
    return optuna


def distributions(space: dict, optuna: Any = None) -> tuple[dict, dict]:
    """The Optuna distributions of the searched entries of ``space``.

    Returns ``(distributions, by_index)``: ``by_index`` maps the name of each
    choice whose values Optuna cannot store to those values (Optuna then picks an
    index).
    """
    optuna = optuna or import_optuna()
    dists, by_index = {}, {}
    d = optuna.distributions
    for name, dim in space.items():
        if isinstance(dim, spaces.Uniform):
            dists[name] = d.FloatDistribution(dim.low, dim.high)
        elif isinstance(dim, spaces.LogUniform):
            dists[name] = d.FloatDistribution(dim.low, dim.high, log=True)
        elif isinstance(dim, spaces.RandInt):
            dists[name] = d.IntDistribution(dim.low, dim.high - 1)
        elif isinstance(dim, spaces.Choice):
            if all(type(v) in OPTUNA_CHOICE_TYPES for v in dim.values):
                dists[name] = d.CategoricalDistribution(list(dim.values))
            else:
                dists[name] = d.CategoricalDistribution(list(range(len(dim.values))))
                by_index[name] = dim.values
        elif isinstance(dim, spaces.Dimension):
            raise TypeError(f"tune.optuna_search: `space[{name!r}]` is a {type(dim).__name__}, "
                            f"which has no Optuna distribution; use uniform, loguniform, "
                            f"randint or choice.")
    return dists, by_index


def config_of(space: dict, params: dict, by_index: dict) -> dict:
    """The jaxdl configuration of Optuna's ``params`` (constants and choice values put back)."""
    config = {}
    for name, value in space.items():
        if not isinstance(value, spaces.Dimension):
            config[name] = value
        elif name in params:
            picked = params[name]
            config[name] = by_index[name][picked] if name in by_index else picked
    return config


def trial_dict(frozen: Any, space: dict, by_index: dict, optuna: Any) -> Optional[dict]:
    """A finished Optuna trial as a jaxdl trial dict (``None`` while it still runs)."""
    states = optuna.trial.TrialState
    status = {states.COMPLETE: "ok", states.FAIL: "failed", states.PRUNED: "pruned"}.get(
        frozen.state)
    if status is None:
        return None
    attrs = frozen.user_attrs
    seconds = attrs.get("jaxdl_seconds")
    if seconds is None:
        seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
    return {"index": frozen.number, "config": config_of(space, frozen.params, by_index),
            "value": frozen.value if status == "ok" else None, "status": status,
            "seconds": seconds, "error": attrs.get("jaxdl_error"),
            "metrics": attrs.get("jaxdl_metrics"),
            "intermediate": {str(k): v for k, v in sorted(frozen.intermediate_values.items())}}


def _finished(study, space, by_index, optuna) -> list[dict]:
    trials = (trial_dict(t, space, by_index, optuna) for t in study.get_trials(deepcopy=False))
    return [t for t in trials if t is not None]


def _one_trial(study, objective, space, dists, by_index, mode, metric, optuna) -> dict:
    """Ask Optuna for a trial, run the objective in it, and tell Optuna how it went."""
    finished = _finished(study, space, by_index, optuna)
    trial = study.ask(dists)
    config = config_of(space, trial.params, by_index)
    record = search.run_trial(
        objective, trial.number, config, mode=mode, metric=metric, finished=finished,
        on_report=lambda step, value: trial.report(value, step), pruner=trial.should_prune,
        pruned_types=(search.TrialPruned, optuna.TrialPruned))
    for key in ("error", "metrics", "seconds"):
        trial.set_user_attr(f"jaxdl_{key}", spaces.jsonable(record[key]))
    state = {"ok": optuna.trial.TrialState.COMPLETE, "failed": optuna.trial.TrialState.FAIL,
             "pruned": optuna.trial.TrialState.PRUNED}[record["status"]]
    study.tell(trial, record["value"] if record["status"] == "ok" else None, state=state)
    return record


@contextlib.contextmanager
def _optuna_quiet(optuna, verbose: int):
    """Silence Optuna's per-trial log lines unless ``verbose``; restore its level after."""
    level = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def optuna_search(objective: Callable, space: dict, n_trials: int, sampler: Any = None,
                  storage: Any = None, *, mode: str = "min", metric: Optional[str] = None,
                  seed: Optional[int] = None, study_name: Optional[str] = None,
                  pruner: Any = None, verbose: int = 0) -> search.SearchResult:
    """Search ``space`` with an Optuna sampler; returns a :class:`SearchResult`.

    Args:
        objective: ``objective(config)`` returning a number, or a dict of numbers
            with ``metric`` naming the one to optimize.
        space: a jaxdl search space (see :mod:`jaxdl.tune.space`).
        n_trials: how many trials this call runs (added to those already in the study).
        sampler: an Optuna sampler; default ``TPESampler(seed=seed)``.
        storage: an Optuna storage (e.g. ``"sqlite:///study.db"``, or a journal
            file storage) shared by several processes or machines working on the
            same ``study_name``; ``None`` keeps the study in memory.
        mode: ``"min"`` or ``"max"``.
        metric: the key of the objective's dict to optimize.
        seed: seeds the default sampler (give the seed to your own sampler instead).
        study_name: the study to create, or to load and extend when it exists.
        pruner: an Optuna pruner behind ``tune.current_trial().should_prune()``.
        verbose: 0 silences Optuna's log lines during the call.

    Returns:
        The study's finished trials (including those of earlier calls and other
        processes), as jaxdl trial dicts whose ``index`` is Optuna's trial number.
    """
    owner = "tune.optuna_search"
    if not callable(objective):
        raise TypeError(f"{owner}: `objective` must be a function config -> number (or dict "
                        f"of numbers), got {type(objective).__name__}.")
    space = spaces.check_space(owner, space)
    n_trials = _checks.positive_int(owner, "n_trials", n_trials)
    mode, metric = search.check_mode(owner, mode), search.check_metric(owner, metric)
    if seed is not None:
        seed = _checks.non_negative_int(owner, "seed", seed)
        if sampler is not None:
            raise ValueError(f"{owner}: `seed` seeds the default sampler only, got seed={seed} "
                             f"and a sampler; seed the sampler itself instead.")
    optuna = import_optuna()
    dists, by_index = distributions(space, optuna)
    with _optuna_quiet(optuna, verbose):
        study = optuna.create_study(
            storage=storage, sampler=sampler or optuna.samplers.TPESampler(seed=seed),
            pruner=pruner, study_name=study_name, load_if_exists=True,
            direction="minimize" if mode == "min" else "maximize")
        for _ in range(n_trials):
            _one_trial(study, objective, space, dists, by_index, mode, metric, optuna)
    return search.SearchResult(_finished(study, space, by_index, optuna), mode=mode,
                               metric=metric, space=space)
