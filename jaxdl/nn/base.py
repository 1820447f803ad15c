"""The layer protocol.

A layer is a frozen dataclass that holds only hyperparameters (hashable,
printable, JSON-friendly) and two pure methods:

* ``init(key, input_shape) -> (params, state)``: ``input_shape`` excludes the
  batch axis. ``params`` are trainable arrays, ``state`` non-trainable ones
  (e.g. batch-norm moving statistics); both are nested dicts, ``{}`` when empty.
* ``apply(params, state, x, *, key=None, training=False) -> (y, state)``: ``x``
  has the batch axis first (channels last for images). ``key`` supplies
  randomness (dropout), ``training`` switches train/inference behaviour. A
  layer without state returns the ``state`` it was given. ``training`` is a
  Python bool that selects code paths, so under ``jax.jit`` it must be static:
  ``jax.jit(model.apply, static_argnames="training")``.

Two class attributes tell the rest of jaxdl how to treat a layer:

* ``name_prefix``: the prefix of its generated name in a container
  (``dense`` -> ``dense_0``); the snake-case class name by default.
* ``scan_friendly``: ``True`` by default. A layer that runs much slower inside a
  loop body (``lax.scan``) than as a jitted call of its own declares
  ``scan_friendly = False``; then :func:`scan_friendly` is False for every model
  containing it and the trainer runs one jitted call per step instead of fusing
  steps into a scan. jaxdl's convolutions declare it, since XLA:CPU
  convolutions run about 7x slower inside a loop body (jax-ml/jax#12868); a
  user's own convolution layer should declare it too.

Inputs follow one policy, :func:`layer_input`: floating arrays are used as
they are (or cast to the dtype of the layer's params), integer and bool arrays
are cast to a floating dtype, and complex or non-numeric inputs raise
``TypeError``. Only layers whose inputs are not numbers to compute with keep
their dtype: ``Embedding`` (integer ids), ``Flatten`` and ``Reshape``.

Because layers are hashable they can be closed over or passed as static
arguments to ``jax.jit``; because params are plain dicts, ``jax.grad``,
``jax.vmap`` and optax work on them directly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping
from typing import Any, Optional

import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl._typing import Array, Params, PRNGKey, Shape, State


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base class of every jaxdl layer. Subclasses are frozen dataclasses.

    Subclasses implement ``init`` and ``apply``; ``output_shape`` has a generic
    default (shape inference with ``jax.eval_shape``, no FLOPs spent) that
    layers may override with their formula.
    """

    #: Prefix of the layer's auto-generated name in a ``Sequential`` (``dense`` -> ``dense_0``).
    name_prefix = None
    #: False for layers that are slow inside a ``lax.scan`` body (see :func:`scan_friendly`).
    scan_friendly = True

    @classmethod
    def default_name(cls) -> str:
        """The snake-case prefix used to name this layer inside containers."""
        return cls.name_prefix or _snake(cls.__name__)

    def __call__(self, node: Any, name: Optional[str] = None) -> Any:
        """Call the layer on a graph node (or a list of nodes) to build an ``nn.Model``.

        Returns the output node, whose ``shape`` is known at once. Layers compute
        with ``layer.apply(params, state, x)``; calling one on an array raises
        ``TypeError``. See :mod:`jaxdl.nn.graph`.
        """
        from jaxdl.nn import graph  # graph builds on this module

        return graph.call_layer(self, node, name)

    def init(self, key: PRNGKey, input_shape: Shape) -> tuple[Params, State]:
        """Create ``(params, state)`` for inputs of ``input_shape`` (no batch axis)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement init.")

    def apply(self, params: Params, state: State, x: Array, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Array, State]:
        """Apply the layer to the batch ``x``; return ``(y, new_state)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement apply.")

    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape, without the batch axis, for inputs of ``input_shape``."""
        shape = _checks.shape_tuple(type(self).__name__, input_shape)
        params, state = jax.eval_shape(lambda: self.init(jax.random.key(0), shape))
        return abstract_output_shape(self, params, state, shape)


def abstract_output_shape(layer: Any, params: Params, state: State, shape: Shape) -> Shape:
    """Output shape of ``layer.apply`` on a batch of one, computed without FLOPs."""
    x = jax.ShapeDtypeStruct((1,) + tuple(shape), jnp.float32)
    y, _ = jax.eval_shape(lambda p, s, v: layer.apply(p, s, v, training=False), params, state, x)
    return tuple(int(d) for d in y.shape[1:])


def output_shape(layer: Layer, input_shape: Shape) -> Shape:
    """The shape ``layer`` produces for inputs of ``input_shape`` (both without batch axis).

    Example:
        >>> from jaxdl import nn
        >>> nn.output_shape(nn.Dense(10), (784,))
        (10,)
    """
    if isinstance(input_shape, (tuple, list)) and input_shape and all(
            isinstance(s, (tuple, list)) for s in input_shape):  # several inputs (merge, Model)
        return layer.output_shape(tuple(tuple(s) for s in input_shape))
    return layer.output_shape(_checks.shape_tuple(type(layer).__name__, input_shape))


def layer_input(owner: str, x: Any, dtype: Any = None) -> Array:
    """The input policy every computing layer applies to ``x`` (see the module docstring).

    Args:
        owner: the layer, named in error messages.
        x: the input, any array-like.
        dtype: the dtype to compute in (a layer with params passes its params'
            dtype); ``None`` keeps a floating ``x`` as it is and casts integer
            and bool inputs to float32.

    Returns:
        ``x`` as a floating JAX array.

    Raises:
        TypeError: ``x`` is complex or not numeric.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import nn
        >>> nn.base.layer_input("ReLU", jnp.arange(3)).dtype
        dtype('float32')
    """
    x = jnp.asarray(x)
    if dtype is None:
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return _checks.floating_input(owner, x, dtype)


def _sublayers(value: Any) -> list:
    """The layers directly inside ``value``: its dataclass fields, tuple/list/dict entries."""
    if isinstance(value, (tuple, list)):
        items = list(value)
    elif isinstance(value, Mapping):
        items = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return []
    found = []
    for item in items:
        if hasattr(item, "apply") and not isinstance(item, type):
            found.append(item)
        elif isinstance(item, (tuple, list, Mapping)):
            found.extend(_sublayers(item))
    return found


def scan_friendly(layer: Any) -> bool:
    """Whether ``layer`` and every layer inside it may run inside a ``lax.scan`` body.

    False as soon as the layer or a sublayer (found through dataclass fields,
    tuples, lists and dicts, anything with an ``apply``) has the attribute
    ``scan_friendly = False``. The trainer then runs one jitted call per step
    rather than fusing several steps into a scan.

    Example:
        >>> from jaxdl import nn
        >>> nn.scan_friendly(nn.Sequential([nn.Dense(4)]))
        True
        >>> nn.scan_friendly(nn.Sequential([nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(2)]))
        False
    """
    seen, todo = set(), [layer]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if getattr(current, "scan_friendly", True) is False:
            return False
        todo.extend(_sublayers(current))
    return True


def count_params(tree: Any) -> int:
    """Number of scalar entries in all array leaves of ``tree``."""
    return sum(math.prod(jnp.shape(leaf) if not hasattr(leaf, "shape") else leaf.shape)
               for leaf in jax.tree.leaves(tree))


def check_key(owner: str, key: Any) -> None:
    """Raise ``TypeError`` unless ``key`` is a JAX random key (new-style or raw ``uint32``)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
                              or (dtype == jnp.uint32 and jnp.ndim(key) >= 1)):
        return
    got = "None" if key is None else f"{type(key).__name__} {key!r}"[:80]
    raise TypeError(f"{owner}: `key` must be a JAX random key, got {got}. Pass "
                    f"jax.random.key(0) (or a key split from one with jax.random.split).")


def leaf_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """``{"dense_0/kernel": shape, ...}``: every array leaf of ``tree`` by its path."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {_checks.path_str(path): tuple(jnp.shape(leaf)) for path, leaf in leaves}


def _init_shapes(layer: Any, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    params, _ = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_shape))
    return leaf_shapes(params)


_cached_init_shapes = functools.lru_cache(maxsize=1024)(_init_shapes)


def init_param_shapes(layer: Any, input_shape: Shape) -> Optional[dict[str, tuple[int, ...]]]:
    """The param leaf shapes ``layer.init`` makes for ``input_shape``, by path.

    Computed abstractly (``jax.eval_shape``: no FLOPs, no memory) and cached per
    ``(layer, input_shape)``, since layers are hashable. ``None`` when ``init``
    itself rejects ``input_shape`` (the layer's ``apply`` then reports it).
    """
    try:
        hash(layer)
        compute = _cached_init_shapes
    except TypeError:
        compute = _init_shapes
    try:
        return compute(layer, tuple(int(d) for d in input_shape))
    except (ValueError, TypeError):
        return None


def _param_problems(want: dict, got: dict) -> list[str]:
    """Each missing, mis-shaped or unexpected leaf, in path order."""
    problems = []
    for path, shape in want.items():
        if path not in got:
            problems.append(f"params lack the leaf '{path}' (of shape {shape})")
        elif got[path] != shape:
            problems.append(f"params leaf '{path}' has shape {got[path]}, but init makes {shape}")
    problems += [f"params hold a leaf '{path}' (of shape {shape}) that init does not make"
                 for path, shape in got.items() if path not in want]
    return problems


def check_params(owner: str, layer: Any, params: Any, x: Any) -> None:
    """Check ``params`` against what ``layer.init`` makes for inputs shaped like ``x``.

    Every leaf must be there with the shape ``init`` gives it, and no other leaf
    may be: params of another model (a ``Dense(32)`` trunk fed to a ``Dense(16)``
    model) raise instead of running silently. Shapes are static, so under
    ``jit`` this costs one cached ``jax.eval_shape`` per layer and input shape.

    Raises:
        TypeError: if ``params`` is not a dict (e.g. ``None``).
        ValueError: naming the missing, mis-shaped or unexpected leaves (the first three).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"{owner}: `params` must be the dict of arrays that init returned, got "
                        f"{type(params).__name__}. Create them with params, state = "
                        f"layer.init(jax.random.key(0), input_shape) and pass those.")
    x_shape = tuple(jnp.shape(x))
    want = init_param_shapes(layer, x_shape[1:]) if x_shape else None
    problems = [] if want is None else _param_problems(want, leaf_shapes(params))
    if problems:
        listed = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        raise ValueError(f"{owner}: {listed} for inputs of shape {x_shape[1:]} (x has shape "
                         f"{x_shape}). The params were made by another model or for inputs of "
                         f"another shape: pass the params this layer's init made for these "
                         f"inputs, or inputs of the shape the params were made for.")


def init_child(owner: str, name: str, layer: Any, key: Any, input_shape: Any,
               params: dict, state: dict) -> tuple[Any, Any]:
    """Initialize the sub-layer ``name`` of a container into ``params``/``state``.

    The one rule containers (``Sequential``, ``Model``) share: an error gets a note
    naming the container, the layer and its input shape; empty params or state
    get no entry. Returns the sub-layer's ``(params, state)``.
    """
    try:
        p, s = layer.init(key, input_shape)
    except Exception as e:
        add_note(e, f"in {owner} layer '{name}' (input_shape {input_shape})")
        raise
    if jax.tree.leaves(p):
        params[name] = p
    if jax.tree.leaves(s):
        state[name] = s
    return p, s


def add_note(error: BaseException, note: str) -> None:
    """Attach ``note`` to ``error`` (PEP 678) so a bare ``raise`` re-raises it unchanged.

    The original exception object is kept, so JAX's own error classes (which
    cannot be rebuilt from a message) come through intact. Python 3.10 lacks
    ``add_note``: the note is stored in ``__notes__`` all the same (tools such
    as pytest read it there), though 3.10's tracebacks do not print it.
    """
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10
        error.__notes__ = [*getattr(error, "__notes__", []), note]
