"""Shared test configuration and checks.

Every test runs under JAX's strict dtype promotion, so an accidental
float32/float64 or int/float mix in library code fails loudly instead of
silently promoting.
"""

import contextlib

import jax
import pytest


@pytest.fixture(autouse=True)
def _strict_dtype_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield


BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compile_counter():
    """Collect one entry per XLA backend compilation inside the ``with`` block.

    The one compile-counting helper of the suite (a jitted function's private
    cache is never read): ``with count_compiles() as compiles: f(x2)`` then
    ``assert compiles == []`` checks that a second call did not compile again.
    """
    compiles = []

    def listen(event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


@pytest.fixture
def count_compiles():
    """:func:`compile_counter`, as a fixture: ``with count_compiles() as compiles: ...``."""
    return compile_counter


# --------------------------------------------------------------------------------------
# The layer contract: one check that every layer, now and later, goes through.
# --------------------------------------------------------------------------------------

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def _to_f64(tree):
    return jax.tree.map(
        lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def check_layer_contract(layer, input_shape, *, batch=3, training=False, wrong_shape=None,
                         expected_in_message=None, x=None, gradcheck_input=True, seed=0):
    """Check the protocol every jaxdl layer promises.

    1. ``init`` then ``apply`` give an output whose shape is ``(batch,) +
       nn.output_shape(layer, input_shape)``, and a state of the same structure.
    2. The jitted ``apply`` equals the eager one, and a second call with new
       values of the same shape does not retrace.
    3. ``gradcheck`` passes in float64, with respect to the params and (unless
       ``gradcheck_input=False``) the input.
    4. An input of ``wrong_shape`` (no batch axis) raises ``ValueError`` whose
       message names the layer type, the received shape and (when given)
       ``expected_in_message``: never a raw XLA error.

    Returns ``(params, state, y)`` for further checks.
    """
    from jaxdl import nn
    from jaxdl.gradcheck import gradcheck

    k_init, k_x, k_apply = jax.random.split(jax.random.key(seed), 3)
    params, state = layer.init(k_init, input_shape)
    if x is None:
        x = jax.random.normal(k_x, (batch,) + tuple(input_shape), jnp.float32)

    # 1. shapes
    y, new_state = layer.apply(params, state, x, key=k_apply, training=training)
    expected_shape = (x.shape[0],) + tuple(nn.output_shape(layer, input_shape))
    assert y.shape == expected_shape, (
        f"{layer}: applied shape {y.shape} != predicted {expected_shape}")
    assert jax.tree.structure(new_state) == jax.tree.structure(state)

    # 2. jit equals eager; no retrace on the second call
    traces = []

    def run(p, s, v, k):
        traces.append(1)
        return layer.apply(p, s, v, key=k, training=training)

    jitted = jax.jit(run)
    yj, sj = jitted(params, state, x, k_apply)
    np.testing.assert_allclose(np.asarray(yj), np.asarray(y), rtol=2e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                         rtol=2e-5, atol=1e-6), sj, new_state)
    jitted(params, state, x + 1.0 if jnp.issubdtype(x.dtype, jnp.floating) else x, k_apply)
    assert len(traces) == 1, f"{layer}: the jitted apply retraced on a same-shape call"

    # 3. gradients against float64 finite differences
    with jax.enable_x64(True):
        p64, s64, x64 = _to_f64(params), _to_f64(state), _to_f64(jnp.asarray(x))

        if gradcheck_input and jnp.issubdtype(x64.dtype, jnp.floating):
            def f(p, v):
                return layer.apply(p, s64, v, key=k_apply, training=training)[0]
            gradcheck(f, p64, x64)
        elif jax.tree.leaves(p64):
            def g(p):
                return layer.apply(p, s64, x64, key=k_apply, training=training)[0]
            gradcheck(g, p64)

    # 4. a wrong input shape gets a clear ValueError
    if wrong_shape is not None:
        bad = jnp.ones((batch,) + tuple(wrong_shape), jnp.float32)
        try:
            layer.apply(params, state, bad, key=k_apply, training=training)
        except ValueError as e:  # the message and its notes (e.g. Sequential's layer name)
            msg = "\n".join([str(e), *getattr(e, "__notes__", ())])
        else:
            raise AssertionError(f"{layer}: input of shape {bad.shape} did not raise ValueError")
        name = type(layer).__name__
        assert name in msg, f"error does not name the layer {name}: {msg}"
        assert str(tuple(bad.shape)) in msg, f"error does not give the received shape: {msg}"
        if expected_in_message is not None:
            assert expected_in_message in msg, (
                f"error does not give the expected {expected_in_message!r}: {msg}")
    return params, state, y


@pytest.fixture
def layer_contract():
    """The shared layer-contract check (see :func:`check_layer_contract`)."""
    return check_layer_contract
