"""Multi-host training: 2 local processes with CPU collectives end with the params of 1 process.

Two worker processes (``tests/multihost_worker.py``, 2 forced CPU devices each)
start JAX's distributed runtime on a local coordinator, each feeding its own
``data.process_shard`` of the same data to ``Trainer(..., mesh="data")`` over
the 4 devices of both. The reference is the same global data trained here on
one device, without a mesh. BatchNorm and Dropout are in the model, so the check
covers global batch statistics and the random keys of a sharded step; ``evaluate``
and ``predict`` on the shares must give the reference's figures for all rows, and
``jaxdl info`` in each worker must name both processes and the 4-device mesh.
"""

import os
import socket
import subprocess
import sys

import multihost_worker as worker
import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multihost_worker.py")
TIMEOUT_S = 300   # generous: two JAX starts and compilations on 2 busy cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_workers(tmp_path, processes=2):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    port, outs = _free_port(), [tmp_path / f"process_{i}.npz" for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, WORKER, str(port), str(i), str(processes),
                               str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for i, out in enumerate(outs)]
    return procs, outs


def _results(procs, outs):
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=TIMEOUT_S)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a multi-host worker ran past {TIMEOUT_S} s")
    failed = [(p.returncode, log) for p, log in zip(procs, logs, strict=True) if p.returncode]
    for rc, log in failed:
        if rc == worker.CANNOT_START:
            pytest.skip(log.strip().splitlines()[-1])
    assert not failed, "\n\n".join(f"exit {rc}:\n{log[-3000:]}" for rc, log in failed)
    return [dict(np.load(out)) for out in outs]


def test_two_processes_train_like_one(tmp_path):
    procs, outs = _start_workers(tmp_path)
    x, y = worker.global_data()
    kept = len(x) - len(x) % 2
    reference, ref_loss = worker.train(x[:kept], y[:kept], mesh=None)   # while they run
    results = _results(procs, outs)
    assert [int(r["local_rows"]) for r in results] == [kept // 2, kept // 2]
    assert all(int(r["devices"]) == 4 for r in results)   # one mesh over both processes
    for i, r in enumerate(results):                        # and `jaxdl info` says so
        info = str(r["info"]).splitlines()
        assert f"processes  2 (this is process {i}; local devices: 2)" in info
        assert [line.endswith(f"process {d // 2})") for d, line in enumerate(
            line for line in info if line.startswith("device "))] == [True] * 4
        assert "data: 4 " in [line for line in info if line.startswith("mesh ")][0]
    first, second = results
    names = sorted(reference)
    assert sorted(k for k in first if "/" in k or k in ("evaluate_loss", "predict")) == names
    for name in names:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
        np.testing.assert_allclose(first[name], reference[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    assert any(name.startswith("model_state") for name in names)   # BatchNorm's statistics
    assert first["predict"].shape == (kept, 3)   # evaluate and predict cover every process's rows
    np.testing.assert_allclose(float(first["final_loss"]), ref_loss, rtol=1e-5)
    assert ref_loss < 0.8   # it learned: the loss of a uniform guess over 3 classes is ln 3 = 1.10
