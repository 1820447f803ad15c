"""Shared plumbing for jaxdl.optim: argument checks, dtype helpers, chain.

Every transform in jaxdl.optim is an ``optax.GradientTransformation``: a pair
``(init, update)`` of pure functions. ``init(params) -> state`` builds the
state; ``update(updates, state, params=None) -> (updates, state)`` maps the
incoming gradients (or the output of the previous transform in a chain) to the
next updates. The final updates are *added* to the params by
``optax.apply_updates``, so descent transforms end with a negative scale.

Dtype rules, shared by every transform (the tests run under
``jax.numpy_dtype_promotion("strict")``):

* Python-number hyperparameters stay Python numbers, so they take the dtype of
  the array they meet, exactly as in optax.
* Array hyperparameters (for example those held by
  :func:`jaxdl.optim.inject_hyperparams`) are cast explicitly to the dtype of
  the leaf they scale.
* Running statistics (moments, traces, sums of squares) are stored and
  computed in at least float32: a float16 or bfloat16 leaf gets a float32
  accumulator, a float32 or float64 leaf one of its own dtype. The update comes
  back in the dtype of the incoming update.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks

__all__ = ["chain", "identity", "EmptyState"]

EmptyState = optax.EmptyState


# ----------------------------------------------------------------- checks ---



def check_hyper(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> None:
    """Validates a numeric hyperparameter when it is a concrete number.

    Arrays (possibly traced, e.g. under ``inject_hyperparams``) pass unchecked:
    their value is not known when the transform is built.

    Raises:
        TypeError: ``value`` is neither a real number nor an array.
        ValueError: ``value`` lies outside the allowed interval.
    """
    if not (_checks.is_real(value) or isinstance(value, (jax.Array, np.ndarray))):
        raise TypeError(
            f"{owner}: {name} must be a real number, got {value!r} of type "
            f"{type(value).__name__}. Pass a Python float such as 0.9."
        )
    if not _checks.is_real(value):
        return
    v = float(value)
    bad = not np.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + repr(low)
        hi = "inf)" if high is None else repr(high) + (")" if high_open else "]")
        raise ValueError(
            f"{owner}: {name} must be a finite number in {lo}, {hi}, got "
            f"{value!r}.{(' ' + hint) if hint else ''}"
        )


def check_rate(owner: str, name: str, value: Any) -> None:
    """Validates a learning rate or weight decay: a number >= 0, an array, or a schedule."""
    if callable(value):
        return
    if not (_checks.is_real(value) or isinstance(value, (jax.Array, np.ndarray))):
        raise TypeError(
            f"{owner}: {name} must be a float, a scalar array or a schedule "
            f"(a callable of the step count), got {value!r} of type "
            f"{type(value).__name__}."
        )
    if isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) != 0:
        raise ValueError(
            f"{owner}: {name} must be a scalar, got an array of shape "
            f"{np.shape(value)}. Pass a float or a 0-d array."
        )
    check_hyper(owner, name, value, low=0.0,
                hint="Use a non-negative value; descent is already built in.")


def check_params_floating(owner: str, params: Any) -> None:
    """Raises TypeError when a params leaf is not a real floating array."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{owner}: every params leaf must be a real floating array, "
                f"got dtype {dtype} at {_checks.path_str(path)!r}. Cast the "
                "params to float32 (or keep non-trainable values out of the "
                "params tree)."
            )


# ----------------------------------------------------------------- dtypes ---


def widest(*dtypes: Any) -> jnp.dtype:
    """The widest of some float dtypes, at least float32 (explicit, no promotion).

    Each dtype is first raised by :func:`jaxdl._checks.at_least_float32` (the one
    home of that rule); a running statistic of a single ``dtype`` leaf is kept in
    ``widest(dtype)``: float16 and bfloat16 get float32, float32 and float64 keep
    their own dtype.
    """
    return max((_checks.at_least_float32(d) for d in dtypes),
               key=lambda d: d.itemsize, default=jnp.dtype(jnp.float32))


def is_python_scalar(x: Any) -> bool:
    """True for a Python int or float (weakly typed in JAX), not a NumPy scalar."""
    return type(x) in (int, float)


def cast(x: Any, dtype: Any) -> Any:
    """Casts a hyperparameter to ``dtype``; Python ints and floats pass through.

    A Python number is weakly typed: it already takes the dtype of the array it
    meets, with the same rounding as an explicit cast. Arrays and NumPy
    scalars are strongly typed and are cast explicitly.
    """
    if is_python_scalar(x):
        return x
    return jnp.asarray(x).astype(dtype)


def default_float() -> jnp.dtype:
    """float64 when x64 is enabled, float32 otherwise."""
    return jnp.asarray(0.0).dtype


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the largest int32 instead of wrapping."""
    top = jnp.iinfo(count.dtype).max
    return jnp.where(count < top, count + 1, count)


def one_minus_pow(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` for an int32 ``count``, the bias-correction factor.

    The power is taken in the default float dtype (float64 under x64), or in the
    dtype of ``decay`` when it is an array, so that it is not rounded to 1 in
    low precision. The count stays an array operand of ``lax.pow``, as in
    optax's ``decay**count``, jitted or not: were it a Python int it would be
    the static exponent of ``lax.integer_pow``, and every eager step would
    compile a new program.
    """
    base = jnp.asarray(decay)
    if not jnp.issubdtype(base.dtype, jnp.floating):
        base = base.astype(default_float())
    return 1 - jax.lax.pow(base, jnp.asarray(count))


def zeros_count() -> jax.Array:
    """A fresh step counter: int32 scalar 0."""
    return jnp.zeros([], jnp.int32)


# ------------------------------------------------------------------ chain ---


def _as_transform(owner: str, index: int, tx: Any) -> optax.GradientTransformation:
    if isinstance(tx, optax.GradientTransformation):
        return tx
    if (
        isinstance(tx, tuple)
        and len(tx) == 2
        and callable(tx[0])
        and callable(tx[1])
    ):
        return optax.GradientTransformation(*tx)
    raise TypeError(
        f"{owner}: argument {index} must be an optax.GradientTransformation "
        f"(a jaxdl.optim or optax transform), got {tx!r} of type "
        f"{type(tx).__name__}. Call the factory, e.g. optim.adam(1e-3), "
        "rather than passing the function itself."
    )


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Applies transforms one after the other: the composition operator.

    ``chain(a, b, c).update(g, (sa, sb, sc), params)`` computes
    ``u1 = a(g)``, ``u2 = b(u1)``, ``u3 = c(u2)`` and returns ``u3`` with the
    tuple of new states. jaxdl and optax transforms mix freely, in any order;
    extra keyword arguments of ``update`` (optax's "extra args", such as
    ``value=`` for line searches) are forwarded to the transforms that accept
    them (``optax.GradientTransformationExtraArgs``) and dropped for the others.

    Args:
        *transforms: ``optax.GradientTransformation`` objects.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is a tuple with
        one entry per transform, in order.

    Raises:
        TypeError: an argument is not a gradient transformation.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> tx = optim.chain(optim.clip_by_global_norm(1.0), optax.scale(-0.5))
        >>> state = tx.init(jnp.zeros(2))
        >>> updates, state = tx.update(jnp.array([3.0, 4.0]), state)
        >>> print(updates)
        [-0.3 -0.4]
    """
    txs = tuple(_as_transform("optim.chain", i, t) for i, t in enumerate(transforms))
    takes_extra = tuple(isinstance(t, optax.GradientTransformationExtraArgs) for t in txs)

    def init_fn(params):
        return tuple(t.init(params) for t in txs)

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(txs):
            got = len(state) if isinstance(state, tuple) else type(state).__name__
            raise ValueError(
                f"optim.chain: state must be the tuple of {len(txs)} states "
                f"returned by this chain's init, got {got}. Build the state "
                "with the same optimizer's init(params)."
            )
        new_states = []
        for tx, extra, s in zip(txs, takes_extra, state, strict=True):
            if extra:
                updates, s = tx.update(updates, s, params, **extra_args)
            else:
                updates, s = tx.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def identity() -> optax.GradientTransformation:
    """The transform that returns its updates unchanged (state: ``EmptyState()``)."""
    return optax.stateless(lambda updates, params: updates)


Schedule = Callable[[jax.Array], Any]
