"""Data-parallel training on a mesh (jaxdl.train.sharding, Trainer(mesh=...)).

The multi-device checks run in one child process with 8 forced host devices
(``tests/sharded_checks.py``); each compares a mesh run with the same run on one
device. The tests here read its figures; the rules themselves are checked in
this process too.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxdl import data, nn, optim, train
from jaxdl.train import sharding

HERE = os.path.dirname(os.path.abspath(__file__))


def _run_child(tmp_path_factory, size: str) -> dict:
    out = tmp_path_factory.mktemp("sharded") / "results.json"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "sharded_checks.py"), str(out),
                           size], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["devices"] == 8
    errors = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    return _run_child(tmp_path_factory, "quick")


def _assert_mlp(r, tol):
    assert r["devices"] == 8 and r["loss_fell"]
    for name in ("params", "model_state", "loss", "val_loss", "evaluate", "predict"):
        assert r[name] < tol, (name, r[name])


def test_eight_devices_train_as_one(eight):
    # Batches of 12 over 8 devices (split unevenly), BatchNorm and Dropout in the model,
    # the params sharded (the one-step and CNN checks below replicate them).
    r = eight["check_mlp_equals_one_device"]
    assert r["steps"] == 55
    _assert_mlp(r, 1e-5)


def test_moving_statistics_are_the_global_batchs_after_one_step(eight):
    r = eight["check_moving_statistics_after_one_step"]
    assert r["steps"] == 1 and r["moved"]
    assert r["model_state"] < 1e-6


def test_cnn_steps_one_call_each_on_eight_devices(eight):
    r = eight["check_cnn_equals_one_device"]
    assert r["params"] < 1e-5 and r["loss"] < 1e-5


def test_checkpoints_cross_device_counts(eight):
    r = eight["check_mlp_equals_one_device"]
    assert r["one_bit_identical"] and r["four_bit_identical"]
    assert r["one_resumed"] < 1e-5 and r["four_resumed"] < 1e-5


def test_shard_params_same_results_less_memory_per_device(eight):
    r = eight["check_mlp_equals_one_device"]   # the results: test_eight_devices_train_as_one
    assert r["kernel_split_axes"] == [0] and r["kernel_shard_rows"] == 8   # 64 rows / 8
    assert r["small_replicated"]               # 64x10: gathering it would cost more than it saves
    # The 64x64 kernel and its two Adam moments are split 8 ways, the small leaves stay whole:
    # 3 * (4096 + 640 + 10 + 128) floats on one device, 3 * (512 + 640 + 10 + 128) sharded.
    assert r["bytes_sharded"] < 0.3 * r["bytes_one"]


@pytest.mark.slow
def test_eight_devices_train_as_one_for_three_hundred_steps(tmp_path_factory):
    r = _run_child(tmp_path_factory, "full")["check_mlp_equals_one_device"]
    assert r["steps"] == 310
    _assert_mlp(r, 1e-4)


# ------------------------------------------------------------------ in this process

def test_resolve_mesh_accepts_none_data_and_a_mesh():
    assert sharding.resolve_mesh("t", None) is None
    mesh = sharding.resolve_mesh("t", "data")
    assert mesh.axis_names == ("data",) and mesh.devices.size == jax.device_count()
    given = Mesh(np.array(jax.devices()), ("data",))
    assert sharding.resolve_mesh("t", given) is given


@pytest.mark.parametrize("mesh, error, words", [
    ("model", ValueError, "mesh='data'"),
    (3, TypeError, "jax.make_mesh"),
    (Mesh(np.array(jax.devices()), ("batch",)), ValueError, "axes are ('batch',)"),
])
def test_resolve_mesh_errors_name_the_argument_and_the_fix(mesh, error, words):
    with pytest.raises(error, match="Trainer: .*mesh") as e:
        train.Trainer(nn.Sequential([nn.Dense(2)]), "mse", mesh=mesh)
    assert words in str(e.value)


def test_shard_params_without_a_mesh_is_refused():
    with pytest.raises(ValueError, match="shard_params=True .* mesh is None"):
        train.Trainer(nn.Sequential([nn.Dense(2)]), "mse", shard_params=True)


def test_leaf_spec_splits_the_largest_divisible_axis_of_large_leaves():
    assert sharding.leaf_spec((64, 512), 8, True) == P(None, "data")
    assert sharding.leaf_spec((512, 64), 8, True) == P("data", None)
    assert sharding.leaf_spec((100, 100), 8, True) == P()        # no axis divides
    assert sharding.leaf_spec((16, 16), 8, True) == P()          # too small to pay
    assert sharding.leaf_spec((64, 512), 8, False) == P()
    assert sharding.leaf_spec((64, 512), 1, True) == P()


def test_mesh_over_this_process_devices_equals_no_mesh():
    # mesh="data" works on one device too (CI's case): same numbers as without a mesh.
    (x, y), _ = data.load_digits(flatten=True)
    x, y = x[:96], y[:96]
    runs = []
    for mesh in (None, "data"):
        t = train.Trainer(nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(10)]),
                          "sparse_categorical_crossentropy", optim.adam(1e-2), mesh=mesh)
        h = t.fit(x, y, epochs=2, batch_size=32, verbose=0)
        runs.append((h.history["loss"], t.state.params, t.predict(x[:5])))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(runs[0][1]), jax.tree.leaves(runs[1][1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(runs[0][2], runs[1][2], rtol=1e-5, atol=1e-6)


def test_per_device_bytes_and_describe_mesh():
    assert sharding.per_device_bytes({"w": jax.numpy.zeros((3, 5))}) == 60
    assert "data: " in sharding.describe_mesh(sharding.resolve_mesh("t", "data"))
