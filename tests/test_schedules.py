"""jaxdl.optim.schedules against optax's namesakes and values worked by hand.

optax's schedules run under standard dtype promotion (several of them mix an
int32 count with Python floats, which strict promotion rejects); jaxdl's run
under the strict promotion set by conftest.py.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl.optim import schedules

PAIRS = [
    ("constant", lambda: schedules.constant(0.3), lambda: optax.constant_schedule(0.3)),
    ("exponential", lambda: schedules.exponential_decay(0.1, 7, 0.6),
     lambda: optax.exponential_decay(0.1, 7, 0.6)),
    ("exponential_begin_staircase_end",
     lambda: schedules.exponential_decay(0.1, 5, 0.5, transition_begin=10, staircase=True,
                                         end_value=0.01),
     lambda: optax.exponential_decay(0.1, 5, 0.5, transition_begin=10, staircase=True,
                                     end_value=0.01)),
    ("exponential_growth_capped", lambda: schedules.exponential_decay(1e-3, 4, 1.5, end_value=0.02),
     lambda: optax.exponential_decay(1e-3, 4, 1.5, end_value=0.02)),
    ("piecewise", lambda: schedules.piecewise_constant(0.1, {10: 0.5, 25: 0.1, 40: 3.0}),
     lambda: optax.piecewise_constant_schedule(0.1, {10: 0.5, 25: 0.1, 40: 3.0})),
    ("piecewise_empty", lambda: schedules.piecewise_constant(0.7),
     lambda: optax.piecewise_constant_schedule(0.7)),
    ("cosine", lambda: schedules.cosine_decay(0.1, 50),
     lambda: optax.cosine_decay_schedule(0.1, 50)),
    ("cosine_alpha_exponent", lambda: schedules.cosine_decay(0.2, 30, alpha=0.05, exponent=2.0),
     lambda: optax.cosine_decay_schedule(0.2, 30, alpha=0.05, exponent=2.0)),
    ("warmup_cosine", lambda: schedules.warmup_cosine_decay(0.0, 0.1, 10, 50),
     lambda: optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 50)),
    ("warmup_cosine_end_exponent",
     lambda: schedules.warmup_cosine_decay(0.01, 0.3, 7, 45, end_value=0.001, exponent=1.5),
     lambda: optax.warmup_cosine_decay_schedule(0.01, 0.3, 7, 45, end_value=0.001, exponent=1.5)),
    ("warmup_cosine_no_warmup", lambda: schedules.warmup_cosine_decay(0.1, 0.1, 0, 20),
     lambda: optax.warmup_cosine_decay_schedule(0.1, 0.1, 0, 20)),
]
IDS = [p[0] for p in PAIRS]
COUNTS = np.arange(0, 70, dtype=np.int32)


def _reference(make_ref, counts):
    with jax.numpy_dtype_promotion("standard"):
        return make_ref()(counts)


def _assert_same(ours, ref, rtol):
    ours, ref = jnp.asarray(ours), jnp.asarray(ref)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(ref, np.float64),
                               rtol=rtol, atol=0)


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_schedule_equals_optax_eager_and_jitted(pair, x64):
    """Same values and dtype as optax, evaluated the same way (XLA's vectorized
    cos/pow can round differently from its scalar ones, so each mode is
    compared with the same mode of the reference)."""
    _, make_ours, make_ref = pair
    rtol = 1e-12 if x64 else 1e-6
    with jax.enable_x64(x64):
        ours, ref = make_ours(), make_ref()
        counts = jnp.asarray(COUNTS)
        _assert_same(ours(counts), _reference(make_ref, counts), rtol)
        with jax.numpy_dtype_promotion("standard"):
            ref_jitted = jax.jit(ref)(counts)
        _assert_same(jax.jit(ours)(counts), ref_jitted, rtol)
        for k in (0, 10, 69):
            count = jnp.asarray(k, jnp.int32)
            _assert_same(ours(count), _reference(make_ref, count), rtol)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_schedule_accepts_python_int_counts(pair):
    _, make_ours, make_ref = pair
    with jax.enable_x64(True):
        for k in (0, 3, 10, 27, 100):
            np.testing.assert_allclose(
                float(make_ours()(k)), float(_reference(make_ref, k)), rtol=1e-12
            )


def test_values_worked_by_hand():
    exp = schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
    assert [float(exp(k)) for k in (0, 10, 20, 5)] == pytest.approx([1.0, 0.5, 0.25, 0.5**0.5])
    stair = schedules.exponential_decay(1.0, 10, 0.5, transition_begin=5, staircase=True)
    assert ([float(stair(k)) for k in (0, 5, 14, 15, 25)]
            == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.25]))
    floor = schedules.exponential_decay(1.0, 1, 0.1, end_value=0.05)
    assert float(floor(10)) == pytest.approx(0.05)
    piece = schedules.piecewise_constant(1.0, {3: 0.5, 6: 0.5})
    assert [float(piece(k)) for k in range(8)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    cos = schedules.cosine_decay(2.0, 100, alpha=0.1)
    expected = [2.0 * (0.9 * 0.5 * (1 + math.cos(math.pi * k / 100)) + 0.1)
                for k in (0, 25, 50, 100, 500)]
    assert [float(cos(k)) for k in (0, 25, 50, 100, 500)] == pytest.approx(expected, rel=1e-6)
    warm = schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=4, decay_steps=12, end_value=0.2)
    values = [float(warm(k)) for k in range(14)]
    assert values[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert values[8] == pytest.approx(0.2 + 0.8 * 0.5)
    assert values[12:] == pytest.approx([0.2, 0.2])
    assert float(schedules.constant(0.1)(10**6)) == pytest.approx(0.1)


def test_schedule_in_jitted_optimizer_does_not_recompile():
    from jaxdl import optim

    opt = optim.sgd(schedules.warmup_cosine_decay(0.0, 1.0, 2, 10))
    traces = []

    @jax.jit
    def update(g, state):
        traces.append(1)
        return opt.update(g, state)

    state = opt.init(jnp.zeros(1))
    seen = []
    for _ in range(12):
        u, state = update(jnp.ones(1), state)
        seen.append(-float(u[0]))
    assert len(traces) == 1
    expected = [float(schedules.warmup_cosine_decay(0.0, 1.0, 2, 10)(k)) for k in range(12)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: schedules.exponential_decay(0.1, 0, 0.5), ValueError, "transition_steps"),
        (lambda: schedules.exponential_decay(0.1, 2.5, 0.5), TypeError, "transition_steps"),
        (lambda: schedules.exponential_decay(0.1, 10, 0.0), ValueError, "decay_rate"),
        (lambda: schedules.exponential_decay(0.1, 10, 0.5, transition_begin=-1), ValueError,
         "transition_begin"),
        (lambda: schedules.piecewise_constant(0.1, {5: -0.5}), ValueError, "scale"),
        (lambda: schedules.piecewise_constant(0.1, {-5: 0.5}), ValueError, "boundary"),
        (lambda: schedules.cosine_decay(0.1, 0), ValueError, "decay_steps"),
        (lambda: schedules.warmup_cosine_decay(0.0, 0.1, 10, 10), ValueError,
         "exceed warmup_steps"),
        (lambda: schedules.warmup_cosine_decay(0.0, 0.1, -1, 10), ValueError, "warmup_steps"),
        (lambda: schedules.constant("0.1"), TypeError, "value"),
    ],
)
def test_bad_arguments_raise_documented_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()
