"""Tests for jaxdl.regularizers against hand-computed penalties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdl import regularizers


def _params(dtype=jnp.float32):
    return {
        "dense_0": {
            "kernel": jnp.array([[1.0, -2.0], [3.0, 0.5]], dtype),
            "bias": jnp.array([10.0, -10.0], dtype),
        },
        "batch_norm_0": {
            "scale": jnp.array([4.0, 4.0], dtype),
            "bias": jnp.array([1.0, 1.0], dtype),
        },
        "dense_1": {
            "kernel": jnp.array([[-1.0], [2.0]], dtype),
            "bias": jnp.array([7.0], dtype),
        },
    }


# Kernels only: |.| sum = 1 + 2 + 3 + 0.5 + 1 + 2 = 9.5,
# squares = 1 + 4 + 9 + 0.25 + 1 + 4 = 19.25.
ABS_SUM = 9.5
SQ_SUM = 19.25
TOL = 1e-6


def _close(actual, expected, tol=TOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=tol, atol=tol)


def test_l1_value_by_hand():
    out = regularizers.l1(0.01)(_params())
    assert out.shape == () and out.dtype == jnp.float32
    _close(out, 0.01 * ABS_SUM)


def test_l2_value_by_hand_has_no_half():
    _close(regularizers.l2(0.01)(_params()), 0.01 * SQ_SUM)


def test_elastic_net_value_by_hand():
    _close(regularizers.elastic_net(l1=0.01, l2=0.1)(_params()), 0.01 * ABS_SUM + 0.1 * SQ_SUM)
    # Defaults are Keras's: 0.01 and 0.01.
    _close(regularizers.elastic_net()(_params()), 0.01 * (ABS_SUM + SQ_SUM))


@pytest.mark.parametrize(
    "penalty",
    [regularizers.l1(0.1), regularizers.l2(0.1), regularizers.elastic_net(0.1, 0.2)],
    ids=["l1", "l2", "elastic_net"],
)
def test_biases_and_norm_scales_are_excluded(penalty):
    params = _params()
    changed = jax.tree_util.tree_map(lambda x: x, params)
    changed["dense_0"]["bias"] = params["dense_0"]["bias"] * 100
    changed["batch_norm_0"]["scale"] = params["batch_norm_0"]["scale"] * 100
    changed["batch_norm_0"]["bias"] = params["batch_norm_0"]["bias"] - 50
    _close(penalty(changed), penalty(params))
    grads = jax.grad(penalty)(params)
    for path in (("dense_0", "bias"), ("dense_1", "bias"), ("batch_norm_0", "scale"),
                 ("batch_norm_0", "bias")):
        g = grads[path[0]][path[1]]
        assert np.all(np.asarray(g) == 0), path
    assert np.any(np.asarray(grads["dense_0"]["kernel"]) != 0)


def test_l1_gradient_is_strength_times_sign():
    params = _params()
    lam = 0.03
    grads = jax.grad(regularizers.l1(lam))(params)
    for layer in ("dense_0", "dense_1"):
        _close(grads[layer]["kernel"], lam * np.sign(np.asarray(params[layer]["kernel"])))


def test_l1_gradient_at_zero_weight_is_zero():
    params = {"dense": {"kernel": jnp.array([0.0, 2.0])}}
    _close(jax.grad(regularizers.l1(0.5))(params)["dense"]["kernel"], [0.0, 0.5])


def test_l2_gradient_is_two_lambda_w():
    params = _params()
    lam = 0.03
    grads = jax.grad(regularizers.l2(lam))(params)
    for layer in ("dense_0", "dense_1"):
        _close(grads[layer]["kernel"], 2 * lam * np.asarray(params[layer]["kernel"]))


def test_elastic_net_gradient_is_sum_of_both():
    params = _params()
    grads = jax.grad(regularizers.elastic_net(0.03, 0.05))(params)
    w = np.asarray(params["dense_0"]["kernel"])
    _close(grads["dense_0"]["kernel"], 0.03 * np.sign(w) + 2 * 0.05 * w)


def test_callable_mask_sees_slash_paths_and_selects_leaves():
    seen = []

    def only_first_kernel(path, leaf):
        seen.append(path)
        return path == "dense_0/kernel"

    out = regularizers.l1(1.0, mask=only_first_kernel)(_params())
    _close(out, 1 + 2 + 3 + 0.5)
    assert sorted(seen) == sorted(
        [
            "dense_0/kernel", "dense_0/bias", "batch_norm_0/scale",
            "batch_norm_0/bias", "dense_1/kernel", "dense_1/bias",
        ]
    )


def test_callable_mask_can_select_biases_too():
    everything = regularizers.l2(1.0, mask=lambda path, leaf: True)
    total = SQ_SUM + (100 + 100) + (16 + 16) + (1 + 1) + 49
    _close(everything(_params()), total)


def test_pytree_mask_with_params_structure():
    params = _params()
    mask = jax.tree_util.tree_map(lambda _: False, params)
    mask["dense_1"]["kernel"] = True
    mask["batch_norm_0"]["scale"] = True
    _close(regularizers.l2(1.0, mask=mask)(params), (1 + 4) + (16 + 16))


def test_pytree_mask_may_be_a_prefix():
    params = _params()
    mask = {"dense_0": False, "batch_norm_0": False, "dense_1": True}
    _close(regularizers.l1(1.0, mask=mask)(params), (1 + 2) + 7)


def test_mask_structure_mismatch_raises():
    with pytest.raises(ValueError, match="mask tree does not match"):
        regularizers.l2(0.1, mask={"dense_0": True})(_params())


def test_mask_leaves_must_be_bools():
    mask = jax.tree_util.tree_map(lambda _: 1, _params())
    with pytest.raises(TypeError, match="bools"):
        regularizers.l2(0.1, mask=mask)(_params())
    with pytest.raises(TypeError, match="Python bool"):
        regularizers.l2(0.1, mask=lambda p, w: jnp.any(w > 0))(_params())


def test_kernel_is_found_at_any_depth_by_its_last_dict_key():
    params = {
        "model": {"block_0": {"conv": {"kernel": jnp.full((2, 2), 3.0), "bias": jnp.ones(2)}}},
        "kernel_stats": {"bias": jnp.ones(3)},  # a "kernel" prefix is not a kernel
    }
    _close(regularizers.l1(1.0)(params), 12.0)


def test_no_selected_leaf_raises_instead_of_returning_zero():
    with pytest.raises(ValueError, match="no leaf.*'dense/w'"):
        regularizers.l2(0.1)({"dense": {"w": jnp.ones(3)}})


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -np.inf])
def test_invalid_strength_raises_naming_argument(bad):
    with pytest.raises(ValueError, match="l1: strength"):
        regularizers.l1(bad)
    with pytest.raises(ValueError, match="l2: strength"):
        regularizers.l2(bad)
    with pytest.raises(ValueError, match="elastic_net: l1"):
        regularizers.elastic_net(l1=bad, l2=0.1)
    with pytest.raises(ValueError, match="elastic_net: l2"):
        regularizers.elastic_net(l1=0.1, l2=bad)


def test_non_number_strength_raises_type_error():
    with pytest.raises(TypeError, match="strength"):
        regularizers.l2("0.1")
    with pytest.raises(TypeError, match="strength"):
        regularizers.l2(True)


def test_zero_strength_is_allowed_and_gives_zero():
    assert float(regularizers.l2(0.0)(_params())) == 0.0


def test_repr_is_readable():
    assert repr(regularizers.l2(1e-4)) == "L2(strength=0.0001, mask=None)"
    assert (repr(regularizers.elastic_net(l1=0.5, l2=0.25))
            == "ElasticNet(l1=0.5, l2=0.25, mask=None)")
    assert regularizers.l1(0.1) == regularizers.l1(0.1)


def test_jit_equals_eager_and_does_not_recompile(count_compiles):
    penalty = regularizers.elastic_net(0.01, 0.02)
    f = jax.jit(penalty)
    params = _params()
    _close(f(params), penalty(params))
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, params)
    with count_compiles() as compiles:
        twice = f(doubled)
    assert compiles == []
    _close(twice, 0.02 * ABS_SUM + 0.02 * 4 * SQ_SUM)


def test_low_precision_params_accumulate_in_float32():
    w = jnp.full((3, 1000), 0.1, jnp.bfloat16)
    exact = 3000 * float(w[0, 0]) ** 2  # about 30.06; bfloat16 spacing there is 0.125
    out = regularizers.l2(1.0)({"dense": {"kernel": w}})
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(float(out), exact, rtol=1e-6)


def test_float64_params_stay_float64():
    with jax.enable_x64(True):
        params = _params(jnp.float64)
        out = regularizers.l2(0.01)(params)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(float(out), 0.01 * SQ_SUM, rtol=1e-15)


def test_check_grads_float64():
    with jax.enable_x64(True):
        params = _params(jnp.float64)  # no kernel entry at 0, so |w| is smooth
        for penalty in (regularizers.l1(0.3), regularizers.l2(0.3),
                        regularizers.elastic_net(0.3, 0.7)):
            check_grads(penalty, (params,), order=1, modes=("fwd", "rev"))
