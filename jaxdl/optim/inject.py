"""Hyperparameters held in the optimizer state, so they can change mid-training.

An optimizer built with a Python float learning rate bakes the number into its
``update`` function: changing it means building a new optimizer and, under
``jit``, recompiling. :func:`inject_hyperparams` instead stores the numeric
hyperparameters as arrays in the state. Rebuilding the inner optimizer from
those arrays on every update is free under ``jit`` (it is only Python-level
plumbing), and a new value is just new data, written with
:func:`set_hyperparams`: the next step uses it without recompiling.

This is jaxdl's one mechanism for changing behaviour between steps (optax's
rule: only values in the optimizer state change). :func:`lr_multiplier` is the
same mechanism for optimizers that were not built with
:func:`inject_hyperparams`: chained after any optimizer, it holds a
``lr_multiplier`` hyperparameter that scales the final update, which is exactly
a learning-rate change for SGD, momentum, Adam, AdamW, RMSprop... The
``Trainer`` chains it after the user's optimizer, and ``ReduceLROnPlateau``
lowers it with :func:`set_hyperparams`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks
from jaxdl.optim._base import safe_increment, widest, zeros_count

__all__ = [
    "InjectHyperparamsState",
    "inject_hyperparams",
    "LRMultiplierState",
    "lr_multiplier",
    "set_hyperparams",
    "get_hyperparams",
]


class InjectHyperparamsState(NamedTuple):
    """State of an optimizer built by :func:`inject_hyperparams`.

    Same fields, in the same order, as optax's ``InjectHyperparamsState``.

    Attributes:
        count: int32 scalar, shape ``()``: updates done so far; schedules given
            as hyperparameters are evaluated at this value.
        hyperparams: ``dict`` from argument name to a scalar array, shape
            ``()``: the value used by the *latest* update (the initial values
            after ``init``). Float hyperparameters have the widest floating
            dtype of the params, at least float32 (or ``hyperparam_dtype``);
            ints are int32.
        inner_state: the state of the inner optimizer.
    """

    count: jax.Array
    hyperparams: dict
    inner_state: Any


def _float_dtype_of(params: Any) -> Any:
    floats = [jnp.result_type(leaf) for leaf in jax.tree.leaves(params)]
    return widest(*(d for d in floats if jnp.issubdtype(d, jnp.floating)))


def _as_hyper(value: Any, float_dtype: Any) -> jax.Array:
    arr = jnp.asarray(value)
    if jnp.issubdtype(arr.dtype, jnp.floating):
        return arr.astype(float_dtype)
    return arr


def _split_arguments(arguments: dict, static: set) -> tuple[dict, dict, dict]:
    """``(numeric, scheduled, fixed)``: the arguments kept in the state as arrays, those
    evaluated at the step count (schedules), and those passed through unchanged."""
    numeric, scheduled, fixed = {}, {}, {}
    for name, value in arguments.items():
        if name in static or isinstance(value, (bool, np.bool_)) or value is None:
            fixed[name] = value
        elif callable(value):
            scheduled[name] = value
        elif _checks.is_real(value) or isinstance(value, (jax.Array, np.ndarray)):
            numeric[name] = value
        else:
            fixed[name] = value
    return numeric, scheduled, fixed


def _injected(optimizer_factory: Callable[..., optax.GradientTransformation], numeric: dict,
              scheduled: dict, fixed: dict, hyperparam_dtype: Any
              ) -> optax.GradientTransformationExtraArgs:
    """The transformation :func:`inject_hyperparams` returns for one set of arguments:
    ``numeric`` live in the state, ``scheduled`` are evaluated at the count, ``fixed``
    pass through."""
    def float_dtype(params):
        if hyperparam_dtype is not None:
            return jnp.dtype(hyperparam_dtype)
        return _float_dtype_of(params)

    def current(hyperparams, count, dtype):
        values = dict(hyperparams)
        for name, fn in scheduled.items():
            values[name] = _as_hyper(fn(count), dtype)
        return values

    def inner(values):
        return optimizer_factory(**fixed, **values)

    def init_fn(params):
        dtype = float_dtype(params)
        count = zeros_count()
        values = {k: _as_hyper(v, dtype) for k, v in numeric.items()}
        values = current(values, count, dtype)
        return InjectHyperparamsState(
            count=count, hyperparams=values, inner_state=inner(values).init(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        dtype = float_dtype(params if params is not None else updates)
        values = current(state.hyperparams, state.count, dtype)
        tx = inner(values)
        if isinstance(tx, optax.GradientTransformationExtraArgs):
            updates, inner_state = tx.update(
                updates, state.inner_state, params, **extra_args
            )
        else:
            updates, inner_state = tx.update(updates, state.inner_state, params)
        return updates, InjectHyperparamsState(
            count=safe_increment(state.count),
            hyperparams=values,
            inner_state=inner_state,
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def inject_hyperparams(
    optimizer_factory: Callable[..., optax.GradientTransformation],
    static_args: str | tuple[str, ...] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., optax.GradientTransformationExtraArgs]:
    r"""Wraps an optimizer factory so its numeric arguments live in the state.

    ``inject_hyperparams(optim.adam)(learning_rate=1e-3)`` behaves exactly like
    ``optim.adam(1e-3)`` but its state is an :class:`InjectHyperparamsState`
    whose ``hyperparams["learning_rate"]`` is an array the next update reads.
    Arguments given as schedules (callables) are evaluated at the step count on
    every update and recorded in ``hyperparams``; booleans, ``None``, strings,
    dtypes and the names in ``static_args`` are passed through unchanged.

    On update :math:`t` the wrapper calls ``optimizer_factory(**hyperparams_t)``
    and applies its ``update`` to the inner state, so the factory must accept
    arrays for the numeric arguments (every jaxdl optimizer does).

    Args:
        optimizer_factory: a function returning a gradient transformation, such
            as ``optim.adam`` or ``optax.adam``.
        static_args: names of callable arguments that are *not* schedules.
        hyperparam_dtype: dtype for float hyperparameters; default: the widest
            float dtype among the params, at least float32.

    Returns:
        A function with the factory's signature returning an
        ``optax.GradientTransformationExtraArgs``.

    Raises:
        ValueError: ``static_args`` names an argument the factory does not take.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> opt = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
        >>> w = jnp.array([1.0])
        >>> state = opt.init(w)
        >>> state = optim.set_hyperparams(state, learning_rate=0.01)
        >>> updates, state = opt.update(jnp.array([1.0]), state, w)
        >>> print(updates)
        [-0.01]
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(optimizer_factory)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"optim.inject_hyperparams: static_args {sorted(unknown)} are not "
            f"arguments of {getattr(optimizer_factory, '__name__', optimizer_factory)}; "
            f"its arguments are {list(signature.parameters)}."
        )

    def build(*args, **kwargs) -> optax.GradientTransformationExtraArgs:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, scheduled, fixed = _split_arguments(bound.arguments, static)

        return _injected(optimizer_factory, numeric, scheduled, fixed, hyperparam_dtype)

    build.__name__ = f"inject_hyperparams({getattr(optimizer_factory, '__name__', 'optimizer')})"
    build.__doc__ = optimizer_factory.__doc__
    return build


class LRMultiplierState(NamedTuple):
    """State of :func:`lr_multiplier`.

    Attributes:
        hyperparams: ``{"lr_multiplier": float32 scalar}``, read by every update.
        inner_state: empty; present so :func:`set_hyperparams` finds this state
            like any injected one.
    """

    hyperparams: dict
    inner_state: tuple = ()


def lr_multiplier(initial: float = 1.0) -> optax.GradientTransformation:
    """Scale the updates by a ``lr_multiplier`` hyperparameter kept in the state.

    Chained after an optimizer whose learning rate multiplies its final update
    (every jaxdl and optax optimizer), multiplying the update by ``m`` is
    exactly training with learning rate ``m * lr``. Change it between steps
    with ``set_hyperparams(opt_state, lr_multiplier=m)``; under ``jit`` that
    is new data, not a new program.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> opt = optim.chain(optim.sgd(0.1), optim.lr_multiplier())
        >>> w = jnp.array([1.0])
        >>> state = optim.set_hyperparams(opt.init(w), lr_multiplier=0.5)
        >>> print(opt.update(jnp.array([1.0]), state, w)[0])
        [-0.05]
    """
    def init(params):
        del params
        return LRMultiplierState(hyperparams={"lr_multiplier": jnp.asarray(initial,
                                                                          jnp.float32)})

    def update(updates, state, params=None):
        del params
        m = state.hyperparams["lr_multiplier"]
        return jax.tree.map(lambda u: u * m.astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)


def _has_hyperparams(node: Any) -> bool:
    fields = getattr(node, "_fields", None)
    return (
        isinstance(node, tuple)
        and fields is not None
        and "hyperparams" in fields
        and "inner_state" in fields
    )


def _walk(node: Any, visit: Callable[[Any], Any]) -> tuple[Any, int]:
    """Rebuilds ``node`` with ``visit`` applied to every hyperparams state in it."""
    if _has_hyperparams(node):
        inner, n = _walk(node.inner_state, visit)
        return visit(node._replace(inner_state=inner)), n + 1
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        parts = [_walk(x, visit) for x in node]
        return type(node)(*[p[0] for p in parts]), sum(p[1] for p in parts)
    if isinstance(node, (tuple, list)):
        parts = [_walk(x, visit) for x in node]
        return type(node)(p[0] for p in parts), sum(p[1] for p in parts)
    if isinstance(node, dict):
        parts = {k: _walk(v, visit) for k, v in node.items()}
        return {k: p[0] for k, p in parts.items()}, sum(p[1] for p in parts.values())
    return node, 0


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """Returns ``opt_state`` with new hyperparameter values; pure, no mutation.

    Finds every :class:`InjectHyperparamsState` (or optax's equivalent) inside
    ``opt_state`` — at the top, inside a chain's tuple, or nested — and
    replaces ``hyperparams[name]`` for each given name it holds. Each value is
    cast to the dtype and shape of the array it replaces, so a jitted step
    using the new state does not recompile. A hyperparameter driven by a
    schedule is recomputed on the next update, so setting it has no effect.

    Args:
        opt_state: an optimizer state.
        **values: ``name=value`` pairs, e.g. ``learning_rate=1e-4``.

    Returns:
        The new state.

    Raises:
        ValueError: no injected state holds one of the names.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> opt = optim.inject_hyperparams(optim.adam)(learning_rate=1e-3)
        >>> state = optim.set_hyperparams(opt.init(jnp.zeros(3)), learning_rate=1e-4)
        >>> print(float(optim.get_hyperparams(state)["learning_rate"]))
        9.999999747378752e-05
    """
    found: set[str] = set()

    def visit(node):
        hp = dict(node.hyperparams)
        for name, value in values.items():
            if name in hp:
                old = jnp.asarray(hp[name])
                hp[name] = jnp.broadcast_to(jnp.asarray(value).astype(old.dtype), old.shape)
                found.add(name)
        return node._replace(hyperparams=hp)

    new_state, count = _walk(opt_state, visit)
    missing = set(values) - found
    if count == 0 or missing:
        raise ValueError(
            f"optim.set_hyperparams: no hyperparameter named {sorted(missing)} in "
            "this optimizer state. Build the optimizer with "
            "optim.inject_hyperparams(factory)(...) so that its numeric "
            "arguments live in the state."
        )
    return new_state


def get_hyperparams(opt_state: Any) -> dict:
    """Every hyperparameter held in ``opt_state``, by name.

    The hyperparams of each injected state (and :func:`lr_multiplier`) in
    ``opt_state``, merged; where two states hold the same name, the outermost
    (the last in a chain) wins.

    Raises:
        ValueError: the state holds no injected hyperparameters.
    """
    found: list[dict] = []

    def visit(node):
        found.append(dict(node.hyperparams))
        return node

    _walk(opt_state, visit)
    merged: dict = {}
    for hyperparams in found:
        merged.update(hyperparams)
    if not found:
        raise ValueError(
            "optim.get_hyperparams: this optimizer state holds no injected "
            "hyperparameters; build it with optim.inject_hyperparams(factory)(...)."
        )
    return merged
