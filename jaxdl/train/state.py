"""The pure core of training: ``TrainState`` and jitted train/eval steps.

``Trainer`` is a thin shell over these. Everything here is a pure function of
its inputs, so a step can be jitted, scanned, vmapped or sharded.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxdl import _checks, compilation, nn, optim
from jaxdl import losses as _losses
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.train import metrics as _metrics
from jaxdl.train import precision, sharding


class TrainState(NamedTuple):
    """Everything a training run carries from step to step (a pytree).

    Attributes:
        step: int32 scalar, the number of optimizer updates done so far.
        params: the model's trainable parameters (nested dicts).
        model_state: the model's non-trainable state (batch-norm statistics).
        opt_state: the optimizer's state.
        key: uint32 array of shape ``(2,)`` (raw key data); step ``t`` draws its
            randomness (dropout) from ``fold_in(key, t)``, so a run resumed at
            step ``t`` draws the same numbers as an uninterrupted one.
    """

    step: Array
    params: Params
    model_state: State
    opt_state: Any
    key: Array

    @classmethod
    def create(cls, model: Any, optimizer: optax.GradientTransformation, input_shape: Shape,
               key: PRNGKey, *, mesh: Any = None, shard_params: bool = False) -> "TrainState":
        """Initialize the model and the optimizer, as one compiled program.

        The split of ``key``, ``model.init`` and ``optimizer.init`` run as one
        program (:func:`jaxdl.compilation.call_compiled`): one compilation, or
        none when an equal model and optimizer were created before in the process.

        Args:
            model: a layer (``nn.Sequential``, ``nn.Model``...).
            optimizer: any optax-compatible transformation.
            input_shape: the model input's shape without the batch axis (a
                tuple of shapes for a multi-input model).
            key: a PRNG key; it is split into the init key and the step key.
            mesh: ``None``, ``"data"`` or a ``jax.sharding.Mesh`` with a ``"data"``
                axis: the state is placed on its devices, replicated, or with
                ``shard_params`` its large leaves split over the ``data`` axis
                (:mod:`jaxdl.train.sharding`).

        When the model has frozen layers (:class:`jaxdl.nn.Frozen`) the
        optimizer is wrapped with :func:`mask_frozen` first, so their leaves
        hold no optimizer state; :func:`make_train_step` wraps it the same way.

        Example:
            >>> import jax
            >>> from jaxdl import nn, optim, train
            >>> model = nn.Sequential([nn.Dense(3)])
            >>> state = train.TrainState.create(model, optim.sgd(0.1), (4,), jax.random.key(0))
            >>> int(state.step)
            0
        """
        layout = sharding.layout_for("TrainState.create", mesh, shard_params)
        optimizer = mask_frozen(model, optimizer)

        def create(key):
            init_key, step_key = jax.random.split(key)
            params, model_state = model.init(init_key, input_shape)
            return cls(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                       opt_state=optimizer.init(params), key=step_key)

        state = compilation.call_compiled(create, raw_key(key))
        return state if layout is None else layout.place_state(state)


def mask_frozen(model: Any, optimizer: optax.GradientTransformation
                ) -> optax.GradientTransformation:
    """``optimizer`` restricted to the trainable leaves of ``model`` (see ``nn.Frozen``).

    For a params tree whose :func:`jaxdl.nn.trainable_mask` is all True this is
    ``optimizer`` itself (same state). Otherwise it is
    ``optax.chain(optim.masked(optimizer, trainable), optim.masked(optax.set_to_zero(),
    frozen))``: frozen leaves get a zero update (no weight decay, no
    regularizer gradient reaches them) and no optimizer state. The mask is
    read from the structure of the params (or updates) at trace time.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn, optim, train
        >>> model = nn.Sequential([nn.Frozen(nn.Dense(2)), nn.Dense(1)])
        >>> params, _ = model.init(jax.random.key(0), (3,))
        >>> opt = train.state.mask_frozen(model, optim.adamw(0.1, weight_decay=0.5))
        >>> updates, _ = opt.update(params, opt.init(params), params)
        >>> float(jnp.abs(updates["dense_0"]["kernel"]).max())
        0.0
    """
    def trainable(tree):
        return nn.trainable_mask(model, tree)

    def frozen(tree):
        return jax.tree.map(lambda m: not m, trainable(tree))

    wrapped = optax.chain(optim.masked(optimizer, trainable),
                          optim.masked(optax.set_to_zero(), frozen))

    def pick(tree):
        return optimizer if all(jax.tree.leaves(trainable(tree))) else wrapped

    def init(params):
        return pick(params).init(params)

    def update(updates, state, params=None):
        return pick(updates).update(updates, state, params)

    return optax.GradientTransformation(init, update)


def raw_key(key: PRNGKey) -> Array:
    """Key data (uint32) of a typed key, a raw key or an int seed: what a training
    state stores, since it serializes into checkpoints and passes through jit.

    >>> import jax
    >>> raw_key(jax.random.key(0)).dtype, raw_key(0).shape
    (dtype('uint32'), (2,))
    """
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    if jnp.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)


# ------------------------------------------------------------------------------ losses

def resolve_loss(loss: Any) -> Callable[[Array, Array], Array]:
    """A loss function from a function, a loss object or a name (``"mse"``...).

    The names are :func:`jaxdl.losses.get`'s (cross-entropies from logits).
    """
    return _losses.get(loss)


def _mean_loss(per_example: Array, weights: Optional[Array]) -> Array:
    per_example = jnp.reshape(per_example, (per_example.shape[0], -1)).mean(axis=1) \
        if per_example.ndim > 1 else per_example
    if weights is None:
        return jnp.mean(per_example)
    weights = weights.astype(per_example.dtype)
    return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _metric_means(metric_fns: dict, predictions: Array, targets: Array,
                  weights: Optional[Array]) -> dict[str, Array]:
    out = {}
    for name, fn in metric_fns.items():
        value = jnp.asarray(fn(predictions, targets))
        if value.ndim == 0:
            out[name] = value.astype(jnp.float32)
        else:
            out[name] = _mean_loss(value.astype(jnp.float32), weights)
    return out


def _split_batch(batch: Sequence[Any]):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(f"step: expected batch=(x, y) or (x, y, sample_weight), got "
                         f"{type(batch).__name__} of length "
                         f"{len(batch) if hasattr(batch, '__len__') else '?'}.")
    x, y = batch[0], batch[1]
    w = batch[2] if len(batch) == 3 else None
    return x, y, w


def _train_step_fn(model, loss, optimizer, metrics=(), regularizer=None, *,
                   compute_dtype=None):
    """The un-jitted step ``(state, batch) -> (state, metrics)`` shared by all paths."""
    loss_fn = resolve_loss(loss)
    metric_fns = _metrics.resolve(metrics, loss_fn)
    optimizer = mask_frozen(model, optimizer)
    apply = precision.cast_apply(
        model, _checks.compute_dtype("make_train_step", compute_dtype))

    def step(state: TrainState, batch) -> tuple[TrainState, dict[str, Array]]:
        x, y, w = _split_batch(batch)
        key = jax.random.fold_in(state.key, state.step)
        scale = optim.loss_scale_of(state.opt_state)

        def objective(params):
            predictions, model_state = apply(params, state.model_state, x, key=key,
                                             training=True)
            data_loss = _mean_loss(loss_fn(predictions, y), w)
            total = data_loss
            if regularizer is not None:
                total = total + jnp.asarray(regularizer(params)).astype(data_loss.dtype)
            return total * scale.astype(total.dtype), (total, predictions, model_state)

        (_, (total, predictions, model_state)), grads = jax.value_and_grad(
            objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        logs = {"loss": total.astype(jnp.float32)}
        logs.update(_metric_means(metric_fns, predictions, y, w))
        new_state = TrainState(step=state.step + 1, params=params, model_state=model_state,
                               opt_state=opt_state, key=state.key)
        return new_state, logs

    return step


def make_train_step(model: Any, loss: Any, optimizer: optax.GradientTransformation,
                    metrics: Sequence[Any] = (), regularizer: Optional[Callable] = None,
                    *, donate: bool = True, jit: bool = True,
                    compute_dtype: Any = None) -> Callable:
    """Build the jitted training step ``step(state, (x, y)) -> (state, metrics)``.

    One step computes ``loss = mean_i loss_fn(model(x_i), y_i) + regularizer(params)``
    and its gradient with ``jax.value_and_grad``, applies the optimizer's update
    with ``optax.apply_updates``, and threads the model state (batch-norm
    statistics) through. Dropout keys come from ``fold_in(state.key, state.step)``.

    The returned function is ``jax.jit``-compiled once per input shape; with
    ``donate=True`` the old state's buffers are reused for the new one (do not
    use a state after passing it in). A batch may carry per-example weights as a
    third element, ``(x, y, sample_weight)``.

    Mixed precision: with ``compute_dtype`` the model runs through
    :func:`jaxdl.train.precision.cast_apply` (params and floating inputs cast to
    it, predictions back to float32 for the loss); params, gradients and the
    optimizer state stay float32. When the optimizer state holds a
    :func:`jaxdl.optim.dynamic_loss_scale` the loss is multiplied by its scale
    (:func:`jaxdl.optim.loss_scale_of`) before the gradient, which that
    transformation unscales; ``"loss"`` in the logs is always the unscaled loss.

    Args:
        model: a layer.
        loss: a per-example loss function or its name.
        optimizer: any optax-compatible transformation.
        metrics: names or functions, reported as batch means next to ``"loss"``.
        regularizer: ``penalty(params) -> scalar`` added to the loss.
        donate: donate the state's buffers to the step.
        jit: ``False`` returns the plain function, to be scanned, vmapped or
            compiled by the caller (``jaxdl.train.executors.compile_steps``).
        compute_dtype: ``None`` (the params' dtype) or ``"bfloat16"``,
            ``"float16"``, ``"float32"``: the dtype the model computes in.

    Returns:
        ``step(state, batch) -> (new_state, {"loss": ..., metric: ...})``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn, losses, optim, train
        >>> model = nn.Sequential([nn.Dense(1)])
        >>> opt = optim.sgd(0.1)
        >>> state = train.TrainState.create(model, opt, (2,), jax.random.key(0))
        >>> step = train.make_train_step(model, losses.mean_squared_error, opt)
        >>> state, logs = step(state, (jnp.ones((4, 2)), jnp.zeros((4, 1))))
    """
    step = _train_step_fn(model, loss, optimizer, metrics, regularizer,
                          compute_dtype=compute_dtype)
    return jax.jit(step, donate_argnums=(0,) if donate else ()) if jit else step


def _eval_step_fn(model, loss, metrics=(), regularizer=None, *, compute_dtype=None):
    loss_fn = resolve_loss(loss)
    metric_fns = _metrics.resolve(metrics, loss_fn)
    apply = precision.cast_apply(
        model, _checks.compute_dtype("make_eval_step", compute_dtype))

    def eval_step(state: TrainState, batch) -> dict[str, Array]:
        x, y, w = _split_batch(batch)
        predictions, _ = apply(state.params, state.model_state, x, training=False)
        total = _mean_loss(loss_fn(predictions, y), w)
        if regularizer is not None:
            total = total + jnp.asarray(regularizer(state.params)).astype(total.dtype)
        logs = {"loss": total.astype(jnp.float32)}
        logs.update(_metric_means(metric_fns, predictions, y, w))
        return logs

    return eval_step


def make_eval_step(model: Any, loss: Any, metrics: Sequence[Any] = (),
                   regularizer: Optional[Callable] = None, *, jit: bool = True,
                   compute_dtype: Any = None) -> Callable:
    """Build the jitted evaluation step ``eval_step(state, (x, y)) -> metrics``.

    Inference mode (``training=False``: no dropout, batch norm uses its moving
    statistics); the state is not changed. Metrics are batch means; a third
    batch element gives per-example weights (0 masks padding out). ``jit=False``
    returns the plain function. ``compute_dtype`` is :func:`make_train_step`'s.
    """
    step = _eval_step_fn(model, loss, metrics, regularizer, compute_dtype=compute_dtype)
    return jax.jit(step) if jit else step
