"""jaxdl.optim: optimizers written out by hand, equal to optax step by step.

Every constructor returns an ``optax.GradientTransformation``: pass it wherever
optax expects one, chain it with optax transforms, apply its updates with
``optax.apply_updates``.

* Optimizers (``alias``): :func:`sgd`, :func:`momentum`, :func:`nesterov`,
  :func:`adagrad`, :func:`rmsprop`, :func:`adam`, :func:`adamw`.
* Primitives (``transforms``): :func:`scale`, :func:`scale_by_learning_rate`,
  :func:`trace`, :func:`moving_average`, :func:`scale_by_adagrad`,
  :func:`scale_by_rms`, :func:`scale_by_stddev`, :func:`scale_by_adam`,
  :func:`add_decayed_weights`, :func:`clip`, :func:`clip_by_global_norm`,
  combined with :func:`chain`; :func:`masked` applies one to some leaves only.
* Schedules: :mod:`jaxdl.optim.schedules`.
* Changing hyperparameters mid-training: :func:`inject_hyperparams`,
  :func:`set_hyperparams`, :func:`get_hyperparams`.
* Float16 training: :func:`dynamic_loss_scale`, :func:`loss_scale_of`.

Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from jaxdl import optim
    >>> loss = lambda w: jnp.sum((w - 3.0) ** 2)
    >>> opt = optim.adam(0.1)
    >>> @jax.jit
    ... def step(w, state):
    ...     updates, state = opt.update(jax.grad(loss)(w), state, w)
    ...     return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(2)
    >>> state = opt.init(w)
    >>> for _ in range(300):
    ...     w, state = step(w, state)
    >>> print(jnp.round(w, 2))
    [3. 3.]
"""

from jaxdl.optim import schedules
from jaxdl.optim._base import EmptyState, chain, identity
from jaxdl.optim.alias import adagrad, adam, adamw, momentum, nesterov, rmsprop, sgd
from jaxdl.optim.inject import (
    InjectHyperparamsState,
    LRMultiplierState,
    get_hyperparams,
    inject_hyperparams,
    lr_multiplier,
    set_hyperparams,
)
from jaxdl.optim.loss_scale import DynamicLossScaleState, dynamic_loss_scale, loss_scale_of
from jaxdl.optim.masked import MaskedNode, MaskedState, masked
from jaxdl.optim.transforms import (
    AddDecayedWeightsState,
    MovingAverageState,
    ScaleByAdagradState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByScheduleState,
    ScaleByStddevState,
    ScaleByStddevWithCountState,
    TraceState,
    add_decayed_weights,
    clip,
    clip_by_global_norm,
    global_norm,
    moving_average,
    scale,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_stddev,
    trace,
)

__all__ = [
    # optimizers
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    # primitives
    "chain",
    "identity",
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
    "masked",
    "global_norm",
    # states
    "EmptyState",
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
    "InjectHyperparamsState",
    "MaskedState",
    "MaskedNode",
    # hyperparameters
    "inject_hyperparams",
    "lr_multiplier",
    "LRMultiplierState",
    "set_hyperparams",
    "get_hyperparams",
    # mixed precision
    "dynamic_loss_scale",
    "loss_scale_of",
    "DynamicLossScaleState",
    # schedules
    "schedules",
]
