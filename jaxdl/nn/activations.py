"""Activation functions and their layers.

Each function maps an array to an array of the same shape (``softmax`` and
``log_softmax`` normalize along ``axis``). The formulas:

=================  ==================================================  ============
function           formula                                             range
=================  ==================================================  ============
``linear``         x                                                   (-inf, inf)
``relu``           max(x, 0)                                           [0, inf)
``leaky_relu``     x if x >= 0 else a·x   (a = ``negative_slope``)     (-inf, inf)
``prelu``          x if x >= 0 else a·x   (a learned)                  (-inf, inf)
``elu``            x if x > 0 else alpha·(e^x - 1)                     (-alpha, inf)
``gelu``           x·Φ(x)  (Φ the standard normal CDF)                 (-0.17, inf)
``silu``           x·σ(x)                                              (-0.28, inf)
``sigmoid``        σ(x) = 1 / (1 + e^-x)                               (0, 1)
``tanh``           (e^x - e^-x) / (e^x + e^-x)                         (-1, 1)
``softmax``        e^{x_i} / Σ_j e^{x_j}                               (0, 1), sums to 1
``log_softmax``    x_i - log Σ_j e^{x_j}                               (-inf, 0]
=================  ==================================================  ============

``activation="relu"`` and friends: any name in :data:`ACTIVATIONS` is accepted
wherever a layer takes an ``activation`` argument.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxdl import nn
    >>> nn.relu(jnp.array([-2.0, 0.5]))
    Array([0. , 0.5], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


def linear(x: Array) -> Array:
    """Identity: ``f(x) = x``. The output activation of a regression layer."""
    return x


def relu(x: Array) -> Array:
    """Rectified linear unit: ``max(x, 0)``. Its derivative at 0 is taken as 0.

    NaN propagates (``relu(nan)`` is NaN, as in ``jax.nn.relu``), so a bad input
    shows up in the loss instead of being silently zeroed.
    """
    # where() rather than maximum(): maximum splits the gradient 0.5/0.5 at a tie. The
    # test is ``x <= 0`` so that NaN (for which every comparison is False) keeps x.
    return jnp.where(x <= 0, jnp.zeros((), x.dtype), x)


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """Leaky ReLU: ``x`` for ``x >= 0``, ``negative_slope * x`` below.

    A small slope keeps a gradient flowing for negative inputs, which avoids
    the "dying ReLU" problem of units stuck at zero.
    """
    return jnp.where(x >= 0, x, negative_slope * x)


def prelu(x: Array, slope: Array) -> Array:
    """Parametric ReLU (He et al., 2015): ``x`` for ``x >= 0``, ``slope * x`` below.

    ``slope`` broadcasts against ``x`` and is usually learned (see :class:`PReLU`).
    """
    return jnp.where(x >= 0, x, slope * x)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below.

    The derivative at 0 is 1 (as ``jax.nn.elu``'s); NaN propagates.
    """
    # The unused branch sees 0 instead of a large x, so exp never overflows and gradients
    # stay NaN-free; where() rather than minimum() keeps the slope at 0 equal to alpha·1.
    safe = jnp.where(x > 0, jnp.zeros((), x.dtype), x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(safe))


def gelu(x: Array, approximate: bool = False) -> Array:
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016): ``x * Φ(x)``.

    Exact by default, like Keras and PyTorch, computed as ``x·erfc(-x/√2)/2``:
    the textbook ``0.5·x·(1 + erf(x/√2))`` cancels for negative ``x`` (it is 0 in
    float32 below x ≈ -5.9), while ``erfc`` keeps full relative precision.
    ``approximate=True`` uses the tanh form
    ``0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))``.
    """
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + jnp.tanh(c * (x + 0.044715 * x ** 3)))
    return 0.5 * x * lax.erfc(-x / math.sqrt(2.0))


def sigmoid(x: Array) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow for any ``x``."""
    return lax.logistic(x)


def silu(x: Array) -> Array:
    """Sigmoid linear unit, also called swish: ``x * sigmoid(x)``."""
    return x * sigmoid(x)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent ``(e^x - e^-x) / (e^x + e^-x)``, in (-1, 1)."""
    return jnp.tanh(x)


@jax.custom_jvp
def softplus(x: Array) -> Array:
    """``log(1 + exp(x))``, computed stably as ``max(x, 0) + log1p(exp(-|x|))``.

    The derivative is set to ``sigmoid(x)`` explicitly: differentiating the
    formula piece by piece gives the wrong slope at exactly 0 (the kinks of max
    and |.| cancel in value but their subgradients do not), and 0 is where a
    zero-initialized output layer starts. The binary cross-entropy from logits
    uses this function.
    """
    return jnp.maximum(x, jnp.zeros((), x.dtype)) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return softplus(x), sigmoid(x) * dx


def softmax(x: Array, axis: int = -1) -> Array:
    """Softmax along ``axis``: ``exp(x_i) / Σ_j exp(x_j)``.

    The maximum is subtracted first (it cancels in the ratio), so large logits
    do not overflow.
    """
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, axis: int = -1) -> Array:
    """Log of the softmax along ``axis``: ``x_i - log Σ_j exp(x_j)`` (log-sum-exp form)."""
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": linear, "relu": relu, "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu,
    "silu": silu, "swish": silu, "sigmoid": sigmoid, "tanh": tanh, "softplus": softplus,
    "softmax": softmax, "log_softmax": log_softmax,
}
"""Activation names accepted by ``activation=`` arguments."""

ActivationLike = Union[str, Callable[[Array], Array], None]


def get(activation: ActivationLike, owner: str = "activations.get") -> Callable[[Array], Array]:
    """Resolve ``activation`` (a name, a callable, or ``None`` for linear) to a function.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if activation is None:
        return linear
    if callable(activation):
        return activation
    return _checks.lookup(owner, "activation", activation, ACTIVATIONS)


class _Elementwise(Layer):
    """A parameter-free layer applying ``function(x, **hyperparameters)``; shape unchanged.

    Subclasses are made by :func:`elementwise`. Inputs follow the layer input
    policy (:func:`jaxdl.nn.base.layer_input`): integer inputs are cast to float32.
    """

    function: Callable[..., Array] = staticmethod(linear)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        _checks.shape_tuple(type(self).__name__, input_shape)
        return {}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple(type(self).__name__, input_shape)

    def _fn(self, x: Array) -> Array:
        hyper = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return type(self).function(x, **hyper)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        return self._fn(base.layer_input(type(self).__name__, x)), state


def elementwise(function: Callable[..., Array], name: str, doc: str, *,
                name_prefix: Optional[str] = None, check: Optional[Callable] = None,
                **hyperparameters) -> type:
    """A layer class applying ``function`` to every input value (stax's ``elementwise``).

    Args:
        function: ``function(x, **hyperparameters) -> y`` of the same shape.
        name: the class name (``"ReLU"``).
        doc: the class docstring.
        name_prefix: the layer's name in containers; the snake-case ``name`` if ``None``.
        check: ``check(layer)`` validating the hyperparameters at construction.
        **hyperparameters: the layer's fields and their defaults, passed to
            ``function`` by keyword.

    Returns:
        A frozen dataclass layer (hashable, printable, comparable) with no params.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> Scale = nn.activations.elementwise(lambda x, factor: factor * x, "Scale",
        ...                                    "Multiplies by `factor`.", factor=2.0)
        >>> Scale(3.0).apply({}, {}, jnp.ones((1, 2)))[0]
        Array([[3., 3.]], dtype=float32)
    """
    namespace = {"__doc__": doc, "__module__": __name__, "__qualname__": name,
                 "function": staticmethod(function), "name_prefix": name_prefix}
    if check is not None:
        namespace["__post_init__"] = check
    fields = [(key, type(value), value) for key, value in hyperparameters.items()]
    return dataclasses.make_dataclass(name, fields, bases=(_Elementwise,), namespace=namespace,
                                      frozen=True)


@dataclasses.dataclass(frozen=True)
class Activation(_Elementwise):
    """Applies an activation given by name (``"relu"``) or as a function.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.Activation("tanh")
        >>> y, _ = layer.apply({}, {}, jnp.zeros((2, 3)))
    """

    fn: ActivationLike = "linear"

    def __post_init__(self):
        get(self.fn, owner="Activation")

    def _fn(self, x: Array) -> Array:
        return get(self.fn)(x)


def _check_slope(layer) -> None:
    _checks.non_negative_float("LeakyReLU", "negative_slope", layer.negative_slope)


ReLU = elementwise(relu, "ReLU", "``max(x, 0)`` as a layer.", name_prefix="relu")
LeakyReLU = elementwise(
    leaky_relu, "LeakyReLU",
    "``x if x >= 0 else negative_slope * x`` as a layer (Keras default slope differs: 0.3).",
    name_prefix="leaky_relu", check=_check_slope, negative_slope=0.01)
ELU = elementwise(elu, "ELU", "``x if x > 0 else alpha * (exp(x) - 1)`` as a layer.",
                  alpha=1.0)
GELU = elementwise(gelu, "GELU", "``x * Φ(x)`` as a layer; ``approximate=True`` for the tanh "
                   "form.", approximate=False)
SiLU = elementwise(silu, "SiLU", "``x * sigmoid(x)`` (swish) as a layer.")
Sigmoid = elementwise(sigmoid, "Sigmoid",
                      "``1 / (1 + exp(-x))`` as a layer: the binary-classification output.")
Tanh = elementwise(tanh, "Tanh", "``tanh(x)`` as a layer.")
Softmax = elementwise(
    softmax, "Softmax",
    """Softmax along ``axis`` as a layer: the multi-class output.

    Prefer training on logits with a ``from_logits=True`` loss and applying
    softmax only for prediction: the combined log-sum-exp form is more stable.
    """, axis=-1)


@dataclasses.dataclass(frozen=True)
class PReLU(Layer):
    """Parametric ReLU (He et al., 2015) with a learned negative slope.

    ``y = x if x >= 0 else slope * x``. As in Keras the slope has the input's
    shape (one slope per unit) except along ``shared_axes``, 1-based axes of the
    input without the batch axis: ``shared_axes=(1, 2)`` on ``(H, W, C)`` images
    learns one slope per channel. The slope starts at ``slope_init`` (0.25, as
    in the paper; Keras starts at 0).

    Params: ``{"slope": array}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> layer = nn.PReLU(shared_axes=(1, 2))
        >>> params, state = layer.init(jax.random.key(0), (8, 8, 16))
        >>> params["slope"].shape
        (1, 1, 16)
    """

    slope_init: float = 0.25
    shared_axes: Optional[Sequence[int]] = None
    name_prefix = "prelu"

    def __post_init__(self):
        if self.shared_axes is not None:
            object.__setattr__(self, "shared_axes", tuple(int(a) for a in self.shared_axes))

    def _slope_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        for a in self.shared_axes or ():
            if not 1 <= a <= len(shape):
                raise ValueError(f"PReLU: shared_axes entries must be in 1..{len(shape)} for "
                                 f"input_shape {tuple(input_shape)} (1-based, no batch axis), "
                                 f"got {self.shared_axes}.")
            shape[a - 1] = 1
        return tuple(shape)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        shape = _checks.shape_tuple("PReLU", input_shape)
        return {"slope": jnp.full(self._slope_shape(shape), self.slope_init, jnp.float32)}, {}

    def output_shape(self, input_shape: Shape) -> Shape:
        return _checks.shape_tuple("PReLU", input_shape)

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        slope = params["slope"]
        x = base.layer_input("PReLU", x, slope.dtype)
        expected = slope.shape
        got = x.shape[1:]
        if len(got) != len(expected) or any(
                s != 1 and s != g for s, g in zip(expected, got, strict=True)):
            raise ValueError(f"PReLU: its slope of shape {expected} was built for inputs of shape "
                             f"(batch, {', '.join(str(s) if s != 1 else '*' for s in expected)}) "
                             f"but received x of shape {tuple(x.shape)}. Re-init the layer with "
                             f"input_shape={tuple(got)}.")
        return prelu(x, slope), state
