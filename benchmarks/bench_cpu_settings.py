"""Process-wide CPU settings against training-step speed: the allocator and XLA flags.

Some settings only act when a process starts (``GLIBC_TUNABLES``, ``XLA_FLAGS``),
so each *variant* runs in fresh child processes, and the variants take turns
(repetition 1: a, b, c...; repetition 2: a, b, c...) so that a noisy
neighbour hurts them alike. Inside a child, jaxdl's ``make_train_step`` and
PyTorch train the same model in interleaved rounds; the child reports the
median steps/s of each. The parent prints, per variant and workload, the
median over repetitions of jaxdl's steps/s, PyTorch's, and their ratio
taken within each child (same process, same moment).

Workloads (synthetic data, float32, Adam 1e-3, cross-entropy):

* ``cnn128``: bench_train.py's CNN (conv3x3x32-pool-conv3x3x64-pool-dense128-dense10)
  on 28x28x1 at batch 128;
* ``conv1d``: MNIST-1D's Conv1D net, (40, 1) inputs, three Conv1D(32, 5, relu)
  (valid), Flatten, Dense(10), batch 100;
* ``mlp1d``: MNIST-1D's MLP 40-100-100-10, batch 100;
* ``mlp128``: bench_train.py's MLP 784-512-512-10 at batch 128.

Variants (``--variants``):

* ``plain``: nothing set (what a user's process gets);
* ``tunables``: ``GLIBC_TUNABLES`` as ``jaxdl bench`` set it (two thresholds);
* ``tunables3``: ``GLIBC_TUNABLES=jaxdl._xla.MALLOC_TUNABLES`` (plus the top pad);
* ``mallopt``: :func:`jaxdl._xla.tune_malloc` called at the child's start;
* ``keepflags``: ``JAXDL_KEEP_XLA_FLAGS=1`` (jaxdl adds no XLA flag);
* ``ynn=VALUE``: ``--xla_cpu_experimental_ynn_fusion_type=VALUE`` in ``XLA_FLAGS``.

Usage::

    python benchmarks/bench_cpu_settings.py --workloads cnn128 --variants plain,tunables,mallopt
    python benchmarks/bench_cpu_settings.py --workloads conv1d,mlp1d --variants plain,keepflags
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The environment as this script found it: importing jaxdl (tunables3) adds its XLA flag to
# os.environ, which must not leak into the children of other variants.
ENVIRON = dict(os.environ)
# What bench_train.py --tuned-malloc and (until issue 16) `jaxdl bench` set: the two thresholds,
# without the top pad that jaxdl._xla.MALLOC_TUNABLES adds (variant `tunables3`).
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"
YNN = "--xla_cpu_experimental_ynn_fusion_type"
SERIAL = "--xla_cpu_multi_thread_eigen=false"


# --------------------------------------------------------------------------- child side

def _conv1d_jaxdl():
    from jaxdl import nn
    return nn.Sequential([nn.Conv1D(32, 5, activation="relu") for _ in range(3)]
                         + [nn.Flatten(), nn.Dense(10)])


def _conv1d_torch():
    import torch.nn as tnn
    layers = []
    for c in (1, 32, 32):
        layers += [tnn.Conv1d(c, 32, 5), tnn.ReLU()]
    return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(32 * 28, 10))


def _mlp(sizes, torch=False):
    if torch:
        import torch.nn as tnn
        mods = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            mods += [tnn.Linear(a, b)] + ([tnn.ReLU()] if i < len(sizes) - 2 else [])
        return tnn.Sequential(*mods)
    from jaxdl import nn
    return nn.Sequential([nn.Dense(h, activation="relu") for h in sizes[1:-1]]
                         + [nn.Dense(sizes[-1])])


# name: (jaxdl model factory, torch model factory, input shape (channels last), batch)
WORKLOADS = {
    "conv1d": (_conv1d_jaxdl, _conv1d_torch, (40, 1), 100),
    "mlp1d": (lambda: _mlp((40, 100, 100, 10)), lambda: _mlp((40, 100, 100, 10), True),
              (40,), 100),
    "mlp128": (lambda: _mlp((784, 512, 512, 10)), lambda: _mlp((784, 512, 512, 10), True),
               (784,), 128),
    "cnn128": (None, None, (28, 28, 1), 128),  # bench_train.py's own contestants
}


def _batches(shape, batch, n=4):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.random((n, batch) + shape, dtype=np.float32)
    y = rng.integers(0, 10, (n, batch)).astype(np.int32)
    return x, y


def _jaxdl_runner(name):
    import jax
    import jax.numpy as jnp

    from jaxdl import losses, optim, train
    make, _, shape, batch = WORKLOADS[name]
    if make is None:
        sys.path.insert(0, HERE)
        import bench_train
        return bench_train.c_jaxdl_step("cnn", batch)
    model, opt = make(), optim.adam(1e-3)
    state = [train.TrainState.create(model, opt, shape, jax.random.key(0))]
    step = train.make_train_step(model, losses.sparse_categorical_crossentropy, opt)
    x, y = _batches(shape, batch)
    data = [(jnp.asarray(a), jnp.asarray(b)) for a, b in zip(x, y, strict=True)]

    def run(steps):
        s = state[0]
        for i in range(steps):
            s, _ = step(s, data[i % len(data)])
        jax.block_until_ready(s.params)
        state[0] = s
    return run


def _torch_runner(name):
    import torch
    sys.path.insert(0, HERE)
    import bench_train
    _, make, shape, batch = WORKLOADS[name]
    if make is None:
        return bench_train.c_pytorch("cnn", batch)
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = _batches(shape, batch)
    if len(shape) == 2:  # channels last -> torch's channels first
        x = x.transpose(0, 1, 3, 2).copy()
    data = [(torch.from_numpy(a), torch.from_numpy(b).long()) for a, b in zip(x, y, strict=True)]
    return bench_train.torch_loop(model, opt, loss_fn, data)


def _calibrate(run, seconds):
    """Warm up, then the step count one round of about ``seconds`` takes."""
    run(2)
    n = 2
    while True:
        t = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - t
        if elapsed >= seconds / 4 or n >= 20000:
            return max(3, int(n * seconds / elapsed))
        n *= 4


def _sample(run, steps):
    """(steps/s, process CPU ms per step, minor page faults per step) of one round."""
    r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run(steps)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e3 / steps
    return steps / wall, cpu, (r1.ru_minflt - r0.ru_minflt) / steps


def child(workloads, rounds, seconds, mallopt, torch_too, pin=False) -> dict:
    """Median steps/s of jaxdl (and PyTorch) per workload, rounds interleaved."""
    applied = None
    if pin:  # one core, one compute thread: CPU time per step then barely depends on the load
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if mallopt:
        from jaxdl import _xla
        applied = _xla.tune_malloc()
    import torch
    torch.set_num_threads(1 if pin else os.cpu_count() or 1)
    out = {"mallopt": applied}
    for name in workloads:
        runners = {"jaxdl": _jaxdl_runner(name)}
        if torch_too:
            runners["torch"] = _torch_runner(name)
        steps = {k: _calibrate(r, seconds) for k, r in runners.items()}
        out[name] = {}
        samples = {k: [] for k in runners}
        for _ in range(rounds):
            for k, r in runners.items():
                samples[k].append(_sample(r, steps[k]))
        for k, v in samples.items():
            out[name][k] = statistics.median(s[0] for s in v)
            out[name][k + " best"] = max(s[0] for s in v)
            out[name][k + " cpu ms"] = statistics.median(s[1] for s in v)
            out[name][k + " faults"] = statistics.median(s[2] for s in v)
    return out


# --------------------------------------------------------------------------- parent side

def variant_env(variant: str) -> tuple[dict, list]:
    """The environment and extra child arguments of one variant."""
    env = {k: v for k, v in ENVIRON.items() if k != "GLIBC_TUNABLES"}
    extra = []
    if variant == "tunables":
        env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    elif variant == "tunables3":
        from jaxdl import _xla
        env["GLIBC_TUNABLES"] = _xla.MALLOC_TUNABLES
    elif variant == "mallopt":
        extra.append("--mallopt")
    elif variant == "keepflags":
        env["JAXDL_KEEP_XLA_FLAGS"] = "1"
    elif variant.startswith("ynn="):
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {YNN}={variant[4:]}".strip()
    elif variant != "plain":
        raise ValueError(f"variant: expected plain, tunables, tunables3, mallopt, keepflags or "
                         f"ynn=VALUE, got {variant!r}")
    return env, extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="cnn128")
    p.add_argument("--variants", default="plain,tunables,mallopt")
    p.add_argument("--repeats", type=int, default=5, help="child processes per variant")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds inside a child")
    p.add_argument("--seconds", type=float, default=0.5, help="seconds per round")
    p.add_argument("--no-torch", action="store_true", help="time jaxdl only")
    p.add_argument("--pin", action="store_true",
                   help="children on one core with one compute thread (XLA and PyTorch): "
                        "compare CPU ms/step when the machine is loaded")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mallopt", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    workloads = a.workloads.split(",")
    if a.child:
        print(json.dumps(child(workloads, a.rounds, a.seconds, a.mallopt, not a.no_torch,
                               a.pin)))
        return 0
    variants = a.variants.split(",")
    results = {v: [] for v in variants}
    for rep in range(a.repeats):
        for v in variants:
            env, extra = variant_env(v)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--workloads",
                   a.workloads, "--rounds", str(a.rounds), "--seconds", str(a.seconds), *extra]
            cmd += ["--no-torch"] * a.no_torch + ["--pin"] * a.pin
            if a.pin:
                env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {SERIAL}".strip()
            res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
            results[v].append(res)
            print(f"rep {rep} {v}: " + ", ".join(
                f"{w} " + "/".join(f"{k} {s:.1f}" for k, s in res[w].items())
                for w in workloads), f"(load {os.getloadavg()[0]:.1f})", flush=True)
    _table(workloads, variants, results, torch_too=not a.no_torch)
    return 0


def _table(workloads, variants, results, torch_too):
    """Medians over repetitions; ratios paired within a repetition (adjacent in time)."""
    base = "plain" if "plain" in variants else None
    print("\n| workload | variant | jaxdl steps/s | PyTorch steps/s | jaxdl / PyTorch "
          "(same process) | jaxdl / PyTorch in `plain` | jaxdl best | jaxdl CPU ms/step "
          "| jaxdl faults/step | PyTorch best | PyTorch CPU ms/step | PyTorch faults/step |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        for v in variants:
            j = statistics.median(r[w]["jaxdl"] for r in results[v])
            if not torch_too:
                best, cpu = (statistics.median(r[w][f"jaxdl {m}"] for r in results[v])
                             for m in ("best", "cpu ms"))
                print(f"| {w} | {v} | {j:.1f} | | | | {best:.1f} | {cpu:.1f} |")
                continue
            t = statistics.median(r[w]["torch"] for r in results[v])
            ratio = statistics.median(r[w]["jaxdl"] / r[w]["torch"] for r in results[v])
            cross = (statistics.median(r[w]["jaxdl"] / b[w]["torch"]
                                       for r, b in zip(results[v], results[base], strict=True))
                     if base else float("nan"))
            extra = " | ".join(f"{statistics.median(r[w][f'{k} {m}'] for r in results[v]):.1f}"
                               for k in ("jaxdl", "torch") for m in ("best", "cpu ms", "faults"))
            print(f"| {w} | {v} | {j:.1f} | {t:.1f} | {ratio:.2f} | {cross:.2f} | {extra} |")


if __name__ == "__main__":
    sys.exit(main())
