"""What Dense and the convolution layers share: option checks, params, bias and
activation, and the low-precision compute option."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey
from jaxdl.nn import activations, base, initializers


def check_options(owner: str, layer: Any) -> None:
    """Validate ``activation``, ``kernel_init``, ``bias_init``, a convolution's ``filters``
    against its ``groups``, and normalize ``compute_dtype``."""
    if hasattr(layer, "groups") and layer.filters % layer.groups:
        raise ValueError(f"{owner}: `filters` ({layer.filters}) must be divisible by `groups` "
                         f"({layer.groups}).")
    activations.get(layer.activation, owner=owner)
    initializers.get(layer.kernel_init, owner=owner, argument="kernel_init")
    initializers.get(layer.bias_init, owner=owner, argument="bias_init")
    if hasattr(layer, "compute_dtype"):
        object.__setattr__(layer, "compute_dtype",
                           _checks.compute_dtype(owner, layer.compute_dtype))


def init_kernel_bias(layer: Any, key: PRNGKey, kernel_shape: tuple[int, ...],
                     features: int) -> Params:
    """``{"kernel": kernel_shape, "bias": (features,)}`` (no bias when ``use_bias`` is off)."""
    base.check_key(f"{type(layer).__name__}.init", key)
    k_kernel, k_bias = jax.random.split(key)
    params = {"kernel": initializers.get(layer.kernel_init)(k_kernel, kernel_shape, jnp.float32)}
    if layer.use_bias:
        params["bias"] = initializers.get(layer.bias_init)(k_bias, (features,), jnp.float32)
    return params


def compute_operands(layer: Any, x: Array, kernel: Array) -> tuple[Array, Array, Optional[Any]]:
    """``(x, kernel, preferred_element_type)`` for the layer's matmul or convolution.

    Without ``compute_dtype`` the operands pass through (``None``: the result has
    their dtype). With it, both are cast to ``compute_dtype`` and the product is
    asked to accumulate and return in the kernel's dtype.
    """
    cd: Optional[str] = getattr(layer, "compute_dtype", None)
    if cd is None:
        return x, kernel, None
    return x.astype(cd), kernel.astype(cd), kernel.dtype


def bias_activation(layer: Any, params: Params, y: Array) -> Array:
    """``activation(y + bias)``."""
    if layer.use_bias:
        y = y + params["bias"]
    return activations.get(layer.activation)(y)


def kernel(owner: str, layer: Any, params: Any, x: Any) -> Array:
    """``params["kernel"]``; params that are not a dict or lack it raise a clear error.

    Call ``base.check_params`` once the input itself is validated: it checks the
    rest of the tree against what ``init`` makes for this input.
    """
    if not isinstance(params, Mapping) or "kernel" not in params:
        base.check_params(owner, layer, params, x)
    return params["kernel"]

