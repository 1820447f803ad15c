"""jaxdl's glibc malloc setting: applied once, only when asked and allowed, and it acts."""

import os
import subprocess
import sys

import pytest

from jaxdl import _xla

ON_GLIBC = sys.platform.startswith("linux") and os.confstr(
    "CS_GNU_LIBC_VERSION").startswith("glibc")


@pytest.fixture
def fresh(monkeypatch):
    """A process state in which jaxdl has not tuned malloc yet, and a recording mallopt."""
    monkeypatch.setattr(_xla, "_malloc", {"tuned": False, "failed": ""})
    calls = []

    def mallopt(param, value):
        calls.append((param, value))
        return 1
    return calls, mallopt


def test_applies_both_thresholds_once(fresh):
    calls, mallopt = fresh
    assert _xla.tune_malloc({}, mallopt=mallopt)
    # glibc's <malloc.h>: M_MMAP_THRESHOLD is -3, M_TRIM_THRESHOLD is -1.
    assert calls == [(-3, 256 * 2**20), (-1, 2**30)]
    assert _xla.tune_malloc({}, mallopt=mallopt) and len(calls) == 2  # idempotent
    assert _xla.malloc_status({}).startswith("tuned by jaxdl (mallopt: mmap threshold 256 MiB")
    assert _xla.MALLOC_TUNABLES == ("glibc.malloc.mmap_threshold=268435456:"
                                    "glibc.malloc.trim_threshold=1073741824")


@pytest.mark.parametrize("value", ["0", "off", "OFF", "false"])
def test_the_environment_variable_opts_out(fresh, value):
    calls, mallopt = fresh
    env = {"JAXDL_TUNE_MALLOC": value}
    assert not _xla.tune_malloc(env, mallopt=mallopt) and calls == []
    assert _xla.malloc_status(env) == f"not tuned: JAXDL_TUNE_MALLOC={value} opts out"


def test_the_users_glibc_tunables_win(fresh):
    calls, mallopt = fresh
    env = {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}
    assert not _xla.tune_malloc(env, mallopt=mallopt) and calls == []
    assert _xla.malloc_status(env) == ("tuned by the environment: GLIBC_TUNABLES="
                                       "glibc.malloc.trim_threshold=0 sets it (left as the "
                                       "user chose)")


def test_a_refusal_is_reported_and_not_recorded_as_tuned(fresh):
    assert not _xla.tune_malloc({}, mallopt=lambda param, value: 0)
    assert _xla.malloc_status({}) == "not tuned: glibc's mallopt refused the thresholds"


def test_status_without_a_request_says_how_to_ask(fresh):
    status = _xla.malloc_status({})
    assert status.startswith("not tuned: not requested") and "JAXDL_TUNE_MALLOC=1" in status


def test_import_time_opt_in_goes_through_configure(fresh, monkeypatch):
    calls, mallopt = fresh
    monkeypatch.setattr(_xla, "_glibc_mallopt", lambda: mallopt)
    env = {"JAXDL_TUNE_MALLOC": "1", "JAXDL_KEEP_XLA_FLAGS": "1"}
    assert not _xla.configure(env)  # the XLA flag stays off as asked...
    assert len(calls) == 2  # ...and malloc is tuned
    calls.clear()
    monkeypatch.setattr(_xla, "_malloc", {"tuned": False, "failed": ""})
    _xla.configure({"JAXDL_KEEP_XLA_FLAGS": "1"})
    assert calls == []  # unset: the library leaves malloc alone


# In a fresh interpreter (the setting is process-wide): count the page faults of allocating,
# touching and freeing a 48 MiB block (the size XLA frees after each CNN step), before and
# after tune_malloc. glibc maps such a block anew each time (12,288 faults of 4 KiB pages)
# until its thresholds are raised, then reuses the heap memory (no faults).
_CHILD = r"""
import ctypes, importlib.util, resource, sys
spec = importlib.util.spec_from_file_location("x", sys.argv[1])
xla = importlib.util.module_from_spec(spec); spec.loader.exec_module(xla)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def faults(size=48 << 20, times=4):
    def use():
        p = libc.malloc(size); ctypes.memset(p, 1, size); libc.free(p)
    use()  # the first use faults either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        use()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

untuned = faults()
tuned = xla.tune_malloc({})
print(untuned, tuned, faults(), xla.malloc_status({}))
"""


@pytest.mark.skipif(not ON_GLIBC, reason="glibc's mallopt exists only on glibc Linux")
def test_on_glibc_large_blocks_stop_faulting_once_tuned():
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JAXDL_TUNE_MALLOC")}
    out = subprocess.run([sys.executable, "-c", _CHILD, _xla.__file__], env=env, check=True,
                         capture_output=True, text=True).stdout.split(maxsplit=3)
    untuned, tuned, after, status = int(out[0]), out[1], int(out[2]), out[3]
    assert tuned == "True" and status.startswith("tuned by jaxdl")
    pages = 4 * (48 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert untuned > pages // 2  # mapped afresh each time: the churn the setting removes
    assert after < pages // 20
