"""Where training runs on a mesh of devices: the one home of jaxdl's sharding rules.

Data parallelism through ``jax.sharding``, by annotations only: the model code
does not change. A :class:`Layout` says, for a mesh with a ``"data"`` axis,

- **rows** (the dataset, each batch, evaluation weights, predictions): split
  along their first axis over the ``data`` devices;
- **the state** (params, model state, optimizer state): replicated on every
  device, or with ``shard_params=True`` each large leaf split along one of its
  axes that the device count divides (ZeRO-3 / FSDP style: XLA gathers a
  weight where the computation needs it, and each device keeps and updates
  only its slice of the weights and of the optimizer's moments).

Inside the jitted step the gathered batch is constrained to the row layout and
the new state to the state layout; XLA's SPMD partitioner inserts the
collectives (the gradient all-reduce, the batch statistics of BatchNorm over
the global batch). Every rule depends only on shapes and the mesh, so the same
leaf gets the same layout in the params and in the optimizer's moments.

Several processes (``jax.distributed.initialize()`` first) form one mesh over
all their devices: each process passes its own rows (:func:`jaxdl.data.process_shard`)
and :meth:`Layout.place_rows` assembles the global dataset from them.

Example:
    >>> import jax.numpy as jnp
    >>> layout = Layout(resolve_mesh("example", "data"))
    >>> rows = layout.place_rows(jnp.arange(6.0).reshape(3, 2))
    >>> rows.shape[0] >= 3, rows.sharding.spec[0]
    (True, 'data')
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxdl.train.inputs import short_repr

__all__ = ["DATA_AXIS", "MIN_SHARDED_ELEMENTS", "resolve_mesh", "layout_for", "Layout", "leaf_spec",
           "per_device_bytes", "to_host", "describe_mesh"]

#: The mesh axis batches are split over.
DATA_AXIS = "data"
#: With ``shard_params``, leaves with fewer elements stay replicated: gathering a
#: small weight costs more than the memory it would save.
MIN_SHARDED_ELEMENTS = 4096


def resolve_mesh(owner: str, mesh: Any) -> Optional[Mesh]:
    """``None`` (one device), ``"data"`` (every device, one axis ``"data"``) or a
    ``jax.sharding.Mesh`` with a ``"data"`` axis, checked.

    >>> resolve_mesh("fit", None) is None
    True
    >>> resolve_mesh("fit", "data").axis_names
    ('data',)
    """
    if mesh is None:
        return None
    if isinstance(mesh, str):
        if mesh != DATA_AXIS:
            raise ValueError(f"{owner}: mesh must be None, 'data' (all devices) or a "
                             f"jax.sharding.Mesh, got the string {mesh!r}. Write mesh='data'.")
        return Mesh(np.array(jax.devices()), (DATA_AXIS,))
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{owner}: mesh must be None, 'data' or a jax.sharding.Mesh, got "
                        f"{short_repr(mesh)}. Build one with jax.make_mesh((n,), ('data',)).")
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"{owner}: the mesh needs an axis named 'data' to split batches over; "
                         f"its axes are {mesh.axis_names}. Name the batch axis 'data', e.g. "
                         f"jax.make_mesh((n,), ('data',)).")
    return mesh


def layout_for(owner: str, mesh: Any, shard_params: bool = False) -> Optional["Layout"]:
    """The :class:`Layout` of ``mesh`` (checked by :func:`resolve_mesh`), or ``None``
    without a mesh; ``shard_params`` without a mesh is refused.

    >>> layout_for("fit", None) is None, layout_for("fit", "data", True).shard_params
    (True, True)
    """
    mesh = resolve_mesh(owner, mesh)
    if mesh is None:
        if shard_params:
            raise ValueError(f"{owner}: shard_params=True splits the params over the devices "
                             f"of a mesh, but mesh is None. Pass mesh='data' (all devices) or "
                             f"a jax.sharding.Mesh with a 'data' axis.")
        return None
    return Layout(mesh, shard_params)


def leaf_spec(shape: tuple, devices: int, shard: bool) -> P:
    """The state layout of one leaf: replicated, or split over ``devices`` along its
    largest axis they divide (when ``shard`` and the leaf has at least
    :data:`MIN_SHARDED_ELEMENTS` elements).

    >>> leaf_spec((512, 256), 8, True) == P("data", None), leaf_spec((10,), 8, True) == P()
    (True, True)
    """
    if not shard or devices == 1 or int(np.prod(shape, dtype=np.int64)) < MIN_SHARDED_ELEMENTS:
        return P()
    axes = [a for a in range(len(shape)) if shape[a] % devices == 0]
    if not axes:
        return P()
    axis = max(axes, key=lambda a: (shape[a], -a))
    return P(*(DATA_AXIS if a == axis else None for a in range(len(shape))))


def _constrain(tree: Any, sharding_of: Callable[[Any], NamedSharding]) -> Any:
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding_of(a)), tree)


class Layout:
    """The shardings of one training run on ``mesh`` (see the module docstring).

    Args:
        mesh: a mesh with a ``"data"`` axis (:func:`resolve_mesh`).
        shard_params: split large state leaves over the ``data`` axis instead of
            replicating them.
    """

    def __init__(self, mesh: Mesh, shard_params: bool = False):
        self.mesh = mesh
        self.shard_params = bool(shard_params)
        self.devices = int(mesh.shape[DATA_AXIS])

    def __repr__(self) -> str:
        return (f"Layout({describe_mesh(self.mesh)}, shard_params={self.shard_params})")

    def rows_sharding(self, ndim: int) -> NamedSharding:
        """Split the first axis over ``data``; the other axes whole."""
        return NamedSharding(self.mesh, P(DATA_AXIS, *([None] * (ndim - 1))) if ndim else P())

    def state_sharding(self, shape: tuple) -> NamedSharding:
        """Where a state leaf of ``shape`` lives (:func:`leaf_spec`)."""
        return NamedSharding(self.mesh, leaf_spec(tuple(shape), self.devices, self.shard_params))

    # --------------------------------------------------------------- inside jit

    def rows(self, tree: Any) -> Any:
        """Constrain every array of ``tree`` (a batch) to the row layout."""
        return _constrain(tree, lambda a: self.rows_sharding(a.ndim))

    def state(self, tree: Any) -> Any:
        """Constrain every leaf of ``tree`` (a state) to the state layout."""
        return _constrain(tree, lambda a: self.state_sharding(a.shape))

    def step(self, step: Callable[[Any, Any], tuple]) -> Callable[[Any, Any], tuple]:
        """``step(state, batch)`` with its batch split over the devices and its new
        state kept in the state layout (what :func:`~jaxdl.train.executors.compile_steps`
        compiles)."""
        def sharded(state, batch):
            new_state, logs = step(state, self.rows(batch))
            return self.state(new_state), logs

        return sharded

    # --------------------------------------------------------------- placement

    def place_state(self, tree: Any) -> Any:
        """``tree`` (host or device arrays) put in the state layout; a leaf already
        there is not copied."""
        def put(a):
            sharding = self.state_sharding(np.shape(a))
            if getattr(a, "sharding", None) == sharding:
                return a
            if jax.process_count() > 1 and isinstance(a, jax.Array):
                a = np.asarray(to_host(a))  # the same values on every process
            return jax.device_put(a, sharding)

        return jax.tree.map(put, tree)

    def place_rows(self, tree: Any) -> Any:
        """Host arrays (this process's rows) as global arrays split over ``data``.

        One process: the rows are padded at the end to a multiple of the device
        count (padding rows are never indexed). Several processes: every
        process passes the same number of rows, a multiple of its local device
        count, and process ``p``'s rows come after those of processes ``< p``.
        """
        if jax.process_count() == 1:
            return jax.tree.map(lambda a: jax.device_put(self._padded(a), self.rows_sharding(
                np.ndim(a))), tree)
        return jax.tree.map(self._global_rows, tree)

    def _padded(self, a: Any) -> np.ndarray:
        a = np.asarray(a)
        extra = -len(a) % self.devices
        if not extra:
            return a
        return np.concatenate([a, np.repeat(a[-1:], extra, axis=0)])

    def _global_rows(self, a: Any) -> jax.Array:
        a = np.asarray(a)
        local = len(self.mesh.local_devices)
        if len(a) % local:
            raise ValueError(f"fit on {jax.process_count()} processes: each process's rows must "
                             f"divide evenly over its {local} devices, got {len(a)} rows here. "
                             f"Drop the last {len(a) % local} rows of every process's share "
                             f"(data.process_shard gives equal shares that do).")
        sharding = self.rows_sharding(a.ndim)
        return jax.make_array_from_process_local_data(sharding, a)


def per_device_bytes(tree: Any) -> int:
    """Bytes of ``tree``'s arrays stored on one device (the first addressable shard of
    each leaf): the memory a device spends on, e.g., the params and optimizer state.

    >>> import jax.numpy as jnp
    >>> per_device_bytes({"w": jnp.zeros((4, 4), jnp.float32)})
    64
    """
    return int(sum(leaf.addressable_shards[0].data.nbytes for leaf in jax.tree.leaves(tree)
                   if isinstance(leaf, jax.Array)))


def to_host(tree: Any) -> Any:
    """Every array of ``tree`` as a numpy array holding its global value, also when it
    is split over the devices of several processes (gathered from all of them)."""
    def fetch(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)

    return jax.tree.map(fetch, tree)


def describe_mesh(mesh: Optional[Mesh]) -> str:
    """One line: the mesh's axes and sizes, and its devices' platform.

    >>> describe_mesh(None)
    'one device'
    """
    if mesh is None:
        return "one device"
    axes = ", ".join(f"{name}: {size}" for name, size in mesh.shape.items())
    platform = mesh.devices.flat[0].platform
    count = mesh.devices.size
    return f"{axes} ({count} {platform} device{'s' if count > 1 else ''})"
