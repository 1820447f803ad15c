"""Data-parallel scaling and mixed precision: ``Trainer.fit`` on 1, 2, 4, 8 devices.

Two workloads (synthetic data, Adam with lr 1e-3, the global batch fixed as the
device count grows, i.e. strong scaling):

* **CNN** conv3×3×32 - maxpool 2 - conv3×3×64 - maxpool 2 - dense 128 - dense 10
  on 28×28×1 images at batch 128 (bench_train.py's CNN);
* **MLP** 784-2048-2048-10 at batch 128: most of its 5.8 M params sit in one
  large Dense, the case ``shard_params`` is for.

For each device count ``N`` (``--devices 1,2,4,8``) and each workload, with and
without ``shard_params``: steps per second of ``Trainer(..., mesh=Mesh(N devices,
("data",)))).fit`` over one epoch (median over rounds, after a warm-up that
compiles), and the memory one device spends on the params and the optimizer
state (the bytes of each leaf's first addressable shard,
``jaxdl.train.sharding.per_device_bytes``): it falls with ``N`` only with
``shard_params``. Then float32 vs bfloat16 vs float16 steps per second on one
device (``Trainer(compute_dtype=...)``; float16 adds dynamic loss scaling).

Each device count runs in its own child process. On CPU the child gets ``N``
forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``):
they share the machine's cores, so the figures check that sharded training runs
and what it costs, not how it scales. On a GPU or TPU machine the child uses the
first ``N`` real devices and the figures are real scaling; counts above the
number of devices are skipped. This process starts no backend: the children own
the devices.

Usage::

    python benchmarks/bench_scaling.py                      # full run
    python benchmarks/bench_scaling.py --devices 1,2,4,8 --out results.md
    python benchmarks/bench_scaling.py --quick              # smaller models, fewer rounds
    python benchmarks/bench_scaling.py --smoke              # CI wiring check, asserts nothing
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_train import environment  # noqa: E402  (the same machine/version header)

FORCE_FLAG = "--xla_force_host_platform_device_count"
DTYPES = ("float32", "bfloat16", "float16")

#: Per mode: the MLP's layer sizes, the CNN's image side, the batch, rounds and the
#: target seconds of one timed round.
MODES = {
    "full": {"mlp": (784, 2048, 2048, 10), "side": 28, "batch": 128, "rounds": 5,
             "seconds": 1.0},
    "quick": {"mlp": (784, 1024, 1024, 10), "side": 28, "batch": 64, "rounds": 3,
              "seconds": 0.3},
    "smoke": {"mlp": (64, 128, 10), "side": 12, "batch": 16, "rounds": 1, "seconds": 0.0},
}


# --------------------------------------------------------------------------- the child

def build_model(kind: str, mode: dict):
    """The workload's model (``"mlp"`` or ``"cnn"``) at the mode's size."""
    from jaxdl import nn

    if kind == "mlp":
        *hidden, out = mode["mlp"][1:]
        return nn.Sequential([nn.Dense(h, activation="relu") for h in hidden] + [nn.Dense(out)])
    return nn.Sequential([nn.Conv2D(32, 3, activation="relu"), nn.MaxPool2D(2),
                          nn.Conv2D(64, 3, activation="relu"), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)])


def synthetic(kind: str, mode: dict, rows: int, seed: int = 0):
    """``rows`` random examples of the workload's input shape and 10 classes."""
    rng = np.random.default_rng(seed)
    shape = (mode["mlp"][0],) if kind == "mlp" else (mode["side"], mode["side"], 1)
    return (rng.random((rows,) + shape, dtype=np.float32),
            rng.integers(0, 10, rows).astype(np.int32))


def prepare(kind: str, mode: dict, mesh, shard_params: bool = False, compute_dtype=None):
    """A compiled ``Trainer.fit`` over one epoch: ``(run, steps, bytes)`` where ``run()``
    trains ``steps`` steps (sized to the mode's seconds) and returns its seconds, and
    ``bytes`` is what one device holds of the params and optimizer state."""
    from jaxdl import losses, optim
    from jaxdl.train import Trainer, sharding

    options = {} if compute_dtype is None else {"compute_dtype": compute_dtype}
    trainer = Trainer(build_model(kind, mode), losses.sparse_categorical_crossentropy,
                      optim.adam(1e-3), metrics=(), mesh=mesh, shard_params=shard_params,
                      **options)
    batch, data = mode["batch"], {}

    def run(steps: int) -> float:
        if steps not in data:
            data[steps] = synthetic(kind, mode, steps * batch, seed=steps)
        start = time.perf_counter()
        trainer.fit(*data[steps], epochs=1, batch_size=batch, verbose=0)
        jax.block_until_ready(trainer.state.params)
        return time.perf_counter() - start

    run(2)                                    # compiles for this epoch length
    per_step = run(2) / 2
    steps = int(min(max(mode["seconds"] / max(per_step, 1e-6), 2), 2000))
    if mode["seconds"] == 0.0:                # the smoke run: wiring only
        steps = 2
    run(steps)                                # compiles for the timed epoch length
    state = trainer.state
    return (lambda: run(steps)), steps, sharding.per_device_bytes((state.params,
                                                                   state.opt_state))


def measure(configs: list, mode: dict) -> list:
    """``configs`` (dicts of :func:`prepare`'s arguments and labels) timed in interleaved
    rounds, so that a noisy neighbour slows them all alike; each row gets its median
    steps/s and its bytes per device."""
    prepared = [prepare(mode=mode, **{k: c[k] for k in ("kind", "mesh", "shard_params",
                                                          "compute_dtype") if k in c})
                for c in configs]
    rates = [[] for _ in configs]
    for _ in range(mode["rounds"]):
        for (run, steps, _), samples in zip(prepared, rates, strict=True):
            samples.append(steps / run())
    return [{**{k: v for k, v in c.items() if k not in ("mesh", "compute_dtype")},
             "steps_per_s": statistics.median(samples), "bytes_per_device": nbytes}
            for c, (_, _, nbytes), samples in zip(configs, prepared, rates, strict=True)]


def child(devices: int, kinds: list, mode_name: str, dtypes: list) -> list:
    """Every measurement of one device count: scaling rows, and precision rows at 1 device."""
    from jax.sharding import Mesh

    available = jax.devices()
    if len(available) < devices:
        return [{"skipped": f"{devices} devices asked, {len(available)} present"}]
    mesh = Mesh(np.array(available[:devices]), ("data",))
    mode, rows = MODES[mode_name], []
    for kind in kinds:
        rows += measure([{"table": "scaling", "kind": kind, "devices": devices, "mesh": mesh,
                          "shard_params": shard, "platform": available[0].platform}
                         for shard in ((False,) if devices == 1 else (False, True))], mode)
        if devices == 1:
            rows += measure([{"table": "precision", "kind": kind, "dtype": dtype, "mesh": None,
                              "compute_dtype": None if dtype == "float32" else dtype}
                             for dtype in dtypes], mode)
    for row in rows:
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


# --------------------------------------------------------------------------- the parent

def child_env(devices: int) -> dict:
    """The environment of the child for ``devices``: ``devices`` forced host devices (the
    flag shapes the CPU platform only; on a GPU or TPU machine the child uses real ones)."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(FORCE_FLAG)]
    env["XLA_FLAGS"] = " ".join(flags + [f"{FORCE_FLAG}={devices}"])
    return env


def run_child(devices: int, kinds: list, mode_name: str, dtypes: list) -> list:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(devices), "--workloads",
           ",".join(kinds), "--mode", mode_name, "--dtypes", ",".join(dtypes)]
    proc = subprocess.run(cmd, env=child_env(devices), stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"bench_scaling: the child for {devices} devices failed "
                           f"(exit {proc.returncode}); its log is above.")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tables(rows: list) -> str:
    """The scaling and precision tables in markdown."""
    base = {(r["kind"], r["shard_params"]): r for r in rows
            if r.get("table") == "scaling" and r["devices"] == 1}
    out = ["| workload | devices | shard_params | steps/s | × 1 device | params + opt state "
           "per device (MB) |", "|---|---:|---|---:|---:|---:|"]
    for r in (r for r in rows if r.get("table") == "scaling"):
        one = base.get((r["kind"], False))
        ratio = r["steps_per_s"] / one["steps_per_s"] if one else float("nan")
        out.append(f"| {r['kind'].upper()} | {r['devices']} {r['platform']} | "
                   f"{'yes' if r['shard_params'] else 'no'} | {r['steps_per_s']:,.1f} | "
                   f"{ratio:.2f} | {r['bytes_per_device'] / 1e6:.3f} |")
    out += ["", "| workload | compute_dtype | steps/s | × float32 |", "|---|---|---:|---:|"]
    f32 = {r["kind"]: r for r in rows if r.get("table") == "precision"
           and r["dtype"] == "float32"}
    for r in (r for r in rows if r.get("table") == "precision"):
        ratio = r["steps_per_s"] / f32[r["kind"]]["steps_per_s"] if r["kind"] in f32 else 1.0
        out.append(f"| {r['kind'].upper()} | {r['dtype']} | {r['steps_per_s']:,.1f} | "
                   f"{ratio:.2f} |")
    skipped = [r["skipped"] for r in rows if "skipped" in r]
    return "\n".join(out + ([""] + [f"Skipped: {s}." for s in skipped] if skipped else []))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl data-parallel scaling and precision benchmark")
    p.add_argument("--devices", default="1,2,4,8", help="comma-separated device counts")
    p.add_argument("--workloads", default="cnn,mlp", help="comma-separated: cnn, mlp")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="compute dtypes to compare")
    p.add_argument("--quick", action="store_true", help="smaller models, fewer rounds")
    p.add_argument("--smoke", action="store_true", help="the tiniest run (CI), asserts nothing")
    p.add_argument("--out", default=None, help="append the markdown tables to this file")
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    mode = a.mode or ("smoke" if a.smoke else "quick" if a.quick else "full")
    kinds, dtypes = a.workloads.split(","), a.dtypes.split(",")
    if a.child is not None:
        print(json.dumps(child(a.child, kinds, mode, dtypes)))
        return 0
    counts = [int(c) for c in a.devices.split(",")]
    if a.smoke:
        counts, kinds = [c for c in counts if c <= 2] or [1], ["mlp"]
    rows = [row for n in counts for row in run_child(n, kinds, mode, dtypes)]
    md = tables(rows)
    env = environment()   # after the children: this process leaves the accelerators to them
    print(f"\n{env}\n\n{md}")
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n{env}\n\ncommand: `python benchmarks/bench_scaling.py "
                    f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
