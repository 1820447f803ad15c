"""Embedding: a trainable lookup table from integer ids to vectors."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base, initializers
from jaxdl.nn.base import Layer


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """Maps integer ids in ``[0, vocab_size)`` to learned vectors.

    .. math:: y[n, \\ldots, :] = E[x[n, \\ldots], :]

    Equivalent to a one-hot encoding followed by a bias-free ``Dense`` layer,
    without building the one-hot matrix: only the looked-up rows of ``E``
    receive gradient.

    Shapes: integer ``(batch, ...)`` -> ``(batch, ..., features)``.

    Ids outside ``[0, vocab_size)`` raise ``ValueError`` when ``x`` is a
    concrete array; inside ``jax.jit`` they cannot be checked and give NaN rows
    (never a silent wrap-around or clip).

    Args:
        vocab_size: number of distinct ids.
        features: length of each embedding vector.
        embeddings_init: initializer of the table (``"uniform"``: U(-0.05,
            0.05), as in Keras).
        compute_dtype: ``None`` or a lower precision such as ``"bfloat16"``:
            the looked-up rows are rounded to it and, as in ``Dense``, returned
            in the table's dtype (float32). The table, its gradient and the
            optimizer state stay float32.

    Params: ``{"embedding": (vocab_size, features)}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> emb = nn.Embedding(1000, 16)
        >>> params, state = emb.init(jax.random.key(0), (20,))
        >>> emb.apply(params, state, jnp.zeros((4, 20), jnp.int32))[0].shape
        (4, 20, 16)
    """

    vocab_size: int
    features: int
    embeddings_init: Union[str, Callable] = "uniform"
    compute_dtype: Optional[str] = None

    def __post_init__(self):
        _checks.positive_int("Embedding", "vocab_size", self.vocab_size)
        _checks.positive_int("Embedding", "features", self.features)
        initializers.get(self.embeddings_init, owner="Embedding", argument="embeddings_init")
        object.__setattr__(self, "compute_dtype",
                           _checks.compute_dtype("Embedding", self.compute_dtype))

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        _checks.shape_tuple("Embedding", input_shape)
        base.check_key("Embedding.init", key)
        table = initializers.get(self.embeddings_init)(key, (self.vocab_size, self.features),
                                                       jnp.float32)
        return {"embedding": table}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple("Embedding", input_shape) + (self.features,)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        owner = f"Embedding(vocab_size={self.vocab_size}, features={self.features})"
        if not isinstance(params, dict) or "embedding" not in params:
            base.check_params(owner, self, params, x)
        table = params["embedding"]
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(f"{owner}: expected integer ids, got dtype {x.dtype}. Cast them, "
                            f"e.g. x.astype(jnp.int32).")
        _checks.batched_rank(owner, x, 1)
        if table.shape[0] != self.vocab_size:
            raise ValueError(f"{owner}: its table has shape {tuple(table.shape)}, expected "
                             f"({self.vocab_size}, {self.features}); were the params made by "
                             f"another layer's init?")
        base.check_params(owner, self, params, x)
        if not isinstance(x, jax.core.Tracer) and x.size:
            ids = np.asarray(x)  # a concrete array, even while another function is traced
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(f"{owner}: ids must be in [0, {self.vocab_size}), but received "
                                 f"x of shape {tuple(x.shape)} with ids from {lo} to {hi}. "
                                 f"Map unknown tokens to a reserved id, or raise vocab_size.")
        # Negative ids would wrap around in jnp.take; send them out of range so they fill too.
        ids = jnp.where(x >= 0, x, self.vocab_size)
        rows = jnp.take(table, ids, axis=0, mode="fill", fill_value=jnp.nan)
        if self.compute_dtype is not None:
            rows = rows.astype(self.compute_dtype).astype(table.dtype)
        return rows, state
