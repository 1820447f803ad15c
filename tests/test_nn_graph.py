"""The functional graph: nn.Input, layers called on nodes, merge layers, nn.Model, subtree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import nn, optim, train
from jaxdl.gradcheck import gradcheck
from jaxdl.nn import base


def course_model():
    """The course's two-input network: 30 -> 40 on one input, 20 -> 50 on the other, 90 out."""
    inp1, inp2 = nn.Input((4,), name="left"), nn.Input((4,), name="right")
    h2 = nn.Dense(40)(nn.Dense(30)(inp1))
    h4 = nn.Dense(50)(nn.Dense(20)(inp2))
    return nn.Model([inp1, inp2], nn.Concatenate()([h2, h4]))


def dense_np(p, x):
    return np.asarray(x, np.float64) @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"])


def inputs(n=5, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (n, 4)), jax.random.normal(k2, (n, 4))


def test_two_input_model_equals_a_numpy_hand_computation():
    model = course_model()
    params, state = model.init(jax.random.key(0))
    assert sorted(params) == ["dense_0", "dense_1", "dense_2", "dense_3"]
    x1, x2 = inputs()
    y, new_state = model.apply(params, state, (x1, x2))
    h2 = dense_np(params["dense_1"], dense_np(params["dense_0"], x1))
    h4 = dense_np(params["dense_3"], dense_np(params["dense_2"], x2))
    assert y.shape == (5, 90) and new_state == {}
    np.testing.assert_allclose(np.asarray(y), np.concatenate([h2, h4], axis=1),
                               rtol=1e-5, atol=1e-5)
    assert nn.output_shape(model, ((4,), (4,))) == (90,)
    assert model.init(jax.random.key(0), ((4,), (4,)))[0]["dense_0"]["kernel"].shape == (4, 30)


def test_nodes_know_their_shape_at_once_and_names_can_be_given():
    inp = nn.Input((6, 6, 1))
    h = nn.Conv2D(4, 3)(inp)
    assert h.shape == (4, 4, 4)
    flat = nn.Flatten()(h, name="features")
    assert flat.shape == (64,)
    model = nn.Model(inp, nn.Dense(2)(flat))
    assert model.names == ("conv2d_0", "features", "dense_0")
    assert model.get_layer("features") is flat.layer
    assert not nn.scan_friendly(model)  # the scan check walks into the graph's layers


def test_param_counts_and_summary():
    model = course_model()
    params, _ = model.init(jax.random.key(0))
    counts = {name: base.count_params(p) for name, p in params.items()}
    assert counts == {"dense_0": 4 * 30 + 30, "dense_1": 30 * 40 + 40,
                      "dense_2": 4 * 20 + 20, "dense_3": 20 * 50 + 50}
    text = nn.summary(model)
    assert "Total params: 2,540" in text
    assert "left (Input)" in text and "right (Input)" in text
    row = next(line for line in text.splitlines() if line.startswith("concatenate_0"))
    assert "(None, 90)" in row and row.rstrip().endswith("dense_1, dense_3")
    row = next(line for line in text.splitlines() if line.startswith("dense_2"))
    assert "(None, 20)" in row and "100" in row and row.rstrip().endswith("right")


def test_the_same_layer_object_shares_params_but_equal_layers_do_not():
    inp1, inp2 = nn.Input((4,)), nn.Input((4,))
    shared = nn.Dense(3)
    model = nn.Model([inp1, inp2], nn.Add()([shared(inp1), shared(inp2)]))
    params, state = model.init(jax.random.key(1))
    assert sorted(params) == ["dense_0"]
    x1, x2 = inputs()
    y, _ = model.apply(params, state, (x1, x2))
    p = params["dense_0"]
    np.testing.assert_allclose(np.asarray(y), dense_np(p, x1) + dense_np(p, x2),
                               rtol=1e-5, atol=1e-5)
    twins = nn.Model([inp1, inp2], nn.Add()([nn.Dense(3)(inp1), nn.Dense(3)(inp2)]))
    assert nn.Dense(3) == nn.Dense(3)  # dataclass equality ...
    assert sorted(twins.init(jax.random.key(1))[0]) == ["dense_0", "dense_1"]  # ... not shared


def test_nested_models_in_models_and_in_sequential():
    inp = nn.Input((4,))
    inner = nn.Model(inp, nn.Dense(3)(nn.Dense(5, activation="relu")(inp)), name="inner")
    outer_in = nn.Input((4,))
    outer = nn.Model(outer_in, nn.Dense(2)(inner(outer_in)))
    params, state = outer.init(jax.random.key(2))
    assert sorted(params) == ["dense_0", "inner"]
    assert sorted(params["inner"]) == ["dense_0", "dense_1"]
    x, _ = inputs()
    y, _ = outer.apply(params, state, x)
    h = np.maximum(dense_np(params["inner"]["dense_0"], x), 0.0)
    want = dense_np(params["dense_0"], dense_np(params["inner"]["dense_1"], h))
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-5)

    seq = nn.Sequential([inner, nn.ReLU()])
    sp, ss = seq.init(jax.random.key(3), (4,))
    assert sorted(sp) == ["inner_0"]
    ys, _ = seq.apply(sp, ss, x)
    yi, _ = inner.apply(sp["inner_0"], {}, x)
    np.testing.assert_allclose(np.asarray(ys), np.maximum(np.asarray(yi), 0.0))


def test_several_outputs_and_a_multi_output_model_called_on_nodes():
    inp = nn.Input((4,))
    a, b = nn.Dense(2)(inp), nn.Dense(3)(inp)
    two = nn.Model(inp, [a, b], name="two")
    params, state = two.init(jax.random.key(0))
    x, _ = inputs()
    ya, yb = two.apply(params, state, x)[0]
    np.testing.assert_allclose(np.asarray(ya), dense_np(params["dense_0"], x), rtol=1e-5,
                               atol=1e-5)
    assert yb.shape == (5, 3) and two.output_shape() == ((2,), (3,))
    new_in = nn.Input((4,))
    na, nb = two(new_in)
    assert (na.shape, nb.shape) == ((2,), (3,))
    outer = nn.Model(new_in, nn.Concatenate()([na, nb]))
    po, so = outer.init(jax.random.key(0))
    y, _ = outer.apply(po, so, x)
    ya2, yb2 = two.apply(po["two"], {}, x)[0]
    np.testing.assert_array_equal(np.asarray(y), np.concatenate([ya2, yb2], axis=1))


def test_sub_model_outputs_equal_the_parents_intermediate_values():
    inp = nn.Input((8,))
    code = nn.Dense(2, activation="tanh")(nn.Dense(4, activation="relu")(inp))
    x_hat = nn.Dense(8)(nn.Dense(4, activation="relu")(code))
    autoencoder = nn.Model(inp, x_hat)
    encoder = nn.Model(inp, code)
    probe = nn.Model(inp, [code, x_hat])  # the same graph, also returning the code
    params, state = autoencoder.init(jax.random.key(4))
    assert encoder.names == autoencoder.names[:2] and probe.names == autoencoder.names
    assert autoencoder.inputs == (inp,) and autoencoder.outputs == (x_hat,)
    assert autoencoder.layers[1] is code.layer and autoencoder.get_node("dense_1") is code
    x = jax.random.normal(jax.random.key(5), (6, 8))
    (z_probe, out_probe), _ = probe.apply(params, state, x)
    z, _ = encoder.apply(nn.subtree(params, encoder), {}, x)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_probe))
    np.testing.assert_array_equal(np.asarray(autoencoder.apply(params, state, x)[0]),
                                  np.asarray(out_probe))
    h = np.maximum(dense_np(params["dense_0"], x), 0.0)
    np.testing.assert_allclose(np.asarray(z), np.tanh(dense_np(params["dense_1"], h)),
                               rtol=1e-5, atol=1e-5)
    assert sorted(nn.subtree(params, encoder)) == ["dense_0", "dense_1"]
    with pytest.raises(ValueError, match="subtree: the params lack the entries"):
        nn.subtree({"dense_0": params["dense_0"]}, encoder)


@pytest.mark.parametrize("merge", [nn.Concatenate(), nn.Add(), nn.Multiply(), nn.Average()])
def test_float64_gradcheck_through_a_graph_with_a_merge(merge):
    inp1, inp2 = nn.Input((3,)), nn.Input((3,))
    h1 = nn.Dense(4, activation="tanh")(inp1)
    h2 = nn.Dense(4, activation="sigmoid")(inp2)
    model = nn.Model([inp1, inp2], nn.Dense(2)(merge([h1, h2])))
    with jax.enable_x64(True):
        params, state = model.init(jax.random.key(0))
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x1 = jax.random.normal(jax.random.key(1), (4, 3), jnp.float64)
        x2 = jax.random.normal(jax.random.key(2), (4, 3), jnp.float64)

        def f(p, a, b):
            return model.apply(p, state, (a, b))[0]
        gradcheck(f, params, x1, x2)


@pytest.mark.parametrize("merge, reference", [
    (nn.Add(), lambda a, b: a + b), (nn.Multiply(), lambda a, b: a * b),
    (nn.Average(), lambda a, b: (a + b) / 2), (nn.Concatenate(axis=1), np.concatenate)])
def test_merge_layers_equal_numpy(merge, reference):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], np.float32)
    y, state = merge.apply({}, {}, [jnp.asarray(a), jnp.asarray(b)])
    want = reference([a, b], axis=1) if merge == nn.Concatenate(axis=1) else reference(a, b)
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-6)
    assert merge.init(jax.random.key(0), [(3,), (3,)]) == ({}, {}) and state == {}


def test_jit_equals_eager_compiles_once_and_vmaps(count_compiles):
    model = course_model()
    params, state = model.init(jax.random.key(0))
    x1, x2 = inputs()
    eager, _ = model.apply(params, state, (x1, x2))
    fast = jax.jit(model.apply, static_argnames="training")
    jitted, _ = fast(params, state, (x1, x2))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6, atol=1e-6)
    new1, new2 = inputs(seed=1)
    with count_compiles() as compiles:
        fast(params, state, (new1, new2))
    assert compiles == []
    stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), params)
    # vmap and grad under jit: op by op, each batched or transposed primitive compiled alone.
    ys = jax.jit(jax.vmap(lambda p: model.apply(p, state, (x1, x2))[0]))(stacked)
    np.testing.assert_allclose(np.asarray(ys[0]), np.asarray(eager), rtol=1e-6, atol=1e-6)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(model.apply(p, state, (x1, x2))[0] ** 2)))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert hash(model) == hash(model) and model == model


def test_layer_contract_on_a_single_input_model(layer_contract):
    inp = nn.Input((5,))
    h = nn.Dense(4, activation="tanh")(inp)
    model = nn.Model(inp, nn.Add()([nn.Dense(3)(h), nn.Dense(3)(h)]))
    layer_contract(model, (5,), wrong_shape=(6,), expected_in_message="(None, 5)")


def test_batch_norm_state_and_dropout_keys_in_a_graph():
    inp = nn.Input((3,))
    model = nn.Model(inp, nn.Dropout(0.5)(nn.BatchNorm()(nn.Dense(8)(inp))))
    params, state = model.init(jax.random.key(0))
    assert sorted(state) == ["batch_norm_0"]
    x = jax.random.normal(jax.random.key(1), (16, 3))
    y, new_state = model.apply(params, state, x, key=jax.random.key(2), training=True)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert not np.allclose(np.asarray(new_state["batch_norm_0"]["mean"]),
                           np.asarray(state["batch_norm_0"]["mean"]))
    assert 0.2 < float(jnp.mean(y == 0.0)) < 0.8  # dropout got its key
    y_eval, same = model.apply(params, state, x)
    assert float(jnp.mean(y_eval == 0.0)) == 0.0 and same == state


def both_inputs_task(n, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(n, 4)).astype(np.float32)
    x2 = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x1.sum(axis=1) + x2.sum(axis=1) > 0).astype(np.int32)
    return (x1, x2), y


def test_trainer_fits_evaluates_and_predicts_with_tuple_inputs():
    inp1, inp2 = nn.Input((4,)), nn.Input((4,))
    h = nn.Concatenate()([nn.Dense(8, activation="relu")(inp1),
                          nn.Dense(8, activation="relu")(inp2)])
    model = nn.Model([inp1, inp2], nn.Dense(2)(h))
    (x, y), (xt, yt) = both_inputs_task(512, 0), both_inputs_task(256, 1)
    trainer = train.Trainer(model, optimizer=optim.adam(1e-2), metrics=("accuracy",))
    history = trainer.fit(x, y, epochs=30, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    result = trainer.evaluate(xt, yt)
    assert result["accuracy"] > 0.9  # one input alone allows about 0.75
    logits = trainer.predict(xt)
    assert logits.shape == (256, 2)
    assert np.mean(np.argmax(logits, axis=1) == yt) == pytest.approx(result["accuracy"])


def test_calling_a_layer_on_an_array_raises_a_clear_type_error():
    for layer in (nn.Dense(3), nn.ReLU(), nn.Sequential([nn.Dense(2)]), nn.Concatenate(),
                  nn.Tanh(), nn.Conv2D(2, 3), course_model()):
        with pytest.raises(TypeError, match=r"layer\.apply\(params, state, x\).*nn\.Input"):
            layer(jnp.ones((2, 4)))


def error_text(excinfo) -> str:
    return "\n".join([str(excinfo.value), *getattr(excinfo.value, "__notes__", ())])


def test_construction_errors_name_the_layer_and_both_shapes():
    flat = nn.Input((4,))
    with pytest.raises(ValueError) as e:
        nn.Conv2D(2, 3)(flat, name="stem")
    text = error_text(e)
    assert "stem" in text and "(None, 4)" in text and "(height, width, channels)" in text
    with pytest.raises(ValueError) as e:
        nn.Dense(3)(nn.Input(()))
    assert "Dense" in error_text(e) and "(None,)" in error_text(e) and "rank >= 1" in error_text(e)
    a, b = nn.Input((4, 3)), nn.Input((5, 2))
    with pytest.raises(ValueError) as e:
        nn.Concatenate()([a, b])
    assert "Concatenate" in error_text(e) and "(None, 4, 3), (None, 5, 2)" in error_text(e)
    with pytest.raises(ValueError) as e:
        nn.Add()([nn.Input((4,)), nn.Input((5,))])
    assert "Add" in error_text(e) and "(None, 4), (None, 5)" in error_text(e)
    assert "one and the same shape" in error_text(e)


def test_construction_errors_of_the_graph_itself():
    inp1, inp2, other = nn.Input((4,), name="a"), nn.Input((4,), name="b"), nn.Input((4,), name="c")
    h1, h2 = nn.Dense(3)(inp1), nn.Dense(3)(other)
    with pytest.raises(ValueError, match="does not depend on any declared input"):
        nn.Model(inp1, h2)
    with pytest.raises(ValueError, match="node from another graph.*Input 'c'"):
        nn.Model(inp1, nn.Add()([h1, h2]))
    with pytest.raises(ValueError, match=r"declared inputs \[\"Input 'b'\"\] are used by no"):
        nn.Model([inp1, inp2], h1)
    with pytest.raises(TypeError, match=r"inputs\[0\] is Node\(Dense.*not an nn.Input"):
        nn.Model(h1, nn.Dense(2)(h1))
    with pytest.raises(TypeError, match=r"`inputs`\[0\] must be a graph node"):
        nn.Model(np.ones((2, 4)), h1)
    with pytest.raises(ValueError, match="two different layers are named 'x'"):
        nn.Model(inp1, nn.Add()([nn.Dense(3)(inp1, name="x"), nn.Dense(3)(inp1, name="x")]))
    shared = nn.Dense(3)
    with pytest.raises(ValueError, match="shared layer .* shape"):
        five = nn.Input((5,))
        nn.Model([inp1, five], nn.Add()([shared(inp1), shared(five)]))


def test_apply_errors_wrong_number_and_shape_of_inputs():
    model = course_model()
    params, state = model.init(jax.random.key(0))
    x1, x2 = inputs()
    with pytest.raises(ValueError, match=r"expected 2 inputs.*\(None, 4\).*one array of shape"):
        model.apply(params, state, x1)
    with pytest.raises(ValueError, match=r"expected 2 inputs.*received 3 arrays"):
        model.apply(params, state, (x1, x2, x2))
    with pytest.raises(ValueError, match=r"input 1 \(Input 'right'\) expected shape \(None, 4\)"
                                         r".*received \(5, 3\)"):
        model.apply(params, state, (x1, x2[:, :3]))
    with pytest.raises(ValueError, match=r"expected input_shape \(\(4,\), \(4,\)\)"):
        model.init(jax.random.key(0), ((4,), (5,)))
    with pytest.raises(ValueError, match="match no layer"):
        model.apply({**params, "dense_9": {}}, state, (x1, x2))


def test_summary_counts_frozen_params_and_state_as_non_trainable():
    inp = nn.Input((4,))
    pretrained = nn.Model(inp, nn.BatchNorm()(nn.Dense(3)(inp)), name="base")
    new_in = nn.Input((4,))
    model = nn.Model(new_in, nn.Dense(2)(nn.Frozen(pretrained)(new_in)))
    text = nn.summary(model)
    # frozen: Dense 4*3+3 = 15, BatchNorm gamma/beta 3+3 and mean/var 3+3; trainable: 3*2+2
    assert "Trainable params: 8 (32 B)" in text
    assert "Non-trainable params: 27 (108 B)" in text and "Total params: 35" in text
    seq = nn.Sequential([nn.Frozen(nn.Dense(3)), nn.BatchNorm(), nn.Dense(2)])
    text = nn.summary(seq, (4,))
    assert "Trainable params: 14 (56 B)" in text and "Non-trainable params: 21 (84 B)" in text


def test_subtree_of_a_later_branch_needs_explicit_names_and_says_so():
    inp1, inp2 = nn.Input((4,)), nn.Input((4,))
    h2 = nn.Dense(40)(nn.Dense(30)(inp1))
    h4 = nn.Dense(50)(nn.Dense(20)(inp2))
    params, _ = nn.Model([inp1, inp2], nn.Concatenate()([h2, h4])).init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"'dense_0/kernel' is \(4, 30\) but \(4, 20\)"):
        nn.subtree(params, nn.Model(inp2, h4))  # its own names dense_0/1 are branch 1's
    named = nn.Dense(50)(nn.Dense(20)(inp2, name="right_1"), name="right_2")
    parent = nn.Model([inp1, inp2], nn.Concatenate()([h2, named]))
    params, state = parent.init(jax.random.key(0))
    branch = nn.Model(inp2, named)
    picked = nn.subtree(params, branch)
    assert sorted(picked) == ["right_1", "right_2"] and nn.subtree(state, branch) == {}
    x1, x2 = inputs()
    y, _ = parent.apply(params, state, (x1, x2))
    np.testing.assert_array_equal(np.asarray(branch.apply(picked, {}, x2)[0]),
                                  np.asarray(y[:, 40:]))
