"""Time to first step: import, create, first and second train step, in fresh processes.

The time a user waits before training starts, for a demo-like CNN on 28×28×1
inputs at batch 32 (Adam 1e-3, sparse categorical cross-entropy from logits)::

    Conv2D(32, 3, same) - BatchNorm - ReLU - MaxPool2D(2)
    Conv2D(64, 3, same) - BatchNorm - ReLU - MaxPool2D(2)
    Flatten - Dense(128, relu) - Dense(10)

Each sample is one fresh Python process (a child of this script) that times,
with ``time.perf_counter``:

* **import**: the framework and its NN modules (numpy is imported before), and
  for jaxdl with a cache the ``enable_cache`` call;
* **create**: model, parameters and optimizer state (``TrainState.create`` and
  ``make_train_step`` in jaxdl; PyTorch creates Adam's moments lazily, in its
  first step);
* **first step**: one train step on a numpy batch, compilation included,
  blocked until its result is ready; **second step**: the next one;
* **total to first step**: import + create + first step.

The parent also records each child's wall time (interpreter start and exit
included). In the JAX children every request for an XLA executable is counted
through ``jax.monitoring`` (event ``/jax/core/compile/backend_compile_duration``)
together with the persistent-cache hits among them, so "compiles" in the table
are XLA compilations actually run and "hits" executables loaded from the cache.

Contestants, each only when importable: jaxdl (``train.make_train_step``) with
a **cold** persistent compilation cache (``jaxdl.compilation.enable_cache`` on
a new empty directory per run), a **warm** one (a directory filled by one
earlier, uncounted run of the same child) and with the cache **off**; PyTorch
(``torch.nn`` + ``torch.optim.Adam``, CPU); Keras 3 on the JAX backend
(``train_on_batch``); Flax NNX (``nnx.Module`` + ``nnx.Optimizer`` +
``nnx.jit``). Rounds interleave the contestants (round r: jaxdl cold, jaxdl
warm, ..., PyTorch, ...) so that a noisy neighbour hurts all alike; figures
are medians over rounds, and ratios compare medians of total to first step
with PyTorch's from the same run.

Usage::

    python benchmarks/bench_startup.py                # 5 rounds (a few minutes on 2 cores)
    python benchmarks/bench_startup.py --quick        # 1 round, < 60 s, asserts nothing
    python benchmarks/bench_startup.py --rounds 7 --out results.md
    python benchmarks/bench_startup.py --model tiny    # flatten + dense 10: the smoke test's
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
SHAPE = (28, 28, 1)
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
PHASES = ("import", "create", "first_step", "second_step")
# Environment variables that would switch a persistent cache on behind a child's back.
CACHE_ENV = ("JAX_COMPILATION_CACHE_DIR", "JAXDL_COMPILATION_CACHE", "JAXDL_CACHE_DIR")


# --------------------------------------------------------------------------- child side

class Phases:
    """Consecutive phase durations (perf_counter) and, in JAX children, compile counts."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self.compiles: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        self.counts = None  # {"compiles": n, "hits": n} once count_compilations() ran
        self._seen = (0, 0)
        self._t = time.perf_counter()

    def count_compilations(self) -> None:
        """Count XLA executable requests and persistent-cache hits from now on (needs jax)."""
        import jax

        counts = self.counts = {"compiles": 0, "hits": 0}

        def on_duration(event, duration, **kwargs):
            if event == COMPILE_EVENT:
                counts["compiles"] += 1

        def on_event(event, **kwargs):
            if event == CACHE_HIT_EVENT:
                counts["hits"] += 1
        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)

    def mark(self, name: str) -> None:
        """End phase ``name`` now: its time, and the compilations it asked for."""
        now = time.perf_counter()
        self.times[name], self._t = now - self._t, now
        if self.counts is not None:
            seen = (self.counts["compiles"], self.counts["hits"])
            self.compiles[name] = seen[0] - self._seen[0]
            self.hits[name] = seen[1] - self._seen[1]
            self._seen = seen

    def report(self) -> dict:
        out = {f"{k}_s": v for k, v in self.times.items()}
        out["total_s"] = sum(self.times[k] for k in ("import", "create", "first_step"))
        if self.counts is not None:
            # Requests served from the persistent cache ran no XLA compilation.
            out.update({f"{k}_compiles": self.compiles[k] - self.hits[k] for k in self.compiles})
            out.update({f"{k}_hits": v for k, v in self.hits.items()})
        return out


def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((2, BATCH) + SHAPE, dtype=np.float32)
    y = rng.integers(0, 10, (2, BATCH)).astype(np.int32)
    return x, y


def jaxdl_model(nn, kind: str):
    """The benchmark's model in jaxdl: the demo-like CNN, or ``tiny`` (flatten, dense 10)."""
    if kind == "tiny":
        return nn.Sequential([nn.Flatten(), nn.Dense(10)])
    return nn.Sequential([
        nn.Conv2D(32, 3, padding="same"), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(64, 3, padding="same"), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)])


def child_jaxdl(cache: str, kind: str) -> dict:
    x, y = _data()
    ph = Phases()
    import jax

    from jaxdl import compilation, losses, nn, optim, train
    ph.count_compilations()
    if cache != "off":
        compilation.enable_cache(cache)
    ph.mark("import")
    model = jaxdl_model(nn, kind)
    opt = optim.adam(1e-3)
    state = train.TrainState.create(model, opt, SHAPE, jax.random.key(0))
    step = train.make_train_step(model, losses.sparse_categorical_crossentropy, opt)
    jax.block_until_ready(state)
    ph.mark("create")
    for i, name in enumerate(("first_step", "second_step")):
        state, logs = step(state, (x[i], y[i]))
        jax.block_until_ready((state, logs))
        ph.mark(name)
    return ph.report()


def torch_model(tnn, kind: str):
    if kind == "tiny":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(28 * 28, 10))
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1), tnn.BatchNorm2d(32), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.BatchNorm2d(64), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(64 * 7 * 7, 128), tnn.ReLU(), tnn.Linear(128, 10))


def child_torch(cache: str, kind: str) -> dict:
    x, y = _data()
    x = x.transpose(0, 1, 4, 2, 3).copy()  # channels-first
    ph = Phases()
    import torch
    from torch import nn as tnn
    ph.mark("import")
    torch.manual_seed(0)
    model = torch_model(tnn, kind)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = tnn.CrossEntropyLoss()
    ph.mark("create")
    for i, name in enumerate(("first_step", "second_step")):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(torch.from_numpy(x[i])), torch.from_numpy(y[i]).long())
        loss.backward()
        opt.step()
        loss.item()
        ph.mark(name)
    return ph.report()


def keras_model(keras, kind: str):
    layers = keras.layers
    if kind == "tiny":
        return keras.Sequential([keras.Input(SHAPE), layers.Flatten(), layers.Dense(10)])
    return keras.Sequential([
        keras.Input(SHAPE),
        layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])


def child_keras(cache: str, kind: str) -> dict:
    x, y = _data()
    os.environ["KERAS_BACKEND"] = "jax"
    ph = Phases()
    import keras
    ph.count_compilations()
    ph.mark("import")
    keras.utils.set_random_seed(0)
    model = keras_model(keras, kind)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
    ph.mark("create")
    for i, name in enumerate(("first_step", "second_step")):
        float(model.train_on_batch(x[i], y[i]))  # the loss as a host number: the step is done
        ph.mark(name)
    return ph.report()


def nnx_model(jax, nnx, kind: str):
    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(1, 32, (3, 3), padding="SAME", rngs=rngs)
            self.b1 = nnx.BatchNorm(32, rngs=rngs)
            self.c2 = nnx.Conv(32, 64, (3, 3), padding="SAME", rngs=rngs)
            self.b2 = nnx.BatchNorm(64, rngs=rngs)
            self.d1 = nnx.Linear(64 * 7 * 7, 128, rngs=rngs)
            self.d2 = nnx.Linear(128, 10, rngs=rngs)

        def __call__(self, h):
            h = nnx.max_pool(jax.nn.relu(self.b1(self.c1(h))), (2, 2), (2, 2))
            h = nnx.max_pool(jax.nn.relu(self.b2(self.c2(h))), (2, 2), (2, 2))
            return self.d2(jax.nn.relu(self.d1(h.reshape(h.shape[0], -1))))

    class Tiny(nnx.Module):
        def __init__(self, rngs):
            self.d = nnx.Linear(28 * 28, 10, rngs=rngs)

        def __call__(self, h):
            return self.d(h.reshape(h.shape[0], -1))
    return (Tiny if kind == "tiny" else CNN)(nnx.Rngs(0))


def child_nnx(cache: str, kind: str) -> dict:
    x, y = _data()
    ph = Phases()
    import jax
    import optax
    from flax import nnx
    ph.count_compilations()
    ph.mark("import")
    model = nnx_model(jax, nnx, kind)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss
    jax.block_until_ready(nnx.state(optimizer))
    ph.mark("create")
    for i, name in enumerate(("first_step", "second_step")):
        jax.block_until_ready(step(model, optimizer, x[i], y[i]))
        ph.mark(name)
    return ph.report()


CHILDREN = {"jaxdl": child_jaxdl, "torch": child_torch, "keras": child_keras, "nnx": child_nnx}


# --------------------------------------------------------------------------- parent side

# name -> (child, cache mode); cache modes: "cold" (new empty directory per run),
# "warm" (a directory filled by one uncounted run), "off".
CONTESTANTS = {
    "jaxdl cold cache": ("jaxdl", "cold"), "jaxdl warm cache": ("jaxdl", "warm"),
    "jaxdl no cache": ("jaxdl", "off"), "PyTorch": ("torch", "off"),
    "Keras 3 (JAX)": ("keras", "off"), "Flax NNX": ("nnx", "off"),
}


def installed(child: str) -> bool:
    """Whether the framework a child needs is importable (Keras only at version 3 or later)."""
    if child == "keras":
        if importlib.util.find_spec("keras") is None:
            return False
        from importlib import metadata
        return int(metadata.version("keras").split(".")[0]) >= 3
    module = {"jaxdl": "jaxdl", "torch": "torch", "nnx": "flax"}[child]
    return importlib.util.find_spec(module) is not None


def run_child(child: str, cache: str, kind: str) -> dict:
    """One fresh process of ``child``: its phase times plus its wall time as seen from here."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_ENV}
    t = time.perf_counter()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", child, cache, kind]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"bench_startup: the {child} child (cache {cache}) failed with exit "
                           f"status {proc.returncode}:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    return res


def measure(names: list[str], rounds: int, kind: str = "cnn", log=print
            ) -> dict[str, list[dict]]:
    """``rounds`` interleaved rounds over ``names``; each contestant's per-round results."""
    samples = {name: [] for name in names}
    warm_dir = tempfile.mkdtemp(prefix="jaxdl-startup-warm-")
    try:
        if any(CONTESTANTS[n][1] == "warm" for n in names):
            run_child("jaxdl", warm_dir, kind)  # fills the warm cache; not counted
        for r in range(rounds):
            for name in names:
                child, mode = CONTESTANTS[name]
                cold_dir = tempfile.mkdtemp(prefix="jaxdl-startup-") if mode == "cold" else None
                cache = {"cold": cold_dir, "warm": warm_dir}.get(mode, "off")
                try:
                    samples[name].append(run_child(child, cache, kind))
                finally:
                    if cold_dir:
                        shutil.rmtree(cold_dir, ignore_errors=True)
                s = samples[name][-1]
                log(f"  round {r + 1}/{rounds} {name}: total to first step {s['total_s']:.2f} s "
                    f"(import {s['import_s']:.2f}, create {s['create_s']:.2f}, first step "
                    f"{s['first_step_s']:.2f}), wall {s['wall_s']:.2f} s", flush=True)
    finally:
        shutil.rmtree(warm_dir, ignore_errors=True)
    return samples


def medians(samples: list[dict]) -> dict:
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def _counts(m: dict, key: str) -> str:
    if f"create_{key}" not in m:
        return "n/a"
    return " / ".join(f"{m[f'{p}_{key}']:g}" for p in ("create", "first_step", "second_step"))


def table(samples: dict[str, list[dict]]) -> str:
    """The markdown table of medians, ratios to PyTorch's total from the same run."""
    med = {name: medians(s) for name, s in samples.items() if s}
    pt = med.get("PyTorch", {}).get("total_s")
    lines = ["| contestant | import (s) | create (s) | first step (s) | second step (ms) "
             "| total to first step (s) | × PyTorch | process wall (s) "
             "| XLA compiles (create / 1st / 2nd) | cache hits (create / 1st / 2nd) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in med.items():
        ratio = f"{m['total_s'] / pt:.2f}" if pt else "n/a"
        lines.append(f"| {name} | {m['import_s']:.2f} | {m['create_s']:.2f} | "
                     f"{m['first_step_s']:.2f} | {1e3 * m['second_step_s']:.1f} | "
                     f"{m['total_s']:.2f} | {ratio} | {m['wall_s']:.2f} | "
                     f"{_counts(m, 'compiles')} | {_counts(m, 'hits')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl time-to-first-step benchmark")
    p.add_argument("--quick", action="store_true",
                   help="1 round of jaxdl (cold and warm cache) and PyTorch (< 60 s)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    p.add_argument("--contestants", default=None,
                   help=f"comma-separated, from: {', '.join(CONTESTANTS)}")
    p.add_argument("--out", default=None, help="append the markdown section to this file")
    p.add_argument("--model", choices=("cnn", "tiny"), default="cnn",
                   help="cnn: the demo-like CNN (default); tiny: flatten + dense 10 (smoke test)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(CHILDREN[a.child[0]](a.child[1], a.child[2])))
        return 0
    if a.contestants:
        names = a.contestants.split(",")
        unknown = [n for n in names if n not in CONTESTANTS]
        if unknown:
            p.error(f"--contestants: unknown {unknown}; expected names from {list(CONTESTANTS)}")
    elif a.quick:
        names = ["jaxdl cold cache", "jaxdl warm cache", "PyTorch"]
    else:
        names = list(CONTESTANTS)
    names = [n for n in names if installed(CONTESTANTS[n][0])]
    rounds = a.rounds or (1 if a.quick else 5)

    sys.path.insert(0, HERE)
    import bench_train

    env_line = bench_train.environment()
    load = os.getloadavg()
    print(env_line)
    samples = measure(names, rounds, a.model)
    load_after = os.getloadavg()
    md = table(samples)
    what = "Demo-like CNN (conv/BN/ReLU/pool ×2, dense 128)" if a.model == "cnn" else \
        "Tiny model (flatten, dense 10)"
    note = (f"{what}, 28×28×1, batch {BATCH}; medians "
            f"of {rounds} interleaved rounds of fresh processes; load average (1 min) "
            f"{load[0]:.1f} before, {load_after[0]:.1f} after.")
    print()
    print(note)
    print()
    print(md)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n{env_line}\n\n{note} Command: `python benchmarks/bench_startup.py "
                    f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
