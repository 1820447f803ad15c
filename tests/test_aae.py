"""Priors and the adversarial autoencoder: against numpy and a hand-written JAX step.

The one-step check rebuilds the three phases (reconstruction, discriminator,
generator) with plain jnp matmuls and SGD; the training tests assert what was
learned (codes that follow the prior, classes on their own components).
"""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import data, generative, nn, optim, train

# ------------------------------------------------------------------------------ priors

def test_gaussian_prior_draws_standard_normal_codes():
    z = np.asarray(generative.gaussian_prior(3)(jax.random.key(0), 20000), np.float64)
    assert z.shape == (20000, 3) and z.dtype == np.float64
    # Standard errors: 1/sqrt(20000) = 0.007 for the mean, ~0.01 for the covariance.
    assert np.abs(z.mean(0)).max() < 0.03
    assert np.abs(np.cov(z.T) - np.eye(3)).max() < 0.05
    same = generative.gaussian_prior(3)(jax.random.key(0), 5)
    np.testing.assert_array_equal(np.asarray(same), z[:5].astype(np.float32))


def test_mixture_prior_components_on_a_circle_and_labelled_draws():
    prior = generative.mixture_prior(10, radius=3.0, std=0.1)
    angles = 2 * np.pi * np.arange(10) / 10
    expected = 3.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    np.testing.assert_allclose(np.asarray(prior.centers), expected, atol=1e-6)
    labels = np.arange(4000) % 10
    z = np.asarray(prior(jax.random.key(1), 4000, jnp.asarray(labels)))
    dist = np.linalg.norm(z[:, None] - expected[None], axis=2)
    assert (dist.argmin(1) == labels).all()
    assert dist[np.arange(4000), labels].max() < 0.1 * 5  # 5 std in 2-D: p ~ 4e-6
    offsets = z - expected[labels]
    assert abs(offsets.std() - 0.1) < 0.005
    free = np.asarray(prior(jax.random.key(2), 5000))
    counts = np.bincount(np.linalg.norm(free[:, None] - expected[None], axis=2).argmin(1),
                         minlength=10)
    assert counts.min() > 400 and counts.max() < 600  # uniform over components: 500 each


def test_mixture_prior_given_centres():
    centers = np.array([[0.0, 0.0, 1.0], [5.0, 0.0, 0.0], [0.0, -5.0, 2.0]])
    prior = generative.mixture_prior(3, dim=3, std=0.0, centers=centers)
    z = prior(jax.random.key(0), 4, jnp.array([2, 0, 1, 2]))
    np.testing.assert_allclose(np.asarray(z), centers[[2, 0, 1, 2]], atol=1e-6)
    assert prior.components == 3 and prior.dim == 3


@pytest.mark.parametrize("make, error, words", [
    (lambda: generative.gaussian_prior(0), ValueError, "dim"),
    (lambda: generative.gaussian_prior(2.5), TypeError, "dim"),
    (lambda: generative.mixture_prior(4, dim=3), ValueError, "centers"),
    (lambda: generative.mixture_prior(3, centers=np.zeros((2, 2))), ValueError, "(3, 2)"),
    (lambda: generative.mixture_prior(3, std=-1.0), ValueError, "std"),
    (lambda: generative.gaussian_prior(2)(jax.random.key(0), 3, jnp.zeros(3, int)),
     ValueError, "mixture_prior"),
])
def test_prior_bad_arguments_raise_clear_errors(make, error, words):
    with pytest.raises(error, match=None) as info:
        make()
    assert words in str(info.value)


# ------------------------------------------------------------------------------ build-time errors

def _tiny(prior=None, encoder=None, decoder=None, discriminator=None, **kwargs):
    return generative.AdversarialAutoencoder(
        encoder or nn.Dense(2, activation="tanh"), decoder or nn.Dense(3),
        discriminator or nn.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1)]),
        prior or generative.gaussian_prior(2), **kwargs)


@pytest.mark.parametrize("aae, labelled, words", [
    (lambda: _tiny(encoder=nn.Dense(3)), False, "encoder maps inputs of shape (3,) to (3,), "
                                                "expected (2,)"),
    (lambda: _tiny(decoder=nn.Dense(4)), False, "decoder maps inputs of shape (2,) to (4,), "
                                                "expected (3,)"),
    (lambda: _tiny(discriminator=nn.Dense(2)), False, "one logit per code"),
    (lambda: _tiny(), True, "needs a number of classes"),
])
def test_build_time_shape_errors_name_both_shapes(aae, labelled, words):
    with pytest.raises(ValueError) as info:
        generative.AAEState.create(aae(), (3,), jax.random.key(0), labelled=labelled)
    assert words in str(info.value)


def test_bad_specification_arguments():
    with pytest.raises(ValueError, match="unknown loss 'wgan'"):
        _tiny(loss="wgan")
    with pytest.raises(TypeError, match="prior"):
        _tiny(prior=3)
    with pytest.raises(TypeError, match="discriminator"):
        generative.AdversarialAutoencoder(nn.Dense(2), nn.Dense(3), "D",
                                          generative.gaussian_prior(2))


# ------------------------------------------------------------------------------ one step by hand

def _dense(p, x):
    return x @ p["kernel"] + p["bias"]


def _reference_step(state, x, labels, prior, lr, classes):
    """The three phases with plain jnp and SGD, the keys drawn as make_aae_step documents."""
    softplus = jax.nn.softplus
    k_recon, k_disc, _ = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
    del k_recon  # Dense layers draw nothing
    k_prior = jax.random.split(k_disc, 4)[0]
    enc, dec = state.ae_params["encoder"], state.ae_params["decoder"]
    d = state.d_params
    sgd = lambda p, g: jax.tree.map(lambda a, b: a - lr * b, p, g)  # noqa: E731

    def recon(ae):
        x_hat = _dense(ae["decoder"], jnp.tanh(_dense(ae["encoder"], x)))
        return jnp.mean((x_hat - x) ** 2)

    rl, g = jax.value_and_grad(recon)({"encoder": enc, "decoder": dec})
    enc, dec = sgd(enc, g["encoder"]), sgd(dec, g["decoder"])
    z_fake = jnp.tanh(_dense(enc, x))
    if labels is None:
        z_real = jax.random.normal(jax.random.wrap_key_data(k_prior), z_fake.shape)
        extra = jnp.zeros((len(x), 0))
    else:
        noise = jax.random.split(k_prior)[1]
        z_real = jnp.asarray(prior.centers)[labels] + prior.std * jax.random.normal(
            jax.random.wrap_key_data(noise), z_fake.shape)
        extra = jax.nn.one_hot(labels, classes)

    def disc(p, z):
        h = jnp.tanh(_dense(p["dense_0"], jnp.concatenate([z, extra], 1)))
        return _dense(p["dense_1"], h)[:, 0]

    def d_obj(p):
        return jnp.mean(softplus(-disc(p, z_real)) + softplus(disc(p, z_fake)))

    dl, g = jax.value_and_grad(d_obj)(d)
    d = sgd(d, g)
    gl, g = jax.value_and_grad(lambda e: jnp.mean(softplus(-disc(d, jnp.tanh(_dense(e, x))))))(enc)
    enc = sgd(enc, g)
    return {"encoder": enc, "decoder": dec}, d, {"recon_loss": rl, "d_loss": dl, "g_loss": gl}


@pytest.mark.parametrize("labelled", [False, True])
@pytest.mark.parametrize("jit", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_one_step_matches_a_hand_written_three_phase_step(labelled, jit):
    lr = 0.1
    prior = generative.mixture_prior(3, std=0.3) if labelled else generative.gaussian_prior(2)
    aae = _tiny(prior=prior, ae_optimizer=optim.sgd(lr), d_optimizer=optim.sgd(lr),
                g_optimizer=optim.sgd(lr))
    x = jax.random.normal(jax.random.key(3), (6, 3))
    labels = jnp.array([0, 1, 2, 2, 1, 0]) if labelled else None
    state = generative.AAEState.create(aae, (3,), jax.random.key(4), labelled=labelled)
    state = state._replace(step=jnp.int32(5))
    # The reference jitted: op by op, its three value_and_grads compiled every primitive
    # separately (most of this test's time).
    ae_ref, d_ref, logs_ref = jax.jit(
        lambda st: _reference_step(st, x, labels, prior, lr, 3))(state)
    step = generative.make_aae_step(aae, donate=False, jit=jit)
    new, logs = step(state, x if labels is None else (x, labels))
    for got, want in ((new.ae_params, ae_ref), (new.d_params, d_ref)):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     got, want)
    for name, want in logs_ref.items():
        np.testing.assert_allclose(logs[name], want, rtol=1e-5, atol=1e-6)
    assert int(new.step) == 6 and set(logs) == {*logs_ref, "d_real", "d_fake"}


# ------------------------------------------------------------------------------ the trainer

def _blobs(n=240, seed=0):
    """Three separated classes in 4-D."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    means = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return (means[y] + 0.3 * rng.normal(size=(n, 4))).astype(np.float32), y


def _mlp_aae(prior, data_dim=4, width=32):
    return generative.AdversarialAutoencoder(
        nn.Sequential([nn.Dense(width, activation="relu"), nn.Dense(2)]),
        nn.Sequential([nn.Dense(width, activation="relu"), nn.Dense(data_dim)]),
        nn.Sequential([nn.Dense(width, activation="relu"), nn.Dense(1)]), prior)


def test_labels_put_each_class_on_its_own_component():
    x, y = _blobs()
    prior = generative.mixture_prior(3, radius=3.0, std=0.3)
    trainer = generative.AAETrainer(_mlp_aae(prior))
    history = trainer.fit(x, y, epochs=60, batch_size=48, verbose=0)
    codes = trainer.encode(x)
    own = EXAMPLE.nearest_own(codes, y, np.asarray(prior.centers))
    assert own >= 0.9, own
    assert set(history.history) == {"recon_loss", "d_loss", "g_loss", "d_real", "d_fake"}
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        trainer.fit(x, np.full(len(x), 3), epochs=61, initial_epoch=60, verbose=0)
    with pytest.raises(ValueError, match="without labels"):
        trainer.fit(x, epochs=61, initial_epoch=60, verbose=0)
    samples = trainer.sample(6, seed=0, labels=np.array([0, 1, 2, 0, 1, 2]))
    assert samples.shape == (6, 4)


def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(u), np.asarray(v))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _load_example():
    path = pathlib.Path(__file__).parent.parent / "examples" / "aae_digits.py"
    spec = importlib.util.spec_from_file_location("aae_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = _load_example()  # the digits networks and statistics have their one home there
SMALL = dict(width=32, n=256, batch_size=128)  # the example's smoke run uses the same


def _small_digits():
    (x, _), (x_test, _) = data.load_digits()
    return x[:SMALL["n"]], x_test


def _small_aae():
    """The example's networks at width 32 with a Gaussian prior.

    Equal specifications share one compiled step (AAETrainer caches it), so
    every quick test below and the example's smoke run compile it once.
    """
    return generative.AdversarialAutoencoder(*EXAMPLE.networks(SMALL["width"]),
                                             generative.gaussian_prior(2))


def test_trainers_of_equal_specifications_share_the_compiled_step():
    a, b = generative.AAETrainer(_small_aae()), generative.AAETrainer(_small_aae())
    assert _small_aae() == _small_aae() and a._runner is b._runner
    other = generative.AdversarialAutoencoder(*EXAMPLE.networks(SMALL["width"]),
                                              generative.gaussian_prior(2),
                                              g_optimizer=optim.adam(1e-3))
    assert generative.AAETrainer(other)._runner is not a._runner


def test_resume_through_model_checkpoint_is_bit_identical(tmp_path):
    x, _ = _small_digits()
    run = dict(batch_size=SMALL["batch_size"], seed=3, verbose=0)
    full = generative.AAETrainer(_small_aae())
    full.fit(x, epochs=4, **run)
    first = generative.AAETrainer(_small_aae())
    first.fit(x, epochs=2, callbacks=[train.ModelCheckpoint(tmp_path, monitor="recon_loss")],
              **run)
    fresh = generative.AAETrainer(_small_aae())
    fresh.restore(tmp_path)
    assert fresh.epoch == 2 and fresh.data_shape == (8, 8, 1)
    fresh.fit(x, epochs=4, initial_epoch=fresh.epoch, **run)
    assert _leaves_equal(fresh.state, full.state)
    assert not _leaves_equal(first.state, full.state)  # the resumed part did train


def test_reduce_lr_on_plateau_lowers_all_three_optimizers():
    x, _ = _small_digits()
    trainer = generative.AAETrainer(_small_aae())
    trainer.fit(x, epochs=3, batch_size=SMALL["batch_size"], verbose=0, callbacks=[
        train.ReduceLROnPlateau(monitor="d_real", mode="min", factor=0.5, patience=0,
                                min_delta=1.0)])  # never "improves": lowered every epoch
    for field in generative.AAETrainer.optimizer_fields:
        m = optim.get_hyperparams(getattr(trainer.state, field))["lr_multiplier"]
        assert float(m) < 1.0, field


# ------------------------------------------------------------------------------ digits targets

def test_digits_aae_codes_match_the_prior_quick():
    """A small version of the issue's Gaussian target: 256 digits, width 32, 1,600 steps.

    The same recipe as the example (default rates, a tenth of them for the last
    30 %); the bounds are looser than the full run's (seeds 0 and 1 measured
    max |mean| 0.11 / 0.18, max |cov - I| 0.53 / 0.08, MMD 0.025 / 0.009
    against a plain autoencoder's ~0.57).
    """
    x, x_test = _small_digits()
    epochs = 800
    trainer = generative.AAETrainer(_small_aae())
    trainer.fit(x, epochs=epochs, batch_size=128, seed=0, verbose=0, lr_drop=(0.7, 0.1))
    reference = np.asarray(generative.gaussian_prior(2)(jax.random.key(123), len(x_test)))
    got = EXAMPLE.code_statistics(trainer.encode(x_test), reference)
    plain = EXAMPLE.plain_autoencoder_mmd(x, x_test, epochs, SMALL["width"], reference)
    assert got["mmd"] < 0.25 * plain, (got, plain)
    assert got["mean"] < 0.4 and got["cov"] < 0.75, got


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_digits_aae_targets(seed, tmp_path):
    """Issue 13: |mean| <= 0.25, max |cov - I| <= 0.35, MMD <= half the plain AE's; 85 %."""
    results = EXAMPLE.main(out_dir=tmp_path, seed=seed)  # 200 epochs, width 128
    g, own = results["gaussian"], results["mixture"]["nearest_own"]
    assert g["mean"] <= 0.25 and g["cov"] <= 0.35 and g["mmd"] <= 0.5 * g["plain_mmd"], g
    assert own >= 0.85, own


@pytest.mark.slow  # CI: the quick digits test runs the example's networks and statistics
def test_aae_digits_example_smoke(tmp_path):
    out = EXAMPLE.main(epochs=1, width=SMALL["width"], out_dir=tmp_path,
                       train_size=SMALL["n"])
    assert {"gaussian", "mixture"} <= set(out)
    assert math.isfinite(out["gaussian"]["mmd"]) and 0 <= out["mixture"]["nearest_own"] <= 1
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "aae_gaussian_codes.png", "aae_gaussian_grid.png", "aae_mixture_codes.png",
        "aae_mixture_grid.png"]


def test_encode_and_decode_name_the_argument_and_both_shapes():
    trainer = generative.AAETrainer(_small_aae())
    trainer.build((8, 8, 1))
    with pytest.raises(ValueError, match=r"x must hold examples of shape \(8, 8, 1\).*got "
                                         r"\(64,\)"):
        trainer.encode(np.zeros((3, 64), np.float32))
    with pytest.raises(ValueError, match=r"z must be codes of shape \(n, 2\).*got \(3, 5\)"):
        trainer.decode(np.zeros((3, 5), np.float32))
    codes = trainer.encode(np.zeros((300, 8, 8, 1), np.float32), batch_size=128)  # padded
    assert codes.shape == (300, 2) and np.allclose(codes, codes[0])
