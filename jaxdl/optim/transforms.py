"""Gradient transformations written out by hand.

Each function here returns an ``optax.GradientTransformation`` (``init``,
``update``) whose state is a NamedTuple defined in this module. In the
formulas, ``g`` is the incoming update (the gradient, or the output of the
previous transform in a chain), ``u`` the outgoing update, ``t`` the step
number starting at 1, and every operation is elementwise, leaf by leaf.

The arithmetic follows optax 0.2.8 operation by operation (the same products,
sums and order), so that float64 trajectories agree with optax's to rounding.
The one deliberate difference is numerical safety in low precision: running
statistics of float16 and bfloat16 leaves are kept in float32 (see
:mod:`jaxdl.optim._base`), and the update comes back in the incoming dtype.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks
from jaxdl.optim._base import (
    cast,
    check_hyper,
    check_params_floating,
    check_rate,
    is_python_scalar,
    one_minus_pow,
    safe_increment,
    widest,
    zeros_count,
)

__all__ = [
    "ScaleByScheduleState",
    "TraceState",
    "MovingAverageState",
    "ScaleByAdagradState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByStddevState",
    "ScaleByStddevWithCountState",
    "ScaleByAdamState",
    "AddDecayedWeightsState",
    "scale",
    "scale_by_learning_rate",
    "trace",
    "moving_average",
    "scale_by_adagrad",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adam",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    "global_norm",
]


# ---------------------------------------------------------------- helpers ---


def _lift(rule: Callable) -> Callable:
    """Lifts a per-leaf update rule to pytrees, with the dtype policy built in.

    ``rule(dt, g, *state) -> (u, *new_state)`` computes one leaf's update and
    new statistics in the dtype ``dt``; its arguments arrive already cast to
    ``dt``, at least float32 and wide enough for the incoming update and every
    state leaf. The lifted function
    ``(updates, *state_trees) -> (updates, *new_state_trees)`` maps the rule
    over the leaves of ``updates`` and casts each result back: the update to
    the incoming update's dtype, each statistic to its own stored dtype. (The
    idea of jax's ``example_libraries.optimizers.optimizer`` decorator.)
    """

    def leaf(g, *state):
        dt = widest(g.dtype, *(x.dtype for x in state))
        u, *new = rule(dt, g.astype(dt), *(x.astype(dt) for x in state))
        return (u.astype(g.dtype), *(n.astype(x.dtype) for n, x in zip(new, state, strict=True)))

    def tree_fn(updates, *state_trees):
        leaves, treedef = jax.tree.flatten(updates)
        columns = [leaves] + [treedef.flatten_up_to(tree) for tree in state_trees]
        results = [leaf(*xs) for xs in zip(*columns, strict=True)]
        return tuple(
            treedef.unflatten([r[i] for r in results]) for i in range(len(columns))
        )

    return tree_fn


def _ema(decay: Any, dt: Any, new: jax.Array, old: jax.Array) -> jax.Array:
    """The moving-average step ``(1 - decay) * new + decay * old`` in ``dt``,
    with optax's ``update_moment`` order of operations."""
    return cast(1 - decay, dt) * new + cast(decay, dt) * old


def _zeros_acc(params: Any, dtype: Any = None) -> Any:
    """Zeros shaped like params, in ``dtype`` or the accumulator dtype of each leaf."""
    return jax.tree.map(
        lambda p: jnp.zeros(jnp.shape(p), dtype or _checks.at_least_float32(jnp.result_type(p))),
        params,
    )


def _full_acc(params: Any, value: Any) -> Any:
    """``value`` filled like params, in the accumulator dtype of each leaf."""
    return jax.tree.map(
        lambda p: jnp.full(jnp.shape(p), value, _checks.at_least_float32(jnp.result_type(p))),
        params,
    )


def _debias_by(decay: Any, count: Optional[jax.Array]) -> Callable:
    """The bias correction ``x -> x / (1 - decay**count)``, the factor computed
    once per update (:func:`one_minus_pow`) and cast to each x's dtype; the
    identity when ``count`` is None (no bias correction)."""
    if count is None:
        return lambda x: x
    factor = one_minus_pow(decay, count)
    return lambda x: x / factor.astype(x.dtype)


# ------------------------------------------------------------------ scale ---


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_learning_rate` with a schedule.

    Attributes:
        count: int32 scalar, shape ``()``: the number of updates done so far;
            the schedule is evaluated at this value (0 on the first update).
    """

    count: jax.Array


def scale(step_size: Any) -> optax.GradientTransformation:
    r"""Multiplies every update by a fixed number: :math:`u = s\,g`.

    Args:
        step_size: a float or scalar array :math:`s` (no sign flip).

    Returns:
        A stateless ``optax.GradientTransformation`` (state ``EmptyState()``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale(-0.5)
        >>> u, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(u)
        [-1.]
    """
    check_hyper("optim.scale", "step_size", step_size)

    def update(updates, params):
        del params
        return jax.tree.map(lambda g: cast(step_size, g.dtype) * g, updates)

    return optax.stateless(update)


def scale_by_learning_rate(learning_rate: Any) -> optax.GradientTransformation:
    r"""Turns a direction into a descent step: :math:`u_t = -\eta_t\, g_t`.

    :math:`\eta_t` is ``learning_rate`` itself when it is a number, or
    ``learning_rate(t - 1)`` when it is a schedule (a callable of the int32
    step count, evaluated at 0 on the first update, as in optax). The rate is
    cast to each leaf's dtype before the product.

    Args:
        learning_rate: a float >= 0, a scalar array (possibly traced, e.g. from
            :func:`jaxdl.optim.inject_hyperparams`), or a schedule.

    Returns:
        An ``optax.GradientTransformation``. Its state is ``EmptyState()`` for a
        fixed rate and :class:`ScaleByScheduleState` for a schedule.

    Raises:
        TypeError: ``learning_rate`` is not a number, array or callable.
        ValueError: ``learning_rate`` is a negative number.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale_by_learning_rate(optim.schedules.exponential_decay(1.0, 1, 0.5))
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.array([1.0]), state)
        >>> u2, state = tx.update(jnp.array([1.0]), state)
        >>> print(u, u2)
        [-1.] [-0.5]
    """
    check_rate("optim.scale_by_learning_rate", "learning_rate", learning_rate)

    def descend(rate, updates):
        if is_python_scalar(rate):
            step = -rate
            return jax.tree.map(lambda g: step * g, updates)
        return jax.tree.map(lambda g: -jnp.asarray(rate).astype(g.dtype) * g, updates)

    if not callable(learning_rate):
        return optax.stateless(lambda updates, params: descend(learning_rate, updates))

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=zeros_count())

    def update_fn(updates, state, params=None):
        del params
        updates = descend(learning_rate(state.count), updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------- momentum ---


class TraceState(NamedTuple):
    """State of :func:`trace`.

    Attributes:
        trace: the momentum buffer :math:`m`, a tree shaped like the params;
            each leaf has the param's shape and dtype ``accumulator_dtype``
            when given, else float32 for float16/bfloat16 params and the
            param's own dtype otherwise. Zeros at init.
    """

    trace: Any


def _momentum(
    owner: str, decay: Any, nesterov: bool, *, damped: bool, state: Callable,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
    """The transform behind :func:`trace` and :func:`moving_average`.

    ``m_t = d g_t + mu m_{t-1}`` and ``u_t = m_t`` (or ``d g_t + mu m_t`` with the
    Nesterov look-ahead), where ``d = 1 - mu`` for the course's moving average
    (``damped``) and ``d = 1`` for classical momentum. ``state`` builds the
    one-field state NamedTuple from the buffer.
    """
    check_hyper(owner, "decay", decay, low=0.0, high=1.0)

    def init_fn(params):
        check_params_floating(owner, params)
        return state(_zeros_acc(params, accumulator_dtype))

    @_lift
    def step(dt, g, m):
        mu = cast(decay, dt)
        g = cast(1 - decay, dt) * g if damped else g
        m = g + mu * m
        return (g + mu * m if nesterov else m), m

    def update_fn(updates, buffer, params=None):
        del params
        updates, new_buffer = step(updates, buffer[0])
        return updates, state(new_buffer)

    return optax.GradientTransformation(init_fn, update_fn)


def trace(
    decay: Any,
    nesterov: bool = False,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformation:
    r"""Classical (heavy-ball) momentum, with an optional Nesterov look-ahead.

    .. math::

        m_t = g_t + \mu\, m_{t-1}, \qquad
        u_t = \begin{cases} m_t & \text{plain (Polyak 1964)} \\
                            g_t + \mu\, m_t & \text{Nesterov (Sutskever et al. 2013)}
              \end{cases}

    with :math:`m_0 = 0`. The buffer *sums* gradients, so at a steady gradient
    it grows to :math:`g / (1-\mu)`: this is optax's ``trace`` and PyTorch's
    ``SGD(momentum=...)``. The course's averaged form is :func:`moving_average`.

    Args:
        decay: the momentum coefficient :math:`\mu` in [0, 1].
        nesterov: use the Nesterov look-ahead update.
        accumulator_dtype: optional dtype for the buffer.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`TraceState`.

    References:
        Polyak, "Some methods of speeding up the convergence of iteration
        methods", 1964. Sutskever, Martens, Dahl & Hinton, "On the importance of
        initialization and momentum in deep learning", ICML 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.trace(0.5)
        >>> s = tx.init(jnp.zeros(1))
        >>> u, s = tx.update(jnp.ones(1), s)
        >>> u, s = tx.update(jnp.ones(1), s)
        >>> print(u)
        [1.5]
    """
    return _momentum("optim.trace", decay, nesterov, damped=False, state=TraceState,
                     accumulator_dtype=accumulator_dtype)


class MovingAverageState(NamedTuple):
    """State of :func:`moving_average`.

    Attributes:
        average: the velocity :math:`v`, a tree shaped like the params; each
            leaf has the param's shape, float32 for float16/bfloat16 params and
            the param's own dtype otherwise. Zeros at init.
    """

    average: Any


def moving_average(decay: Any, nesterov: bool = False) -> optax.GradientTransformation:
    r"""The course's momentum: an exponential moving average of the gradients.

    .. math::

        v_t = \beta\, v_{t-1} + (1-\beta)\, g_t, \qquad
        u_t = \begin{cases} v_t & \text{plain} \\
                            \beta\, v_t + (1-\beta)\, g_t & \text{Nesterov look-ahead}
              \end{cases}

    with :math:`v_0 = 0` and no bias correction. Compared with :func:`trace`
    (:math:`m_t = g_t + \beta m_{t-1}`) every value is multiplied by
    :math:`1-\beta`: :math:`v_t = (1-\beta)\, m_t` exactly, so the step is
    :math:`1/(1-\beta)` times smaller (10 times at :math:`\beta = 0.9`).

    Args:
        decay: :math:`\beta` in [0, 1].
        nesterov: return the look-ahead average instead of :math:`v_t`.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`MovingAverageState`.

    References:
        Polyak 1964 (heavy ball); Nesterov, "A method for solving the convex
        programming problem with convergence rate O(1/k^2)", 1983; Sutskever et
        al. 2013 for the look-ahead form used in deep learning.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.moving_average(0.9)
        >>> u, s = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
        >>> print(u)
        [0.1]
    """
    return _momentum("optim.moving_average", decay, nesterov, damped=True,
                     state=MovingAverageState)


# ---------------------------------------------------------------- adagrad ---


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`.

    Attributes:
        sum_of_squares: :math:`G`, the running sum of squared gradients, a tree
            shaped like the params; each leaf has the param's shape, float32
            for float16/bfloat16 params and the param's own dtype otherwise.
            Filled with ``initial_accumulator_value`` at init.
    """

    sum_of_squares: Any


def scale_by_adagrad(
    initial_accumulator_value: Any = 0.1,
    eps: Any = 1e-7,
) -> optax.GradientTransformation:
    r"""Adagrad's per-coordinate rescaling (Duchi, Hazan & Singer 2011).

    .. math::

        G_t = G_{t-1} + g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{G_t + \epsilon}}\quad(0 \text{ where } G_t = 0)

    with :math:`G_0` = ``initial_accumulator_value`` (optax's default 0.1;
    ``eps`` is inside the square root, as in optax's ``scale_by_rss``).

    Args:
        initial_accumulator_value: :math:`G_0`, >= 0.
        eps: :math:`\epsilon` >= 0.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`ScaleByAdagradState`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale_by_adagrad(initial_accumulator_value=0.0, eps=0.0)
        >>> u, s = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))
        >>> print(u)
        [1.]
    """
    owner = "optim.scale_by_adagrad"
    check_hyper(owner, "initial_accumulator_value", initial_accumulator_value, low=0.0)
    check_hyper(owner, "eps", eps, low=0.0)

    def init_fn(params):
        check_params_floating(owner, params)
        return ScaleByAdagradState(
            sum_of_squares=_full_acc(params, initial_accumulator_value)
        )

    def update_fn(updates, state, params=None):
        del params

        @_lift
        def step(dt, g, s):
            s = jnp.square(g) + s
            inv = jnp.where(s > 0, jax.lax.rsqrt(s + cast(eps, dt)), 0.0)
            return inv * g, s

        updates, new_sum = step(updates, state.sum_of_squares)
        return updates, ScaleByAdagradState(sum_of_squares=new_sum)

    return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------- rmsprop ---


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms` without bias correction.

    Attributes:
        nu: :math:`v`, the moving average of squared gradients, a tree shaped
            like the params; each leaf has the param's shape, float32 for
            float16/bfloat16 params and the param's own dtype otherwise. Filled
            with ``initial_scale`` at init.
    """

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """State of :func:`scale_by_rms` with ``bias_correction=True``.

    Attributes:
        count: int32 scalar, shape ``()``: updates done so far.
        nu: as in :class:`ScaleByRmsState`.
    """

    count: jax.Array
    nu: Any


def _rms_setup(
    owner: str, decay: Any, eps: Any, initial_scale: Any, bias_correction: bool,
    plain: Callable, counted: Callable,
) -> Callable:
    """Checks the hyperparameters :func:`scale_by_rms` and :func:`scale_by_stddev`
    share and returns their state builder ``(count, **moments) -> state``: the
    ``counted`` state keeps the step count (bias correction), ``plain`` drops it."""
    check_hyper(owner, "decay", decay, low=0.0, high=1.0)
    check_hyper(owner, "eps", eps, low=0.0)
    check_hyper(owner, "initial_scale", initial_scale, low=0.0)
    if bias_correction:
        return counted
    return lambda count, **moments: plain(**moments)


def _rms_scaling(v: jax.Array, eps: Any, eps_in_sqrt: bool) -> jax.Array:
    e = cast(eps, v.dtype)
    if eps_in_sqrt:
        return jax.lax.rsqrt(v + e)
    return 1 / (jnp.sqrt(v) + e)


def scale_by_rms(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""RMSprop's rescaling by a moving root mean square (Hinton, lecture 6e).

    .. math::

        v_t = (1-\rho)\, g_t^2 + \rho\, v_{t-1}, \qquad
        u_t = \frac{g_t}{\sqrt{\hat v_t + \epsilon}}
        \ \text{(or } \frac{g_t}{\sqrt{\hat v_t} + \epsilon}
        \text{ with } \texttt{eps\_in\_sqrt=False)}

    where :math:`\hat v_t = v_t / (1-\rho^t)` with ``bias_correction`` and
    :math:`\hat v_t = v_t` otherwise; :math:`v_0` = ``initial_scale``.

    Args:
        decay: :math:`\rho` in [0, 1].
        eps: :math:`\epsilon` >= 0.
        initial_scale: :math:`v_0` >= 0 (optax and PyTorch use 0, TF1 used 1).
        eps_in_sqrt: put :math:`\epsilon` inside the square root (optax's
            default) or outside (PyTorch's).
        bias_correction: divide :math:`v_t` by :math:`1-\rho^t`.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`ScaleByRmsState`,
        or :class:`ScaleByRmsWithCountState` when ``bias_correction``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale_by_rms(decay=0.75, eps=0.0)
        >>> u, s = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(u)   # 2 / sqrt(0.25 * 4)
        [2.]
    """
    owner = "optim.scale_by_rms"
    make_state = _rms_setup(owner, decay, eps, initial_scale, bias_correction,
                            ScaleByRmsState, ScaleByRmsWithCountState)

    def init_fn(params):
        check_params_floating(owner, params)
        return make_state(count=zeros_count(), nu=_full_acc(params, initial_scale))

    def update_fn(updates, state, params=None):
        del params
        count = safe_increment(state.count) if bias_correction else None
        debias = _debias_by(decay, count)

        @_lift
        def step(dt, g, v):
            v = _ema(decay, dt, jnp.square(g), v)
            return _rms_scaling(debias(v), eps, eps_in_sqrt) * g, v

        updates, nu = step(updates, state.nu)
        return updates, make_state(count=count, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByStddevState(NamedTuple):
    """State of :func:`scale_by_stddev` without bias correction.

    Attributes:
        mu: :math:`m`, the moving average of gradients; zeros at init.
        nu: :math:`v`, the moving average of squared gradients; filled with
            ``initial_scale`` at init.

    Both are trees shaped like the params; each leaf has the param's shape,
    float32 for float16/bfloat16 params and the param's own dtype otherwise.
    """

    mu: Any
    nu: Any


class ScaleByStddevWithCountState(NamedTuple):
    """State of :func:`scale_by_stddev` with ``bias_correction=True``.

    Attributes:
        count: int32 scalar, shape ``()``: updates done so far.
        mu: as in :class:`ScaleByStddevState`.
        nu: as in :class:`ScaleByStddevState`.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_stddev(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""Centered RMSprop's rescaling by a moving standard deviation (Graves 2013).

    .. math::

        m_t = (1-\rho)\, g_t + \rho\, m_{t-1}, \quad
        v_t = (1-\rho)\, g_t^2 + \rho\, v_{t-1}, \quad
        u_t = \frac{g_t}{\sqrt{\hat v_t - \hat m_t^2 + \epsilon}}

    (:math:`\epsilon` outside the root with ``eps_in_sqrt=False``; the hats
    divide by :math:`1-\rho^t` with ``bias_correction``, else are identities).

    Args:
        decay: :math:`\rho` in [0, 1].
        eps: :math:`\epsilon` >= 0.
        initial_scale: :math:`v_0` >= 0.
        eps_in_sqrt: put :math:`\epsilon` inside the square root.
        bias_correction: debias :math:`m_t` and :math:`v_t`.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`ScaleByStddevState`,
        or :class:`ScaleByStddevWithCountState` when ``bias_correction``.

    References:
        Graves, "Generating sequences with recurrent neural networks", 2013.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale_by_stddev(decay=0.5, eps=0.0)
        >>> u, s = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(u)   # 2 / sqrt(0.5 * 4 - 1 ** 2)
        [2.]
    """
    owner = "optim.scale_by_stddev"
    make_state = _rms_setup(owner, decay, eps, initial_scale, bias_correction,
                            ScaleByStddevState, ScaleByStddevWithCountState)

    def init_fn(params):
        check_params_floating(owner, params)
        return make_state(count=zeros_count(), mu=_zeros_acc(params),
                          nu=_full_acc(params, initial_scale))

    def update_fn(updates, state, params=None):
        del params
        count = safe_increment(state.count) if bias_correction else None
        debias = _debias_by(decay, count)

        @_lift
        def step(dt, g, m, v):
            m = _ema(decay, dt, g, m)
            v = _ema(decay, dt, jnp.square(g), v)
            m_hat = debias(m)
            var = debias(v) - m_hat * m_hat
            return _rms_scaling(var, eps, eps_in_sqrt) * g, m, v

        updates, mu, nu = step(updates, state.mu, state.nu)
        return updates, make_state(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


# ------------------------------------------------------------------- adam ---


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`.

    Attributes:
        count: int32 scalar, shape ``()``: updates done so far (:math:`t-1`).
        mu: :math:`m`, the first moment, a tree shaped like the params; leaves
            have the param's shape and dtype ``mu_dtype`` when given, else
            float32 for float16/bfloat16 params and the param's dtype otherwise.
        nu: :math:`v`, the second moment, shaped like the params; float32 for
            float16/bfloat16 params, the param's dtype otherwise.

    All are zeros at init.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Optional[Any] = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Adam's moment estimates and rescaling (Kingma & Ba 2015).

    .. math::

        m_t &= (1-\beta_1)\, g_t + \beta_1 m_{t-1}, \qquad
        v_t = (1-\beta_2)\, g_t^2 + \beta_2 v_{t-1}, \\
        \hat m_t &= \frac{m_t}{1-\beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
        u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}.

    With ``nesterov=True`` (NAdam, Dozat 2016) the first moment is replaced by
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1)\, g_t/(1-\beta_1^t)`.

    In float16/bfloat16 the moments live in float32 and the step is computed
    there, so a zero gradient gives a zero (finite) update instead of 0/0.

    Args:
        b1: :math:`\beta_1` in [0, 1).
        b2: :math:`\beta_2` in [0, 1).
        eps: :math:`\epsilon` >= 0, outside the square root.
        eps_root: :math:`\epsilon_{root}` >= 0, inside the square root.
        mu_dtype: optional dtype to store the first moment in.
        nesterov: use the NAdam first moment.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`ScaleByAdamState`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.scale_by_adam(eps=0.0)
        >>> u, s = tx.update(jnp.array([-3.0, 0.5]), tx.init(jnp.zeros(2)))
        >>> print(jnp.round(u, 4))   # the first Adam step is about sign(g)
        [-1.  1.]
    """
    owner = "optim.scale_by_adam"
    check_hyper(owner, "b1", b1, low=0.0, high=1.0, high_open=True,
                hint="It is a decay rate; optax's default is 0.9.")
    check_hyper(owner, "b2", b2, low=0.0, high=1.0, high_open=True,
                hint="It is a decay rate; optax's default is 0.999.")
    check_hyper(owner, "eps", eps, low=0.0)
    check_hyper(owner, "eps_root", eps_root, low=0.0)

    def init_fn(params):
        check_params_floating(owner, params)
        return ScaleByAdamState(
            count=zeros_count(), mu=_zeros_acc(params, mu_dtype), nu=_zeros_acc(params)
        )

    def update_fn(updates, state, params=None):
        del params
        count = safe_increment(state.count)
        debias1, debias2 = _debias_by(b1, count), _debias_by(b2, count)
        debias1_next = _debias_by(b1, safe_increment(count)) if nesterov else None

        @_lift
        def step(dt, g, m, v):
            m = _ema(b1, dt, g, m)
            v = _ema(b2, dt, jnp.square(g), v)
            if nesterov:  # NAdam: look one step ahead on the first moment
                m_hat = cast(b1, dt) * debias1_next(m) + cast(1 - b1, dt) * debias1(g)
            else:
                m_hat = debias1(m)
            u = m_hat / (jnp.sqrt(debias2(v) + cast(eps_root, dt)) + cast(eps, dt))
            return u, m, v

        updates, mu, nu = step(updates, state.mu, state.nu)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


# ----------------------------------------------------------- weight decay ---


class AddDecayedWeightsState(NamedTuple):
    """State of :func:`add_decayed_weights` when the decay is a schedule.

    Attributes:
        count: int32 scalar, shape ``()``: updates done so far; the schedule is
            evaluated at this value.
    """

    count: jax.Array


def _add_decay(lam: Any, mask: Any, updates: Any, params: Any) -> Any:
    """``g + lam * w`` on every leaf the mask allows (all when ``mask`` is None)."""
    if _checks.is_real(lam) and lam == 0:
        return updates

    def decay(g, p):
        return g + cast(lam, p.dtype) * p

    if mask is None:
        return jax.tree.map(decay, updates, params)

    def masked(m, u, p):
        if isinstance(m, (bool, np.bool_)):
            return jax.tree.map(decay, u, p) if m else u
        return jax.tree.map(lambda a, b: jnp.where(m, decay(a, b), a), u, p)

    tree_mask = mask(params) if callable(mask) else mask
    return jax.tree.map(masked, tree_mask, updates, params)


def add_decayed_weights(
    weight_decay: Any = 0.0,
    mask: Optional[Union[Any, Callable[[Any], Any]]] = None,
) -> optax.GradientTransformation:
    r"""Adds decoupled weight decay: :math:`u = g + \lambda\, w`.

    Placed *after* an adaptive rescaling and before
    :func:`scale_by_learning_rate`, this is AdamW's decoupled decay
    (Loshchilov & Hutter 2019): the parameters shrink by :math:`\eta\lambda w`
    each step, independently of the gradient statistics.

    Args:
        weight_decay: :math:`\lambda` >= 0, a float, a scalar array or a
            schedule of the step count.
        mask: optional tree of Python bools with the params' structure (or a
            prefix of it), or a callable ``params -> such a tree``; ``False``
            leaves are left undecayed (e.g. biases and norm scales).

    Returns:
        An ``optax.GradientTransformation``; its state is ``EmptyState()``, or
        :class:`AddDecayedWeightsState` when ``weight_decay`` is a schedule.
        ``update`` requires ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.add_decayed_weights(0.1)
        >>> w = jnp.array([2.0])
        >>> u, _ = tx.update(jnp.array([1.0]), tx.init(w), w)
        >>> print(u)
        [1.2]
    """
    owner = "optim.add_decayed_weights"
    check_rate(owner, "weight_decay", weight_decay)

    def decayed(lam, updates, params):
        if params is None:
            raise ValueError(
                f"{owner}: update needs the current params to decay them, got "
                "params=None. Call update(grads, state, params)."
            )
        return _add_decay(lam, mask, updates, params)

    if not callable(weight_decay):
        return optax.stateless(lambda updates, params: decayed(weight_decay, updates, params))

    def init_fn(params):
        del params
        return AddDecayedWeightsState(count=zeros_count())

    def update_fn(updates, state, params=None):
        updates = decayed(weight_decay(state.count), updates, params)
        return updates, AddDecayedWeightsState(count=safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------- clipping ---


def clip(max_delta: Any) -> optax.GradientTransformation:
    r"""Clips every coordinate into :math:`[-\delta, \delta]`.

    :math:`u = \min(\max(g, -\delta), \delta)`, coordinate by coordinate.

    Args:
        max_delta: :math:`\delta` >= 0.

    Returns:
        A stateless ``optax.GradientTransformation`` (state ``EmptyState()``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.clip(1.0)
        >>> u, _ = tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(None))
        >>> print(u)
        [-1.   0.5  1. ]
    """
    check_hyper("optim.clip", "max_delta", max_delta, low=0.0)

    def leaf(g):
        d = cast(max_delta, g.dtype)
        return jnp.clip(g, -d, d)

    return optax.stateless(lambda updates, params: jax.tree.map(leaf, updates))


def global_norm(tree: Any) -> jax.Array:
    r"""The Euclidean norm of all leaves together, :math:`\sqrt{\sum_i \|x_i\|^2}`.

    Computed in at least float32 (the widest leaf dtype otherwise), summing the
    leaves' squared norms in tree order. An empty tree has norm 0.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dt = widest(*(x.dtype for x in leaves))
    total = None
    for x in leaves:
        sq = jnp.sum(jnp.square(x.astype(_checks.at_least_float32(x.dtype)))).astype(dt)
        total = sq if total is None else total + sq
    return jnp.sqrt(total)


def clip_by_global_norm(max_norm: Any) -> optax.GradientTransformation:
    r"""Rescales all updates together when their global norm exceeds a bound.

    .. math::

        u = \begin{cases} g & \|g\| < c \\ g\, c / \|g\| & \text{otherwise}
            \end{cases}

    where :math:`\|g\|` is the Euclidean norm over every leaf
    (:func:`global_norm`). Direction is kept, only the length is capped
    (Pascanu, Mikolov & Bengio 2013).

    Args:
        max_norm: :math:`c` > 0.

    Returns:
        A stateless ``optax.GradientTransformation`` (state ``EmptyState()``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> tx = optim.clip_by_global_norm(1.0)
        >>> u, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
        >>> print(u["a"], u["b"])
        [0.6] [0.8]
    """
    check_hyper("optim.clip_by_global_norm", "max_norm", max_norm, low=0.0, low_open=True)

    def update(updates, params):
        del params
        norm = global_norm(updates)
        keep = norm < cast(max_norm, norm.dtype)

        def leaf(g):
            dt = _checks.at_least_float32(g.dtype)
            g_ = g.astype(dt)
            scaled = (g_ / norm.astype(dt)) * cast(max_norm, dt)
            return jnp.where(keep, g_, scaled).astype(g.dtype)

        return jax.tree.map(leaf, updates)

    return optax.stateless(update)
