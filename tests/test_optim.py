"""jaxdl.optim against optax, numpy loops written from the formulas, and the course.

The reference (optax) runs under standard dtype promotion: optax 0.2.8's own
adam and schedules do not run under the strict promotion that conftest.py sets
for jaxdl's code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import optim
from jaxdl.optim import schedules

# ------------------------------------------------------------- the network ---

SHAPES = {
    "dense_0": {"kernel": (4, 8), "bias": (8,)},
    "dense_1": {"kernel": (8, 3), "bias": (3,)},
}


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda shape: jnp.asarray(rng.normal(0.0, 0.5, shape), dtype),
        SHAPES,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def make_data(dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 4))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2], np.cos(x[:, 3])], axis=1)
    return jnp.asarray(x, dtype), jnp.asarray(y, dtype)


def mlp_loss(params, x, y):
    h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
    out = h @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]
    return jnp.mean((out - y) ** 2)


def not_bias(params):
    return {layer: {"kernel": True, "bias": False} for layer in params}


def _ref(fn):
    """Calls an optax function under standard promotion."""

    def call(*args, **kwargs):
        with jax.numpy_dtype_promotion("standard"):
            return fn(*args, **kwargs)

    return call


# (name, jaxdl optimizer, optax optimizer): same call, same trajectory.
CASES = [
    ("sgd", lambda: optim.sgd(0.1), lambda: optax.sgd(0.1)),
    ("sgd_momentum", lambda: optim.sgd(0.05, momentum=0.9),
     lambda: optax.sgd(0.05, momentum=0.9)),
    ("sgd_nesterov", lambda: optim.sgd(0.05, momentum=0.9, nesterov=True),
     lambda: optax.sgd(0.05, momentum=0.9, nesterov=True)),
    ("sgd_piecewise",
     lambda: optim.sgd(schedules.piecewise_constant(0.1, {5: 0.5, 12: 0.2}), momentum=0.5),
     lambda: optax.sgd(optax.piecewise_constant_schedule(0.1, {5: 0.5, 12: 0.2}), momentum=0.5)),
    ("adagrad", lambda: optim.adagrad(0.1), lambda: optax.adagrad(0.1)),
    ("adagrad_custom",
     lambda: optim.adagrad(schedules.constant(0.05), initial_accumulator_value=0.5, eps=1e-6),
     lambda: optax.adagrad(optax.constant_schedule(0.05), initial_accumulator_value=0.5, eps=1e-6)),
    # RMSprop's rates are kept small (and centered RMSprop's eps large) so that
    # the 200-step trajectory is well conditioned: a one-ulp change of the
    # start moves it by < 1e-10. With larger rates it is chaotic on this net
    # and free-running agreement would only test bitwise identity.
    ("rmsprop", lambda: optim.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
    ("rmsprop_centered", lambda: optim.rmsprop(1e-3, centered=True, eps=1e-4),
     lambda: optax.rmsprop(1e-3, centered=True, eps=1e-4)),
    ("rmsprop_momentum", lambda: optim.rmsprop(5e-4, decay=0.95, momentum=0.9, nesterov=True),
     lambda: optax.rmsprop(5e-4, decay=0.95, momentum=0.9, nesterov=True)),
    ("rmsprop_all_options",
     lambda: optim.rmsprop(1e-3, eps=1e-2, initial_scale=0.1, eps_in_sqrt=False, centered=True,
                           momentum=0.5, bias_correction=True),
     lambda: optax.rmsprop(1e-3, eps=1e-2, initial_scale=0.1, eps_in_sqrt=False, centered=True,
                           momentum=0.5, bias_correction=True)),
    ("rmsprop_bias_correction", lambda: optim.rmsprop(1e-3, bias_correction=True),
     lambda: optax.rmsprop(1e-3, bias_correction=True)),
    ("adam", lambda: optim.adam(0.01), lambda: optax.adam(0.01)),
    ("adam_nesterov_eps_root",
     lambda: optim.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-10, nesterov=True),
     lambda: optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-10, nesterov=True)),
    ("adam_exponential_decay",
     lambda: optim.adam(schedules.exponential_decay(0.02, 5, 0.7, transition_begin=3)),
     lambda: optax.adam(optax.exponential_decay(0.02, 5, 0.7, transition_begin=3))),
    ("adamw", lambda: optim.adamw(0.01), lambda: optax.adamw(0.01)),
    ("adamw_masked_cosine",
     lambda: optim.adamw(schedules.cosine_decay(0.02, 30, alpha=0.1), weight_decay=0.1,
                         mask=not_bias),
     lambda: optax.adamw(optax.cosine_decay_schedule(0.02, 30, alpha=0.1), weight_decay=0.1,
                         mask=not_bias)),
    ("adamw_warmup_wd_schedule",
     lambda: optim.adamw(schedules.warmup_cosine_decay(0.0, 0.02, 5, 40, end_value=0.001),
                         weight_decay=schedules.exponential_decay(0.1, 10, 0.5),
                         mask={"dense_0": True, "dense_1": {"kernel": True, "bias": False}}),
     lambda: optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 0.02, 5, 40, end_value=0.001),
                         weight_decay=optax.exponential_decay(0.1, 10, 0.5),
                         mask={"dense_0": True, "dense_1": {"kernel": True, "bias": False}})),
    ("clip_by_global_norm+sgd",
     lambda: optim.chain(optim.clip_by_global_norm(0.3), optim.sgd(0.1, momentum=0.9)),
     lambda: optax.chain(optax.clip_by_global_norm(0.3), optax.sgd(0.1, momentum=0.9))),
    ("clip+decay+adam",
     lambda: optim.chain(optim.clip(0.05), optim.add_decayed_weights(1e-3), optim.adam(0.01)),
     lambda: optax.chain(optax.clip(0.05), optax.add_decayed_weights(1e-3), optax.adam(0.01))),
    ("primitives",
     lambda: optim.chain(optim.scale_by_adam(b1=0.5), optim.trace(0.3), optim.scale(-0.01)),
     lambda: optax.chain(optax.scale_by_adam(b1=0.5), optax.trace(0.3), optax.scale(-0.01))),
]
CASE_IDS = [c[0] for c in CASES]


def _rel_diff(a_tree, b_tree):
    """Max over leaves and elements of |a - b| / |b| (0 where both are equal)."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree), strict=True):
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        assert a.shape == b.shape
        diff = np.abs(a - b)
        scale = np.abs(b)
        rel = np.where(diff == 0, 0.0, diff / np.where(scale == 0, np.inf, scale))
        rel = np.where((scale == 0) & (diff != 0), np.inf, rel)
        worst = max(worst, float(rel.max(initial=0.0)))
    return worst


def _sync_state(ours_state, ref_state):
    """optax's state carrying jaxdl's values: the leaves line up one to one."""
    ours_leaves = jax.tree.leaves(ours_state)
    ref_leaves, ref_def = jax.tree.flatten(ref_state)
    assert len(ours_leaves) == len(ref_leaves)
    for o, r in zip(ours_leaves, ref_leaves, strict=True):
        assert o.shape == r.shape and o.dtype == r.dtype, (o.shape, o.dtype, r.shape, r.dtype)
    return ref_def.unflatten(ours_leaves)


GRAD = jax.jit(jax.grad(mlp_loss))
APPLY = jax.jit(optax.apply_updates)


def _compare(case, dtype, *, sync_steps, eager_steps=0, free_steps=0):
    """Runs jaxdl's and optax's optimizer side by side on the network.

    Each step is ``grad -> update -> apply_updates``; the update is jitted once
    per optimizer (or run op by op for ``"eager"``). Returns a dict of the
    largest relative differences:

    * ``"jit"`` / ``"eager"``: per update. optax's state is overwritten by
      jaxdl's before every update (the leaves line up one to one) and both see
      the same params, so each update and new state is compared from the same
      state.
    * ``"free"``: both run free for ``free_steps``; params along the path.

    and ``"loss"``, jaxdl's loss at the end of the free run.
    """
    _, make_ours, make_ref = case
    ours, ref = make_ours(), make_ref()
    x, y = make_data(dtype)

    def make_step(opt, jit):
        # Only the optimizer is compiled per case; the gradient and the update
        # of the params are shared, compiled once.
        update = jax.jit(opt.update) if jit else opt.update

        def step(params, state):
            updates, state = update(GRAD(params, x, y), state, params)
            return updates, state, APPLY(params, updates)

        return step

    def run(step_ours, step_ref, steps, sync):
        p_ours = p_ref = make_params(dtype)
        s_ours, s_ref = ours.init(p_ours), _ref(ref.init)(p_ref)
        _sync_state(s_ours, s_ref)  # same layout from the start
        ours_seen, ref_seen = [], []
        for _ in range(steps):
            if sync:
                s_ref, p_ref = _sync_state(s_ours, s_ref), p_ours
            u_ours, s_ours, p_ours = step_ours(p_ours, s_ours)
            u_ref, s_ref, p_ref = step_ref(p_ref, s_ref)
            assert jax.tree.structure(u_ours) == jax.tree.structure(u_ref)
            assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(u_ours))
            if sync:
                ours_seen.append((u_ours, jax.tree.leaves(s_ours)))
                ref_seen.append((u_ref, jax.tree.leaves(s_ref)))
            else:
                ours_seen.append(p_ours)
                ref_seen.append(p_ref)
        return _rel_diff(ours_seen, ref_seen), p_ours

    eager_ours, eager_ref = make_step(ours, jit=False), _ref(make_step(ref, jit=False))
    jit_ours, jit_ref = make_step(ours, jit=True), _ref(make_step(ref, jit=True))
    out = {}
    if sync_steps:
        out["jit"] = run(jit_ours, jit_ref, sync_steps, sync=True)[0]
    if eager_steps:
        out["eager"] = run(eager_ours, eager_ref, eager_steps, sync=True)[0]
    if free_steps:
        out["free"], p_final = run(jit_ours, jit_ref, free_steps, sync=False)
        out["loss"] = float(mlp_loss(p_final, x, y))
    return out


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_optax_per_update_and_free_running(case):
    with jax.enable_x64(True):
        got = _compare(case, jnp.float64, sync_steps=20, free_steps=200)
        x, y = make_data(jnp.float64)
        start_loss = float(mlp_loss(make_params(jnp.float64), x, y))
    assert got["jit"] < 1e-12
    assert got["free"] < 1e-9
    assert got["loss"] < 0.5 * start_loss  # and it is training


# Op-by-op execution compiles every primitive separately, so the eager check
# runs on cases that together use every transform and option.
EAGER_CASES = ["sgd_piecewise", "adagrad", "rmsprop_all_options", "rmsprop_momentum",
               "adam_nesterov_eps_root", "adamw_warmup_wd_schedule", "clip_by_global_norm+sgd",
               "clip+decay+adam"]


# Eager float64 runs dispatch every op on its own (seconds each): two run in CI, the rest
# with -m slow; the jitted comparisons above cover every case in CI.
_EAGER_IN_CI = ("sgd_piecewise", "rmsprop_all_options")


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=() if c[0] in _EAGER_IN_CI else pytest.mark.slow)
    for c in CASES if c[0] in EAGER_CASES], ids=[c[0] for c in CASES if c[0] in EAGER_CASES])
def test_float64_matches_optax_eagerly(case):
    with jax.enable_x64(True):
        got = _compare(case, jnp.float64, sync_steps=0, eager_steps=2)
    assert got["eager"] < 1e-12


# float32 per update: the cases whose options touch dtypes (schedules' integer counts, an
# accumulator's initial value, eps placement, masks and schedule-driven decay, chains) run in
# CI; the rest with -m slow. The float64 comparison above checks every case in CI at 1e-12,
# and test_low_precision_updates_keep_dtype_and_track_float32 every optimizer's dtypes.
_FLOAT32_IN_CI = ("sgd_piecewise", "adagrad_custom", "rmsprop_all_options",
                  "adam_nesterov_eps_root", "adamw_warmup_wd_schedule", "clip+decay+adam")


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=() if c[0] in _FLOAT32_IN_CI else pytest.mark.slow)
    for c in CASES], ids=CASE_IDS)
def test_float32_matches_optax_per_update(case):
    got = _compare(case, jnp.float32, sync_steps=20)
    assert got["jit"] < 1e-6


def test_state_dtypes_and_shapes_are_documented():
    params = make_params(jnp.float32)
    state = optim.adam(1e-3).init(params)[0]
    assert isinstance(state, optim.ScaleByAdamState)
    assert state.count.dtype == jnp.int32 and state.count.shape == ()
    for tree in (state.mu, state.nu):
        for leaf, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True):
            assert leaf.shape == p.shape and leaf.dtype == p.dtype
            assert not leaf.any()
    ada = optim.adagrad(0.1).init(params)[0]
    assert all(bool(jnp.all(leaf == jnp.float32(0.1)))
               for leaf in jax.tree.leaves(ada.sum_of_squares))
    sched = optim.sgd(schedules.constant(0.1)).init(params)[0]
    assert isinstance(sched, optim.ScaleByScheduleState) and sched.count.dtype == jnp.int32


# ------------------------------------------------- the course's momentum ---


@pytest.mark.parametrize("look_ahead", [False, True])
def test_course_momentum_matches_numpy_loop(look_ahead):
    """v = beta v + (1 - beta) g; w -= lr v (or lr (beta v + (1 - beta) g))."""
    a = np.array([[3.0, 0.5], [0.5, 1.0]])
    b = np.array([1.0, -2.0])
    lr, beta, steps = 0.3, 0.8, 150
    w = np.array([2.0, -1.0])
    v = np.zeros(2)
    ref_path = []
    for _ in range(steps):
        g = a @ w - b
        v = beta * v + (1 - beta) * g
        w = w - lr * ((beta * v + (1 - beta) * g) if look_ahead else v)
        ref_path.append(w.copy())

    with jax.enable_x64(True):
        opt = (optim.nesterov if look_ahead else optim.momentum)(lr, beta=beta)
        aj, bj = jnp.asarray(a), jnp.asarray(b)

        def loss(w):
            return 0.5 * w @ aj @ w - bj @ w

        wj = jnp.array([2.0, -1.0])
        state = opt.init(wj)
        update = jax.jit(opt.update)
        path = []
        for _ in range(steps):
            updates, state = update(jax.grad(loss)(wj), state, wj)
            wj = optax.apply_updates(wj, updates)
            path.append(np.asarray(wj))
    np.testing.assert_allclose(np.array(path), np.array(ref_path), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(path[-1], np.linalg.solve(a, b), atol=1e-6)


@pytest.mark.parametrize("look_ahead", [False, True])
def test_course_momentum_is_classical_momentum_with_lr_over_one_minus_beta(look_ahead):
    """v_t = (1 - beta) m_t: the course's form with lr / (1 - beta) is optax's sgd."""
    beta, lr = 0.9, 0.01
    with jax.enable_x64(True):
        course = (optim.nesterov if look_ahead else optim.momentum)(lr / (1 - beta), beta=beta)
        classical = optax.sgd(lr, momentum=beta, nesterov=look_ahead)
        x, y = make_data(jnp.float64)
        p1 = p2 = make_params(jnp.float64)
        s1, s2 = course.init(p1), _ref(classical.init)(p2)
        grad = jax.jit(jax.grad(mlp_loss))
        for _ in range(30):
            u1, s1 = course.update(grad(p1, x, y), s1, p1)
            u2, s2 = _ref(classical.update)(grad(p2, x, y), s2, p2)
            p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        assert _rel_diff(p1, p2) < 1e-10
        # With the same lr, the course's steady-state step is (1 - beta) times smaller.
        same = (optim.nesterov if look_ahead else optim.momentum)(lr, beta=beta)
        s = same.init(jnp.zeros(1))
        sc = _ref(classical.init)(jnp.zeros(1))
        for _ in range(300):
            u_same, s = same.update(jnp.ones(1), s)
            u_classical, sc = _ref(classical.update)(jnp.ones(1), sc)
        np.testing.assert_allclose(u_same / u_classical, 1 - beta, rtol=1e-9)


def test_momentum_docstrings_explain_the_difference():
    for fn in (optim.momentum, optim.nesterov):
        doc = fn.__doc__
        assert "optax" in doc and "1-\\beta" in doc and "10 times" in doc
        assert "{note}" not in doc


# ------------------------------------------------------- worked examples ---


def test_course_worked_example_linear_model():
    """y = x w, E = (x w - y)^2, w = 0.5, lr 0.1, samples (2,4), (1,2), (3,6)."""
    opt = optim.sgd(0.1)
    w = jnp.array(0.5)
    state = opt.init(w)
    seen = []
    for x, y in [(2.0, 4.0), (1.0, 2.0), (3.0, 6.0)]:
        g = jax.grad(lambda w, x=x, y=y: (x * w - y) ** 2)(w)
        updates, state = opt.update(g, state, w)
        w = optax.apply_updates(w, updates)
        seen.append(float(w))
    np.testing.assert_allclose(seen, [1.7, 1.76, 2.192], rtol=1e-6)


def test_course_worked_example_parabola():
    """Gradient descent on x^2 from 6 with lr 0.1: 4.8, then 3.84."""
    opt = optim.sgd(0.1)
    x = jnp.array(6.0)
    state = opt.init(x)
    seen = []
    for _ in range(2):
        updates, state = opt.update(jax.grad(lambda x: x**2)(x), state, x)
        x = optax.apply_updates(x, updates)
        seen.append(float(x))
    np.testing.assert_allclose(seen, [4.8, 3.84], rtol=1e-6)
    np.testing.assert_allclose([s**2 for s in seen], [23.04, 14.7456], rtol=1e-6)


# ----------------------------------------------------------- convergence ---

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1),
    "sgd_momentum": lambda: optim.sgd(0.02, momentum=0.9),
    "sgd_nesterov": lambda: optim.sgd(0.02, momentum=0.9, nesterov=True),
    "momentum": lambda: optim.momentum(0.2, beta=0.9),
    "nesterov": lambda: optim.nesterov(0.2, beta=0.9),
    "adagrad": lambda: optim.adagrad(0.5),
    "rmsprop": lambda: optim.rmsprop(0.01),
    "adam": lambda: optim.adam(0.05),
    "adamw": lambda: optim.adamw(0.05, weight_decay=1e-4),
}


def _minimize(opt, loss, w0, steps):
    def step(carry, _):
        w, state = carry
        updates, state = opt.update(jax.grad(loss)(w), state, w)
        w = optax.apply_updates(w, updates)
        return (w, state), loss(w)

    (w, _), losses = jax.lax.scan(step, (w0, opt.init(w0)), None, length=steps)
    return w, losses


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_converges_on_a_parabola(name):
    target = jnp.array([1.0, -2.0, 0.5])
    curvature = jnp.array([1.0, 3.0, 0.5])

    def loss(w):
        return jnp.sum(curvature * (w - target) ** 2)

    w, losses = jax.jit(lambda: _minimize(OPTIMIZERS[name](), loss, jnp.zeros(3), 2000))()
    np.testing.assert_allclose(w, target, atol=2e-3)
    assert float(losses[-1]) < 1e-5 * float(loss(jnp.zeros(3)))


def rosenbrock(w):
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


ROSENBROCK = {  # optimizer, steps allowed to reach a loss below 1e-3
    "sgd": (lambda: optim.sgd(1e-3), 20000),
    "sgd_momentum": (lambda: optim.sgd(1e-3, momentum=0.9), 3000),
    "nesterov": (lambda: optim.nesterov(1e-2, beta=0.9), 3000),
    "rmsprop": (lambda: optim.rmsprop(1e-3, momentum=0.9), 5000),
    "adam": (lambda: optim.adam(0.02), 3000),
}


@pytest.mark.parametrize("name", list(ROSENBROCK))
def test_converges_on_rosenbrock(name):
    make, steps = ROSENBROCK[name]
    w0 = jnp.array([-1.5, 2.0])
    w, losses = jax.jit(lambda: _minimize(make(), rosenbrock, w0, steps))()
    assert float(losses.min()) < 1e-3
    assert float(rosenbrock(w)) < 1e-2
    np.testing.assert_allclose(w, [1.0, 1.0], atol=0.1)


# ------------------------------------------------------------- plumbing ---


@pytest.mark.parametrize("make", [lambda: optim.adam(1e-3),
                                  lambda: optim.sgd(schedules.cosine_decay(0.1, 100), momentum=0.9),
                                  lambda: optim.inject_hyperparams(optim.adamw)(
                                      learning_rate=1e-3)],
                         ids=["adam", "sgd_schedule", "injected_adamw"])
def test_second_jitted_update_does_not_recompile(make, count_compiles):
    opt = make()
    traces = []

    @jax.jit
    def step(params, state, x, y):
        traces.append(1)
        g = jax.grad(mlp_loss)(params, x, y)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state

    params = make_params(jnp.float32)
    x, y = make_data(jnp.float32)
    state = opt.init(params)
    params, state = step(params, state, x, y)
    x_half = x * 0.5
    with count_compiles() as compiles:
        params, state = step(params, state, x_half, y)
    if isinstance(state, optim.InjectHyperparamsState):
        state = optim.set_hyperparams(state, learning_rate=1e-4)
    with count_compiles() as compiles_after_set:
        params, state = step(params, state, x, y)
    assert len(traces) == 1
    assert compiles == [] and compiles_after_set == []


EAGER_OPTIMIZERS = {
    **OPTIMIZERS,
    "rmsprop_centered_debiased": lambda: optim.rmsprop(0.01, centered=True, bias_correction=True),
    "adam_nesterov": lambda: optim.adam(0.01, nesterov=True),
    "adamw_schedules": lambda: optim.adamw(schedules.warmup_cosine_decay(0.0, 0.02, 5, 40),
                                           weight_decay=schedules.exponential_decay(0.1, 10, 0.5)),
}


def test_eager_updates_do_not_recompile_as_the_step_count_grows(count_compiles):
    # Run op by op, every primitive is compiled once per shape, dtype and
    # static parameter. A step count that became a static parameter (the
    # exponent of lax.integer_pow) compiled anew on every step.
    # One cache clear for all optimizers (each clear makes every later test in this process
    # compile its programs again): nothing compiled by an earlier test hides a recompile, and
    # an optimizer checked before can only have compiled what its first step needs, never
    # the primitives of a later step count (else it fails itself).
    jax.clear_caches()
    target = jnp.array([1.0, -2.0, 0.5])
    failures = {}
    for name, make in EAGER_OPTIMIZERS.items():
        opt = make()
        params = {"w": jnp.zeros(3)}  # one small leaf: the first step compiles little
        state = opt.init(params)

        def step(params, state, opt=opt):
            grads = jax.tree.map(lambda w: w - target, params)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        params, state = step(params, state)  # the first step compiles every primitive once
        with count_compiles() as compiles:
            for _ in range(20):
                params, state = step(params, state)
        if compiles:
            failures[name] = len(compiles)
    assert failures == {}, f"compilations in 20 eager steps, per optimizer: {failures}"


@pytest.mark.parametrize("order", ["jaxdl_first", "optax_first"])
@pytest.mark.parametrize("outer", ["optim.chain", "optax.chain"])
def test_jaxdl_and_optax_transforms_chain_in_both_orders(order, outer):
    chain = optim.chain if outer == "optim.chain" else optax.chain
    if order == "jaxdl_first":
        mixed = chain(optim.scale_by_adam(), optax.add_decayed_weights(1e-2), optax.scale(-0.01))
    else:
        mixed = chain(optax.clip_by_global_norm(0.5), optax.trace(0.9),
                      optim.scale_by_learning_rate(0.01))
    ref = (
        optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(1e-2), optax.scale(-0.01))
        if order == "jaxdl_first"
        else optax.chain(optax.clip_by_global_norm(0.5), optax.trace(0.9), optax.scale(-0.01))
    )
    params = make_params(jnp.float32)
    x, y = make_data(jnp.float32)
    with jax.numpy_dtype_promotion("standard"):  # optax's adam needs it
        s1, s2 = mixed.init(params), ref.init(params)
        p1 = p2 = params
        for _ in range(5):
            u1, s1 = jax.jit(mixed.update)(GRAD(p1, x, y), s1, p1)
            u2, s2 = jax.jit(ref.update)(GRAD(p2, x, y), s2, p2)
            p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    assert _rel_diff(p1, p2) < 1e-6


def test_jaxdl_optimizers_work_inside_optax_wrappers():
    """Anywhere optax expects an optimizer: MultiSteps, apply_if_finite, masked."""
    params = make_params(jnp.float32)
    x, y = make_data(jnp.float32)
    g = GRAD(params, x, y)
    with jax.numpy_dtype_promotion("standard"):  # optax's wrappers mix int and float
        acc = optax.MultiSteps(optim.sgd(0.1), every_k_schedule=2)
        s = acc.init(params)
        u, s = acc.update(g, s, params)
        assert all(not leaf.any() for leaf in jax.tree.leaves(u))  # accumulating
        u, s = acc.update(g, s, params)
        np.testing.assert_allclose(u["dense_0"]["kernel"], -0.1 * g["dense_0"]["kernel"], rtol=1e-6)

        safe = optax.apply_if_finite(optim.adam(0.1), max_consecutive_errors=3)
        s = safe.init(params)
        bad = jax.tree.map(lambda a: a * jnp.nan, g)
        u, s = safe.update(bad, s, params)
        assert all(not leaf.any() for leaf in jax.tree.leaves(u))

        masked = optax.masked(optim.sgd(0.1), not_bias(params))
        u, _ = masked.update(g, masked.init(params), params)
        np.testing.assert_allclose(u["dense_1"]["kernel"], -0.1 * g["dense_1"]["kernel"], rtol=1e-6)
        np.testing.assert_array_equal(u["dense_1"]["bias"], g["dense_1"]["bias"])
    assert isinstance(optim.adam(1e-3), optax.GradientTransformation)


def test_chain_forwards_extra_args_to_optax_transforms():
    seen = {}

    def update(updates, state, params=None, *, value=None):
        seen["value"] = value
        return updates, state

    needs_value = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)
    tx = optim.chain(optim.sgd(0.1), needs_value)
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2), value=jnp.array(3.0))
    assert float(seen["value"]) == 3.0


def test_global_norm_clip_keeps_direction():
    tx = optim.clip_by_global_norm(1.0)
    g = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(float(optim.global_norm(u)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(u["a"], [0.6, 0.0], rtol=1e-6)
    small = jax.tree.map(lambda a: a / 10, g)
    u, _ = tx.update(small, tx.init(g))
    np.testing.assert_array_equal(u["a"], small["a"])


# -------------------------------------------------------- low precision ---


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_adam_zero_gradient_keeps_low_precision_params_finite(dtype):
    params = make_params(dtype)
    opt = optim.adam(1e-3)
    state = opt.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    for _ in range(3):
        updates, state = jax.jit(opt.update)(zero, state, params)
        params = optax.apply_updates(params, updates)
    for leaf, upd in zip(jax.tree.leaves(params), jax.tree.leaves(updates), strict=True):
        assert leaf.dtype == dtype and upd.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(leaf)))
        assert not upd.any()
    np.testing.assert_array_equal(
        np.asarray(params["dense_0"]["kernel"], np.float32),
        np.asarray(make_params(dtype)["dense_0"]["kernel"], np.float32),
    )
    # Moments are accumulated in float32.
    assert state[0].mu["dense_0"]["kernel"].dtype == jnp.float32
    assert state[0].nu["dense_0"]["kernel"].dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_low_precision_updates_keep_dtype_and_track_float32(name, dtype):
    p32 = make_params(jnp.float32)
    p_lo = jax.tree.map(lambda a: a.astype(dtype), p32)
    x, y = make_data(jnp.float32)
    g32 = GRAD(p32, x, y)
    g_lo = jax.tree.map(lambda a: a.astype(dtype), g32)
    opt = OPTIMIZERS[name]()
    u32, _ = opt.update(g32, opt.init(p32), p32)
    u_lo, _ = opt.update(g_lo, opt.init(p_lo), p_lo)
    for a, b in zip(jax.tree.leaves(u_lo), jax.tree.leaves(u32), strict=True):
        assert a.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(a)))
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(np.asarray(a, np.float32), b, atol=0.02 * scale + 1e-6)


# ------------------------------------------------------- inject / set lr ---


def test_inject_hyperparams_matches_plain_optimizer_and_optax():
    with jax.enable_x64(True):
        params = make_params(jnp.float64)
        x, y = make_data(jnp.float64)
        injected = optim.inject_hyperparams(optim.adam)(learning_rate=0.01, b1=0.8)
        plain = optim.adam(0.01, b1=0.8)
        ref = optax.inject_hyperparams(optax.adam)(learning_rate=0.01, b1=0.8)
        s1, s2, s3 = injected.init(params), plain.init(params), _ref(ref.init)(params)
        assert s1.hyperparams["learning_rate"].dtype == jnp.float64
        p = params
        # Each update jitted once (op by op, the float64 adam compiles every primitive: the
        # eager path has its own test, test_float64_matches_optax_eagerly).
        update1, update2 = jax.jit(injected.update), jax.jit(plain.update)
        update3 = _ref(jax.jit(ref.update))
        for _ in range(10):
            g = GRAD(p, x, y)
            u1, s1 = update1(g, s1, p)
            u2, s2 = update2(g, s2, p)
            u3, s3 = update3(g, s3, p)
            assert _rel_diff(u1, u2) < 1e-12 and _rel_diff(u1, u3) < 1e-12
            p = optax.apply_updates(p, u1)
        assert int(s1.count) == 10
        assert jax.tree.leaves(s1.inner_state)[0] == 10


def test_set_hyperparams_changes_the_rate_really_used(count_compiles):
    with jax.enable_x64(True):
        params = make_params(jnp.float64)
        x, y = make_data(jnp.float64)
        opt = optim.chain(
            optim.clip_by_global_norm(10.0),
            optim.inject_hyperparams(optim.adam)(learning_rate=0.01),
        )
        state = opt.init(params)
        update = jax.jit(opt.update)
        for _ in range(3):
            g = GRAD(params, x, y)
            u, state = update(g, state, params)
            params = optax.apply_updates(params, u)
        g = GRAD(params, x, y)
        u_before, _ = update(g, state, params)
        lowered = optim.set_hyperparams(state, learning_rate=0.001)
        assert float(optim.get_hyperparams(lowered)["learning_rate"]) == 0.001
        assert float(optim.get_hyperparams(state)["learning_rate"]) == 0.01  # pure
        with count_compiles() as compiles:
            u_after, _ = update(g, lowered, params)
        assert compiles == []
        for a, b in zip(jax.tree.leaves(u_after), jax.tree.leaves(u_before), strict=True):
            np.testing.assert_allclose(a, 0.1 * b, rtol=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        optim.set_hyperparams(state, momentum=0.5)
    with pytest.raises(ValueError, match="inject_hyperparams"):
        optim.set_hyperparams(optim.adam(1e-3).init(jnp.zeros(2)), learning_rate=0.1)


def test_set_hyperparams_works_on_optax_injected_state():
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    state = optim.set_hyperparams(opt.init(jnp.zeros(2)), learning_rate=0.5)
    u, _ = _ref(opt.update)(jnp.ones(2), state)
    np.testing.assert_allclose(u, [-0.5, -0.5])


def test_injected_schedule_is_recorded_each_step():
    lr = schedules.exponential_decay(0.1, 1, 0.5)
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=lr, momentum=0.0)
    w = jnp.ones(1)
    state = opt.init(w)
    for k in range(4):
        u, state = opt.update(jnp.ones(1), state, w)
        np.testing.assert_allclose(u, [-0.1 * 0.5**k], rtol=1e-6)
        np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1 * 0.5**k, rtol=1e-6)


# ------------------------------------------------------------ validation ---


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: optim.adam(1e-3, b1=1.0), ValueError, "b1"),
        (lambda: optim.adam(1e-3, b2=-0.1), ValueError, "b2"),
        (lambda: optim.sgd(-0.1), ValueError, "learning_rate"),
        (lambda: optim.sgd("fast"), TypeError, "learning_rate"),
        (lambda: optim.sgd(jnp.ones(3)), ValueError, "scalar"),
        (lambda: optim.sgd(0.1, momentum=1.5), ValueError, "momentum"),
        (lambda: optim.momentum(0.1, beta=2.0), ValueError, "beta"),
        (lambda: optim.rmsprop(0.1, eps=-1.0), ValueError, "eps"),
        (lambda: optim.adagrad(0.1, initial_accumulator_value=-1.0), ValueError,
         "initial_accumulator_value"),
        (lambda: optim.adamw(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: optim.clip(-1.0), ValueError, "max_delta"),
        (lambda: optim.clip_by_global_norm(0.0), ValueError, "max_norm"),
        (lambda: optim.trace(float("nan")), ValueError, "decay"),
        (lambda: optim.chain(optim.adam), TypeError, "optim.adam\\(1e-3\\)"),
        (lambda: optim.chain(optim.sgd(0.1), 3), TypeError, "argument 1"),
        (lambda: optim.inject_hyperparams(optim.adam, static_args="lr"), ValueError, "static_args"),
    ],
)
def test_bad_arguments_raise_documented_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_calls_raise_documented_errors():
    with pytest.raises(ValueError, match="params=None"):
        opt = optim.adamw(0.1)
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))
    with pytest.raises(TypeError, match="floating"):
        optim.adam(0.1).init({"w": jnp.ones(2, jnp.int32)})
    with pytest.raises(ValueError, match="tuple of 2 states"):
        opt = optim.adam(0.1)
        opt.update(jnp.ones(2), optim.sgd(0.1).init(jnp.ones(2)))


def test_every_optimizer_documents_math_and_paper():
    papers = {
        "sgd": "Polyak", "momentum": "Polyak", "nesterov": "Nesterov",
        "adagrad": "Duchi", "rmsprop": "Hinton", "adam": "Kingma",
        "adamw": "Loshchilov",
    }
    for name, author in papers.items():
        doc = getattr(optim, name).__doc__
        assert author in doc and ".. math::" in doc and ">>>" in doc, name
