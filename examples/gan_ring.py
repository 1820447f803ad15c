"""A GAN on the 8-Gaussian ring and the 5x5 grid: mode coverage by loss and packing.

The two 2-D targets of the mode-collapse literature (Metz et al. 2017,
Srivastava et al. 2017, Lin et al. 2018): 8 gaussians of std 0.02 on a
circle of radius 2, and 25 gaussians of std 0.02 on a grid of spacing 2.
Generator and discriminator are 128-128 leaky-ReLU MLPs, latents are 2-D,
batches 128, both optimizers Adam (1e-3) whose rate drops to a tenth for the
last 30 % of the steps (``optim.schedules.piecewise_constant``). Without that
drop the generator's samples keep jittering around the modes with the step
size and fewer fall within 3 std (0.06) of a centre; the drop sharpens them.

The script trains each variant (``minimax``, ``non_saturating``, ``hinge``,
``wasserstein_gp`` with 5 critic steps, ``non_saturating`` with ``pack=2``)
on both targets, draws real vs generated scatters at several points of the
first seed's run (``generative.SampleGrid``), and prints the mode-coverage
table (``generative.metrics.mode_coverage`` on 2,500 samples: modes with a
high-quality sample, the share of high-quality samples, the reverse KL of
their mode histogram to uniform), as means over the seeds.

Measured (CPU, ring, non_saturating, this recipe, 6,000 steps, seeds 0-4):
modes 8, 8, 7, 8, 8; high-quality samples 77.4, 70.8, 72.7, 69.9, 78.2 %
(mean 73.8 %): better than the constant-rate baseline (68-73 % at 6,000
steps in issue 13) but short of issue 13's target (all 8 modes on every seed,
>= 80 %). Seed 0 at 4,000 steps: constant Adam 1e-3 54.5 %, with b1 = 0.5
29.5 % (7 modes); the drop to a tenth at 75 % 70.8 % (b1 = 0.5: 71.2 %);
cosine decay 55.8 % (b1 = 0.5: 69.2 %); pack=2 (b1 = 0.5, constant) 6.4 %
(7 modes); batch 512 (b1 = 0.5) 43.6 %. Two drops (x0.3 at 50 %, x0.05 at
75 %, 6,000 steps) 74.6 %. The grid and the other losses' rows were not
measured yet: run the script for the table.

Run: ``python examples/gan_ring.py [--seeds 5] [--steps 6000] [--out .]``
"""

import argparse
import os

import numpy as np

from jaxdl import data, generative, nn, optim

STD = 0.02
VARIANTS = {  # name -> GAN keyword arguments
    "minimax": {"loss": "minimax"},
    "non_saturating": {"loss": "non_saturating"},
    "hinge": {"loss": "hinge"},
    "wasserstein_gp": {"loss": "wasserstein_gp", "d_steps": 5},
    "non_saturating pack=2": {"loss": "non_saturating", "pack": 2},
}
STEPS_PER_EPOCH = 250


def target(name, n, seed=0):
    """``(x, centers)`` of the ``"ring"`` or ``"grid"`` target: ``n`` points and the modes."""
    if name == "ring":
        return data.make_gaussian_mixture(n, 8, 2.0, STD, seed)[0], \
            data.gaussian_mixture_centers(8, 2.0)
    return data.make_gaussian_grid(n, 5, 2.0, STD, seed)[0], data.gaussian_grid_centers(5, 2.0)


def mlp(out, width=128):
    """Two hidden leaky-ReLU layers of ``width`` units, then ``out`` linear outputs."""
    return nn.Sequential([nn.Dense(width), nn.LeakyReLU(0.2), nn.Dense(width),
                          nn.LeakyReLU(0.2), nn.Dense(out)])


def decayed_adam(steps, lr=1e-3, drop_at=0.7):
    """Adam whose rate falls to ``lr / 10`` after ``drop_at`` of ``steps`` updates."""
    return optim.adam(optim.schedules.piecewise_constant(lr, {int(drop_at * steps): 0.1}))


def train_gan(x, steps, seed=0, batch_size=128, callbacks=(), verbose=0, width=128, lr=1e-3,
              **gan_kwargs):
    """Train the ring/grid GAN for ``steps`` generator updates on ``x``; the trainer.

    ``x`` should hold ``STEPS_PER_EPOCH * batch_size`` points: one epoch is
    then 250 steps, each a fresh batch of the epoch's shuffled order.
    """
    d_steps = gan_kwargs.get("d_steps", 1)
    gan = generative.GAN(mlp(2, width), mlp(1, width), latent_dim=2,
                         g_optimizer=decayed_adam(steps, lr),
                         d_optimizer=decayed_adam(steps * d_steps, lr), **gan_kwargs)
    trainer = generative.GANTrainer(gan)
    epochs = max(1, steps // (len(x) // batch_size))
    trainer.fit(x, epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose,
                callbacks=list(callbacks))
    return trainer


def coverage(trainer, centers, seed=0, n=2500):
    """``(modes, hq_fraction, reverse_kl)`` of ``n`` samples."""
    return generative.metrics.mode_coverage(trainer.sample(n, seed=10_000 + seed), centers,
                                            STD)


def run_variant(name, kwargs, target_name, seeds, steps, out, **recipe):
    """Each seed's coverage for one variant and target; pictures for seed 0."""
    results = []
    for seed in range(seeds):
        x, centers = target(target_name, STEPS_PER_EPOCH * 128, seed)
        callbacks = []
        if seed == 0:
            folder = os.path.join(out, f"gan_{target_name}_{name.replace(' ', '_')}")
            every = max(1, steps // STEPS_PER_EPOCH // 4)
            callbacks.append(generative.SampleGrid(folder, every=every, n=1000, seed=0,
                                                   real=x[:1000]))
        trainer = train_gan(x, steps, seed, callbacks=callbacks, **recipe, **kwargs)
        results.append(coverage(trainer, centers, seed))
    return results


def table(rows):
    """The coverage table as text: means over seeds per target and variant."""
    lines = [f"{'target':6} {'variant':24} {'modes':>7} {'min':>4} {'HQ %':>6} {'rev KL':>7}"]
    for (target_name, name), results in rows.items():
        modes, hq, kl = (np.array(v, dtype=float) for v in zip(*results, strict=True))
        lines.append(f"{target_name:6} {name:24} {modes.mean():7.2f} {int(modes.min()):4d} "
                     f"{100 * hq.mean():6.1f} {kl.mean():7.3f}")
    return "\n".join(lines)


def main(seeds=5, steps=6000, out=".", variants=None, targets=("ring", "grid"), **recipe):
    """Train every variant on every target; return ``{"rows", "table", "pngs"}``.

    ``recipe``: ``width`` and ``lr`` of :func:`train_gan` (smaller for a smoke run).
    """
    variants = VARIANTS if variants is None else {k: VARIANTS[k] for k in variants}
    rows = {}
    for target_name in targets:
        for name, kwargs in variants.items():
            rows[(target_name, name)] = run_variant(name, kwargs, target_name, seeds, steps,
                                                    out, **recipe)
    text = table(rows)
    print(text)
    pngs = sorted(os.path.join(root, f) for root, _, files in os.walk(out)
                  for f in files if f.startswith("samples_epoch_") and "gan_" in root)
    return {"rows": rows, "table": text, "pngs": pngs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    main(seeds=args.seeds, steps=args.steps, out=args.out)
