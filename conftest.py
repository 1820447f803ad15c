"""pytest configuration for every test and doctest (``tests/`` and ``jaxdl/``).

The suite checks results, not speed, and is made of many small programs that
each compile once and run a few steps: there XLA's backend optimizations
(LLVM at -O3) cost more compile time than they save at run time. Measured on
2 CPU cores, ``tests/test_train.py`` and ``tests/test_nn_conv.py`` took 149 s
with them off against 297-409 s with them on. Benchmarks, examples and users
keep XLA's full optimization; set ``JAXDL_TEST_FULL_XLA=1`` to test with it.
The environment variable carries the setting into the Python processes tests
start (examples, benchmark smoke runs, killed children).
"""

import os

import jax
import pytest

if not os.environ.get("JAXDL_TEST_FULL_XLA"):
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"  # read by JAX when a child imports it
    jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture
def full_xla():
    """XLA's full optimization for one test: for the few tests that train long enough
    (hundreds of steps of a CNN) that optimized code saves more than its compile time
    costs (the demo's CNN: 39.7-41.1 s of CPU with optimizations off, 33.5 s on)."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
