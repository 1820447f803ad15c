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
    # glibc's <malloc.h>: M_MMAP_THRESHOLD is -3, M_TRIM_THRESHOLD -1, M_TOP_PAD -2.
    assert calls == [(-3, 256 * 2**20), (-1, 2**30), (-2, 64 * 2**20)]
    assert _xla.tune_malloc({}, mallopt=mallopt) and len(calls) == 3  # idempotent
    assert _xla.malloc_status({}).startswith("tuned by jaxdl (mallopt: mmap threshold 256 MiB")
    assert _xla.MALLOC_TUNABLES == ("glibc.malloc.mmap_threshold=268435456:"
                                    "glibc.malloc.trim_threshold=1073741824:"
                                    "glibc.malloc.top_pad=67108864")


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
    assert _xla.malloc_status({}) == "not tuned: glibc's mallopt refused the settings"


def test_status_without_a_request_says_how_to_ask(fresh):
    status = _xla.malloc_status({})
    assert status.startswith("not tuned: not requested") and "JAXDL_TUNE_MALLOC=1" in status


def test_import_time_opt_in_goes_through_configure(fresh, monkeypatch):
    calls, mallopt = fresh
    monkeypatch.setattr(_xla, "_glibc_mallopt", lambda: mallopt)
    env = {"JAXDL_TUNE_MALLOC": "1", "JAXDL_KEEP_XLA_FLAGS": "1"}
    assert not _xla.configure(env)  # the XLA flag stays off as asked...
    assert len(calls) == 3  # ...and malloc is tuned
    calls.clear()
    monkeypatch.setattr(_xla, "_malloc", {"tuned": False, "failed": ""})
    _xla.configure({"JAXDL_KEEP_XLA_FLAGS": "1"})
    assert calls == []  # unset: the library leaves malloc alone


# In a fresh interpreter (the setting is process-wide): count the page faults of a step-like
# pattern, a 48 MiB and a 33 MiB block allocated together, touched and freed (the sizes XLA
# frees after each CNN step), in a worker thread (its own glibc arena, as XLA's threads have)
# and in the main thread, before and after tune_malloc. Untuned, glibc maps both anew each
# time (4 KiB pages: 20,736 faults per round); tuned, it reuses the heap memory. With the two
# thresholds alone, the worker thread's 33 MiB block still faulted every round (the top pad
# fixed it): this test fails if any of the three settings is dropped.
_CHILD = r"""
import ctypes, importlib.util, resource, sys, threading
spec = importlib.util.spec_from_file_location("x", sys.argv[1])
xla = importlib.util.module_from_spec(spec); spec.loader.exec_module(xla)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def step(sizes=(48 << 20, 33 << 20)):
    blocks = [(libc.malloc(n), n) for n in sizes]
    for p, n in blocks:
        ctypes.memset(p, 1, n)
    for p, n in blocks:
        libc.free(p)

def faults(out, rounds=4):
    step()  # the first use faults either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        step()
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

def both():
    out = []
    worker = threading.Thread(target=faults, args=(out,))
    worker.start(); worker.join()
    faults(out)
    return out

untuned = both()
tuned = xla.tune_malloc({})
print(*untuned, tuned, *both(), xla.malloc_status({}))
"""


@pytest.mark.skipif(not ON_GLIBC, reason="glibc's mallopt exists only on glibc Linux")
def test_on_glibc_large_blocks_stop_faulting_once_tuned():
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JAXDL_TUNE_MALLOC")}
    out = subprocess.run([sys.executable, "-c", _CHILD, _xla.__file__], env=env, check=True,
                         capture_output=True, text=True).stdout.split(maxsplit=5)
    untuned, tuned, after, status = out[:2], out[2], out[3:5], out[5]
    assert tuned == "True" and status.startswith("tuned by jaxdl")
    pages = 4 * (81 << 20) // os.sysconf("SC_PAGE_SIZE")  # 4 rounds of 48 + 33 MiB
    assert all(int(n) > pages // 2 for n in untuned)  # mapped afresh: the churn to remove
    assert all(int(n) < pages // 20 for n in after), (untuned, after)  # worker, main thread
