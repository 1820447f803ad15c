"""Host-side checks of training data, shared by every trainer.

Each trainer (supervised, adversarial, population) takes numpy-like data from
the user, checks it once on the host and places it on the device; the checks
and their messages live here once.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import nn

__all__ = ["host_data", "host_examples", "check_finite", "num_examples", "checked_pair",
           "short_repr", "fuses_well"]


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
                         f"nested list of numbers, got {type(a).__name__} {short_repr(a)}. "
                         f"Convert it with np.asarray(..., dtype=np.float32).")
    return out


def short_repr(a: Any) -> str:
    """``repr(a)`` cut to 60 characters, for error messages."""
    text = repr(a)
    return text if len(text) <= 60 else text[:57] + "..."


def host_data(owner: str, name: str, x):
    """Host numpy data: a tuple means several inputs; anything else (an array, a list of
    rows) becomes one array."""
    if isinstance(x, tuple):
        return tuple(_host_array(owner, f"{name}[{i}]", a) for i, a in enumerate(x))
    return _host_array(owner, name, x)


def check_finite(owner: str, name: str, x) -> None:
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


def num_examples(owner: str, x: Any, y: Any) -> int:
    """The number of examples in ``x`` and ``y`` (arrays, or tuples of arrays for several
    inputs or outputs); refused unless every array has the same, non-zero number of rows."""
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


def checked_pair(owner: str, label: str, x: Any, y: Any) -> tuple[Any, Any, int]:
    """Host copies of ``(x, y)``, checked as :func:`num_examples` and :func:`check_finite`
    do, and their number of examples; ``label`` prefixes the names (``"validation "``)."""
    x, y = host_data(owner, f"{label}x", x), host_data(owner, f"{label}y", y)
    n = num_examples(f"{owner} ({label.strip()}_data)" if label else owner, x, y)
    check_finite(owner, f"{label}x", x)
    check_finite(owner, f"{label}y", y)
    return x, y, n


def host_examples(owner: str, name: str, x: Any) -> np.ndarray:
    """One array of examples ``(n, ...)`` for a trainer without targets (a GAN, an AAE):
    numeric, at least 2-D, not empty, finite, floats kept and other numbers made float32.

    >>> host_examples("fit", "x", [[1, 2], [3, 4]]).dtype
    dtype('float32')
    """
    x = host_data(owner, name, x)
    if isinstance(x, tuple) or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise TypeError(f"{owner}: {name} must be one numeric array (n, ...), got "
                        f"{short_repr(x)}. Convert it with np.asarray(..., dtype=np.float32).")
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{owner}: {name} must be a non-empty array (n, ...) of examples, got "
                         f"shape {x.shape}. Add the batch axis ({name}[None] for one example).")
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
    check_finite(owner, name, x)
    return x


def fuses_well(*layers: Any) -> bool:
    """Whether a step through ``layers`` runs at full speed fused in ``lax.scan`` here.

    A layer declares ``scan_friendly = False`` when it runs much slower
    inside a loop body on XLA:CPU (convolutions: jax-ml/jax#12868, 2.6 vs
    19.8 steps/s for the benchmark CNN); on other backends every model fuses.

    >>> from jaxdl import nn
    >>> fuses_well(nn.Dense(3))
    True
    """
    return jax.default_backend() != "cpu" or all(nn.scan_friendly(layer) for layer in layers)
