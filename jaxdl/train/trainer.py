"""``Trainer``: Keras-style ``fit`` / ``evaluate`` / ``predict`` over the pure core."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks
from jaxdl import data as _data
from jaxdl import losses as _losses
from jaxdl.train import metrics as _metrics
from jaxdl.train.progress import EpochProgress
from jaxdl.train.state import (
    LRMultiplierState,
    TrainState,
    _fused_functions,
    lr_multiplier,
    resolve_loss,
)


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
        """Record the logs of ``epoch`` (called by ``fit`` at the end of each epoch)."""
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


def _num_examples(owner: str, x, y) -> int:
    xs = x if isinstance(x, tuple) else (x,)
    ys = y if isinstance(y, tuple) else (y,)
    lengths = {f"x[{i}]" if len(xs) > 1 else "x": len(a) for i, a in enumerate(xs)}
    lengths.update({f"y[{i}]" if len(ys) > 1 else "y": len(a) for i, a in enumerate(ys)})
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{owner}: x and y must have the same number of examples, got "
                         + ", ".join(f"{k}: {v}" for k, v in lengths.items())
                         + ". Only a tuple (x1, x2) means several inputs; a list is read as "
                           "the rows of one array.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{owner}: the data are empty (0 examples).")
    return n


def _host_array(owner: str, name: str, a) -> np.ndarray:
    try:
        out = np.asarray(a)
    except ValueError as e:  # a ragged nested list
        raise ValueError(f"{owner}: {name} must be an array (n, ...) or a rectangular nested "
                         f"list of rows, got a {type(a).__name__} numpy cannot make into one "
                         f"array ({e}). Give every row the same shape, or pass a tuple of "
                         f"arrays for a multi-input model.") from None
    if out.dtype == object or out.ndim == 0:
        raise ValueError(f"{owner}: {name} must be a numeric array (n, ...) or a rectangular "
                         f"nested list of numbers, got {type(a).__name__} {_short(a)}. Convert "
                         f"it with np.asarray(..., dtype=np.float32).")
    return out


def _short(a) -> str:
    text = repr(a)
    return text if len(text) <= 60 else text[:57] + "..."


def _host(owner: str, name: str, x):
    """Host numpy data: a tuple means several inputs; anything else (an array, a list of
    rows) becomes one array."""
    if isinstance(x, tuple):
        return tuple(_host_array(owner, f"{name}[{i}]", a) for i, a in enumerate(x))
    return _host_array(owner, name, x)


def _check_finite(owner: str, name: str, x) -> None:
    """Raise if a floating array of ``x`` holds NaN or inf, naming it and the first bad index."""
    for label, a in (((f"{name}[{i}]", a) for i, a in enumerate(x)) if isinstance(x, tuple)
                     else ((name, x),)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            continue
        bad = ~np.isfinite(a)
        if not bad.any():
            continue
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {first[0]}" + (f", position {first[1:]}" if len(first) > 1 else "")
        raise ValueError(f"{owner}: {label} holds a non-finite value ({a[first]}) at {where} "
                         f"({int(bad.sum())} non-finite values in all). NaN or inf in the data "
                         f"makes the loss or the weights NaN; drop those rows or impute the "
                         f"values (e.g. np.nan_to_num) first.")


def _input_shape(x):
    if isinstance(x, tuple):
        return tuple(tuple(a.shape[1:]) for a in x)
    return tuple(x.shape[1:])


def _json_shape(shape):
    if shape is None:
        return None
    return [_json_shape(s) if isinstance(s, tuple) else s for s in shape]


def _tuple_shape(shape):
    return tuple(_tuple_shape(s) if isinstance(s, list) else s for s in shape)


def _callback_keys(callbacks) -> dict:
    """``{"EarlyStopping_0": cb, ...}``: a stable name per callback (class and per-class rank)."""
    counts: dict[str, int] = {}
    keys = {}
    for cb in callbacks:
        name = type(cb).__name__
        keys[f"{name}_{counts.get(name, 0)}"] = cb
        counts[name] = counts.get(name, 0) + 1
    return keys


def _has_convolution(layer) -> bool:
    """Whether ``layer`` or any layer inside it is a convolution."""
    from jaxdl.nn.conv import Conv1D, Conv2D, Conv2DTranspose

    if isinstance(layer, (Conv1D, Conv2D, Conv2DTranspose)):
        return True
    children = []
    if dataclasses.is_dataclass(layer):
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            children.extend(value if isinstance(value, (tuple, list)) else [value])
    return any(_has_convolution(c) for c in children if hasattr(c, "apply"))


def _rows(tree, index):
    return jax.tree.map(lambda a: a[index], tree)


def _positive_batch_size(owner: str, batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size <= 0:
        raise ValueError(f"{owner}: batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


class _EpochPlan(NamedTuple):
    """How an epoch is cut: ``full`` batches of ``batch_size``, then one of ``rest`` (0: none);
    ``report`` steps between host syncs, run ``fused`` in one lax.scan or one call per step."""

    full: int
    rest: int
    batch_size: int
    report: int = 1
    fused: bool = False

    @property
    def steps(self) -> int:
        return self.full + (1 if self.rest else 0)


def _batch_plan(n: int, batch_size: int, drop_remainder: bool) -> _EpochPlan:
    """Full batches and the last one: dropped, or trained on; a last batch of one example is
    folded into the batch before it (one batch of ``batch_size + 1``), since batch statistics
    (BatchNorm) need two examples."""
    full, rest = divmod(n, batch_size)
    if drop_remainder:
        return _EpochPlan(full, 0, batch_size)
    if rest == 1 and full > 0:
        return _EpochPlan(full - 1, batch_size + 1, batch_size)
    return _EpochPlan(full, rest, batch_size)


_HOOKS = ("set_trainer", "on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end",
          "on_train_end", "state_dict", "load_state_dict")


def _callback_list(owner: str, callbacks) -> list:
    """``callbacks`` as a list: None gives [], a single callback [it]; a class raises."""
    if callbacks is None:
        return []
    if isinstance(callbacks, type) or hasattr(callbacks, "on_epoch_end"):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{owner}: callbacks must be a list of Callback instances, got "
                        f"{_short(callbacks)}. Write callbacks=[train.EarlyStopping(), ...].")
    for i, cb in enumerate(callbacks):
        if isinstance(cb, type):
            raise TypeError(f"{owner}: callbacks[{i}] is the class {cb.__name__}, not an "
                            f"instance. Create it: {cb.__name__}(...) with its arguments.")
        missing = [h for h in _HOOKS if not hasattr(cb, h)]
        if missing:
            raise TypeError(f"{owner}: callbacks[{i}] must be a Callback instance, got "
                            f"{_short(cb)} (no {', '.join(missing)}). Subclass "
                            f"jaxdl.train.Callback and override the hooks you need.")
    return list(callbacks)


def _check_not_donated(owner: str, state) -> None:
    """Raise if ``state``'s buffers were donated to a compiled step (they are deleted then)."""
    if any(getattr(a, "is_deleted", lambda: False)() for a in jax.tree.leaves(state)):
        raise ValueError(
            f"{owner}: trainer.state can no longer be used: its buffers were donated to a "
            f"compiled step, which reuses the memory of the state it is given (probably "
            f"step(trainer.state, batch) with a step from make_train_step, donate=True by "
            f"default). Keep the state the step returns (trainer.state, logs = "
            f"step(trainer.state, batch)), or build the step with donate=False.")


class Trainer:
    """Train, evaluate and predict with a model, Keras style.

    The trainer is a thin shell over the pure core: :class:`TrainState`,
    :func:`make_train_step` and :func:`make_eval_step`. ``fit`` copies the data
    to the device once and runs each epoch as a few compiled chunks of steps
    fused with ``lax.scan`` (``steps_per_execution``), so small models are not
    limited by Python dispatch. The last partial batch is trained on (one
    extra compilation for its shape, never one per epoch), unless
    ``drop_remainder``; a last batch of one example joins the batch before it.
    The shuffling order of epoch ``e`` depends only on ``(seed, e)``.

    Args:
        model: a layer, e.g. ``nn.Sequential``.
        loss: a per-example loss function (``losses.sparse_categorical_crossentropy``)
            or its name.
        optimizer: any optax-compatible transformation; ``None`` means
            ``optim.adam(1e-3)``.
        metrics: names (``"accuracy"``, ``"binary_accuracy"``, ``"top5"``,
            ``"mse"``, ``"mae"``...) or functions ``(predictions, targets) ->
            per-example values``. ``"accuracy"`` is the accuracy of the task the
            loss declares (:func:`jaxdl.losses.kind`: a loss object such as
            ``losses.BinaryCrossentropy(from_logits=False)``, a plain jaxdl loss
            or a ``functools.partial`` of one); with a loss of unknown task (a
            lambda) name the accuracy instead. The default ``None`` logs
            ``"accuracy"`` when the loss declares a classification task and no
            metric otherwise (regression, autoencoders, unknown losses).
        regularizer: ``penalty(params) -> scalar`` added to the loss, e.g.
            ``regularizers.l2(1e-4)``.

    Example:
        >>> from jaxdl import nn, losses, optim, train, data
        >>> (x, y), _ = data.load_digits()
        >>> model = nn.Sequential([nn.Flatten(), nn.Dense(64, activation="relu"), nn.Dense(10)])
        >>> trainer = train.Trainer(model, losses.sparse_categorical_crossentropy,
        ...                         optim.adam(1e-3), metrics=("accuracy",))
        >>> history = trainer.fit(x, y, epochs=2, batch_size=32, verbose=0)
    """

    def __init__(self, model: Any, loss: Any = "sparse_categorical_crossentropy",
                 optimizer: Optional[optax.GradientTransformation] = None,
                 metrics: Optional[Sequence[Any]] = None,
                 regularizer: Optional[Callable] = None):
        if model is None or not (hasattr(model, "init") and hasattr(model, "apply")):
            raise TypeError(f"Trainer: model must be a layer with init(key, input_shape) and "
                            f"apply(params, state, x), e.g. nn.Sequential([...]); got "
                            f"{_short(model)}.")
        if optimizer is None:
            from jaxdl import optim
            optimizer = optim.adam(1e-3)
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(f"Trainer: optimizer must be an optax GradientTransformation "
                            f"(jaxdl.optim or optax), got {optimizer!r}.")
        self.model = model
        self.loss = resolve_loss(loss)
        self.optimizer = optimizer
        if metrics is None:
            metrics = _metrics.default_metrics(self.loss)
        if isinstance(metrics, str) or callable(metrics):
            metrics = (metrics,)
        self.metrics = tuple(metrics)
        # Fails early on unknown names; fixes the order of the logs (loss first, like Keras).
        self._log_names = ["loss"] + list(_metrics.resolve(self.metrics, self.loss))
        self.regularizer = regularizer
        # The optimizer the state really uses: the user's, then a learning-rate multiplier.
        self._tx = optax.chain(optimizer, lr_multiplier())
        self._run = _fused_functions(model, self.loss, self._tx, self.metrics, regularizer)
        self.state: Optional[TrainState] = None
        self._callbacks: list = []
        self._resumed_callbacks: dict = {}  # callback states read by restore, for the next fit
        self.input_shape = None
        self._logits_checked = False
        self.stop_training = False
        self.verbose = 0
        self.epoch = 0

    # ------------------------------------------------------------------ state

    def build(self, input_shape, seed: int = 0) -> TrainState:
        """Create the train state for inputs of ``input_shape`` (no batch axis)."""
        self.state = TrainState.create(self.model, self._tx, input_shape, jax.random.key(seed))
        self.input_shape = input_shape
        return self.state

    def _ensure_built(self, owner: str, x, seed: int) -> None:
        shape = _input_shape(x)
        if self.state is None:
            self.build(shape, seed)
            return
        _check_not_donated(f"Trainer.{owner}", self.state)
        if shape != self.input_shape:
            raise ValueError(f"Trainer.{owner}: the model was built for inputs of shape "
                             f"(batch, {', '.join(map(str, self.input_shape))}) but x has shape "
                             f"{tuple(np.shape(x)) if not isinstance(x, tuple) else shape}. "
                             f"Reshape x, or create a new Trainer for the new shape.")

    @property
    def lr_multiplier(self) -> float:
        """The factor applied to the optimizer's learning rate (1.0 unless a callback lowered
        it)."""
        if self.state is None:
            return 1.0
        return float(self._multiplier_state().multiplier)

    @lr_multiplier.setter
    def lr_multiplier(self, value: float) -> None:
        if self.state is None:
            raise ValueError("Trainer.lr_multiplier: the trainer has no state yet; call fit or "
                             "build first.")
        user_state, _ = self.state.opt_state
        new = LRMultiplierState(multiplier=jnp.asarray(value, jnp.float32))
        self.state = self.state._replace(opt_state=(user_state, new))

    def _multiplier_state(self) -> LRMultiplierState:
        return self.state.opt_state[1]

    @property
    def params(self):
        """The model's current trainable parameters."""
        return None if self.state is None else self.state.params

    # ------------------------------------------------------------------ data checks

    def _check_labels(self, owner: str, y) -> None:
        if _losses.kind(self.loss).task != "sparse_categorical" or isinstance(y, tuple):
            return
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"Trainer.{owner}: sparse_categorical_crossentropy needs integer "
                            f"class ids in y, got dtype {y.dtype}. Use y.astype(int), or "
                            f"categorical_crossentropy for one-hot targets.")
        classes = jax.eval_shape(
            lambda p, s, v: self.model.apply(p, s, v)[0], self.state.params,
            self.state.model_state,
            jax.tree.map(lambda a: jax.ShapeDtypeStruct((1,) + a, jnp.float32),
                         self.input_shape, is_leaf=lambda a: isinstance(a, tuple) and all(
                             isinstance(d, int) for d in a))).shape[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= classes:
            raise ValueError(f"Trainer.{owner}: labels must be class ids in [0, {classes - 1}] "
                             f"for a model with {classes} outputs, got labels in [{lo}, {hi}]. "
                             f"Check the labels, or give the last layer more units.")

    def _check_logits(self, x) -> None:
        """On the first fit, warn if a loss taking logits gets probability-like outputs.

        :func:`jaxdl.losses.check_loss_logits` looks at the model's outputs for
        the first 8 examples (inside the compiled step the values are unknown).
        """
        if self._logits_checked:
            return
        self._logits_checked = True
        predictions, _ = self.model.apply(self.state.params, self.state.model_state,
                                          _rows(x, slice(0, 8)))
        _losses.check_loss_logits(self.loss, predictions)

    # ------------------------------------------------------------------ fit

    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0,
            validation_data: Optional[tuple] = None, callbacks: Sequence[Any] = (),
            seed: int = 0, verbose: int = 1, initial_epoch: int = 0, shuffle: bool = True,
            steps_per_execution: Any = "auto", drop_remainder: bool = False) -> History:
        """Train for ``epochs`` epochs of mini-batches.

        Args:
            x: inputs, ``(n, ...)``: an array, or a rectangular nested list of rows
                (converted with ``np.asarray``); a tuple of arrays for a
                multi-input model (only a tuple means several inputs).
            y: targets, ``(n, ...)``, an array or a nested list of rows.
            epochs: the index of the last epoch to run (Keras semantics with
                ``initial_epoch``: epochs ``initial_epoch .. epochs-1`` run).
            batch_size: examples per step.
            validation_split: fraction of the data, taken from the end before any
                shuffling, held out for validation.
            validation_data: ``(x_val, y_val)``; overrides ``validation_split``.
            callbacks: :class:`Callback` instances (a list, or a single one).
            seed: a non-negative integer; initializes the model (on the first
                fit) and fixes the shuffling and dropout streams; same seed,
                same run, bit for bit.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch.
            initial_epoch: the epoch to start at, to resume an interrupted run.
            shuffle: reshuffle the training data every epoch.
            steps_per_execution: steps fused into one compiled call (a
                ``lax.scan``); ``1`` runs one call per step, ``"epoch"`` one call
                per epoch, and ``"auto"`` about 8 calls per epoch, or one per
                step for convolutional models on the CPU (faster there).
            drop_remainder: skip the last ``n % batch_size`` examples of each
                (shuffled) epoch. With the default ``False`` they are trained
                on as a smaller last batch, except a remainder of exactly one
                example, which joins the batch before it (one batch of
                ``batch_size + 1``): batch statistics such as BatchNorm's need
                at least two examples. Every example counts once in the logs.

        Returns:
            A :class:`History`.

        Raises:
            ValueError: mismatched or empty data, NaN or inf in a floating
                ``x``/``y`` (the message names the array and the first bad
                row), bad arguments, or a state donated to a compiled step.
            TypeError: a ``seed`` that is not an integer, a callback class
                instead of an instance.
        """
        seed = _checks.non_negative_int("Trainer.fit", "seed", seed)
        callbacks = _callback_list("Trainer.fit", callbacks)
        x, y, n, validation_data = self._fit_data(x, y, validation_split, validation_data)
        batch_size = min(_positive_batch_size("Trainer.fit", batch_size), n)
        if not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"Trainer.fit: epochs must be an integer >= 0, got {epochs!r}.")
        self._ensure_built("fit", x, seed)
        self._check_labels("fit", y)
        self._check_logits(x)
        plan = _batch_plan(n, batch_size, drop_remainder)
        report, fused = self._execution_plan(steps_per_execution, plan.full)
        plan = plan._replace(report=report, fused=fused)
        X, Y = jax.device_put(x), jax.device_put(y)
        history = self.history = History()
        self.stop_training = False
        self.verbose = verbose
        self._start_callbacks(callbacks, initial_epoch)
        epoch = initial_epoch
        for epoch in range(initial_epoch, epochs):
            self.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            order = (_data.epoch_permutation(n, seed, epoch) if shuffle
                     else np.arange(n)).astype(np.int32)
            progress = EpochProgress(epoch, epochs, plan.steps, verbose)
            logs = self._train_epoch(X, Y, order, plan, progress)
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            progress.close(logs)  # the epoch line first, then what callbacks print
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            history.append(epoch, logs)
            if self.stop_training:
                break
        self.epoch = epoch + 1 if epochs > initial_epoch else initial_epoch
        for cb in callbacks:
            cb.on_train_end({})
        return history

    def _fit_data(self, x, y, validation_split, validation_data):
        """Checked host copies: ``(x, y, n, validation_data or None)``."""
        owner = "Trainer.fit"
        x, y = _host(owner, "x", x), _host(owner, "y", y)
        n = _num_examples(owner, x, y)
        _check_finite(owner, "x", x)
        _check_finite(owner, "y", y)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"{owner}: validation_split must be in [0, 1), got "
                             f"{validation_split}.")
        if validation_data is None and validation_split > 0:
            n_val = int(math.floor(n * validation_split))
            if n_val == 0 or n_val == n:
                raise ValueError(f"{owner}: validation_split={validation_split} of {n} "
                                 f"examples leaves {n_val} for validation; use a larger split or "
                                 f"pass validation_data.")
            validation_data = (_rows(x, slice(n - n_val, n)), _rows(y, slice(n - n_val, n)))
            x, y, n = _rows(x, slice(0, n - n_val)), _rows(y, slice(0, n - n_val)), n - n_val
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"{owner}: validation_data must be a pair (x_val, y_val), got "
                                 f"{_short(validation_data)}.")
            validation_data = (_host(owner, "validation x", validation_data[0]),
                               _host(owner, "validation y", validation_data[1]))
            _num_examples(f"{owner} (validation_data)", *validation_data)
            _check_finite(owner, "validation x", validation_data[0])
            _check_finite(owner, "validation y", validation_data[1])
        return x, y, n, validation_data

    def _start_callbacks(self, callbacks: list, initial_epoch: int) -> None:
        """Hand the trainer to the callbacks, begin them, and give back resumed states."""
        self._callbacks = callbacks
        for cb in callbacks:
            cb.set_trainer(self)
        for cb in callbacks:
            cb.on_train_begin({})
        if initial_epoch > 0 and self._resumed_callbacks:  # resuming after restore()
            for key, cb in _callback_keys(callbacks).items():
                if key in self._resumed_callbacks:
                    cb.load_state_dict(self._resumed_callbacks[key])
        self._resumed_callbacks = {}

    def _train_epoch(self, X, Y, order, plan: _EpochPlan, progress: EpochProgress) -> dict:
        """Train one epoch in the order ``order``; return its logs (means over seen examples)."""
        sums: dict[str, float] = {}
        seen = 0
        size = plan.batch_size
        for start in range(0, plan.full, plan.report):
            stop = min(start + plan.report, plan.full)
            idx = order[start * size:stop * size].reshape(stop - start, size)
            self.state, chunk_sums = self._train_steps(X, Y, idx, plan.fused)
            seen += idx.size
            sums = self._accumulate(sums, chunk_sums)
            running = {k: v / seen for k, v in sums.items()}
            progress.update(stop, running)
            for cb in self._callbacks:
                cb.on_batch_end(stop, running)
            if self.stop_training:
                break
        if plan.rest and not self.stop_training:
            idx = order[plan.full * size:plan.full * size + plan.rest].reshape(1, plan.rest)
            self.state, chunk_sums = self._train_steps(X, Y, idx, plan.fused)
            seen += plan.rest
            sums = self._accumulate(sums, chunk_sums)
            for cb in self._callbacks:
                cb.on_batch_end(plan.steps, {k: v / seen for k, v in sums.items()})
        return {k: v / max(seen, 1) for k, v in sums.items()}

    def _zeros(self) -> dict:
        return {k: jnp.zeros((), jnp.float32) for k in self._log_names}

    def _train_steps(self, X, Y, idx, fused: bool):
        """Train on the batches ``idx`` (one row each); return (state, device-side sums)."""
        if fused:
            return self._run.train_chunk(self.state, X, Y, idx)
        state, sums = self.state, self._zeros()
        for ids in idx:  # one compiled call per step, no host sync in between
            state, sums = self._run.train_one(state, sums, X, Y, ids)
        return state, sums

    def _accumulate(self, sums: dict, chunk_sums: dict) -> dict:
        host = jax.device_get(chunk_sums)  # one sync per executed chunk
        return {k: sums.get(k, 0.0) + float(host[k]) for k in self._log_names}

    def _execution_plan(self, steps_per_execution, n_full: int) -> tuple[int, bool]:
        """(steps between host syncs, whether those steps run fused in one lax.scan).

        ``"auto"`` fuses about an eighth of an epoch per call, except on the CPU
        for models with convolutions: XLA's CPU convolutions run several times
        slower inside a loop body (jax-ml/jax#12868; 2.6 vs 19.8 steps/s for
        the benchmark CNN), so those run one compiled call per step. The
        choice depends only on the model and the backend, never on timings, so
        two runs with the same seed take the same path and stay bit-identical.
        """
        if n_full == 0:
            return 1, False
        every = max(1, math.ceil(n_full / 8))
        if steps_per_execution == "auto":
            if jax.default_backend() == "cpu" and _has_convolution(self.model):
                return every, False
            return every, True
        if steps_per_execution == "epoch":
            return n_full, True
        if isinstance(steps_per_execution, numbers.Integral) and steps_per_execution > 0:
            k = min(int(steps_per_execution), n_full)
            return (every, False) if k == 1 else (k, True)
        raise ValueError(f"Trainer.fit: steps_per_execution must be a positive integer, 'auto' "
                         f"or 'epoch', got {steps_per_execution!r}.")

    # ------------------------------------------------------------------ evaluate / predict

    def _padded_plan(self, n: int, batch_size: int):
        steps = math.ceil(n / batch_size)
        idx = np.arange(steps * batch_size, dtype=np.int32)
        weights = (idx < n).astype(np.float32)
        idx = np.minimum(idx, n - 1)  # padding rows repeat the last example, weight 0
        return idx.reshape(steps, batch_size), weights.reshape(steps, batch_size)

    def evaluate(self, x, y, batch_size: int = 256, verbose: int = 0) -> dict[str, float]:
        """Loss and metrics over ``(x, y)`` in inference mode, as Python floats.

        All batches run in one compiled call; the last batch is padded and the
        padding masked out, so every example counts once.
        """
        x, y = _host("Trainer.evaluate", "x", x), _host("Trainer.evaluate", "y", y)
        n = _num_examples("Trainer.evaluate", x, y)
        _check_finite("Trainer.evaluate", "x", x)
        _check_finite("Trainer.evaluate", "y", y)
        batch_size = min(_positive_batch_size("Trainer.evaluate", batch_size), n)
        self._require_state("evaluate")
        self._ensure_built("evaluate", x, 0)
        self._check_labels("evaluate", y)
        idx, w = self._padded_plan(n, batch_size)
        X, Y = jax.device_put(x), jax.device_put(y)
        if self._fuse_inference():
            sums = self._run.eval_all(self.state, X, Y, idx, w)
        else:
            sums = self._zeros()
            for ids, wb in zip(idx, w, strict=True):
                sums = self._run.eval_one(self.state, sums, X, Y, ids, wb)
        sums = jax.device_get(sums)
        out = {k: float(sums[k]) / n for k in self._log_names}
        if verbose:
            from jaxdl.train.progress import format_logs
            print(f"evaluate{format_logs(out)}")
        return out

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Model outputs for ``x`` in inference mode, as a numpy array ``(n, ...)``."""
        x = _host("Trainer.predict", "x", x)
        n = len(x[0] if isinstance(x, tuple) else x)
        if n == 0:
            raise ValueError("Trainer.predict: the data are empty (0 examples).")
        _check_finite("Trainer.predict", "x", x)
        batch_size = min(_positive_batch_size("Trainer.predict", batch_size), n)
        self._require_state("predict")
        self._ensure_built("predict", x, 0)
        idx, _ = self._padded_plan(n, batch_size)
        X = jax.device_put(x)
        if self._fuse_inference():
            out = self._run.predict_all(self.state, X, idx)
            return jax.tree.map(lambda a: np.asarray(a).reshape((-1,) + a.shape[2:])[:n], out)
        parts = [self._run.predict_one(self.state, X, ids) for ids in idx]
        return jax.tree.map(lambda *a: np.concatenate([np.asarray(p) for p in a])[:n], *parts)

    def _fuse_inference(self) -> bool:
        """Fuse evaluation batches in one lax.scan unless loops slow this model down."""
        return not (jax.default_backend() == "cpu" and _has_convolution(self.model))

    # ------------------------------------------------------------------ save / restore

    def save(self, path: str | os.PathLike, metadata: Optional[dict] = None) -> str:
        """Write the whole train state (params, model state, optimizer state, key,
        step) and the epoch count to ``path``, atomically. Returns the path."""
        from jaxdl import checkpoint
        self._require_state("save")
        return checkpoint.save(path, {"train_state": self.state},
                               metadata=self._checkpoint_metadata(metadata))

    def _checkpoint_metadata(self, extra: Optional[dict] = None) -> dict:
        meta = {"kind": "jaxdl.train.Trainer", "epoch": int(self.epoch),
                "input_shape": _json_shape(self.input_shape), "model": type(self.model).__name__,
                "callbacks": {key: cb.state_dict()
                              for key, cb in _callback_keys(self._callbacks).items()
                              if cb.state_dict()}}
        meta.update(extra or {})
        return meta

    def restore(self, path: str | os.PathLike) -> dict:
        """Load a state written by :meth:`save` or by ``ModelCheckpoint``.

        ``path`` is a checkpoint file or a ``ModelCheckpoint`` directory: its
        newest loadable, finite step (a corrupt newest file, or a diverged
        state with non-finite values, is skipped with a warning). Works on a
        fresh Trainer built with the same model and optimizer; then
        ``fit(..., initial_epoch=trainer.epoch)`` continues exactly as the
        uninterrupted run would have. Returns the checkpoint's metadata
        (``epoch``, ``input_shape``...).

        Raises:
            ValueError: the checkpoint belongs to a model or optimizer of
                another structure (the message names the leaf and both shapes).
            jaxdl.checkpoint.CheckpointError: the file is corrupt or unsafe, or
                its metadata is malformed (the message names the field).
            FileNotFoundError: no such file, or a directory without checkpoints.
        """
        from jaxdl import checkpoint
        path = os.fspath(path)
        if os.path.isdir(path):
            _, tree, meta = checkpoint.restore_latest(
                path, target_for=lambda m: self._restore_target(path, m))
        else:
            meta = checkpoint.read_metadata(path)
            tree = checkpoint.restore(path, target=self._restore_target(path, meta))
        self.state = tree["train_state"]
        self.input_shape = _tuple_shape(meta["input_shape"])
        self.epoch = meta["epoch"]
        self._resumed_callbacks = meta.get("callbacks", {})
        return meta

    def _restore_target(self, path: str, meta: dict) -> dict:
        """Check a Trainer checkpoint's metadata; the abstract tree its arrays must match."""
        from jaxdl import checkpoint
        if meta.get("kind") != "jaxdl.train.Trainer":
            raise ValueError(f"Trainer.restore: {path!r} was not written by Trainer.save or "
                             f"ModelCheckpoint; use checkpoint.restore for plain trees.")
        checkpoint.require(checkpoint.is_int(meta.get("epoch")), path, "metadata.epoch",
                           "an int >= 0 (the completed epochs)", meta.get("epoch"))

        def is_shape(s, depth=0):
            return isinstance(s, list) and len(s) <= 64 and depth < 4 and all(
                checkpoint.is_int(d) or is_shape(d, depth + 1) for d in s)

        checkpoint.require(is_shape(meta.get("input_shape")), path, "metadata.input_shape",
                           "a list of ints >= 0 (lists of them for several inputs)",
                           meta.get("input_shape"))
        states = meta.get("callbacks", {})
        checkpoint.require(isinstance(states, dict) and all(
            isinstance(v, dict) and all(isinstance(f, str) and (
                x is None or isinstance(x, (int, float, str))) for f, x in v.items())
            for v in states.values()), path, "metadata.callbacks",
            "a JSON object of callback name -> {field: number, string or null}", states)
        input_shape = _tuple_shape(meta["input_shape"])
        return {"train_state": jax.eval_shape(
            lambda: TrainState.create(self.model, self._tx, input_shape, jax.random.key(0)))}

    def _require_state(self, owner: str) -> None:
        if self.state is None:
            raise ValueError(f"Trainer.{owner}: the model has no weights yet; call fit first "
                             f"(or build(input_shape) for an untrained model).")
        _check_not_donated(f"Trainer.{owner}", self.state)
