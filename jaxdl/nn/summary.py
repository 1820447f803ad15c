"""A Keras-style text summary of a model."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Shape
from jaxdl.nn import base
from jaxdl.nn.base import Layer, abstract_output_shape, count_params
from jaxdl.nn.frozen import trainable_mask
from jaxdl.nn.graph import Model


def _bytes(tree) -> int:
    return sum(leaf.size * jnp.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree))


def _human(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}" if unit != "B" else f"{n_bytes} B"
        n_bytes /= 1024.0
    return f"{n_bytes:.2f} GB"


def _split(layer, params, state) -> tuple[list, list]:
    """The layer's trainable leaves, and its non-trainable ones (state, frozen params)."""
    flags = jax.tree.leaves(trainable_mask(layer, params))
    leaves = jax.tree.leaves(params)
    train = [leaf for leaf, flag in zip(leaves, flags, strict=True) if flag]
    fixed = [leaf for leaf, flag in zip(leaves, flags, strict=True) if not flag]
    return train, fixed + jax.tree.leaves(state)


def _input_names(model: Model) -> dict:
    return {node: node.name or f"input_{i}" for i, node in enumerate(model.inputs)}


def _graph_rows(model: Model):
    """Rows of a functional Model: its Inputs, then each layer and the nodes it is connected to."""
    params, state = jax.eval_shape(lambda: model.init(jax.random.key(0)))
    inputs = _input_names(model)
    layer_names = {id(layer): name for name, layer in zip(model.names, model.layers, strict=True)}

    def label(node):
        if node in inputs:
            return inputs[node]
        name = layer_names[id(node.layer)]
        return name if node.index is None else f"{name}[{node.index}]"

    rows = [(name, "Input", node.shape, [], [], "") for node, name in inputs.items()]
    for name, layer in zip(model.names, model.layers, strict=True):
        calls = [c for c in model.calls if c.layer is layer]
        out = base.output_shape(layer, calls[0].input_shape())
        connected = ", ".join(label(n) for c in calls for n in c.inputs)
        rows.append((name, type(layer).__name__, out,
                     *_split(layer, params.get(name, {}), state.get(name, {})), connected))
    return rows


def _rows(model: Layer, shape: Shape):
    """(name, type, output shape, trainable leaves, non-trainable leaves, inputs) per layer."""
    if isinstance(model, Model):
        return _graph_rows(model)
    if hasattr(model, "layers") and hasattr(model, "names"):
        layers = list(zip(model.names, model.layers, strict=True))
    else:
        layers = [(f"{model.default_name()}_0", model)]
    rows = []
    for i, (name, layer) in enumerate(layers):
        params, state = jax.eval_shape(  # the key is drawn inside: nothing is compiled
            lambda lay=layer, s=shape, j=i: lay.init(jax.random.fold_in(jax.random.key(0), j), s))
        shape = abstract_output_shape(layer, params, state, shape)
        rows.append((name, type(layer).__name__, shape, *_split(layer, params, state), ""))
    return rows


def _shape_text(out) -> str:
    if isinstance(out, tuple) and out and all(isinstance(o, tuple) for o in out):
        return ", ".join(str((None,) + o) for o in out)
    return str((None,) + tuple(out))


def summary(model: Layer, input_shape: Optional[Shape] = None) -> str:
    """A table of the model's layers: name (type), output shape, parameter count.

    The shapes are inferred abstractly (``jax.eval_shape``): no weights are
    created and no FLOPs are spent, so a summary of a large model is instant.
    Trainable parameters are the layers' ``params``; non-trainable ones are
    their ``state`` (e.g. batch-norm moving mean and variance) and the params
    of frozen layers (``nn.Frozen``, see ``nn.trainable_mask``). A functional
    ``nn.Model`` also lists its Inputs and, per layer, the nodes it is
    connected to (its inputs), like Keras's functional summary.

    Args:
        model: a layer, usually an ``nn.Sequential`` or an ``nn.Model``.
        input_shape: the input shape without the batch axis; optional for an
            ``nn.Model`` (its Input shapes).

    Returns:
        The table as a string (``print`` it).

    Example:
        >>> from jaxdl import nn
        >>> print(nn.summary(nn.Sequential([nn.Dense(32), nn.Dense(10)]), (784,)))  # doctest: +SKIP
    """
    if isinstance(model, Model):
        if input_shape is not None:
            model.output_shape(input_shape)  # raises unless these are the Input shapes
        rows = _graph_rows(model)
    else:
        rows = _rows(model, _checks.shape_tuple(type(model).__name__, input_shape))
    graph = isinstance(model, Model)
    table = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
    for name, kind, out, train, fixed, connected in rows:
        n_params = count_params(train) + count_params(fixed)
        table.append((f"{name} ({kind})", _shape_text(out), f"{n_params:,}", connected))
    columns = 4 if graph else 3
    widths = [max(len(r[c]) for r in table) + 3 for c in range(columns)]
    widths[0] = max(widths[0], 28)
    widths[1] = max(widths[1], 20)
    line = "=" * sum(widths)

    def fmt(r):
        text = r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2].rjust(widths[2] - 3)
        return (text + ("   " + r[3] if graph else "")).rstrip()

    train = [leaf for r in rows for leaf in r[3]]
    fixed = [leaf for r in rows for leaf in r[4]]
    total_train, total_fixed = count_params(train), count_params(fixed)
    title = model.name if graph and model.name else type(model).__name__.lower()
    out = [f'Model: "{title}"', line, fmt(table[0]), line]
    out += [fmt(r) for r in table[1:]]
    out += [line,
            f"Total params: {total_train + total_fixed:,} ({_human(_bytes(train + fixed))})",
            f"Trainable params: {total_train:,} ({_human(_bytes(train))})",
            f"Non-trainable params: {total_fixed:,} ({_human(_bytes(fixed))})",
            line]
    return "\n".join(out)
