"""Training-step speed: jaxdl against raw JAX, Flax NNX, Equinox and PyTorch.

Workloads (synthetic data, float32, Adam with lr 1e-3):

* **MLP** 784-512-512-10 (ReLU) at batch 32, 128 and 1024;
* **tiny MLP** 64-64-10 at batch 32, where Python dispatch, not arithmetic,
  bounds the step rate;
* **CNN** conv3×3×32 - maxpool 2 - conv3×3×64 - maxpool 2 - dense 128 - dense 10
  on 28×28×1 images at batch 128 (valid convolutions, as in Keras's MNIST convnet).

Contestants, each only when importable:

* ``jaxdl step``: ``train.make_train_step`` called from a Python loop;
* ``jaxdl fit``: ``Trainer.fit`` over whole epochs (data on the device, steps
  fused with ``lax.scan``; reshuffling and the per-step gather included);
* ``jaxdl step bf16``: the same step with ``compute_dtype="bfloat16"`` in every
  Dense/Conv2D layer (bf16 inputs, float32 accumulation, float32 params);
* ``raw JAX``: a hand-written jitted step on a dict of arrays with
  ``optax.adam`` and buffer donation: the floor any JAX library adds to;
* ``Flax NNX``: ``nnx.Module`` + ``nnx.Optimizer`` + ``nnx.jit``;
* ``Equinox``: ``eqx.nn`` modules + ``eqx.filter_jit`` + optax;
* ``PyTorch``: ``torch.nn`` + ``torch.optim.Adam`` (fused when available).

Rounds interleave the contestants (round 1: a, b, c...; round 2: a, b, c...)
so that a noisy neighbour hurts all of them alike; each figure is the median
over rounds of steps per second, after a warm-up that compiles. Ratios are to
raw JAX and to PyTorch from the same run. Achieved GFLOP/s counts the real
work of a step (forward, the weight gradients, and the input gradients of
every layer but the first: 3.21 MFLOP per example for the MLP) and is
compared with the f32 matmul peak measured in the same process.

Usage::

    python benchmarks/bench_train.py                 # full run (a few minutes on 2 cores)
    python benchmarks/bench_train.py --quick         # CI smoke run (< 60 s), asserts nothing
    python benchmarks/bench_train.py --tuned-malloc  # re-run itself with glibc's malloc tuned
    python benchmarks/bench_train.py --out results.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _xla, losses, nn, optim, train

# --------------------------------------------------------------------------- workloads

MLP_SIZES = {"mlp": (784, 512, 512, 10), "tiny": (64, 64, 10)}


def mlp_flops_per_example(sizes=(784, 512, 512, 10)) -> float:
    """Forward + weight gradients of every layer + input gradients of all but the first."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
    return 2.0 * (2 * sum(macs) + sum(macs[1:]))


def cnn_flops_per_example(h=28, w=28) -> float:
    c1 = (h - 2) * (w - 2) * 32 * 9 * 1
    h2, w2 = (h - 2) // 2, (w - 2) // 2
    c2 = (h2 - 2) * (w2 - 2) * 64 * 9 * 32
    h3, w3 = (h2 - 2) // 2, (w2 - 2) // 2
    d1 = h3 * w3 * 64 * 128
    d2 = 128 * 10
    return 2.0 * (2 * (c1 + c2 + d1 + d2) + (c2 + d1 + d2))


def _data(kind: str, batch: int, n_batches: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (MLP_SIZES[kind][0],) if kind in MLP_SIZES else (28, 28, 1)
    x = rng.random((n_batches * batch,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, n_batches * batch).astype(np.int32)
    return x, y


def _in_shape(kind):
    return (MLP_SIZES[kind][0],) if kind in MLP_SIZES else (28, 28, 1)


def _device_batches(x, y, batch: int) -> list:
    """The data cut into device-resident (x, y) batches of ``batch`` rows."""
    return [(jnp.asarray(x[i:i + batch]), jnp.asarray(y[i:i + batch]))
            for i in range(0, len(x), batch)]


def jaxdl_model(kind: str, compute_dtype=None) -> nn.Sequential:
    cd = {"compute_dtype": compute_dtype}
    if kind in MLP_SIZES:
        *hidden, out = MLP_SIZES[kind][1:]
        return nn.Sequential([nn.Dense(h, activation="relu", **cd) for h in hidden]
                             + [nn.Dense(out, **cd)])
    return nn.Sequential([
        nn.Conv2D(32, 3, activation="relu", **cd), nn.MaxPool2D(2),
        nn.Conv2D(64, 3, activation="relu", **cd), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(128, activation="relu", **cd), nn.Dense(10, **cd)])


# --------------------------------------------------------------------------- contestants
# Each factory returns run(steps) that trains `steps` steps and blocks until done,
# or None when the framework is not installed.

def c_jaxdl_step(kind, batch, compute_dtype=None):
    model = jaxdl_model(kind, compute_dtype)
    opt = optim.adam(1e-3)
    in_shape = _in_shape(kind)
    state = [train.TrainState.create(model, opt, in_shape, jax.random.key(0))]
    step = train.make_train_step(model, losses.sparse_categorical_crossentropy, opt)
    batches = _device_batches(*_data(kind, batch, 4), batch)

    def run(steps):
        s = state[0]
        for i in range(steps):
            s, logs = step(s, batches[i % 4])
        jax.block_until_ready(s.params)
        state[0] = s
    return run


def c_jaxdl_fit(kind, batch, steps_per_epoch=None):
    model = jaxdl_model(kind)
    trainer = train.Trainer(model, losses.sparse_categorical_crossentropy, optim.adam(1e-3),
                            metrics=())
    cache = {}

    def run(steps):
        if steps not in cache:
            cache[steps] = _data(kind, batch, steps, seed=1)
        x, y = cache[steps]
        trainer.fit(x, y, epochs=1, batch_size=batch, verbose=0)  # default execution plan
        jax.block_until_ready(trainer.state.params)
    return run


def _raw_init(kind, key):
    def dense(k, a, b):
        return {"w": jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a), "b": jnp.zeros(b)}

    def conv(k, i, o):
        return {"w": jax.random.normal(k, (3, 3, i, o)) * np.sqrt(2.0 / (9 * i)),
                "b": jnp.zeros(o)}
    k = jax.random.split(key, 4)
    if kind in MLP_SIZES:
        sizes = MLP_SIZES[kind]
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        return {f"l{i}": dense(k[i], a, b) for i, (a, b) in enumerate(pairs)}
    return {"c1": conv(k[0], 1, 32), "c2": conv(k[1], 32, 64), "d1": dense(k[2], 1600, 128),
            "d2": dense(k[3], 128, 10)}


def _raw_apply(kind, p, x):
    if kind in MLP_SIZES:
        n = len(MLP_SIZES[kind]) - 1
        for i in range(n):
            x = x @ p[f"l{i}"]["w"] + p[f"l{i}"]["b"]
            x = jax.nn.relu(x) if i < n - 1 else x
        return x

    def conv(h, q):
        y = jax.lax.conv_general_dilated(h, q["w"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y + q["b"])

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    h = pool(conv(x, p["c1"]))
    h = pool(conv(h, p["c2"]))
    h = h.reshape(h.shape[0], -1)
    h = jax.nn.relu(h @ p["d1"]["w"] + p["d1"]["b"])
    return h @ p["d2"]["w"] + p["d2"]["b"]


def c_raw_jax(kind, batch):
    params = _raw_init(kind, jax.random.key(0))
    tx = optax.adam(1e-3)
    carry = [(params, tx.init(params))]

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(_raw_apply(kind, p, x), y).mean()

    def _step(p, o, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, loss
    step = jax.jit(_step, donate_argnums=(0, 1))
    batches = _device_batches(*_data(kind, batch, 4), batch)

    def run(steps):
        p, o = carry[0]
        for i in range(steps):
            p, o, _ = step(p, o, *batches[i % 4])
        jax.block_until_ready(p)
        carry[0] = (p, o)
    return run


def c_flax_nnx(kind, batch):
    try:
        from flax import nnx
    except ImportError:
        return None

    class MLP(nnx.Module):
        def __init__(self, rngs):
            sizes = MLP_SIZES[kind]
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=False)]) \
                if hasattr(nnx, "List") else [nnx.Linear(a, b, rngs=rngs)
                                              for a, b in zip(sizes[:-1], sizes[1:], strict=False)]

        def __call__(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                x = jax.nn.relu(x) if i < len(self.layers) - 1 else x
            return x

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1 = nnx.Conv(1, 32, (3, 3), padding="VALID", rngs=rngs)
            self.c2 = nnx.Conv(32, 64, (3, 3), padding="VALID", rngs=rngs)
            self.d1, self.d2 = nnx.Linear(1600, 128, rngs=rngs), nnx.Linear(128, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.max_pool(jax.nn.relu(self.c1(x)), (2, 2), (2, 2))
            x = nnx.max_pool(jax.nn.relu(self.c2(x)), (2, 2), (2, 2))
            return self.d2(jax.nn.relu(self.d1(x.reshape(x.shape[0], -1))))

    model = (MLP if kind in MLP_SIZES else CNN)(nnx.Rngs(0))
    try:
        optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    except TypeError:  # older flax
        optimizer = nnx.Optimizer(model, optax.adam(1e-3))

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        try:
            optimizer.update(model, grads)
        except TypeError:
            optimizer.update(grads)
        return loss
    batches = _device_batches(*_data(kind, batch, 4), batch)

    def run(steps):
        loss = None
        for i in range(steps):
            loss = step(model, optimizer, *batches[i % 4])
        jax.block_until_ready(loss)
    return run


def c_equinox(kind, batch):
    try:
        import equinox as eqx
    except ImportError:
        return None
    keys = jax.random.split(jax.random.key(0), 4)
    if kind in MLP_SIZES:
        sizes = MLP_SIZES[kind]
        model = eqx.nn.MLP(sizes[0], sizes[-1], sizes[1], len(sizes) - 2, activation=jax.nn.relu,
                           key=keys[0])
        apply = jax.vmap(model.__class__.__call__, in_axes=(None, 0))
    else:
        class CNN(eqx.Module):
            c1: eqx.nn.Conv2d
            c2: eqx.nn.Conv2d
            d1: eqx.nn.Linear
            d2: eqx.nn.Linear

            def __init__(self, k):
                self.c1 = eqx.nn.Conv2d(1, 32, 3, key=k[0])
                self.c2 = eqx.nn.Conv2d(32, 64, 3, key=k[1])
                self.d1, self.d2 = eqx.nn.Linear(1600, 128, key=k[2]), eqx.nn.Linear(128, 10,
                                                                                     key=k[3])

            def __call__(self, x):  # one example, CHW
                pool = eqx.nn.MaxPool2d(2, 2)
                x = pool(jax.nn.relu(self.c1(x)))
                x = pool(jax.nn.relu(self.c2(x)))
                return self.d2(jax.nn.relu(self.d1(x.reshape(-1))))
        model = CNN(keys)
        apply = jax.vmap(CNN.__call__, in_axes=(None, 0))
    tx = optax.adam(1e-3)
    carry = [(model, tx.init(eqx.filter(model, eqx.is_array)))]

    @eqx.filter_jit(donate="all")
    def step(m, o, x, y):
        def loss_fn(mm):
            return optax.softmax_cross_entropy_with_integer_labels(apply(mm, x), y).mean()
        loss, g = eqx.filter_value_and_grad(loss_fn)(m)
        u, o = tx.update(g, o, eqx.filter(m, eqx.is_array))
        return eqx.apply_updates(m, u), o, loss
    x, y = _data(kind, batch, 4)
    if kind == "cnn":
        x = x.transpose(0, 3, 1, 2)  # Equinox convs are channels-first
    batches = _device_batches(x, y, batch)

    def run(steps):
        m, o = carry[0]
        for i in range(steps):
            m, o, _ = step(m, o, *batches[i % 4])
        jax.block_until_ready(eqx.filter(m, eqx.is_array))
        carry[0] = (m, o)
    return run


def c_pytorch(kind, batch):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    tnn = torch.nn
    if kind in MLP_SIZES:
        sizes = MLP_SIZES[kind]
        mods = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            mods += [tnn.Linear(a, b)] + ([tnn.ReLU()] if i < len(sizes) - 2 else [])
        model = tnn.Sequential(*mods)
    else:
        model = tnn.Sequential(tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                               tnn.Conv2d(32, 64, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                               tnn.Linear(1600, 128), tnn.ReLU(), tnn.Linear(128, 10))
    try:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = tnn.CrossEntropyLoss()
    x, y = _data(kind, batch, 4)
    if kind == "cnn":
        x = x.transpose(0, 3, 1, 2).copy()
    batches = [(torch.from_numpy(x[i * batch:(i + 1) * batch]),
                torch.from_numpy(y[i * batch:(i + 1) * batch]).long()) for i in range(4)]
    return torch_loop(model, opt, loss_fn, batches)


def torch_loop(model, opt, loss_fn, batches):
    """``run(steps)``: that many PyTorch train steps cycling over ``batches`` (tensor
    pairs), synced once at the end by reading the last loss."""
    def run(steps):
        for i in range(steps):
            xb, yb = batches[i % len(batches)]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        float(loss.detach())
    return run


def c_jaxdl_step_bf16(kind, batch):
    return c_jaxdl_step(kind, batch, compute_dtype="bfloat16")


CONTESTANTS = {
    "jaxdl step": c_jaxdl_step, "jaxdl fit": c_jaxdl_fit,
    "jaxdl step bf16": c_jaxdl_step_bf16, "raw JAX": c_raw_jax,
    "Flax NNX": c_flax_nnx, "Equinox": c_equinox, "PyTorch": c_pytorch,
}


# --------------------------------------------------------------------------- measurement

def matmul_peak(n=2048, rounds=5) -> float:
    """Median GFLOP/s of a jitted f32 (n×n)@(n×n) on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda u, v: u @ v)
    f(a, a).block_until_ready()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f(a, a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def measure(kind, batch, names, rounds, target_seconds):
    runners = {}
    for name in names:
        r = CONTESTANTS[name](kind, batch)
        if r is not None:
            runners[name] = r
    # Warm up (compile) and size each contestant's round to ~target_seconds: grow the step
    # count until one call takes a tenth of the target, then scale (per-call costs such as
    # fit's setup stay included, but cannot dominate a short call).
    steps = {}
    for name, run in runners.items():
        run(2)
        n, per = 2, 0.0
        while True:
            run(n)  # the first call of a new length may compile (fit's scan length)
            t = time.perf_counter()
            run(n)
            elapsed = time.perf_counter() - t
            if elapsed >= target_seconds / 10 or n >= 20000:
                per = elapsed / n
                break
            n *= 4
        steps[name] = int(min(max(target_seconds / max(per, 1e-7), 5), 20000))
        if name == "jaxdl fit":  # its epoch's data must fit in memory: at most ~128 MB
            per_example = 4 * int(np.prod(_in_shape(kind)))
            steps[name] = max(5, min(steps[name], (128 << 20) // (batch * per_example)))
        run(steps[name])  # warm the exact shape (fit compiles per epoch length)
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            run(steps[name])
            samples[name].append(steps[name] / (time.perf_counter() - t))
    return {name: statistics.median(v) for name, v in samples.items()}


def table(results, peak):
    lines = ["| workload | contestant | steps/s | × raw JAX | × PyTorch | GFLOP/s "
             "| % of matmul peak |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (kind, batch), res in results.items():
        flops = (mlp_flops_per_example(MLP_SIZES[kind]) if kind in MLP_SIZES
                 else cnn_flops_per_example()) * batch
        raw, pt = res.get("raw JAX"), res.get("PyTorch")
        for name, sps in res.items():
            gf = sps * flops / 1e9
            lines.append(f"| {kind.upper()} b{batch} | {name} | {sps:,.1f} | "
                         f"{sps / raw if raw else float('nan'):.2f} | "
                         f"{sps / pt if pt else float('nan'):.2f} | {gf:.1f} | "
                         f"{100 * gf / peak:.0f}% |")
    return "\n".join(lines)


def environment() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    devs = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    vers = []
    for dist in ("jax", "jaxlib", "optax", "flax", "equinox", "torch"):
        try:
            vers.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{datetime.date.today()} · {cpu} · {os.cpu_count()} cores · backend "
            f"{jax.default_backend()} ({devs}) · {', '.join(vers)} · GLIBC_TUNABLES="
            f"{os.environ.get('GLIBC_TUNABLES', '(unset)')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl training-step benchmark")
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s), asserts nothing")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None, help="target seconds per sample")
    p.add_argument("--only", default=None, help="comma-separated workloads, e.g. mlp32,cnn128")
    p.add_argument("--contestants", default=None, help="comma-separated names")
    p.add_argument("--tuned-malloc", action="store_true",
                   help=f"re-run with GLIBC_TUNABLES={_xla.MALLOC_TUNABLES} for every framework")
    p.add_argument("--out", default=None, help="append the markdown table to this file")
    a = p.parse_args(argv)
    if a.tuned_malloc and os.environ.get("GLIBC_TUNABLES") != _xla.MALLOC_TUNABLES:
        env = dict(os.environ, GLIBC_TUNABLES=_xla.MALLOC_TUNABLES)
        args = [x for x in (argv if argv is not None else sys.argv[1:]) if x != "--tuned-malloc"]
        return subprocess.call([sys.executable, os.path.abspath(__file__), *args], env=env)

    workloads = [("tiny", 32), ("mlp", 32), ("mlp", 128), ("mlp", 1024), ("cnn", 128)]
    if a.only:
        wanted = set(a.only.split(","))
        workloads = [w for w in workloads if f"{w[0]}{w[1]}" in wanted]
    names = list(CONTESTANTS) if not a.contestants else a.contestants.split(",")
    rounds = a.rounds or (2 if a.quick else 5)
    seconds = a.seconds or (0.15 if a.quick else 0.6)
    if a.quick:
        workloads = [w for w in workloads if w in (("tiny", 32), ("mlp", 32), ("cnn", 128))]

    print(environment())
    peak = matmul_peak(1024 if a.quick else 2048)
    print(f"f32 matmul peak (jitted 2048², same process): {peak:.1f} GFLOP/s")
    results = {}
    for kind, batch in workloads:
        results[(kind, batch)] = measure(kind, batch, names, rounds, seconds)
        print(f"  {kind} b{batch}: " + ", ".join(f"{k} {v:,.1f}/s"
                                                 for k, v in results[(kind, batch)].items()),
              flush=True)
    md = table(results, peak)
    print()
    print(md)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n{environment()}\n\nf32 matmul peak {peak:.1f} GFLOP/s; command: "
                    f"`python benchmarks/bench_train.py "
                    f"{' '.join(argv or sys.argv[1:])}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
