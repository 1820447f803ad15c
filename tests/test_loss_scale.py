"""optim.dynamic_loss_scale and optim.loss_scale_of against hand-worked sequences and the
unwrapped optimizer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import optim


def _run(opt, grads, params):
    """Feed ``grads`` one by one; return (updates, scale, good_steps) after each."""
    state = opt.init(params)
    out = []
    for g in grads:
        u, state = opt.update(g, state, params)
        out.append((np.asarray(u), float(state.scale), int(state.good_steps)))
    return out, state


def test_overflow_skips_the_step_keeps_inner_state_and_halves():
    opt = optim.dynamic_loss_scale(optim.sgd(0.5, momentum=0.9), initial_scale=8.0,
                                   growth_interval=100)
    w = jnp.zeros(2)
    grads = [jnp.array([8.0, 16.0]),          # unscaled (1, 2)
             jnp.array([jnp.inf, 1.0]),       # overflow: skip, scale 8 -> 4
             jnp.array([jnp.nan, 1.0]),       # NaN: skip, 4 -> 2
             jnp.array([2.0, 2.0])]           # unscaled (1, 1) at scale 2
    out, state = _run(opt, grads, w)
    # Momentum by hand: v1 = g1 = (1, 2), u1 = -0.5 v1; v2 = 0.9 v1 + (1, 1).
    np.testing.assert_array_equal(out[0][0], [-0.5, -1.0])
    np.testing.assert_array_equal(out[1][0], [0.0, 0.0])
    np.testing.assert_array_equal(out[2][0], [0.0, 0.0])
    np.testing.assert_allclose(out[3][0], -0.5 * (0.9 * np.array([1.0, 2.0]) + 1.0), rtol=1e-6)
    assert [o[1] for o in out] == [8.0, 4.0, 2.0, 2.0]
    assert [o[2] for o in out] == [1, 0, 0, 1]
    # The inner (momentum) state after the skips is what one finite step made, then one more.
    ref = optim.sgd(0.5, momentum=0.9)
    rs = ref.init(w)
    _, rs = ref.update(jnp.array([1.0, 2.0]), rs, w)
    _, rs = ref.update(jnp.array([1.0, 1.0]), rs, w)
    for a, b in zip(jax.tree.leaves(state.inner_state), jax.tree.leaves(rs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_growth_after_interval_and_min_scale_floor():
    opt = optim.dynamic_loss_scale(optim.sgd(1.0), initial_scale=2.0, growth_interval=3,
                                   factor=2.0, min_scale=1.0)
    ok, bad = jnp.ones(1), jnp.full(1, jnp.inf)
    out, _ = _run(opt, [ok, ok, ok, ok, bad, bad, bad, ok, ok, ok], jnp.zeros(1))
    # scale 2: three finite steps -> 4 (counter resets), one more finite,
    # then overflows: 4 -> 2 -> 1 -> 1 (floor), then three finite -> 2.
    assert [o[1] for o in out] == [2.0, 2.0, 4.0, 4.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    assert [o[2] for o in out] == [1, 2, 0, 1, 0, 0, 0, 1, 2, 0]
    # The step that grows the scale still used the old one to unscale: 1 / 2.
    np.testing.assert_array_equal(out[2][0], [-0.5])
    np.testing.assert_array_equal(out[3][0], [-0.25])


@pytest.mark.parametrize("scale", [2.0 ** 15, 2.0 ** -3])
def test_equals_inner_optimizer_exactly_without_overflow(scale):
    """A power-of-two scale is undone exactly: Adam's trajectory is bit-identical."""
    params = {"w": jnp.array([0.3, -1.2, 2.0]), "b": jnp.array([0.1])}
    tx = optim.adamw(1e-2, weight_decay=0.1)
    scaled = optim.dynamic_loss_scale(optim.adamw(1e-2, weight_decay=0.1),
                                      initial_scale=scale, min_scale=min(scale, 1.0))
    p_ref, s_ref = params, tx.init(params)
    p_sc, s_sc = params, scaled.init(params)
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        u_ref, s_ref = tx.update(g, s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, u_ref)
        u_sc, s_sc = scaled.update(jax.tree.map(lambda x: x * scale, g), s_sc, p_sc)
        p_sc = optax.apply_updates(p_sc, u_sc)
    for a, b in zip(jax.tree.leaves(p_sc), jax.tree.leaves(p_ref), strict=True):
        np.testing.assert_array_equal(a, b)


def test_jitted_equals_eager():
    opt = optim.dynamic_loss_scale(optim.adam(0.1), initial_scale=4.0, growth_interval=2)
    w = jnp.ones(3)
    grads = [jnp.ones(3), jnp.array([1.0, jnp.inf, 0.0]), 2 * jnp.ones(3), jnp.ones(3)]
    eager, _ = _run(opt, grads, w)
    update = jax.jit(opt.update)
    state = opt.init(w)
    for g, (u, s, n) in zip(grads, eager, strict=True):
        uj, state = update(g, state, w)
        np.testing.assert_array_equal(uj, u)
        assert (float(state.scale), int(state.good_steps)) == (s, n)


def test_loss_scale_of_finds_it_anywhere():
    w = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
    assert float(optim.loss_scale_of(optim.adam(0.1).init(w))) == 1.0
    assert optim.loss_scale_of(()).dtype == jnp.float32
    dls = optim.dynamic_loss_scale(optim.adam(0.1), initial_scale=64.0)
    chained = optim.chain(optim.clip(1.0), dls, optim.lr_multiplier())
    assert float(optim.loss_scale_of(chained.init(w))) == 64.0
    masked = optim.masked(dls, {"a": True, "b": False})
    assert float(optim.loss_scale_of((masked.init(w), optax.EmptyState()))) == 64.0
    injected = optim.inject_hyperparams(lambda learning_rate: optim.chain(
        optim.dynamic_loss_scale(optim.sgd(learning_rate), initial_scale=16.0)))(0.1)
    assert float(optim.loss_scale_of(injected.init(w))) == 16.0
    two = optim.chain(dls, dls).init(w)
    with pytest.raises(ValueError, match="at most one dynamic_loss_scale"):
        optim.loss_scale_of(two)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"initial_scale": 0.0}, ValueError, "initial_scale"),
    ({"factor": 1.0}, ValueError, "factor"),
    ({"growth_interval": 0}, ValueError, "growth_interval"),
    ({"growth_interval": 2.5}, ValueError, "growth_interval"),
    ({"min_scale": 0.0}, ValueError, "min_scale"),
    ({"initial_scale": 2.0, "min_scale": 4.0}, ValueError, "min_scale"),
    ({"initial_scale": "big"}, TypeError, "initial_scale"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.dynamic_loss_scale(optim.sgd(0.1), **kwargs)


def test_inner_must_be_a_transformation():
    with pytest.raises(TypeError, match="`inner` must be an optax GradientTransformation"):
        optim.dynamic_loss_scale(0.1)
