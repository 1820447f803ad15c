"""Checkpoints: round trips, corruption, unsafe files, kills mid-save, bit-identical resume."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import checkpoint, data, losses, nn, optim, train
from jaxdl.checkpoint import CheckpointError


def _tree():
    return {
        "f32": jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
        "bf16": jnp.array([1.5, -2.25], jnp.bfloat16),
        "nested": {"i32": jnp.array([1, 2, 3], jnp.int32), "bool": jnp.array([True, False]),
                   "scalar": jnp.float32(3.5)},
        "list": [jnp.zeros((0, 4)), np.uint8(7)],
        "f64": np.array([1e-300, 2.0]),
    }


def _assert_tree_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_round_trip_mixed_dtypes_without_and_with_target(tmp_path):
    path = tmp_path / "t.ckpt"
    checkpoint.save(path, _tree(), metadata={"note": "hello", "epoch": 3})
    plain = checkpoint.restore(path)
    assert isinstance(plain["list"], list)
    _assert_tree_equal(plain, jax.tree.map(np.asarray, _tree()))
    _assert_tree_equal(checkpoint.restore(path, target=_tree()), _tree())
    assert checkpoint.read_metadata(path) == {"note": "hello", "epoch": 3}
    assert [n for n in os.listdir(tmp_path)] == ["t.ckpt"]  # no temporary left behind


def test_namedtuple_states_round_trip(tmp_path):
    model = nn.Sequential([nn.Dense(3), nn.BatchNorm()])
    opt = optim.adam(1e-3)
    state = train.TrainState.create(model, opt, (4,), jax.random.key(0))
    checkpoint.save(tmp_path / "s.ckpt", state)
    back = checkpoint.restore(tmp_path / "s.ckpt", target=state)
    assert type(back) is train.TrainState and type(back.opt_state) is type(state.opt_state)
    _assert_tree_equal(back, state)


def test_every_flip_and_truncation_raises(tmp_path):
    path = tmp_path / "t.ckpt"
    checkpoint.save(path, _tree(), metadata={"m": 1})
    blob = path.read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.ckpt"
    for pos in rng.choice(len(blob), size=100, replace=False):
        flipped = bytearray(blob)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError):
            checkpoint.restore(bad)
    for cut in sorted(set(rng.integers(0, len(blob), size=30).tolist()) | {0, 5, len(blob) - 1}):
        bad.write_bytes(blob[:cut])
        with pytest.raises(CheckpointError):
            checkpoint.restore(bad)


def test_foreign_files_raise(tmp_path):
    p = tmp_path / "x.ckpt"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a jaxdl checkpoint"):
        checkpoint.restore(p)
    with pytest.raises(FileNotFoundError):
        checkpoint.restore(tmp_path / "missing.ckpt")


class _Evil:
    """Unpickling this would create a sentinel file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_refused_and_runs_no_code(tmp_path):
    sentinel = tmp_path / "pwned"
    p = tmp_path / "evil.ckpt"
    p.write_bytes(pickle.dumps(_Evil(str(sentinel))))
    with pytest.raises(CheckpointError):
        checkpoint.restore(p)
    # Even when disguised behind our magic bytes.
    p.write_bytes(checkpoint.MAGIC + pickle.dumps(_Evil(str(sentinel))))
    with pytest.raises(CheckpointError):
        checkpoint.restore(p)
    assert not sentinel.exists()


def _forge(path, header_leaves, arrays_payload):
    """A well-formed file (valid checksums) with a chosen header and payload."""
    import hashlib
    import json
    import struct

    header = {"format": "jaxdl-checkpoint", "format_version": 1, "leaves": header_leaves,
              "payload_sha256": hashlib.sha256(arrays_payload).hexdigest(), "metadata": {}}
    hb = json.dumps(header).encode()
    body = (checkpoint.MAGIC + struct.pack("<I", 1) + struct.pack("<Q", len(hb)) + hb
            + struct.pack("<Q", len(arrays_payload)) + arrays_payload)
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_object_dtype_is_refused_on_load_and_save(tmp_path):
    import msgpack
    from flax import serialization

    p = tmp_path / "obj.ckpt"
    # A payload that declares an object array (flax's ndarray ext record, dtype "object").
    good = serialization.msgpack_serialize({"0": np.zeros(2, np.float32)})
    _forge(p, [{"path": [["d", "w"]], "dtype": "object", "shape": [2]}], good)
    with pytest.raises(CheckpointError, match="refused"):
        checkpoint.restore(p)
    ext = msgpack.ExtType(1, msgpack.packb(((2,), "object", b"\0" * 16)))
    evil_payload = msgpack.packb({"0": ext})
    _forge(p, [{"path": [["d", "w"]], "dtype": "float32", "shape": [2]}], evil_payload)
    with pytest.raises(CheckpointError):
        checkpoint.restore(p)
    with pytest.raises(TypeError, match="object"):
        checkpoint.save(tmp_path / "o.ckpt", {"w": np.array([None, 1], dtype=object)})
    assert not (tmp_path / "o.ckpt").exists()


def test_target_mismatch_names_the_leaf_and_both_shapes(tmp_path):
    small = nn.Sequential([nn.Dense(4), nn.Dense(2)])
    big = nn.Sequential([nn.Dense(8), nn.Dense(2)])
    p_small, _ = small.init(jax.random.key(0), (3,))
    p_big, _ = big.init(jax.random.key(0), (3,))
    checkpoint.save(tmp_path / "p.ckpt", p_small)
    with pytest.raises(ValueError, match=r"'dense_0/bias'.*\(4,\).*\(8,\)"):
        checkpoint.restore(tmp_path / "p.ckpt", target=p_big)
    partial = {"dense_0": p_small["dense_0"], "dense_1": {"bias": p_small["dense_1"]["bias"]}}
    with pytest.raises(ValueError, match=r"in the file but not in the target: \['dense_1/kernel'\]"):
        checkpoint.restore(tmp_path / "p.ckpt", target=partial)
    with pytest.raises(ValueError, match=r"the target has but the file lacks: \['extra'\]"):
        checkpoint.restore(tmp_path / "p.ckpt", target={**p_small, "extra": jnp.zeros(1)})


def test_manager_retention_and_best(tmp_path):
    m = checkpoint.CheckpointManager(tmp_path, max_to_keep=2, best_metric="val_loss")
    for step, loss in [(1, 0.9), (2, 0.3), (3, 0.5), (4, 0.6), (5, 0.7)]:
        m.save(step, {"w": jnp.full((2,), step, jnp.float32)}, metrics={"val_loss": loss})
    assert m.all_steps() == [2, 4, 5]  # the 2 newest plus the best (step 2)
    assert m.latest_step() == 5 and m.best_step() == 2
    np.testing.assert_array_equal(m.restore()["w"], [5, 5])
    np.testing.assert_array_equal(m.restore(2)["w"], [2, 2])
    # Leftover temporaries and foreign names are ignored; stale temporaries (here an
    # old-style one untouched for two hours) are removed by the next save.
    stale = tmp_path / ".step_9.ckpt.abcd1234.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "notes.txt").write_text("hi")
    assert m.latest_step() == 5
    m.save(6, {"w": jnp.zeros(2)})
    assert not stale.exists() and (tmp_path / "notes.txt").exists()
    with pytest.raises(ValueError, match="max_to_keep"):
        checkpoint.CheckpointManager(tmp_path, max_to_keep=0)


_SAVER = textwrap.dedent("""
    import sys, numpy as np
    from jaxdl import checkpoint
    m = checkpoint.CheckpointManager(sys.argv[1], max_to_keep=2)
    step = (m.latest_step() or 0) + 1
    print("ready", flush=True)
    while True:
        m.save(step, {"w": np.full((256, 256), step, np.float32), "step": np.int64(step)})
        step += 1
""")


def test_kill_mid_save_leaves_the_latest_step_loadable(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    directory = tmp_path / "ckpts"
    rng = np.random.default_rng(0)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, str(script), str(directory)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        m = checkpoint.CheckpointManager(directory)
        step = m.latest_step()
        assert step is not None
        tree = m.restore(step)
        assert int(tree["step"]) == step
        np.testing.assert_array_equal(tree["w"], np.full((256, 256), step, np.float32))


# ------------------------------------------------------------------------- Trainer resume

def _cnn():
    return nn.Sequential([
        nn.Conv2D(8, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dropout(0.3), nn.Dense(10)])


def _trainer():
    return train.Trainer(_cnn(), losses.sparse_categorical_crossentropy, optim.adam(2e-3),
                         metrics=("accuracy",))


def test_resume_is_bit_identical(tmp_path):
    (x, y), _ = data.load_digits()
    x, y = x[:400], y[:400]
    kwargs = dict(batch_size=32, seed=7, verbose=0, validation_split=0.2)

    full = _trainer()
    h_full = full.fit(x, y, epochs=4, **kwargs)

    first = _trainer()
    first.fit(x, y, epochs=2, callbacks=[train.ModelCheckpoint(tmp_path / "ck",
                                                               monitor="val_loss")], **kwargs)
    resumed = _trainer()  # a fresh trainer: nothing shared with the first run
    meta = resumed.restore(tmp_path / "ck")
    assert meta["epoch"] == 2 and resumed.epoch == 2
    h_rest = resumed.fit(x, y, epochs=4, initial_epoch=2, **kwargs)

    _assert_tree_equal(resumed.state.params, full.state.params)
    _assert_tree_equal(resumed.state.opt_state, full.state.opt_state)
    _assert_tree_equal(resumed.state, full.state)
    assert h_rest.history["loss"] == h_full.history["loss"][2:]


def test_trainer_save_restore_file_and_wrong_model(tmp_path):
    (x, y), (xt, yt) = data.load_digits()
    t = _trainer()
    t.fit(x[:200], y[:200], epochs=1, verbose=0)
    t.save(tmp_path / "t.ckpt")
    fresh = _trainer()
    fresh.restore(tmp_path / "t.ckpt")
    np.testing.assert_array_equal(fresh.predict(xt[:20]), t.predict(xt[:20]))
    narrower = nn.Sequential([
        nn.Conv2D(4, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dropout(0.3), nn.Dense(10)])
    other = train.Trainer(narrower, losses.sparse_categorical_crossentropy, optim.adam(2e-3))
    with pytest.raises(ValueError, match=r"conv2d_0/bias'.*\(8,\).*\(4,\)"):
        other.restore(tmp_path / "t.ckpt")


def test_model_checkpoint_best_only_and_max_to_keep(tmp_path):
    (x, y), _ = data.load_digits()
    t = _trainer()
    values = [0.5, 0.4, 0.6, 0.3, 0.35]

    def inject(epoch, logs):
        logs["score"] = values[epoch]

    cb = train.ModelCheckpoint(tmp_path / "best", monitor="score", save_best_only=True,
                               max_to_keep=1)
    t.fit(x[:100], y[:100], epochs=5, batch_size=50, verbose=0,
          callbacks=[train.LambdaCallback(on_epoch_end=inject), cb])
    m = checkpoint.CheckpointManager(tmp_path / "best")
    assert m.all_steps() == [4]  # epoch index 3 (0.3) was the last improvement
    assert m.metadata()["metrics"]["score"] == 0.3


def test_resume_carries_callback_state(tmp_path):
    """Patience counted before the interruption still counts after it."""
    (x, y), _ = data.load_digits()
    x, y = x[:64], y[:64]
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # never improves after epoch 0

    def fake():
        return train.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(fake=values[e]))

    whole = _trainer()
    stop = train.EarlyStopping(monitor="fake", patience=3)
    whole.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[fake(), stop])
    assert stop.stopped_epoch == 3

    first = _trainer()
    first.fit(x, y, epochs=2, batch_size=32, verbose=0,
              callbacks=[fake(), train.EarlyStopping(monitor="fake", patience=3),
                         train.ModelCheckpoint(tmp_path / "ck", monitor="loss")])
    resumed = _trainer()
    meta = resumed.restore(tmp_path / "ck")
    assert meta["callbacks"]["EarlyStopping_0"]["wait"] == 1
    stop2 = train.EarlyStopping(monitor="fake", patience=3)
    resumed.fit(x, y, epochs=6, initial_epoch=2, batch_size=32, verbose=0,
                callbacks=[fake(), stop2])
    assert stop2.stopped_epoch == 3  # not 5: the wait of the first run carried over
