"""GAN training-step speed: jaxdl against raw JAX, Flax NNX and PyTorch.

The workload is the 8-Gaussian ring GAN of issue 13: a 2-D latent, generator
``2 -> 128 -> 128 -> 2`` and discriminator ``2 -> 128 -> 128 -> 1`` (leaky
ReLU, slope 0.2, between the layers), batch 256, Adam (lr 1e-3, b1 0.5) for
both networks, the non-saturating loss. One step is one discriminator update
(fresh latents, the generator's output held fixed, the discriminator called on
the real and on the fake batch) then one generator update (fresh latents,
through the updated discriminator), with the four metrics ``d_loss``,
``g_loss``, ``d_real``, ``d_fake``, exactly what ``generative.make_gan_step``
computes.

Contestants, each only when importable:

* ``jaxdl step``: ``generative.make_gan_step`` (jitted, donated) called from a
  Python loop, one call per step;
* ``jaxdl fit``: ``generative.GANTrainer.fit`` over one epoch of ``steps``
  batches (data put on the device, shuffled and gathered per step, steps fused
  with ``lax.scan``; its per-call setup included);
* ``raw JAX``: the same math hand-written on dicts of arrays with
  ``optax.adam``, one jitted call per step with donated buffers: the floor
  any JAX library adds to;
* ``Flax NNX``: ``nnx.Module`` + two ``nnx.Optimizer`` + ``nnx.jit``;
* ``PyTorch``: ``torch.nn`` + ``torch.optim.Adam`` (fused when available), 2
  threads (``--torch-threads``), the discriminator's weights frozen during the
  generator update and the generator's forward under ``no_grad`` in the
  discriminator update (what a careful PyTorch user writes). On a machine
  whose cores are oversubscribed, torch's OpenMP threads wait on each other:
  its step time then grows tenfold with 2 threads but not with 1, so compare
  ``--torch-threads 1`` before reading a large × PyTorch ratio.

Rounds interleave the contestants, so a noisy neighbour hurts all alike, and
each round starts one contestant later than the one before: on a busy machine
the position in a round moved a contestant by 20 % (whoever ran right after
PyTorch lost, whoever ran first gained). Each figure is the median over rounds
of steps per second after a warm-up that compiles. Ratios are to raw JAX and
to PyTorch from the same run.

Usage::

    python benchmarks/bench_gan.py                  # full run (about 1 minute on 2 cores)
    python benchmarks/bench_gan.py --quick          # smoke run, asserts nothing
    python benchmarks/bench_gan.py --out results.md # append the table to a markdown file
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench_train import environment  # the same machine/version header as bench_train

from jaxdl import data, generative, nn, optim

LATENT, HIDDEN, BATCH, SLOPE = 2, 128, 256, 0.2
LR, B1 = 1e-3, 0.5
N_BATCHES = 4  # the step loops cycle over this many device-resident real batches


def ring_batches(n_batches: int = N_BATCHES, batch: int = BATCH, seed: int = 0) -> np.ndarray:
    """``(n_batches * batch, 2)`` float32 points of the 8-Gaussian ring (radius 2, std 0.02)."""
    x, _ = data.make_gaussian_mixture(n_batches * batch, modes=8, radius=2.0, std=0.02,
                                      seed=seed)
    return x


def jaxdl_gan() -> generative.GAN:
    """The ring GAN of issue 13 with jaxdl layers (Adam 1e-3, b1 0.5 for both).

    Without the generator's weight average (``g_ema_decay=None``), which the
    raw JAX, Flax and PyTorch steps do not compute either: the same work in all.
    """
    def mlp(out):
        return nn.Sequential([nn.Dense(HIDDEN), nn.LeakyReLU(SLOPE),
                              nn.Dense(HIDDEN), nn.LeakyReLU(SLOPE), nn.Dense(out)])
    return generative.GAN(mlp(2), mlp(1), latent_dim=LATENT, loss="non_saturating",
                          g_optimizer=optim.adam(LR, b1=B1), d_optimizer=optim.adam(LR, b1=B1),
                          g_ema_decay=None)


# --------------------------------------------------------------------------- contestants
# Each factory returns run(steps), which trains `steps` steps and blocks until they are
# done, or None when its framework is not installed.

def c_jaxdl_step():
    gan = jaxdl_gan()
    state = [generative.GANState.create(gan, (2,), jax.random.key(0))]
    step = generative.make_gan_step(gan)
    x = ring_batches()
    batches = [jnp.asarray(b) for b in np.split(x, N_BATCHES)]

    def run(steps):
        s = state[0]
        for i in range(steps):
            s, logs = step(s, batches[i % N_BATCHES])
        jax.block_until_ready(s.g_params)
        state[0] = s
    return run


def c_jaxdl_fit():
    trainer = generative.GANTrainer(jaxdl_gan())
    cache = {}

    def run(steps):
        if steps not in cache:
            cache[steps] = ring_batches(steps, seed=1)
        trainer.fit(cache[steps], epochs=1, batch_size=BATCH, verbose=0)
        jax.block_until_ready(trainer.state.g_params)
    return run


def _raw_mlp_init(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": jax.random.normal(k, (a, b)) * np.sqrt(1.0 / a), "b": jnp.zeros(b)}
            for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def _raw_mlp(params, x):
    for i, layer in enumerate(params):
        x = x @ layer["w"] + layer["b"]
        x = jax.nn.leaky_relu(x, SLOPE) if i < len(params) - 1 else x
    return x


def raw_gan_step(tx):
    """The hand-written step ``(g, d, g_opt, d_opt, key, t, x) -> (..., t + 1, metrics)``."""
    def d_loss_fn(d, fake, x):
        real_logits, fake_logits = _raw_mlp(d, x)[:, 0], _raw_mlp(d, fake)[:, 0]
        loss = jnp.mean(jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits))
        return loss, (real_logits, fake_logits)

    def g_loss_fn(g, d, z):
        return jnp.mean(jax.nn.softplus(-_raw_mlp(d, _raw_mlp(g, z))[:, 0]))

    def step(g, d, g_opt, d_opt, key, t, x):
        kd, kg = jax.random.split(jax.random.fold_in(key, t))
        fake = jax.lax.stop_gradient(_raw_mlp(g, jax.random.normal(kd, (x.shape[0], LATENT))))
        (d_loss, (rl, fl)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d, fake, x)
        updates, d_opt = tx.update(grads, d_opt, d)
        d = optax.apply_updates(d, updates)
        z = jax.random.normal(kg, (x.shape[0], LATENT))
        g_loss, grads = jax.value_and_grad(g_loss_fn)(g, d, z)
        updates, g_opt = tx.update(grads, g_opt, g)
        metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": jnp.mean(jax.nn.sigmoid(rl)),
                   "d_fake": jnp.mean(jax.nn.sigmoid(fl))}
        return optax.apply_updates(g, updates), d, g_opt, d_opt, t + 1, metrics
    return jax.jit(step, donate_argnums=(0, 1, 2, 3, 5))


def c_raw_jax():
    tx = optax.adam(LR, b1=B1)
    kg, kd = jax.random.split(jax.random.key(1))
    g = _raw_mlp_init(kg, (LATENT, HIDDEN, HIDDEN, 2))
    d = _raw_mlp_init(kd, (2, HIDDEN, HIDDEN, 1))
    carry = [(g, d, tx.init(g), tx.init(d), jnp.zeros((), jnp.int32))]
    key = jax.random.key(0)
    step = raw_gan_step(tx)
    batches = [jnp.asarray(b) for b in np.split(ring_batches(), N_BATCHES)]

    def run(steps):
        g, d, g_opt, d_opt, t = carry[0]
        for i in range(steps):
            g, d, g_opt, d_opt, t, _ = step(g, d, g_opt, d_opt, key, t, batches[i % N_BATCHES])
        jax.block_until_ready(g)
        carry[0] = (g, d, g_opt, d_opt, t)
    return run


def c_flax_nnx():
    try:
        from flax import nnx
    except ImportError:
        return None

    class MLP(nnx.Module):
        def __init__(self, sizes, rngs):
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs)
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True)])

        def __call__(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                x = jax.nn.leaky_relu(x, SLOPE) if i < len(self.layers) - 1 else x
            return x

    rngs = nnx.Rngs(0)
    gen, disc = MLP((LATENT, HIDDEN, HIDDEN, 2), rngs), MLP((2, HIDDEN, HIDDEN, 1), rngs)
    g_opt = nnx.Optimizer(gen, optax.adam(LR, b1=B1), wrt=nnx.Param)
    d_opt = nnx.Optimizer(disc, optax.adam(LR, b1=B1), wrt=nnx.Param)

    @nnx.jit
    def step(gen, disc, g_opt, d_opt, key, t, x):
        kd, kg = jax.random.split(jax.random.fold_in(key, t))
        fake = jax.lax.stop_gradient(gen(jax.random.normal(kd, (x.shape[0], LATENT))))

        def d_loss_fn(m):
            rl, fl = m(x)[:, 0], m(fake)[:, 0]
            return jnp.mean(jax.nn.softplus(-rl) + jax.nn.softplus(fl)), (rl, fl)
        (d_loss, (rl, fl)), grads = nnx.value_and_grad(d_loss_fn, has_aux=True)(disc)
        d_opt.update(disc, grads)
        z = jax.random.normal(kg, (x.shape[0], LATENT))

        def g_loss_fn(m):
            return jnp.mean(jax.nn.softplus(-disc(m(z))[:, 0]))
        g_loss, grads = nnx.value_and_grad(g_loss_fn)(gen)
        g_opt.update(gen, grads)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": jnp.mean(jax.nn.sigmoid(rl)),
                "d_fake": jnp.mean(jax.nn.sigmoid(fl))}
    key = jax.random.key(0)
    batches = [jnp.asarray(b) for b in np.split(ring_batches(), N_BATCHES)]
    counter = [0]

    def run(steps):
        logs = None
        for i in range(steps):
            logs = step(gen, disc, g_opt, d_opt, key, counter[0] + i, batches[i % N_BATCHES])
        counter[0] += steps
        jax.block_until_ready(logs)
    return run


def c_pytorch(threads: int = 2):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tnn, F = torch.nn, torch.nn.functional

    def mlp(a, out):
        return tnn.Sequential(tnn.Linear(a, HIDDEN), tnn.LeakyReLU(SLOPE),
                              tnn.Linear(HIDDEN, HIDDEN), tnn.LeakyReLU(SLOPE),
                              tnn.Linear(HIDDEN, out))
    gen, disc = mlp(LATENT, 2), mlp(2, 1)

    def adam(module):
        try:
            return torch.optim.Adam(module.parameters(), lr=LR, betas=(B1, 0.999), fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(module.parameters(), lr=LR, betas=(B1, 0.999))
    g_opt, d_opt = adam(gen), adam(disc)
    batches = [torch.from_numpy(b.copy()) for b in np.split(ring_batches(), N_BATCHES)]

    def one_step(x):
        with torch.no_grad():
            fake = gen(torch.randn(x.shape[0], LATENT))
        rl, fl = disc(x)[:, 0], disc(fake)[:, 0]
        d_loss = (F.softplus(-rl) + F.softplus(fl)).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        disc.requires_grad_(False)
        g_loss = F.softplus(-disc(gen(torch.randn(x.shape[0], LATENT)))[:, 0]).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        disc.requires_grad_(True)
        return (d_loss.detach(), g_loss.detach(), torch.sigmoid(rl.detach()).mean(),
                torch.sigmoid(fl.detach()).mean())

    def run(steps):
        for i in range(steps):
            logs = one_step(batches[i % N_BATCHES])
        float(logs[0])
    return run


CONTESTANTS = {"jaxdl step": c_jaxdl_step, "jaxdl fit": c_jaxdl_fit, "raw JAX": c_raw_jax,
               "Flax NNX": c_flax_nnx, "PyTorch": c_pytorch}


# --------------------------------------------------------------------------- measurement

def calibrate(run, target_seconds: float) -> int:
    """Warm ``run`` up (compiles) and return the step count of a ~``target_seconds`` round.

    The count grows until one call takes a tenth of the target, then scales, so
    per-call costs (fit's setup) stay included but cannot dominate a round.
    The exact count is run once more, since fit compiles per epoch length.
    """
    run(2)
    n = 2
    while True:
        run(n)  # the first call of a new length may compile
        start = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - start
        if elapsed >= target_seconds / 10 or n >= 20000:
            break
        n *= 4
    steps = int(min(max(target_seconds * n / max(elapsed, 1e-9), 5), 20000))
    run(steps)
    return steps


def measure(names, rounds: int, target_seconds: float, torch_threads: int = 2) -> dict:
    """``{name: median steps/s}`` over ``rounds`` interleaved rounds; None when skipped."""
    runners = {name: CONTESTANTS[name](torch_threads) if name == "PyTorch" else
               CONTESTANTS[name]() for name in names}
    steps = {name: calibrate(run, target_seconds) for name, run in runners.items() if run}
    samples = {name: [] for name in steps}
    order = list(steps)
    for r in range(rounds):  # each round starts one contestant later: no fixed neighbour
        for name in order[r % len(order):] + order[:r % len(order)]:
            start = time.perf_counter()
            runners[name](steps[name])
            samples[name].append(steps[name] / (time.perf_counter() - start))
    return {name: statistics.median(samples[name]) if name in samples else None
            for name in names}


def table(results: dict) -> str:
    """The markdown table: steps/s and the ratios to raw JAX and to PyTorch."""
    raw, pt = results.get("raw JAX"), results.get("PyTorch")
    lines = ["| contestant | steps/s | × raw JAX | × PyTorch |", "|---|---:|---:|---:|"]
    for name, sps in results.items():
        if sps is None:
            lines.append(f"| {name} | skipped (not installed) | | |")
            continue
        ratio_raw = f"{sps / raw:.2f}" if raw else "n/a"
        ratio_pt = f"{sps / pt:.2f}" if pt else "n/a"
        lines.append(f"| {name} | {sps:,.0f} | {ratio_raw} | {ratio_pt} |")
    return "\n".join(lines)


def verdict(results: dict) -> str:
    """Issue 13's speed target: jaxdl step >= raw JAX and >= 1.5x PyTorch."""
    ours, raw, pt = (results.get(k) for k in ("jaxdl step", "raw JAX", "PyTorch"))
    if ours is None:
        return "target: not measured (jaxdl step not run)"
    parts = [f"jaxdl step / raw JAX = {ours / raw:.2f} (target >= 1)" if raw else
             "raw JAX not run",
             f"jaxdl step / PyTorch = {ours / pt:.2f} (target >= 1.5)" if pt else
             "PyTorch skipped"]
    return "target: " + "; ".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl GAN-step benchmark (the 8-Gaussian ring)")
    p.add_argument("--quick", action="store_true", help="smoke run, asserts nothing")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--seconds", type=float, default=None, help="target seconds per round")
    p.add_argument("--contestants", default=None, help="comma-separated names, e.g. "
                   "'jaxdl step,raw JAX'")
    p.add_argument("--torch-threads", type=int, default=2,
                   help="PyTorch's intra-op threads (default 2, as bench_train)")
    p.add_argument("--out", default=None, help="append the markdown table to this file")
    a = p.parse_args(argv)
    names = list(CONTESTANTS) if not a.contestants else a.contestants.split(",")
    unknown = [n for n in names if n not in CONTESTANTS]
    if unknown:
        p.error(f"--contestants: unknown {unknown}; choose from {list(CONTESTANTS)}")
    rounds = a.rounds or (2 if a.quick else 7)
    seconds = a.seconds or (0.15 if a.quick else 1.0)
    print(environment())
    results = measure(names, rounds, seconds, a.torch_threads)
    md = table(results)
    print(f"\nring GAN step, batch {BATCH}, median of {rounds} interleaved rounds, "
          f"PyTorch on {a.torch_threads} threads\n")
    print(md)
    print(verdict(results))
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n{environment()}\n\nring GAN step (batch {BATCH}); command: "
                    f"`python benchmarks/bench_gan.py {' '.join(argv or sys.argv[1:])}`\n\n"
                    f"{md}\n\n{verdict(results)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
