"""Freezing and weight reuse: nn.Frozen, nn.trainable_mask, optim.masked, the masked
TrainState/Trainer optimizer, and Trainer.load_params."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import nn, optim, train

# ------------------------------------------------------------------------------ helpers


def _base():
    return nn.Sequential([nn.Dense(16), nn.BatchNorm(momentum=0.5), nn.ReLU(), nn.Dropout(0.5)])


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, :1] - 2.0 * x[:, 1:2] + 0.5).astype(np.float32)
    return x, y


def _equal(a, b):
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(np.asarray(u), np.asarray(v))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


# ------------------------------------------------------------------------------ nn.Frozen


def test_frozen_keeps_the_inner_params_and_name():
    inner = nn.Sequential([nn.Dense(3), nn.BatchNorm()])
    model = nn.Sequential([nn.Frozen(inner), nn.Dense(1)])
    params, state = model.init(jax.random.key(0), (4,))
    plain, plain_state = nn.Sequential([inner, nn.Dense(1)]).init(jax.random.key(0), (4,))
    assert model.names == ("sequential_0", "dense_0")
    assert _equal(params, plain) and _equal(state, plain_state)
    assert nn.output_shape(nn.Frozen(nn.Dense(5)), (3,)) == (5,)


def test_frozen_stops_param_gradients_but_not_input_gradients():
    layer = nn.Frozen(nn.Dense(2))
    params, state = layer.init(jax.random.key(0), (3,))
    x = jnp.ones((4, 3))

    def f(p, v):
        return jnp.sum(layer.apply(p, state, v)[0] ** 2)

    gp, gx = jax.grad(f, argnums=(0, 1))(params, x)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(gp))
    # d/dx sum((x W + b)^2) = 2 (x W + b) W^T, by hand with numpy
    w, b = np.asarray(params["kernel"]), np.asarray(params["bias"])
    expected = 2.0 * (np.ones((4, 3)) @ w + b) @ w.T
    np.testing.assert_allclose(np.asarray(gx), expected, rtol=1e-6, atol=1e-6)


def test_frozen_runs_in_inference_mode_and_keeps_the_state():
    base = _base()
    params, state = base.init(jax.random.key(0), (4,))
    state = jax.tree.map(lambda a: a + 0.3, state)  # non-trivial moving statistics
    x = jnp.asarray(_data(16)[0])
    y, new_state = nn.Frozen(base).apply(params, state, x, key=jax.random.key(1), training=True)
    expected, _ = base.apply(params, state, x, training=False)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(expected))
    assert _equal(new_state, state)
    # the reference: batch norm with the moving statistics, by hand
    bn = state["batch_norm_0"]
    h = np.asarray(x) @ np.asarray(params["dense_0"]["kernel"]) + np.asarray(
        params["dense_0"]["bias"])
    h = (h - np.asarray(bn["mean"])) / np.sqrt(np.asarray(bn["var"]) + 1e-3)
    h = h * np.asarray(params["batch_norm_0"]["scale"]) + np.asarray(params["batch_norm_0"]["bias"])
    np.testing.assert_allclose(np.asarray(y), np.maximum(h, 0.0), rtol=1e-5, atol=1e-5)


def test_frozen_declares_scan_friendly_like_its_inner_layer():
    assert nn.scan_friendly(nn.Frozen(nn.Dense(2)))
    assert not nn.Frozen(nn.Conv2D(2, 3)).scan_friendly
    assert not nn.scan_friendly(nn.Sequential([nn.Frozen(nn.Conv2D(2, 3)), nn.Flatten()]))


def test_frozen_rejects_a_class():
    with pytest.raises(TypeError, match=r"Frozen: expected a layer instance.*nn.Frozen"):
        nn.Frozen(nn.Dense)


def test_trainable_mask_marks_frozen_leaves_false():
    model = nn.Sequential([nn.Dense(3), nn.Frozen(_base()), nn.Dense(1)])
    params, _ = model.init(jax.random.key(0), (4,))
    mask = nn.trainable_mask(model, params)
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    paths = {jax.tree_util.keystr(p): m for p, m in jax.tree_util.tree_flatten_with_path(mask)[0]}
    assert {k for k, m in paths.items() if not m} == {
        k for k in paths if k.startswith("['sequential_0']")}
    assert all(m is True for k, m in paths.items() if not k.startswith("['sequential_0']"))
    assert all(jax.tree.leaves(nn.trainable_mask(nn.Dense(2), {"kernel": 1, "bias": 2})))


def test_trainable_mask_walks_graph_models_and_nesting():
    inp = nn.Input((4,))
    base = _base()
    out = nn.Dense(2)(nn.Frozen(base)(inp), name="head")
    graph = nn.Model(inp, out)
    outer = nn.Sequential([graph, nn.Dense(1)])
    params, _ = outer.init(jax.random.key(0), (4,))
    mask = nn.trainable_mask(outer, params)
    inner = mask["model_0"]
    assert set(inner) == {"sequential_0", "head"}
    assert not any(jax.tree.leaves(inner["sequential_0"]))
    assert all(jax.tree.leaves(inner["head"])) and all(jax.tree.leaves(mask["dense_0"]))


def test_trainer_keeps_a_frozen_branch_of_a_graph_fixed():
    x, y = _data()
    inp = nn.Input((4,))
    frozen = nn.Frozen(nn.Dense(8, activation="tanh"))(inp)
    model = nn.Model(inp, nn.Dense(1)(nn.Concatenate()([frozen, nn.Dense(4)(inp)])))
    trainer = train.Trainer(model, "mse", optim.adamw(1e-2, weight_decay=0.1))
    trainer.build((4,))
    before = jax.device_get(trainer.state.params)
    trainer.fit(x, y, epochs=3, batch_size=16, verbose=0)
    after = jax.device_get(trainer.state.params)
    frozen_name = [n for n, layer in zip(model.names, model.layers, strict=True)
                   if isinstance(layer, nn.Frozen)][0]
    assert _equal(after[frozen_name], before[frozen_name])
    assert all(not _equal(after[n], before[n]) for n in after if n != frozen_name)


# ------------------------------------------------------------------------------ optim.masked


def _tree():
    key = jax.random.key(3)
    return {"a": {"w": jax.random.normal(key, (3, 2), jnp.float64),
                  "b": jnp.linspace(-1, 1, 2, dtype=jnp.float64)},
            "c": jnp.arange(4.0, dtype=jnp.float64)}


def _standard(fn, *args):
    """Calls an optax function under standard promotion (optax's adamw mixes int and float)."""
    with jax.numpy_dtype_promotion("standard"):
        return fn(*args)


@pytest.mark.parametrize("mask", [
    {"a": {"w": True, "b": False}, "c": True},
    {"a": False, "c": True},                               # a prefix mask
    lambda tree: {"a": {"w": False, "b": True}, "c": False},  # a callable mask
])
def test_masked_equals_optax_masked_in_float64(mask):
    with jax.enable_x64(True):
        params = _tree()
        ours = optim.masked(optim.adamw(0.1, weight_decay=0.3), mask)
        theirs = optax.masked(optax.adamw(0.1, weight_decay=0.3), mask)
        same_inner = optax.masked(optim.adamw(0.1, weight_decay=0.3), mask)
        s1, s2, s3 = ours.init(params), _standard(theirs.init, params), same_inner.init(params)
        p1 = p2 = p3 = params
        for i in range(6):
            grads = jax.tree.map(lambda v, i=i: jnp.sin(v * (i + 1)) + 0.1 * i, p1)
            u1, s1 = ours.update(grads, s1, p1)
            u2, s2 = _standard(theirs.update, grads, s2, p2)
            u3, s3 = same_inner.update(grads, s3, p3)
            for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
            assert _equal(u1, u3)  # with the same inner transform: bit for bit
            p1, p2, p3 = (optax.apply_updates(p, u) for p, u in ((p1, u1), (p2, u2), (p3, u3)))
        # the inner state exists only for the masked-in leaves, as in optax
        assert [np.shape(a) for a in jax.tree.leaves(s1)] == \
            [np.shape(a) for a in jax.tree.leaves(s2)]


def test_masked_passes_masked_out_updates_through_and_chains_with_optax():
    params = {"w": jnp.ones(2), "b": jnp.ones(1)}
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optim.masked(optim.sgd(0.5), {"w": True, "b": False}),
                      optax.scale(2.0))
    grads = {"w": jnp.array([3.0, 4.0]), "b": jnp.array([0.0])}
    updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
    # clip to norm 1: (0.6, 0.8); sgd(0.5): -(0.3, 0.4); scale 2: -(0.6, 0.8); b passes: 0
    np.testing.assert_allclose(np.asarray(updates["w"]), [-0.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(updates["b"]), [0.0])


def test_masked_rejects_a_non_transformation():
    with pytest.raises(TypeError, match="optim.masked: `inner` must be an optax"):
        optim.masked(0.1, {"w": True})


# ------------------------------------------------------------------------------ training


def _frozen_trainer():
    base = _base()
    model = nn.Sequential([nn.Frozen(base), nn.Dense(1)])
    trainer = train.Trainer(model, "mse", optim.adamw(1e-2, weight_decay=0.1))
    return trainer


def test_frozen_base_is_bit_identical_after_fit_with_adamw():
    x, y = _data()
    trainer = _frozen_trainer()
    trainer.build((4,), seed=0)
    # non-trivial moving statistics, so "unchanged" is a real check
    moved = jax.tree.map(lambda a: a + 0.25, trainer.state.model_state)
    trainer.state = trainer.state._replace(model_state=moved)
    before = jax.device_get(trainer.state)
    loss0 = trainer.evaluate(x, y)["loss"]
    trainer.fit(x, y, epochs=40, batch_size=16, verbose=0, seed=0)
    after = jax.device_get(trainer.state)
    assert _equal(after.params["sequential_0"], before.params["sequential_0"])
    assert _equal(after.model_state, before.model_state)
    assert not np.array_equal(after.params["dense_0"]["kernel"],
                              before.params["dense_0"]["kernel"])
    assert trainer.evaluate(x, y)["loss"] < 0.5 * loss0  # the head learns
    # no optimizer state for the frozen leaves: every moment has a head leaf's shape
    head_shapes = {np.shape(a) for a in jax.tree.leaves(after.params["dense_0"])}
    paths = jax.tree_util.tree_flatten_with_path(after.opt_state)[0]
    moments = [(jax.tree_util.keystr(p), np.shape(a)) for p, a in paths if np.ndim(a) > 0]
    assert moments and all(shape in head_shapes for _, shape in moments)
    assert not any("sequential_0" in p for p, _ in moments)


def test_frozen_leaves_get_no_update_even_from_a_regularizer():
    model = nn.Sequential([nn.Frozen(nn.Dense(3)), nn.Dense(1)])
    opt = optim.adamw(0.1, weight_decay=0.5)
    state = train.TrainState.create(model, opt, (4,), jax.random.key(0))
    step = train.make_train_step(
        model, "mse", opt, regularizer=lambda p: jnp.sum(p["dense_0"]["kernel"] ** 2))
    before = jax.device_get(state.params)
    x, y = _data(8)
    state, _ = step(state, (x, y))
    after = jax.device_get(state.params)
    assert _equal(after["dense_0"], before["dense_0"])
    assert not _equal(after["dense_1"], before["dense_1"])


def test_an_unfrozen_model_keeps_the_plain_optimizer_state():
    model = nn.Sequential([nn.Dense(2)])
    opt = optim.adam(1e-2)
    state = train.TrainState.create(model, opt, (3,), jax.random.key(0))
    params, _ = model.init(jax.random.split(jax.random.key(0))[0], (3,))
    assert jax.tree.structure(state.opt_state) == jax.tree.structure(opt.init(params))


def test_reduce_lr_and_save_restore_work_with_a_frozen_model(tmp_path):
    x, y = _data()
    trainer = _frozen_trainer()
    trainer.fit(x, y, epochs=1, batch_size=16, verbose=0)
    trainer.state = trainer.state._replace(opt_state=optim.set_hyperparams(
        trainer.state.opt_state, lr_multiplier=0.5))
    assert float(optim.get_hyperparams(trainer.state.opt_state)["lr_multiplier"]) == 0.5
    path = trainer.save(tmp_path / "frozen.ckpt")
    fresh = _frozen_trainer()
    fresh.restore(path)
    assert _equal(jax.device_get(fresh.state), jax.device_get(trainer.state))


# ------------------------------------------------------------------------------ load_params


def _pretrained():
    donor = train.Trainer(_base(), "mse")
    donor.build((4,), seed=7)
    moved = jax.tree.map(lambda a: a + 0.5, donor.state.model_state)
    donor.state = donor.state._replace(model_state=moved)
    return donor


def test_load_params_round_trip_whole_model_bit_for_bit(tmp_path):
    donor = _pretrained()
    target = train.Trainer(_base(), "mse")
    target.build((4,), seed=1)
    assert target.load_params((donor.state.params, donor.state.model_state)) == []
    assert _equal(target.state.params, donor.state.params)
    assert _equal(target.state.model_state, donor.state.model_state)
    # from a Trainer.save file and from a ModelCheckpoint-style directory
    (tmp_path / "ckpts").mkdir()
    donor.save(tmp_path / "ckpts" / "step_3.ckpt")  # the ModelCheckpoint file layout
    for source in (donor.save(tmp_path / "donor.ckpt"), tmp_path / "ckpts"):
        fresh = train.Trainer(_base(), "mse")
        fresh.build((4,), seed=2)
        fresh.load_params(source)
        assert _equal(jax.device_get(fresh.state.params), jax.device_get(donor.state.params))
        assert _equal(jax.device_get(fresh.state.model_state),
                      jax.device_get(donor.state.model_state))


def test_load_params_copies_so_the_source_survives_a_donating_fit():
    x, y = _data()
    donor = _frozen_trainer()
    donor.fit(x, y, epochs=1, batch_size=16, verbose=0)
    taker = _frozen_trainer()
    taker.build((4,))
    taker.load_params((donor.state.params, donor.state.model_state))
    taker.fit(x, y, epochs=1, batch_size=16, verbose=0)  # donates taker's buffers
    donor.evaluate(x, y)  # the donor's arrays were not handed over


def test_load_params_into_a_sub_tree():
    donor = _pretrained()
    trainer = _frozen_trainer()
    trainer.build((4,), seed=3)
    head = jax.device_get(trainer.state.params["dense_0"])
    trainer.load_params((donor.state.params, donor.state.model_state), into="sequential_0")
    assert _equal(trainer.state.params["sequential_0"], donor.state.params)
    assert _equal(trainer.state.model_state["sequential_0"], donor.state.model_state)
    assert _equal(jax.device_get(trainer.state.params["dense_0"]), head)
    # nested: one layer of the base
    trainer.load_params({"kernel": jnp.ones((4, 16)), "bias": jnp.zeros(16)},
                        into="sequential_0/dense_0")
    np.testing.assert_array_equal(trainer.state.params["sequential_0"]["dense_0"]["kernel"],
                                  np.ones((4, 16)))


def test_load_params_strict_errors_name_the_leaf_and_both_shapes():
    trainer = _frozen_trainer()
    trainer.build((4,))
    good = jax.device_get(trainer.state.params["sequential_0"])
    missing = {"dense_0": good["dense_0"]}
    with pytest.raises(ValueError, match=r"params/sequential_0/batch_norm_0/bias: missing "
                                         r"from the source \(model has shape \(16,\)\)"):
        trainer.load_params(missing, into="sequential_0")
    extra = {**good, "dense_9": {"kernel": np.ones((2, 2), np.float32)}}
    with pytest.raises(ValueError, match=r"params/sequential_0/dense_9/kernel: extra in the "
                                         r"source \(shape \(2, 2\)\)"):
        trainer.load_params(extra, into="sequential_0")
    wrong = {**good, "dense_0": {"kernel": np.ones((5, 16), np.float32), "bias": good[
        "dense_0"]["bias"]}}
    with pytest.raises(ValueError, match=r"params/sequential_0/dense_0/kernel: shape \(5, 16\) "
                                         r"in the source but \(4, 16\) in the model"):
        trainer.load_params(wrong, into="sequential_0")
    with pytest.raises(ValueError, match=r"into='encoder' names no entry"):
        trainer.load_params(good, into="encoder")
    with pytest.raises(TypeError, match="source must be a params dict"):
        trainer.load_params(3)
    with pytest.raises(ValueError, match=r"no weights to replace yet; call trainer.build"):
        _frozen_trainer().load_params(good)


def test_load_params_non_strict_places_what_matches():
    trainer = _frozen_trainer()
    trainer.build((4,))
    before = jax.device_get(trainer.state.params)
    source = {"dense_0": {"kernel": np.full((4, 16), 2.0, np.float32),
                          "bias": np.ones(7, np.float32)},
              "other": {"w": np.ones(1, np.float32)}}
    with pytest.warns(UserWarning, match="skipped"):
        skipped = trainer.load_params(source, into="sequential_0", strict=False)
    assert len(skipped) == 4  # bias shape, other/w extra, batch_norm bias+scale missing
    np.testing.assert_array_equal(trainer.state.params["sequential_0"]["dense_0"]["kernel"],
                                  np.full((4, 16), 2.0))
    assert _equal(trainer.state.params["sequential_0"]["dense_0"]["bias"],
                  before["sequential_0"]["dense_0"]["bias"])
