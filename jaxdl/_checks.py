"""Validation helpers used at jaxdl's public boundary.

Each helper raises ``ValueError`` (bad value or shape) or ``TypeError`` (bad
type or dtype) with one message that names the argument, what was expected,
what was received and, where there is one, how to fix it.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def positive_int(owner: str, name: str, value: Any) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise."""
    if not is_int(value):
        raise TypeError(f"{owner}: `{name}` must be a positive integer, got {value!r} "
                        f"of type {type(value).__name__}.")
    if value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value}.")
    return int(value)


def non_negative_int(owner: str, name: str, value: Any) -> int:
    """Return ``value`` as an int if it is an integer >= 0 (a seed, an epoch), else raise."""
    if not is_int(value):
        raise TypeError(f"{owner}: `{name}` must be a non-negative integer, got {value!r} "
                        f"of type {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"{owner}: `{name}` must be a non-negative integer, got {value}.")
    return int(value)


def non_negative_float(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise."""
    if not is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a non-negative number, got {value!r} "
                        f"of type {type(value).__name__}.")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: `{name}` must be a finite number >= 0, got {value}.")
    return float(value)


def shape_tuple(owner: str, input_shape: Any, min_rank: int = 0) -> tuple[int, ...]:
    """Normalize ``input_shape`` (no batch axis) to a tuple of positive ints.

    An int is accepted as a rank-1 shape. Raises if any entry is not a positive
    integer, or if the rank is below ``min_rank``.
    """
    if is_int(input_shape):
        input_shape = (int(input_shape),)
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(f"{owner}: `input_shape` must be a tuple of positive ints without the "
                        f"batch axis, e.g. (784,) or (28, 28, 1); got {input_shape!r}.")
    shape = tuple(input_shape)
    for d in shape:
        if not is_int(d) or d <= 0:
            raise ValueError(f"{owner}: `input_shape` must hold positive ints (no batch axis, "
                             f"no None), got {shape!r}.")
    shape = tuple(int(d) for d in shape)
    if len(shape) < min_rank:
        raise ValueError(f"{owner}: expected an input_shape of rank >= {min_rank} (without the "
                         f"batch axis), got {shape!r}.")
    return shape


def input_shape_of_rank(owner: str, input_shape: Any, axes: Sequence[str], hint: str = ""):
    """Normalize ``input_shape`` and require one entry per name in ``axes``.

    ``axes`` names the axes without the batch axis, e.g. ``("height", "width",
    "channels")``; the error quotes them so the user sees the layout expected.
    """
    shape = shape_tuple(owner, input_shape)
    if len(shape) != len(axes):
        raise ValueError(f"{owner}: expected an input_shape ({', '.join(axes)}) without the "
                         f"batch axis, got {shape}.{(' ' + hint) if hint else ''}")
    return shape


def floating_input(owner: str, x: Any, dtype: Any):
    """Return ``x`` as a JAX array of ``dtype``; integer and bool inputs are cast.

    Complex and non-numeric inputs raise ``TypeError``.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating) or not (
            jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
        raise TypeError(f"{owner}: expected a real-valued input, got dtype {x.dtype}.")
    if x.dtype != dtype:
        x = x.astype(dtype)
    return x


def batched_rank(owner: str, x: Any, min_rank: int) -> None:
    """Raise unless ``x`` has at least ``min_rank`` axes including the batch axis."""
    if np.ndim(x) < min_rank:
        raise ValueError(f"{owner}: expected input with a batch axis and rank >= {min_rank}, "
                         f"got shape {tuple(np.shape(x))}. Add the batch axis, e.g. "
                         f"x[None] for a single example.")


def compute_dtype(owner: str, value: Any):
    """Normalize a ``compute_dtype`` argument to a dtype name (or ``None``).

    Accepts ``None``, a floating dtype or its name (``"bfloat16"``, ``jnp.float16``).
    """
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{owner}: `compute_dtype` must be None or a floating dtype such as "
                        f"'bfloat16', got {value!r}.") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{owner}: `compute_dtype` must be a floating dtype such as "
                        f"'bfloat16', got {dtype}.")
    return dtype.name


# ------------------------------------------------------------------ one home per small rule

def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer and not a bool (``True`` is not a step or a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def at_least_float32(dtype: Any):
    """The dtype statistics are computed in: ``dtype`` itself, or float32 if narrower.

    >>> import jax.numpy as jnp
    >>> at_least_float32(jnp.bfloat16), at_least_float32(jnp.float64)
    (dtype('float32'), dtype('float64'))
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating) or jnp.finfo(dtype).bits < 32:
        return jnp.dtype(jnp.float32)
    return dtype


def path_str(path: Any) -> str:
    """A pytree key path as ``"dense_0/kernel"`` (the form every jaxdl message uses).

    >>> import jax
    >>> [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path({"a": {"b": 1}})[0]]
    ['a/b']
    """
    return jax.tree_util.keystr(tuple(path), simple=True, separator="/")


def lookup(owner: str, kind: str, name: Any, registry: dict) -> Any:
    """``registry[name]``, or a ValueError listing the known names of this ``kind``.

    Every name registry (activations, initializers, losses, metrics) looks up through
    this one function, so the error reads the same everywhere.
    """
    if isinstance(name, str) and name in registry:
        return registry[name]
    raise ValueError(f"{owner}: unknown {kind} {name!r}; expected one of "
                     f"{', '.join(sorted(registry))}, or a function.")
