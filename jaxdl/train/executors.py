"""Where steps run: compiled forms of one step over device-resident data.

A training run keeps its data on the device and picks each batch by row
indices, so the host sends only small int32 index arrays. Every trainer
(supervised, adversarial, population, sharded) hands its un-jitted step
``step(state, batch) -> (state, logs)`` to :func:`compile_steps` and gets two
compiled forms of it:

- ``chunk(state, data, idx)``: ``idx.shape[0]`` steps fused in one
  ``lax.scan``, step ``i`` on the rows ``idx[i]`` of every array in ``data``
  (gathered for the whole chunk before the scan, up to :data:`PREGATHER_BYTES`);
- ``single(state, sums, data, ids)``: one step and no loop, for models that
  run slower inside a loop body (XLA:CPU convolutions, jax-ml/jax#12868);
  ``step_at(state, sums, data, idx, i)`` is the same step on the rows
  ``idx[i]``, returning ``i + 1``: the engine uploads a chunk's ``idx`` once
  and keeps the counter on the device, so its steps take no host array each
  (a numpy argument per call cost about 8 % of a digits-CNN step in CPU time).

Both return the sums of ``len(ids) * logs[name]`` over the steps they ran, so
the epoch means weight every example once however the epoch was cut. A log is
a scalar, or an array (a population step logs one value per member, shape
``(K,)``); its sums have its shape.
:func:`compile_evaluation` and :func:`compile_prediction` do the same for
inference over padded batches with per-row weights (0 masks the padding).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["take_rows", "StepRunner", "compile_steps", "per_specification", "EvalRunner",
           "compile_evaluation", "PredictRunner", "compile_prediction", "padded_batches"]


def take_rows(tree: Any, ids: jax.Array) -> Any:
    """The rows ``ids`` of every array in ``tree`` (a batch of device-resident data)."""
    return jax.tree.map(lambda a: jnp.take(a, ids, axis=0), tree)


#: A fused chunk whose batches take at most this many bytes gathers them all before its
#: scan (one gather of ``k * b`` rows; the loop body then reads its batch as a plain
#: slice), measured faster than a gather inside every step (``bench_fit_loop.py``);
#: a larger chunk gathers step by step, so the copy never costs more than this.
PREGATHER_BYTES = 64 << 20


def _chunk_bytes(data: Any, idx: Any) -> int:
    """Bytes of the rows ``idx`` (any shape) of every array in ``data``."""
    return sum(math.prod(idx.shape) * math.prod(a.shape[1:]) * a.dtype.itemsize
               for a in jax.tree.leaves(data))


def _add_weighted(sums: dict, logs: dict, n: jax.Array) -> dict:
    return {k: sums[k] + logs[k].astype(jnp.float32) * n for k in sums}


def _zeros_like_logs(logs_shape: dict) -> dict:
    """Zero sums shaped like the logs: a scalar per name, or one value per population member."""
    return {k: jnp.zeros(jnp.shape(s), jnp.float32) for k, s in logs_shape.items()}


class StepRunner(NamedTuple):
    """The compiled forms of one training step (see the module docstring).

    Attributes:
        chunk: ``(state, data, idx[k, b]) -> (state, sums)``, ``k`` steps in one scan.
        single: ``(state, sums, data, ids[b]) -> (state, sums)``, one step.
        step_at: ``(state, sums, data, idx[k, b], i) -> (state, sums, i + 1)``, one
            step on the rows ``idx[i]`` (``i`` a device int32 scalar).
        start: ``(state, data, idx[k, b]) -> (sums, idx, i)``: what ``step_at`` starts
            a chunk from, zero sums, ``idx`` on the device and ``i = 0``, in one
            compiled call (``jax.device_put`` and ``jnp.zeros`` took longer than the
            steps of a small model).
        zero_sums: ``(state, data, ids) -> sums`` of zeros, one per logged name
            (shapes only, no step is run).
    """

    chunk: Callable
    single: Callable
    zero_sums: Callable
    step_at: Callable
    start: Callable


def compile_steps(step: Callable[[Any, Any], tuple[Any, dict]]) -> StepRunner:
    """Compile ``step(state, batch) -> (state, logs)`` for device-resident data.

    ``batch`` is :func:`take_rows` of the ``data`` pytree the runner is called
    with: ``(x, y)`` for supervised training, ``x`` alone for an autoencoder
    or a GAN. The state is donated to every call (do not reuse a state after
    passing it in).

    Example:
        >>> import jax.numpy as jnp
        >>> def step(total, x):            # a "model" that sums what it sees
        ...     return total + x.sum(), {"seen": x.sum()}
        >>> runner = compile_steps(step)
        >>> idx = jnp.array([[0, 1], [2, 3]], jnp.int32)
        >>> total, sums = runner.chunk(jnp.float32(0), jnp.arange(4.0), idx)
        >>> float(total), float(sums["seen"])     # sums weight each step by its batch size
        (6.0, 12.0)
    """
    shapes: dict = {}  # the step's log names and shapes, traced once (not once per chunk)

    def log_shapes(state, data, ids):
        if not shapes:
            shapes.update(jax.eval_shape(step, state, take_rows(data, ids))[1])
        return shapes

    def zero_sums(state, data, ids):
        return _zeros_like_logs(log_shapes(state, data, ids))

    def chunk(state, data, idx):
        weight = jnp.float32(idx.shape[1])
        if _chunk_bytes(data, idx) <= PREGATHER_BYTES:  # one gather, then scan over batches
            def body(carry, batch):
                st, sums = carry
                st, logs = step(st, batch)
                return (st, _add_weighted(sums, logs, weight)), None
            xs = take_rows(data, idx)
        else:  # a chunk too large to copy at once: each step gathers its own rows
            def body(carry, ids):
                st, sums = carry
                st, logs = step(st, take_rows(data, ids))
                return (st, _add_weighted(sums, logs, weight)), None
            xs = idx
        (state, sums), _ = jax.lax.scan(body, (state, zero_sums(state, data, idx[0])), xs)
        return state, sums

    def single(state, sums, data, ids):
        state, logs = step(state, take_rows(data, ids))
        return state, _add_weighted(sums, logs, jnp.float32(ids.shape[0]))

    def step_at(state, sums, data, idx, i):
        state, sums = single(state, sums, data, jax.lax.dynamic_index_in_dim(idx, i, 0, False))
        return state, sums, i + 1

    begin = jax.jit(lambda idx: (_zeros_like_logs(shapes), idx, jnp.int32(0)))

    def start(state, data, idx):
        log_shapes(state, data, idx[0])  # traced once; begin builds the zeros
        return begin(idx)

    return StepRunner(chunk=jax.jit(chunk, donate_argnums=(0,)),
                      single=jax.jit(single, donate_argnums=(0, 1)), zero_sums=zero_sums,
                      step_at=jax.jit(step_at, donate_argnums=(0, 1, 4)), start=start)


def per_specification(compile_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``compile_fn(spec)``, shared by every trainer of an equal specification.

    A second trainer of the same (or an equal, hashable) specification, e.g.
    the fresh trainer a checkpoint is restored into, reuses the first one's
    compiled functions instead of compiling them again. A specification with
    an unhashable part compiles its own.

    >>> calls = []
    >>> shared = per_specification(lambda spec: calls.append(spec) or len(calls))
    >>> shared(("gan", 2)), shared(("gan", 2)), calls
    (1, 1, [('gan', 2)])
    """
    cached = functools.lru_cache(maxsize=16)(compile_fn)

    def compiled(spec: Any) -> Any:
        try:
            hash(spec)
        except TypeError:  # an unhashable field: no sharing
            return compile_fn(spec)
        return cached(spec)

    return compiled


class EvalRunner(NamedTuple):
    """Compiled evaluation: ``all(state, data, idx, w)`` fused, ``single(state, sums, data,
    ids, w)`` per batch; both return weighted sums (``w`` is 0 on padding rows).
    ``zero_sums(state, data, ids, w)``: the sums ``single`` starts from (shapes only)."""

    all: Callable
    single: Callable
    zero_sums: Callable


def compile_evaluation(eval_step: Callable[[Any, Any, jax.Array], dict]) -> EvalRunner:
    """Compile ``eval_step(state, batch, weights) -> logs`` (batch means under ``weights``)."""
    shapes: dict = {}  # the logs' names and shapes, traced once

    def zero_sums(state, data, ids, w):
        if not shapes:
            shapes.update(jax.eval_shape(eval_step, state, take_rows(data, ids), w))
        return _zeros_like_logs(shapes)

    def single(state, sums, data, ids, w):
        return _add_weighted(sums, eval_step(state, take_rows(data, ids), w), jnp.sum(w))

    def fused(state, data, idx, w):
        def body(sums, args):
            return single(state, sums, data, *args), None

        return jax.lax.scan(body, zero_sums(state, data, idx[0], w[0]), (idx, w))[0]

    return EvalRunner(all=jax.jit(fused), single=jax.jit(single), zero_sums=zero_sums)


class PredictRunner(NamedTuple):
    """Compiled inference outputs: ``all(state, data, idx)`` stacked per batch,
    ``single(state, data, ids)`` one batch."""

    all: Callable
    single: Callable


def compile_prediction(predict: Callable[[Any, Any], Any]) -> PredictRunner:
    """Compile ``predict(state, batch) -> outputs`` over device-resident data."""
    def single(state, data, ids):
        return predict(state, take_rows(data, ids))

    def fused(state, data, idx):
        return jax.lax.scan(lambda c, ids: (c, single(state, data, ids)), None, idx)[1]

    return PredictRunner(all=jax.jit(fused), single=jax.jit(single))


def padded_batches(n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(steps, batch_size)`` covering ``0..n-1`` and their weights.

    The last batch is padded by repeating the last row with weight 0, so every
    batch has one shape (one compilation) and every example counts once.

    >>> idx, w = padded_batches(5, 2)
    >>> idx.tolist(), w.tolist()
    ([[0, 1], [2, 3], [4, 4]], [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    """
    steps = math.ceil(n / batch_size)
    idx = np.arange(steps * batch_size, dtype=np.int32)
    weights = (idx < n).astype(np.float32)
    idx = np.minimum(idx, n - 1)
    return idx.reshape(steps, batch_size), weights.reshape(steps, batch_size)
