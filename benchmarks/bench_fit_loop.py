"""``Trainer.fit`` against a plain loop of ``make_train_step`` calls over the same batches.

Workloads (Adam 1e-3, sparse cross-entropy, accuracy logged by both contestants):

* **MLP** 40-100-100-10 (ReLU), batch 100, 4000 synthetic MNIST-1D-sized
  examples (40 features, 10 classes): 40 steps per epoch;
* **Conv1D** ``Conv1D(32, 5, relu)`` x3 - Flatten - Dense 10 on ``(40, 1)``
  sequences, batch 100, the same 4000 examples;
* **digits CNN** (``jaxdl.demo.digits_cnn``: conv/BN/pool x2, Dense 128,
  dropout) on the bundled 8x8x1 digits (1438 training images), batch 32 as in
  the demo: 44 full batches and a last one of 30.

Contestants:

* ``loop``: what a user writes by hand. Each epoch's shuffled index batches
  are cut on the host beforehand (the same permutation and the same cut as
  ``fit``: :func:`jaxdl.data.epoch_permutation`, :func:`jaxdl.train.loop.plan_epoch`)
  and placed on the device before the clock starts; the timed part is only
  ``state, logs = step(state, batch)`` over them, then one wait for the result.
  That is the strictest bar: the loop gathers nothing, logs nothing, syncs once.
* ``fit <spe>``: ``Trainer.fit(x, y, epochs=E, verbose=0, steps_per_execution=spe)``
  after a warm-up fit that compiles; its steady state is timed by a callback
  between the ends of the first and the last epoch (so the call's setup, data
  checks and upload are left out; ``fit call`` includes them).

Rounds interleave the contestants of a workload; figures are medians over
rounds of seconds per step, and ratios are fit / loop (below 1: ``fit`` is faster).

Usage::

    python benchmarks/bench_fit_loop.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_fit_loop.py --quick    # smoke run (MLP and digits, < 60 s)
    python benchmarks/bench_fit_loop.py --only mlp,conv1d --spe auto,1,epoch --rounds 7
    python benchmarks/bench_fit_loop.py --out results.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import data, demo, losses, nn, optim, train
from jaxdl.train.loop import plan_epoch

LOSS = losses.sparse_categorical_crossentropy


# --------------------------------------------------------------------------- workloads

def workload(name: str):
    """``(model, x, y, batch_size)`` of a workload."""
    rng = np.random.default_rng(0)
    if name in ("mlp", "conv1d"):
        x = rng.standard_normal((4000, 40), dtype=np.float32)
        y = rng.integers(0, 10, 4000).astype(np.int32)
        if name == "mlp":
            return nn.Sequential([nn.Dense(100, activation="relu"),
                                  nn.Dense(100, activation="relu"), nn.Dense(10)]), x, y, 100
        model = nn.Sequential([nn.Conv1D(32, 5, activation="relu"),
                               nn.Conv1D(32, 5, activation="relu"),
                               nn.Conv1D(32, 5, activation="relu"), nn.Flatten(), nn.Dense(10)])
        return model, x[..., None], y, 100
    if name == "digits":
        (x, y), _ = data.load_digits()
        return demo.digits_cnn(), x, y, 32
    raise ValueError(f"bench_fit_loop: unknown workload {name!r}; use mlp, conv1d or digits.")


def epoch_batches(x, y, batch: int, seed: int, epoch: int) -> list:
    """The device-resident batches ``fit`` trains on in epoch ``epoch`` (same order, same cut)."""
    plan = plan_epoch("bench", len(x), batch)
    order = data.epoch_permutation(len(x), seed, epoch)
    cuts = [order[i * batch:(i + 1) * batch] for i in range(plan.full)]
    if plan.rest:
        cuts.append(order[plan.full * batch:])
    return [(jnp.asarray(x[c]), jnp.asarray(y[c])) for c in cuts]


# --------------------------------------------------------------------------- contestants
# Each factory returns run() -> (steady seconds per step, whole-call seconds per step).

def c_loop(model, x, y, batch, epochs):
    opt = optim.adam(1e-3)
    step = train.make_train_step(model, LOSS, opt, metrics=("accuracy",))
    state = [train.TrainState.create(model, opt, x.shape[1:], jax.random.key(0))]
    batches = [b for e in range(epochs) for b in epoch_batches(x, y, batch, 0, e)]

    def run():
        s = state[0]
        t = time.perf_counter()
        for b in batches:
            s, logs = step(s, b)
        jax.block_until_ready(s)
        per = (time.perf_counter() - t) / len(batches)
        state[0] = s
        return per, per
    run()  # compiles (full and last-batch shapes)
    return run


class _EpochClock(train.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def c_fit(model, x, y, batch, epochs, spe):
    trainer = train.Trainer(model, LOSS, optim.adam(1e-3), metrics=("accuracy",))
    steps = plan_epoch("bench", len(x), batch).steps
    clock = _EpochClock()

    def run(n_epochs=epochs):
        t = time.perf_counter()
        trainer.fit(x, y, epochs=n_epochs, batch_size=batch, verbose=0,
                    steps_per_execution=spe, callbacks=[clock])
        jax.block_until_ready(trainer.state)
        whole = (time.perf_counter() - t) / (n_epochs * steps)
        steady = (clock.ends[-1] - clock.ends[0]) / ((n_epochs - 1) * steps)
        return steady, whole
    run(2)  # compiles
    return run


def parse_spe(text: str):
    return text if text in ("auto", "epoch") else int(text)


def measure(name: str, spes, rounds: int, epochs: int) -> dict:
    """Median seconds per step of each contestant, over interleaved rounds."""
    model, x, y, batch = workload(name)
    runners = {"loop": c_loop(model, x, y, batch, epochs)}
    for spe in spes:
        runners[f"fit {spe}"] = c_fit(model, x, y, batch, epochs, parse_spe(spe))
    samples = {k: [] for k in runners}
    for _ in range(rounds):
        for k, run in runners.items():
            samples[k].append(run())
    return {k: (statistics.median(s for s, _ in v), statistics.median(w for _, w in v))
            for k, v in samples.items()}


# --------------------------------------------------------------------------- report

def table(results: dict) -> str:
    lines = ["| workload | contestant | ms/step (steady) | × loop | ms/step (fit call) | × loop |",
             "|---|---|---:|---:|---:|---:|"]
    for name, res in results.items():
        loop = res["loop"][0]
        for k, (steady, whole) in res.items():
            lines.append(f"| {name} | {k} | {steady * 1e3:.3f} | {steady / loop:.2f} | "
                         f"{whole * 1e3:.3f} | {whole / loop:.2f} |")
    return "\n".join(lines)


def environment() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f
                        if ln.startswith("model name")), cpu)
    except OSError:
        pass
    devs = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    vers = [f"{d} {metadata.version(d)}" for d in ("jax", "jaxlib", "optax")]
    return (f"{datetime.date.today()} · {cpu} · {os.cpu_count()} cores · backend "
            f"{jax.default_backend()} ({devs}) · {', '.join(vers)} · XLA_FLAGS="
            f"{os.environ.get('XLA_FLAGS', '(unset)')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Trainer.fit against a plain make_train_step loop")
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s), asserts nothing")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per sample (default 6)")
    p.add_argument("--only", default=None, help="comma-separated workloads: mlp,conv1d,digits")
    p.add_argument("--spe", default=None,
                   help="comma-separated steps_per_execution variants (default auto,1,epoch)")
    p.add_argument("--out", default=None, help="append the markdown table to this file")
    a = p.parse_args(argv)
    names = a.only.split(",") if a.only else (["mlp", "digits"] if a.quick
                                              else ["mlp", "conv1d", "digits"])
    spes = a.spe.split(",") if a.spe else (["auto"] if a.quick else ["auto", "1", "epoch"])
    rounds = a.rounds or (2 if a.quick else 7)
    epochs = a.epochs or (2 if a.quick else 6)
    print(environment())
    results = {}
    for name in names:
        results[name] = measure(name, spes, rounds, epochs)
        print(f"  {name}: " + ", ".join(f"{k} {s * 1e3:.3f} ms"
                                        for k, (s, _) in results[name].items()), flush=True)
    md = table(results)
    print()
    print(md)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n{environment()}\n\n{rounds} interleaved rounds of {epochs} epochs; "
                    f"command: `python benchmarks/bench_fit_loop.py "
                    f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
