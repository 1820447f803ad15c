"""The epoch engine every trainer drives.

Supervised, adversarial, population and sharded training differ in their
state and their step, never in the loop around them. :class:`EpochTrainer`
owns that loop once: the device-resident data and its shuffling plan (the
order of epoch ``e`` depends only on ``(seed, e)``), scan-fused chunks or one
call per step, the last partial batch, the progress line, the
:class:`History`, the callbacks (through one :class:`CallbackList`),
validation, stop requests, and what a checkpoint records. The host waits for
the device once per epoch: the chunks of an epoch are dispatched back to back,
and their logs fetched when it ends (after every chunk only for a callback
with an ``on_batch_end`` hook; one chunk behind for a live progress bar).

A trainer subclasses :class:`EpochTrainer`, builds its state, compiles its
un-jitted step with :func:`jaxdl.train.executors.compile_steps`, and calls
:meth:`EpochTrainer.run_epochs` with its data (any pytree of arrays sharing
their first axis)::

    class AutoencoderTrainer(EpochTrainer):
        checkpoint_kind = "my.AutoencoderTrainer"

        def fit(self, x, epochs, batch_size=32, seed=0, callbacks=(), verbose=1):
            if self.state is None:
                self.state = TrainState.create(model, opt, x.shape[1:], jax.random.key(seed))
            runner = compile_steps(reconstruction_step)      # step(state, x) -> (state, logs)
            return self.run_epochs(runner, jax.device_put(x), len(x), epochs=epochs,
                                   batch_size=batch_size, seed=seed, callbacks=callbacks,
                                   verbose=verbose)

``jaxdl.train.Trainer`` is the supervised case: its data are ``(x, y)``.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks, checkpoint
from jaxdl import data as _data
from jaxdl.train.callbacks import Callback
from jaxdl.train.executors import EvalRunner, StepRunner, padded_batches
from jaxdl.train.inputs import short_repr
from jaxdl.train.progress import EpochProgress

__all__ = ["History", "CallbackList", "EpochPlan", "plan_epoch", "EpochTrainer",
           "check_not_donated", "host_value"]


class History:
    """What ``fit`` returns: ``history`` maps each logged name to its per-epoch values.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}``.
        epoch: the epoch numbers (0-based) the values belong to.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict) -> None:
        """Record the logs of ``epoch`` (called by the engine at the end of each epoch)."""
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str | os.PathLike, title: Optional[str] = None) -> str:
        """Draw the loss and each metric (training and validation) to an image file.

        One panel per quantity, the x axis in epochs. Returns the path written.
        """
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [k for k in self.history if not k.startswith("val_") and k != "lr_multiplier"]
        if not names:
            raise ValueError("History.plot: nothing to plot; fit has not recorded any epoch.")
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        epochs = [e + 1 for e in self.epoch]
        for ax, name in zip(axes[0], names, strict=True):
            ax.plot(epochs, self.history[name], "o-", ms=3, label=f"train {name}")
            if f"val_{name}" in self.history:
                ax.plot(epochs, self.history[f"val_{name}"], "s--", ms=3,
                        label=f"validation {name}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            if name == "loss" and min(self.history[name]) > 0:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        path = os.fspath(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


_HOOKS = ("set_trainer", "on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end",
          "on_train_end", "state_dict", "load_state_dict")


class CallbackList:
    """The callbacks of one run, every hook dispatched through one place (as Keras does).

    Args:
        callbacks: ``None``, one callback, or a list of them (instances, not classes).
        owner: the caller, named in errors (``"Trainer.fit"``).

    Each callback gets a stable key, its class name and its rank among the
    callbacks of that class (``"EarlyStopping_0"``), under which its
    ``state_dict`` is saved in checkpoints and handed back on resume.
    """

    def __init__(self, callbacks: Any = (), owner: str = "fit"):
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, type) or hasattr(callbacks, "on_epoch_end"):
            callbacks = [callbacks]
        if not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"{owner}: callbacks must be a list of Callback instances, got "
                            f"{short_repr(callbacks)}. Write "
                            f"callbacks=[train.EarlyStopping(), ...].")
        for i, cb in enumerate(callbacks):
            if isinstance(cb, type):
                raise TypeError(f"{owner}: callbacks[{i}] is the class {cb.__name__}, not an "
                                f"instance. Create it: {cb.__name__}(...) with its arguments.")
            missing = [h for h in _HOOKS if not hasattr(cb, h)]
            if missing:
                raise TypeError(f"{owner}: callbacks[{i}] must be a Callback instance, got "
                                f"{short_repr(cb)} (no {', '.join(missing)}). Subclass "
                                f"jaxdl.train.Callback and override the hooks you need.")
        self.callbacks = list(callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def keyed(self) -> dict:
        """``{"EarlyStopping_0": cb, ...}``: a stable name per callback."""
        counts: dict[str, int] = {}
        keys = {}
        for cb in self.callbacks:
            name = type(cb).__name__
            keys[f"{name}_{counts.get(name, 0)}"] = cb
            counts[name] = counts.get(name, 0) + 1
        return keys

    def state_dicts(self) -> dict:
        """Every callback's non-empty ``state_dict``, by key (what checkpoints carry)."""
        states = {key: cb.state_dict() for key, cb in self.keyed().items()}
        return {key: state for key, state in states.items() if state}

    def load_state_dicts(self, states: dict) -> None:
        """Hand each callback its saved state back (after ``on_train_begin``)."""
        for key, cb in self.keyed().items():
            if key in states:
                cb.load_state_dict(states[key])

    def set_trainer(self, trainer: Any) -> None:
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs if logs is not None else {})

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs if logs is not None else {})

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs if logs is not None else {})

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_end(self, step: int, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(step, logs)

    def wants_batch_end(self) -> bool:
        """Whether a callback has an ``on_batch_end`` hook of its own: the engine then
        fetches the logs after every chunk for it; otherwise it fetches them once per
        epoch, and the device runs the chunks back to back.

        >>> from jaxdl import train
        >>> CallbackList([train.EarlyStopping()]).wants_batch_end()
        False
        >>> CallbackList([train.LambdaCallback(on_batch_end=print)]).wants_batch_end()
        True
        """
        return any(getattr(type(cb), "on_batch_end", None) is not Callback.on_batch_end
                   or "on_batch_end" in getattr(cb, "__dict__", {}) for cb in self.callbacks)


class EpochPlan(NamedTuple):
    """How an epoch is cut and run.

    Attributes:
        full: batches of ``batch_size`` examples.
        rest: examples in the last, smaller batch (0: none).
        batch_size: examples per full batch.
        report: steps between host syncs (progress and ``on_batch_end``).
        fused: whether those steps run in one ``lax.scan`` or one call each.
    """

    full: int
    rest: int
    batch_size: int
    report: int = 1
    fused: bool = False

    @property
    def steps(self) -> int:
        return self.full + (1 if self.rest else 0)


def plan_epoch(owner: str, n: int, batch_size: int, *, drop_remainder: bool = False,
               steps_per_execution: Any = "auto", scan_friendly: bool = True) -> EpochPlan:
    """Cut ``n`` examples into batches and choose how the steps run.

    The last ``n % batch_size`` examples form a smaller last batch, or are
    skipped with ``drop_remainder``; a remainder of exactly one example joins
    the batch before it (one batch of ``batch_size + 1``), since batch
    statistics (BatchNorm) need two examples.

    ``steps_per_execution``: ``"auto"`` runs about an eighth of an epoch per
    call (a length that divides the full batches when one is near, so one scan
    program serves the whole epoch), fused in a ``lax.scan`` unless the model
    is not ``scan_friendly`` on this backend (then one compiled call per step); ``"epoch"`` one call
    per epoch; an int ``k`` that many fused steps per call (``1``: unfused).
    The choice depends only on the model, the backend and the arguments,
    never on timings, so two runs with one seed stay bit-identical.

    >>> plan_epoch("fit", 100, 32)
    EpochPlan(full=3, rest=4, batch_size=32, report=1, fused=True)
    >>> plan_epoch("fit", 97, 32).full, plan_epoch("fit", 97, 32).rest
    (2, 33)
    """
    full, rest = divmod(n, batch_size)
    if drop_remainder:
        rest = 0
    elif rest == 1 and full > 0:
        full, rest = full - 1, batch_size + 1
    if full == 0:
        return EpochPlan(full, rest, batch_size)
    every = max(1, math.ceil(full / 8))
    if steps_per_execution == "auto":
        return EpochPlan(full, rest, batch_size, _even_chunk(full, every), scan_friendly)
    if steps_per_execution == "epoch":
        return EpochPlan(full, rest, batch_size, full, True)
    if _checks.is_int(steps_per_execution) and steps_per_execution > 0:
        k = min(int(steps_per_execution), full)
        return EpochPlan(full, rest, batch_size, every if k == 1 else k, k > 1)
    raise ValueError(f"{owner}: steps_per_execution must be a positive integer, 'auto' or "
                     f"'epoch', got {steps_per_execution!r}.")


def _even_chunk(full: int, every: int) -> int:
    """A chunk length near ``every`` that divides ``full``, so an epoch's fused chunks
    are all one program (a shorter leftover chunk would compile a second scan);
    ``every`` itself when no length within a factor of two divides ``full``.

    >>> _even_chunk(22, 3), _even_chunk(29, 4), _even_chunk(24, 3)
    (2, 4, 3)
    """
    near = sorted(range(max(1, (every + 1) // 2), 2 * every + 1),
                  key=lambda d: (abs(d - every), -d))
    return next((d for d in near if full % d == 0), every)


def host_value(value: Any) -> Any:
    """A log fetched from the device, to accumulate on the host in float64: a Python
    float for a scalar, a numpy array for a vector (one value per population member).

    >>> host_value(np.float32(0.5)), host_value(np.array([1, 2], np.float32)).dtype
    (0.5, dtype('float64'))
    """
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else array.astype(np.float64)


def _value_range(values: Any) -> str:
    values = np.asarray(values, np.float64).ravel()
    finite = values[np.isfinite(values)]
    text = f"{finite.min():.4f}..{finite.max():.4f}" if finite.size else "none finite"
    bad = values.size - finite.size
    return text + (f" ({bad} not finite)" if bad and finite.size else "")


def check_not_donated(owner: str, state: Any) -> None:
    """Raise if ``state``'s buffers were donated to a compiled step (they are deleted then)."""
    if any(getattr(a, "is_deleted", lambda: False)() for a in jax.tree.leaves(state)):
        raise ValueError(
            f"{owner}: trainer.state can no longer be used: its buffers were donated to a "
            f"compiled step, which reuses the memory of the state it is given (probably "
            f"step(trainer.state, batch) with a step from make_train_step, donate=True by "
            f"default). Keep the state the step returns (trainer.state, logs = "
            f"step(trainer.state, batch)), or build the step with donate=False.")


@functools.lru_cache(maxsize=2)  # the next epoch's, computed ahead, and the current one
def _epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The rows of epoch ``epoch`` in order (int32): :func:`jaxdl.data.epoch_permutation`,
    or ``0..n-1`` without ``shuffle``. Callers only read it (it is cached)."""
    order = _data.epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
    order = order.astype(np.int32)
    order.flags.writeable = False
    return order


def _chunks(order: np.ndarray, plan: EpochPlan):
    """``(stop, idx)`` per executed chunk: the steps of the epoch done after it, and
    its rows of ``order``, one row per step (the last, smaller batch is a chunk alone).

    >>> [(stop, i.tolist()) for stop, i in _chunks(np.arange(5), EpochPlan(2, 1, 2, 2))]
    [(2, [[0, 1], [2, 3]]), (3, [[4]])]
    """
    size = plan.batch_size
    for start in range(0, plan.full, plan.report):
        stop = min(start + plan.report, plan.full)
        yield stop, order[start * size:stop * size].reshape(stop - start, size)
    if plan.rest:
        start = plan.full * size
        yield plan.full + 1, order[start:start + plan.rest].reshape(1, plan.rest)


@jax.jit
def _stack(sums: list) -> dict:
    """Chunk sums stacked per name, so an epoch's logs cross to the host as one array
    per name (each array fetched alone costs a device round trip). Exact copies."""
    return jax.tree.map(lambda *a: jnp.stack(a), *sums)


class _RunningSums:
    """An epoch's chunk sums: dispatched ones wait on the device until :meth:`fetch`,
    which brings them over in one sync and adds them on the host in float64, in
    chunk order (so when they are fetched never changes the logs)."""

    def __init__(self):
        self.sums: dict[str, Any] = {}
        self.seen = 0  # examples whose sums were fetched
        self.done = 0  # steps of the epoch done when the last fetched chunk ended
        self._pending: list = []

    def push(self, done: int, examples: int, sums: Any) -> None:
        """Record a dispatched chunk: the steps done after it, its examples, its sums."""
        self._pending.append((done, examples, sums))

    def waiting(self) -> int:
        """Chunks dispatched but not fetched yet."""
        return len(self._pending)

    def fetch(self, keep: int = 0) -> dict:
        """Fetch every waiting chunk but the newest ``keep``; the running means."""
        ready = self._pending[:len(self._pending) - keep]
        self._pending = self._pending[len(ready):]
        if not ready:
            return self.means()
        device = [s for *_, s in ready]
        stacked = jax.device_get(device[0] if len(device) == 1 else _stack(device))
        for i, (done, examples, _) in enumerate(ready):  # in chunk order
            host = stacked if len(device) == 1 else {k: v[i] for k, v in stacked.items()}
            self.sums = {k: self.sums.get(k, 0.0) + host_value(host[k]) for k in host}
            self.seen, self.done = self.seen + examples, done
        return self.means()

    def means(self) -> dict:
        """The means over the examples fetched so far."""
        return {k: v / max(self.seen, 1) for k, v in self.sums.items()}


class EpochTrainer:
    """The host side of training: a state, the epoch loop, callbacks and checkpoints.

    Subclasses supply the state and the step (see the module docstring) and
    call :meth:`run_epochs`; they may override :meth:`describe` (what
    checkpoint metadata records besides the epoch and callback states),
    :meth:`restore_target` (the abstract state a checkpoint must match) and
    :meth:`restored` (what to read back from the metadata). A state that is
    not a ``TrainState`` names its weight and optimizer fields in
    :attr:`weight_fields` and :attr:`optimizer_fields` (a NamedTuple, so
    callbacks can ``_replace`` them).

    Callbacks see the running trainer as ``callback.trainer``: they may read
    or replace ``trainer.state``, set ``trainer.stop_training = True``, and
    change optimizer hyperparameters with ``optim.set_hyperparams``.

    Attributes:
        state: the training state (a pytree), ``None`` before it is built.
        epoch: completed epochs (the ``initial_epoch`` a resumed run starts at).
        history: the :class:`History` of the latest run.
        stop_training: set by a callback to end the run after this chunk or epoch.
        verbose: the running ``verbose`` level, for callbacks that print.
        callbacks: the :class:`CallbackList` of the latest run.
    """

    checkpoint_kind = "jaxdl.train.EpochTrainer"
    #: The state fields that are the model's weights: what
    #: ``EarlyStopping(restore_best_weights=True)`` copies and puts back.
    weight_fields: tuple[str, ...] = ("params", "model_state")
    #: The state fields holding optimizer states, each chained with
    #: ``optim.lr_multiplier()``: ``ReduceLROnPlateau`` lowers all of them together.
    optimizer_fields: tuple[str, ...] = ("opt_state",)

    def __init__(self):
        self.state: Any = None
        self.epoch = 0
        self.history: Optional[History] = None
        self.stop_training = False
        self.verbose = 0
        self.callbacks = CallbackList()
        self._resumed_callbacks: dict = {}  # states read by restore, for the next run

    # ------------------------------------------------------------------ the loop

    def run_epochs(self, runner: StepRunner, data: Any, n: int, *, epochs: int,
                   batch_size: int, seed: int = 0, shuffle: bool = True,
                   initial_epoch: int = 0, verbose: int = 1, callbacks: Any = (),
                   steps_per_execution: Any = "auto", drop_remainder: bool = False,
                   scan_friendly: bool = True, validate: Optional[Callable[[], dict]] = None,
                   log_names: Optional[Sequence[str]] = None, owner: str = "fit") -> History:
        """Run epochs ``initial_epoch .. epochs-1`` of ``runner``'s step over ``data``.

        Args:
            runner: the compiled step (:func:`~jaxdl.train.executors.compile_steps`).
            data: a pytree of device arrays whose first axis has ``n`` rows.
            n: the number of examples.
            validate: called after each epoch; its dict is logged with ``val_`` prefixes.
            scan_friendly: whether the step may run inside a ``lax.scan`` at full
                speed on this backend (see :func:`plan_epoch`).
            log_names: the order of the logged names (the step's logs come back
                from the device with sorted keys); names not listed follow.
                A step may log scalars or arrays (a population logs one value
                per member, shape ``(K,)``): the epoch means keep the shape, the
                History records the arrays, and the progress line shows their
                range (:meth:`display_logs`).
            Others: as in ``Trainer.fit``.

        Returns:
            The run's :class:`History` (also ``self.history``).
        """
        plan = self._plan(owner, n, epochs, batch_size, seed, initial_epoch,
                          steps_per_execution, drop_remainder, scan_friendly)
        callbacks = self._begin(CallbackList(callbacks, owner), initial_epoch, verbose)
        epoch = initial_epoch
        for epoch in range(initial_epoch, epochs):
            self.epoch = epoch
            callbacks.on_epoch_begin(epoch)
            order = _epoch_order(n, seed, epoch, shuffle)
            progress = EpochProgress(epoch, epochs, plan.steps, verbose)
            ahead = ((lambda e=epoch + 1: _epoch_order(n, seed, e, shuffle))
                     if epoch + 1 < epochs else None)
            logs = self._run_epoch(runner, data, order, plan, progress, ahead)
            logs = {k: logs[k] for k in (*(log_names or ()), *logs) if k in logs}
            if validate is not None:
                logs.update({f"val_{k}": v for k, v in validate().items()})
            progress.close(self.display_logs(logs))  # the epoch line, then callbacks' prints
            callbacks.on_epoch_end(epoch, logs)
            self.history.append(epoch, logs)
            if self.stop_training:
                break
        self.epoch = epoch + 1 if epochs > initial_epoch else initial_epoch
        callbacks.on_train_end()
        return self.history

    def _plan(self, owner, n, epochs, batch_size, seed, initial_epoch, steps_per_execution,
              drop_remainder, scan_friendly) -> EpochPlan:
        _checks.non_negative_int(owner, "seed", seed)
        _checks.non_negative_int(owner, "epochs", epochs)
        _checks.non_negative_int(owner, "initial_epoch", initial_epoch)
        batch_size = min(_checks.positive_int(owner, "batch_size", batch_size), n)
        return plan_epoch(owner, n, batch_size, drop_remainder=drop_remainder,
                          steps_per_execution=steps_per_execution, scan_friendly=scan_friendly)

    def _begin(self, callbacks: CallbackList, initial_epoch: int, verbose: int) -> CallbackList:
        """Start a run: fresh history, the callbacks begun and given their resumed states."""
        self.history = History()
        self.stop_training = False
        self.verbose = verbose
        self.callbacks = callbacks
        callbacks.set_trainer(self)
        callbacks.on_train_begin()
        if initial_epoch > 0 and self._resumed_callbacks:  # resuming after restore()
            try:
                callbacks.load_state_dicts(self._resumed_callbacks)
            except (ValueError, TypeError, KeyError) as e:
                raise checkpoint.CheckpointError(
                    f"{type(self).__name__}: the restored checkpoint's callback states do not "
                    f"fit these callbacks ({type(e).__name__}: {e}). Resume from another "
                    f"checkpoint, or start the callbacks afresh with initial_epoch=0.") from e
        self._resumed_callbacks = {}
        return callbacks

    def _run_epoch(self, runner: StepRunner, data: Any, order: np.ndarray, plan: EpochPlan,
                   progress: EpochProgress, ahead: Optional[Callable] = None) -> dict:
        """One epoch in the order ``order``; its logs (means over the examples seen).

        The chunks are dispatched back to back. Their sums are fetched after each
        chunk only when a callback has an ``on_batch_end`` hook (it must see the
        chunk done before the next one starts, to stop or change the state); a
        live progress bar fetches them one chunk behind, so the device never
        waits for the host; otherwise they are fetched once, when the epoch ends.
        Whichever way, the sums are added on the host in float64 in chunk order,
        so the logs do not depend on it. ``ahead`` (the next epoch's order) runs
        while the device still works on this epoch, not while it waits.
        """
        totals = _RunningSums()
        eager = self.callbacks.wants_batch_end()
        live = getattr(progress, "bar", None) is not None
        for stop, idx in _chunks(order, plan):
            self.state, sums = self._steps(runner, data, idx, plan.fused)
            totals.push(min(stop, plan.steps), idx.size, sums)
            if eager or (live and totals.waiting() > 1):
                running = totals.fetch(keep=0 if eager else 1)  # one sync
                if totals.done <= plan.full:
                    progress.update(totals.done, self.display_logs(running))
            if eager:
                self.callbacks.on_batch_end(totals.done, running)
                if self.stop_training:
                    break
        if ahead is not None and not self.stop_training:
            ahead()
        return totals.fetch()

    def display_logs(self, logs: dict) -> dict:
        """What the progress line shows of ``logs``: scalars as they are, and a vector
        log (one value per population member) as its range ``"min..max"``.

        >>> EpochTrainer().display_logs({"loss": 0.5, "val_loss": np.array([0.25, 0.75])})
        {'loss': 0.5, 'val_loss': '0.2500..0.7500'}
        """
        return {k: v if np.ndim(v) == 0 else _value_range(v) for k, v in logs.items()}

    def _steps(self, runner: StepRunner, data: Any, idx: np.ndarray, fused: bool):
        """Run the batches ``idx`` (one row each); return (state, device-side sums)."""
        if fused:
            return runner.chunk(self.state, data, idx)
        state = self.state
        sums, idx, i = runner.start(state, data, idx)  # rows uploaded once, counter on device
        for _ in range(len(idx)):  # one compiled call per step, no host sync in between
            state, sums, i = runner.step_at(state, sums, data, idx, i)
        return state, sums

    def evaluate_means(self, runner: EvalRunner, data: Any, n: int, batch_size: int,
                       names: Sequence[str], fused: bool) -> dict:
        """The loss and metric means of ``runner`` over device-resident ``data`` of ``n``
        rows, in padded batches of ``batch_size`` (one compiled scan if ``fused``, else one
        call per batch); each a Python float, or a float64 array for a vector log."""
        idx, w = padded_batches(n, batch_size)
        if fused:
            sums = runner.all(self.state, data, idx, w)
        else:
            sums = runner.zero_sums(self.state, data, idx[0], w[0])
            for ids, wb in zip(idx, w, strict=True):
                sums = runner.single(self.state, sums, data, ids, wb)
        host = jax.device_get(sums)  # one sync for the whole evaluation
        return {k: host_value(host[k]) / n for k in names}

    # ------------------------------------------------------------------ checkpoints

    def describe(self) -> dict:
        """Extra checkpoint metadata (JSON values); subclasses add what restore needs."""
        return {}

    def checkpoint_metadata(self, extra: Optional[dict] = None) -> dict:
        """What a checkpoint records besides the state: kind, epoch, callback states."""
        meta = {"kind": self.checkpoint_kind, "epoch": int(self.epoch), **self.describe(),
                "callbacks": self.callbacks.state_dicts()}
        meta.update(extra or {})
        return meta

    def save(self, path: str | os.PathLike, metadata: Optional[dict] = None) -> str:
        """Write the whole state and the epoch count to ``path``, atomically; the path."""
        self.require_state("save")
        return checkpoint.save(path, {"train_state": self.state},
                               metadata=self.checkpoint_metadata(metadata))

    def restore(self, path: str | os.PathLike) -> dict:
        """Load a state written by :meth:`save` or by ``ModelCheckpoint``.

        ``path`` is a checkpoint file or a ``ModelCheckpoint`` directory: its
        newest loadable, finite step (a corrupt newest file, or a diverged
        state with non-finite values, is skipped with a warning). Then
        ``fit(..., initial_epoch=trainer.epoch)`` continues as the
        uninterrupted run would have. Returns the checkpoint's metadata.

        Raises:
            ValueError: the checkpoint belongs to a model or optimizer of
                another structure (the message names the leaf and both shapes).
            jaxdl.checkpoint.CheckpointError: the file is corrupt or unsafe, or
                its metadata is malformed (the message names the field).
            FileNotFoundError: no such file, or a directory without checkpoints.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            _, tree, meta = checkpoint.restore_latest(
                path, target_for=lambda m: self._checked_target(path, m))
        else:
            meta = checkpoint.read_metadata(path)
            tree = checkpoint.restore(path, target=self._checked_target(path, meta))
        self.state = tree["train_state"]
        self.epoch = meta["epoch"]
        self._resumed_callbacks = meta.get("callbacks", {})
        self.restored(meta)
        return meta

    def _checked_target(self, path: str, meta: dict) -> dict:
        name = type(self).__name__
        if meta.get("kind") != self.checkpoint_kind:
            raise ValueError(f"{name}.restore: {path!r} was written by {meta.get('kind')!r}, "
                             f"not by {name}.save or ModelCheckpoint on a {name}; use "
                             f"checkpoint.restore for plain trees.")
        checkpoint.require(_checks.is_int(meta.get("epoch")) and meta["epoch"] >= 0, path,
                           "metadata.epoch", "an int >= 0 (the completed epochs)",
                           meta.get("epoch"))
        states = meta.get("callbacks", {})
        checkpoint.require(isinstance(states, dict) and all(
            isinstance(v, dict) and all(isinstance(f, str) and (
                x is None or isinstance(x, (int, float, str))) for f, x in v.items())
            for v in states.values()), path, "metadata.callbacks",
            "a JSON object of callback name -> {field: number, string or null}", states)
        return {"train_state": self.restore_target(path, meta)}

    def restore_target(self, path: str, meta: dict) -> Any:
        """The abstract state (``jax.eval_shape``) a checkpoint's arrays must match."""
        if self.state is None:
            raise ValueError(f"{type(self).__name__}.restore: build the state first, so the "
                             f"checkpoint's arrays can be checked against it.")
        return jax.eval_shape(lambda: self.state)

    def restored(self, meta: dict) -> None:
        """Read what :meth:`describe` wrote back from a restored checkpoint's metadata."""

    def require_state(self, owner: str) -> None:
        """Raise unless the state exists and was not donated away."""
        if self.state is None:
            raise ValueError(f"{type(self).__name__}.{owner}: the model has no weights yet; "
                             f"call fit first (or build(input_shape) for an untrained model).")
        check_not_donated(f"{type(self).__name__}.{owner}", self.state)

