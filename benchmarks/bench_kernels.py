"""Speed of jaxdl.kernels against its peers, measured in the same run.

Measures, on JAX's default backend (CPU, GPU or TPU, unchanged):

1. ``kernels.matmul`` GFLOP/s for square sizes 512 to 4096, in float32 and in
   bfloat16 with float32 accumulation, next to the best of numpy's BLAS
   (``np.matmul``, float32 only: numpy has no fast bfloat16) and a plain
   jitted ``jnp.dot`` on the same machine;
2. ``kernels.conv2d`` forward and backward (the input and kernel gradients)
   GFLOP/s on a few CNN-sized shapes, next to ``kernels.conv2d_im2col`` and,
   when torch is importable, PyTorch's ``conv2d`` (skipped otherwise);
3. max/avg pooling forward + backward for each implementation of
   ``kernels.max_pool2d``/``avg_pool2d`` and the one ``method="auto"`` picks;
4. one training step of a small CNN with each max-pooling implementation.

Each figure is the median of several rounds after a warm-up call (the
compilation is not timed); the functions compared in one table row are timed
interleaved, round by round, so that load from other processes affects them
alike. FLOPs: ``2 m n k`` for a matmul; ``2 N H' W' O f_h
f_w C / G`` for a conv forward and twice that for its backward. Ratios compare
numbers taken in the same run; on a shared machine absolute figures are noisy.

Usage::

    python benchmarks/bench_kernels.py            # full run (< 5 min on 2 CPU cores)
    python benchmarks/bench_kernels.py --quick    # smoke run (< 1 min)
    python benchmarks/bench_kernels.py --out results.md
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import kernels, nn

try:  # PyTorch is an optional peer; the benchmark runs without it.
    import torch
    import torch.nn.functional as torch_F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None


# --------------------------------------------------------------------------- timing

def _block(out):
    if torch is not None and isinstance(out, torch.Tensor):
        if out.is_cuda:
            torch.cuda.synchronize()
        return out
    return jax.block_until_ready(out)


def measure(fns: dict[str, Callable[[], Any]], rounds: int = 5,
            min_round_s: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each zero-argument function, measured interleaved.

    Every function is called once to compile and warm up, then timed in
    ``rounds`` rounds; in each round every function runs ``n`` times back to
    back (``n`` chosen per function so that its share of a round lasts at
    least ``min_round_s``). Interleaving the functions round by round means a
    burst of load from other processes slows all of them alike, so the ratios
    stay meaningful on a shared machine even when absolute figures drift.
    """
    reps = {}
    for name, fn in fns.items():
        _block(fn())  # compile / warm up
        t0 = time.perf_counter()
        _block(fn())
        reps[name] = max(1, int(min_round_s / max(time.perf_counter() - t0, 1e-7)))
    per_call: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                out = fn()
            _block(out)
            per_call[name].append((time.perf_counter() - t0) / reps[name])
    return {name: statistics.median(ts) for name, ts in per_call.items()}


# --------------------------------------------------------------------------- environment

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> list[str]:
    dev = jax.devices()[0]
    lines = [
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores visible",
        f"- JAX {jax.__version__} (jaxlib {_version('jaxlib')}), backend "
        f"{jax.default_backend()}, device {dev.device_kind}",
        f"- numpy {np.__version__}; PyTorch "
        + (f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None
           else "not installed (its columns are skipped)"),
        f"- Python {platform.python_version()}",
    ]
    return lines


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def gflops(flops: float, seconds: float) -> str:
    return f"{flops / seconds / 1e9:.1f}"


# --------------------------------------------------------------------------- matmul

def bench_matmul(sizes, rounds) -> str:
    rows = []
    rng = np.random.default_rng(0)
    xla_dot = jax.jit(lambda a, b: jnp.dot(a, b))
    xla_dot_bf16 = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    for n in sizes:
        a_np = rng.standard_normal((n, n), dtype=np.float32)
        b_np = rng.standard_normal((n, n), dtype=np.float32)
        flops = 2.0 * n ** 3
        r = max(3, rounds if n <= 1024 else rounds // 2)
        a, b = jnp.asarray(a_np), jnp.asarray(b_np)
        t = measure({"jaxdl": functools.partial(kernels.matmul, a, b),
                     "xla": functools.partial(xla_dot, a, b),
                     "numpy": functools.partial(np.matmul, a_np, b_np)}, rounds=r)
        best_name, best = min((("XLA jnp.dot", t["xla"]), ("numpy", t["numpy"])),
                              key=lambda p: p[1])
        rows.append([f"{n}", "float32", gflops(flops, t["jaxdl"]), gflops(flops, t["xla"]),
                     gflops(flops, t["numpy"]), f"{best / t['jaxdl']:.2f} (vs {best_name})"])
        ab, bb = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
        t = measure({"jaxdl": functools.partial(kernels.matmul, ab, bb,
                                                preferred_element_type=jnp.float32),
                     "xla": functools.partial(xla_dot_bf16, ab, bb)}, rounds=r)
        rows.append([f"{n}", "bf16 → f32 acc.", gflops(flops, t["jaxdl"]), gflops(flops, t["xla"]),
                     "n/a", f"{t['xla'] / t['jaxdl']:.2f} (vs XLA jnp.dot)"])
    return table(["n (n×n @ n×n)", "dtype", "jaxdl GFLOP/s", "XLA jnp.dot GFLOP/s",
                  "numpy GFLOP/s", "jaxdl / best peer"], rows)


# --------------------------------------------------------------------------- conv2d

CONV_SHAPES = [
    # name, x shape (NHWC), kernel (HWIO), strides, padding
    ("mnist conv1", (128, 28, 28, 1), (3, 3, 1, 32), 1, "same"),
    ("mnist conv2", (128, 14, 14, 32), (3, 3, 32, 64), 1, "same"),
    ("cifar 3x3", (64, 32, 32, 64), (3, 3, 64, 64), 1, "same"),
    ("resnet 3x3/2", (32, 56, 56, 64), (3, 3, 64, 128), 2, "same"),
    ("course 5x5", (32, 26, 26, 100), (5, 5, 100, 500), 1, "valid"),
]


def _torch_conv(x_np, w_np, strides, padding):
    """A PyTorch conv2d on the same data (channels-last memory), forward and backward."""
    dev = "cuda" if torch.cuda.is_available() and jax.default_backend() == "gpu" else "cpu"
    x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2))).to(dev)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    w = torch.from_numpy(np.ascontiguousarray(w_np.transpose(3, 2, 0, 1))).to(dev)
    w = w.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    fh = w_np.shape[0]
    pad = (fh - 1) // 2 if padding == "same" else 0

    def fwd():
        with torch.no_grad():
            return torch_F.conv2d(x, w, stride=strides, padding=pad)

    y = torch_F.conv2d(x, w, stride=strides, padding=pad)
    g = torch.randn_like(y)

    def bwd():
        return torch.autograd.grad(y, (x, w), g, retain_graph=True)[0]

    return fwd, bwd


def bench_conv(shapes, rounds) -> str:
    rows = []
    rng = np.random.default_rng(1)
    for name, xs, ws, s, pad in shapes:
        x_np = rng.standard_normal(xs, dtype=np.float32)
        w_np = (rng.standard_normal(ws, dtype=np.float32) / np.sqrt(np.prod(ws[:3]))).astype(
            np.float32)
        x, w = jnp.asarray(x_np), jnp.asarray(w_np)
        y = kernels.conv2d(x, w, s, pad)
        flops = 2.0 * np.prod(y.shape) * np.prod(ws[:3])
        g = jnp.asarray(rng.standard_normal(y.shape, dtype=np.float32))

        conv = functools.partial(kernels.conv2d, strides=s, padding=pad)
        fwd = jax.jit(conv)
        im2col = jax.jit(functools.partial(kernels.conv2d_im2col, strides=s, padding=pad))
        bwd = jax.jit(lambda x, w, g, conv=conv: jax.vjp(conv, x, w)[1](g))
        fns = {"fwd": functools.partial(fwd, x, w), "bwd": functools.partial(bwd, x, w, g),
               "im2col": functools.partial(im2col, x, w)}
        if torch is not None:
            fns["torch fwd"], fns["torch bwd"] = _torch_conv(x_np, w_np, s, pad)
        t = measure(fns, rounds=rounds)
        row = [name, f"{xs} * {ws}, S={s}, {pad}", gflops(flops, t["fwd"]),
               gflops(2 * flops, t["bwd"]), gflops(flops, t["im2col"])]
        if torch is not None:
            row += [gflops(flops, t["torch fwd"]), gflops(2 * flops, t["torch bwd"]),
                    f"{t['torch fwd'] / t['fwd']:.2f}", f"{t['torch bwd'] / t['bwd']:.2f}"]
        else:
            row += ["skipped"] * 4
        rows.append(row)
    return table(["shape", "x * w", "conv2d fwd GFLOP/s", "conv2d bwd GFLOP/s",
                  "im2col fwd GFLOP/s", "torch fwd GFLOP/s", "torch bwd GFLOP/s",
                  "jaxdl/torch fwd", "jaxdl/torch bwd"], rows)


# --------------------------------------------------------------------------- pooling

POOL_CASES = [
    # kind, x shape, pool, strides, padding
    ("max", (128, 28, 28, 32), 2, 2, "valid"),
    ("max", (32, 56, 56, 64), 2, 2, "valid"),
    ("max", (128, 7, 7, 64), 2, 2, "same"),
    ("max", (32, 56, 56, 64), 3, 2, "same"),
    ("avg", (128, 28, 28, 32), 2, 2, "valid"),
    ("avg", (32, 56, 56, 64), 3, 2, "same"),
]


def bench_pool(cases, rounds) -> str:
    rows = []
    rng = np.random.default_rng(2)
    for kind, xs, f, s, pad in cases:
        fn = kernels.max_pool2d if kind == "max" else kernels.avg_pool2d
        x = jnp.asarray(rng.standard_normal(xs, dtype=np.float32))
        methods = ["reduce_window", "slices"] + (["reshape"] if f == s else [])
        picked = kernels.resolve_pool_method("auto", kind, (f, f), (s, s))
        fns = {}
        for m in methods:
            pool = functools.partial(fn, pool_size=f, strides=s, padding=pad, method=m)
            step = jax.jit(jax.value_and_grad(
                lambda v, pool=pool: jnp.sum(jnp.square(pool(v)))))
            fns[m, "fwd"] = functools.partial(jax.jit(pool), x)
            fns[m, "step"] = functools.partial(step, x)
        t = measure(fns, rounds=rounds)
        times = {m: (t[m, "fwd"], t[m, "step"]) for m in methods}
        base = times["reduce_window"][1]
        cells = []
        for m in ("reduce_window", "reshape", "slices"):
            if m in times:
                tf, tb = times[m]
                mark = " ←auto" if m == picked else ""
                cells.append(f"{tf * 1e3:.2f} / {tb * 1e3:.2f}{mark}")
            else:
                cells.append("n/a")
        fastest = min(times, key=lambda m: times[m][1])
        rows.append([f"{kind} {f}×{f}/{s} {pad}", f"{xs}"] + cells
                    + [f"{base / times[picked][1]:.1f}×", fastest])
    return table(["pool", "x", "reduce_window fwd / fwd+bwd (ms)", "reshape (ms)",
                  "slices (ms)", "auto speed-up (fwd+bwd)", "fastest fwd+bwd"], rows)


POOL_METHODS = ("reduce_window", "reshape", "slices", "auto")


def bench_cnn_step(rounds, batch=128, methods=POOL_METHODS) -> str:
    """One SGD step of a small MNIST-sized CNN with each max-pooling implementation."""
    rows = []
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((batch, 28, 28, 1), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, batch))
    fns = {}
    for method in methods:
        model = nn.Sequential([
            nn.Conv2D(32, 3, activation="relu"), nn.MaxPool2D(2, method=method),
            nn.Conv2D(64, 3, activation="relu"), nn.MaxPool2D(2, method=method),
            nn.Flatten(), nn.Dense(10)])
        params, state = model.init(jax.random.key(0), (28, 28, 1))

        def loss(p, model=model, state=state):
            logits, _ = model.apply(p, state, x)
            logp = nn.log_softmax(logits)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        @jax.jit
        def step(p, loss=loss):
            g = jax.grad(loss)(p)
            return jax.tree.map(lambda a, b: a - 0.01 * b, p, g)

        fns[method] = lambda step=step, params=params: step(params)
    times = measure(fns, rounds=rounds)
    for method, t in times.items():
        rows.append([method, f"{t * 1e3:.2f}",
                     f"{times['reduce_window'] / t:.2f}×"])
    return table([f"max pooling in a CNN train step (batch {batch}, 28×28×1)", "ms / step",
                  "speed-up vs reduce_window"], rows)


# --------------------------------------------------------------------------- main

def _small(case: tuple) -> tuple:
    """A conv or pooling case with its batch cut to 8 (``--smoke``)."""
    return (case[0], (8, *case[1][1:]), *case[2:])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, under a minute")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest case of each section, once (the test suite's check "
                             "that the script runs; its numbers mean nothing)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measurement")
    parser.add_argument("--out", default=None, help="also append the markdown to this file")
    args = parser.parse_args(argv)

    rounds = args.rounds or (1 if args.smoke else 3 if args.quick else 9)
    sizes = [256] if args.smoke else [512, 1024] if args.quick else [512, 1024, 2048, 4096]
    conv_shapes = CONV_SHAPES[:2] if args.quick else CONV_SHAPES
    pool_cases = POOL_CASES[:2] + POOL_CASES[3:4] if args.quick else POOL_CASES
    batch, methods = 128, POOL_METHODS
    if args.smoke:  # the first case of each section at batch 8: the wiring, not the numbers
        conv_shapes, pool_cases, batch = [_small(CONV_SHAPES[0])], [_small(POOL_CASES[0])], 8
        methods = POOL_METHODS[:1] + POOL_METHODS[-1:]  # each CNN step is a long compilation

    start = time.perf_counter()
    parts = ["## Environment", "\n".join(environment())]
    sections = [("matmul", lambda: bench_matmul(sizes, rounds)),
                ("conv2d", lambda: bench_conv(conv_shapes, rounds)),
                ("pooling: forward / forward+backward", lambda: bench_pool(pool_cases, rounds)),
                ("small CNN training step", lambda: bench_cnn_step(rounds, batch, methods))]
    print(parts[0] + "\n\n" + parts[1] + "\n", flush=True)
    for title, fn in sections:
        t0 = time.perf_counter()
        text = fn()
        block = f"## {title}\n\n{text}\n\n_{time.perf_counter() - t0:.0f} s_"
        print(block + "\n", flush=True)
        parts.append(block)
    total = f"Total time: {time.perf_counter() - start:.0f} s"
    print(total)
    parts.append(total)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
