"""One process of the multi-host check in ``tests/test_multihost.py`` (a script, not a test).

Usage::

    python tests/multihost_worker.py PORT PROCESS_ID NUM_PROCESSES OUT.npz

Each process starts JAX's distributed runtime on the local coordinator
``127.0.0.1:PORT`` with CPU collectives (gloo), takes its share of the same
global data (:func:`jaxdl.data.process_shard`), trains the model of :func:`train`
with ``Trainer(..., mesh="data")`` over the devices of all processes, and writes
its final params and model state (BatchNorm statistics), what ``evaluate`` and
``predict`` give on its share, and what ``jaxdl info`` prints there, to ``OUT.npz``. Run it
with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` for two CPU devices
per process. The test imports :func:`global_data` and :func:`train` for its
one-process reference; importing this module starts nothing.
"""

from __future__ import annotations

import sys

import numpy as np

N_ROWS = 65          # process_shard drops the odd row with 2 processes
BATCH_SIZE = 16      # 4 rows per device on 2 processes x 2 devices
EPOCHS = 3


def global_data():
    """The full dataset, the same in every process: 64 kept rows, 3 classes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1).astype(np.int32)
    return x, y


def train(x, y, mesh):
    """Train the tiny model (Dense, BatchNorm, Dropout) on ``(x, y)``; return host arrays
    ``{"params/...": ..., "model_state/...": ..., "evaluate_loss": ..., "predict": ...}``
    (the loss ``evaluate`` gives and what ``predict`` returns for ``x``: over every
    process's rows) and the final training loss."""
    import jax

    from jaxdl import nn, optim
    from jaxdl.train import Trainer, sharding

    model = nn.Sequential([nn.Dense(16), nn.BatchNorm(momentum=0.9), nn.ReLU(),
                           nn.Dropout(0.25), nn.Dense(3)])
    trainer = Trainer(model, "sparse_categorical_crossentropy", optim.sgd(0.1, momentum=0.9),
                      mesh=mesh)
    history = trainer.fit(x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, seed=3, verbose=0)
    out = {"evaluate_loss": np.float64(trainer.evaluate(x, y, batch_size=8)["loss"]),
           "predict": trainer.predict(x, batch_size=8)}
    for name, tree in (("params", trainer.state.params),
                       ("model_state", trainer.state.model_state)):
        for path, leaf in jax.tree_util.tree_leaves_with_path(sharding.to_host(tree)):
            out[name + "/" + jax.tree_util.keystr(path, simple=True, separator="/")] = leaf
    return out, history.history["loss"][-1]


#: The exit status of a worker that could not start the distributed runtime here.
CANNOT_START = 77


def main(argv):
    port, process_id, num_processes, out = argv
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                   num_processes=int(num_processes), process_id=int(process_id),
                                   initialization_timeout=120)
    except Exception as error:  # the runtime, not jaxdl: the test skips with this reason
        print(f"cannot start JAX's distributed runtime with gloo CPU collectives: {error!r}")
        return CANNOT_START
    from jaxdl import cli, data

    x, y = data.process_shard(*global_data())
    arrays, loss = train(x, y, mesh="data")
    np.savez(out, final_loss=np.float64(loss), devices=len(jax.devices()),
             local_rows=len(x), info=cli.info(), **arrays)
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
