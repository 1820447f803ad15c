"""Metrics: per-example functions of ``(predictions, targets)``.

A metric returns one value per example (shape ``(batch,)``), so that averages
over an epoch weight every example equally however the batches are cut. A
user function may also return a scalar (taken as the batch mean).

Names accepted by ``Trainer(metrics=...)``: ``"accuracy"`` (the accuracy of
the task the loss declares, see :func:`accuracy_for`), ``"binary_accuracy"``
(threshold 0 when the loss declares logits, 0.5 otherwise),
``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
``"top_k_accuracy"`` (k=5), ``"top5"``-style ``"topK"`` names,
``"mse"``/``"mean_squared_error"``, ``"mae"``/``"mean_absolute_error"`` (the
per-example losses of those names in :mod:`jaxdl.losses`).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Sequence

import jax.numpy as jnp

from jaxdl import losses as _losses
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


_NAMED = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_accuracy": top_k_accuracy,
    # The losses of the same names, per example: one definition of each.
    "mse": _losses.mean_squared_error, "mean_squared_error": _losses.mean_squared_error,
    "mae": _losses.mean_absolute_error, "mean_absolute_error": _losses.mean_absolute_error,
}


def _binary_threshold(loss: Any) -> float:
    """0 on logits (sigmoid(0) = 0.5) when the loss says so, else 0.5 on probabilities."""
    return 0.0 if _losses.kind(loss).from_logits is True else 0.5


def accuracy_for(loss: Any) -> Metric:
    """The accuracy that matches the task ``loss`` declares (``metrics=("accuracy",)``).

    The choice comes from :func:`jaxdl.losses.kind`, never from a function's
    name: a binary task gives :func:`binary_accuracy` (threshold 0 on logits,
    0.5 on probabilities), a categorical one :func:`categorical_accuracy`
    (one-hot targets), a sparse categorical one
    :func:`sparse_categorical_accuracy` (integer labels).

    Raises:
        ValueError: the loss declares no classification task (a lambda, a user
            function, a regression loss); the message lists the explicit names.
    """
    task = _losses.kind(loss).task
    if task == "binary":
        return functools.partial(binary_accuracy, threshold=_binary_threshold(loss))
    if task == "categorical":
        return categorical_accuracy
    if task == "sparse_categorical":
        return sparse_categorical_accuracy
    what = (f"a {task} loss" if task else "a loss whose task is unknown (a lambda or your own "
            "function)")
    raise ValueError(
        f"Trainer: metrics=('accuracy',) cannot tell which accuracy fits {what}: {loss!r}. "
        f"Name it instead: 'binary_accuracy' (one sigmoid output; threshold 0.5, or 0 when the "
        f"loss declares logits), 'categorical_accuracy' (one-hot targets) or "
        f"'sparse_categorical_accuracy' (integer labels); or pass a loss object that declares "
        f"its task, e.g. losses.BinaryCrossentropy(from_logits=False).")


def default_metrics(loss: Any) -> tuple[str, ...]:
    """What ``Trainer(metrics=None)`` logs: ``("accuracy",)`` when ``loss`` declares a
    classification task (see :func:`jaxdl.losses.kind`), nothing otherwise."""
    return ("accuracy",) if _losses.kind(loss).task in _losses.CLASSIFICATION_TASKS else ()


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
        elif m == "binary_accuracy":
            out[m] = functools.partial(binary_accuracy, threshold=_binary_threshold(loss))
        elif m in _NAMED:
            out[m] = _NAMED[m]
        elif re.fullmatch(r"top(\d+)(_accuracy)?", m):
            k = int(re.fullmatch(r"top(\d+)(_accuracy)?", m).group(1))
            out[m] = functools.partial(top_k_accuracy, k=k)
        else:
            raise ValueError(f"Trainer: unknown metric {m!r}; expected a function or one of "
                             f"{sorted(['accuracy', 'top5', *_NAMED])}.")
    return out
