r"""Learning-rate schedules: functions of the step count.

A schedule maps the int32 step count :math:`k = 0, 1, 2, \dots` (the number of
updates done before the current one) to a value. Pass one anywhere a
``learning_rate`` (or ``weight_decay``) is accepted; the transform keeps the
count in its state and evaluates the schedule at 0 on the first update, as
optax does. Each schedule here returns the same values, in the same dtype, as
its optax namesake (``optax.constant_schedule``, ``optax.exponential_decay``,
``optax.piecewise_constant_schedule``, ``optax.cosine_decay_schedule``,
``optax.warmup_cosine_decay_schedule``) and works under
``jax.numpy_dtype_promotion("strict")``, jitted or not.

Arguments are checked when the schedule is built; optax silently turns some
invalid ones (a non-positive ``transition_steps``, a zero ``decay_rate``) into a
constant schedule, whereas these raise ``ValueError``.

Example:
    >>> from jaxdl import optim
    >>> lr = optim.schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=4)
    >>> print([round(float(lr(k)), 3) for k in range(5)])
    [0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.optim._base import check_hyper, default_float

__all__ = [
    "constant",
    "exponential_decay",
    "piecewise_constant",
    "cosine_decay",
    "warmup_cosine_decay",
]

Schedule = Callable[[Any], Any]


def _check_steps(owner: str, name: str, value: Any, *, positive: bool) -> None:
    if not _checks.is_int(value):
        raise TypeError(
            f"{owner}: {name} must be an int, got {value!r} of type "
            f"{type(value).__name__}."
        )
    if value < (1 if positive else 0):
        raise ValueError(
            f"{owner}: {name} must be {'>= 1' if positive else '>= 0'}, got "
            f"{value}. Count steps as a whole number of updates."
        )


def _float_count(count: Any) -> Any:
    """The count as a float in the default float dtype (a Python float stays one)."""
    if isinstance(count, numbers.Integral):
        return float(count)
    count = jnp.asarray(count)
    if jnp.issubdtype(count.dtype, jnp.floating):
        return count
    return count.astype(default_float())


def constant(value: Any) -> Schedule:
    r"""The schedule :math:`\eta_k = \eta_0` for every step.

    Args:
        value: :math:`\eta_0`, a number or scalar array, returned unchanged.

    Returns:
        A schedule ``count -> value``.

    Example:
        >>> from jaxdl import optim
        >>> print(optim.schedules.constant(0.1)(1000))
        0.1
    """
    check_hyper("schedules.constant", "value", value)

    def schedule(count):
        del count
        return value

    return schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Optional[Any] = None,
) -> Schedule:
    r"""Exponential decay after an optional constant start.

    .. math::

        \eta_k = \begin{cases} \eta_0 & k \le k_0 \\
        \eta_0\, r^{(k - k_0)/T} & k > k_0 \end{cases}

    with :math:`r` = ``decay_rate``, :math:`T` = ``transition_steps``,
    :math:`k_0` = ``transition_begin``; with ``staircase`` the exponent is
    floored (the rate drops by :math:`r` every :math:`T` steps). ``end_value``
    bounds the result (a floor when :math:`r<1`, a ceiling when :math:`r>1`).

    Args:
        init_value: :math:`\eta_0`.
        transition_steps: :math:`T` >= 1.
        decay_rate: :math:`r` > 0.
        transition_begin: :math:`k_0` >= 0.
        staircase: decay in discrete jumps.
        end_value: optional bound on the value.

    Returns:
        A schedule ``count -> value`` (float32 for an int32 count, as in optax).

    Example:
        >>> from jaxdl import optim
        >>> lr = optim.schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
        >>> print(float(lr(20)))
        0.25
    """
    owner = "schedules.exponential_decay"
    check_hyper(owner, "init_value", init_value)
    _check_steps(owner, "transition_steps", transition_steps, positive=True)
    _check_steps(owner, "transition_begin", transition_begin, positive=False)
    check_hyper(owner, "decay_rate", decay_rate, low=0.0, low_open=True,
                hint="Use a rate in (0, 1) to decay, or > 1 to grow.")
    if end_value is not None:
        check_hyper(owner, "end_value", end_value)
    bound = None
    if end_value is not None:
        bound = jnp.maximum if decay_rate < 1 else jnp.minimum

    def schedule(count):
        elapsed = count - transition_begin
        exponent = elapsed / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = jnp.where(
            elapsed <= 0, init_value, init_value * jnp.power(decay_rate, exponent)
        )
        if bound is not None:
            value = bound(value, end_value)
        return value

    return schedule


def piecewise_constant(
    init_value: Any,
    boundaries_and_scales: Optional[Mapping[int, Any]] = None,
) -> Schedule:
    r"""A constant that is multiplied by a factor at given steps.

    .. math::

        \eta_k = \eta_0 \prod_{b \le k} s_b

    for the boundaries :math:`b` and scales :math:`s_b` of
    ``boundaries_and_scales``: from step :math:`b` on, the value is
    multiplied by :math:`s_b`.

    Args:
        init_value: :math:`\eta_0`.
        boundaries_and_scales: ``{step: scale}``, steps ints >= 0, scales >= 0.

    Returns:
        A schedule ``count -> value``.

    Example:
        >>> from jaxdl import optim
        >>> lr = optim.schedules.piecewise_constant(1.0, {2: 0.5, 4: 0.1})
        >>> print([round(float(lr(k)), 3) for k in range(6)])
        [1.0, 1.0, 0.5, 0.5, 0.05, 0.05]
    """
    owner = "schedules.piecewise_constant"
    check_hyper(owner, "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for step, factor in items:
        _check_steps(owner, "each boundary", step, positive=False)
        check_hyper(owner, f"the scale at step {step}", factor, low=0.0)

    def schedule(count):
        if not items:
            return init_value
        value = jnp.asarray(init_value)
        for step, factor in items:
            value = jnp.where(count < step, value, value * factor)
        return value

    return schedule


def cosine_decay(
    init_value: Any,
    decay_steps: int,
    alpha: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Cosine annealing from ``init_value`` to ``alpha * init_value``.

    .. math::

        \eta_k = \eta_0 \left((1-\alpha)\left(\tfrac12\left(1 + \cos\frac{\pi
        \min(k, K)}{K}\right)\right)^{p} + \alpha\right)

    with :math:`K` = ``decay_steps`` and :math:`p` = ``exponent``; constant at
    :math:`\alpha\eta_0` after :math:`K` steps (Loshchilov & Hutter, "SGDR:
    stochastic gradient descent with warm restarts", ICLR 2017).

    Args:
        init_value: :math:`\eta_0`.
        decay_steps: :math:`K` >= 1.
        alpha: :math:`\alpha`, the final value as a fraction of :math:`\eta_0`.
        exponent: :math:`p`.

    Returns:
        A schedule ``count -> value`` (default float dtype).

    Example:
        >>> from jaxdl import optim
        >>> lr = optim.schedules.cosine_decay(1.0, decay_steps=10)
        >>> print(round(float(lr(5)), 6), float(lr(50)))
        0.5 0.0
    """
    owner = "schedules.cosine_decay"
    check_hyper(owner, "init_value", init_value)
    _check_steps(owner, "decay_steps", decay_steps, positive=True)
    check_hyper(owner, "alpha", alpha)
    check_hyper(owner, "exponent", exponent)
    total = float(decay_steps)

    def schedule(count):
        k = jnp.minimum(_float_count(count), total)
        half_cosine = 0.5 * (1 + jnp.cos(jnp.pi * k / total))
        return init_value * ((1 - alpha) * half_cosine**exponent + alpha)

    return schedule


def _linear_warmup(init_value: Any, peak_value: Any, warmup_steps: int) -> Schedule:
    """``init + (peak - init) * k / W`` clipped at W, in optax's operation order."""
    if warmup_steps <= 0:
        return lambda count: init_value

    def schedule(count):
        k = jnp.clip(count, 0, warmup_steps)
        remaining = 1 - k / warmup_steps
        return (init_value - peak_value) * remaining + peak_value

    return schedule


def warmup_cosine_decay(
    init_value: Any,
    peak_value: Any,
    warmup_steps: int,
    decay_steps: int,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    r"""Linear warmup to a peak, then cosine decay to ``end_value``.

    .. math::

        \eta_k = \begin{cases}
        \eta_0 + (\eta_{peak} - \eta_0)\, k / W & k < W \\
        \text{cosine\_decay}(\eta_{peak}, K - W, \alpha = \eta_{end}/\eta_{peak},
        p)(k - W) & k \ge W
        \end{cases}

    with :math:`W` = ``warmup_steps`` and :math:`K` = ``decay_steps``, the
    *total* length including the warmup, as in optax (Goyal et al., "Accurate,
    large minibatch SGD", 2017 for the warmup; Loshchilov & Hutter 2017 for
    the cosine).

    Args:
        init_value: :math:`\eta_0`, the value at step 0.
        peak_value: :math:`\eta_{peak}`, reached at step :math:`W`.
        warmup_steps: :math:`W` >= 0.
        decay_steps: :math:`K` > :math:`W`.
        end_value: :math:`\eta_{end}`, the value from step :math:`K` on.
        exponent: :math:`p` of the cosine part.

    Returns:
        A schedule ``count -> value`` (float32 for an int32 count when
        ``warmup_steps > 0``, as in optax).

    Example:
        >>> from jaxdl import optim
        >>> lr = optim.schedules.warmup_cosine_decay(0.0, 1.0, 10, 110, end_value=0.1)
        >>> print(round(float(lr(5)), 6), round(float(lr(10)), 6), round(float(lr(500)), 6))
        0.5 1.0 0.1
    """
    owner = "schedules.warmup_cosine_decay"
    check_hyper(owner, "init_value", init_value)
    check_hyper(owner, "peak_value", peak_value)
    check_hyper(owner, "end_value", end_value)
    _check_steps(owner, "warmup_steps", warmup_steps, positive=False)
    _check_steps(owner, "decay_steps", decay_steps, positive=True)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"{owner}: decay_steps counts the whole schedule, warmup included, "
            f"so it must exceed warmup_steps={warmup_steps}, got "
            f"decay_steps={decay_steps}."
        )
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    warm = _linear_warmup(init_value, peak_value, warmup_steps)
    decay = cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent)

    def schedule(count):
        rising = warm(count)
        falling = decay(count - warmup_steps)
        if isinstance(rising, (jax.Array, np.ndarray)):
            # A strongly typed warmup value sets the dtype, as standard
            # promotion against the weakly typed cosine value would.
            falling = jnp.asarray(falling).astype(rising.dtype)
        return jnp.where(count < warmup_steps, rising, falling)

    return schedule
