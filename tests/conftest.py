"""Shared test configuration and checks.

Every test runs under JAX's strict dtype promotion, so an accidental
float32/float64 or int/float mix in library code fails loudly instead of
silently promoting.
"""

import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_dtype_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield
