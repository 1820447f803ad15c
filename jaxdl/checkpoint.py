"""Checkpoints: atomic, code-free, checksummed files of array trees.

File layout (all integers little-endian)::

    b"JAXDLCKP"                    8-byte magic
    format version                 uint32
    header length H                uint64
    header                         H bytes of UTF-8 JSON
    payload length P               uint64
    payload                        P bytes: msgpack (flax.serialization) of {leaf index: array}
    SHA-256                        32 bytes over everything above

The JSON header records the format version, the jaxdl and JAX versions, the
tree's leaf paths (``params/dense_0/kernel``) with their dtypes and shapes, the
SHA-256 of the payload, and the caller's ``metadata``. The final digest covers
every byte before it, so a flipped bit or a truncation anywhere is detected
before anything is parsed.

Loading executes no code from the file: no pickle, marshal or eval. Arrays are
rebuilt by msgpack from raw bytes, only for an allow-list of numeric dtypes
(object dtypes are refused on save and on load).

Writes are atomic: the file is written to a temporary name in the same
directory, flushed and fsynced, renamed over the final name with
``os.replace``, and the directory is fsynced. A reader, or a process killed
mid-save, sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from typing import Any, Optional

import jax
import numpy as np

MAGIC = b"JAXDLCKP"
FORMAT_VERSION = 1
_DIGEST = 32
_ALLOWED_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bfloat16", "complex64", "complex128",
}


class CheckpointError(Exception):
    """A checkpoint file is corrupt, truncated, of a foreign format, or unsafe to load."""


# ------------------------------------------------------------------------------ tree paths

def _key_entry(key) -> list:
    if isinstance(key, jax.tree_util.DictKey):
        return ["d", key.key if isinstance(key.key, (str, int)) else str(key.key)]
    if isinstance(key, jax.tree_util.SequenceKey):
        return ["s", key.idx]
    if isinstance(key, jax.tree_util.GetAttrKey):
        return ["a", key.name]
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return ["s", key.key]
    return ["d", str(key)]


def _path_string(entries: list) -> str:
    return "/".join(str(k) for _, k in entries) or "<root>"


def _leaf_array(path: str, leaf: Any) -> np.ndarray:
    if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    arr = np.asarray(leaf)
    name = arr.dtype.name
    if name not in _ALLOWED_DTYPES:
        raise TypeError(f"checkpoint.save: leaf '{path}' has dtype {arr.dtype}, which cannot "
                        f"be stored safely; allowed dtypes: {sorted(_ALLOWED_DTYPES)}.")
    return arr


# ------------------------------------------------------------------------------ save

def _encode(tree: Any, metadata: Optional[dict]) -> bytes:
    from flax import serialization

    import jaxdl

    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    leaves, arrays = [], {}
    for i, (keys, leaf) in enumerate(flat):
        entries = [_key_entry(k) for k in keys]
        arr = _leaf_array(_path_string(entries), leaf)
        arrays[str(i)] = arr
        leaves.append({"path": entries, "dtype": arr.dtype.name, "shape": list(arr.shape)})
    payload = serialization.msgpack_serialize(arrays)
    header = {
        "format": "jaxdl-checkpoint", "format_version": FORMAT_VERSION,
        "jaxdl_version": jaxdl.__version__, "jax_version": jax.__version__,
        "leaves": leaves, "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "metadata": metadata or {},
    }
    try:
        header_bytes = json.dumps(header, sort_keys=True, allow_nan=True).encode("utf-8")
    except TypeError as e:
        raise TypeError(f"checkpoint.save: metadata must be JSON-serializable: {e}") from e
    body = b"".join([MAGIC, struct.pack("<I", FORMAT_VERSION),
                     struct.pack("<Q", len(header_bytes)), header_bytes,
                     struct.pack("<Q", len(payload)), payload])
    return body + hashlib.sha256(body).digest()


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; a checkpoint is a normal file
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def save(path: str | os.PathLike, tree: Any, metadata: Optional[dict] = None) -> str:
    """Write ``tree`` (a pytree of arrays and scalars) to ``path`` atomically.

    Args:
        path: the file to write; its directory is created if needed.
        tree: nested dicts, lists, tuples and NamedTuples of arrays (JAX or
            numpy, any allowed dtype: bool, ints, floats incl. bfloat16, complex).
        metadata: a JSON-serializable dict stored in the header
            (:func:`read_metadata` returns it without loading the arrays).

    Returns:
        The path written.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import checkpoint
        >>> checkpoint.save("/tmp/w.ckpt", {"w": jnp.ones(3)}, metadata={"epoch": 2})  # doctest: +SKIP
    """
    path = os.fspath(path)
    _atomic_write(path, _encode(tree, metadata))
    return path


# ------------------------------------------------------------------------------ restore

def _read_verified(path: str) -> tuple[dict, bytes]:
    """Return (header, payload) after checking magic, lengths and the SHA-256 digest."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise CheckpointError(f"checkpoint: cannot read {path!r}: {e}") from e
    if len(blob) < len(MAGIC) or blob[:len(MAGIC)] != MAGIC:
        raise CheckpointError(f"checkpoint: {path!r} is not a jaxdl checkpoint (bad magic bytes).")
    if len(blob) < len(MAGIC) + 4 + 8 + 8 + _DIGEST:
        raise CheckpointError(f"checkpoint: {path!r} is truncated ({len(blob)} bytes).")
    body, digest = blob[:-_DIGEST], blob[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"checkpoint: {path!r} is corrupt or truncated: its SHA-256 "
                              f"checksum does not match its contents.")
    (version,) = struct.unpack_from("<I", body, len(MAGIC))
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint: {path!r} has format version {version}; this jaxdl "
                              f"reads version {FORMAT_VERSION}.")
    pos = len(MAGIC) + 4
    (h_len,) = struct.unpack_from("<Q", body, pos)
    pos += 8
    if pos + h_len + 8 > len(body):
        raise CheckpointError(f"checkpoint: {path!r} has an inconsistent header length.")
    try:
        header = json.loads(body[pos:pos + h_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint: {path!r} has an unreadable header: {e}") from e
    pos += h_len
    (p_len,) = struct.unpack_from("<Q", body, pos)
    pos += 8
    payload = body[pos:]
    if len(payload) != p_len:
        raise CheckpointError(f"checkpoint: {path!r} has an inconsistent payload length.")
    if not isinstance(header, dict) or header.get("format") != "jaxdl-checkpoint":
        raise CheckpointError(f"checkpoint: {path!r} has a foreign header.")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise CheckpointError(f"checkpoint: {path!r}: payload checksum mismatch.")
    return header, payload


def _decode_arrays(path: str, header: dict, payload: bytes) -> list[np.ndarray]:
    from flax import serialization

    leaves = header.get("leaves")
    if not isinstance(leaves, list):
        raise CheckpointError(f"checkpoint: {path!r}: header has no leaf list.")
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, dict) or leaf.get("dtype") not in _ALLOWED_DTYPES:
            raise CheckpointError(f"checkpoint: {path!r}: leaf {i} declares dtype "
                                  f"{leaf.get('dtype') if isinstance(leaf, dict) else leaf!r}, "
                                  f"which is refused (only numeric dtypes load).")
    try:
        restored = serialization.msgpack_restore(payload)
    except Exception as e:  # any decoding failure is a bad file, never a crash
        raise CheckpointError(f"checkpoint: {path!r}: the payload cannot be decoded safely: "
                              f"{type(e).__name__}: {e}") from e
    if not isinstance(restored, dict) or len(restored) != len(leaves):
        raise CheckpointError(f"checkpoint: {path!r}: payload does not match its header.")
    arrays = []
    for i, leaf in enumerate(leaves):
        arr = restored.get(str(i))
        if not isinstance(arr, np.ndarray) or arr.dtype.name != leaf["dtype"] \
                or list(arr.shape) != list(leaf["shape"]):
            got = (f"{arr.dtype.name}{list(arr.shape)}" if isinstance(arr, np.ndarray)
                   else type(arr).__name__)
            raise CheckpointError(f"checkpoint: {path!r}: leaf "
                                  f"'{_path_string(leaf.get('path', []))}' is {got} in the "
                                  f"payload but {leaf['dtype']}{leaf['shape']} in the header.")
        arrays.append(arr)
    return arrays


def _nest(leaves_meta: list, arrays: list) -> Any:
    """Rebuild nested dicts (and lists for sequence keys) from leaf paths."""
    if len(leaves_meta) == 1 and not leaves_meta[0]["path"]:
        return arrays[0]
    root: Any = {}
    for meta, arr in zip(leaves_meta, arrays):
        node = root
        entries = meta["path"]
        for depth, (_, key) in enumerate(entries):
            last = depth == len(entries) - 1
            if last:
                node[key] = arr
            else:
                node = node.setdefault(key, {})
    return _lists_from_int_dicts(root)


def _lists_from_int_dicts(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists_from_int_dicts(v) for k, v in node.items()}
        if node and all(isinstance(k, int) for k in node) and \
                sorted(node) == list(range(len(node))):
            return [node[i] for i in range(len(node))]
    return node


def _into_target(path: str, leaves_meta: list, arrays: list, target: Any) -> Any:
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    want = [_path_string([_key_entry(k) for k in keys]) for keys, _ in flat]
    have = [_path_string(m["path"]) for m in leaves_meta]
    if want != have:
        missing = [p for p in want if p not in have]
        extra = [p for p in have if p not in want]
        parts = []
        if missing:
            parts.append(f"leaves the target has but the file lacks: {missing[:5]}")
        if extra:
            parts.append(f"leaves in the file but not in the target: {extra[:5]}")
        raise ValueError(f"checkpoint.restore: the tree in {path!r} does not match the target: "
                         + ("; ".join(parts) or "the leaves are in another order") + ".")
    out = []
    for p, (keys, ref), arr in zip(want, flat, arrays):
        ref_shape = tuple(np.shape(ref)) if not hasattr(ref, "shape") else tuple(ref.shape)
        ref_dtype = getattr(ref, "dtype", None)
        if hasattr(ref_dtype, "name") and jax.dtypes.issubdtype(ref_dtype, jax.dtypes.prng_key):
            out.append(jax.random.wrap_key_data(arr))
            continue
        if ref_shape != arr.shape:
            raise ValueError(f"checkpoint.restore: leaf '{p}' has shape {arr.shape} in "
                             f"{path!r} but shape {ref_shape} in the target. Was the checkpoint "
                             f"made by another model?")
        if ref_dtype is not None and np.dtype(ref_dtype) != arr.dtype:
            raise ValueError(f"checkpoint.restore: leaf '{p}' has dtype {arr.dtype} in "
                             f"{path!r} but {np.dtype(ref_dtype)} in the target.")
        if isinstance(ref, (bool, int, float)) and not hasattr(ref, "dtype"):
            out.append(type(ref)(arr.item()))
        elif isinstance(ref, np.ndarray):
            out.append(arr)
        elif isinstance(ref, np.generic):
            out.append(arr[()])
        else:
            out.append(jax.numpy.asarray(arr))
    return jax.tree_util.tree_unflatten(treedef, out)


def restore(path: str | os.PathLike, target: Any = None) -> Any:
    """Load a tree saved by :func:`save`.

    Args:
        path: the checkpoint file.
        target: optional tree with the expected structure (arrays or
            ``jax.ShapeDtypeStruct`` leaves). With it, every leaf's path, shape
            and dtype are checked and the result has the target's structure
            (NamedTuples included) with JAX arrays where the target has JAX
            arrays or shape structs, numpy where it has numpy; without it, nested dicts of
            numpy arrays (lists for sequences) come back.

    Raises:
        CheckpointError: the file is corrupt, truncated, foreign or unsafe.
        ValueError: the file does not match ``target``; the message names the
            leaf and both shapes or dtypes.
        FileNotFoundError: there is no such file.
    """
    path = os.fspath(path)
    header, payload = _read_verified(path)
    arrays = _decode_arrays(path, header, payload)
    if target is None:
        return _nest(header["leaves"], arrays)
    return _into_target(path, header["leaves"], arrays, target)


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` dict saved with a checkpoint (the file is verified, arrays not decoded)."""
    header, _ = _read_verified(os.fspath(path))
    return header.get("metadata", {})


def _unverified_metadata(path: str) -> dict:
    """Metadata read without the checksum (for bookkeeping such as pruning); {} if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 12)
            if head[:len(MAGIC)] != MAGIC:
                return {}
            (h_len,) = struct.unpack_from("<Q", head, len(MAGIC) + 4)
            if h_len > 1 << 30:
                return {}
            return json.loads(f.read(h_len).decode("utf-8")).get("metadata", {})
    except (OSError, ValueError, struct.error):
        return {}


# ------------------------------------------------------------------------------ manager

class CheckpointManager:
    """Numbered checkpoints in one directory, with retention.

    Each ``save(step, tree, metrics)`` writes ``step_<step>.ckpt`` atomically;
    only complete files carry that name, so ``latest_step`` and ``all_steps``
    never see a half-written save, and leftover temporary files from a killed
    process are ignored (and cleaned up by the next save). Old steps beyond
    ``max_to_keep`` are deleted only after the new file is complete. With
    ``best_metric`` the step with the best value of that metric is kept too,
    even when it is older than the ``max_to_keep`` newest.

    Args:
        directory: where the files live (created if needed).
        max_to_keep: how many of the newest steps to keep (``None``: all).
        best_metric: name of a metric passed to ``save`` whose best step is
            always kept; ``best_mode`` says whether lower ("min") or higher
            ("max") is better.
    """

    _NAME = re.compile(r"^step_(\d{1,12})\.ckpt$")

    def __init__(self, directory: str | os.PathLike, max_to_keep: Optional[int] = None,
                 best_metric: Optional[str] = None, best_mode: str = "min"):
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(f"CheckpointManager: max_to_keep must be None or an int >= 1, got "
                             f"{max_to_keep!r}.")
        if best_mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: best_mode must be 'min' or 'max', got "
                             f"{best_mode!r}.")
        self.directory = os.fspath(directory)
        self.max_to_keep, self.best_metric, self.best_mode = max_to_keep, best_metric, best_mode
        os.makedirs(self.directory, exist_ok=True)

    def path(self, step: int) -> str:
        """The file of ``step``."""
        return os.path.join(self.directory, f"step_{int(step)}.ckpt")

    def all_steps(self) -> list[int]:
        """The steps with a complete checkpoint, ascending."""
        steps = []
        for name in os.listdir(self.directory):
            m = self._NAME.match(name)
            if m:
                steps.append(int(m.group(1)))
        return sorted(steps)

    def latest_step(self) -> Optional[int]:
        """The newest complete step, or ``None`` when there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def best_step(self) -> Optional[int]:
        """The step with the best ``best_metric`` (``None`` without one)."""
        if self.best_metric is None:
            return None
        scored = []
        for s in self.all_steps():
            value = _unverified_metadata(self.path(s)).get("metrics", {}).get(self.best_metric)
            if isinstance(value, (int, float)) and np.isfinite(value):
                scored.append((value if self.best_mode == "min" else -value, s))
        return min(scored)[1] if scored else None

    def save(self, step: int, tree: Any, metrics: Optional[dict] = None,
             metadata: Optional[dict] = None) -> str:
        """Write ``tree`` as step ``step``, then prune old steps. Returns the path."""
        if not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"CheckpointManager.save: step must be an int >= 0, got {step!r}.")
        meta = dict(metadata or {})
        meta["step"] = int(step)
        if metrics:
            meta["metrics"] = {k: float(v) for k, v in metrics.items()}
        path = save(self.path(step), tree, metadata=meta)
        self._prune()
        return path

    def _prune(self) -> None:
        for name in os.listdir(self.directory):  # temporaries of killed saves
            if name.startswith(".step_") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass
        if self.max_to_keep is None:
            return
        steps = self.all_steps()
        keep = set(steps[-self.max_to_keep:])
        best = self.best_step()
        if best is not None:
            keep.add(best)
        for s in steps:
            if s not in keep:
                try:
                    os.unlink(self.path(s))
                except FileNotFoundError:
                    pass

    def restore(self, step: Optional[int] = None, target: Any = None) -> Any:
        """Load step ``step`` (default: the latest). See :func:`restore`."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"CheckpointManager: no checkpoint in "
                                        f"{self.directory!r}.")
        return restore(self.path(step), target)

    def metadata(self, step: Optional[int] = None) -> dict:
        """The metadata of step ``step`` (default: the latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"CheckpointManager: no checkpoint in {self.directory!r}.")
        return read_metadata(self.path(step))
