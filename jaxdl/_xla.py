"""XLA settings jaxdl applies when it is imported, each measured to help.

On XLA:CPU with jaxlib 0.10, YNNPACK library fusions of convolutions,
element-wise and reduce ops made the benchmark CNN's training step 1.4x slower
(19.8 vs 28.5 steps/s) while leaving dots in YNNPACK kept every MLP workload at
its speed (``benchmarks/RESULTS.md``). jaxdl therefore asks for YNNPACK on dots
only, through ``XLA_FLAGS``, unless:

* the user already set ``--xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS``;
* ``JAXDL_KEEP_XLA_FLAGS=1`` is set in the environment;
* the installed jaxlib is not a version this was measured on (an unknown flag
  would make XLA refuse to start).

Flags are read when JAX first starts a backend, so this has no effect in a
process that ran JAX computations before importing jaxdl.

MNIST-1D's Conv1D net (three Conv1D(32, 5), Dense(10), batch 100), checked
for issue 16 with ``benchmarks/bench_cpu_settings.py`` (fresh processes per
setting, interleaved, medians; a loaded 2-core machine) showed no consistent
cost of the flag: 158 steps/s with it, 161 with XLA's default
(``JAXDL_KEEP_XLA_FLAGS=1``), 159 with no YNNPACK fusion at all (an empty
value); an earlier run of the same kind gave 120 / 151 / 144, and one core
with one thread 7.4 / 7.9 / 6.8 CPU ms per step, i.e. noise. The same runs
kept the flag's reasons: XLA's default costs the CNN (batch 128) 35 % more
CPU per step (164 vs 121 ms), and no YNNPACK at all makes the 784-512-512-10
MLP at batch 128 slower (118 vs 136 steps/s). The flag stays as it is.

The module also holds glibc's malloc setting (:func:`tune_malloc`,
:func:`malloc_status`), which is process-wide and therefore not applied at
import unless ``JAXDL_TUNE_MALLOC=1`` asks for it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from importlib import metadata
from typing import Optional

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=individual_dot"
_MEASURED_JAXLIB = ("0.10.",)


def configure(environ=os.environ) -> bool:
    """jaxdl's import-time settings; return whether the XLA flag was added.

    Adds the measured XLA flag to ``environ["XLA_FLAGS"]`` (see the module
    docstring), and tunes glibc's malloc when ``JAXDL_TUNE_MALLOC=1`` asks for
    it (:func:`tune_malloc`).
    """
    if switched(environ.get(MALLOC_ENV, "")):
        tune_malloc(environ)
    return _add_ynn_flag(environ)


def _add_ynn_flag(environ) -> bool:
    """Add :data:`YNN_FLAG` to ``environ["XLA_FLAGS"]`` when safe; return whether it did."""
    if environ.get("JAXDL_KEEP_XLA_FLAGS"):
        return False
    flags = environ.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" in flags:
        return False
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    if not version.startswith(_MEASURED_JAXLIB):
        return False
    environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}".strip()
    return True


# ----------------------------------------------------------------------------- glibc malloc

MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20
MALLOC_TUNABLES = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
                   f"glibc.malloc.trim_threshold={TRIM_THRESHOLD}:glibc.malloc.top_pad={TOP_PAD}")
MALLOC_ENV = "JAXDL_TUNE_MALLOC"
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's <malloc.h>
_OFF, _ON = ("0", "off", "false", "no"), ("1", "on", "true", "yes")


def switched(value: str) -> Optional[bool]:
    """An on/off environment variable's value: False for ``0``/``off``/``false``/``no``,
    True for ``1``/``on``/``true``/``yes`` (any case, spaces ignored), None otherwise
    (unset, or a value such as a directory).

    >>> switched(" OFF "), switched("yes"), switched("/tmp/cache")
    (False, True, None)
    """
    value = value.strip().lower()
    return False if value in _OFF else True if value in _ON else None
_malloc = {"tuned": False, "failed": ""}


def _glibc_mallopt():
    """glibc's ``mallopt`` through ctypes, or None when this process has no glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        fn = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return None
    fn.argtypes, fn.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return fn


def _malloc_blocker(environ) -> str:
    """Why :func:`tune_malloc` leaves malloc alone in ``environ`` ("" when nothing does)."""
    if switched(environ.get(MALLOC_ENV, "")) is False:
        return f"{MALLOC_ENV}={environ[MALLOC_ENV]} opts out"
    tunables = environ.get("GLIBC_TUNABLES", "")
    if any(f"malloc.{name}" in tunables for name in ("mmap_threshold", "trim_threshold",
                                                       "top_pad")):
        return f"GLIBC_TUNABLES={tunables} sets it (left as the user chose)"
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    return ""


def tune_malloc(environ=os.environ, *, mallopt=None) -> bool:
    """Keep glibc's malloc from unmapping large buffers after every step; return whether it is.

    XLA:CPU allocates a step's large temporaries with ``malloc`` and frees them
    when the step ends. The benchmark CNN (batch 128) allocates a 32.1 MiB and
    a 47.8 MiB buffer per step; glibc serves blocks over 32 MiB with ``mmap``
    and unmaps them on ``free``, so every step maps them again and the kernel
    zero-fills each page on first touch: 8,229 page faults per step
    (``benchmarks/bench_cpu_settings.py``). This calls ``mallopt`` so that
    such buffers come from the heap and are reused:

    * mmap threshold 256 MiB: blocks below it come from the heap;
    * trim threshold 1 GiB: freed memory at the top of a heap stays mapped;
    * top pad 64 MiB: a worker thread's heap (64 MiB each) is not deleted when
      its last block is freed. Without it, two buffers live at once in one
      thread's arena still fault on every step (measured: the 33 MiB one), as
      they did with the two thresholds alone in some runs of the CNN.

    These are the values of :data:`MALLOC_TUNABLES`. Measured on 2 cores
    (4 fresh processes per setting, medians): the CNN step went from 14.6 to
    22.3 steps/s (0 faults), 0.99x to 1.31x PyTorch in the same process and
    1.48x PyTorch in an untuned one. The cost: freed memory (up to 1 GiB in
    the main heap, all of a worker thread's heaps) stays with the process for
    reuse instead of going back to the system; the CNN's resident memory after
    20 steps went from 327 to 490 MiB.

    It acts on the whole process, so importing jaxdl does not call it: the
    ``jaxdl`` CLI does, and a script opts in by calling it or by setting
    ``JAXDL_TUNE_MALLOC=1`` before importing jaxdl. It does nothing (and
    returns False) when ``JAXDL_TUNE_MALLOC`` is ``0``/``off``, when
    ``GLIBC_TUNABLES`` already sets one of these (the user's choice wins), or
    off Linux/glibc. Calling it again is free.

    Args:
        environ: the environment to read the opt-out and ``GLIBC_TUNABLES`` from.
        mallopt: stand-in for glibc's ``mallopt(param, value) -> int`` (tests).

    Returns:
        True when jaxdl's setting is in effect (now or from an earlier call).

    Example:
        >>> from jaxdl import _xla
        >>> _xla.tune_malloc({"JAXDL_TUNE_MALLOC": "0"})
        False
    """
    if _malloc["tuned"]:
        return True
    if _malloc_blocker(environ):
        return False
    fn = mallopt or _glibc_mallopt()
    if fn is None:
        _malloc["failed"] = "the C library is not glibc"
        return False
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (_M_TOP_PAD, TOP_PAD))
    if not all(fn(param, value) == 1 for param, value in settings):
        _malloc["failed"] = "glibc's mallopt refused the settings"
        return False
    _malloc["tuned"] = True
    return True


def malloc_status(environ=os.environ) -> str:
    """One line for ``jaxdl info``: whether glibc's malloc is tuned in this process, and why.

    Example:
        >>> from jaxdl import _xla
        >>> _xla.malloc_status({"JAXDL_TUNE_MALLOC": "0"}).startswith(("tuned", "not tuned"))
        True
    """
    if _malloc["tuned"]:
        return (f"tuned by jaxdl (mallopt: mmap threshold {MMAP_THRESHOLD >> 20} MiB, "
                f"trim threshold {TRIM_THRESHOLD / 2**30:g} GiB, top pad {TOP_PAD >> 20} MiB)")
    blocker = _malloc_blocker(environ)
    if blocker.startswith("GLIBC_TUNABLES"):
        return f"tuned by the environment: {blocker}"
    why = blocker or _malloc["failed"] or (
        f"not requested (the jaxdl CLI tunes it; a script calls jaxdl.tune_malloc() "
        f"or sets {MALLOC_ENV}=1)")
    return f"not tuned: {why}"
