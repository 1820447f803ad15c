"""Compilation: one program per model creation, and compiled programs kept across runs.

Two costs come before the first training step, and this module owns both:

* **Creating a model.** Run op by op, ``model.init`` compiles every random draw
  and every ``zeros`` of a new shape as a program of its own (23 for a small
  CNN with Adam, 2 to 4 s on 2 CPU cores). :func:`call_compiled` runs a whole
  computation as one compiled program instead, and keeps it, keyed by what the
  computation does (its traced jaxpr, constants and argument types), so an
  equal model created again in the same process compiles nothing. The
  containers' ``init`` (``nn.Sequential``, ``nn.Model``) and
  :meth:`jaxdl.train.TrainState.create` go through it. The numbers are those of
  ``jax.jit(model.init)``: same key, same params (an op-by-op run can differ in
  the last bit where XLA fuses a multiply and an add, as in ``normal(stddev)``).

* **Starting the next run.** :func:`enable_cache` turns on JAX's persistent
  compilation cache, so a second run of the same script reads its compiled
  programs from disk instead of compiling them. It is on by default for the
  ``jaxdl`` command and opt-in for the library::

      import jaxdl.compilation
      jaxdl.compilation.enable_cache()        # ~/.cache/jaxdl/xla, or $JAXDL_COMPILATION_CACHE

  The cache is bounded (``max_size_bytes``, least recently used entries go
  first), which also makes JAX guard every read and write with a file lock:
  several processes may share one directory.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pathlib
import threading
from typing import Any, Callable, Optional

import jax
import numpy as np

from jaxdl import _xla

#: Environment variable: a directory for the persistent cache (``1``/``on``: the default
#: one), or ``0``/``off``/``false``/``no`` to keep the ``jaxdl`` command from turning it on.
CACHE_ENV = "JAXDL_COMPILATION_CACHE"
#: Default bound of the persistent cache on disk (2 GiB).
DEFAULT_MAX_SIZE_BYTES = 2 << 30
#: Programs :func:`call_compiled` keeps in memory (least recently used dropped first).
MAX_PROGRAMS = 64

# Errors by which tracing says a function needs concrete values (Python control flow on
# array values, numpy conversion): such a function runs op by op, as it did before.
_NEEDS_VALUES = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                 jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError)

_programs: collections.OrderedDict = collections.OrderedDict()
_programs_lock = threading.Lock()


# ------------------------------------------------------------------ one program per call

def call_compiled(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, run as one compiled program shared by equal computations.

    ``fn`` is traced (milliseconds); a program whose traced computation equals
    one already compiled in this process is reused, otherwise it is compiled
    once and kept (the :data:`MAX_PROGRAMS` most recent). Inside a trace
    (``jit``, ``vmap``, ``grad``, ``eval_shape``) it is simply ``fn(*args)``,
    part of the enclosing program; a function that needs concrete values runs
    op by op. The result is ``jax.jit(fn)(*args)``'s.

    Example:
        >>> import jax
        >>> from jaxdl import compilation, nn
        >>> model = nn.Sequential([nn.Dense(3)])
        >>> params, _ = compilation.call_compiled(lambda k: model.init(k, (4,)), jax.random.key(0))
        >>> params["dense_0"]["kernel"].shape
        (4, 3)
    """
    leaves = jax.tree.leaves(args)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return fn(*args)
    try:
        traced = jax.jit(fn).trace(*args)
    except _NEEDS_VALUES:
        return fn(*args)
    key = _fingerprint(traced, args, leaves)
    with _programs_lock:
        compiled = _programs.get(key) if key is not None else None
        if compiled is not None:
            _programs.move_to_end(key)
    if compiled is None:
        compiled = traced.lower().compile()
        if key is not None:
            with _programs_lock:
                _programs[key] = compiled
                while len(_programs) > MAX_PROGRAMS:
                    _programs.popitem(last=False)
    return compiled(*args)


def _fingerprint(traced: Any, args: tuple, leaves: list) -> Optional[str]:
    """What a compiled program depends on: the jaxpr's text, its constants' bytes, the
    argument and result structures, and the arguments' types and placements. ``None``
    (do not share) when the text cannot tell two computations apart: host callbacks
    print their function's name, not the function."""
    text = str(traced.jaxpr)
    if "callback" in text:
        return None
    digest = hashlib.sha256(text.encode())
    for const in traced.jaxpr.consts:
        value = np.asarray(const)
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    digest.update(str(jax.tree.structure(args)).encode())
    digest.update(str(jax.tree.structure(traced.out_info)).encode())
    for leaf in leaves:
        digest.update(f"{jax.typeof(leaf)}{getattr(leaf, 'sharding', None)}".encode())
    return digest.hexdigest()


def clear_programs() -> None:
    """Forget the programs :func:`call_compiled` keeps (they are compiled again when needed)."""
    with _programs_lock:
        _programs.clear()


# ------------------------------------------------------------------ the persistent cache

def default_cache_dir() -> pathlib.Path:
    """``$JAXDL_COMPILATION_CACHE`` when it names a directory, else
    ``$XDG_CACHE_HOME/jaxdl/xla``, else ``~/.cache/jaxdl/xla``."""
    env = os.environ.get(CACHE_ENV, "")
    if env and _xla.switched(env) is None:  # a directory, not on/off
        return pathlib.Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base).expanduser() / "jaxdl" / "xla"


def cache_requested(environ=os.environ) -> bool:
    """False when ``$JAXDL_COMPILATION_CACHE`` is ``0``, ``off``, ``false`` or ``no``:
    the ``jaxdl`` command then leaves the persistent cache off."""
    return _xla.switched(environ.get(CACHE_ENV, "")) is not False


def enable_cache(directory: Any = None, *, min_compile_time_secs: float = 0.0,
                 max_size_bytes: int = DEFAULT_MAX_SIZE_BYTES) -> pathlib.Path:
    """Keep compiled programs in ``directory`` so later runs read them instead of compiling.

    Args:
        directory: where the cache lives; :func:`default_cache_dir` when ``None``.
            Created if missing.
        min_compile_time_secs: programs that compiled faster than this are not
            written (JAX's default, 1 s, would skip most of a small model's
            programs; reading one back takes milliseconds).
        max_size_bytes: bound of the directory; the least recently used entries
            are deleted beyond it. Any bound (not -1) also makes JAX take a file
            lock around each read and write, so processes can share the directory.

    Returns:
        The cache directory, absolute.

    Raises:
        ValueError: ``directory`` exists and is not a writable directory.
    """
    path = pathlib.Path(directory if directory is not None else default_cache_dir())
    path = path.expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".jaxdl-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"enable_cache: directory must be a writable directory, got {str(path)!r} "
            f"({err.strerror or err}). Pass another directory, or set {CACHE_ENV}.") from err
    if int(max_size_bytes) <= 0:
        raise ValueError(f"enable_cache: max_size_bytes must be a positive number of bytes, "
                         f"got {max_size_bytes!r}.")
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", int(max_size_bytes))
    _reset_jax_cache()
    return path


def disable_cache() -> None:
    """Turn the persistent compilation cache off (what is on disk stays)."""
    jax.config.update("jax_compilation_cache_dir", None)
    _reset_jax_cache()


def cache_dir() -> Optional[pathlib.Path]:
    """The persistent cache's directory, or ``None`` when it is off."""
    value = jax.config.jax_compilation_cache_dir
    return pathlib.Path(value) if value else None


def cache_status() -> str:
    """One line for ``jaxdl info``: where the persistent cache is, or that it is off."""
    path = cache_dir()
    if path is None:
        return f"off (jaxdl.compilation.enable_cache() turns it on; {CACHE_ENV}=0 keeps the " \
               f"jaxdl command from doing so)"
    entries = list(path.glob("*-cache")) if path.is_dir() else []  # JAX's entry suffix
    size = sum(p.stat().st_size for p in entries)
    return f"on, {path} ({len(entries)} programs, {size / 2**20:.1f} MiB)"


def _reset_jax_cache() -> None:
    """JAX decides once per process whether the cache is in use; make it decide again."""
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
