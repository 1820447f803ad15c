"""Tests for jaxdl.gradcheck.

Correct derivatives must pass with a wide margin; deliberately wrong ones
(custom_vjp / custom_jvp rules off by 1% or by a sign) must fail and be pinned
to exactly the leaf that carries the bug.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.gradcheck import (
    GradcheckError,
    GradcheckReport,
    LeafCheck,
    autodiff_along,
    central_differences,
    gradcheck,
    make_probes,
    probe_directions,
    probe_step,
    score_probes,
)

MLP_PATHS = ["dense_0/bias", "dense_0/kernel", "dense_1/bias", "dense_1/kernel"]


# ---------------------------------------------------------------- fixtures


def _init_mlp(seed, sizes=(5, 16, 3)):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return jnp.asarray(rng.standard_normal(shape), jnp.float32)

    return {
        "dense_0": {"kernel": normal(*sizes[:2]) / np.sqrt(sizes[0]),
                    "bias": 0.1 * normal(sizes[1])},
        "dense_1": {"kernel": normal(*sizes[1:]) / np.sqrt(sizes[1]),
                    "bias": 0.1 * normal(sizes[2])},
    }


def _mlp_loss(params, x, y, matmul_1=jnp.matmul):
    """Softmax cross-entropy of a tanh MLP; `matmul_1` is used by dense_1 only."""
    h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
    logits = matmul_1(h, params["dense_1"]["kernel"]) + params["dense_1"]["bias"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.fixture(scope="module")
def mlp_data():
    params = _init_mlp(0)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((12, 5)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=12), jnp.int32)
    return params, x, y


def _matmul_with_bad_kernel_grad(factor):
    """x @ w whose backward for w is multiplied by `factor` (the x part is right)."""

    @jax.custom_vjp
    def matmul(x, w):
        return x @ w

    def fwd(x, w):
        return x @ w, (x, w)

    def bwd(res, g):
        x, w = res
        return g @ w.T, factor * (x.T @ g)

    matmul.defvjp(fwd, bwd)
    return matmul


def _scale_grad(factor):
    """Identity whose backward multiplies the cotangent by `factor`."""

    @jax.custom_vjp
    def op(w):
        return w

    op.defvjp(lambda w: (w, None), lambda _, g: (factor * g,))
    return op


def _failure_lines(message):
    """The per-leaf lines of a GradcheckError message (before the table)."""
    head = message.split("\n\n")[0].splitlines()
    return [line.strip() for line in head[1:]]


# ---------------------------------------------------------------- correct code passes


def test_quadratic_passes_with_tiny_error():
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    b = jnp.array([1.0, -2.0, 0.5])

    def f(x, a, b):
        return 0.5 * x @ a @ x + b @ x

    report = gradcheck(f, jnp.array([0.3, -1.2, 2.0]), a, b, argnums=0)
    assert isinstance(report, GradcheckReport) and report.passed
    (row,) = report.rows
    assert row.path == "args[0]" and row.shape == (3,)
    # 3 random directions + the gradient direction + 3 coordinates.
    assert row.num_checks == 3 + 1 + 3
    # A quadratic has no third derivative: only float64 rounding is left.
    assert row.max_rel_error < 1e-8
    assert row.error_ratio < 1e-3
    # F is evaluated in float64, independently recomputed here in numpy.
    xn, an, bn = np.array([0.3, -1.2, 2.0]), np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert report.value == pytest.approx(0.5 * xn @ an @ xn + bn @ xn, rel=1e-7)


def test_mlp_passes_with_readable_paths_and_counts(mlp_data):
    params, x, y = mlp_data
    report = gradcheck(_mlp_loss, params, x, y, argnums=0)
    assert report.passed
    assert [row.path for row in report.rows] == MLP_PATHS
    counts = {row.path: row.num_checks for row in report.rows}
    # bias (16,) and (3,) are small: every coordinate; kernels (80, 48 > 32): directions.
    assert counts == {"dense_0/bias": 4 + 16, "dense_0/kernel": 4,
                      "dense_1/bias": 4 + 3, "dense_1/kernel": 4}
    for row in report.rows:
        assert row.max_rel_error < 1e-6, row
        assert row.error_ratio < 1e-2, row
        assert row.dtype == "float32" and row.passed
    assert report.failures == ()


def test_jitted_f_and_all_args_differentiated(mlp_data):
    params, x, y = mlp_data
    report = gradcheck(jax.jit(_mlp_loss), params, x, y)
    # Two args are differentiated (y is integer): paths get an args[i] prefix.
    assert [row.path for row in report.rows] == [f"args[0]/{p}" for p in MLP_PATHS] + ["args[1]"]
    assert report.passed


def test_array_valued_function_passes():
    w = _normal(3, (4, 6))

    def f(w, x):
        return jnp.sin(x @ w) * jnp.exp(-0.1 * w[0])  # shape (batch, 6)

    report = gradcheck(f, w, _normal(4, (7, 4)))
    assert report.passed and report.max_rel_error < 1e-6
    assert report.value_scale > abs(report.value) > 0


def test_array_output_wrong_for_one_element_is_caught():
    # Backward drops the cotangent of one single output element: only a check
    # that weighs every output element (F = <r, y>) can see it.
    @jax.custom_vjp
    def square(z):
        return z**2

    def bwd(z, g):
        return (2 * z * g.at[1, 2].set(0.0),)

    square.defvjp(lambda z: (z**2, z), bwd)
    x = _normal(5, (3, 4))
    ok = gradcheck(lambda x: x**2, x)
    assert ok.passed
    bad = gradcheck(square, x, raise_on_failure=False)
    assert not bad.passed and bad.rows[0].max_rel_error > 1e-3


def test_forward_mode_passes(mlp_data):
    params, x, y = mlp_data
    report = gradcheck(_mlp_loss, params, x, y, argnums=0, mode="fwd")
    assert report.passed and report.mode == "fwd"
    counts = {row.path: row.num_checks for row in report.rows}
    # No gradient direction in forward mode.
    assert counts["dense_0/kernel"] == 3 and counts["dense_1/bias"] == 3 + 3


def test_forward_mode_catches_wrong_jvp_rule():
    @jax.custom_jvp
    def softplus(z):
        return jnp.logaddexp(z, 0.0)

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        (z,), (t,) = primals, tangents
        return softplus(z), 0.99 * jax.nn.sigmoid(z) * t  # 1% too small

    params = {"a": jnp.linspace(-1.0, 1.0, 50), "b": jnp.linspace(0.0, 2.0, 50)}

    def f(p):
        return jnp.sum(softplus(p["a"])) + jnp.sum(jnp.cos(p["b"]))

    for mode in ("fwd", "rev"):  # rev transposes the same (wrong) linear rule
        report = gradcheck(f, params, mode=mode, raise_on_failure=False)
        assert [row.path for row in report.failures] == ["a"], (mode, str(report))
        assert report["a"].max_rel_error == pytest.approx(0.01, rel=0.05)
        assert report["b"].max_rel_error < 1e-6


# ---------------------------------------------------------------- wrong derivatives fail


@pytest.mark.parametrize("factor, rel_error", [(1.01, 0.01 / 1.01), (-1.0, 2.0)])
def test_wrong_kernel_gradient_names_exactly_that_leaf(mlp_data, factor, rel_error):
    params, x, y = mlp_data
    buggy = _matmul_with_bad_kernel_grad(factor)

    def loss(p, x, y):
        return _mlp_loss(p, x, y, matmul_1=buggy)

    with pytest.raises(GradcheckError) as info:
        gradcheck(loss, params, x, y, argnums=0)
    report = info.value.report
    assert [row.path for row in report.failures] == ["dense_1/kernel"]
    row = report["dense_1/kernel"]
    assert row.max_rel_error == pytest.approx(rel_error, rel=0.02)
    assert row.error_ratio > 50  # fails by far, not marginally
    for path in ("dense_0/kernel", "dense_0/bias", "dense_1/bias"):
        assert report[path].passed and report[path].max_rel_error < 1e-6
    # The message lists exactly the failing leaf, with its errors.
    lines = _failure_lines(str(info.value))
    assert len(lines) == 1 and lines[0].startswith("dense_1/kernel: abs err ")
    assert f"rel err {row.max_rel_error:.3e}" in lines[0]
    assert "FAIL" in str(info.value)  # the table follows


def test_one_percent_scale_in_big_leaf_is_caught():
    w = _normal(6, (200, 300)) / 15.0
    x = _normal(7, (8, 200))
    op = _scale_grad(1.01)

    def f(w, x, op):
        return jnp.sum(jnp.tanh(x @ op(w)))

    good = gradcheck(lambda w, x: f(w, x, lambda v: v), w, x, argnums=0)
    assert good.rows[0].max_rel_error < 1e-8
    bad = gradcheck(lambda w, x: f(w, x, op), w, x, argnums=0, raise_on_failure=False)
    (row,) = bad.failures
    assert row.shape == (200, 300) and row.num_checks == 4
    assert row.max_rel_error == pytest.approx(0.01 / 1.01, rel=0.02)
    # In 60,000 dimensions random directions barely see a uniform scale error;
    # the probe along the leaf's own gradient is what exposes it.
    assert row.worst.startswith("gradient direction")


def test_missing_gradient_is_caught_and_unused_leaf_passes():
    p = {"a": jnp.array([1.0, 2.0, 3.0]), "b": jnp.ones(4), "unused": jnp.ones(2)}

    def f(p):  # stop_gradient hides b's real dependence from autodiff
        return jnp.sum(p["a"] ** 2) + jnp.sum(jax.lax.stop_gradient(p["b"]) ** 2)

    report = gradcheck(f, p, raise_on_failure=False)
    assert [row.path for row in report.failures] == ["b"]
    assert report["b"].max_rel_error == pytest.approx(1.0)
    assert report["unused"].passed and report["unused"].max_abs_error == 0.0


def test_nonfinite_finite_difference_fails_with_hint():
    report = gradcheck(lambda x: jnp.sum(jnp.log(x)), jnp.array([1e-7, 1.0]),
                       raise_on_failure=False)
    (row,) = report.failures
    assert row.max_rel_error == np.inf and "smaller `eps`" in row.worst


# ---------------------------------------------------------------- environment and report


@pytest.mark.parametrize("x64", [False, True])
def test_x64_flag_unchanged(mlp_data, x64):
    params, x, y = mlp_data
    with jax.enable_x64(x64):
        before = jax.config.jax_enable_x64
        gradcheck(lambda w: jnp.sum(jnp.sin(w)), params["dense_0"]["kernel"])
        assert jax.config.jax_enable_x64 == before == x64
        assert jnp.ones(2).dtype == (jnp.float64 if x64 else jnp.float32)
    # Caller's arrays are untouched (no in-place casting).
    assert params["dense_0"]["kernel"].dtype == jnp.float32


def test_report_string_lists_every_leaf(mlp_data):
    params, x, y = mlp_data
    report = gradcheck(_mlp_loss, params, x, y, argnums=0)
    text = str(report)
    lines = text.splitlines()
    assert lines[1].split()[:2] == ["leaf", "shape"]
    for path in MLP_PATHS:
        assert sum(line.startswith(path + " ") for line in lines) == 1
    assert lines[-1].startswith("PASS")
    # Aligned: all table lines put the status column at the same offset.
    rows = lines[3:-1]
    assert len({line.rindex(" ok") for line in rows}) == 1
    assert all(isinstance(getattr(r, k), float) for r in report.rows
               for k in ("max_abs_error", "max_rel_error", "step"))

    failing = gradcheck(lambda w: jnp.sum(_scale_grad(-1.0)(w) ** 2), jnp.ones(3),
                        raise_on_failure=False)
    assert str(failing).splitlines()[-1].startswith("FAIL") and "args[0]" in str(failing)


def test_integer_leaves_and_args_are_ignored(mlp_data):
    params, x, y = mlp_data
    tree = {"net": params, "step": jnp.array(3, jnp.int32), "mask": jnp.array([True, False])}

    def f(tree, x, y, scale):
        assert isinstance(scale, int)  # Python scalars stay static
        return scale * _mlp_loss(tree["net"], x, y) + 0.0 * tree["step"].astype(x.dtype)

    report = gradcheck(f, tree, x, y, 2, argnums=(0, 2, 3))
    assert report.passed
    assert [row.path for row in report.rows] == [f"net/{p}" for p in MLP_PATHS]


def test_float32_data_is_cast_with_float64_params(mlp_data):
    params, x, y = mlp_data
    params64 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    # Under strict dtype promotion float32 x with float64 params would raise;
    # gradcheck casts every floating leaf, differentiated or not.
    report = gradcheck(_mlp_loss, params64, np.asarray(x), y, argnums=0)
    assert report.passed and {row.dtype for row in report.rows} == {"float64"}


def test_seed_gives_deterministic_report():
    p = {"w": _normal(8, (6, 7)), "b": _normal(9, (7,))}

    def f(p):
        return jnp.tanh(jnp.ones(6) @ p["w"] + p["b"])  # array output: r is seeded too

    a, b, c = (gradcheck(f, p, seed=s) for s in (3, 3, 4))
    assert a == b and a.value != c.value


# ---------------------------------------------------------------- bad arguments


def _sq(x):
    return jnp.sum(x**2)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"eps": 0.0}, ValueError, ["`eps`", "> 0", "0.0"]),
        ({"eps": -1e-6}, ValueError, ["`eps`", "-1e-06"]),
        ({"eps": float("inf")}, ValueError, ["`eps`", "inf"]),
        ({"eps": "1e-6"}, TypeError, ["`eps`", "'1e-6'", "str"]),
        ({"rtol": -1.0}, ValueError, ["`rtol`", ">= 0", "-1.0"]),
        ({"atol": float("nan")}, ValueError, ["`atol`", "nan"]),
        ({"atol": True}, TypeError, ["`atol`", "True"]),
        ({"num_directions": -1}, ValueError, ["`num_directions`", "-1"]),
        ({"max_coords": 2.5}, TypeError, ["`max_coords`", "2.5"]),
        ({"mode": "central"}, ValueError, ["`mode`", "'rev'", "'central'"]),
        ({"argnums": 1}, ValueError, ["`argnums`", "1"]),
        ({"argnums": "0"}, TypeError, ["`argnums`", "'0'"]),
        ({"seed": -1}, ValueError, ["`seed`", "-1"]),
        ({"raise_on_failure": "yes"}, TypeError, ["`raise_on_failure`", "'yes'"]),
        ({"num_directions": 0, "max_coords": 0, "mode": "fwd"}, ValueError,
         ["args[0]", "no checks", "num_directions"]),
    ],
)
def test_bad_settings_raise(kwargs, error, words):
    with pytest.raises(error) as info:
        gradcheck(_sq, jnp.ones(3), **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_closed_over_float32_constant_gets_a_hint():
    a = jnp.ones(3)  # float32, closed over: stays float32 under strict promotion
    with pytest.raises(jax.dtypes.TypePromotionError, match="pass them to gradcheck as extra"):
        gradcheck(lambda x: jnp.sum(a * x), jnp.ones(3))


def test_bad_function_and_args_raise():
    with pytest.raises(TypeError, match="`f` must be callable"):
        gradcheck("not a function", jnp.ones(3))
    with pytest.raises(ValueError, match="no floating-point leaves"):
        gradcheck(lambda n: jnp.sum(n * 1.0), jnp.arange(3))
    with pytest.raises(ValueError, match="no floating-point leaves"):
        gradcheck(lambda a, b: jnp.sum(a) + b.sum(), jnp.ones(2), jnp.arange(2), argnums=1)
    with pytest.raises(TypeError, match="floating-point values"):
        gradcheck(lambda x: jnp.argmax(x), jnp.ones(3))


def test_nonfinite_value_and_gradient_raise():
    with pytest.raises(ValueError, match="not finite at the given args"):
        gradcheck(lambda x: jnp.sum(jnp.log(x)), jnp.array([-1.0, 1.0]))
    params = {"layer": {"w": jnp.array([0.0, 1.0]), "b": jnp.ones(2)}}
    with pytest.raises(ValueError, match="leaf 'layer/w' has 1 non-finite"):
        gradcheck(lambda p: jnp.sum(jnp.sqrt(p["layer"]["w"]) + p["layer"]["b"]), params)


def test_error_carries_report_and_is_assertion_error():
    with pytest.raises(AssertionError) as info:
        gradcheck(lambda w: jnp.sum(jnp.sin(_scale_grad(1.01)(w))), jnp.ones((2, 3)))
    assert isinstance(info.value, GradcheckError)
    assert isinstance(info.value.report.rows[0], LeafCheck)
    assert info.value.report.failures[0].path == "args[0]"


# ---------------------------------------------------------------- the example


def test_example_catches_its_bug(capsys):
    import pathlib
    import runpy

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "gradient_check.py"
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "PASS: 4 leaves" in out
    assert "leaves that failed: ['dense_1/kernel']" in out


# ---------------------------------------------------------------- the method's steps, alone


def test_probe_directions_order_kinds_and_unit_norm():
    theta = np.zeros((2, 3))
    grad = np.arange(6.0).reshape(2, 3)
    kinds, dirs = probe_directions(theta, grad, 2, 6, np.random.default_rng(0))
    assert kinds[:3] == ["random direction", "random direction", "gradient direction"]
    assert kinds[3:] == [f"coordinate {(i, j)}" for i in range(2) for j in range(3)]
    np.testing.assert_allclose([np.linalg.norm(d) for d in dirs], 1.0, rtol=1e-15)
    np.testing.assert_allclose(dirs[2], grad / np.sqrt(55.0), rtol=1e-15)  # 0+1+4+9+16+25
    np.testing.assert_array_equal(dirs[3 + 4], [[0, 0, 0], [0, 1, 0]])  # coordinate (1, 1)
    # Too many elements for coordinates, a zero gradient, an empty leaf:
    assert probe_directions(theta, grad, 1, 5, np.random.default_rng(0))[0] == [
        "random direction", "gradient direction"]
    assert probe_directions(theta, 0 * grad, 0, 0, np.random.default_rng(0)) == ([], [])
    assert probe_directions(np.zeros((0, 3)), None, 3, 32, np.random.default_rng(0)) == ([], [])


def test_probe_step_and_points_by_hand():
    assert probe_step(np.array([0.1, -0.2]), 1e-6) == 1e-6  # rms < 1: h = eps
    assert probe_step(np.full((2, 2), -4.0), 1e-6) == pytest.approx(4e-6, rel=1e-15)
    theta = np.array([[1.0, 2.0], [3.0, 4.0]])
    d = np.array([[0.6, 0.0], [0.0, -0.8]])
    p = make_probes(theta, ["random direction"], [d], 0.5)
    np.testing.assert_array_equal(p.points[0], [[1.3, 2.0], [3.0, 3.6]])
    np.testing.assert_array_equal(p.points[1], [[0.7, 2.0], [3.0, 4.4]])
    np.testing.assert_allclose(p.directions[0], d, rtol=1e-14)
    assert (p.kinds, p.step) == (("random direction",), 0.5)
    assert make_probes(np.zeros(0), [], [], 1e-6) is None


def test_probe_direction_is_reread_from_the_rounded_points():
    theta = np.array([1e8])  # theta ± 1e-6 rounds to a multiple of 2**-26 ≈ 1.5e-8
    p = make_probes(theta, ["coordinate 0"], [np.array([1.0])], 1e-6)
    plus, minus = p.points
    assert p.directions[0, 0] == (plus[0] - minus[0]) / 2e-6
    assert p.directions[0, 0] != 1.0


def test_central_differences_are_exact_on_a_quadratic():
    # F(θ) = ½ θᵀAθ + bᵀθ: central differences have no truncation error on a quadratic,
    # so even a large step matches ∇F·d = (Aθ + b)·d to rounding.
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 6))
    a, b = m + m.T, rng.standard_normal(6)
    theta = rng.standard_normal((2, 3))

    def F(t):
        t = t.reshape(-1)
        return 0.5 * t @ a @ t + b @ t

    grad = (a @ theta.reshape(-1) + b).reshape(2, 3)
    kinds, dirs = probe_directions(theta, grad, 3, 6, rng)
    p = make_probes(theta, kinds, dirs, 0.1)
    fd = central_differences([F(x) for x in p.points], p.step)
    expected = p.directions.reshape(len(kinds), -1) @ grad.reshape(-1)
    assert fd.shape == (10,)
    np.testing.assert_allclose(fd, expected, rtol=1e-9, atol=1e-12)


def test_autodiff_along_values_and_scales_by_hand():
    p = make_probes(np.zeros(2), ["random direction", "coordinate 1"],
                    [np.array([0.6, 0.8]), np.array([0.0, 1.0])], 1e-6)
    ad, scale = autodiff_along(np.array([3.0, -4.0]), p)
    np.testing.assert_allclose(ad, [0.6 * 3 - 0.8 * 4, -4.0], rtol=1e-9)
    np.testing.assert_allclose(scale, [5.0, 4.0], rtol=1e-9)  # ||g||·||d||, |g_1|·||d||


def test_score_probes_on_hand_worked_numbers():
    s = score_probes([1.0, 2.0, 0.0, 3.0], [1.0, 2.002, 1e-13, np.nan], [1.0, 2.0, 0.0, 3.0],
                     atol=1e-8, rtol=1e-4, tiny=1e-4)
    # probe 1: |ad - fd| = 0.002, scale = max(2, 2.002), tol = 1e-8 + 1e-4 * 2.002
    np.testing.assert_allclose(s.err[:3], [0.0, 0.002, 1e-13], rtol=1e-9, atol=1e-20)
    np.testing.assert_allclose(s.rel[:3], [0.0, 0.002 / 2.002, 1e-13 / 1e-4], rtol=1e-9)
    np.testing.assert_allclose(s.ratio[:3], [0.0, 0.002 / 2.0021e-4, 1e-13 / (1e-8 + 1e-17)],
                               rtol=1e-9)
    # probe 3: a non-finite finite difference fails with infinite errors and is the worst
    assert np.isinf(s.err[3]) and np.isinf(s.rel[3]) and np.isinf(s.ratio[3])
    assert (s.passed, s.worst) == (False, 3)
    ok = score_probes([1.0, -2.0], [1.00005, -2.0], [1.0, 2.0], atol=1e-8, rtol=1e-4, tiny=1e-4)
    assert ok.passed and ok.worst == 0
    np.testing.assert_allclose(ok.ratio[0], 5e-5 / (1e-8 + 1e-4 * 1.00005), rtol=1e-6)
