"""Tests for jaxdl.losses against hand-worked numbers and numpy references."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdl import losses

F32_TOL = 1e-6  # plain float32 arithmetic
EXP_TOL = 1e-5  # float32 with exp/log

RNG = np.random.default_rng(0)


def _softmax_np(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _close(actual, expected, tol):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# Values against hand-worked and numpy references
# ---------------------------------------------------------------------------


def test_course_worked_example_categorical_and_sparse():
    # q = [0.1, 0.3, 0.6], true class 1 -> loss = -log 0.3.
    q = jnp.array([[0.1, 0.3, 0.6]])
    expected = -np.log(0.3)
    cat = losses.categorical_crossentropy(q, jnp.array([[0.0, 1.0, 0.0]]), from_logits=False)
    sparse = losses.sparse_categorical_crossentropy(q, jnp.array([1]), from_logits=False)
    assert cat.shape == (1,) and sparse.shape == (1,)
    _close(cat, [expected], EXP_TOL)
    _close(sparse, [expected], EXP_TOL)
    # The same distribution given as logits (log q) must give the same loss.
    logits = jnp.log(q)
    _close(losses.sparse_categorical_crossentropy(logits, jnp.array([1])), [expected], EXP_TOL)


def test_mean_squared_error_course_formula():
    # E = (1/n) * sum_i (y_i - y'_i)^2 per example.
    y_hat = jnp.array([[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]])
    y = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    # Row 0: (0.25 + 0 + 4) / 3; row 1: (4 + 0 + 9) / 3.
    _close(losses.mean_squared_error(y_hat, y), [4.25 / 3, 13.0 / 3], F32_TOL)


def test_sum_squared_error_has_half_factor():
    y_hat = jnp.array([[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]])
    y = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    _close(losses.sum_squared_error(y_hat, y), [0.5 * 4.25, 0.5 * 13.0], F32_TOL)
    # Its gradient is the residual y_hat - y (the reason for the 1/2).
    g = jax.grad(lambda p: jnp.sum(losses.sum_squared_error(p, y)))(y_hat)
    _close(g, y_hat - y, F32_TOL)


def test_mean_absolute_error_by_hand():
    y_hat = jnp.array([[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]])
    y = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    _close(losses.mean_absolute_error(y_hat, y), [2.5 / 3, 5.0 / 3], F32_TOL)


def test_mean_absolute_error_gradient_is_sign_and_zero_when_exact():
    y_hat = jnp.array([[0.5, 1.0, -1.0, 3.0]])
    y = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    g = jax.grad(lambda p: jnp.sum(losses.mean_absolute_error(p, y)))(y_hat)
    _close(g, [[-0.25, 0.0, -0.25, 0.25]], F32_TOL)


def test_huber_quadratic_inside_linear_outside():
    y_hat = jnp.array([[0.5, -3.0, 1.0, 0.0]])
    y = jnp.zeros((1, 4))
    # delta=1: 0.5*0.25, 1*(3-0.5), 0.5*1 (boundary), 0.
    expected = (0.125 + 2.5 + 0.5 + 0.0) / 4
    _close(losses.huber(y_hat, y), [expected], F32_TOL)
    # delta=2: 0.125, 2*(3-1), 0.5, 0.
    expected2 = (0.125 + 4.0 + 0.5 + 0.0) / 4
    _close(losses.huber(y_hat, y, delta=2.0), [expected2], F32_TOL)


def _huber_np(p, y, delta):
    e = np.abs(np.asarray(p, np.float64) - np.asarray(y, np.float64))
    return np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta)).mean(axis=1)


@pytest.mark.parametrize("delta", [None, 1.0, 0.5, 1.5])
def test_huber_matches_numpy_reference_on_random_errors(delta):
    p = RNG.normal(size=(6, 5)).astype(np.float32) * 3
    y = RNG.normal(size=(6, 5)).astype(np.float32)
    got = losses.huber(p, y) if delta is None else losses.huber(p, y, delta=delta)
    _close(got, _huber_np(p, y, 1.0 if delta is None else delta), EXP_TOL)


def test_huber_has_one_signature_and_partial_fixes_delta():
    """huber always takes (predictions, targets); a threshold is fixed with partial."""
    p, y = jnp.array([[0.5, 3.0]]), jnp.array([[0.0, 0.0]])
    with pytest.raises(TypeError):
        losses.huber(delta=2.0)  # no longer a factory
    with pytest.raises(TypeError):
        losses.huber(p)
    loss_fn = functools.partial(losses.huber, delta=0.5)
    _close(loss_fn(p, y), _huber_np(p, y, 0.5), F32_TOL)
    _close(losses.Huber(delta=0.5)(p, y), _huber_np(p, y, 0.5), F32_TOL)


@pytest.mark.parametrize("delta, error", [(0.0, ValueError), (float("nan"), ValueError),
                                          (-1.0, ValueError), (np.ones(2), ValueError),
                                          (True, TypeError), ("1", TypeError)])
def test_huber_bad_delta_raises_naming_it(delta, error):
    with pytest.raises(error, match="huber: delta must be"):
        losses.huber(jnp.ones((2, 1)), jnp.zeros((2, 1)), delta=delta)


def test_get_resolves_names_and_aliases_and_passes_functions_through():
    short = {"mse": losses.mean_squared_error, "sse": losses.sum_squared_error,
             "mae": losses.mean_absolute_error}
    for name, fn in short.items():
        assert losses.get(name) is fn
    for fn in (losses.mean_squared_error, losses.sum_squared_error, losses.mean_absolute_error,
               losses.huber, losses.hinge, losses.kl_divergence, losses.binary_crossentropy,
               losses.categorical_crossentropy, losses.sparse_categorical_crossentropy):
        assert losses.get(fn.__name__) is fn
        assert losses.get(fn) is fn
    own = losses.Huber(delta=2.0)
    assert losses.get(own) is own


@pytest.mark.parametrize("bad", ["msq", "", None, 3])
def test_get_unknown_name_lists_the_known_ones(bad):
    with pytest.raises(ValueError, match=r"losses.get: unknown loss .*expected one of .*mae"):
        losses.get(bad)


def test_binary_crossentropy_from_logits_matches_numpy():
    z = RNG.normal(size=(8, 3)).astype(np.float32) * 4
    y = RNG.uniform(size=(8, 3)).astype(np.float32)  # soft labels too
    z64 = z.astype(np.float64)
    s = 1 / (1 + np.exp(-z64))
    ref = (-(y * np.log(s) + (1 - y) * np.log(1 - s))).mean(axis=1)
    _close(losses.binary_crossentropy(z, y), ref, EXP_TOL)


def test_binary_crossentropy_from_probabilities_matches_numpy_and_logits():
    z = RNG.normal(size=(8, 3)).astype(np.float32)
    y = (RNG.uniform(size=(8, 3)) > 0.5).astype(np.float32)
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    ref = (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(axis=1)
    from_probs = losses.binary_crossentropy(p.astype(np.float32), y, from_logits=False)
    from_logits = losses.binary_crossentropy(z, y, from_logits=True)
    _close(from_probs, ref, EXP_TOL)
    _close(from_logits, from_probs, EXP_TOL)


def test_binary_crossentropy_clips_probabilities_like_keras():
    p = jnp.array([[0.0], [1.0]])
    y = jnp.array([[1.0], [0.0]])
    # p=0 is clipped to eps, p=1 to the float32 number nearest 1 - eps.
    low = np.float64(np.float32(1e-7))
    high = np.float64(np.float32(1.0) - np.float32(1e-7))
    expected = [-np.log(low), -np.log1p(-high)]
    _close(losses.binary_crossentropy(p, y, from_logits=False), expected, EXP_TOL)


def test_categorical_crossentropy_from_logits_matches_numpy():
    z = RNG.normal(size=(5, 7)).astype(np.float32) * 3
    labels = RNG.integers(0, 7, size=5)
    onehot = np.eye(7, dtype=np.float32)[labels]
    ref = -np.log(_softmax_np(z)[np.arange(5), labels])
    _close(losses.categorical_crossentropy(z, onehot), ref, EXP_TOL)
    # Soft targets: -sum_c y_c log softmax(z)_c.
    soft = _softmax_np(RNG.normal(size=(5, 7)))
    ref_soft = -(soft * np.log(_softmax_np(z))).sum(axis=1)
    _close(losses.categorical_crossentropy(z, soft.astype(np.float32)), ref_soft, EXP_TOL)


def test_categorical_from_logits_agrees_with_from_probabilities():
    z = RNG.normal(size=(4, 6)).astype(np.float32)
    onehot = np.eye(6, dtype=np.float32)[[0, 3, 5, 2]]
    probs = _softmax_np(z).astype(np.float32)
    _close(
        losses.categorical_crossentropy(z, onehot),
        losses.categorical_crossentropy(probs, onehot, from_logits=False),
        EXP_TOL,
    )


def test_categorical_from_probabilities_renormalizes_rows():
    q = jnp.array([[0.1, 0.3, 0.6]])
    y = jnp.array([[0.0, 1.0, 0.0]])
    scaled = losses.categorical_crossentropy(4.0 * q, y, from_logits=False)
    _close(scaled, [-np.log(0.3)], EXP_TOL)


def test_sparse_equals_categorical_with_one_hot():
    z = RNG.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 3, 1], dtype=np.int32)
    onehot = np.eye(4, dtype=np.float32)[labels]
    for from_logits in (True, False):
        preds = z if from_logits else _softmax_np(z).astype(np.float32)
        _close(
            losses.sparse_categorical_crossentropy(preds, labels, from_logits=from_logits),
            losses.categorical_crossentropy(preds, onehot, from_logits=from_logits),
            EXP_TOL,
        )


def test_sparse_accepts_batch_by_one_labels():
    z = RNG.normal(size=(3, 5)).astype(np.float32)
    labels = np.array([4, 0, 2])
    a = losses.sparse_categorical_crossentropy(z, labels)
    b = losses.sparse_categorical_crossentropy(z, labels.reshape(3, 1))
    assert a.shape == b.shape == (3,)
    _close(a, b, 0)


def test_hinge_matches_numpy_with_signed_labels():
    p = np.array([[0.3, -0.5], [2.0, -2.0], [0.0, 1.0]], np.float32)
    y = np.array([[1, -1], [-1, 1], [1, 1]], np.float32)
    ref = np.maximum(1 - y * p, 0).mean(axis=1)
    # Rows by hand: (0.7 + 0.5)/2, (3 + 3)/2, (1 + 0)/2.
    _close(ref, [0.6, 3.0, 0.5], F32_TOL)
    _close(losses.hinge(p, y), ref, F32_TOL)


def test_hinge_converts_zero_one_labels():
    p = np.array([[0.3], [-0.5], [2.0]], np.float32)
    y01 = np.array([1, 0, 0])
    ypm = np.array([1, -1, -1])
    _close(losses.hinge(p, y01), losses.hinge(p, ypm), F32_TOL)
    _close(losses.hinge(p, ypm), [0.7, 0.5, 3.0], F32_TOL)


def test_kl_divergence_matches_numpy_with_clipping():
    p = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0]], np.float32)
    y = np.array([[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], np.float32)
    pc = np.clip(p.astype(np.float64), 1e-7, 1)
    yc = np.clip(y.astype(np.float64), 1e-7, 1)
    ref = (yc * np.log(yc / pc)).sum(axis=1)
    out = losses.kl_divergence(p, y)
    _close(out, ref, EXP_TOL)
    assert np.all(np.isfinite(np.asarray(out)))
    # KL(y || y) = 0.
    _close(losses.kl_divergence(y[:1], y[:1]), [0.0], EXP_TOL)


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

REGRESSION = [
    losses.mean_squared_error,
    losses.sum_squared_error,
    losses.mean_absolute_error,
    losses.huber,
    losses.binary_crossentropy,
    losses.hinge,
]


def _inputs_for(loss, shape, rng=RNG):
    """Valid (predictions, targets) of the given shape for ``loss``."""
    x = rng.normal(size=shape).astype(np.float32)
    if loss is losses.binary_crossentropy:
        return x, (rng.uniform(size=shape) > 0.5).astype(np.float32)
    if loss is losses.hinge:
        return x, np.where(rng.uniform(size=shape) > 0.5, 1.0, -1.0).astype(np.float32)
    if loss in (losses.categorical_crossentropy, losses.kl_divergence):
        t = _softmax_np(rng.normal(size=shape)).astype(np.float32)
        if loss is losses.kl_divergence:
            return _softmax_np(x).astype(np.float32), t
        return x, t
    if loss is losses.sparse_categorical_crossentropy:
        return x, rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    return x, rng.normal(size=shape).astype(np.float32)


ALL_LOSSES = REGRESSION + [
    losses.categorical_crossentropy,
    losses.sparse_categorical_crossentropy,
    losses.kl_divergence,
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(4, 3), (4, 2, 5, 3)])
def test_output_is_one_value_per_example(loss, shape):
    p, y = _inputs_for(loss, shape)
    out = loss(p, y)
    assert out.shape == (shape[0],)
    assert out.dtype == jnp.float32


def test_rank4_cross_entropy_averages_over_spatial_axes():
    z = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, size=(2, 3, 4))
    per_pixel = -np.log(
        np.take_along_axis(_softmax_np(z), labels[..., None], axis=-1)[..., 0]
    )
    _close(losses.sparse_categorical_crossentropy(z, labels), per_pixel.mean(axis=(1, 2)), EXP_TOL)


@pytest.mark.parametrize("loss", REGRESSION, ids=lambda f: f.__name__)
def test_batch_vector_targets_against_column_predictions(loss):
    p, y = _inputs_for(loss, (5, 1))
    out = loss(p, y.reshape(5))
    assert out.shape == (5,)  # not (5, 5)
    _close(out, loss(p, y), 0)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_shape_mismatch_names_loss_and_both_shapes(loss):
    p, _ = _inputs_for(loss, (4, 3))
    if loss is losses.sparse_categorical_crossentropy:
        bad = np.zeros((4, 2), np.int32)
    else:
        bad = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError) as info:
        loss(p, bad)
    msg = str(info.value)
    assert loss.__name__ in msg
    assert "(4, 3)" in msg and "(4, 2)" in msg


def test_column_targets_against_vector_predictions_raise():
    with pytest.raises(ValueError, match=r"\(5,\).*\(5, 1\)"):
        losses.mean_squared_error(jnp.zeros(5), jnp.zeros((5, 1)))


def test_mismatch_message_suggests_reshape_when_sizes_agree():
    with pytest.raises(ValueError, match=r"targets.reshape\(\(2, 6\)\)"):
        losses.mean_absolute_error(jnp.zeros((2, 6)), jnp.zeros((2, 3, 2)))


def test_cross_entropies_need_a_class_axis():
    with pytest.raises(ValueError, match="classes"):
        losses.categorical_crossentropy(jnp.zeros(4), jnp.zeros(4))
    with pytest.raises(ValueError, match="classes"):
        losses.sparse_categorical_crossentropy(jnp.zeros(4), jnp.zeros(4, jnp.int32))


# ---------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_integer_predictions_raise_type_error(loss):
    _, y = _inputs_for(loss, (2, 3))
    with pytest.raises(TypeError, match="floating"):
        loss(np.ones((2, 3), np.int32), y)


def test_integer_and_bool_targets_are_cast():
    p = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    y_int = np.array([[1, 0], [0, 1]], np.int32)
    y_bool = y_int.astype(bool)
    y_float = y_int.astype(np.float32)
    for loss in (losses.mean_squared_error, losses.binary_crossentropy, losses.hinge):
        _close(loss(p, y_int), loss(p, y_float), 0)
        _close(loss(p, y_bool), loss(p, y_float), 0)


def test_sparse_float_labels_raise_type_error():
    with pytest.raises(TypeError, match="integer class ids.*categorical_crossentropy"):
        losses.sparse_categorical_crossentropy(jnp.zeros((2, 3)), jnp.array([0.0, 1.0]))


def test_sparse_one_hot_targets_hint_at_categorical():
    onehot = jnp.eye(3, dtype=jnp.int32)
    with pytest.raises(ValueError, match="use categorical_crossentropy"):
        losses.sparse_categorical_crossentropy(jnp.zeros((3, 3)), onehot)


def test_half_precision_predictions_give_float32_loss():
    z = RNG.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 4])
    z16 = jnp.asarray(z, jnp.bfloat16)
    out = losses.sparse_categorical_crossentropy(z16, labels)
    assert out.dtype == jnp.float32
    # Same as float32 on the bfloat16-rounded logits.
    _close(out, losses.sparse_categorical_crossentropy(z16.astype(jnp.float32), labels), EXP_TOL)
    # Probability clipping at 1 - 1e-7 must not round to 1 in float16.
    p16 = jnp.array([[1.0], [0.0]], jnp.float16)
    bce = losses.binary_crossentropy(p16, jnp.array([0.0, 1.0]), from_logits=False)
    assert bce.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(bce)))


def test_float64_stays_float64():
    with jax.enable_x64(True):
        p = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float64)
        y = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float64)
        assert losses.mean_squared_error(p, y).dtype == jnp.float64
        assert losses.sparse_categorical_crossentropy(p, jnp.array([0, 1, 3])).dtype == jnp.float64


# ---------------------------------------------------------------------------
# Label range
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [3, -1, 7])
def test_out_of_range_labels_raise_naming_value_and_range(bad):
    labels = np.array([0, bad, 1])
    with pytest.raises(ValueError) as info:
        losses.sparse_categorical_crossentropy(jnp.zeros((3, 3)), labels)
    msg = str(info.value)
    assert f"label {bad}" in msg and "[0, 2]" in msg


def test_out_of_range_labels_are_checked_under_grad_wrt_predictions():
    def f(z):
        return jnp.sum(losses.sparse_categorical_crossentropy(z, jnp.array([5])))

    with pytest.raises(ValueError, match="label 5"):
        jax.grad(f)(jnp.zeros((1, 3)))


def test_out_of_range_labels_under_jit_give_nan_for_that_example_only():
    f = jax.jit(losses.sparse_categorical_crossentropy)
    z = jnp.asarray(RNG.normal(size=(3, 4)).astype(np.float32))
    out = np.asarray(f(z, jnp.array([1, 4, -1])))
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])
    _close(out[0], losses.sparse_categorical_crossentropy(z[:1], jnp.array([1]))[0], EXP_TOL)
    # Gradient: zero for the invalid examples, finite everywhere.
    g = jax.grad(lambda z, y: jnp.sum(jnp.nan_to_num(f(z, y))))(z, jnp.array([1, 4, -1]))
    g = np.asarray(g)
    assert np.all(np.isfinite(g))
    assert np.all(g[1:] == 0) and np.any(g[0] != 0)


# ---------------------------------------------------------------------------
# Stability: extreme inputs give finite losses and finite gradients
# ---------------------------------------------------------------------------


def _value_and_grad(loss, p, y, **kw):
    return jax.value_and_grad(lambda p: jnp.sum(loss(p, y, **kw)))(p)


def test_categorical_logits_of_magnitude_1e4():
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]])
    y = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    per_ex = losses.categorical_crossentropy(z, y)
    # Row 0: picks a logit 2e4 below the max; row 1: the max itself; row 2: a tie.
    _close(per_ex, [2e4, 0.0, np.log(2.0)], EXP_TOL)
    value, grad = _value_and_grad(losses.categorical_crossentropy, z, y)
    assert np.isfinite(value) and np.all(np.isfinite(np.asarray(grad)))
    # Gradient of CE from logits is softmax(z) - y.
    _close(grad, _softmax_np(np.asarray(z)) - np.asarray(y), EXP_TOL)
    value, grad = _value_and_grad(losses.sparse_categorical_crossentropy, z, jnp.array([1, 2, 0]))
    assert np.isfinite(value) and np.all(np.isfinite(np.asarray(grad)))


def test_binary_crossentropy_logits_of_magnitude_200():
    z = jnp.array([[200.0], [-200.0], [200.0], [-200.0]])
    y = jnp.array([1.0, 0.0, 0.0, 1.0])
    _close(losses.binary_crossentropy(z, y), [0.0, 0.0, 200.0, 200.0], EXP_TOL)
    value, grad = _value_and_grad(losses.binary_crossentropy, z, y)
    assert np.isfinite(value)
    # d/dz = sigmoid(z) - y.
    _close(grad[:, 0], [0.0, 0.0, 1.0, -1.0], EXP_TOL)


def test_binary_crossentropy_gradient_at_zero_logit():
    _, grad = _value_and_grad(losses.binary_crossentropy, jnp.zeros((2, 1)), jnp.array([1.0, 0.0]))
    _close(grad[:, 0], [-0.5, 0.5], F32_TOL)


@pytest.mark.parametrize(
    "loss, kw",
    [
        (losses.binary_crossentropy, {"from_logits": False}),
        (losses.categorical_crossentropy, {"from_logits": False}),
        (losses.kl_divergence, {}),
    ],
    ids=["bce", "cce", "kl"],
)
def test_probabilities_exactly_zero_and_one(loss, kw):
    p = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    y = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = loss(p, y, **kw)
    assert np.all(np.isfinite(np.asarray(out)))
    grad_p = jax.grad(lambda p: jnp.sum(loss(p, y, **kw)))(p)
    grad_y = jax.grad(lambda y: jnp.sum(loss(p, y, **kw)))(y)
    assert np.all(np.isfinite(np.asarray(grad_p)))
    assert np.all(np.isfinite(np.asarray(grad_y)))


def test_sparse_probabilities_exactly_zero_and_one():
    p = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    labels = jnp.array([0, 0])
    out = losses.sparse_categorical_crossentropy(p, labels, from_logits=False)
    # Wrong with certainty: -log(eps); right with certainty: -log(1 - eps).
    _close(out, [-np.log(np.float32(1e-7)), -np.log(np.float32(1 - 1e-7))], 1e-4)
    _, grad = _value_and_grad(losses.sparse_categorical_crossentropy, p, labels, from_logits=False)
    assert np.all(np.isfinite(np.asarray(grad)))


# ---------------------------------------------------------------------------
# Transformations: jit, vmap, grad
# ---------------------------------------------------------------------------

WITH_LOGIT_FLAG = {
    losses.binary_crossentropy,
    losses.categorical_crossentropy,
    losses.sparse_categorical_crossentropy,
}


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_jit_equals_eager(loss):
    p, y = _inputs_for(loss, (4, 2, 3))
    eager = loss(p, y)
    jitted = jax.jit(loss)(p, y)
    _close(jitted, eager, EXP_TOL)
    if loss in WITH_LOGIT_FLAG:
        probs = _softmax_np(p).astype(np.float32)
        f = jax.jit(functools.partial(loss, from_logits=False))
        _close(f(probs, y), loss(probs, y, from_logits=False), EXP_TOL)


def test_jit_with_huber_partial_does_not_recompile(count_compiles):
    f = jax.jit(functools.partial(losses.huber, delta=0.5))
    p, y = _inputs_for(losses.huber, (3, 2))
    f(p, y)
    p2 = p + 1
    with count_compiles() as compiles:
        f(p2, y)
    assert compiles == []


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_vmap_over_an_ensemble_axis(loss):
    rng = np.random.default_rng(1)
    pairs = [_inputs_for(loss, (4, 3), rng) for _ in range(3)]
    p = np.stack([a for a, _ in pairs])
    y = np.stack([b for _, b in pairs])
    out = jax.vmap(loss)(p, y)
    assert out.shape == (3, 4)
    for e in range(3):
        _close(out[e], loss(p[e], y[e]), EXP_TOL)


def _x64_inputs(loss, shape):
    """float64 inputs away from kinks and clipping boundaries."""
    rng = np.random.default_rng(2)
    if loss in (losses.kl_divergence,):
        # Mild distributions (every probability > 0.05): the second finite
        # difference of log p is inaccurate for tiny p.
        p = _softmax_np(0.5 * rng.normal(size=shape))
        y = _softmax_np(0.5 * rng.normal(size=shape))
        return jnp.asarray(p, jnp.float64), jnp.asarray(y, jnp.float64)
    if loss is losses.sparse_categorical_crossentropy:
        return (
            jnp.asarray(rng.normal(size=shape), jnp.float64),
            jnp.asarray(rng.integers(0, shape[-1], size=shape[:-1])),
        )
    if loss is losses.hinge:
        y = np.where(rng.uniform(size=shape) > 0.5, 1.0, -1.0)
        # |1 - y p| >= 0.25 everywhere, so no example sits on the hinge.
        margin = rng.uniform(0.25, 1.5, size=shape) * np.where(rng.uniform(size=shape) > 0.5, 1, -1)
        p = (1 - margin) * y
        return jnp.asarray(p, jnp.float64), jnp.asarray(y, jnp.float64)
    if loss in (losses.mean_absolute_error, losses.huber):
        y = rng.normal(size=shape)
        # Errors of magnitude in [0.2, 0.8] or [1.2, 2]: away from 0 and delta=1.
        mag = np.where(rng.uniform(size=shape) > 0.5, rng.uniform(0.2, 0.8, shape),
                       rng.uniform(1.2, 2.0, shape))
        p = y + mag * np.where(rng.uniform(size=shape) > 0.5, 1, -1)
        return jnp.asarray(p, jnp.float64), jnp.asarray(y, jnp.float64)
    if loss is losses.binary_crossentropy:
        return (
            jnp.asarray(rng.normal(size=shape), jnp.float64),
            jnp.asarray(rng.uniform(size=shape), jnp.float64),
        )
    if loss is losses.categorical_crossentropy:
        return (
            jnp.asarray(rng.normal(size=shape), jnp.float64),
            jnp.asarray(_softmax_np(rng.normal(size=shape)), jnp.float64),
        )
    return (
        jnp.asarray(rng.normal(size=shape), jnp.float64),
        jnp.asarray(rng.normal(size=shape), jnp.float64),
    )


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_check_grads_float64(loss):
    # Second order for binary_crossentropy: its derivative is hand-written
    # (a custom JVP), so its own derivative is checked too.
    order = 2 if loss is losses.binary_crossentropy else 1
    with jax.enable_x64(True):
        p, y = _x64_inputs(loss, (3, 4))
        if loss is losses.sparse_categorical_crossentropy:
            check_grads(lambda p: loss(p, y), (p,), order=order, modes=("fwd", "rev"))
        else:
            check_grads(loss, (p, y), order=order, modes=("fwd", "rev"))


@pytest.mark.parametrize("loss", sorted(WITH_LOGIT_FLAG, key=lambda f: f.__name__),
                         ids=lambda f: f.__name__)
def test_check_grads_float64_from_probabilities(loss):
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        # Probabilities in (0.05, 0.95): away from the clip boundaries.
        probs = _softmax_np(rng.normal(size=(3, 4)) * 0.5)
        p = jnp.asarray(probs, jnp.float64)
        if loss is losses.sparse_categorical_crossentropy:
            y = jnp.array([0, 3, 1])
        elif loss is losses.binary_crossentropy:
            y = jnp.asarray(rng.uniform(size=(3, 4)), jnp.float64)
        else:
            y = jnp.asarray(_softmax_np(rng.normal(size=(3, 4))), jnp.float64)
        check_grads(lambda p: loss(p, y, from_logits=False), (p,), order=1, modes=("fwd", "rev"))


# ------------------------------------------------ probabilities passed as logits (item 15)

PROBS_AS_LOGITS = {
    "binary_crossentropy": (lambda: jax.nn.sigmoid(jnp.array([[-1.0], [2.0], [0.3]])),
                            jnp.array([0, 1, 1])),
    "categorical_crossentropy": (lambda: jax.nn.softmax(jnp.array([[1.0, 2.0, 0.5],
                                                                   [0.0, -1.0, 3.0]])),
                                 jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
    "sparse_categorical_crossentropy": (lambda: jax.nn.softmax(jnp.array([[1.0, 2.0, 0.5],
                                                                          [0.0, -1.0, 3.0]])),
                                        jnp.array([1, 2])),
}


@pytest.mark.parametrize("name", sorted(PROBS_AS_LOGITS))
def test_probabilities_given_as_logits_warn_once(name):
    make, targets = PROBS_AS_LOGITS[name]
    loss = getattr(losses, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        loss(make(), targets)
        loss(make(), targets)  # the same loss again: no second warning
    hits = [w for w in caught if issubclass(w.category, losses.ProbabilitiesAsLogitsWarning)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    assert name in str(hits[0].message) and "from_logits=False" in str(hits[0].message)
    assert issubclass(losses.ProbabilitiesAsLogitsWarning, UserWarning)


@pytest.mark.parametrize("name", sorted(PROBS_AS_LOGITS))
def test_logits_and_declared_probabilities_do_not_warn(name):
    make, targets = PROBS_AS_LOGITS[name]
    loss = getattr(losses, name)
    logits = jnp.log(make())  # real logits: negative values
    with warnings.catch_warnings():
        warnings.simplefilter("error", losses.ProbabilitiesAsLogitsWarning)
        loss(logits, targets)
        loss(make(), targets, from_logits=False)
        loss(jnp.zeros_like(logits), targets)  # a zero-initialized output layer's logits
        # Under jit the values are unknown: nothing is checked, nothing warns.
        jax.jit(lambda p: loss(p, targets))(make())


def test_check_logits_helper():
    probs = np.array([[0.2, 0.8], [0.5, 0.5]], np.float32)
    with pytest.warns(losses.ProbabilitiesAsLogitsWarning, match="my_loss"):
        assert losses.check_logits("my_loss", probs, categorical=True) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", losses.ProbabilitiesAsLogitsWarning)
        # In [0, 1] but rows not summing to 1: plausible logits for a categorical loss.
        assert losses.check_logits("my_loss", probs * 0.5, categorical=True) is False
        assert losses.check_logits("my_loss", probs - 0.3, categorical=False) is False
        assert losses.check_logits("my_loss", np.array([[np.nan, 0.5]])) is False
    with pytest.warns(losses.ProbabilitiesAsLogitsWarning, match="sigmoid"):
        assert losses.check_logits("my_loss", probs * 0.5, categorical=False) is True
