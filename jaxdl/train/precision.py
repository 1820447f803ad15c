"""The mixed-precision policy of a whole model: the one home of its dtype rules.

With ``compute_dtype`` (``"bfloat16"``, ``"float16"``...) a training step
keeps float32 master weights and computes the model in low precision:

* the floating params (not the model state: batch-norm statistics stay
  float32) and the floating inputs are cast to ``compute_dtype`` before
  ``model.apply``; integer inputs (embedding ids) pass unchanged;
* the floating predictions come back as float32, so the loss, its
  softmax/log-softmax and the metrics run in float32;
* the cast happens inside the differentiated function, so gradients arrive
  in float32, in the params' dtype, and the optimizer state stays float32;
* float16 (5 exponent bits: gradients under ~6e-8 flush to zero) also needs
  dynamic loss scaling, :func:`with_loss_scaling`.

Layers with weights also take their own ``compute_dtype`` (``nn.Dense(...,
compute_dtype="bfloat16")``) to lower the precision of one layer only.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl import _checks, optim

__all__ = ["cast_apply", "cast_floating", "with_loss_scaling"]


def cast_floating(tree: Any, dtype: Any) -> Any:
    """``tree`` with every floating leaf cast to ``dtype``; other leaves unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> x, ids = cast_floating((jnp.ones(2), jnp.arange(2)), jnp.bfloat16)
        >>> x.dtype, ids.dtype
        (dtype(bfloat16), dtype('int32'))
    """
    def cast(leaf):
        leaf = jnp.asarray(leaf)
        return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree.map(cast, tree)


def _same_dtypes(new: Any, old: Any) -> Any:
    """``new`` cast leaf by leaf to ``old``'s dtypes when the trees match (else unchanged)."""
    if jax.tree.structure(new) != jax.tree.structure(old):
        return new
    return jax.tree.map(lambda n, o: jnp.asarray(n).astype(jnp.result_type(o)), new, old)


def cast_apply(model: Any, compute_dtype: Any) -> Callable:
    """``model.apply`` run in ``compute_dtype`` with float32 outputs.

    The returned ``apply(params, model_state, x, **kwargs) -> (y, model_state)``
    casts the floating params and the floating leaves of ``x`` (a tuple for a
    multi-input model) to ``compute_dtype``, calls ``model.apply``, and returns
    the floating leaves of ``y`` as float32 and the model state in the dtypes it
    came in. With ``compute_dtype=None`` it is ``model.apply`` itself.

    Call it inside the function you differentiate: the casts then carry the
    gradients back to the float32 params.

    Args:
        model: a layer.
        compute_dtype: ``None`` or a floating dtype (name).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> model = nn.Sequential([nn.Dense(2)])
        >>> params, state = model.init(jax.random.key(0), (3,))
        >>> apply = cast_apply(model, "bfloat16")
        >>> y, _ = apply(params, state, jnp.ones((1, 3)))
        >>> y.dtype, params["dense_0"]["kernel"].dtype
        (dtype('float32'), dtype('float32'))
    """
    cd = _checks.compute_dtype("cast_apply", compute_dtype)
    if cd is None:
        return model.apply

    def apply(params, model_state, x, **kwargs):
        y, new_state = model.apply(cast_floating(params, cd), model_state,
                                   cast_floating(x, cd), **kwargs)
        return cast_floating(y, jnp.float32), _same_dtypes(new_state, model_state)

    return apply


def with_loss_scaling(optimizer: optax.GradientTransformation,
                      compute_dtype: Any) -> optax.GradientTransformation:
    """``optimizer`` wrapped in :func:`jaxdl.optim.dynamic_loss_scale` for float16.

    float16 needs its loss scaled (its gradients underflow otherwise);
    bfloat16 and float32 share float32's exponent range and do not, so for any
    other ``compute_dtype`` the optimizer comes back unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> opt = with_loss_scaling(optim.adam(1e-3), "float16")
        >>> float(optim.loss_scale_of(opt.init(jnp.zeros(2))))
        32768.0
    """
    cd = _checks.compute_dtype("with_loss_scaling", compute_dtype)
    if cd == "float16":
        return optim.dynamic_loss_scale(optimizer)
    return optimizer
