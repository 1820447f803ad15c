"""Callbacks: code run by ``Trainer.fit`` at fixed points, with Keras's hook names.

A callback subclasses :class:`Callback` and overrides any of
``on_train_begin(logs)``, ``on_train_end(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)`` and ``on_batch_end(step, logs)``. Before training,
``set_trainer(trainer)`` gives it the running trainer (a
:class:`~jaxdl.train.Trainer` or any other :class:`~jaxdl.train.loop.EpochTrainer`)
as ``self.trainer``: it may read or replace ``trainer.state`` and set
``trainer.stop_training = True``. The engine dispatches every hook through one
:class:`~jaxdl.train.loop.CallbackList`.

``on_batch_end`` runs after each *executed chunk* of steps (``fit`` fuses
several steps into one compiled call, see ``steps_per_execution``), with the
running epoch means so far; ``step`` counts steps in the epoch.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks, checkpoint, optim


class Callback:
    """Base class: every hook does nothing."""

    trainer: Any = None

    def set_trainer(self, trainer: Any) -> None:
        """Called by ``fit`` before ``on_train_begin``."""
        self.trainer = trainer

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        """Before the first epoch."""

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        """After the last epoch (also after an early stop)."""

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        """Before epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        """After epoch ``epoch`` with its logs (training and validation metrics)."""

    def on_batch_end(self, step: int, logs: Optional[dict] = None) -> None:
        """After each executed chunk of steps, with the running epoch means."""

    def state_dict(self) -> dict:
        """The callback's progress as a JSON-serializable dict, saved in checkpoints.

        ``ModelCheckpoint`` and ``Trainer.save`` store it; after
        ``Trainer.restore``, ``fit(..., initial_epoch=k)`` hands it back through
        :meth:`load_state_dict` once ``on_train_begin`` has run, so a resumed
        run counts patience and tracks the best value as the uninterrupted one.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


def _resolve_mode(owner: str, monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}.")
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.startswith("auc")
                         or monitor.endswith("auc")) else "min"
    return mode


def _monitored(owner: str, monitor: str, logs: Optional[dict]) -> float:
    if not logs or monitor not in logs:
        hint = (" Pass validation_data or validation_split to fit, or monitor a training "
                "metric such as 'loss'." if monitor.startswith("val_") else "")
        raise ValueError(f"{owner}: monitor={monitor!r} is not among the logged values "
                         f"{sorted(logs or {})}.{hint}")
    return float(logs[monitor])


class _Monitor:
    """Tracks the best value of a monitored metric."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float):
        self.owner, self.monitor = owner, monitor
        self.mode = _resolve_mode(owner, monitor, mode)
        if min_delta < 0:
            raise ValueError(f"{owner}: min_delta must be >= 0, got {min_delta}.")
        self.min_delta = min_delta
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


def _copy_tree(tree: Any) -> Any:
    # The trainer donates its state's buffers to each step: keep an independent copy.
    return jax.tree.map(jnp.copy, tree)


class EarlyStopping(Callback):
    """Stop training when a monitored metric stops improving.

    An epoch improves on the best so far when the metric is lower (``mode="min"``)
    or higher (``"max"``) by more than ``min_delta``; ``"auto"`` picks ``max``
    for accuracies and ``min`` otherwise. Training stops at the ``patience``-th
    epoch in a row without improvement (the first one when ``patience=0``), as
    in Keras.

    With ``restore_best_weights=True`` the params and model state of the best
    epoch are put back at the end of training, whether training stopped early
    or ran all its epochs (Keras restores only after an early stop).

    Attributes:
        stopped_epoch: the epoch at which training stopped (0-based), or None.
        best_epoch: the epoch with the best monitored value.
        best: that value.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}.")
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.patience = monitor, patience
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_train_begin(self, logs=None):
        self._monitor.reset()
        self.wait = 0
        self.stopped_epoch = None
        self.best_epoch = None
        self.best_weights = None

    def state_dict(self) -> dict:
        # The best weights themselves are not carried across a resume, only the counters.
        return {"best": self._monitor.best, "wait": self.wait, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self._monitor.best = float(state["best"])
        self.wait, self.best_epoch = int(state["wait"]), state["best_epoch"]

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = _monitored("EarlyStopping", self.monitor, logs)
        if self._monitor.improved(value):
            self._monitor.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                st = self.trainer.state
                self.best_weights = _copy_tree(
                    {f: getattr(st, f) for f in self.trainer.weight_fields})
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):  # Keras: stop after `patience` flat epochs
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.state = self.trainer.state._replace(**self.best_weights)
            if self.trainer.verbose and self.stopped_epoch is not None:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} "
                      f"({self.monitor} = {self.best:.4f}).")


def lr_multiplier_of(trainer: Any) -> float:
    """The learning-rate multiplier the trainer's optimizers run at (the first one's)."""
    field = trainer.optimizer_fields[0]
    return float(optim.get_hyperparams(getattr(trainer.state, field))["lr_multiplier"])


def set_lr_multiplier(trainer: Any, value: float) -> None:
    """Set the learning-rate multiplier of every optimizer of the trainer (its
    ``optimizer_fields``) inside the state: no recompilation."""
    st = trainer.state
    trainer.state = st._replace(**{f: optim.set_hyperparams(getattr(st, f), lr_multiplier=value)
                                   for f in trainer.optimizer_fields})


class LearningRateScheduler(Callback):
    """Set the learning-rate multiplier at the start of every epoch (Keras's callback).

    ``schedule(epoch, multiplier) -> multiplier``: ``epoch`` counts from 0 and
    ``multiplier`` is the current factor on every optimizer's rate (1.0 unless
    a callback changed it). As with :class:`ReduceLROnPlateau`, the factor is
    :func:`jaxdl.optim.lr_multiplier`'s hyperparameter in the optimizer state:
    every optimizer of the trainer (a GAN's two, an AAE's three) follows it,
    no step recompiles, and a resumed run (``initial_epoch``) gets the same
    factor as the uninterrupted one, since it depends only on the epoch. The
    factor in use is logged as ``lr_multiplier``.

    Example: a tenth of the rate for the last 30 of 100 epochs,
    ``LearningRateScheduler(lambda epoch, m: 0.1 if epoch >= 70 else 1.0)``.
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, "
                            f"multiplier) -> multiplier, got {schedule!r}.")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        current = lr_multiplier_of(self.trainer)
        new = self.schedule(epoch, current)
        if not _checks.is_real(new) or not math.isfinite(new) or new < 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}, {current}) returned "
                             f"{new!r}; it must return a finite number >= 0 (the factor on "
                             f"the optimizers' learning rates).")
        if float(new) != current:
            set_lr_multiplier(self.trainer, float(new))
            if self.verbose:
                print(f"LearningRateScheduler: epoch {epoch + 1}: learning-rate multiplier "
                      f"{current:.4g} -> {float(new):.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr_multiplier"] = lr_multiplier_of(self.trainer)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    After ``patience`` epochs without an improvement larger than ``min_delta``
    the rate the optimizer really uses is lowered: the trainer chains
    :func:`jaxdl.optim.lr_multiplier` after the optimizer, and this callback
    lowers that hyperparameter inside the optimizer state with
    :func:`jaxdl.optim.set_hyperparams`, so it works with every jaxdl and
    optax optimizer and never recompiles (a trainer with several optimizers, such
    as a GAN's, lowers all of them together: see ``EpochTrainer.optimizer_fields``).
    ``cooldown`` epochs follow each reduction before counting again. The
    multiplier never goes below ``min_multiplier``. The current multiplier is
    logged as ``lr_multiplier``.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_multiplier: float = 0.0, verbose: int = 0):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}.")
        if patience < 0 or cooldown < 0:
            raise ValueError(f"ReduceLROnPlateau: patience and cooldown must be >= 0, got "
                             f"patience={patience}, cooldown={cooldown}.")
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.cooldown, self.min_multiplier, self.verbose = cooldown, min_multiplier, verbose

    def on_train_begin(self, logs=None):
        self._monitor.reset()
        self.wait = 0
        self.cooldown_left = 0

    def state_dict(self) -> dict:
        return {"best": self._monitor.best, "wait": self.wait,
                "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict) -> None:
        self._monitor.best = float(state["best"])
        self.wait, self.cooldown_left = int(state["wait"]), int(state["cooldown_left"])

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored("ReduceLROnPlateau", self.monitor, logs)
        current = lr_multiplier_of(self.trainer)
        if logs is not None:
            logs["lr_multiplier"] = current
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._monitor.improved(value):
            self._monitor.best = value
            self.wait = 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and current > self.min_multiplier:
            new = max(current * self.factor, self.min_multiplier)
            set_lr_multiplier(self.trainer, new)
            if self.verbose:
                print(f"ReduceLROnPlateau: epoch {epoch + 1}: learning-rate multiplier "
                      f"{current:.4g} -> {new:.4g}.")
            self.cooldown_left = self.cooldown
            self.wait = 0


class TerminateOnNaN(Callback):
    """Stop training as soon as a loss is NaN or infinite.

    The losses are the logged training values named ``loss`` or ending in
    ``_loss`` (a GAN's ``d_loss`` and ``g_loss``). Checked after every executed
    chunk of steps and at the end of each epoch. The epoch in progress ends (its
    line is printed), then this callback's message follows it.

    Attributes:
        terminated: whether it stopped the run.
        loss: the first non-finite loss seen (``None`` if none).
    """

    def _check(self, logs):
        bad = [v for k, v in (logs or {}).items() if (k == "loss" or k.endswith("_loss"))
               and not k.startswith("val_") and not np.isfinite(v)]
        loss = bad[0] if bad else None
        if loss is not None:
            self.trainer.stop_training = True
            if not self.terminated:
                self.terminated, self.loss = True, loss

    def on_train_begin(self, logs=None):
        self.terminated, self.loss = False, None
        self._reported = False

    def on_batch_end(self, step, logs=None):
        self._check(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs)
        if self.terminated and not self._reported:
            self._reported = True
            if self.trainer.verbose:
                print(f"TerminateOnNaN: epoch {epoch + 1}: loss is {self.loss}; stopping "
                      f"training.", flush=True)


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then every logged value.

    The header is the first epoch's keys. With ``append=True`` rows are added
    to an existing file (for resumed runs) and no second header is written.
    Each row is flushed as it is written.
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False):
        self.path, self.separator, self.append = os.fspath(path), separator, append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._file = open(self.path, "a" if self.append else "w", newline="")
        self._keys = None
        if exists:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None
        self._writer = csv.writer(self._file, delimiter=self.separator)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = list(logs)
            self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [logs.get(k, "") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback from plain functions, one per hook (all optional).

    Example:
        >>> from jaxdl import train
        >>> cb = train.LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(self, on_epoch_begin: Optional[Callable] = None,
                 on_epoch_end: Optional[Callable] = None,
                 on_batch_end: Optional[Callable] = None,
                 on_train_begin: Optional[Callable] = None,
                 on_train_end: Optional[Callable] = None):
        for name, fn in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                             on_batch_end=on_batch_end, on_train_begin=on_train_begin,
                             on_train_end=on_train_end).items():
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}.")
            if fn is not None:
                setattr(self, name, fn)


class ModelCheckpoint(Callback):
    """Save the whole training state at the end of epochs, atomically.

    Each save writes ``step_<epoch>.ckpt`` in ``directory`` (``epoch`` counting
    completed epochs, so ``Trainer.restore(directory)`` followed by
    ``fit(..., initial_epoch=trainer.epoch)`` resumes where the run stopped). A
    checkpoint holds params, model state, optimizer state, PRNG key and step,
    plus the epoch and every callback's :meth:`~Callback.state_dict` (best
    values, patience counters), not only the weights.

    Args:
        directory: the checkpoint directory (created if needed).
        monitor: the logged value that decides "best".
        save_best_only: save only when ``monitor`` improves on the best so far.
        mode: ``"auto"``, ``"min"`` or ``"max"`` for ``monitor``.
        save_freq: ``"epoch"`` or an int N: save every N epochs.
        max_to_keep: keep only the newest N checkpoints (the best by ``monitor``
            is kept as well). A state whose loss, metrics or params are not
            finite is saved apart as ``step_<epoch>.diverged.ckpt`` with a
            warning, and never replaces or prunes the last finite checkpoint;
            ``Trainer.restore(directory)`` skips it.
        verbose: print a line at each save.
    """

    def __init__(self, directory, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", save_freq: Any = "epoch", max_to_keep: Optional[int] = None,
                 verbose: int = 0):
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int "
                             f"(every N epochs), got {save_freq!r}.")
        self.directory = os.fspath(directory)
        self.monitor, self.save_best_only, self.save_freq = monitor, save_best_only, save_freq
        self.max_to_keep, self.verbose = max_to_keep, verbose
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.manager = None

    def on_train_begin(self, logs=None):
        self.manager = checkpoint.CheckpointManager(self.directory, max_to_keep=self.max_to_keep,
                                         best_metric=self.monitor, best_mode=self._monitor.mode)
        self._monitor.reset()

    def state_dict(self) -> dict:
        return {"best": self._monitor.best}

    def load_state_dict(self, state: dict) -> None:
        best = state.get("best") if isinstance(state, dict) else None
        if not _checks.is_real(best):
            raise checkpoint.CheckpointError(
                f"ModelCheckpoint: the checkpointed callback state field 'best' must be a "
                f"number, got {best!r}; the checkpoint's metadata is damaged. Resume without "
                f"it or from another file.")
        self._monitor.best = float(best)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_freq != "epoch" and (epoch + 1) % self.save_freq:
            return
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            if not self._monitor.improved(value):
                return
            self._monitor.best = value
        elif self.monitor in logs and self._monitor.improved(float(logs[self.monitor])):
            self._monitor.best = float(logs[self.monitor])
        meta = self.trainer.checkpoint_metadata({"epoch": epoch + 1})
        metrics = {k: v for k, v in logs.items()
                   if _checks.is_real(v)}
        # A diverged state (non-finite loss or params) is kept apart by the manager, with a
        # warning naming the epoch; it never replaces or prunes the last finite checkpoint.
        path = self.manager.save(epoch + 1, {"train_state": self.trainer.state},
                                 metrics=metrics, metadata=meta,
                                 description=f"ModelCheckpoint: epoch {epoch + 1}")
        if self.verbose:
            print(f"ModelCheckpoint: epoch {epoch + 1}: saved {path}")
