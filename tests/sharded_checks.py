"""Data-parallel checks run in ONE child process with 8 forced host devices.

``tests/test_sharding.py`` starts ``python tests/sharded_checks.py OUT.json`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the device count is fixed
when JAX starts, so it cannot be set inside the test process) and asserts on the
figures this script writes. Each check compares a run on a mesh with the same run
on one device (the independent reference): same seed, same data, same order.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import jax
import numpy as np
from jax.sharding import Mesh

from jaxdl import data, nn, optim, train
from jaxdl.train import sharding


def _rel_diff(a, b) -> float:
    """The largest per-leaf ``max|a - b| / max|a|`` over two trees of the same structure."""
    worst = 0.0
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        worst = max(worst, float(np.max(np.abs(u - v)) / max(np.max(np.abs(u)), 1e-12)))
    return worst


def _mlp():
    # No bias before BatchNorm: its gradient is zero up to rounding, which Adam would
    # amplify into a random walk (a float artefact, not a sharding one).
    # Its 64x64 kernel (4096 elements) is large enough for shard_params to split.
    return nn.Sequential([nn.Dense(64, use_bias=False), nn.BatchNorm(), nn.Activation("relu"),
                          nn.Dropout(0.25), nn.Dense(10)])


def _cnn():
    return nn.Sequential([nn.Conv2D(4, 3, use_bias=False), nn.BatchNorm(), nn.Activation("relu"),
                          nn.MaxPool2D(2), nn.Flatten(), nn.Dropout(0.2), nn.Dense(10)])


def _digits(n, flat):
    (x, y), _ = data.load_digits(flatten=flat)
    return x[:n], y[:n]


def _trainer(model, mesh, **kw):
    return train.Trainer(model, "sparse_categorical_crossentropy", optim.adam(3e-3),
                         metrics=("accuracy",), mesh=mesh, **kw)


def _pair(model_fn, x, y, mesh="data", shard_params=False, **fit):
    """Fit the same run on one device and on ``mesh``; both trainers and histories."""
    out = []
    for m in (None, mesh):
        t = _trainer(model_fn(), m, **({"shard_params": True} if m and shard_params else {}))
        h = t.fit(x, y, verbose=0, seed=3, **fit)
        out.append((t, h))
    return out


#: Examples and epochs of the long MLP run: ``--full`` (the slow test) trains 310 steps,
#: the quick run in CI 55.
SIZES = {"quick": (124, 5), "full": (364, 10)}
SIZE = "quick"


def check_mlp_equals_one_device() -> dict:
    """Many steps of an MLP with BatchNorm and Dropout over 8 devices with shard_params
    against 1 device: params, moving statistics, losses, validation, evaluation,
    predictions, and the bytes a device holds. The batches of 12 (a last one of 4) do
    not divide over 8 devices: they are split unevenly. (The other checks replicate.)"""
    n, epochs = SIZES[SIZE]
    x, y = _digits(n, True)
    (one, h1), (eight, h8) = _pair(_mlp, x, y, shard_params=True, epochs=epochs, batch_size=12,
                                   validation_data=_digits(300, True))
    kernel = eight.state.params["dense_0"]["kernel"]
    return {"kernel_split_axes": [i for i, a in enumerate(kernel.sharding.spec) if a == "data"],
            "devices": len(kernel.sharding.device_set),
            "kernel_shard_rows": int(kernel.addressable_shards[0].data.shape[0]),
            "bytes_one": sharding.per_device_bytes((one.state.params, one.state.opt_state)),
            "bytes_sharded": sharding.per_device_bytes((eight.state.params, eight.state.opt_state)),
            "small_replicated": bool(
                eight.state.params["dense_1"]["kernel"].sharding.is_fully_replicated),
"steps": int(eight.state.step),
            "params": _rel_diff(one.state.params, eight.state.params),
            "model_state": _rel_diff(one.state.model_state, eight.state.model_state),
            "loss": _rel_diff(h1.history["loss"], h8.history["loss"]),
            "val_loss": _rel_diff(h1.history["val_loss"], h8.history["val_loss"]),
            "evaluate": _rel_diff(one.evaluate(x, y), eight.evaluate(x, y)),
            "predict": _rel_diff(one.predict(x), eight.predict(x)),
            "loss_fell": h8.history["loss"][-1] < 0.5 * h8.history["loss"][0],
            **_checkpoints_cross_device_counts(one, eight, x, y, epochs)}


def check_moving_statistics_after_one_step() -> dict:
    """One step over one batch: BatchNorm's moving statistics are the global batch's."""
    x, y = _digits(16, True)
    (one, _), (eight, _) = _pair(_mlp, x, y, epochs=1, batch_size=16, shuffle=False)
    return {"steps": int(eight.state.step),
            "model_state": _rel_diff(one.state.model_state, eight.state.model_state),
            "moved": float(np.max(np.abs(np.asarray(
                jax.tree.leaves(eight.state.model_state)[0])))) > 0}


def check_cnn_equals_one_device() -> dict:
    """A CNN (one compiled call per step on the CPU): 8 devices against 1."""
    x, y = _digits(64, False)
    (one, h1), (eight, h8) = _pair(_cnn, x, y, epochs=2, batch_size=16)
    return {"params": _rel_diff(one.state.params, eight.state.params),
            "loss": _rel_diff(h1.history["loss"], h8.history["loss"])}


def _checkpoints_cross_device_counts(one, eight, x, y, done) -> dict:
    """Saved on 8 devices, restored on 1 (into ``one``) and on a 4-device mesh: the same
    values, bit for bit; one more epoch goes on from there as it does on 8."""
    with tempfile.TemporaryDirectory() as tmp:
        path = eight.save(os.path.join(tmp, "eight.ckpt"))
        saved = jax.tree.map(np.asarray, eight.state)
        four = _trainer(_mlp(), Mesh(np.array(jax.devices()[:4]), ("data",)))
        out, resumed = {}, {"one": one, "four": four}
        for name, t in resumed.items():
            t.restore(path)
            out[f"{name}_bit_identical"] = all(
                np.array_equal(a, np.asarray(b)) for a, b in
                zip(jax.tree.leaves(saved), jax.tree.leaves(t.state), strict=True))
    for t in (eight, *resumed.values()):
        t.fit(x, y, epochs=done + 1, batch_size=12, verbose=0, seed=3, initial_epoch=done)
    out.update({f"{name}_resumed": _rel_diff(eight.state.params, t.state.params)
                for name, t in resumed.items()})
    return out


CHECKS = [check_mlp_equals_one_device, check_moving_statistics_after_one_step,
          check_cnn_equals_one_device]


def main(out_path: str, size: str = "quick") -> None:
    global SIZE
    SIZE = size
    results = {"devices": jax.device_count()}
    for check in CHECKS:
        try:
            results[check.__name__] = check()
        except Exception as e:  # reported to the test, which fails naming the check
            results[check.__name__] = {"error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:3])
