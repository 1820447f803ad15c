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

Reading checks before it trusts: only regular files are opened (a FIFO, a
device or a directory is refused without reading); the magic, the format
version (a newer file says so) and the declared lengths are checked against
the file's size before the payload is read; the SHA-256 is computed in chunks;
the JSON header is validated field by field. Every failure is a
:class:`CheckpointError` naming the file and the field.

Loading executes no code from the file: no pickle, marshal or eval. Arrays are
rebuilt by msgpack from raw bytes, only for an allow-list of numeric dtypes in
little-endian order (object dtypes are refused on save and on load), and come
back as writable arrays.

Writes are atomic: the file is written to a temporary name in the same
directory (``.<name>.<host>-<pid>-<random>.jaxdl-tmp``), flushed and fsynced,
renamed over the final name with ``os.replace``, and the directory is fsynced.
A reader, or a process killed mid-save, sees either the old file or the new
one, never half of one. Each save removes the temporaries that killed saves
left in its directory (those of processes that no longer exist, or older than
an hour); it never touches another live process's temporary.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import struct
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks

try:  # directory locks for retention decisions; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MAGIC = b"JAXDLCKP"
FORMAT_VERSION = 1
STALE_TEMPORARY_SECONDS = 3600.0
_DIGEST = 32
_PREFIX = len(MAGIC) + 4 + 8
_CHUNK = 1 << 20
_MAX_PATH_DEPTH = 256
_MAX_NDIM = 64
_ALLOWED_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bfloat16", "complex64", "complex128",
}
_STEP_FILE = re.compile(r"step_([0-9]{1,100})\.ckpt", re.ASCII)
_DIVERGED_FILE = re.compile(r"step_([0-9]{1,100})\.diverged\.ckpt", re.ASCII)
_TEMP_FILE = re.compile(r"\..+\.([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]{8}\.jaxdl-tmp",
                        re.ASCII | re.DOTALL)
_LEGACY_TEMP_FILE = re.compile(r"\..+\.ckpt\.[A-Za-z0-9_]{8}\.tmp", re.ASCII | re.DOTALL)
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_LOCK_FILE = ".jaxdl-checkpoint.lock"


class CheckpointError(Exception):
    """A checkpoint file is corrupt, truncated, of a foreign format, or unsafe to load."""


def require(ok: bool, path: str, field: str, expected: str, got: Any) -> None:
    """Raise :class:`CheckpointError` naming ``field`` of ``path`` unless ``ok``.

    The one schema check behind every header and metadata validation.

    Args:
        ok: the result of the check.
        path: the checkpoint file (for the message).
        field: the dotted field name, e.g. ``"metadata.epoch"``.
        expected: what the field must be, in words.
        got: the value found.

    Raises:
        CheckpointError: when ``ok`` is false.
    """
    if not ok:
        shown = repr(got)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise CheckpointError(f"checkpoint: {path!r}: field '{field}' must be {expected}, got "
                              f"{shown} ({type(got).__name__}). The file was not written by "
                              f"this version of jaxdl or was altered; use another checkpoint.")


def _int_at_least(value: Any, low: int = 0) -> bool:
    """Whether ``value`` is an integer (not a bool) ``>= low``."""
    return _checks.is_int(value) and value >= low


def step_of(name: str) -> Optional[int]:
    """The step of a checkpoint file name ``step_<digits>.ckpt``, else ``None``.

    The one parser of step names: ASCII digits only (``step_007.ckpt`` is
    step 7; Unicode digits are not digits here).
    """
    m = _STEP_FILE.fullmatch(name)
    return int(m.group(1)) if m else None


def step_files(directory: str | os.PathLike) -> dict[int, str]:
    """``{step: path}`` of the regular ``step_<N>.ckpt`` files in ``directory``.

    Directories, FIFOs and other non-files with such names are ignored. When
    two names give one step (``step_7.ckpt`` and ``step_007.ckpt``), the
    canonical ``step_7.ckpt`` wins. Listing and opening both use this map, so a
    listed step always opens the file it was listed from.
    """
    directory = os.fspath(directory)
    found: dict[int, str] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            step = step_of(entry.name)
            if step is None or not entry.is_file():
                continue
            if step not in found or entry.name == f"step_{step}.ckpt":
                found[step] = entry.path
    return found


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


def _entries_path(entries: list) -> str:
    """The ``"a/b/c"`` name of a leaf stored as ``[kind, key]`` entries in a header."""
    keys = {"d": jax.tree_util.DictKey, "s": jax.tree_util.SequenceKey,
            "a": jax.tree_util.GetAttrKey}
    return _tree_path([keys[kind](key) for kind, key in entries])


def _tree_path(keys: Any) -> str:
    """The ``"a/b/c"`` name of a tree path in messages (``"<root>"`` for a bare leaf)."""
    return _checks.path_str(keys) or "<root>"


def _leaf_array(path: str, leaf: Any) -> np.ndarray:
    if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:  # split over processes
        from jaxdl.train import sharding  # the train package imports this module
        leaf = sharding.to_host(leaf)
    arr = np.asarray(leaf)
    name = arr.dtype.name
    if name not in _ALLOWED_DTYPES:
        raise TypeError(f"checkpoint.save: leaf '{path}' has dtype {arr.dtype}, which cannot "
                        f"be stored safely; allowed dtypes: {sorted(_ALLOWED_DTYPES)}.")
    if not arr.dtype.isnative:  # the payload stores native (little-endian) bytes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _finite(arr: np.ndarray) -> bool:
    return not jnp.issubdtype(arr.dtype, jnp.inexact) or bool(np.isfinite(arr).all())


def all_finite(tree: Any, metrics: Optional[dict] = None) -> bool:
    """Whether every float leaf of ``tree`` and every value of ``metrics`` is finite.

    The test that marks a state as diverged: :class:`CheckpointManager` never
    lets such a state replace or prune the last finite checkpoint, and
    :func:`restore_latest` skips it.
    """
    leaves = [_leaf_array(_tree_path(keys), leaf)
              for keys, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return all(_finite(a) for a in leaves) and _metrics_finite(metrics)


def _metrics_finite(metrics: Any) -> bool:
    if not isinstance(metrics, dict):
        return True
    return all(not _checks.is_real(v) or np.isfinite(v) for v in metrics.values())


# ------------------------------------------------------------------------------ save

def _encode(tree: Any, metadata: Optional[dict]) -> tuple[bytes, bool]:
    """The file's bytes, and whether every float leaf is finite."""
    from flax import serialization

    import jaxdl

    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    leaves, arrays, finite = [], {}, True
    for i, (keys, leaf) in enumerate(flat):
        entries = [_key_entry(k) for k in keys]
        arr = _leaf_array(_entries_path(entries), leaf)
        finite = finite and _finite(arr)
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
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint.save: metadata must be a JSON-serializable dict of "
                        f"numbers, strings, lists and dicts: {e}. Convert other values "
                        f"(arrays: .tolist()) before saving.") from e
    body = b"".join([MAGIC, struct.pack("<I", FORMAT_VERSION),
                     struct.pack("<Q", len(header_bytes)), header_bytes,
                     struct.pack("<Q", len(payload)), payload])
    return body + hashlib.sha256(body).digest(), finite


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


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OverflowError, ValueError, OSError):  # not a valid pid
        return False
    return True


def remove_stale_temporaries(directory: str | os.PathLike,
                             max_age: float = STALE_TEMPORARY_SECONDS) -> list[str]:
    """Delete the temporaries that killed saves left in ``directory``.

    A temporary of this module's naming scheme is stale when the process that
    wrote it (same host, its pid in the name) no longer exists, or when it has
    not been modified for ``max_age`` seconds (temporaries of other hosts and
    of older jaxdl versions). Live writers' temporaries are never touched.

    Returns:
        The paths removed.
    """
    directory, removed, now = os.fspath(directory), [], time.time()
    with os.scandir(directory) as entries:
        for entry in entries:
            m = _TEMP_FILE.fullmatch(entry.name)
            if m is None and not _LEGACY_TEMP_FILE.fullmatch(entry.name):
                continue
            try:
                dead = (m is not None and m.group(1) == _HOST and int(m.group(2)) != os.getpid()
                        and not _pid_alive(int(m.group(2))))
                if dead or now - entry.stat(follow_symlinks=False).st_mtime > max_age:
                    os.unlink(entry.path)
                    removed.append(entry.path)
            except OSError:  # another process removed it first
                continue
    return removed


def _refuse_non_file(owner: str, path: str) -> None:
    if os.path.lexists(path) and not os.path.isfile(path):
        raise ValueError(f"{owner}: {path!r} exists and is not a regular file (a directory, "
                         f"FIFO or dangling link); nothing was written. Remove or rename it, or "
                         f"save to another path.")


def _write_error(path: str, e: OSError) -> OSError:
    hint = (" The disk is full: free space or save elsewhere." if e.errno == errno.ENOSPC
            else "")
    return OSError(e.errno, f"checkpoint.save: could not write {path!r}: "
                            f"{e.strerror or e}; the previous file at that path, if any, is "
                            f"unchanged.{hint}", path)


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        remove_stale_temporaries(directory)
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{_HOST}-{os.getpid()}-"
                                      f"{secrets.token_hex(4)}.jaxdl-tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o644)
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # a checkpoint is a normal file, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise _write_error(path, e) from e
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

    Raises:
        TypeError: a leaf has an unsafe dtype or ``metadata`` is not JSON.
        ValueError: ``path`` is a directory or another non-file.
        OSError: the write failed (disk full, no permission); the message names
            the file, and the previous file at ``path`` is unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import checkpoint
        >>> path = checkpoint.save("/tmp/w.ckpt", {"w": jnp.ones(3)}, metadata={"epoch": 2})
        >>> checkpoint.read_metadata(path)
        {'epoch': 2}
    """
    path = os.fspath(path)
    _refuse_non_file("checkpoint.save", path)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"checkpoint.save: metadata must be a dict or None, got "
                        f"{type(metadata).__name__}. Wrap it: metadata={{'value': ...}}.")
    _atomic_write(path, _encode(tree, metadata)[0])
    return path


# ------------------------------------------------------------------------------ restore

def _open_regular(path: str) -> tuple[int, int]:
    """An open fd of ``path`` and its size, after refusing anything but a regular file."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                    "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                    "not a regular file")
            raise CheckpointError(f"checkpoint: {path!r} is {kind}; a checkpoint is a regular "
                                  f"file written by checkpoint.save. Pass that file's path.")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, CheckpointError):
        raise
    except OSError as e:
        raise CheckpointError(f"checkpoint: cannot open {path!r}: {e}") from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
        os.close(fd)
        raise CheckpointError(f"checkpoint: {path!r} is not a regular file.")
    return fd, st.st_size


def _read_exact(path: str, f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CheckpointError(f"checkpoint: {path!r} is truncated: it ended while reading "
                              f"(the file changed or shrank during the read).")
    return data


def _layout(path: str, f, size: int) -> tuple[int, int]:
    """Check magic, version and declared lengths against ``size``; (header, payload) lengths."""
    head = f.read(_PREFIX)
    if head[:len(MAGIC)] != MAGIC:
        raise CheckpointError(f"checkpoint: {path!r} is not a jaxdl checkpoint (bad magic "
                              f"bytes).")
    if len(head) < _PREFIX:
        raise CheckpointError(f"checkpoint: {path!r} is truncated ({size} bytes).")
    (version,) = struct.unpack_from("<I", head, len(MAGIC))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint: {path!r} was written by a newer format version "
                              f"{version}; this jaxdl reads version {FORMAT_VERSION}. Upgrade "
                              f"jaxdl to load it.")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint: {path!r} has format version {version}; this jaxdl "
                              f"reads version {FORMAT_VERSION}.")
    (h_len,) = struct.unpack_from("<Q", head, len(MAGIC) + 4)
    if _PREFIX + h_len + 8 + _DIGEST > size:
        raise CheckpointError(f"checkpoint: {path!r} is truncated or corrupt: it declares a "
                              f"{h_len}-byte header but the file has {size} bytes.")
    f.seek(_PREFIX + h_len)
    (p_len,) = struct.unpack("<Q", _read_exact(path, f, 8))
    if _PREFIX + h_len + 8 + p_len + _DIGEST != size:
        raise CheckpointError(f"checkpoint: {path!r} is truncated or corrupt: it declares a "
                              f"{p_len}-byte payload, which does not fit its {size} bytes.")
    return h_len, p_len


def _read_verified(path: str, with_payload: bool = True) -> tuple[dict, Optional[bytearray]]:
    """(header, payload) after checking the layout and the SHA-256 streamed in chunks."""
    fd, size = _open_regular(path)
    try:
        with os.fdopen(fd, "rb") as f:
            h_len, p_len = _layout(path, f, size)
            f.seek(0)
            front = _read_exact(path, f, _PREFIX + h_len + 8)
            digest, payload_digest = hashlib.sha256(front), hashlib.sha256()
            payload = bytearray(p_len) if with_payload else None
            for start in range(0, p_len, _CHUNK):
                chunk = _read_exact(path, f, min(_CHUNK, p_len - start))
                digest.update(chunk)
                payload_digest.update(chunk)
                if payload is not None:
                    payload[start:start + len(chunk)] = chunk
            stored = _read_exact(path, f, _DIGEST)
    except OSError as e:
        raise CheckpointError(f"checkpoint: cannot read {path!r}: {e}") from e
    if digest.digest() != stored:
        raise CheckpointError(f"checkpoint: {path!r} is corrupt or truncated: its SHA-256 "
                              f"checksum does not match its contents.")
    header = _parse_header(path, front[_PREFIX:_PREFIX + h_len])
    if payload_digest.hexdigest() != header["payload_sha256"]:
        raise CheckpointError(f"checkpoint: {path!r}: payload checksum mismatch.")
    return header, payload


def _parse_header(path: str, raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"checkpoint: {path!r} has an unreadable header: "
                              f"{type(e).__name__}: {str(e)[:200]}") from e
    _check_header(path, header)
    return header


def _check_header(path: str, header: Any) -> None:
    """Validate the JSON header against the format's schema."""
    require(isinstance(header, dict), path, "header", "a JSON object", header)
    require(header.get("format") == "jaxdl-checkpoint", path, "header.format",
            "'jaxdl-checkpoint'", header.get("format"))
    require(header.get("format_version") == FORMAT_VERSION
            and _int_at_least(header.get("format_version")), path, "header.format_version",
            f"{FORMAT_VERSION}, as in the file's binary prefix", header.get("format_version"))
    sha = header.get("payload_sha256")
    require(isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha, re.ASCII) is not None,
            path, "header.payload_sha256", "64 lowercase hex digits", sha)
    leaves = header.get("leaves")
    require(isinstance(leaves, list), path, "header.leaves", "a list", leaves)
    for i, leaf in enumerate(leaves):
        _check_leaf(path, f"header.leaves[{i}]", leaf)
    meta = header.get("metadata")
    require(isinstance(meta, dict), path, "header.metadata", "a JSON object", meta)
    if "step" in meta:
        require(_int_at_least(meta["step"]), path, "metadata.step", "an int >= 0", meta["step"])
    metrics = meta.get("metrics", {})
    require(isinstance(metrics, dict) and all(_checks.is_real(v) for v in metrics.values()),
            path, "metadata.metrics", "a JSON object of numbers", metrics)


def _check_leaf(path: str, where: str, leaf: Any) -> None:
    require(isinstance(leaf, dict), path, where, "a JSON object", leaf)
    entries = leaf.get("path")
    require(isinstance(entries, list) and len(entries) <= _MAX_PATH_DEPTH, path,
            f"{where}.path", f"a list of at most {_MAX_PATH_DEPTH} [kind, key] pairs",
            entries if not isinstance(entries, list) else f"a list of {len(entries)} entries")
    for j, entry in enumerate(entries):
        ok = (isinstance(entry, list) and len(entry) == 2 and
              ((entry[0] == "s" and _int_at_least(entry[1])) or (entry[0] == "a" and
               isinstance(entry[1], str)) or (entry[0] == "d" and
               (isinstance(entry[1], str) or _int_at_least(entry[1], -(1 << 63))))))
        require(ok, path, f"{where}.path[{j}]",
                "['d', str or int], ['s', int >= 0] or ['a', str]", entry)
    require(leaf.get("dtype") in _ALLOWED_DTYPES, path, f"{where}.dtype",
            "a numeric dtype name (object and other dtypes are refused)", leaf.get("dtype"))
    shape = leaf.get("shape")
    require(isinstance(shape, list) and len(shape) <= _MAX_NDIM
            and all(_int_at_least(d) for d in shape), path, f"{where}.shape",
            f"a list of at most {_MAX_NDIM} ints >= 0", shape)


def _decode_arrays(path: str, header: dict, payload: bytearray) -> list[np.ndarray]:
    from flax import serialization

    leaves = header["leaves"]
    try:
        restored = serialization.msgpack_restore(bytes(payload))
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
            raise CheckpointError(f"checkpoint: {path!r}: leaf '{_entries_path(leaf['path'])}' "
                                  f"is {got} in the payload but {leaf['dtype']}{leaf['shape']} "
                                  f"in the header.")
        if not arr.dtype.isnative:
            raise CheckpointError(f"checkpoint: {path!r}: leaf '{_entries_path(leaf['path'])}' "
                                  f"is stored {arr.dtype.str} (big-endian); checkpoints hold "
                                  f"little-endian arrays only.")
        arrays.append(np.array(arr, copy=True))  # writable, and not a view of the payload
    return arrays


def _nest(path: str, leaves_meta: list, arrays: list) -> Any:
    """Rebuild nested dicts (and lists for sequence keys) from leaf paths."""
    if len(leaves_meta) == 1 and not leaves_meta[0]["path"]:
        return arrays[0]
    root: Any = {}
    for meta, arr in zip(leaves_meta, arrays, strict=True):
        node, entries = root, meta["path"]
        for depth, (_, key) in enumerate(entries):
            last = depth == len(entries) - 1
            if not isinstance(node, dict) or (last and key in node):
                raise CheckpointError(f"checkpoint: {path!r}: leaf path "
                                      f"'{_entries_path(entries)}' collides with another leaf.")
            node = node.setdefault(key, arr if last else {})
        if not entries:
            raise CheckpointError(f"checkpoint: {path!r}: a root leaf sits among others.")
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
    want = [_tree_path(keys) for keys, _ in flat]
    have = [_entries_path(m["path"]) for m in leaves_meta]
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
    for p, (_, ref), arr in zip(want, flat, arrays, strict=True):
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


def _load(path: str) -> tuple[dict, list[np.ndarray]]:
    header, payload = _read_verified(path)
    return header, _decode_arrays(path, header, payload)


def _build(path: str, header: dict, arrays: list, target: Any) -> Any:
    if target is None:
        return _nest(path, header["leaves"], arrays)
    return _into_target(path, header["leaves"], arrays, target)


def restore(path: str | os.PathLike, target: Any = None) -> Any:
    """Load a tree saved by :func:`save`.

    Args:
        path: the checkpoint file.
        target: optional tree with the expected structure (arrays or
            ``jax.ShapeDtypeStruct`` leaves). With it, every leaf's path, shape
            and dtype are checked and the result has the target's structure
            (NamedTuples included) with JAX arrays where the target has JAX
            arrays or shape structs, numpy where it has numpy; without it, nested
            dicts of (writable) numpy arrays (lists for sequences) come back.

    Raises:
        CheckpointError: the file is corrupt, truncated, foreign, not a regular
            file, or unsafe; the message names the file and the field.
        ValueError: the file does not match ``target``; the message names the
            leaf and both shapes or dtypes.
        FileNotFoundError: there is no such file.
    """
    path = os.fspath(path)
    header, arrays = _load(path)
    return _build(path, header, arrays, target)


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` dict saved with a checkpoint (the file is verified, arrays not decoded)."""
    header, _ = _read_verified(os.fspath(path), with_payload=False)
    return header["metadata"]


def restore_latest(directory: str | os.PathLike, target: Any = None,
                   target_for: Optional[Callable[[dict], Any]] = None
                   ) -> tuple[int, Any, dict]:
    """The newest loadable, finite step of a checkpoint directory.

    Steps are tried newest first. A file that is corrupt or unsafe
    (:class:`CheckpointError`, also when ``target_for`` raises it), or that
    holds a non-finite array or metric (a diverged state), is skipped with a
    warning naming the file and why; the first good one is returned.

    Args:
        directory: a directory of ``step_<N>.ckpt`` files.
        target: as in :func:`restore`.
        target_for: instead of ``target``, a function of the file's metadata
            returning the target (it may raise ``CheckpointError`` to reject
            the file).

    Returns:
        ``(step, tree, metadata)``.

    Raises:
        FileNotFoundError: the directory holds no step file.
        CheckpointError: every step file was skipped.
        ValueError: the newest good file does not match the target.
    """
    directory = os.fspath(directory)
    files = step_files(directory)
    if not files:
        raise FileNotFoundError(f"checkpoint: no checkpoint (step_<N>.ckpt) in {directory!r}.")
    skipped = []
    for step in sorted(files, reverse=True):
        path = files[step]
        try:
            header, arrays = _load(path)
            meta = header["metadata"]
            if not (all(_finite(a) for a in arrays) and _metrics_finite(meta.get("metrics"))):
                raise CheckpointError("it holds non-finite values (a diverged state)")
            tree_target = target_for(meta) if target_for is not None else target
        except CheckpointError as e:
            warnings.warn(f"checkpoint: skipping {path!r}: {e}; trying an older step.",
                          stacklevel=2)
            skipped.append(os.path.basename(path))
            continue
        return step, _build(path, header, arrays, tree_target), meta
    raise CheckpointError(f"checkpoint: no loadable, finite checkpoint in {directory!r}; "
                          f"skipped {skipped}. See the warnings for each file's fault.")


def _unverified_metadata(path: str) -> dict:
    """Metadata read without the checksum (for bookkeeping such as pruning); {} if unreadable."""
    try:
        if not os.path.isfile(path):
            return {}
        with open(path, "rb") as f:
            head = f.read(_PREFIX)
            if head[:len(MAGIC)] != MAGIC or len(head) < _PREFIX:
                return {}
            (h_len,) = struct.unpack_from("<Q", head, len(MAGIC) + 4)
            if h_len > min(1 << 30, os.fstat(f.fileno()).st_size):
                return {}
            meta = json.loads(f.read(h_len).decode("utf-8")).get("metadata", {})
            return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError, RecursionError, AttributeError, struct.error):
        return {}


# ------------------------------------------------------------------------------ manager

def _check_step(owner: str, step: Any) -> int:
    if not _checks.is_int(step):
        raise TypeError(f"{owner}: step must be an int, got {type(step).__name__} {step!r}. "
                        f"Pass a whole number such as the epoch or step count.")
    if not 0 <= int(step) < 10 ** 100:
        raise ValueError(f"{owner}: step must be an int in [0, 10**100), got {int(step)}. "
                         f"Count steps from 0.")
    return int(step)


def _check_metrics(owner: str, metrics: Any) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"{owner}: metrics must be a dict of name -> number, got "
                        f"{type(metrics).__name__}.")
    out = {}
    for name, value in metrics.items():
        arr = np.asarray(value) if not isinstance(value, (str, bytes, bool)) else None
        if not isinstance(name, str) or arr is None or arr.ndim or arr.dtype.kind not in "iuf":
            raise TypeError(f"{owner}: metrics must map names to numbers; {name!r} is "
                            f"{value!r} ({type(value).__name__}). Pass float values.")
        out[name] = float(arr)
    return out


class CheckpointManager:
    """Numbered checkpoints in one directory, with retention.

    Each ``save(step, tree, metrics)`` writes ``step_<step>.ckpt`` atomically;
    only complete files carry that name, so ``latest_step`` and ``all_steps``
    never see a half-written save. Temporaries of killed saves are removed by
    later saves (never those of a live process, so several managers, threads
    or processes may share a directory). Old steps beyond ``max_to_keep`` are
    deleted only after the new file is complete, under a directory lock. With
    ``best_metric`` the step with the best value of that metric is kept too,
    even when it is older than the ``max_to_keep`` newest.

    A state with a non-finite array or metric (a diverged run) never replaces
    or prunes a finite checkpoint: it is saved as ``step_<N>.diverged.ckpt``
    (for inspection) with a warning, and ``all_steps``, ``latest_step`` and
    ``restore`` skip it. ``restore()`` returns the newest loadable finite step,
    skipping a corrupt newest file with a warning.

    Args:
        directory: where the files live (created if needed).
        max_to_keep: how many of the newest steps to keep (``None``: all); the
            same number of diverged files is kept apart from them.
        best_metric: name of a metric passed to ``save`` whose best step is
            always kept; ``best_mode`` says whether lower ("min") or higher
            ("max") is better.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: Optional[int] = None,
                 best_metric: Optional[str] = None, best_mode: str = "min"):
        if max_to_keep is not None and not _int_at_least(max_to_keep, 1):
            raise ValueError(f"CheckpointManager: max_to_keep must be None or an int >= 1, got "
                             f"{max_to_keep!r}.")
        if best_mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: best_mode must be 'min' or 'max', got "
                             f"{best_mode!r}.")
        self.directory = os.fspath(directory)
        self.max_to_keep, self.best_metric, self.best_mode = max_to_keep, best_metric, best_mode
        os.makedirs(self.directory, exist_ok=True)

    def path(self, step: int) -> str:
        """The file of ``step``: the listed one if it exists, else ``step_<step>.ckpt``."""
        canonical = os.path.join(self.directory, f"step_{int(step)}.ckpt")
        return step_files(self.directory).get(int(step), canonical)

    def all_steps(self) -> list[int]:
        """The steps with a complete, non-diverged checkpoint, ascending."""
        return sorted(step_files(self.directory))

    def latest_step(self) -> Optional[int]:
        """The newest complete step, or ``None`` when there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def diverged_steps(self) -> list[int]:
        """The steps saved as ``step_<N>.diverged.ckpt`` (non-finite states), ascending."""
        return sorted(self._diverged_files())

    def _diverged_files(self) -> dict[int, str]:
        found = {}
        with os.scandir(self.directory) as entries:
            for entry in entries:
                m = _DIVERGED_FILE.fullmatch(entry.name)
                if m and entry.is_file():
                    found[int(m.group(1))] = entry.path
        return found

    def best_step(self) -> Optional[int]:
        """The step with the best ``best_metric`` (``None`` without one)."""
        if self.best_metric is None:
            return None
        scored = []
        for s, path in step_files(self.directory).items():
            value = _unverified_metadata(path).get("metrics", {}).get(self.best_metric)
            if _checks.is_real(value) and np.isfinite(value):
                scored.append((value if self.best_mode == "min" else -value, s))
        return min(scored)[1] if scored else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the directory (threads and processes), for retention."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(os.path.join(self.directory, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self, step: int, tree: Any, metrics: Optional[dict] = None,
             metadata: Optional[dict] = None, description: Optional[str] = None) -> str:
        """Write ``tree`` as step ``step``, then prune old steps. Returns the path.

        Args:
            step: a non-bool int >= 0.
            tree: the pytree to save.
            metrics: ``{name: number}`` stored in the metadata (``best_metric``).
            metadata: more JSON-serializable metadata.
            description: how warnings name this save (default
                ``"CheckpointManager: step N"``).

        Raises:
            TypeError: ``step`` is not an int (bools and floats included) or a
                metric is not a number.
            ValueError: ``step`` is negative, or its file name is taken by a
                directory or another non-file (checked before writing).
        """
        step = _check_step("CheckpointManager.save", step)
        metrics = _check_metrics("CheckpointManager.save", metrics)
        path = os.path.join(self.directory, f"step_{step}.ckpt")
        _refuse_non_file("CheckpointManager.save", path)
        meta = dict(metadata or {})
        meta["step"] = step
        if metrics:
            meta["metrics"] = metrics
        blob, finite = _encode(tree, meta)
        if not (finite and _metrics_finite(metrics)):
            path = os.path.join(self.directory, f"step_{step}.diverged.ckpt")
            _refuse_non_file("CheckpointManager.save", path)
            warnings.warn(f"{description or f'CheckpointManager: step {step}'} holds non-finite "
                          f"values (loss, metrics or arrays): saved as {path!r}, which "
                          f"latest_step and restore skip; the last finite checkpoint "
                          f"(step {self.latest_step()}) is kept.", stacklevel=2)
        _atomic_write(path, blob)
        with self._locked():
            self._prune()
        return path

    def _prune(self) -> None:
        if self.max_to_keep is None:
            return
        files = step_files(self.directory)
        steps = sorted(files)
        keep = set(steps[-self.max_to_keep:])
        best = self.best_step()
        if best is not None:
            keep.add(best)
        diverged = self._diverged_files()
        doomed = [files[s] for s in steps if s not in keep]
        doomed += [diverged[s] for s in sorted(diverged)[:-self.max_to_keep]]
        for path in doomed:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def restore(self, step: Optional[int] = None, target: Any = None) -> Any:
        """Load step ``step``; by default the newest loadable finite one.

        Without ``step``, see :func:`restore_latest` (corrupt or diverged
        newer files are skipped with a warning). See :func:`restore` for
        ``target``.
        """
        if step is None:
            return restore_latest(self.directory, target)[1]
        return restore(self.path(_check_step("CheckpointManager.restore", step)), target)

    def metadata(self, step: Optional[int] = None) -> dict:
        """The metadata of step ``step`` (default: the latest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"CheckpointManager: no checkpoint in {self.directory!r}.")
        return read_metadata(self.path(step))
