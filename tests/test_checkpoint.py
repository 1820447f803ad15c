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

from jaxdl import _checks, checkpoint, data, losses, nn, optim, train
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
    for x, y in zip(la, lb, strict=True):
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
    with pytest.raises(ValueError,
                       match=r"in the file but not in the target: \['dense_1/kernel'\]"):
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


def _child_env():
    """The environment for a child process that imports this very jaxdl."""
    import jaxdl
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxdl.__file__)))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


_SAVER = textwrap.dedent("""
    import os, sys, numpy as np
    from jaxdl import checkpoint  # imported once: each saver is a fork of this process (no
    # JAX backend has started, so it has one thread and forks safely)

    def saver(directory):
        m = checkpoint.CheckpointManager(directory, max_to_keep=2)
        step = (m.latest_step() or 0) + 1
        while True:
            m.save(step, {"w": np.full((256, 256), step, np.float32), "step": np.int64(step)})
            print(step, flush=True)  # the test reads this line: step is now on disk
            step += 1

    for _ in sys.stdin:  # one line per round: start a saver, report its pid and its end
        pid = os.fork()
        if pid == 0:
            saver(sys.argv[1])
        print("pid", pid, flush=True)
        os.waitpid(pid, 0)  # the test kills it
        print("dead", flush=True)
""")


def _next_words(proc):
    line = proc.stdout.readline()
    assert line, "the saver process ended early"
    return line.split()


def test_kill_mid_save_leaves_the_latest_step_loadable(tmp_path):
    """No timing: each round waits for the saver's k-th completed save, then kills it
    during a later one; the temporaries of the killed saves are cleaned afterwards. The
    five savers are forks of one child process, so JAX and jaxdl are imported once."""
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    directory = tmp_path / "ckpts"
    rng = np.random.default_rng(0)
    proc = subprocess.Popen([sys.executable, str(script), str(directory)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_child_env())
    pid = None
    try:
        for _ in range(5):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            pid, saved, wanted = None, [], int(rng.integers(1, 4))
            while pid is None or len(saved) < wanted:
                words = _next_words(proc)
                if words == ["dead"]:  # reaped already
                    pid = None
                    raise AssertionError("a saver ended before it was killed")
                if words[0] == "pid":
                    pid = int(words[1])
                else:
                    saved.append(int(words[0]))
            os.kill(pid, signal.SIGKILL)
            while (words := _next_words(proc)) != ["dead"]:
                saved.append(int(words[0]))  # printed before the kill landed: on disk too
            pid = None  # reaped: the number may belong to another process from now on
            m = checkpoint.CheckpointManager(directory)
            step = m.latest_step()
            assert step is not None and step >= saved[-1]
            tree = m.restore(step)
            assert int(tree["step"]) == step
            np.testing.assert_array_equal(tree["w"], np.full((256, 256), step, np.float32))
    finally:  # also after a failed check: no saver is left running
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it had ended (unreaped, so never another's pid)
                pass
        proc.stdin.close()
        proc.wait()
        proc.stdout.close()
    m.save(step + 1, {"w": np.zeros(1)})  # the killed processes' temporaries are stale now
    assert sorted(os.listdir(directory)) == sorted(
        [os.path.basename(m.path(s)) for s in m.all_steps()] + [".jaxdl-checkpoint.lock"])


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
    t.fit(x[:192], y[:192], epochs=1, verbose=0)  # 6 full batches: no last-batch program
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


# ------------------------------------------------------------------ diverged states (item 1)

def _diverging_trainer():
    model = nn.Sequential([nn.Dense(1)])
    return train.Trainer(model, losses.mean_squared_error, optim.sgd(0.8), metrics=())


def test_a_diverged_run_never_replaces_the_last_finite_checkpoint(tmp_path):
    """max_to_keep=1 + TerminateOnNaN, no validation: plain SGD with a rate far above
    2/curvature multiplies the loss about a millionfold per epoch; it overflows to inf in
    epoch 6 (checked below: some epochs finite, then one not)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True).astype(np.float32)
    seen = []
    record = train.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (logs["loss"], jax.tree.map(np.array, t.state.params))))
    t = _diverging_trainer()
    with pytest.warns(UserWarning, match=r"epoch \d+ holds non-finite"):
        t.fit(x, y, epochs=20, batch_size=4, verbose=0, shuffle=False,
              callbacks=[record, train.ModelCheckpoint(tmp_path, max_to_keep=1),
                         train.TerminateOnNaN()])
    finite = [i for i, (loss, _) in enumerate(seen) if np.isfinite(loss)]
    assert finite and len(seen) == finite[-1] + 2  # finite epochs, then the diverged one
    assert not np.isfinite(seen[-1][0])
    m = checkpoint.CheckpointManager(tmp_path)
    assert m.all_steps() == [finite[-1] + 1] and m.diverged_steps() == [len(seen)]
    fresh = _diverging_trainer()
    meta = fresh.restore(tmp_path)
    assert meta["epoch"] == finite[-1] + 1
    _assert_tree_equal(jax.tree.map(np.asarray, fresh.state.params), seen[finite[-1]][1])
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(fresh.state.params))


@pytest.mark.parametrize("bad", [float("nan"), np.float32("nan"), np.float64("inf")])
def test_all_finite_sees_python_and_numpy_non_finite_metrics(bad):
    tree = {"w": np.ones(2, np.float32)}
    assert checkpoint.all_finite(tree, {"loss": 0.5, "acc": np.float32(0.9)})
    assert not checkpoint.all_finite(tree, {"loss": bad})


def test_messages_name_leaves_by_the_shared_path_form(tmp_path):
    """Attribute, sequence and dict keys are joined with '/' exactly as _checks.path_str does."""
    tree = {"opt": [optim.TraceState(trace={"w": np.ones(2, np.float32)})]}
    path = checkpoint.save(tmp_path / "a.ckpt", tree)
    target = {"opt": [optim.TraceState(trace={"w": np.ones(3, np.float32)})]}
    (keys, _), = jax.tree_util.tree_flatten_with_path(target)[0]
    assert _checks.path_str(keys) == "opt/0/trace/w"
    with pytest.raises(ValueError, match="leaf 'opt/0/trace/w' has shape"):
        checkpoint.restore(path, target=target)


def test_restore_falls_back_past_corrupt_and_non_finite_files_with_a_warning(tmp_path):
    m = checkpoint.CheckpointManager(tmp_path)
    m.save(1, {"w": np.ones(3, np.float32)}, metrics={"loss": 0.5})
    m.save(2, {"w": np.full(3, 2, np.float32)}, metrics={"loss": 0.4})
    # A non-finite state under a plain step name (e.g. written by an older jaxdl).
    checkpoint.save(tmp_path / "step_3.ckpt", {"w": np.array([1, np.nan, 3], np.float32)})
    blob = (tmp_path / "step_2.ckpt").read_bytes()
    (tmp_path / "step_2.ckpt").write_bytes(blob[:-10])  # truncated
    with pytest.warns(UserWarning) as caught:
        tree = m.restore()
    np.testing.assert_array_equal(tree["w"], np.ones(3, np.float32))
    messages = " ".join(str(w.message) for w in caught)
    assert "step_3.ckpt" in messages and "non-finite" in messages
    assert "step_2.ckpt" in messages and "truncated" in messages
    with pytest.warns(UserWarning, match="non-finite"):
        m.save(4, {"w": np.zeros(3, np.float32)}, metrics={"loss": float("inf")})
    assert m.latest_step() == 3 and m.diverged_steps() == [4]


# ------------------------------------------------------------ files that are not files (7)

def test_non_regular_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):
        checkpoint.restore(fifo)  # would block forever if it were opened for reading
    with pytest.raises(CheckpointError, match="FIFO"):
        checkpoint.read_metadata(fifo)
    if os.path.exists("/dev/zero"):
        (tmp_path / "zero.ckpt").symlink_to("/dev/zero")
        with pytest.raises(CheckpointError, match="device"):
            checkpoint.restore(tmp_path / "zero.ckpt")
    with pytest.raises(CheckpointError, match="directory"):
        checkpoint.restore(tmp_path)


def test_declared_sizes_are_checked_against_the_file_size(tmp_path):
    import struct

    p = tmp_path / "big.ckpt"
    p.write_bytes(checkpoint.MAGIC + struct.pack("<I", 1) + struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(CheckpointError, match=r"declares a 1099511627776-byte header"):
        checkpoint.restore(p)
    good = tmp_path / "good.ckpt"
    checkpoint.save(good, {"w": np.ones(4, np.float32)})
    blob = bytearray(good.read_bytes())
    (h_len,) = struct.unpack_from("<Q", blob, 12)
    struct.pack_into("<Q", blob, 20 + h_len, 1 << 50)  # payload length
    p.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="-byte payload"):
        checkpoint.restore(p)
    # A sparse 3 GiB file of zeros after the magic is refused at once, not read.
    with open(p, "wb") as f:
        f.write(checkpoint.MAGIC + struct.pack("<I", 1))
        f.truncate(3 << 30)
    with pytest.raises(CheckpointError, match="payload|header"):
        checkpoint.read_metadata(p)


# ------------------------------------------------------------ crafted headers (item 8)

def _write_forged(path, header, payload=b"", version=1):
    """A file with an arbitrary header (dict or raw bytes) and valid checksums."""
    import hashlib
    import json
    import struct

    if isinstance(header, dict):
        header = {**header, "payload_sha256": hashlib.sha256(payload).hexdigest()}
        header = json.dumps(header).encode()
    body = (checkpoint.MAGIC + struct.pack("<I", version) + struct.pack("<Q", len(header))
            + header + struct.pack("<Q", len(payload)) + payload)
    path.write_bytes(body + hashlib.sha256(body).digest())


def _header_and_payload(path):
    import json
    import struct

    blob = path.read_bytes()
    (h_len,) = struct.unpack_from("<Q", blob, 12)
    return json.loads(blob[20:20 + h_len]), blob[20 + h_len + 8:-32]


@pytest.mark.parametrize("mutate, field", [
    (lambda h: h["leaves"][0].pop("shape"), r"leaves\[0\]\.shape"),
    (lambda h: h["leaves"][0].pop("path"), r"leaves\[0\]\.path"),
    (lambda h: h["leaves"][0].update(path="w"), r"leaves\[0\]\.path"),
    (lambda h: h["leaves"][0].update(path=[["d", "k"]] * 20000), r"leaves\[0\]\.path"),
    (lambda h: h["leaves"][0].update(path=[["s", "x"]]), r"leaves\[0\]\.path\[0\]"),
    (lambda h: h["leaves"][0].update(shape=[-1]), r"leaves\[0\]\.shape"),
    (lambda h: h.update(leaves={"0": 1}), r"header\.leaves"),
    (lambda h: h.update(metadata=[1, 2]), r"header\.metadata"),
    (lambda h: h.update(metadata={"step": "x"}), r"metadata\.step"),
    (lambda h: h.update(metadata={"metrics": {"loss": "abc"}}), r"metadata\.metrics"),
    (lambda h: h.update(format_version="1"), r"header\.format_version"),
])
def test_crafted_headers_with_valid_checksums_raise_naming_the_field(tmp_path, mutate, field):
    good = tmp_path / "good.ckpt"
    checkpoint.save(good, {"w": np.ones(2, np.float32)})
    header, payload = _header_and_payload(good)
    mutate(header)
    _write_forged(tmp_path / "bad.ckpt", header, payload)
    with pytest.raises(CheckpointError, match=field):
        checkpoint.restore(tmp_path / "bad.ckpt")


def test_deeply_nested_json_and_colliding_paths_raise_checkpoint_errors(tmp_path):
    p = tmp_path / "deep.ckpt"
    _write_forged(p, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    with pytest.raises(CheckpointError, match="RecursionError"):
        checkpoint.restore(p)
    from flax import serialization
    payload = serialization.msgpack_serialize({"0": np.ones(1, np.float32),
                                               "1": np.ones(1, np.float32)})
    leaf = {"path": [["d", "w"]], "dtype": "float32", "shape": [1]}
    _write_forged(p, {"format": "jaxdl-checkpoint", "format_version": 1, "metadata": {},
                      "leaves": [leaf, {**leaf, "path": [["d", "w"], ["d", "x"]]}]}, payload)
    with pytest.raises(CheckpointError, match="collides"):
        checkpoint.restore(p)


def test_big_endian_leaves_are_refused_on_load_and_swapped_on_save(tmp_path):
    import msgpack

    big = np.arange(3, dtype=">f4")
    checkpoint.save(tmp_path / "be.ckpt", {"w": big})
    back = checkpoint.restore(tmp_path / "be.ckpt")["w"]
    assert back.dtype == np.float32 and back.dtype.isnative
    np.testing.assert_array_equal(back, [0, 1, 2])
    ext = msgpack.ExtType(1, msgpack.packb(((3,), ">f4", big.tobytes())))
    _write_forged(tmp_path / "x.ckpt", {"format": "jaxdl-checkpoint", "format_version": 1,
                                        "metadata": {}, "leaves": [
                                            {"path": [["d", "w"]], "dtype": "float32",
                                             "shape": [3]}]}, msgpack.packb({"0": ext}))
    with pytest.raises(CheckpointError, match="big-endian"):
        checkpoint.restore(tmp_path / "x.ckpt")


def test_a_newer_format_version_says_so_before_the_checksum(tmp_path):
    p = tmp_path / "new.ckpt"
    _write_forged(p, {"format": "jaxdl-checkpoint", "format_version": 2, "leaves": [],
                      "metadata": {}}, version=2)
    p.write_bytes(p.read_bytes()[:-1] + b"\0")  # a checksum this version cannot judge
    with pytest.raises(CheckpointError, match="newer format version 2"):
        checkpoint.restore(p)


def _tiny_trainer():
    return train.Trainer(nn.Sequential([nn.Dense(2)]), losses.mean_squared_error,
                         optim.sgd(0.1), metrics=())


@pytest.mark.parametrize("change, field", [
    ({"epoch": "x"}, r"metadata\.epoch"),
    ({"epoch": -5}, r"metadata\.epoch"),
    ({"epoch": True}, r"metadata\.epoch"),
    ({"input_shape": "3"}, r"metadata\.input_shape"),
    ({"callbacks": {"EarlyStopping_0": "garbage"}}, r"metadata\.callbacks"),
    ({"callbacks": {"EarlyStopping_0": {"wait": [1, [2]]}}}, r"metadata\.callbacks"),
    ({"callbacks": []}, r"metadata\.callbacks"),
])
def test_crafted_trainer_metadata_raises_naming_the_field(tmp_path, change, field):
    t = _tiny_trainer()
    t.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), epochs=1, verbose=0)
    t.save(tmp_path / "t.ckpt")
    header, payload = _header_and_payload(tmp_path / "t.ckpt")
    header["metadata"].update(change)
    _write_forged(tmp_path / "bad.ckpt", header, payload)
    with pytest.raises(CheckpointError, match=field):
        _tiny_trainer().restore(tmp_path / "bad.ckpt")
    # In a directory, the bad newest file is skipped (with a warning) for the good one.
    (tmp_path / "d").mkdir()
    os.replace(tmp_path / "t.ckpt", tmp_path / "d" / "step_1.ckpt")
    os.replace(tmp_path / "bad.ckpt", tmp_path / "d" / "step_2.ckpt")
    with pytest.warns(UserWarning, match=field):
        assert _tiny_trainer().restore(tmp_path / "d")["epoch"] == 1


def test_garbage_model_checkpoint_state_raises_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="'best'"):
        train.ModelCheckpoint("unused").load_state_dict({"best": "x"})


# ------------------------------------------------------- shared directories (item 9)

def test_two_managers_on_one_directory_never_break_each_other(tmp_path):
    """Two threads, each with its own manager, save interleaved steps; every save must
    succeed (before: one manager's pruning deleted the other's temporary file)."""
    import threading

    errors, barrier = [], threading.Barrier(2)

    def saver(parity):
        m = checkpoint.CheckpointManager(tmp_path, max_to_keep=2)
        barrier.wait()
        for i in range(60):
            step = 2 * i + parity
            try:
                m.save(step, {"w": np.full((64, 64), step, np.float32)})
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                errors.append(repr(e))

    threads = [threading.Thread(target=saver, args=(p,)) for p in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    m = checkpoint.CheckpointManager(tmp_path)
    assert 119 in m.all_steps() and len(m.all_steps()) <= 4
    for s in m.all_steps():
        np.testing.assert_array_equal(m.restore(s)["w"], np.full((64, 64), s, np.float32))


# ------------------------------------------------------------------ step names (item 10)

def test_one_ascii_parser_lists_and_opens_the_same_files(tmp_path):
    checkpoint.save(tmp_path / "step_007.ckpt", {"w": np.full(2, 7.0)})
    checkpoint.save(tmp_path / "step_\u0663.ckpt", {"w": np.zeros(2)})  # Arabic-Indic 3
    (tmp_path / "step_1.ckpt").mkdir()
    m = checkpoint.CheckpointManager(tmp_path)
    assert m.all_steps() == [7] and m.latest_step() == 7
    np.testing.assert_array_equal(m.restore(7)["w"], [7.0, 7.0])
    np.testing.assert_array_equal(m.restore()["w"], [7.0, 7.0])
    assert m.metadata(7) == {}
    assert checkpoint.step_of("step_\u0663.ckpt") is None
    assert checkpoint.step_of("step_07.ckpt") == 7
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="not a regular file"):
        m.save(1, {"w": np.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, not even a temporary
    with pytest.raises(ValueError, match="not a regular file"):
        checkpoint.save(tmp_path / "step_1.ckpt", {"w": np.zeros(2)})


def test_huge_steps_are_listed_and_bad_steps_refused(tmp_path):
    m = checkpoint.CheckpointManager(tmp_path)
    m.save(10 ** 13, {"w": np.zeros(1)})
    m.save(np.int64(5), {"w": np.zeros(1)})
    assert m.all_steps() == [5, 10 ** 13] and m.latest_step() == 10 ** 13
    for bad, error in [(True, TypeError), (1.0, TypeError), ("3", TypeError), (-1, ValueError)]:
        with pytest.raises(error, match="step"):
            m.save(bad, {"w": np.zeros(1)})
    with pytest.raises(TypeError, match="'loss'"):
        m.save(6, {"w": np.zeros(1)}, metrics={"loss": "abc"})
    assert m.all_steps() == [5, 10 ** 13]


# ------------------------------------------- temporaries, writable arrays, disk full (11)

_KILLED_SAVER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from jaxdl import checkpoint
    def die(fd):  # killed after writing the temporary, before the rename
        os.kill(os.getpid(), signal.SIGKILL)
    os.fsync = die
    checkpoint.save(sys.argv[1], {"w": np.ones(1000, np.float32)})
""")


def test_temporaries_of_killed_saves_are_cleaned_by_the_next_save(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_SAVER)
    d = tmp_path / "d"
    d.mkdir()
    proc = subprocess.run([sys.executable, str(script), str(d / "w.ckpt")], env=_child_env())
    assert proc.returncode == -signal.SIGKILL
    left = os.listdir(d)
    assert len(left) == 1 and left[0].startswith(".w.ckpt.")  # the killed save's temporary
    checkpoint.save(d / "other.ckpt", {"v": np.zeros(1)})
    assert os.listdir(d) == ["other.ckpt"]


def test_restored_numpy_arrays_are_writable(tmp_path):
    checkpoint.save(tmp_path / "t.ckpt", {"w": np.arange(3.0), "n": {"i": np.arange(2)}})
    tree = checkpoint.restore(tmp_path / "t.ckpt")
    tree["w"] += 1
    tree["n"]["i"][0] = 5
    np.testing.assert_array_equal(tree["w"], [1.0, 2.0, 3.0])
    target = {"w": np.zeros(3), "n": {"i": np.zeros(2, np.int64)}}
    assert checkpoint.restore(tmp_path / "t.ckpt", target=target)["w"].flags.writeable


def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "w.ckpt"
    checkpoint.save(path, {"w": np.ones(2)})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"w\.ckpt.*disk is full") as info:
        checkpoint.save(path, {"w": np.zeros(2)})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpoint.restore(path)["w"], [1.0, 1.0])
    assert os.listdir(tmp_path) == ["w.ckpt"]


def test_readme_states_when_resume_is_bit_identical():
    """Item 12: the claim holds on one machine, core count and XLA flags only."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Save and resume", 1)[1].split("\n## ", 1)[0]
    text = " ".join(section.split())
    claim = re.search(r"[^.]*bit-identical[^.]*\.", text).group(0)
    for condition in ("same machine", "number of CPU cores", "XLA flags"):
        assert condition in claim, (condition, claim)
    assert "1e-4 between 1 and 2 CPU cores" in text
