"""A ``Trainer`` run as a search objective, with median stopping of hopeless trials.

:func:`fit_objective` turns ``build(config) -> (model, optimizer)`` and a data
set into ``objective(config) -> dict``: a fresh :class:`~jaxdl.train.Trainer`
is fitted for the configuration and the logs of its best epoch are returned,
so any search can pick ``metric="val_loss"`` or ``metric="val_accuracy"``.

Median stopping (the rule of Google Vizier, Golovin et al. 2017, also Optuna's
``MedianPruner``): after each epoch the trial reports its monitored value
with :func:`jaxdl.tune.report`; from epoch ``grace_epochs`` on, once at least
``min_trials`` earlier trials of the same search reported a value at that
epoch, a trial whose value is worse than their median stops and is recorded
as ``"pruned"``. The earlier values come from the search's trial records (and
its log), so a resumed search prunes as the uninterrupted one would. Under
:func:`jaxdl.tune.optuna_search` the study's own pruner decides instead.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from jaxdl import _checks, train
from jaxdl.tune import search

__all__ = ["fit_objective", "MedianStopping"]


class MedianStopping(train.Callback):
    """Report ``monitor`` after each epoch; stop a trial worse than the median of earlier ones.

    Used by :func:`fit_objective`; usable in any ``fit`` run inside a search.
    Outside a search it only checks that ``monitor`` is logged.

    Args:
        monitor: the logged value to report and compare (e.g. ``"val_loss"``).
        grace_epochs: epochs every trial runs before it may be stopped.
        min_trials: earlier trials needed at an epoch before comparing there.
    """

    def __init__(self, monitor: str = "val_loss", grace_epochs: int = 1, min_trials: int = 3):
        self.monitor = monitor
        self.grace_epochs = _checks.non_negative_int("MedianStopping", "grace_epochs",
                                                     grace_epochs)
        self.min_trials = _checks.positive_int("MedianStopping", "min_trials", min_trials)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"fit_objective: the metric {self.monitor!r} is not logged; the "
                             f"epoch logged {sorted(logs)}. Pass validation_data or "
                             f"validation_split for 'val_' metrics, or choose one of these.")
        value = float(logs[self.monitor])
        trial = search.current_trial()
        if trial is None:
            return
        search.report(epoch, value)
        if trial.pruner is not None:  # the search has its own pruner (Optuna's): it decides
            if trial.should_prune():
                raise search.TrialPruned(f"{self.monitor} = {value:.6g} after epoch "
                                         f"{epoch + 1}: stopped by the search's pruner")
            return
        earlier = [v for v in trial.earlier(epoch) if v is not None and math.isfinite(v)]
        if epoch + 1 <= self.grace_epochs or len(earlier) < self.min_trials:
            return
        median = float(np.median(earlier))
        worse = value > median if trial.mode == "min" else value < median
        if worse or not math.isfinite(value):
            raise search.TrialPruned(
                f"{self.monitor} = {value:.6g} after epoch {epoch + 1} is worse than the median "
                f"{median:.6g} of {len(earlier)} earlier trials")


def _best_epoch(history: train.History, metric: str, mode: str) -> dict:
    values = history.history[metric]
    pick = np.nanargmin if mode == "min" else np.nanargmax
    best = int(pick(np.asarray(values, dtype=np.float64)))
    logs = {name: float(series[best]) for name, series in history.history.items()}
    logs.update(epoch=best + 1, epochs_run=len(values))
    return logs


def fit_objective(build: Callable[[dict], tuple], x: Any, y: Any, *, epochs: int,
                  batch_size: int = 32, validation_data: Optional[tuple] = None,
                  validation_split: float = 0.2, loss: Any = "sparse_categorical_crossentropy",
                  metrics: Optional[Sequence[Any]] = None, metric: str = "val_loss",
                  mode: Optional[str] = None, seed: int = 0, median_stopping: bool = True,
                  grace_epochs: int = 1, min_trials: int = 3, callbacks: Sequence[Any] = (),
                  verbose: int = 0) -> Callable[[dict], dict]:
    """An objective that trains ``build(config)`` with ``Trainer.fit`` and returns its logs.

    Args:
        build: ``build(config) -> (model, optimizer)``; a third element, if
            returned, is the loss (overriding ``loss``).
        x, y, epochs, batch_size, validation_data, validation_split, seed,
            verbose: as in ``Trainer.fit`` (the same seed for every trial, so
            trials differ only by their configuration).
        loss, metrics: as in ``Trainer``.
        metric: the value median stopping watches and the best epoch is chosen by.
        mode: ``"min"`` or ``"max"`` for ``metric``; by default the running
            search's mode, or ``"max"`` for accuracy-like names outside one.
        median_stopping: stop trials worse than the median of earlier ones
            (see the module docstring); ``grace_epochs`` and ``min_trials`` tune it.
        callbacks: more callbacks for every trial's ``fit``.

    Returns:
        ``objective(config) -> dict``: the logs of the best epoch by ``metric``
        (``loss``, ``val_loss``, metrics...), plus ``epoch`` (1-based) and
        ``epochs_run``; pass ``metric=`` to the search to pick one.

    Example:
        >>> import numpy as np
        >>> from jaxdl import nn, optim, tune
        >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
        >>> y = (x[:, 0] > 0).astype("int32")
        >>> build = lambda c: (nn.Sequential([nn.Dense(2)]), optim.sgd(c["lr"]))
        >>> objective = tune.fit_objective(build, x, y, epochs=2, batch_size=16)
        >>> result = tune.grid_search(objective, {"lr": [0.01, 0.3]}, metric="val_loss")
        >>> result.best_config
        {'lr': 0.3}
    """
    if not callable(build):
        raise TypeError(f"fit_objective: build must be a function config -> (model, optimizer), "
                        f"got {type(build).__name__}.")
    if mode not in (None, "min", "max"):
        raise ValueError(f"fit_objective: mode must be 'min', 'max' or None, got {mode!r}.")
    fit_args = dict(epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                    validation_split=validation_split, seed=seed, verbose=verbose)
    stopper = (MedianStopping(metric, grace_epochs, min_trials) if median_stopping else None)

    def objective(config: dict) -> dict:
        built = build(config)
        if not isinstance(built, tuple) or len(built) not in (2, 3):
            raise TypeError(f"fit_objective: build(config) must return (model, optimizer) or "
                            f"(model, optimizer, loss), got {type(built).__name__}.")
        trainer = train.Trainer(built[0], built[2] if len(built) == 3 else loss, built[1],
                                metrics=metrics)
        extra = (stopper,) if stopper is not None else ()
        history = trainer.fit(x, y, callbacks=(*callbacks, *extra), **fit_args)
        trial = search.current_trial()
        chosen = mode or (trial.mode if trial is not None else
                          ("max" if "acc" in metric else "min"))
        return _best_epoch(history, metric, chosen)

    return objective
