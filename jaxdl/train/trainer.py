"""``Trainer``: Keras-style ``fit`` / ``evaluate`` / ``predict`` over the pure core."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks, checkpoint, compilation, optim
from jaxdl import losses as _losses
from jaxdl.train import executors, inputs, precision, sharding
from jaxdl.train import metrics as _metrics
from jaxdl.train.inputs import short_repr
from jaxdl.train.loop import EpochTrainer, History
from jaxdl.train.progress import format_logs
from jaxdl.train.state import TrainState, make_eval_step, make_train_step, resolve_loss

__all__ = ["Trainer", "History"]


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


def _rows(tree, index):
    return jax.tree.map(lambda a: a[index], tree)


def _load_source(owner: str, source: Any) -> tuple[Any, Any]:
    """``(params, model_state or None)`` from a tree, a pair or a checkpoint path."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            _, tree, _ = checkpoint.restore_latest(path)
        else:
            tree = checkpoint.restore(path)
        saved = tree.get("train_state") if isinstance(tree, Mapping) else None
        if not isinstance(saved, Mapping) or "params" not in saved:
            top = short_repr(list(tree) if isinstance(tree, Mapping) else tree)
            raise ValueError(f"{owner}: {path!r} holds no train_state with params (its top "
                             f"level is {top}); pass a checkpoint written by Trainer.save or "
                             f"ModelCheckpoint, or a params tree.")
        return saved["params"], saved.get("model_state")
    if isinstance(source, tuple) and len(source) == 2:
        return source
    if isinstance(source, Mapping):
        return source, None
    raise TypeError(f"{owner}: source must be a params dict, a (params, model_state) pair or a "
                    f"checkpoint path, got {short_repr(source)}. Pass e.g. "
                    f"other_trainer.state.params.")


def _has_entry(tree: Any, into: Optional[str]) -> bool:
    for name in ([] if into is None else into.split("/")):
        if not isinstance(tree, Mapping) or name not in tree:
            return False
        tree = tree[name]
    return True


def _flat(tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_checks.path_str(p): leaf for p, leaf in leaves}


def _place(owner: str, label: str, target: Any, source: Any, into: Optional[str],
           strict: bool) -> tuple[Any, list[str]]:
    """``target`` with ``source`` placed under ``into``; and the skipped leaves."""
    names = [] if into is None else into.split("/")
    if not _has_entry(target, into):
        raise ValueError(f"{owner}: into={into!r} names no entry of the model's {label}; its "
                         f"entries are {short_repr(sorted(_flat(target)))}. Use a layer name from "
                         f"model.names (nested with '/').")
    sub = target
    for name in names:
        sub = sub[name]
    prefix = "/".join(names + [""])
    have, given = _flat(sub), _flat(source)
    problems, placed = [], {}
    for path, old in have.items():
        new = given.get(path)
        if new is None:
            problems.append(f"{label}/{prefix}{path}: missing from the source (model has shape "
                            f"{tuple(old.shape)})")
        elif tuple(np.shape(new)) != tuple(old.shape):
            problems.append(f"{label}/{prefix}{path}: shape {tuple(np.shape(new))} in the source "
                            f"but {tuple(old.shape)} in the model")
        else:
            placed[path] = jnp.array(new, dtype=old.dtype, copy=True)  # fit donates it
    problems += [f"{label}/{prefix}{path}: extra in the source (shape {tuple(np.shape(v))}), "
                 f"the model has no such leaf" for path, v in given.items() if path not in have]
    if strict and problems:
        raise ValueError(f"{owner}: the source does not match the model "
                         f"(into={into!r}): " + "; ".join(problems) + ". Pass the weights of "
                         "the same architecture, the right `into`, or strict=False to place "
                         "only the matching leaves.")
    leaves, treedef = jax.tree_util.tree_flatten_with_path(sub)
    new_sub = jax.tree_util.tree_unflatten(
        treedef, [placed.get(_checks.path_str(p), leaf) for p, leaf in leaves])
    return _replace_at(target, names, new_sub), problems


def _replace_at(tree: Any, names: list[str], value: Any) -> Any:
    if not names:
        return value
    return {**tree, names[0]: _replace_at(tree[names[0]], names[1:], value)}


class Trainer(EpochTrainer):
    """Train, evaluate and predict with a model, Keras style.

    The trainer is the supervised case of the epoch engine
    (:class:`~jaxdl.train.loop.EpochTrainer`) over the pure core:
    :class:`TrainState`, :func:`make_train_step` and :func:`make_eval_step`;
    its data are ``(x, y)``. ``fit`` copies the data
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
        mesh: ``None`` (one device), ``"data"`` (every device) or a
            ``jax.sharding.Mesh`` with a ``"data"`` axis: ``fit``, ``evaluate``
            and ``predict`` then run data-parallel, each batch split over the
            ``data`` devices, the state replicated, BatchNorm statistics and
            metrics those of the global batch (:mod:`jaxdl.train.sharding`).
            Results equal the one-device run up to float rounding; a batch the
            device count does not divide is split unevenly, never changed.
        shard_params: with a mesh, split each large params leaf and its
            optimizer state over the ``data`` devices instead of replicating
            them (memory per device falls with the device count).
        compute_dtype: ``None``, ``"bfloat16"`` or ``"float16"``: the whole
            model computes in that dtype while params, gradients and optimizer
            state stay float32 (:mod:`jaxdl.train.precision`); losses and
            BatchNorm statistics run in float32. ``"float16"`` also wraps the
            optimizer in ``optim.dynamic_loss_scale``.

    The optimizer the state really uses is ``optax.chain(optimizer,
    optim.lr_multiplier())``, so ``ReduceLROnPlateau`` (or the user, with
    ``optim.set_hyperparams(trainer.state.opt_state, lr_multiplier=...)``) can
    lower the rate of any optimizer between steps without recompiling.

    Example:
        >>> from jaxdl import nn, losses, optim, train, data
        >>> (x, y), _ = data.load_digits()
        >>> model = nn.Sequential([nn.Flatten(), nn.Dense(64, activation="relu"), nn.Dense(10)])
        >>> trainer = train.Trainer(model, losses.sparse_categorical_crossentropy,
        ...                         optim.adam(1e-3), metrics=("accuracy",))
        >>> history = trainer.fit(x, y, epochs=2, batch_size=32, verbose=0)
    """

    checkpoint_kind = "jaxdl.train.Trainer"

    def __init__(self, model: Any, loss: Any = "sparse_categorical_crossentropy",
                 optimizer: Optional[optax.GradientTransformation] = None,
                 metrics: Optional[Sequence[Any]] = None,
                 regularizer: Optional[Callable] = None, *, mesh: Any = None,
                 shard_params: bool = False, compute_dtype: Any = None):
        super().__init__()
        if model is None or not (hasattr(model, "init") and hasattr(model, "apply")):
            raise TypeError(f"Trainer: model must be a layer with init(key, input_shape) and "
                            f"apply(params, state, x), e.g. nn.Sequential([...]); got "
                            f"{short_repr(model)}.")
        optimizer = optim.adam(1e-3) if optimizer is None else optimizer
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(f"Trainer: optimizer must be an optax GradientTransformation "
                            f"(jaxdl.optim or optax), got {optimizer!r}.")
        self.model, self.optimizer, self.regularizer = model, optimizer, regularizer
        self.loss = resolve_loss(loss)
        if metrics is None:
            metrics = _metrics.default_metrics(self.loss)
        if isinstance(metrics, str) or callable(metrics):
            metrics = (metrics,)
        self.metrics = tuple(metrics)
        # Fails early on unknown names; fixes the order of the logs (loss first, like Keras).
        self._log_names = ["loss"] + list(_metrics.resolve(self.metrics, self.loss))
        # The optimizer the state really uses: the user's, then a learning-rate multiplier.
        self.compute_dtype = _checks.compute_dtype("Trainer", compute_dtype)
        self._tx = optax.chain(precision.with_loss_scaling(optimizer, self.compute_dtype),
                               optim.lr_multiplier())
        self._layout = sharding.layout_for("Trainer", mesh, shard_params)
        self._compile_steps()
        self.input_shape = None
        self._logits_checked = False

    def _compile_steps(self) -> None:
        """The compiled train, eval and predict steps, sharded over the mesh if any."""
        model, layout = self.model, self._layout
        cd = self.compute_dtype
        step = make_train_step(model, self.loss, self._tx, self.metrics, self.regularizer,
                               jit=False, compute_dtype=cd)
        eval_step = make_eval_step(model, self.loss, self.metrics, self.regularizer, jit=False,
                                   compute_dtype=cd)
        apply = precision.cast_apply(model, cd)
        rows = (lambda tree: tree) if layout is None else layout.rows

        def evaluate(st, batch, w):
            return eval_step(st, (*rows(batch), rows(w)))

        def predict(st, x):
            return rows(apply(st.params, st.model_state, rows(x), training=False)[0])

        self._train = executors.compile_steps(step if layout is None else layout.step(step))
        self._eval = executors.compile_evaluation(evaluate)
        self._predict = executors.compile_prediction(predict)

    # ------------------------------------------------------------------ state

    @property
    def transformation(self) -> optax.GradientTransformation:
        """The optimizer the state uses: ``optax.chain(optimizer, optim.lr_multiplier())``."""
        return self._tx

    def build(self, input_shape, seed: int = 0) -> TrainState:
        """Create the train state for inputs of ``input_shape`` (no batch axis)."""
        state = TrainState.create(self.model, self._tx, input_shape, jax.random.key(seed))
        self.state = state if self._layout is None else self._layout.place_state(state)
        self.input_shape = input_shape
        return self.state

    def _ensure_built(self, owner: str, x, seed: int) -> None:
        shape = _input_shape(x)
        if self.state is None:
            self.build(shape, seed)
            return
        self.require_state(owner)
        if shape != self.input_shape:
            raise ValueError(f"Trainer.{owner}: the model was built for inputs of shape "
                             f"(batch, {', '.join(map(str, self.input_shape))}) but x has shape "
                             f"{tuple(np.shape(x)) if not isinstance(x, tuple) else shape}. "
                             f"Reshape x, or create a new Trainer for the new shape.")

    def _on_devices(self, tree: Any, n: int) -> tuple[Any, int]:
        """Host rows on the device(s), the state placed alongside; and the global row count
        (``n`` times the process count when several processes each pass their share)."""
        if self._layout is None:
            return jax.device_put(tree), n
        self.state = self._layout.place_state(self.state)
        return self._layout.place_rows(tree), n * jax.process_count()

    @property
    def mesh(self):
        """The mesh ``fit`` splits batches over (``None``: one device)."""
        return None if self._layout is None else self._layout.mesh

    @property
    def shard_params(self) -> bool:
        """Whether large params leaves are split over the mesh's ``data`` devices."""
        return self._layout is not None and self._layout.shard_params

    @property
    def params(self):
        """The model's current trainable parameters."""
        return None if self.state is None else self.state.params

    def load_params(self, source: Any, into: Optional[str] = None,
                    strict: bool = True) -> list[str]:
        """Place trained weights into the built model, whole or under one sub-tree.

        Args:
            source: a params tree, a ``(params, model_state)`` pair, or the path
                of a checkpoint (a :meth:`save` file or a ``ModelCheckpoint``
                directory, whose latest step is read); a checkpoint gives both
                its params and its model state (batch-norm statistics).
            into: where the source goes: ``None`` for the whole model, or the
                name of a params entry (``"sequential_0"``), nested with ``/``
                (``"sequential_0/dense_1"``). The model state goes to the same
                place when it has an entry there.
            strict: with ``True`` every leaf must match: a missing, extra or
                mis-shaped leaf raises. With ``False`` the matching leaves are
                placed and the others skipped (and returned, with a warning).

        Returns:
            The skipped leaves, as ``"params/path: why"`` strings (empty when
            everything was placed). Values are copied (the source stays usable
            after a ``fit`` donates the state) and cast to the model's dtypes;
            the optimizer state is kept.

        Raises:
            ValueError: no state yet (call ``build`` or ``fit`` first), an
                unknown ``into``, or with ``strict`` a mismatching leaf: the
                message names the leaf path and both shapes.

        Example:
            >>> from jaxdl import nn, train
            >>> base = nn.Sequential([nn.Dense(4)])
            >>> donor = train.Trainer(base, "mse"); _ = donor.build((3,))
            >>> trainer = train.Trainer(nn.Sequential([nn.Frozen(base), nn.Dense(1)]), "mse")
            >>> _ = trainer.build((3,))
            >>> trainer.load_params(donor.state.params, into="sequential_0")
            []
        """
        owner = "Trainer.load_params"
        if self.state is None:
            raise ValueError(f"{owner}: the model has no weights to replace yet; call "
                             f"trainer.build(input_shape) (or fit) first, then load_params.")
        self.require_state("load_params")
        params, model_state = _load_source(owner, source)
        new_params, skipped = _place(owner, "params", self.state.params, params, into, strict)
        new_state = self.state.model_state
        if model_state is not None and (jax.tree.leaves(model_state)
                                        or _has_entry(new_state, into)):
            new_state, more = _place(owner, "model_state", new_state, model_state, into, strict)
            skipped += more
        self.state = self.state._replace(params=new_params, model_state=new_state)
        if skipped:
            warnings.warn(f"{owner}: skipped {len(skipped)} leaves: " + "; ".join(skipped),
                          stacklevel=2)
        return skipped

    def _scan_friendly(self) -> bool:
        return inputs.fuses_well(self.model)

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
        model = self.model
        predictions = compilation.call_compiled(
            lambda p, s, v: model.apply(p, s, v)[0], self.state.params,
            self.state.model_state, _rows(x, slice(0, 8)))
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
                step on the CPU for models with a layer that declares
                ``scan_friendly = False`` (convolutions, faster there).
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
        x, y, n, validation_data = self._fit_data(x, y, validation_split, validation_data)
        self._ensure_built("fit", x, seed)
        self._check_labels("fit", y)
        self._check_logits(x)
        batch_size = _checks.positive_int("Trainer.fit", "batch_size", batch_size)
        if validation_data is not None:  # checked by _fit_data; placed once, not per epoch
            self._ensure_built("fit", validation_data[0], seed)  # the validation x's shape
            self._check_labels("fit", validation_data[1])
            val_data, n_val = self._on_devices(validation_data, inputs.num_examples(
                "Trainer.fit (validation_data)", *validation_data))

        def validate():
            return self._evaluate_placed(val_data, n_val, max(min(batch_size, n), 256))

        data, n = self._on_devices((x, y), n)
        return self.run_epochs(
            self._train, data, n, epochs=epochs, batch_size=batch_size,
            seed=seed, shuffle=shuffle, initial_epoch=initial_epoch, verbose=verbose,
            callbacks=callbacks, steps_per_execution=steps_per_execution,
            drop_remainder=drop_remainder, scan_friendly=self._scan_friendly(),
            validate=validate if validation_data is not None else None,
            log_names=self._log_names, owner="Trainer.fit")

    def _fit_data(self, x, y, validation_split, validation_data):
        """Checked host copies: ``(x, y, n, validation_data or None)``."""
        owner = "Trainer.fit"
        x, y, n = inputs.checked_pair(owner, "", x, y)
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
                                 f"{short_repr(validation_data)}.")
            validation_data = inputs.checked_pair(owner, "validation ", *validation_data)[:2]
        return x, y, n, validation_data

    # ------------------------------------------------------------------ evaluate / predict

    def evaluate(self, x, y, batch_size: int = 256, verbose: int = 0) -> dict[str, float]:
        """Loss and metrics over ``(x, y)`` in inference mode, as Python floats.

        All batches run in one compiled call; the last batch is padded and the
        padding masked out, so every example counts once.
        """
        owner = "Trainer.evaluate"
        x, y = inputs.host_data(owner, "x", x), inputs.host_data(owner, "y", y)
        n = inputs.num_examples(owner, x, y)
        inputs.check_finite(owner, "x", x)
        inputs.check_finite(owner, "y", y)
        self.require_state("evaluate")
        self._ensure_built("evaluate", x, 0)
        self._check_labels("evaluate", y)
        out = self._evaluate_placed(*self._on_devices((x, y), n), batch_size)
        if verbose:
            print(f"evaluate{format_logs(out)}")
        return out

    def _evaluate_placed(self, data: Any, n: int, batch_size: int) -> dict[str, float]:
        """Weighted loss and metric means over device-resident ``data`` of ``n`` rows."""
        batch_size = min(_checks.positive_int("Trainer.evaluate", "batch_size", batch_size), n)
        return self.evaluate_means(self._eval, data, n, batch_size, self._log_names,
                                   fused=self._scan_friendly())

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Model outputs for ``x`` in inference mode, as a numpy array ``(n, ...)``."""
        owner = "Trainer.predict"
        x = inputs.host_data(owner, "x", x)
        n = len(x[0] if isinstance(x, tuple) else x)
        if n == 0:
            raise ValueError(f"{owner}: the data are empty (0 examples).")
        inputs.check_finite(owner, "x", x)
        batch_size = min(_checks.positive_int(owner, "batch_size", batch_size), n)
        self.require_state("predict")
        self._ensure_built("predict", x, 0)
        data, n = self._on_devices(x, n)
        idx, _ = executors.padded_batches(n, batch_size)
        if self._scan_friendly():
            out = sharding.to_host(self._predict.all(self.state, data, idx))
            return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)
        parts = [self._predict.single(self.state, data, ids) for ids in idx]  # no sync between
        return jax.tree.map(lambda *a: np.concatenate(a)[:n], *sharding.to_host(parts))

    # ------------------------------------------------------------------ checkpoints

    def describe(self) -> dict:
        """Checkpoint metadata: the input shape the state was built for, the model's type."""
        return {"input_shape": _json_shape(self.input_shape), "model": type(self.model).__name__}

    def restore_target(self, path: str, meta: dict) -> Any:
        """The abstract TrainState of this model and optimizer for the saved input shape."""
        def is_shape(s, depth=0):
            return isinstance(s, list) and len(s) <= 64 and depth < 4 and all(
                (_checks.is_int(d) and d >= 0) or is_shape(d, depth + 1) for d in s)

        checkpoint.require(is_shape(meta.get("input_shape")), path, "metadata.input_shape",
                           "a list of ints >= 0 (lists of them for several inputs)",
                           meta.get("input_shape"))
        input_shape = _tuple_shape(meta["input_shape"])
        return jax.eval_shape(
            lambda: TrainState.create(self.model, self._tx, input_shape, jax.random.key(0)))

    def restored(self, meta: dict) -> None:
        self.input_shape = _tuple_shape(meta["input_shape"])
