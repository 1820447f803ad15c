"""jaxdl.compilation: model creation in one compiled program, and the persistent cache.

Compilations are counted with JAX's monitoring events (``count_compiles``), never
timed. The persistent cache is checked in child processes, each with its own
JAX, on a directory of the test's own.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import compilation, nn, optim, train


def cnn():
    """The demo-like CNN of issue 16 (two conv/BN/pool blocks and a dense head), small."""
    return nn.Sequential([
        nn.Conv2D(8, 3, padding="same"), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 3, padding="same"), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dense(10)])


def graph_model():
    a, b = nn.Input((6,)), nn.Input((3,))
    h = nn.Concatenate()([nn.Dense(5, activation="tanh")(a), b])
    inner = nn.Sequential([nn.Dense(4, activation="relu"), nn.Dense(2)])  # nested container
    return nn.Model([a, b], inner(h))


@pytest.mark.parametrize("make, shape", [(cnn, (12, 12, 1)), (graph_model, None)],
                         ids=["sequential-cnn", "graph-nested"])
def test_init_is_one_program_and_equal_models_share_it(make, shape, count_compiles):
    key = jax.random.key(1)  # drawing the key compiles; that is the caller's
    jax.block_until_ready(key)
    with count_compiles() as first:
        params, state = make().init(key, shape)
    with count_compiles() as again:
        params2, state2 = make().init(key, shape)  # a new but equal model
    assert len(first) <= 1, f"model.init compiled {len(first)} programs"
    assert again == []
    reference = jax.jit(lambda k: make().init(k, shape))(key)
    for got in ((params, state), (params2, state2)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference), strict=True):
            np.testing.assert_array_equal(a, b)


def test_train_state_create_is_one_program(count_compiles):
    key = jax.random.key(0)
    jax.block_until_ready(key)
    with count_compiles() as first:
        state = train.TrainState.create(cnn(), optim.adam(1e-3), (12, 12, 1), key)
    with count_compiles() as again:  # a fresh optimizer object: equal computation, shared
        state2 = train.TrainState.create(cnn(), optim.adam(1e-3), (12, 12, 1), key)
    assert len(first) <= 1 and again == []
    assert int(state.step) == 0 and state.key.dtype == jnp.uint32
    mu = state.opt_state[0].mu["dense_0"]["kernel"]
    assert mu.shape == (3 * 3 * 16, 32) and float(jnp.abs(mu).max()) == 0.0
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state2), strict=True):
        np.testing.assert_array_equal(a, b)
    # Adam's state does not hold the learning rate: another one shares the program.
    other = train.TrainState.create(cnn(), optim.adam(0.5), (12, 12, 1), key)
    np.testing.assert_array_equal(other.params["conv2d_0"]["kernel"],
                                  state.params["conv2d_0"]["kernel"])


def test_summary_and_output_shape_compile_nothing(count_compiles):
    model = cnn()
    with count_compiles() as compiles:
        text = nn.summary(model, (12, 12, 1))
        shape = nn.output_shape(model, (12, 12, 1))
    assert compiles == [] and shape == (10,) and "conv2d_0" in text


def test_init_inside_transformations_is_part_of_the_callers_program():
    model = nn.Sequential([nn.Dense(3), nn.Dense(2)])
    keys = jax.random.split(jax.random.key(0), 4)
    batched, _ = jax.vmap(lambda k: model.init(k, (5,)))(keys)
    assert batched["dense_0"]["kernel"].shape == (4, 5, 3)
    one, _ = model.init(keys[2], (5,))
    np.testing.assert_allclose(batched["dense_1"]["kernel"][2], one["dense_1"]["kernel"],
                               rtol=0, atol=1e-7)
    abstract = jax.eval_shape(lambda k: model.init(k, (5,)), keys[0])
    assert abstract[0]["dense_1"]["kernel"].shape == (3, 2)


class ConstantLayer(nn.Layer):
    """A user layer whose params are a closed-over constant: programs differing only in
    that constant must not be shared."""

    def __init__(self, value):
        object.__setattr__(self, "value", np.asarray(value, np.float32))

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def init(self, key, input_shape):
        return {"w": jnp.asarray(self.value) + 0.0 * jax.random.uniform(key, (2,))}, {}

    def apply(self, params, state, x, *, key=None, training=False):
        return x * params["w"], state


class ConcreteInitLayer(nn.Layer):
    """A user layer whose init needs concrete values (Python control flow on an array)."""

    def init(self, key, input_shape):
        scale = 2.0 if float(jax.random.uniform(key)) > 0.5 else 1.0
        return {"w": scale * jnp.ones(input_shape)}, {}

    def apply(self, params, state, x, *, key=None, training=False):
        return x * params["w"], state


def test_programs_differing_in_a_constant_are_not_shared():
    key = jax.random.key(0)
    a, _ = nn.Sequential([ConstantLayer([1.0, 2.0])]).init(key, (2,))
    b, _ = nn.Sequential([ConstantLayer([3.0, 4.0])]).init(key, (2,))
    np.testing.assert_array_equal(a["constant_layer_0"]["w"], [1.0, 2.0])
    np.testing.assert_array_equal(b["constant_layer_0"]["w"], [3.0, 4.0])


def test_a_layer_needing_concrete_values_still_initializes():
    params, _ = nn.Sequential([ConcreteInitLayer()]).init(jax.random.key(0), (3,))
    assert float(params["concrete_init_layer_0"]["w"][0]) in (1.0, 2.0)


def test_init_errors_are_the_layers_own():
    with pytest.raises(TypeError, match="Sequential.init: `key` must be a JAX random key"):
        cnn().init(0, (12, 12, 1))


# ------------------------------------------------------------------ the persistent cache

def test_enable_cache_rejects_a_file_and_a_bad_size(tmp_path):
    before = compilation.cache_dir()
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ValueError, match="enable_cache: directory must be a writable directory"):
        compilation.enable_cache(target)
    with pytest.raises(ValueError, match="max_size_bytes must be a positive"):
        compilation.enable_cache(tmp_path / "cache", max_size_bytes=0)
    assert compilation.cache_dir() == before  # a refused call changes nothing


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "here"))
    assert compilation.default_cache_dir() == tmp_path / "here"
    assert compilation.cache_requested()
    monkeypatch.setenv(compilation.CACHE_ENV, "1")  # on, in the default place
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation.default_cache_dir() == tmp_path / "xdg" / "jaxdl" / "xla"
    assert compilation.cache_requested()
    monkeypatch.setenv(compilation.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation.default_cache_dir() == tmp_path / "xdg" / "jaxdl" / "xla"
    assert not compilation.cache_requested()


CHILD = textwrap.dedent("""
    import json, sys, time
    import jax
    from jaxdl import compilation, nn, optim, train, losses
    path = compilation.enable_cache(sys.argv[1])
    compiles, hits = [], []  # compile requests (served from disk or not), disk hits
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, d, **kw: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event)
        if event == "/jax/compilation_cache/cache_hits" else None)
    model = nn.Sequential([nn.Conv2D(4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(3)])
    opt = optim.adam(1e-2)
    state = train.TrainState.create(model, opt, (6, 6, 1), jax.random.key(0))
    step = train.make_train_step(model, losses.sparse_categorical_crossentropy, opt)
    x = jax.numpy.ones((4, 6, 6, 1)); y = jax.numpy.arange(4) % 3
    state, logs = step(state, (x, y))
    print(json.dumps({"compiles": len(compiles), "hits": len(hits), "loss": float(logs["loss"]),
                      "status": compilation.cache_status()}))
""")


def _run_children(directory: pathlib.Path, count: int) -> list[dict]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(directory)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert "Error" not in err and "WARNING" not in err, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_persistent_cache_is_shared_by_processes_and_warms_the_next_run(tmp_path):
    """Two processes fill one cache directory at the same time (JAX's file lock keeps it
    consistent); a third process reads every program from it and computes the same step."""
    directory = tmp_path / "xla"
    cold = _run_children(directory, 2)
    assert all(r["compiles"] >= 2 for r in cold)  # key, creation, step...: compiled
    assert any(p.name.endswith("-cache") for p in directory.iterdir())
    (warm,) = _run_children(directory, 1)
    assert warm["compiles"] >= 2 and warm["hits"] == warm["compiles"], warm  # all from disk
    assert warm["loss"] == cold[0]["loss"] == cold[1]["loss"]
    assert warm["status"].startswith(f"on, {directory}")


@pytest.mark.parametrize("shape", [(3, 3, 4, 8), (5, 7), (2, 3, 4)])
def test_initializers_draw_flat_without_changing_a_number(shape):
    """Drawing flat and reshaping (XLA:CPU compiles it about 3x faster) gives the draws of
    the shaped call bit for bit, run op by op and jitted."""
    from jaxdl.nn import initializers

    key = jax.random.key(7)
    samplers = [lambda s: jax.random.uniform(key, s, jnp.float32, -0.3, 0.3),
                lambda s: jax.random.normal(key, s, jnp.float32),
                lambda s: jax.random.truncated_normal(key, -2.0, 2.0, s, jnp.float32)]
    for sample in samplers:
        asked = []
        flat = initializers.draw_flat(lambda s, f=sample, a=asked: a.append(s) or f(s), shape)
        assert asked == [(int(np.prod(shape)),)]  # drawn as one flat vector
        np.testing.assert_array_equal(flat, sample(shape))
        flat = jax.jit(lambda f=sample: initializers.draw_flat(f, shape))()
        np.testing.assert_array_equal(flat, jax.jit(lambda f=sample: f(shape))())
