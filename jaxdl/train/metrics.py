"""Metrics: per-example functions of ``(predictions, targets)``.

A metric returns one value per example (shape ``(batch,)``), so that averages
over an epoch weight every example equally however the batches are cut. A
user function may also return a scalar (taken as the batch mean).

Names accepted by ``Trainer(metrics=...)``: ``"accuracy"`` (binary or
multi-class, chosen from the loss and the shapes), ``"binary_accuracy"``,
``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
``"top_k_accuracy"`` (k=5), ``"top5"``-style ``"topK"`` names,
``"mse"``/``"mean_squared_error"``, ``"mae"``/``"mean_absolute_error"``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Sequence

import jax.numpy as jnp

from jaxdl._typing import Array

Metric = Callable[[Array, Array], Array]


def _per_example_mean(x: Array) -> Array:
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1) if x.ndim > 1 else x


def _float(x: Array) -> Array:
    return x.astype(jnp.float32)


def binary_accuracy(predictions: Array, targets: Array, threshold: float = 0.0) -> Array:
    """1 where ``predictions > threshold`` equals ``targets`` (0/1), per example.

    The default threshold 0 suits logits (sigmoid(0) = 0.5); use 0.5 for
    probabilities. Shape ``(batch, ...)`` -> ``(batch,)`` (mean over extra axes).
    """
    targets = jnp.reshape(targets, predictions.shape)
    hit = (predictions > threshold) == (targets > 0.5)
    return _per_example_mean(_float(hit))


def sparse_categorical_accuracy(predictions: Array, targets: Array) -> Array:
    """1 where ``argmax(predictions, -1)`` equals the integer class ``targets``.

    ``predictions (batch, ..., classes)``, ``targets (batch, ...)`` or with a
    trailing axis of 1 -> ``(batch,)``.
    """
    targets = jnp.reshape(targets, predictions.shape[:-1])
    hit = jnp.argmax(predictions, axis=-1) == targets
    return _per_example_mean(_float(hit))


def categorical_accuracy(predictions: Array, targets: Array) -> Array:
    """1 where ``argmax(predictions, -1) == argmax(targets, -1)`` (one-hot targets)."""
    hit = jnp.argmax(predictions, axis=-1) == jnp.argmax(targets, axis=-1)
    return _per_example_mean(_float(hit))


def top_k_accuracy(predictions: Array, targets: Array, k: int = 5) -> Array:
    """1 where the integer class ``targets`` is among the ``k`` largest predictions.

    Ties are counted in the target's favour only if its score is strictly
    larger than the k-th largest other score (the rank of the target is the
    number of classes scoring strictly higher, which must be < k).
    """
    if targets.ndim == predictions.ndim:  # one-hot targets
        targets = jnp.argmax(targets, axis=-1)
    targets = jnp.reshape(targets, predictions.shape[:-1])
    target_score = jnp.take_along_axis(predictions, targets[..., None].astype(jnp.int32),
                                       axis=-1)
    rank = jnp.sum(predictions > target_score, axis=-1)
    return _per_example_mean(_float(rank < k))


def mean_squared_error(predictions: Array, targets: Array) -> Array:
    """Mean of ``(predictions - targets)²`` over the non-batch axes."""
    targets = jnp.reshape(targets, predictions.shape).astype(predictions.dtype)
    return _per_example_mean(jnp.square(predictions - targets))


def mean_absolute_error(predictions: Array, targets: Array) -> Array:
    """Mean of ``|predictions - targets|`` over the non-batch axes."""
    targets = jnp.reshape(targets, predictions.shape).astype(predictions.dtype)
    return _per_example_mean(jnp.abs(predictions - targets))


_NAMED = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_accuracy": top_k_accuracy,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
}


def _loss_kind(loss: Any) -> tuple[str, bool]:
    """(name of the loss function, its from_logits setting) for choosing 'accuracy'."""
    from_logits = True
    fn = loss
    while isinstance(fn, functools.partial):
        from_logits = fn.keywords.get("from_logits", from_logits)
        fn = fn.func
    return getattr(fn, "__name__", ""), bool(from_logits)


def accuracy_for(loss: Any) -> Metric:
    """The accuracy that matches ``loss`` (Keras's ``metrics=["accuracy"]`` rule).

    Binary cross-entropy gives binary accuracy (threshold 0 on logits, 0.5 on
    probabilities), categorical cross-entropy compares argmaxes of one-hot
    targets, and anything else compares the argmax with integer labels, or
    thresholds a single output.
    """
    name, from_logits = _loss_kind(loss)
    if name == "binary_crossentropy" or name == "hinge":
        threshold = 0.0 if (from_logits or name == "hinge") else 0.5
        return functools.partial(binary_accuracy, threshold=threshold)
    if name == "categorical_crossentropy":
        return categorical_accuracy

    def accuracy(predictions: Array, targets: Array) -> Array:
        if predictions.shape[-1] == 1 and predictions.ndim >= 1:
            return binary_accuracy(predictions, targets,
                                   threshold=0.0 if from_logits else 0.5)
        if targets.ndim == predictions.ndim and targets.shape == predictions.shape:
            return categorical_accuracy(predictions, targets)
        return sparse_categorical_accuracy(predictions, targets)
    return accuracy


def resolve(metrics: Sequence[Any], loss: Any = None) -> dict[str, Metric]:
    """Map ``metrics`` (names or functions) to ``{log name: function}``.

    Unknown names raise ``ValueError`` listing the known ones.
    """
    if isinstance(metrics, (str,)) or callable(metrics):
        metrics = (metrics,)
    out: dict[str, Metric] = {}
    for m in metrics:
        if callable(m):
            name = getattr(m, "__name__", None) or getattr(getattr(m, "func", None), "__name__",
                                                           "metric")
            out[name] = m
            continue
        if not isinstance(m, str):
            raise TypeError(f"Trainer: each metric must be a name or a function "
                            f"(predictions, targets) -> per-example values; got {m!r}.")
        if m in ("accuracy", "acc"):
            out["accuracy"] = accuracy_for(loss)
        elif m in _NAMED:
            out[m] = _NAMED[m]
        elif re.fullmatch(r"top(\d+)(_accuracy)?", m):
            k = int(re.fullmatch(r"top(\d+)(_accuracy)?", m).group(1))
            out[m] = functools.partial(top_k_accuracy, k=k)
        else:
            raise ValueError(f"Trainer: unknown metric {m!r}; expected a function or one of "
                             f"{sorted(['accuracy', 'top5', *_NAMED])}.")
    return out
