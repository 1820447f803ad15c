"""Optimizers from the course, by hand: two worked examples, then a race on Rosenbrock.

1. The course's worked examples, computed with ``optim.sgd``:
   * a one-weight linear model ``y = x * w`` trained sample by sample with the
     squared error, from ``w = 0.5`` with learning rate 0.1 on (2, 4), (1, 2),
     (3, 6): ``w`` goes 1.7, 1.76, 2.192 (towards the true slope 2);
   * gradient descent on ``x**2`` from 6 with learning rate 0.1: 4.8, 3.84.
2. Every optimizer of ``jaxdl.optim`` minimizes the Rosenbrock function
   ``(1 - x)**2 + 100 (y - x**2)**2`` from the same start (-1.5, 2). The script
   prints how many steps each needs to bring the loss below 1e-3 and draws the
   trajectories on a contour plot.

Run:  python examples/optimizers.py --out results/
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import optim

START = (-1.5, 2.0)
TARGET_LOSS = 1e-3
MAX_STEPS = 20_000

# Learning rates picked by hand for this start. The course's momentum and
# nesterov average the gradients (v = beta v + (1 - beta) g) instead of summing
# them, so they need a rate 1/(1 - beta) = 10 times larger to take the same
# steps as classical momentum: the step counts below come out equal.
OPTIMIZERS = {
    "sgd(1e-3)": lambda: optim.sgd(1e-3),
    "sgd(1e-3, momentum=0.9)": lambda: optim.sgd(1e-3, momentum=0.9),
    "sgd(1e-3, momentum=0.9, nesterov)": lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
    "momentum(1e-2, beta=0.9)": lambda: optim.momentum(1e-2, beta=0.9),
    "nesterov(1e-2, beta=0.9)": lambda: optim.nesterov(1e-2, beta=0.9),
    "adagrad(0.5)": lambda: optim.adagrad(0.5),
    "rmsprop(1e-3)": lambda: optim.rmsprop(1e-3),
    "adam(0.01)": lambda: optim.adam(0.01),
    "adamw(0.01)": lambda: optim.adamw(0.01, weight_decay=1e-4),
}


def worked_examples() -> None:
    """Prints the course's two gradient-descent examples, step by step."""
    print("Linear model y = x*w, squared error, w0 = 0.5, lr = 0.1")
    opt = optim.sgd(0.1)
    w = jnp.array(0.5)
    state = opt.init(w)
    for x, y in [(2.0, 4.0), (1.0, 2.0), (3.0, 6.0)]:
        grad = jax.grad(lambda w, x=x, y=y: (x * w - y) ** 2)(w)
        updates, state = opt.update(grad, state, w)
        new_w = optax.apply_updates(w, updates)
        print(f"  sample ({x:g}, {y:g}): w = {float(w):.4g} - 0.1 * {float(grad):.4g}"
              f" = {float(new_w):.4g}")
        w = new_w

    print("Gradient descent on x**2 from x0 = 6, lr = 0.1")
    x = jnp.array(6.0)
    state = opt.init(x)
    for _ in range(2):
        updates, state = opt.update(jax.grad(lambda x: x**2)(x), state, x)
        x = optax.apply_updates(x, updates)
        print(f"  x = {float(x):.4g}, y = x**2 = {float(x) ** 2:.6g}")


def rosenbrock(w: jax.Array) -> jax.Array:
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


def minimize(opt: optax.GradientTransformation, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``steps`` updates in one jitted scan; returns the path and losses."""

    def step(carry, _):
        w, state = carry
        updates, state = opt.update(jax.grad(rosenbrock)(w), state, w)
        w = optax.apply_updates(w, updates)
        return (w, state), (w, rosenbrock(w))

    @jax.jit
    def run(w0):
        _, (path, losses) = jax.lax.scan(step, (w0, opt.init(w0)), None, length=steps)
        return jnp.concatenate([w0[None], path]), jnp.concatenate([rosenbrock(w0)[None], losses])

    path, losses = run(jnp.array(START))
    return np.asarray(path), np.asarray(losses)


def steps_to_reach(losses: np.ndarray, target: float) -> int | None:
    """The first step whose loss is below ``target`` (losses[0] is the start)."""
    hits = np.flatnonzero(losses < target)
    return int(hits[0]) if hits.size else None


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = np.meshgrid(np.linspace(-2.0, 2.0, 400), np.linspace(-1.0, 3.0, 400))
    zs = (1 - xs) ** 2 + 100 * (ys - xs**2) ** 2
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.contour(xs, ys, zs, levels=np.logspace(-1, 3.5, 16), cmap="viridis", linewidths=0.7,
               alpha=0.6)
    colors = plt.get_cmap("tab10")
    for i, (name, (traj, _losses, steps)) in enumerate(results.items()):
        end = steps if steps is not None else len(traj) - 1
        shown = traj[: end + 1]
        if len(shown) > 3000:
            shown = shown[np.unique(np.linspace(0, len(shown) - 1, 3000).astype(int))]
        label = f"{name}: {steps if steps is not None else f'>{MAX_STEPS}'} steps"
        # The course's forms retrace classical momentum exactly: draw them dashed.
        style = "--" if name.startswith(("momentum(", "nesterov(")) else "-"
        ax.plot(shown[:, 0], shown[:, 1], style, lw=1.3, color=colors(i % 10), label=label,
                alpha=0.85)
    ax.plot(*START, "ko", ms=6)
    ax.annotate("start", START, textcoords="offset points", xytext=(6, 6))
    ax.plot(1.0, 1.0, "r*", ms=14)
    ax.annotate("minimum (1, 1)", (1.0, 1.0), textcoords="offset points", xytext=(8, -12))
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-1.0, 3.0)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"jaxdl.optim on Rosenbrock: paths until the loss is below {TARGET_LOSS:g}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="directory for the PNG (default: .)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    worked_examples()

    print(f"\nRosenbrock from {START}: steps until the loss is below {TARGET_LOSS:g}"
          f" (at most {MAX_STEPS})")
    print(f"  {'optimizer':36s} {'steps':>7s} {'final loss':>11s} {'final (x, y)':>18s}")
    results = {}
    started = time.perf_counter()
    for name, make in OPTIMIZERS.items():
        path, losses = minimize(make(), MAX_STEPS)
        steps = steps_to_reach(losses, TARGET_LOSS)
        results[name] = (path, losses, steps)
        shown = "never" if steps is None else str(steps)
        print(f"  {name:36s} {shown:>7s} {losses[-1]:11.2e}"
              f"   ({path[-1, 0]:.4f}, {path[-1, 1]:.4f})")
    out = os.path.join(args.out, "optimizers_rosenbrock.png")
    plot(results, out)
    print(f"\n{len(results)} optimizers in {time.perf_counter() - started:.1f} s; "
          f"plot written to {out}")


if __name__ == "__main__":
    main()
