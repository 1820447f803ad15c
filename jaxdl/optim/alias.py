r"""Optimizers: each one a :func:`~jaxdl.optim.chain` of primitives.

Every optimizer takes optax's arguments and defaults for its namesake and gives
the same trajectory (to float64 rounding), and its state holds the same leaves
in the same order as optax's, so ``jax.tree.leaves`` of the two states line up.

Notation: :math:`w` the params, :math:`g_t` the gradient at step
:math:`t = 1, 2, \dots`, :math:`\eta_t` the learning rate (a number, or a
schedule evaluated at :math:`t-1`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import optax

from jaxdl import _checks
from jaxdl.optim._base import chain, check_hyper, check_rate
from jaxdl.optim.transforms import (
    add_decayed_weights,
    moving_average,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_stddev,
    trace,
)

__all__ = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]


def sgd(
    learning_rate: Any,
    momentum: Optional[Any] = 0.0,
    nesterov: bool = False,
    accumulator_dtype: Optional[Any] = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Stochastic gradient descent, optionally with classical momentum.

    Without momentum: :math:`w_{t+1} = w_t - \eta_t g_t`. With momentum
    :math:`\mu > 0` (Polyak 1964; Nesterov's variant as written by Sutskever
    et al. 2013):

    .. math::

        m_t = g_t + \mu\, m_{t-1}, \qquad
        w_{t+1} = w_t - \eta_t \begin{cases} m_t \\ g_t + \mu\, m_t & \text{(nesterov)} \end{cases}

    This is ``optax.sgd``; ``momentum=0.0`` (or ``None``) gives plain descent
    with no momentum buffer, like optax's ``momentum=None``. For the course's
    averaged momentum :math:`v = \beta v + (1-\beta) g` see :func:`momentum`.

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        momentum: :math:`\mu` in [0, 1], or ``None``.
        nesterov: use the Nesterov look-ahead.
        accumulator_dtype: optional dtype of the momentum buffer.

    Returns:
        ``chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))``,
        without the trace when there is no momentum.

    References:
        Robbins & Monro, "A stochastic approximation method", 1951. Polyak 1964.
        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization
        and momentum in deep learning", ICML 2013.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.sgd(0.1)
        >>> w = jnp.array(6.0)
        >>> state = opt.init(w)
        >>> for _ in range(2):
        ...     updates, state = opt.update(jax.grad(lambda x: x ** 2)(w), state, w)
        ...     w = optax.apply_updates(w, updates)
        ...     print(round(float(w), 4))
        4.8
        3.84
    """
    check_rate("optim.sgd", "learning_rate", learning_rate)
    if momentum is None or (_checks.is_real(momentum) and momentum == 0):
        return chain(scale_by_learning_rate(learning_rate))
    check_hyper("optim.sgd", "momentum", momentum, low=0.0, high=1.0)
    return chain(
        trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )


_COURSE_NOTE = r"""**How this differs from optax's (and PyTorch's) momentum.** Classical
    momentum, ``optim.sgd(lr, momentum=beta)`` and ``optax.sgd``, *sums* the
    gradients: :math:`m_t = g_t + \beta m_{t-1}`. The course's form *averages*
    them: :math:`v_t = \beta v_{t-1} + (1-\beta) g_t`. Unrolling both from zero
    gives :math:`v_t = (1-\beta)\, m_t` exactly, so at a steady gradient
    :math:`m \to g/(1-\beta)` while :math:`v \to g`: the classical step is
    :math:`1/(1-\beta)` times larger (10 times at :math:`\beta=0.9`). The two
    trajectories coincide when the course's learning rate is
    :math:`1/(1-\beta)` times optax's: ``optim.{name}(lr / (1 - beta), beta)``
    follows ``optax.sgd(lr, momentum=beta{nest})``. The averaged form keeps the
    learning rate's meaning ("a step of about lr times the gradient")
    independent of :math:`\beta`."""


def momentum(learning_rate: Any, beta: Any = 0.9) -> optax.GradientTransformationExtraArgs:
    r"""Gradient descent with the course's momentum (a moving average of gradients).

    .. math::

        v_t = \beta\, v_{t-1} + (1-\beta)\, g_t, \qquad
        w_{t+1} = w_t - \eta_t\, v_t, \qquad v_0 = 0.

    {note}

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        beta: :math:`\beta` in [0, 1].

    Returns:
        ``chain(moving_average(beta), scale_by_learning_rate(learning_rate))``.

    References:
        Polyak, "Some methods of speeding up the convergence of iteration
        methods", 1964 (heavy-ball momentum). Sutskever et al. 2013.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.momentum(1.0, beta=0.9)
        >>> w = jnp.array([0.0])
        >>> state = opt.init(w)
        >>> updates, state = opt.update(jnp.array([1.0]), state, w)
        >>> print(optax.apply_updates(w, updates))   # -(1 - 0.9) * 1
        [-0.1]
    """
    check_rate("optim.momentum", "learning_rate", learning_rate)
    check_hyper("optim.momentum", "beta", beta, low=0.0, high=1.0)
    return chain(moving_average(beta), scale_by_learning_rate(learning_rate))


def nesterov(learning_rate: Any, beta: Any = 0.9) -> optax.GradientTransformationExtraArgs:
    r"""Nesterov accelerated gradient in the course's moving-average form.

    .. math::

        v_t = \beta\, v_{t-1} + (1-\beta)\, g_t, \qquad
        w_{t+1} = w_t - \eta_t \left(\beta\, v_t + (1-\beta)\, g_t\right),
        \qquad v_0 = 0.

    The step "looks ahead": it applies the velocity one more decay further,
    plus the fresh gradient, which is Sutskever et al.'s reformulation of
    Nesterov's method in terms of the current weights.

    {note}

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        beta: :math:`\beta` in [0, 1].

    Returns:
        ``chain(moving_average(beta, nesterov=True), scale_by_learning_rate(learning_rate))``.

    References:
        Nesterov, "A method for solving the convex programming problem with
        convergence rate O(1/k^2)", 1983. Sutskever, Martens, Dahl & Hinton,
        "On the importance of initialization and momentum in deep learning",
        ICML 2013.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.nesterov(1.0, beta=0.5)
        >>> w = jnp.array([0.0])
        >>> state = opt.init(w)
        >>> updates, state = opt.update(jnp.array([1.0]), state, w)
        >>> print(optax.apply_updates(w, updates))   # -(0.5 * 0.5 + 0.5 * 1)
        [-0.75]
    """
    check_rate("optim.nesterov", "learning_rate", learning_rate)
    check_hyper("optim.nesterov", "beta", beta, low=0.0, high=1.0)
    return chain(moving_average(beta, nesterov=True), scale_by_learning_rate(learning_rate))


momentum.__doc__ = momentum.__doc__.replace(
    "{note}", _COURSE_NOTE.replace("{name}", "momentum").replace("{nest}", "")
)
nesterov.__doc__ = nesterov.__doc__.replace(
    "{note}", _COURSE_NOTE.replace("{name}", "nesterov").replace("{nest}", ", nesterov=True")
)


def adagrad(
    learning_rate: Any,
    initial_accumulator_value: Any = 0.1,
    eps: Any = 1e-7,
) -> optax.GradientTransformationExtraArgs:
    r"""Adagrad: per-coordinate rates shrinking with the gradients seen so far.

    .. math::

        G_t = G_{t-1} + g_t^2, \qquad
        w_{t+1} = w_t - \eta_t \frac{g_t}{\sqrt{G_t + \epsilon}},
        \qquad G_0 = \text{initial\_accumulator\_value}.

    Coordinates with large or frequent gradients slow down, rare ones keep a
    large rate, which suits sparse features. :math:`G` only grows, so the
    effective rate decays towards zero over training.

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        initial_accumulator_value: :math:`G_0` >= 0 (optax's default 0.1).
        eps: :math:`\epsilon` >= 0, inside the square root.

    Returns:
        ``chain(scale_by_adagrad(...), scale_by_learning_rate(learning_rate))``.

    References:
        Duchi, Hazan & Singer, "Adaptive subgradient methods for online
        learning and stochastic optimization", JMLR 2011.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
        >>> w = jnp.array([1.0, 1.0])
        >>> updates, _ = opt.update(jnp.array([4.0, -0.1]), opt.init(w), w)
        >>> print(optax.apply_updates(w, updates))   # first step: w - sign(g)
        [0. 2.]
    """
    check_rate("optim.adagrad", "learning_rate", learning_rate)
    return chain(
        scale_by_adagrad(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: Any,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Optional[Any] = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""RMSprop: divide by a moving root mean square of recent gradients.

    .. math::

        v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \qquad
        w_{t+1} = w_t - \eta_t \frac{g_t}{\sqrt{v_t + \epsilon}}.

    With ``centered=True`` the moving mean :math:`m_t` of the gradients is also
    kept and the denominator becomes :math:`\sqrt{v_t - m_t^2 + \epsilon}`, an
    estimate of the standard deviation (Graves 2013). With ``momentum``
    :math:`\mu`, the rescaled step :math:`s_t = \eta_t g_t/\sqrt{\cdot}` is fed
    through classical momentum, :math:`b_t = s_t + \mu b_{t-1}`,
    :math:`w_{t+1} = w_t - b_t` (the learning rate is applied *before* the
    momentum, as in optax). ``eps_in_sqrt=False`` moves :math:`\epsilon`
    outside the root (PyTorch's form); ``bias_correction`` divides the moving
    averages by :math:`1-\rho^t`.

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        decay: :math:`\rho` in [0, 1].
        eps: :math:`\epsilon` >= 0.
        initial_scale: :math:`v_0` >= 0.
        eps_in_sqrt: :math:`\epsilon` inside (default) or outside the root.
        centered: divide by the moving standard deviation.
        momentum: :math:`\mu` in [0, 1], or ``None`` for no momentum.
        nesterov: Nesterov look-ahead in the momentum.
        bias_correction: debias the moving averages.

    Returns:
        ``chain(scale_by_rms(...) or scale_by_stddev(...),
        scale_by_learning_rate(learning_rate), trace(momentum, nesterov))``,
        the trace omitted when ``momentum`` is ``None``.

    References:
        Hinton, Srivastava & Swersky, "Neural networks for machine learning",
        lecture 6e, 2012. Graves, "Generating sequences with recurrent neural
        networks", 2013 (centered form).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.rmsprop(0.01, decay=0.75, eps=0.0)
        >>> w = jnp.array([1.0])
        >>> updates, _ = opt.update(jnp.array([2.0]), opt.init(w), w)
        >>> print(optax.apply_updates(w, updates))   # 1 - 0.01 * 2 / sqrt(0.25 * 4)
        [0.98]
    """
    check_rate("optim.rmsprop", "learning_rate", learning_rate)
    rescale = scale_by_stddev if centered else scale_by_rms
    parts = [
        rescale(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
    ]
    if momentum is not None:
        parts.append(trace(decay=momentum, nesterov=nesterov))
    return chain(*parts)


def adam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Optional[Any] = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Adam: momentum on the gradient, RMSprop on its square, both debiased.

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \\
        \hat m_t &= \frac{m_t}{1-\beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
        w_{t+1} = w_t - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}.

    The bias corrections undo the pull of the zero initial moments towards 0
    in the first steps. ``nesterov=True`` gives NAdam (Dozat 2016).

    Low precision: with float16 or bfloat16 params the moments are kept in
    float32 and the update is returned in the params' dtype, so a zero gradient
    leaves the params finite (optax 0.2.8 computes :math:`0/(0+\epsilon)` in
    float16, where :math:`\epsilon = 10^{-8}` underflows to 0, and returns NaN).

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        b1: :math:`\beta_1` in [0, 1).
        b2: :math:`\beta_2` in [0, 1).
        eps: :math:`\epsilon` >= 0, outside the square root.
        eps_root: :math:`\epsilon_{root}` >= 0, inside the square root.
        mu_dtype: optional dtype to store :math:`m` in.
        nesterov: use the NAdam first moment.

    Returns:
        ``chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))``.

    References:
        Kingma & Ba, "Adam: A method for stochastic optimization", ICLR 2015.
        Dozat, "Incorporating Nesterov momentum into Adam", 2016.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.adam(0.1)
        >>> w = jnp.array([1.0, 1.0])
        >>> updates, _ = opt.update(jnp.array([5.0, -0.01]), opt.init(w), w)
        >>> print(jnp.round(optax.apply_updates(w, updates), 4))   # about w - 0.1 * sign(g)
        [0.9 1.1]
    """
    check_rate("optim.adam", "learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                      nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Optional[Any] = None,
    weight_decay: Any = 1e-4,
    mask: Optional[Union[Any, Callable[[Any], Any]]] = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW: Adam with weight decay decoupled from the gradient statistics.

    With :math:`\hat m_t, \hat v_t` as in :func:`adam`:

    .. math::

        w_{t+1} = w_t - \eta_t \left(\frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}}
        + \epsilon} + \lambda\, w_t\right).

    Adding :math:`\lambda w` to the gradient before Adam (L2 regularization)
    would be rescaled by :math:`1/\sqrt{\hat v}`, decaying weights with large
    gradients less; AdamW adds it after the rescaling so every weight decays at
    the rate :math:`\eta\lambda`.

    Args:
        learning_rate: :math:`\eta`, a float >= 0 or a schedule.
        b1: :math:`\beta_1` in [0, 1).
        b2: :math:`\beta_2` in [0, 1).
        eps: :math:`\epsilon` >= 0.
        eps_root: :math:`\epsilon_{root}` >= 0.
        mu_dtype: optional dtype to store :math:`m` in.
        weight_decay: :math:`\lambda` >= 0 (optax's default 1e-4), or a schedule.
        mask: optional tree of bools (or callable of the params returning one);
            ``False`` leaves are not decayed.
        nesterov: use the NAdam first moment (NAdamW).

    Returns:
        ``chain(scale_by_adam(...), add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate))``.

    References:
        Loshchilov & Hutter, "Decoupled weight decay regularization", ICLR 2019.
        Kingma & Ba 2015.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from jaxdl import optim
        >>> opt = optim.adamw(0.1, weight_decay=0.5)
        >>> w = jnp.array([2.0])
        >>> updates, _ = opt.update(jnp.array([0.0]), opt.init(w), w)
        >>> print(optax.apply_updates(w, updates))   # 2 - 0.1 * (0 + 0.5 * 2)
        [1.9]
    """
    check_rate("optim.adamw", "learning_rate", learning_rate)
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                      nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
