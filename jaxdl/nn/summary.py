"""A Keras-style text summary of a model."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Shape
from jaxdl.nn.base import Layer, abstract_output_shape, count_params


def _bytes(tree) -> int:
    return sum(leaf.size * jnp.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree))


def _human(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}" if unit != "B" else f"{n_bytes} B"
        n_bytes /= 1024.0
    return f"{n_bytes:.2f} GB"


def _rows(model: Layer, shape: Shape):
    """(name, type, output shape, trainable count, non-trainable count) per layer."""
    key = jax.random.key(0)
    if hasattr(model, "layers") and hasattr(model, "names"):
        layers = list(zip(model.names, model.layers, strict=True))
    else:
        layers = [(f"{model.default_name()}_0", model)]
    rows = []
    params_all, state_all = {}, {}
    for i, (name, layer) in enumerate(layers):
        params, state = jax.eval_shape(lambda k, lay=layer, s=shape: lay.init(k, s),
                                       jax.random.fold_in(key, i))
        shape = abstract_output_shape(layer, params, state, shape)
        rows.append((name, type(layer).__name__, shape, count_params(params), count_params(state)))
        params_all[name], state_all[name] = params, state
    return rows, params_all, state_all


def summary(model: Layer, input_shape: Shape) -> str:
    """A table of the model's layers: name (type), output shape, parameter count.

    The shapes are inferred abstractly (``jax.eval_shape``): no weights are
    created and no FLOPs are spent, so a summary of a large model is instant.
    Trainable parameters are the layers' ``params``; non-trainable ones are
    their ``state`` (e.g. batch-norm moving mean and variance).

    Args:
        model: a layer, usually an ``nn.Sequential``.
        input_shape: the input shape without the batch axis.

    Returns:
        The table as a string (``print`` it).

    Example:
        >>> from jaxdl import nn
        >>> print(nn.summary(nn.Sequential([nn.Dense(32), nn.Dense(10)]), (784,)))  # doctest: +SKIP
    """
    shape = _checks.shape_tuple(type(model).__name__, input_shape)
    rows, params, state = _rows(model, shape)
    table = [("Layer (type)", "Output Shape", "Param #")]
    for name, kind, out, n_train, n_fixed in rows:
        table.append((f"{name} ({kind})", str((None,) + tuple(out)), f"{n_train + n_fixed:,}"))
    widths = [max(len(r[c]) for r in table) + 3 for c in range(3)]
    widths[0] = max(widths[0], 28)
    widths[1] = max(widths[1], 20)
    line = "=" * sum(widths)

    def fmt(r):
        return (r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2].rjust(widths[2] - 3)).rstrip()

    total_train = sum(r[3] for r in rows)
    total_fixed = sum(r[4] for r in rows)
    out = [f'Model: "{type(model).__name__.lower()}"', line, fmt(table[0]), line]
    out += [fmt(r) for r in table[1:]]
    out += [line,
            f"Total params: {total_train + total_fixed:,} ({_human(_bytes([params, state]))})",
            f"Trainable params: {total_train:,} ({_human(_bytes(params))})",
            f"Non-trainable params: {total_fixed:,} ({_human(_bytes(state))})",
            line]
    return "\n".join(out)
