"""Per-example losses.

Every loss takes ``(predictions, targets)`` and returns one value per example:
an array of shape ``(batch,)``. The caller reduces (usually with ``jnp.mean``),
so the same function serves for training, for weighting examples and for
per-example metrics.

Conventions shared by every loss:

* Axis 0 is the batch axis. Mean-type losses average over every other axis.
  Cross-entropies and the KL divergence treat the last axis as the class axis:
  they sum over it, then average over any remaining non-batch axes (for
  example the pixels of a segmentation map).
* ``predictions`` must be floating point. ``targets`` must have the same shape,
  with one tolerated exception: targets of shape ``(batch,)`` against
  predictions of shape ``(batch, 1)`` are reshaped to ``(batch, 1)``. Any other
  mismatch raises ``ValueError``; nothing is silently broadcast (a ``(B,)``
  against ``(B, 1)`` broadcast would give a ``(B, B)`` loss).
* Integer, boolean or other-precision floating targets are cast to the
  predictions' dtype.
* The arithmetic runs in float32 at least: float16/bfloat16 predictions are
  upcast, and the loss comes back as float32. float64 stays float64.
* Everything works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. Under
  ``vmap`` the mapped axis is invisible to the loss, so map over an axis
  *in front of* the batch axis (an ensemble, a set of tasks), not over the
  batch axis itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Callable, ClassVar, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.nn.activations import log_softmax, softplus

__all__ = [
    "mean_squared_error",
    "sum_squared_error",
    "mean_absolute_error",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "kl_divergence",
    "get",
    "ProbabilitiesAsLogitsWarning",
    "check_logits",
    "Loss",
    "LossKind",
    "kind",
    "check_loss_logits",
    "CLASSIFICATION_TASKS",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "Hinge",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Huber",
    "KLDivergence",
]

# Clipping constant for probability inputs (Keras's ``epsilon()``).
_EPSILON = 1e-7


class ProbabilitiesAsLogitsWarning(UserWarning):
    """Predictions that look like probabilities went to a loss that expects logits."""


def check_logits(name, predictions, *, categorical=None):
    """Warn when ``predictions`` given as logits look like probabilities.

    A sigmoid or softmax output layer trained with a ``from_logits=True`` loss
    (the default) silently learns badly: the loss applies a second sigmoid or
    softmax. As Keras does, this warns with a :class:`ProbabilitiesAsLogitsWarning`
    when every prediction lies in [0, 1] and, for a categorical loss, every row
    sums to 1 within 1e-3. All zeros (the logits of a zero-initialized output
    layer) do not count as probabilities. The cross-entropies call it on their
    concrete (eager) inputs; under ``jit`` the values are unknown and nothing is
    checked, so a training loop calls it once on a probe batch instead.

    Python's default warning filter shows the warning once per loss name per
    process (each name gives one message text, warned from one place).

    Args:
        name: the loss's name, used in the message.
        predictions: the logits given to the loss; a ``jax`` tracer is skipped.
        categorical: whether the last axis holds classes (rows must then sum to
            1 to look like probabilities); ``None`` reads it from ``name``
            (``"categorical"`` in it).

    Returns:
        True when the warning was raised (the predictions look like
        probabilities), False otherwise.

    Example:
        >>> import warnings, jax.numpy as jnp
        >>> from jaxdl import losses
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     losses.check_logits("categorical_crossentropy", jnp.array([[0.2, 0.8]]))
        True
    """
    if isinstance(predictions, jax.core.Tracer):
        return False
    p = np.asarray(predictions, np.float64)
    if categorical is None:
        categorical = "categorical" in name
    if p.size == 0 or not np.all((p >= 0.0) & (p <= 1.0)):
        return False
    if categorical and (p.ndim < 1 or p.shape[-1] < 2
                        or not np.all(np.abs(p.sum(axis=-1) - 1.0) <= 1e-3)):
        return False
    if not np.any(p > 0.0):
        return False
    rows = " with rows summing to 1" if categorical else ""
    warnings.warn(
        f"{name}: received from_logits=True (the default), but the predictions look like "
        f"probabilities (every value in [0, 1]{rows}), as a "
        f"{'softmax' if categorical else 'sigmoid'} output gives. Was this intended? Train on "
        f"logits (an output layer without activation), or pass from_logits=False.",
        ProbabilitiesAsLogitsWarning, stacklevel=1)
    return True


# --------------------------------------------------------------------------
# Validation and shared helpers
# --------------------------------------------------------------------------


def _check_predictions(name, predictions, min_ndim=1, what="(batch, ...)"):
    predictions = jnp.asarray(predictions)
    if not jnp.issubdtype(predictions.dtype, jnp.floating):
        raise TypeError(
            f"{name}: predictions must be a floating-point array, got dtype "
            f"{predictions.dtype}. Pass the model's float outputs, e.g. "
            f"predictions.astype(jnp.float32)."
        )
    if predictions.ndim < min_ndim:
        raise ValueError(
            f"{name}: predictions must have shape {what} with a leading batch "
            f"axis, got shape {predictions.shape}. Add the missing axes, e.g. "
            f"predictions.reshape(batch, -1)."
        )
    return predictions


def _check_shapes(name, predictions, targets):
    """Accept equal shapes and the one tolerated case, else raise.

    The kernels reshape the targets to the predictions' shape, which is a
    no-op except for (batch,) targets against (batch, 1) predictions.
    """
    p_shape, t_shape = predictions.shape, targets.shape
    if p_shape == t_shape:
        return
    if len(p_shape) == 2 and p_shape[1] == 1 and t_shape == (p_shape[0],):
        return
    if math.prod(t_shape) == math.prod(p_shape):
        fix = f"reshape the targets with targets.reshape({p_shape})"
    else:
        fix = "pass one target per prediction, with the predictions' shape"
    raise ValueError(
        f"{name}: predictions have shape {p_shape} but targets have shape "
        f"{t_shape}; the shapes must be equal (targets of shape (batch,) are "
        f"also accepted for predictions of shape (batch, 1)). To fix it, {fix}."
    )


def _prepare(name, predictions, targets, *, min_ndim=1, what="(batch, ...)"):
    """Validate both inputs; return them with the dtype to compute in."""
    predictions = _check_predictions(name, predictions, min_ndim, what)
    targets = jnp.asarray(targets)
    if not (
        jnp.issubdtype(targets.dtype, jnp.floating)
        or jnp.issubdtype(targets.dtype, jnp.integer)
        or targets.dtype == jnp.bool_
    ):
        raise TypeError(
            f"{name}: targets must be a real numeric or boolean array, got "
            f"dtype {targets.dtype}."
        )
    _check_shapes(name, predictions, targets)
    return predictions, targets, _checks.at_least_float32(predictions.dtype)


# The arithmetic of each loss lives in a jitted kernel, called after the
# Python-side checks. Inside a caller's jit this is inlined; in eager mode it
# turns a dozen small per-operation compilations into one.
_kernel = functools.partial(jax.jit, static_argnames=("dtype",))
_logit_kernel = functools.partial(jax.jit, static_argnames=("dtype", "from_logits"))


def _cast(p, y, dtype):
    return p.astype(dtype), y.reshape(p.shape).astype(dtype)


def _mean_over_examples(x):
    """Average over every axis but the first: ``(batch, ...) -> (batch,)``."""
    if x.ndim == 1:
        return x
    return jnp.mean(x, axis=tuple(range(1, x.ndim)))


def _log_probabilities(probabilities):
    """Keras's treatment of probability inputs: renormalize, clip, take logs."""
    total = jnp.sum(probabilities, axis=-1, keepdims=True)
    # A row of all zeros would be 0/0. It is divided by 1 instead (its zeros
    # are then clipped to eps). The guard sits on the denominator, before the
    # division: masking the quotient afterwards would keep the value finite
    # but still send a NaN through the division's derivative.
    positive = total > 0
    safe_total = jnp.where(positive, total, 1.0)
    q = jnp.clip(probabilities / safe_total, _EPSILON, 1.0 - _EPSILON)
    return jnp.log(q)


def _class_log_probs(predictions, from_logits):
    if from_logits:
        return log_softmax(predictions)
    return _log_probabilities(predictions)


# --------------------------------------------------------------------------
# Regression losses
# --------------------------------------------------------------------------


def mean_squared_error(predictions, targets):
    r"""Mean squared error per example.

    .. math::

        L_b = \frac{1}{n} \sum_{i=1}^{n} (y_{b,i} - \hat y_{b,i})^2

    where ``n`` is the number of values per example (the product of the
    non-batch dimensions).

    Args:
        predictions: float array of shape ``(batch, ...)``.
        targets: array of the same shape (or ``(batch,)`` when predictions are
            ``(batch, 1)``); integer or boolean targets are cast.

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.mean_squared_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]]))
        Array([2.5], dtype=float32)
    """
    return _mse_kernel(*_prepare("mean_squared_error", predictions, targets))


@_kernel
def _mse_kernel(p, y, dtype):
    p, y = _cast(p, y, dtype)
    return _mean_over_examples(jnp.square(y - p))


def sum_squared_error(predictions, targets):
    r"""Half the sum of squared errors per example (the course's form).

    .. math::

        L_b = \frac{1}{2} \sum_{i} (y_{b,i} - \hat y_{b,i})^2

    The factor ½ makes the gradient the plain residual,
    :math:`\partial L / \partial \hat y = \hat y - y`.

    Args:
        predictions: float array of shape ``(batch, ...)``.
        targets: array of the same shape (or ``(batch,)`` when predictions are
            ``(batch, 1)``).

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.sum_squared_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]]))
        Array([2.5], dtype=float32)
    """
    return _sse_kernel(*_prepare("sum_squared_error", predictions, targets))


@_kernel
def _sse_kernel(p, y, dtype):
    p, y = _cast(p, y, dtype)
    sq = jnp.square(y - p)
    if sq.ndim > 1:
        sq = jnp.sum(sq, axis=tuple(range(1, sq.ndim)))
    return 0.5 * sq


def mean_absolute_error(predictions, targets):
    r"""Mean absolute error per example.

    .. math::

        L_b = \frac{1}{n} \sum_{i=1}^{n} |y_{b,i} - \hat y_{b,i}|

    Its gradient with respect to the predictions is
    :math:`\operatorname{sign}(\hat y - y) / n`, taken as 0 where the
    prediction is exact.

    Args:
        predictions: float array of shape ``(batch, ...)``.
        targets: array of the same shape (or ``(batch,)`` when predictions are
            ``(batch, 1)``).

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.mean_absolute_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]]))
        Array([1.5], dtype=float32)
    """
    return _mae_kernel(*_prepare("mean_absolute_error", predictions, targets))


@_kernel
def _mae_kernel(p, y, dtype):
    p, y = _cast(p, y, dtype)
    e = p - y
    # e * sign(e) is |e| with derivative sign(e): 0 for an exact prediction
    # (jnp.abs would give 1 there).
    return _mean_over_examples(e * jnp.sign(e))


def huber(predictions, targets, delta=1.0):
    r"""Huber loss per example: quadratic for small errors, linear for large.

    With :math:`e = \hat y - y`,

    .. math::

        h(e) = \begin{cases}
            \tfrac12 e^2 & |e| \le \delta \\
            \delta\,(|e| - \tfrac12 \delta) & |e| > \delta
        \end{cases}
        \qquad L_b = \frac{1}{n} \sum_i h(e_{b,i})

    Computed as :math:`\tfrac12 q^2 + \delta(|e| - q)` with
    :math:`q = \min(|e|, \delta)`, which needs no branch.

    Like every loss it takes ``(predictions, targets)``. For a trainer, fix
    another threshold with ``functools.partial(losses.huber, delta=2.0)`` or
    the loss object ``losses.Huber(delta=2.0)``.

    Args:
        predictions: float array of shape ``(batch, ...)``.
        targets: array of the same shape (or ``(batch,)`` when predictions are
            ``(batch, 1)``).
        delta: positive threshold between the quadratic and linear parts (a
            number, or a scalar array, which may be traced).

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.huber(jnp.array([[0.5, 3.0]]), jnp.array([[0.0, 0.0]]))
        Array([1.3125], dtype=float32)
        >>> losses.huber(jnp.array([[0.5, 3.0]]), jnp.array([[0.0, 0.0]]), delta=2.0)
        Array([2.0625], dtype=float32)
    """
    if not (_checks.is_real(delta) or isinstance(delta, (jax.Array, np.ndarray))):
        raise TypeError(f"huber: delta must be a positive number, got {delta!r} of type "
                        f"{type(delta).__name__}. Pass a float such as 1.0.")
    if not isinstance(delta, jax.core.Tracer):
        if np.ndim(delta) != 0:
            raise ValueError(f"huber: delta must be a scalar, got {delta!r}. Pass one "
                             f"float such as 1.0.")
        d = float(np.asarray(delta))
        if not (math.isfinite(d) and d > 0):
            raise ValueError(
                f"huber: delta must be a positive finite number, got {delta!r}."
            )
        delta = d
    p, y, dtype = _prepare("huber", predictions, targets)
    if isinstance(delta, jax.core.Tracer):
        delta = delta.astype(dtype)
    return _huber_kernel(p, y, delta, dtype)


@_kernel
def _huber_kernel(p, y, delta, dtype):
    p, y = _cast(p, y, dtype)
    abs_e = jnp.abs(p - y)
    q = jnp.minimum(abs_e, delta)
    return _mean_over_examples(0.5 * jnp.square(q) + delta * (abs_e - q))


# --------------------------------------------------------------------------
# Classification losses
# --------------------------------------------------------------------------


def binary_crossentropy(predictions, targets, from_logits=True):
    r"""Binary cross-entropy per example, averaged over the non-batch axes.

    From logits :math:`z` (the default), in the overflow-free form

    .. math::

        \ell(z, y) = \max(z, 0) - z\,y + \log\!\left(1 + e^{-|z|}\right)

    which equals :math:`-y \log \sigma(z) - (1-y) \log(1-\sigma(z))` and
    has gradient :math:`\sigma(z) - y` (exactly, including at :math:`z = 0`).
    From probabilities :math:`p` (``from_logits=False``), ``p`` is first
    clipped to :math:`[10^{-7}, 1-10^{-7}]` and

    .. math::

        \ell(p, y) = -y \log p - (1 - y) \log(1 - p).

    :math:`L_b` is the mean of :math:`\ell` over every non-batch axis (as in
    Keras). Targets may be soft labels in [0, 1].

    Args:
        predictions: float logits (or probabilities) of shape ``(batch, ...)``.
        targets: labels of the same shape (or ``(batch,)`` when predictions
            are ``(batch, 1)``); integer or boolean labels are cast.
        from_logits: whether ``predictions`` are logits (default) or
            probabilities.

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.binary_crossentropy(jnp.array([[0.0]]), jnp.array([1]))
        Array([0.6931472], dtype=float32)
    """
    p, y, dtype = _prepare("binary_crossentropy", predictions, targets)
    if from_logits:
        check_logits("binary_crossentropy", p, categorical=False)
    return _bce_kernel(p, y, dtype, from_logits=bool(from_logits))


@_logit_kernel
def _bce_kernel(p, y, dtype, from_logits):
    p, y = _cast(p, y, dtype)
    if from_logits:
        elementwise = softplus(p) - p * y
    else:
        q = jnp.clip(p, _EPSILON, 1.0 - _EPSILON)
        elementwise = -(y * jnp.log(q) + (1.0 - y) * jnp.log1p(-q))
    return _mean_over_examples(elementwise)


def categorical_crossentropy(predictions, targets, from_logits=True):
    r"""Categorical cross-entropy per example, with one-hot (or soft) targets.

    The last axis is the class axis. From logits :math:`z` (the default),

    .. math::

        \ell = -\sum_c y_c \log\operatorname{softmax}(z)_c
             = -\sum_c y_c \Big(z_c - m - \log \sum_k e^{z_k - m}\Big),
        \quad m = \max_k z_k,

    so no exponent overflows, even for logits of magnitude 1e4. From
    probabilities (``from_logits=False``), as in Keras, each row is
    renormalized to sum to 1 and then clipped to
    :math:`[10^{-7}, 1-10^{-7}]` before the logarithm.

    Over any axes between the batch and class axes (for example the pixels of
    a segmentation map) the loss is averaged.

    Args:
        predictions: float array of shape ``(batch, ..., classes)``.
        targets: one-hot or probability targets of the same shape.
        from_logits: whether ``predictions`` are logits (default) or
            probabilities.

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> q = jnp.array([[0.1, 0.3, 0.6]])
        >>> losses.categorical_crossentropy(q, jnp.array([[0.0, 1.0, 0.0]]), from_logits=False)
        Array([1.2039728], dtype=float32)
    """
    p, y, dtype = _prepare(
        "categorical_crossentropy", predictions, targets,
        min_ndim=2, what="(batch, ..., classes)",
    )
    if from_logits:
        check_logits("categorical_crossentropy", p, categorical=True)
    return _cce_kernel(p, y, dtype, from_logits=bool(from_logits))


@_logit_kernel
def _cce_kernel(p, y, dtype, from_logits):
    p, y = _cast(p, y, dtype)
    log_q = _class_log_probs(p, from_logits)
    return _mean_over_examples(-jnp.sum(y * log_q, axis=-1))


def _is_tracer(x):
    return isinstance(x, jax.core.Tracer)


def sparse_categorical_crossentropy(predictions, targets, from_logits=True):
    r"""Categorical cross-entropy per example, with integer class ids.

    The last axis of ``predictions`` is the class axis. For class id
    :math:`t`,

    .. math::

        \ell = -\log \operatorname{softmax}(z)_t

    computed with the same stable log-softmax as
    :func:`categorical_crossentropy` (and the same renormalize-and-clip
    treatment when ``from_logits=False``). It equals
    ``categorical_crossentropy(predictions, one_hot(targets))`` without
    building the one-hot array.

    Label checking: when the labels are concrete (eager calls, or ``grad``
    with respect to the predictions only), a label outside
    ``[0, classes - 1]`` raises ``ValueError``. Under ``jit`` or ``vmap`` the
    labels are abstract and cannot be checked: an out-of-range label then
    gives a NaN loss for its example (and a zero gradient), so
    ``TerminateOnNaN`` or a NaN check catches it instead of a silently wrong
    number.

    Args:
        predictions: float array of shape ``(batch, ..., classes)``.
        targets: integer class ids of shape ``predictions.shape[:-1]``, or of
            that shape with a trailing axis of size 1 (so ``(batch,)`` and
            ``(batch, 1)`` both work for ``(batch, classes)`` predictions).
        from_logits: whether ``predictions`` are logits (default) or
            probabilities.

    Returns:
        Array of shape ``(batch,)``.

    Raises:
        TypeError: if ``targets`` are not integers (use
            :func:`categorical_crossentropy` for one-hot or soft targets).
        ValueError: on a shape mismatch, or a concrete out-of-range label.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> q = jnp.array([[0.1, 0.3, 0.6]])
        >>> losses.sparse_categorical_crossentropy(q, jnp.array([1]), from_logits=False)
        Array([1.2039728], dtype=float32)
    """
    name = "sparse_categorical_crossentropy"
    p = _check_predictions(name, predictions, 2, "(batch, ..., classes)")
    labels = targets if _is_tracer(targets) else jnp.asarray(targets)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{name}: targets must be integer class ids, got dtype "
            f"{labels.dtype}. Pass integer class ids (e.g. "
            f"targets.astype(jnp.int32)), or use categorical_crossentropy for "
            f"one-hot or soft targets."
        )
    num_classes = p.shape[-1]
    expected = p.shape[:-1]
    if labels.shape != expected and labels.shape != expected + (1,):
        hint = ""
        if labels.shape == p.shape:
            hint = (
                " The targets have the predictions' shape, so they look "
                "one-hot: use categorical_crossentropy for those."
            )
        raise ValueError(
            f"{name}: predictions have shape {p.shape} but targets have shape "
            f"{labels.shape}; targets must be integer class ids of shape "
            f"{expected} (or {expected + (1,)}), one per prediction "
            f"row.{hint}"
        )
    if not _is_tracer(targets):
        host = np.asarray(targets).reshape(-1)
        bad = host[(host < 0) | (host >= num_classes)]
        if bad.size:
            raise ValueError(
                f"{name}: label {int(bad[0])} is out of range for "
                f"{num_classes} classes; class ids must be integers in "
                f"[0, {num_classes - 1}]. Check the labels or the size of the "
                f"model's last layer."
            )
    if from_logits:
        check_logits(name, p, categorical=True)
    return _sparse_kernel(p, labels, _checks.at_least_float32(p.dtype),
                          from_logits=bool(from_logits))


@_logit_kernel
def _sparse_kernel(p, labels, dtype, from_logits):
    num_classes = p.shape[-1]
    labels = labels.reshape(p.shape[:-1])
    if jnp.iinfo(labels.dtype).bits <= 32:
        labels = labels.astype(jnp.int32)
    valid = (labels >= 0) & (labels < num_classes)
    index = jnp.clip(labels, 0, num_classes - 1)[..., None]
    p = p.astype(dtype)
    if from_logits:
        # -log softmax(z)_t = logsumexp(z) - z_t: only the picked logit and the
        # normalizer are needed, not the whole log-softmax row (cheaper on CPU).
        m = jax.lax.stop_gradient(jnp.max(p, axis=-1, keepdims=True))
        log_norm = (m + jnp.log(jnp.sum(jnp.exp(p - m), axis=-1, keepdims=True)))[..., 0]
        nll = log_norm - jnp.take_along_axis(p, index, axis=-1)[..., 0]
    else:
        nll = -jnp.take_along_axis(_class_log_probs(p, False), index, axis=-1)[..., 0]
    per_position = jnp.where(valid, nll, jnp.nan)
    return _mean_over_examples(per_position)


def hinge(predictions, targets):
    r"""Hinge loss per example (Keras semantics).

    .. math::

        L_b = \frac{1}{n} \sum_i \max(1 - y_{b,i}\, \hat y_{b,i},\ 0)

    Labels are expected in :math:`\{-1, 1\}`. As in Keras, if every label in
    the call is 0 or 1, they are read as binary labels and mapped to
    :math:`\{-1, 1\}` by :math:`2y - 1`.

    Args:
        predictions: float scores of shape ``(batch, ...)`` (raw, not
            probabilities).
        targets: labels of the same shape (or ``(batch,)`` when predictions
            are ``(batch, 1)``).

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.hinge(jnp.array([[0.3], [-2.0]]), jnp.array([1, -1]))
        Array([0.7, 0. ], dtype=float32)
    """
    return _hinge_kernel(*_prepare("hinge", predictions, targets))


@_kernel
def _hinge_kernel(p, y, dtype):
    p, y = _cast(p, y, dtype)
    is_binary = jnp.all((y == 0.0) | (y == 1.0))
    y = jnp.where(is_binary, 2.0 * y - 1.0, y)
    return _mean_over_examples(jnp.maximum(1.0 - y * p, 0.0))


def kl_divergence(predictions, targets):
    r"""Kullback-Leibler divergence KL(targets ‖ predictions) per example.

    Both distributions are clipped to :math:`[10^{-7}, 1]` (as in Keras), so
    zero probabilities give finite values. Over the last (class) axis,

    .. math::

        \ell = \sum_c y_c \log \frac{y_c}{p_c},

    averaged over any axes between the batch and class axes.

    Args:
        predictions: float probabilities of shape ``(batch, ..., classes)``.
        targets: probabilities of the same shape.

    Returns:
        Array of shape ``(batch,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> losses.kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[1.0, 0.0]]))
        Array([0.69314563], dtype=float32)
    """
    return _kl_kernel(*_prepare(
        "kl_divergence", predictions, targets,
        min_ndim=2, what="(batch, ..., classes)",
    ))


@_kernel
def _kl_kernel(p, y, dtype):
    p, y = _cast(p, y, dtype)
    p = jnp.clip(p, _EPSILON, 1.0)
    y = jnp.clip(y, _EPSILON, 1.0)
    return _mean_over_examples(jnp.sum(y * (jnp.log(y) - jnp.log(p)), axis=-1))


# --------------------------------------------------------------------------
# Losses by name
# --------------------------------------------------------------------------

_BY_NAME = {
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
    "sse": sum_squared_error, "sum_squared_error": sum_squared_error,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
    "huber": huber, "hinge": hinge, "kl_divergence": kl_divergence,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}


def get(name_or_fn):
    """The loss a name stands for; a function (or loss object) is returned as it is.

    Names give this module's functions with their defaults (the cross-entropies
    from logits, ``huber`` with ``delta=1.0``). Accepted: every loss's full name
    and the short names ``"mse"``, ``"sse"`` and ``"mae"``.

    Args:
        name_or_fn: a loss name, or a callable ``(predictions, targets) ->
            (batch,)``.

    Returns:
        The loss function.

    Raises:
        ValueError: an unknown name (the message lists the known ones).

    Example:
        >>> from jaxdl import losses
        >>> losses.get("mse") is losses.mean_squared_error
        True
    """
    if callable(name_or_fn):
        return name_or_fn
    return _checks.lookup("losses.get", "loss", name_or_fn, _BY_NAME)


# --------------------------------------------------------------------------
# Loss objects: a loss that says what it is (the task and logits vs probabilities)
# --------------------------------------------------------------------------

# The tasks a loss can declare. "accuracy" is defined for the three classification ones.
CLASSIFICATION_TASKS = ("binary", "categorical", "sparse_categorical")


class LossKind(NamedTuple):
    """What a loss declares about itself (see :func:`kind`).

    Attributes:
        task: ``"binary"``, ``"categorical"``, ``"sparse_categorical"``,
            ``"regression"``, or ``None`` when unknown (a lambda, a user function).
        from_logits: ``True`` for logits or raw scores, ``False`` for
            probabilities, ``None`` when it does not apply or is unknown.
    """

    task: Optional[str]
    from_logits: Optional[bool]


@dataclasses.dataclass(frozen=True)
class Loss:
    """Base of the Keras-named loss objects: a per-example loss that declares its task.

    A loss object is called like the plain functions, ``loss(predictions,
    targets) -> (batch,)``, and carries ``task`` (a class attribute) and, for
    the cross-entropies, ``from_logits``, so that ``Trainer(metrics=("accuracy",))``
    picks the right accuracy without guessing. Objects are frozen dataclasses:
    hashable, printable, equal when their settings are equal.

    Unlike Keras, the cross-entropies default to ``from_logits=True``, as the
    plain jaxdl functions do.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import losses
        >>> bce = losses.BinaryCrossentropy(from_logits=False)
        >>> bce(jnp.array([[0.5]]), jnp.array([1]))
        Array([0.6931472], dtype=float32)
        >>> losses.kind(bce)
        LossKind(task='binary', from_logits=False)
    """

    task: ClassVar[Optional[str]] = None
    #: the plain function the object calls, with its dataclass fields as keyword arguments
    function: ClassVar[Optional[Callable]] = None

    def __post_init__(self):
        value = getattr(self, "from_logits", False)
        if not isinstance(value, bool):
            raise TypeError(f"{type(self).__name__}: from_logits must be True (logits) or False "
                            f"(probabilities), got {value!r}.")

    def __call__(self, predictions, targets):
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return type(self).function(predictions, targets, **options)


@dataclasses.dataclass(frozen=True)
class BinaryCrossentropy(Loss):
    """:func:`binary_crossentropy` as an object; ``task = "binary"``."""

    function: ClassVar[Callable] = staticmethod(binary_crossentropy)

    from_logits: bool = True
    task: ClassVar[str] = "binary"


@dataclasses.dataclass(frozen=True)
class CategoricalCrossentropy(Loss):
    """:func:`categorical_crossentropy` (one-hot targets) as an object; ``task = "categorical"``."""

    function: ClassVar[Callable] = staticmethod(categorical_crossentropy)

    from_logits: bool = True
    task: ClassVar[str] = "categorical"


@dataclasses.dataclass(frozen=True)
class SparseCategoricalCrossentropy(Loss):
    """:func:`sparse_categorical_crossentropy` (integer labels) as an object.

    ``task = "sparse_categorical"``.
    """

    function: ClassVar[Callable] = staticmethod(sparse_categorical_crossentropy)

    from_logits: bool = True
    task: ClassVar[str] = "sparse_categorical"


@dataclasses.dataclass(frozen=True)
class Hinge(Loss):
    """:func:`hinge` as an object: raw scores, labels in {-1, 1} or {0, 1}; ``task = "binary"``."""

    function: ClassVar[Callable] = staticmethod(hinge)

    task: ClassVar[str] = "binary"


@dataclasses.dataclass(frozen=True)
class MeanSquaredError(Loss):
    """:func:`mean_squared_error` as an object; ``task = "regression"``."""

    function: ClassVar[Callable] = staticmethod(mean_squared_error)

    task: ClassVar[str] = "regression"


@dataclasses.dataclass(frozen=True)
class MeanAbsoluteError(Loss):
    """:func:`mean_absolute_error` as an object; ``task = "regression"``."""

    function: ClassVar[Callable] = staticmethod(mean_absolute_error)

    task: ClassVar[str] = "regression"


@dataclasses.dataclass(frozen=True)
class Huber(Loss):
    """:func:`huber` with threshold ``delta`` as an object; ``task = "regression"``."""

    function: ClassVar[Callable] = staticmethod(huber)

    delta: float = 1.0
    task: ClassVar[str] = "regression"


@dataclasses.dataclass(frozen=True)
class KLDivergence(Loss):
    """:func:`kl_divergence` (probabilities against probabilities) as an object.

    Its task is ``None``: matching distributions is not a labelled task, so no
    accuracy is implied; name the metric you want.
    """

    function: ClassVar[Callable] = staticmethod(kl_divergence)


# The plain functions, recognized by identity (never by name): (function, task, from_logits).
_PLAIN_KINDS = (
    (binary_crossentropy, "binary", True),
    (categorical_crossentropy, "categorical", True),
    (sparse_categorical_crossentropy, "sparse_categorical", True),
    (hinge, "binary", True),
    (mean_squared_error, "regression", None),
    (sum_squared_error, "regression", None),
    (mean_absolute_error, "regression", None),
    (huber, "regression", None),
    (kl_divergence, None, None),
)


def kind(loss) -> LossKind:
    """What ``loss`` declares: its task and whether it takes logits.

    Recognized: :class:`Loss` objects (their ``task`` and ``from_logits``),
    the plain functions of this module by identity (the cross-entropies take
    logits by default), and ``functools.partial`` of them (a
    ``from_logits=...`` keyword overrides the default). Anything else (a
    lambda, a user function, a function named like a jaxdl loss) is
    ``LossKind(None, None)``: unknown. The function's ``__name__`` is never used.

    Example:
        >>> import functools
        >>> from jaxdl import losses
        >>> losses.kind(functools.partial(losses.binary_crossentropy, from_logits=False))
        LossKind(task='binary', from_logits=False)
        >>> losses.kind(lambda p, y: losses.binary_crossentropy(p, y))
        LossKind(task=None, from_logits=None)
    """
    if isinstance(loss, Loss):
        return LossKind(loss.task, getattr(loss, "from_logits", None))
    fn, keywords = loss, {}
    while isinstance(fn, functools.partial):
        keywords = {**fn.keywords, **keywords}
        fn = fn.func
    for plain, task, from_logits in _PLAIN_KINDS:
        if fn is plain:
            if from_logits is not None and "from_logits" in keywords:
                from_logits = bool(keywords["from_logits"])
            return LossKind(task, from_logits)
    return LossKind(None, None)


def check_loss_logits(loss, predictions) -> bool:
    """:func:`check_logits` for ``loss`` on a batch of a model's ``predictions``.

    Only the cross-entropies with ``from_logits=True`` are checked (the plain
    functions, ``functools.partial`` of them and the loss objects); other
    losses, and losses of unknown kind, are left alone. A training loop calls
    this once on a probe batch, since inside a compiled step the values are
    unknown.

    Returns:
        True when the warning was raised.
    """
    fn = loss
    while isinstance(fn, functools.partial):
        fn = fn.func
    names = {binary_crossentropy: "binary_crossentropy",
             categorical_crossentropy: "categorical_crossentropy",
             sparse_categorical_crossentropy: "sparse_categorical_crossentropy"}
    name = next((n for f, n in names.items() if fn is f), None)
    if isinstance(loss, (BinaryCrossentropy, CategoricalCrossentropy,
                         SparseCategoricalCrossentropy)):
        name = type(loss).__name__
    what = kind(loss)
    if name is None or what.from_logits is not True:
        return False
    return check_logits(name, predictions, categorical=what.task != "binary")
