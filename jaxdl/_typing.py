"""Type aliases shared across jaxdl.

They are documentation for readers and type checkers; nothing is enforced.
"""

from typing import Any, Callable, Mapping, Tuple

import jax

Array = jax.Array
"""A JAX array (or anything `jnp.asarray` accepts where inputs are taken)."""

PRNGKey = jax.Array
"""A key from `jax.random.key` (new-style) or `jax.random.PRNGKey` (raw uint32)."""

Shape = Tuple[int, ...]
"""A shape without the batch axis, e.g. ``(28, 28, 1)``."""

Params = Mapping[str, Any]
"""Trainable parameters: nested dicts of arrays, ``{}`` when a layer has none."""

State = Mapping[str, Any]
"""Non-trainable state (e.g. batch-norm moving statistics): nested dicts of arrays."""

Initializer = Callable[..., jax.Array]
"""``init(key, shape, dtype=jnp.float32) -> array``."""
