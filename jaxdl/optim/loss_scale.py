"""Dynamic loss scaling for float16 training (like Keras's ``LossScaleOptimizer``).

In float16 the smallest positive number is about 6e-8: gradients smaller than
that flush to zero and the model stops learning. Multiplying the loss by a
large scale ``S`` before differentiating multiplies every gradient by ``S``
too, lifting them into float16's range; the optimizer then divides by ``S``
again. A scale too large overflows some gradient to ``inf``: that step is
skipped and the scale shrinks. After ``growth_interval`` finite steps in a
row the scale grows again, so it tracks the largest scale that does not
overflow.

The training step reads the current scale from the optimizer state with
:func:`loss_scale_of` and multiplies its loss by it; :func:`dynamic_loss_scale`
unscales the gradients it receives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxdl import _checks
from jaxdl._typing import Array
from jaxdl.optim._base import check_hyper

__all__ = ["DynamicLossScaleState", "dynamic_loss_scale", "loss_scale_of"]


class DynamicLossScaleState(NamedTuple):
    """State of :func:`dynamic_loss_scale`.

    Attributes:
        scale: float32 scalar, the factor the loss is multiplied by.
        good_steps: int32 scalar, finite steps since the scale last changed.
        inner_state: the wrapped optimizer's state (unchanged by skipped steps).
    """

    scale: Array
    good_steps: Array
    inner_state: Any


def _check_arguments(inner, initial_scale, growth_interval, factor, min_scale) -> None:
    owner = "optim.dynamic_loss_scale"
    if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
        raise TypeError(f"{owner}: `inner` must be an optax GradientTransformation, got "
                        f"{inner!r}. Pass e.g. optim.adam(1e-3).")
    check_hyper(owner, "initial_scale", initial_scale, low=0.0, low_open=True,
                hint="Use a power of two such as 2.0**15.")
    check_hyper(owner, "factor", factor, low=1.0, low_open=True,
                hint="Use 2.0 (the scale halves on overflow and doubles on growth).")
    check_hyper(owner, "min_scale", min_scale, low=0.0, low_open=True,
                hint="Use 1.0 (never scale the loss down).")
    if not _checks.is_int(growth_interval) or growth_interval < 1:
        raise ValueError(f"{owner}: `growth_interval` must be a positive int (finite steps "
                         f"before the scale grows), got {growth_interval!r}. Use e.g. 2000.")
    if float(min_scale) > float(initial_scale):
        raise ValueError(f"{owner}: `min_scale` ({min_scale!r}) must not exceed "
                         f"`initial_scale` ({initial_scale!r}). Lower min_scale.")


def dynamic_loss_scale(inner: optax.GradientTransformation, initial_scale: float = 2.0 ** 15,
                       growth_interval: int = 2000, factor: float = 2.0,
                       min_scale: float = 1.0) -> optax.GradientTransformation:
    """Wrap ``inner`` so that it receives unscaled gradients of a scaled loss.

    ``update`` divides the incoming gradients by the current scale ``S``. If
    they are all finite it returns ``inner``'s update and state, counts the
    step, and multiplies ``S`` by ``factor`` after ``growth_interval`` finite
    steps in a row. If any is ``inf`` or ``NaN`` it returns zero updates (the
    step is skipped, ``inner``'s state is kept as it was) and divides ``S`` by
    ``factor``, never below ``min_scale``. With a power-of-two ``S`` and no
    overflow the updates equal ``inner``'s on the unscaled loss exactly.

    The caller multiplies its loss by :func:`loss_scale_of` of the optimizer
    state before taking the gradient (``train.make_train_step`` does).

    Args:
        inner: the optimizer to protect.
        initial_scale: the first scale (``2**15``, as in Keras).
        growth_interval: finite steps in a row before the scale grows.
        factor: growth and shrink factor, > 1.
        min_scale: the scale never falls below this.

    Returns:
        An ``optax.GradientTransformation`` whose state is a
        :class:`DynamicLossScaleState`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> opt = optim.dynamic_loss_scale(optim.sgd(0.1), initial_scale=8.0)
        >>> state = opt.init(jnp.zeros(1))
        >>> u, state = opt.update(jnp.array([8.0]), state)    # the gradient 1.0, scaled by 8
        >>> print(u, float(optim.loss_scale_of(state)))
        [-0.1] 8.0
        >>> u, state = opt.update(jnp.array([jnp.inf]), state)  # overflow: skip, halve
        >>> print(u, float(optim.loss_scale_of(state)))
        [0.] 4.0
    """
    _check_arguments(inner, initial_scale, growth_interval, factor, min_scale)

    def init(params):
        return DynamicLossScaleState(scale=jnp.asarray(initial_scale, jnp.float32),
                                     good_steps=jnp.zeros((), jnp.int32),
                                     inner_state=inner.init(params))

    def update(updates, state, params=None):
        scale = state.scale
        grads = jax.tree.map(lambda g: g / scale.astype(g.dtype), updates)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(g))
                                      for g in jax.tree.leaves(grads)] or [True]))
        # Zeros instead of inf/NaN, so that the inner update of a skipped step stays finite.
        safe = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        new_updates, new_inner = inner.update(safe, state.inner_state, params)
        new_updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)),
                                   new_updates)
        inner_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                   new_inner, state.inner_state)
        good = jnp.where(finite, state.good_steps + 1, 0)
        grown = scale * factor
        grow = finite & (good >= growth_interval) & jnp.isfinite(grown)
        shrunk = jnp.maximum(scale / factor, jnp.asarray(min_scale, scale.dtype))
        new_scale = jnp.where(grow, grown, jnp.where(finite, scale, shrunk))
        good = jnp.where(grow, 0, good).astype(jnp.int32)
        return new_updates, DynamicLossScaleState(scale=new_scale.astype(jnp.float32),
                                                  good_steps=good, inner_state=inner_state)

    return optax.GradientTransformation(init, update)


def loss_scale_of(opt_state: Any) -> Array:
    """The current loss scale held anywhere in ``opt_state`` (float32 scalar).

    Looks through chains, masked and injected states for the
    :class:`DynamicLossScaleState` of :func:`dynamic_loss_scale`; returns
    ``1.0`` when there is none, so a training step can always multiply its
    loss by it.

    Raises:
        ValueError: ``opt_state`` holds more than one dynamic loss scale.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> float(optim.loss_scale_of(optim.adam(1e-3).init(jnp.zeros(2))))
        1.0
        >>> opt = optim.chain(optim.dynamic_loss_scale(optim.adam(1e-3)), optim.lr_multiplier())
        >>> float(optim.loss_scale_of(opt.init(jnp.zeros(2))))
        32768.0
    """
    def is_scale(node):
        return isinstance(node, DynamicLossScaleState)

    found = [node for node in jax.tree.leaves(opt_state, is_leaf=is_scale) if is_scale(node)]
    if len(found) > 1:
        raise ValueError(f"optim.loss_scale_of: expected at most one dynamic_loss_scale in the "
                         f"optimizer state, found {len(found)}. Wrap the optimizer once, "
                         f"around the whole chain (Trainer(compute_dtype='float16') "
                         f"already adds one: pass it the bare optimizer).")
    if not found:
        return jnp.ones((), jnp.float32)
    return jnp.asarray(found[0].scale, jnp.float32)
