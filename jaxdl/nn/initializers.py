"""Weight initializers.

Every initializer has the signature ``init(key, shape, dtype=jnp.float32) ->
array``. ``glorot_uniform``, ``he_normal``, ``zeros`` and the other fixed
schemes are initializers themselves; ``normal(stddev)``, ``uniform(scale)``,
``orthogonal(gain)`` and ``variance_scaling(...)`` build one.

Fan-in and fan-out follow Keras: for a kernel of shape ``(..., in, out)`` (a
Dense kernel ``(in, out)`` or a conv kernel HWIO ``(kh, kw, in, out)``) the
receptive field ``prod(shape[:-2])`` multiplies both, so
``fan_in = in * kh * kw`` and ``fan_out = out * kh * kw``.

The variance-scaling family draws with variance ``scale / n`` where ``n`` is the
fan-in, the fan-out or their mean:

===================  ======  ========  =========================
name                 scale   n         distribution
===================  ======  ========  =========================
``glorot_uniform``   1       fan_avg   uniform(-limit, limit)
``glorot_normal``    1       fan_avg   truncated normal
``he_uniform``       2       fan_in    uniform
``he_normal``        2       fan_in    truncated normal
``lecun_uniform``    1       fan_in    uniform
``lecun_normal``     1       fan_in    truncated normal
===================  ======  ========  =========================

For the uniform draws ``limit = sqrt(3 * scale / n)``. The truncated normal is
cut at two standard deviations and rescaled by 1/0.8796 so that its variance
is exactly ``scale / n``.

Example:
    >>> import jax
    >>> from jaxdl.nn import initializers
    >>> w = initializers.he_normal(jax.random.key(0), (784, 128))
    >>> w.shape
    (784, 128)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Initializer, PRNGKey

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNC_STD = 0.87962566103423978


def _fans(shape: Sequence[int]) -> tuple[float, float]:
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _check_float_dtype(name: str, dtype) -> None:
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"initializers.{name}: dtype must be a floating dtype, got {dtype}.")


def draw_flat(sample: Callable[[tuple[int, ...]], Array], shape: Sequence[int]) -> Array:
    """``sample(shape)``, drawn as one flat vector and reshaped to ``shape``.

    With JAX's default partitionable threefry (``jax_threefry_partitionable``) a
    draw's numbers do not depend on its shape, only on the element's flat index,
    so this is the same array bit for bit; XLA:CPU compiles the 1-D draw about
    3x faster than a 4-D one (1.3 s against 4.3 s for a 3x3x32x64 kernel on a
    loaded 2-core machine), which is most of the cost of creating a model.
    Otherwise (the legacy non-partitionable threefry) ``sample(shape)`` as is.

    >>> import jax
    >>> key = jax.random.key(0)
    >>> a = draw_flat(lambda s: jax.random.normal(key, s), (3, 4, 5))
    >>> bool((a == jax.random.normal(key, (3, 4, 5))).all())
    True
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or not jax.config.jax_threefry_partitionable:
        return sample(shape)
    return sample((math.prod(shape),)).reshape(shape)


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """Build an initializer drawing with variance ``scale / n``.

    Args:
        scale: the variance multiplier (1 for Glorot/LeCun, 2 for He).
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``: which ``n`` to use.
        distribution: ``"uniform"``, ``"truncated_normal"`` or ``"normal"``.

    Returns:
        ``init(key, shape, dtype=jnp.float32) -> array`` of ``shape``.
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', "
                         f"got {mode!r}.")
    if distribution not in ("uniform", "truncated_normal", "normal"):
        raise ValueError(f"variance_scaling: distribution must be 'uniform', "
                         f"'truncated_normal' or 'normal', got {distribution!r}.")
    if not scale > 0:
        raise ValueError(f"variance_scaling: scale must be > 0, got {scale}.")

    def init(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
        _check_float_dtype("variance_scaling", dtype)
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return draw_flat(lambda s: jax.random.uniform(key, s, dtype, -limit, limit), shape)
        std = math.sqrt(variance)
        if distribution == "truncated_normal":
            return (std / _TRUNC_STD) * draw_flat(
                lambda s: jax.random.truncated_normal(key, -2.0, 2.0, s, dtype), shape)
        return std * draw_flat(lambda s: jax.random.normal(key, s, dtype), shape)

    init.__name__ = f"variance_scaling({scale}, {mode!r}, {distribution!r})"
    return init


def _named(fn: Initializer, name: str, doc: str) -> Initializer:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


glorot_uniform = _named(variance_scaling(1.0, "fan_avg", "uniform"), "glorot_uniform",
                        "Glorot/Xavier uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).")
glorot_normal = _named(variance_scaling(1.0, "fan_avg", "truncated_normal"), "glorot_normal",
                       "Glorot/Xavier normal: truncated normal, var = 2 / (fan_in + fan_out).")
he_uniform = _named(variance_scaling(2.0, "fan_in", "uniform"), "he_uniform",
                    "He/Kaiming uniform: U(-l, l), l = sqrt(6 / fan_in). Suits ReLU layers.")
he_normal = _named(variance_scaling(2.0, "fan_in", "truncated_normal"), "he_normal",
                   "He/Kaiming normal: truncated normal, var = 2 / fan_in. Suits ReLU layers.")
lecun_uniform = _named(variance_scaling(1.0, "fan_in", "uniform"), "lecun_uniform",
                       "LeCun uniform: U(-l, l), l = sqrt(3 / fan_in).")
lecun_normal = _named(variance_scaling(1.0, "fan_in", "truncated_normal"), "lecun_normal",
                      "LeCun normal: truncated normal, var = 1 / fan_in. Suits SELU.")


def zeros(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
    """All zeros (the usual bias initializer). ``key`` is ignored."""
    del key
    return jnp.zeros(shape, dtype)


def ones(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
    """All ones (the usual norm-scale initializer). ``key`` is ignored."""
    del key
    return jnp.ones(shape, dtype)


def constant(value: float) -> Initializer:
    """Build an initializer filling every entry with ``value``."""
    def init(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
        del key
        return jnp.full(shape, value, dtype)
    init.__name__ = f"constant({value})"
    return init


def normal(stddev: float = 0.05, mean: float = 0.0) -> Initializer:
    """Build an initializer drawing from N(mean, stddev²) (Keras ``RandomNormal``)."""
    if not stddev >= 0:
        raise ValueError(f"initializers.normal: stddev must be >= 0, got {stddev}.")

    def init(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
        _check_float_dtype("normal", dtype)
        return mean + stddev * draw_flat(lambda s: jax.random.normal(key, s, dtype), shape)
    init.__name__ = f"normal(stddev={stddev})"
    return init


def uniform(scale: float = 0.05) -> Initializer:
    """Build an initializer drawing from U(-scale, scale) (Keras ``RandomUniform``)."""
    if not scale >= 0:
        raise ValueError(f"initializers.uniform: scale must be >= 0, got {scale}.")

    def init(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
        _check_float_dtype("uniform", dtype)
        return draw_flat(lambda s: jax.random.uniform(key, s, dtype, -scale, scale), shape)
    init.__name__ = f"uniform(scale={scale})"
    return init


def orthogonal(gain: float = 1.0) -> Initializer:
    """Build an initializer returning a (semi-)orthogonal matrix times ``gain``.

    For a shape ``(..., n_in, n_out)`` the leading axes are folded into the rows,
    as in Saxe et al. (2014): the result reshaped to ``(prod(shape[:-1]), n_out)``
    has orthonormal columns (when rows >= columns) or rows (otherwise).
    """
    def init(key: PRNGKey, shape: Sequence[int], dtype=jnp.float32) -> Array:
        _check_float_dtype("orthogonal", dtype)
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"initializers.orthogonal: needs a shape of rank >= 2, got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = draw_flat(lambda s: jax.random.normal(key, s, jnp.float32),
                      (max(rows, cols), min(rows, cols)))
        q, r = jnp.linalg.qr(a)
        # Fix the signs so the distribution is uniform (Haar) over orthogonal matrices.
        q = q * jnp.sign(jnp.diagonal(r))
        if rows < cols:
            q = q.T
        return (gain * q).reshape(shape).astype(dtype)
    init.__name__ = f"orthogonal(gain={gain})"
    return init


_BY_NAME: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform, "xavier_uniform": glorot_uniform,
    "glorot_normal": glorot_normal, "xavier_normal": glorot_normal,
    "he_uniform": he_uniform, "kaiming_uniform": he_uniform,
    "he_normal": he_normal, "kaiming_normal": he_normal,
    "lecun_uniform": lecun_uniform, "lecun_normal": lecun_normal,
    "zeros": zeros, "ones": ones,
    "normal": normal(), "random_normal": normal(),
    "uniform": uniform(), "random_uniform": uniform(),
    "orthogonal": orthogonal(),
}


def get(init: str | Callable | None, owner: str = "initializers.get",
        argument: str = "init") -> Initializer:
    """Resolve an initializer given by name (``"he_normal"``) or as a callable.

    Raises:
        ValueError: an unknown name, naming ``owner`` and ``argument`` and listing
            the known names.
    """
    if callable(init):
        return init
    return _checks.lookup(f"{owner}: `{argument}`", "initializer", init, _BY_NAME)
