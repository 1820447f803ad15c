"""``Trainer``: Keras-style ``fit`` / ``evaluate`` / ``predict`` over the pure core."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import data as _data
from jaxdl.train.progress import EpochProgress
from jaxdl.train.state import (LRMultiplierState, TrainState, _fused_functions, lr_multiplier,
                               resolve_loss)
from jaxdl.train import metrics as _metrics


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
        for ax, name in zip(axes[0], names):
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


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else None


def _num_examples(owner: str, x, y) -> int:
    xs = _as_tuple(x) or (x,)
    ys = _as_tuple(y) or (y,)
    lengths = {f"x[{i}]" if len(xs) > 1 else "x": len(a) for i, a in enumerate(xs)}
    lengths.update({f"y[{i}]" if len(ys) > 1 else "y": len(a) for i, a in enumerate(ys)})
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{owner}: x and y must have the same number of examples, got "
                         + ", ".join(f"{k}: {v}" for k, v in lengths.items()) + ".")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{owner}: the data are empty (0 examples).")
    return n


def _host(x):
    if isinstance(x, (tuple, list)):
        return tuple(np.asarray(a) for a in x)
    return np.asarray(x)


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


class Trainer:
    """Train, evaluate and predict with a model, Keras style.

    The trainer is a thin shell over the pure core: :class:`TrainState`,
    :func:`make_train_step` and :func:`make_eval_step`. ``fit`` copies the data
    to the device once and runs each epoch as a few compiled chunks of steps
    fused with ``lax.scan`` (``steps_per_execution``), so small models are not
    limited by Python dispatch. The last partial batch is trained on (one
    extra compilation for its shape, never one per epoch). The shuffling order
    of epoch ``e`` depends only on ``(seed, e)``.

    Args:
        model: a layer, e.g. ``nn.Sequential``.
        loss: a per-example loss function (``losses.sparse_categorical_crossentropy``)
            or its name.
        optimizer: any optax-compatible transformation; ``None`` means
            ``optim.adam(1e-3)``.
        metrics: names (``"accuracy"``, ``"top5"``, ``"mse"``, ``"mae"``) or
            functions ``(predictions, targets) -> per-example values``.
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
                 metrics: Sequence[Any] = ("accuracy",), regularizer: Optional[Callable] = None):
        if optimizer is None:
            from jaxdl import optim
            optimizer = optim.adam(1e-3)
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(f"Trainer: optimizer must be an optax GradientTransformation "
                            f"(jaxdl.optim or optax), got {optimizer!r}.")
        self.model = model
        self.loss = resolve_loss(loss)
        self.optimizer = optimizer
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
        elif shape != self.input_shape:
            raise ValueError(f"Trainer.{owner}: the model was built for inputs of shape "
                             f"(batch, {', '.join(map(str, self.input_shape))}) but x has shape "
                             f"{tuple(np.shape(x)) if not isinstance(x, tuple) else shape}. "
                             f"Reshape x, or create a new Trainer for the new shape.")

    @property
    def lr_multiplier(self) -> float:
        """The factor applied to the optimizer's learning rate (1.0 unless a callback lowered it)."""
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
        name = _metrics._loss_kind(self.loss)[0]
        if name != "sparse_categorical_crossentropy" or isinstance(y, tuple):
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

    # ------------------------------------------------------------------ fit

    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0,
            validation_data: Optional[tuple] = None, callbacks: Sequence[Any] = (),
            seed: int = 0, verbose: int = 1, initial_epoch: int = 0, shuffle: bool = True,
            steps_per_execution: Any = "auto") -> History:
        """Train for ``epochs`` epochs of mini-batches.

        Args:
            x: inputs, ``(n, ...)``; a tuple of arrays for a multi-input model.
            y: targets, ``(n, ...)``.
            epochs: the index of the last epoch to run (Keras semantics with
                ``initial_epoch``: epochs ``initial_epoch .. epochs-1`` run).
            batch_size: examples per step; the last batch of an epoch may be smaller.
            validation_split: fraction of the data, taken from the end before any
                shuffling, held out for validation.
            validation_data: ``(x_val, y_val)``; overrides ``validation_split``.
            callbacks: :class:`Callback` instances.
            seed: initializes the model (on the first fit) and fixes the shuffling
                and dropout streams; same seed, same run, bit for bit.
            verbose: 0 silent, 1 progress bar, 2 one line per epoch.
            initial_epoch: the epoch to start at, to resume an interrupted run.
            shuffle: reshuffle the training data every epoch.
            steps_per_execution: steps fused into one compiled call (a
                ``lax.scan``); ``1`` runs one call per step, ``"epoch"`` one call
                per epoch, and ``"auto"`` about 8 calls per epoch, or one per
                step for convolutional models on the CPU (faster there).

        Returns:
            A :class:`History`.
        """
        owner = "fit"
        x, y = _host(x), _host(y)
        n = _num_examples("Trainer.fit", x, y)
        batch_size = _positive_batch_size("Trainer.fit", batch_size)
        if not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"Trainer.fit: epochs must be an integer >= 0, got {epochs!r}.")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"Trainer.fit: validation_split must be in [0, 1), got "
                             f"{validation_split}.")
        if validation_data is None and validation_split > 0:
            n_val = int(math.floor(n * validation_split))
            if n_val == 0 or n_val == n:
                raise ValueError(f"Trainer.fit: validation_split={validation_split} of {n} "
                                 f"examples leaves {n_val} for validation; use a larger split or "
                                 f"pass validation_data.")
            validation_data = (_rows(x, slice(n - n_val, n)), _rows(y, slice(n - n_val, n)))
            x, y, n = _rows(x, slice(0, n - n_val)), _rows(y, slice(0, n - n_val)), n - n_val
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("Trainer.fit: validation_data must be a pair (x_val, y_val).")
            validation_data = (_host(validation_data[0]), _host(validation_data[1]))
            _num_examples("Trainer.fit (validation_data)", *validation_data)

        self._ensure_built(owner, x, seed)
        self._check_labels(owner, y)
        batch_size = min(batch_size, n)
        steps = math.ceil(n / batch_size)
        n_full, rest = divmod(n, batch_size)
        report, fused = self._execution_plan(steps_per_execution, n_full)

        X, Y = jax.device_put(x), jax.device_put(y)
        history = History()
        self.history = history
        self.stop_training = False
        self.verbose = verbose
        callbacks = self._callbacks = list(callbacks)
        for cb in callbacks:
            cb.set_trainer(self)
        for cb in callbacks:
            cb.on_train_begin({})
        if initial_epoch > 0 and self._resumed_callbacks:  # resuming after restore()
            for key, cb in _callback_keys(callbacks).items():
                if key in self._resumed_callbacks:
                    cb.load_state_dict(self._resumed_callbacks[key])
        self._resumed_callbacks = {}

        epoch = initial_epoch
        for epoch in range(initial_epoch, epochs):
            self.epoch = epoch
            for cb in callbacks:
                cb.on_epoch_begin(epoch, {})
            order = (_data.epoch_permutation(n, seed, epoch) if shuffle
                     else np.arange(n)).astype(np.int32)
            progress = EpochProgress(epoch, epochs, steps, verbose)
            sums: dict[str, float] = {}
            seen = done = 0
            plan = [(s, min(s + report, n_full)) for s in range(0, n_full, report)]
            for start, stop in plan:
                idx = order[start * batch_size:stop * batch_size].reshape(stop - start,
                                                                          batch_size)
                self.state, chunk_sums = self._train_steps(X, Y, idx, fused)
                done, seen = stop, seen + idx.size
                sums = self._accumulate(sums, chunk_sums)
                running = {k: v / seen for k, v in sums.items()}
                progress.update(done, running)
                for cb in callbacks:
                    cb.on_batch_end(done, running)
                if self.stop_training:
                    break
            if rest and not self.stop_training:
                idx = order[n_full * batch_size:].reshape(1, rest)
                self.state, chunk_sums = self._train_steps(X, Y, idx, fused)
                seen += rest
                sums = self._accumulate(sums, chunk_sums)
                for cb in callbacks:
                    cb.on_batch_end(steps, {k: v / seen for k, v in sums.items()})
            logs = {k: v / seen for k, v in sums.items()}
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            progress.close(logs)
            history.append(epoch, logs)
            if self.stop_training:
                break
        self.epoch = epoch + 1 if epochs > initial_epoch else initial_epoch
        for cb in callbacks:
            cb.on_train_end({})
        return history

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
        x, y = _host(x), _host(y)
        n = _num_examples("Trainer.evaluate", x, y)
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
            for ids, wb in zip(idx, w):
                sums = self._run.eval_one(self.state, sums, X, Y, ids, wb)
        sums = jax.device_get(sums)
        out = {k: float(sums[k]) / n for k in self._log_names}
        if verbose:
            from jaxdl.train.progress import format_logs
            print(f"evaluate{format_logs(out)}")
        return out

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Model outputs for ``x`` in inference mode, as a numpy array ``(n, ...)``."""
        x = _host(x)
        xs = _as_tuple(x) or (x,)
        n = len(xs[0])
        if n == 0:
            raise ValueError("Trainer.predict: the data are empty (0 examples).")
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

        ``path`` is a checkpoint file or a ``ModelCheckpoint`` directory (its
        latest step). Works on a fresh Trainer built with the same model and
        optimizer; then ``fit(..., initial_epoch=trainer.epoch)`` continues
        exactly as the uninterrupted run would have. Returns the checkpoint's
        metadata (``epoch``, ``input_shape``...).

        Raises:
            ValueError: the checkpoint belongs to a model or optimizer of
                another structure (the message names the leaf and both shapes).
            jaxdl.checkpoint.CheckpointError: the file is corrupt or unsafe.
        """
        from jaxdl import checkpoint
        path = os.fspath(path)
        if os.path.isdir(path):
            manager = checkpoint.CheckpointManager(path)
            step = manager.latest_step()
            if step is None:
                raise FileNotFoundError(f"Trainer.restore: no checkpoint in directory {path!r}.")
            path = manager.path(step)
        meta = checkpoint.read_metadata(path)
        if meta.get("kind") != "jaxdl.train.Trainer":
            raise ValueError(f"Trainer.restore: {path!r} was not written by Trainer.save or "
                             f"ModelCheckpoint; use checkpoint.restore for plain trees.")
        input_shape = _tuple_shape(meta["input_shape"])
        target = jax.eval_shape(lambda: TrainState.create(self.model, self._tx, input_shape,
                                                          jax.random.key(0)))
        tree = checkpoint.restore(path, target={"train_state": target})
        self.state = tree["train_state"]
        self.input_shape = input_shape
        self.epoch = int(meta["epoch"])
        self._resumed_callbacks = meta.get("callbacks", {})
        return meta

    def _require_state(self, owner: str) -> None:
        if self.state is None:
            raise ValueError(f"Trainer.{owner}: the model has no weights yet; call fit first "
                             f"(or build(input_shape) for an untrained model).")
