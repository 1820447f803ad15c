"""Weight penalties as functions of the params tree.

``l1``, ``l2`` and ``elastic_net`` each return a penalty: a small frozen
dataclass whose ``__call__(params)`` gives a scalar to add to the loss::

    penalty = regularizers.l2(1e-4)
    total = jnp.mean(loss_fn(predictions, y)) + penalty(params)

Which leaves are penalized:

* By default, the *kernel* leaves: those whose last dict key on the way from
  the root is ``"kernel"`` (``params["dense_0"]["kernel"]``). Biases, norm
  scales and offsets, embeddings and PReLU slopes are left alone, as in Keras,
  where a ``kernel_regularizer`` touches only the kernel.
* ``mask=`` changes that. It is either a callable ``(path, leaf) -> bool``,
  where ``path`` is the ``/``-joined key path (``"dense_0/kernel"``), or a
  pytree of Python bools with the params' structure. The bool tree may also
  be a prefix of the params tree: ``{"dense_0": True, "dense_1": False}``
  selects every leaf under ``dense_0``.

A penalty that selects no leaf at all raises ``ValueError`` rather than
silently returning 0 (the usual cause is params whose weights are not named
``"kernel"``; pass a ``mask``).

Sums accumulate in float32 even for float16/bfloat16 params; float64 params
accumulate (and come back) in float64. Penalties are pure functions of
``params``, so they can be jitted and differentiated.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks

__all__ = ["l1", "l2", "elastic_net", "L1", "L2", "ElasticNet"]

Mask = Optional[Union[Callable[[str, Any], bool], Any]]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _check_strength(owner, argument, value):
    """Return ``value`` as a float, or raise naming ``argument``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating, np.ndarray, jax.Array)
    ):
        raise TypeError(
            f"{owner}: {argument} must be a non-negative number, got "
            f"{value!r} of type {type(value).__name__}."
        )
    if np.ndim(value) != 0:
        raise ValueError(
            f"{owner}: {argument} must be a scalar, got an array of shape "
            f"{np.shape(value)}."
        )
    strength = float(np.asarray(value))
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(
            f"{owner}: {argument} must be a finite number >= 0, got {value!r}. "
            f"Typical values are between 1e-6 and 1e-2."
        )
    return strength


def _is_kernel_path(path):
    """True when the last dict key on ``path`` is ``"kernel"``."""
    for entry in reversed(path):
        if isinstance(entry, jax.tree_util.DictKey):
            return entry.key == "kernel"
    return False


def _selected_leaves(owner, params, mask):
    """List of ``(path_string, leaf)`` the penalty applies to."""
    if mask is None or callable(mask):
        selected = []
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            name = _checks.path_str(path)
            if mask is None:
                keep = _is_kernel_path(path)
            else:
                keep = mask(name, leaf)
                if not isinstance(keep, (bool, np.bool_)):
                    raise TypeError(
                        f"{owner}: the mask callable must return a Python bool "
                        f"for each (path, leaf), got {keep!r} for {name!r}. "
                        f"Decide from the path (or the leaf's shape), not from "
                        f"array values."
                    )
            if keep:
                selected.append((name, leaf))
        return selected

    # A pytree of bools with the params' structure (or a prefix of it).
    mask_paths, mask_def = jax.tree_util.tree_flatten_with_path(mask)
    try:
        subtrees = mask_def.flatten_up_to(params)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{owner}: the mask tree does not match the params tree: mask has "
            f"structure {mask_def}, params have structure "
            f"{jax.tree_util.tree_structure(params)}. Build the mask from the "
            f"params, e.g. jax.tree_util.tree_map(lambda w: w.ndim > 1, "
            f"params). ({err})"
        ) from None
    selected = []
    for (mask_path, keep), subtree in zip(mask_paths, subtrees, strict=True):
        if not isinstance(keep, (bool, np.bool_)):
            raise TypeError(
                f"{owner}: mask leaves must be Python bools, got {keep!r} at "
                f"{_checks.path_str(mask_path)!r}."
            )
        if keep:
            for sub_path, leaf in jax.tree_util.tree_flatten_with_path(subtree)[0]:
                selected.append((_checks.path_str(tuple(mask_path) + tuple(sub_path)), leaf))
    return selected


def _abs(w):
    """|w| whose derivative is sign(w), so 0 at w = 0.

    ``jnp.abs`` differentiates to 1 at 0, which would keep pushing weights
    that L1 has driven to exactly zero. ``w * sign(w)`` has the same value
    and, since sign is flat, the derivative sign(w).
    """
    return w * jnp.sign(w)


def _penalty_terms(owner, params, mask, functions):
    """Return one scalar per entry of ``functions``: Σ over selected leaves of f(w)."""
    selected = _selected_leaves(owner, params, mask)
    if not selected:
        paths = [n for n, _ in _selected_leaves(owner, params, lambda n, w: True)]
        shown = ", ".join(repr(p) for p in paths[:8]) + (", ..." if len(paths) > 8 else "")
        raise ValueError(
            f"{owner}: no leaf of params was selected, so the penalty would "
            f"always be 0. By default only leaves named 'kernel' are "
            f"penalized; the params' leaves are [{shown}]. Pass "
            f"mask=lambda path, leaf: ... (or a tree of bools) to choose them."
        )
    arrays = []
    for name, leaf in selected:
        leaf = jnp.asarray(leaf)
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"{owner}: selected leaf {name!r} has dtype {leaf.dtype}; only "
                f"floating-point params can be penalized. Exclude it with mask=."
            )
        arrays.append(leaf)
    acc = jnp.float64 if any(a.dtype == jnp.float64 for a in arrays) else jnp.float32
    return _sum_terms(arrays, functions=tuple(functions), acc=jnp.dtype(acc))


@functools.partial(jax.jit, static_argnames=("functions", "acc"))
def _sum_terms(arrays, functions, acc):
    # One compiled reduction (inlined under a caller's jit), instead of one
    # small eager computation per leaf and term.
    totals = []
    for fn in functions:
        total = jnp.zeros((), acc)
        for a in arrays:
            total = total + jnp.sum(fn(a.astype(acc)))
        totals.append(total)
    return totals


# --------------------------------------------------------------------------
# Penalties
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class L1:
    r"""L1 penalty :math:`\lambda \sum_i |w_i|`. Build it with :func:`l1`."""

    strength: float
    mask: Mask = None

    def __post_init__(self):
        object.__setattr__(self, "strength", _check_strength("l1", "strength", self.strength))

    def __call__(self, params):
        (abs_sum,) = _penalty_terms("l1", params, self.mask, (_abs,))
        return self.strength * abs_sum


@dataclasses.dataclass(frozen=True)
class L2:
    r"""L2 penalty :math:`\lambda \sum_i w_i^2`. Build it with :func:`l2`."""

    strength: float
    mask: Mask = None

    def __post_init__(self):
        object.__setattr__(self, "strength", _check_strength("l2", "strength", self.strength))

    def __call__(self, params):
        (sq_sum,) = _penalty_terms("l2", params, self.mask, (jnp.square,))
        return self.strength * sq_sum


@dataclasses.dataclass(frozen=True)
class ElasticNet:
    r"""Penalty :math:`\lambda_1 \sum_i |w_i| + \lambda_2 \sum_i w_i^2`.

    Build it with :func:`elastic_net`.
    """

    l1: float = 0.01
    l2: float = 0.01
    mask: Mask = None

    def __post_init__(self):
        object.__setattr__(self, "l1", _check_strength("elastic_net", "l1", self.l1))
        object.__setattr__(self, "l2", _check_strength("elastic_net", "l2", self.l2))

    def __call__(self, params):
        abs_sum, sq_sum = _penalty_terms(
            "elastic_net", params, self.mask, (_abs, jnp.square)
        )
        return self.l1 * abs_sum + self.l2 * sq_sum


def l1(strength, *, mask=None):
    r"""L1 (lasso) weight penalty.

    .. math::

        R(\theta) = \lambda \sum_{w \in \text{kernels}} \sum_i |w_i|

    Its gradient is :math:`\lambda\,\operatorname{sign}(w)` (0 at exactly 0),
    which pushes weights to exactly zero.

    Args:
        strength: :math:`\lambda \ge 0`.
        mask: which leaves to penalize; ``None`` (default) selects the
            ``"kernel"`` leaves. Otherwise a callable ``(path, leaf) -> bool``
            with ``path`` like ``"dense_0/kernel"``, or a pytree of bools with
            the params' structure (or a prefix of it).

    Returns:
        A penalty ``params -> scalar`` (an :class:`L1` instance).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import regularizers
        >>> params = {"dense_0": {"kernel": jnp.array([[1.0, -2.0]]),
        ...                       "bias": jnp.array([5.0, 5.0])}}
        >>> regularizers.l1(0.1)(params)
        Array(0.3, dtype=float32)
    """
    return L1(strength, mask)


def l2(strength, *, mask=None):
    r"""L2 (ridge, weight-decay) penalty, in Keras's form (no ½).

    .. math::

        R(\theta) = \lambda \sum_{w \in \text{kernels}} \sum_i w_i^2

    Its gradient is :math:`2\lambda w`.

    Args:
        strength: :math:`\lambda \ge 0`.
        mask: which leaves to penalize; ``None`` (default) selects the
            ``"kernel"`` leaves. Otherwise a callable ``(path, leaf) -> bool``
            with ``path`` like ``"dense_0/kernel"``, or a pytree of bools with
            the params' structure (or a prefix of it).

    Returns:
        A penalty ``params -> scalar`` (an :class:`L2` instance).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import regularizers
        >>> params = {"dense_0": {"kernel": jnp.array([[1.0, -2.0]]),
        ...                       "bias": jnp.array([5.0, 5.0])}}
        >>> regularizers.l2(0.1)(params)
        Array(0.5, dtype=float32)
    """
    return L2(strength, mask)


def elastic_net(l1=0.01, l2=0.01, *, mask=None):
    r"""Elastic-net penalty: L1 and L2 together.

    .. math::

        R(\theta) = \lambda_1 \sum_i |w_i| + \lambda_2 \sum_i w_i^2

    summed over the kernel leaves (or the leaves ``mask`` selects).

    Args:
        l1: :math:`\lambda_1 \ge 0`, the L1 strength.
        l2: :math:`\lambda_2 \ge 0`, the L2 strength.
        mask: which leaves to penalize, as in :func:`l1`.

    Returns:
        A penalty ``params -> scalar`` (an :class:`ElasticNet` instance).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import regularizers
        >>> params = {"dense_0": {"kernel": jnp.array([[1.0, -2.0]]),
        ...                       "bias": jnp.array([5.0, 5.0])}}
        >>> regularizers.elastic_net(l1=0.5, l2=0.25)(params)
        Array(2.75, dtype=float32)
    """
    return ElasticNet(l1, l2, mask)
