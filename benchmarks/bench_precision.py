"""What lower precision costs in accuracy: float32 vs bfloat16 vs float16 training.

Two measurements, each with the same seeds, data order and epochs for every dtype:

1. The digits CNN (``Conv2D -> MaxPool2D -> Flatten -> Dense``, Adam) trained
   with ``train.make_train_step(..., compute_dtype=...)``: test accuracy and
   final training loss for float32, bfloat16, float16 without loss scaling and
   float16 with ``optim.dynamic_loss_scale``. Params stay float32 throughout.
2. Underflow: linear regression whose loss is multiplied by ``2**-30`` (and
   the SGD learning rate by ``2**30``, so in exact arithmetic it is plain SGD
   on the MSE). Its gradients (~1e-10) are below float16's smallest number:
   without loss scaling they flush to zero and nothing is learned; the dynamic
   loss scale lifts them into range.

Speed is bench_scaling.py's business; the times here are only a sanity check.

Usage::

    python benchmarks/bench_precision.py [--epochs 30] [--seeds 3] [--out results.md]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import data, losses, nn, optim, train

VARIANTS = {  # name: (compute_dtype, loss scaling)
    "float32": (None, False),
    "bfloat16": ("bfloat16", False),
    "float16, no loss scaling": ("float16", False),
    "float16 + dynamic_loss_scale": ("float16", True),
}


def digits_cnn(compute_dtype, scaled, *, seed, epochs, width, batch_size, lr=1e-2):
    """Train the digits CNN; return (test accuracy, last epoch's mean loss, seconds)."""
    (x, y), (xt, yt) = data.load_digits()
    model = nn.Sequential([nn.Conv2D(width, 3, padding="same", activation="relu"),
                           nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10)])
    opt = optim.adam(lr)
    if scaled:
        opt = optim.dynamic_loss_scale(opt)
    state = train.TrainState.create(model, opt, (8, 8, 1), jax.random.key(seed))
    loss = "sparse_categorical_crossentropy"
    step = train.make_train_step(model, loss, opt, jit=False, compute_dtype=compute_dtype)
    nb = len(x) // batch_size
    xs, ys = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def epoch(state, order):
        order = order[:nb * batch_size]
        batches = (xs[order].reshape(nb, batch_size, 8, 8, 1), ys[order].reshape(nb, batch_size))
        return jax.lax.scan(step, state, batches)

    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(epochs):
        state, logs = epoch(state, jnp.asarray(rng.permutation(len(x))))
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t
    evaluate = train.make_eval_step(model, loss, ("accuracy",), compute_dtype=compute_dtype)
    for leaf in jax.tree.leaves(state.params):
        assert leaf.dtype == jnp.float32, leaf.dtype
    return float(evaluate(state, (xt, yt))["accuracy"]), float(jnp.mean(logs["loss"])), seconds


def underflow(compute_dtype, scaled, *, steps=150):
    """The tiny-loss regression; return (first loss, final loss, params moved, final scale)."""
    tiny = 2.0 ** -30
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(32, 3)), jnp.float32)
    y = x @ jnp.asarray([[1.0], [-2.0], [0.5]], jnp.float32)
    model = nn.Sequential([nn.Dense(1)])
    opt = optim.sgd(0.05 / tiny)
    if scaled:
        opt = optim.dynamic_loss_scale(opt, growth_interval=10)
    state = train.TrainState.create(model, opt, (3,), jax.random.key(0))
    start = state.params
    step = train.make_train_step(model, lambda p, t: tiny * losses.mean_squared_error(p, t),
                                 opt, compute_dtype=compute_dtype, donate=False)
    first = None
    for _ in range(steps):
        state, logs = step(state, (x, y))
        first = float(logs["loss"]) / tiny if first is None else first
    moved = any(bool(jnp.any(a != b)) for a, b in
                zip(jax.tree.leaves(start), jax.tree.leaves(state.params), strict=True))
    return first, float(logs["loss"]) / tiny, moved, float(optim.loss_scale_of(state.opt_state))


def report(args) -> str:
    lines = [f"## Precision: digits CNN (Conv2D({args.width}) + Dense, Adam 1e-2, batch "
             f"{args.batch_size}, {args.epochs} epochs, seeds 0..{args.seeds - 1})", "",
             "| compute dtype | test accuracy (mean, min..max) | final train loss "
             "| s/run (incl. compile) |",
             "|---|---|---|---|"]
    for name, (cd, scaled) in VARIANTS.items():
        runs = [digits_cnn(cd, scaled, seed=s, epochs=args.epochs, width=args.width,
                           batch_size=args.batch_size) for s in range(args.seeds)]
        acc = [r[0] for r in runs]
        lines.append(f"| {name} | {100 * statistics.mean(acc):.2f}% "
                     f"({100 * min(acc):.2f}..{100 * max(acc):.2f}) | "
                     f"{statistics.mean(r[1] for r in runs):.4g} | "
                     f"{statistics.mean(r[2] for r in runs):.2f} |")
        print(lines[-1], flush=True)
    lines += ["", "## Precision: float16 underflow (loss x 2**-30, SGD lr 0.05 x 2**30, "
              "150 full-batch steps)", "",
              "| compute dtype | first loss | final loss | params moved | final loss scale |",
              "|---|---|---|---|---|"]
    for name, (cd, scaled) in VARIANTS.items():
        first, last, moved, scale = underflow(cd, scaled)
        lines.append(f"| {name} | {first:.4g} | {last:.4g} | {moved} | {scale:g} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl mixed-precision accuracy benchmark")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--width", type=int, default=16, help="filters of the convolution")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="3 epochs, one seed")
    p.add_argument("--out", default=None, help="append the markdown report to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 3, 1
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}", flush=True)
    text = report(args)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
