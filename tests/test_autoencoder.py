"""generative.Autoencoder: a layer trained by train.Trainer.fit(x, x); encode/decode; errors;
examples/autoencoder_digits.py (a quick run here, the documented run behind the slow marker)."""

import importlib.util
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import data, nn, optim, train
from jaxdl.generative import Autoencoder


def dense_ae(code=8):
    return Autoencoder(
        nn.Sequential([nn.Dense(32, activation="relu"), nn.Dense(code)]),
        nn.Sequential([nn.Dense(32, activation="relu"), nn.Dense(64, activation="sigmoid")]))


def conv_ae(code=8):
    """8x8x1 -> Conv2D stride 2 -> 4x4x8 -> code; back up with Conv2DTranspose stride 2."""
    return Autoencoder(
        nn.Sequential([nn.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                       nn.Flatten(), nn.Dense(code)]),
        nn.Sequential([nn.Dense(128, activation="relu"), nn.Reshape((4, 4, 8)),
                       nn.Conv2DTranspose(1, 3, strides=2, padding="same",
                                          activation="sigmoid")]))


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def test_trainer_fit_x_x_learns_to_reconstruct_digits_with_a_conv_autoencoder(digits):
    """Conv2D down, Conv2DTranspose up; the Dense variant is trained by the example's test."""
    (x, _), (x_test, _) = digits
    ae = conv_ae()
    x = x[:1024]  # 16 full batches: one compiled epoch, no partial batch to compile
    trainer = train.Trainer(ae, "mse", optim.adam(1e-2))
    trainer.fit(x, x, epochs=30, batch_size=64, verbose=0, steps_per_execution="epoch")
    params, state = trainer.state.params, trainer.state.model_state
    codes = ae.encode(params, state, x_test)
    x_hat = ae.decode(params, state, codes)
    assert codes.shape == (len(x_test), 8) and x_hat.shape == x_test.shape
    # The best code-free reconstruction is the mean training image; the 8-number code
    # must carry most of what distinguishes a test digit from it.
    baseline = float(np.mean((x_test - x.mean(0)) ** 2))
    mse = float(np.mean((np.asarray(x_hat) - x_test) ** 2))
    assert mse < 0.4 * baseline, (mse, baseline)


def test_params_encode_decode_and_apply_agree():
    ae = dense_ae(code=3)
    params, state = ae.init(jax.random.key(0), (64,))
    assert sorted(params) == ["decoder", "encoder"] and state == {}
    assert ae.code_shape((64,)) == (3,) and ae.output_shape((64,)) == (64,)
    x = jax.random.uniform(jax.random.key(1), (5, 64))
    z, _ = ae.encoder.apply(params["encoder"], {}, x)
    y, _ = ae.decoder.apply(params["decoder"], {}, z)
    np.testing.assert_allclose(ae.encode(params, state, x), z, atol=1e-6)
    np.testing.assert_allclose(ae.decode(params, state, z), y, atol=1e-6)
    np.testing.assert_allclose(ae.apply(params, state, x)[0], y, atol=1e-6)
    # The parts are initialized as they would be on their own, with keys 0 and 1 folded in.
    enc, _ = ae.encoder.init(jax.random.fold_in(jax.random.key(0), 0), (64,))
    np.testing.assert_array_equal(params["encoder"]["dense_0"]["kernel"],
                                  enc["dense_0"]["kernel"])


def test_encode_compiles_once_per_shape(count_compiles):
    ae = dense_ae(code=2)
    params, state = ae.init(jax.random.key(0), (64,))
    ae.encode(params, state, np.ones((7, 64), np.float32))
    with count_compiles() as compiles:
        ae.encode(params, state, np.zeros((7, 64), np.float32))
    assert compiles == []


def test_state_flows_through_both_parts_under_jit():
    ae = Autoencoder(nn.Sequential([nn.Dense(6), nn.BatchNorm()]),
                     nn.Sequential([nn.Dropout(0.5), nn.Dense(4)]))
    params, state = ae.init(jax.random.key(0), (4,))
    assert sorted(state) == ["encoder"]
    x = jax.random.normal(jax.random.key(1), (8, 4))
    apply = jax.jit(ae.apply, static_argnames="training")
    y, new_state = apply(params, state, x, key=jax.random.key(2), training=True)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state, new_state)
    assert any(jax.tree.leaves(moved))  # batch-norm statistics were updated
    assert y.shape == (8, 4) and bool(jnp.any(y != apply(params, new_state, x)[0]))


def test_summary_lists_both_parts_and_counts_their_params():
    ae = conv_ae()
    text = nn.summary(ae, (8, 8, 1))
    params, _ = ae.init(jax.random.key(0), (8, 8, 1))
    total = sum(leaf.size for leaf in jax.tree.leaves(params))
    # encoder: conv 3*3*1*8 + 8, dense 128*8 + 8; decoder: dense 8*128 + 128, conv^T 3*3*8*1 + 1
    assert total == 80 + 1032 + 1152 + 73
    assert "encoder (Sequential)" in text and "(None, 8)" in text
    assert "decoder (Sequential)" in text and "(None, 8, 8, 1)" in text
    assert f"Total params: {total:,}" in text


def test_frozen_encoder_is_masked_and_model_encoder_works():
    inp = nn.Input((64,))
    encoder = nn.Model(inp, nn.Dense(4)(inp), name="enc")
    ae = Autoencoder(nn.Frozen(encoder), nn.Sequential([nn.Dense(64)]))
    params, state = ae.init(jax.random.key(0), (64,))
    mask = nn.trainable_mask(ae, params)
    assert set(jax.tree.leaves(mask["encoder"])) == {False}
    assert set(jax.tree.leaves(mask["decoder"])) == {True}
    assert ae.apply(params, state, jnp.ones((2, 64)))[0].shape == (2, 64)


def test_decoder_of_the_wrong_output_shape_is_rejected_at_init():
    ae = Autoencoder(nn.Sequential([nn.Flatten(), nn.Dense(2)]), nn.Sequential([nn.Dense(64)]))
    with pytest.raises(ValueError, match=r"Autoencoder: the decoder must reproduce the input "
                                         r"shape \(8, 8, 1\), but it maps the encoder's codes "
                                         r"of shape \(2,\) to \(64,\).*nn.Reshape"):
        ae.init(jax.random.key(0), (8, 8, 1))
    with pytest.raises(ValueError, match="decoder must reproduce the input shape"):
        ae.output_shape((8, 8, 1))


def test_bad_parts_and_trees_are_rejected():
    with pytest.raises(TypeError, match=r"`decoder` must be a layer.*class Dense instead"):
        Autoencoder(nn.Dense(2), nn.Dense)
    with pytest.raises(TypeError, match="`encoder` must be a layer"):
        Autoencoder("dense", nn.Dense(2))
    ae = dense_ae()
    params, state = ae.init(jax.random.key(0), (64,))
    with pytest.raises(ValueError, match=r"`params` hold the entries \['dense_0'\]"):
        ae.apply({"dense_0": {}, **params}, state, jnp.ones((1, 64)))
    with pytest.raises(TypeError, match="`state` must be the dict that init returned"):
        ae.encode(params, None, jnp.ones((1, 64)))


def _example():
    spec = importlib.util.spec_from_file_location(
        "example_autoencoder_digits",
        pathlib.Path(__file__).resolve().parents[1] / "examples" / "autoencoder_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_pngs(paths, names):
    assert [os.path.basename(p) for p in paths] == names
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(p) > 5000


def test_example_quick_run_beats_pca_and_draws_its_pictures(tmp_path):
    r = _example().main(epochs=25, out=str(tmp_path))
    # 25 epochs already beat the best linear 2-D code (PCA) in reconstruction and kNN accuracy.
    assert r["test_mse"] < 0.8 * r["pca_test_mse"] < r["mean_image_mse"]
    assert r["knn_accuracy"] > r["pca_knn_accuracy"] + 0.05
    _check_pngs(r["paths"], ["autoencoder_reconstructions.png", "autoencoder_codes.png",
                             "autoencoder_manifold.png"])


@pytest.mark.slow
def test_example_full_run_meets_its_documented_figures(tmp_path):
    r = _example().main(epochs=200, out=str(tmp_path))
    # Documented: test MSE 0.0304 (PCA 0.0531), 5-NN 0.864 (PCA 0.607), silhouette 0.157.
    assert r["test_mse"] < 0.034 and r["pca_test_mse"] == pytest.approx(0.0531, abs=5e-4)
    assert r["knn_accuracy"] > 0.83 and r["pca_knn_accuracy"] == pytest.approx(0.607, abs=1e-3)
    assert r["silhouette"] > r["pca_silhouette"]
