"""A GAN on the 8-Gaussian ring and the 5x5 grid: mode coverage by loss and packing.

The two 2-D targets of the mode-collapse literature (Metz et al. 2017,
Srivastava et al. 2017, Lin et al. 2018): 8 gaussians of std 0.02 on a
circle of radius 2, and 25 gaussians of std 0.02 on a grid of spacing 2.
Generator and discriminator are 128-128 leaky-ReLU MLPs, latents are 2-D
(16-D on the grid), batches 128, 10,000 steps (40,000 on the grid), both
optimizers Adam (1e-3, b1 = 0.9) whose rate drops to a tenth for the last
30 % of the steps (``optim.schedules.piecewise_constant``), the R1 penalty
on the discriminator (``GAN(r1_weight=0.1)``) and sampling from the moving average
of the generator's weights (``GAN(g_ema_decay=0.99)``, the library default).
Without the drop the samples keep jittering around the modes with the step
size; without R1 some seeds' discriminators oscillate and the balance of the
modes swings (one seed fell to 6 % high-quality samples at 6,000 steps).

The script trains each variant (``minimax``, ``non_saturating``, ``hinge``,
``wasserstein_gp`` with 5 critic steps and no R1, ``non_saturating`` with
``pack=2``) on both targets, draws real vs generated scatters at several
points of the first seed's run (``generative.SampleGrid``), and prints the
mode-coverage table (``generative.metrics.mode_coverage`` on 2,500 samples:
modes with a high-quality sample (within 3 std), the share of high-quality
samples, the reverse KL of their mode histogram to uniform), as means over
the seeds.

Measured on the ring, non_saturating, seeds 0-4, CPU (modes; HQ %; the
generator's averaged weights unless marked raw). Columns: the five seeds'
HQ, then the mean; all 8 modes on every seed unless the row says otherwise.

====================================  =================================  =====
recipe                                HQ % per seed                      mean
====================================  =================================  =====
6k steps, drop x0.1 at 70 % (raw)     73.9 75.1 68.8 71.6  6.0           59.1
6k, drop, EMA 0.999 (seed 4: 1 mode)  71.0 72.0 66.5 67.3  0.0           55.4
6k, drop, EMA 0.99                    74.1 76.4 69.4 72.4  5.7           59.6
6k, drop x0.01, EMA 0.99              72.2 75.0 67.7 70.8  3.3           57.8
6k, drop, R1 0.1, EMA 0.99            70.8 76.9 62.4 78.6 63.0           70.3
6k, drop, R1 1.0                       4.9  6.5  5.4  5.2  5.1            5.4
6k, drop, width 256 (modes 7,6,3,2,6) 58.8 80.2 91.8 94.0 74.7           79.9
10k, drop, EMA 0.99                   81.0 81.3 78.4 80.1 59.2           76.0
10k, drop, R1 0.02, (modes 8,8,8,6,8) 77.8 84.5 75.9 56.3 51.7           69.2
**10k, drop, R1 0.1, EMA 0.99**       82.2 84.6 77.6 84.8 77.8           81.4
10k, drop, R1 0.1 (raw)               81.4 84.4 77.2 83.6 76.6           80.6
====================================  =================================  =====

Those rows come from a sweep (not this script) that trains the five seeds side
by side (``jax.vmap`` of ``make_gan_step`` inside ``lax.scan``, the same data
and GAN, another shuffling than ``GANTrainer.fit``'s). Through ``train_gan``
(``GANTrainer.fit``, the slow test ``tests/test_gan.py::test_ring_target``,
313 s on a loaded 2-core CPU) the chosen recipe gave 8 modes on every seed and
83.5, 83.7, 84.7, 84.0, 81.2 % HQ (mean 83.4 %): issue 13's ring target is
met. The EMA adds about 0.3-1 point; R1 0.1 and 10,000 steps decide. Loss
table (ring, the chosen recipe, seeds 0-1 only, sweep, averaged generator):
minimax 8/8 modes, 83.7 % HQ; hinge 8/8, 82.3 %; non_saturating pack=2 8/8,
81.9 %; wasserstein_gp (5 critic steps, no R1) 8/8, 51.9 %.

The 5x5 grid needs more than the ring recipe (``TARGET_RECIPES["grid"]``): a
16-D latent (a 2-D latent must tear the plane into 25 pieces) and 40,000
steps (the rate drop still at 70 %). Measured in the same kind of vmapped
sweep as the ring table (CPU, non_saturating, the averaged generator, 2,500
samples; modes per seed, then the means over those seeds):

==========================================  ====================  =====  ====
grid recipe (ring recipe unless stated)     modes per seed        mean   HQ %
==========================================  ====================  =====  ====
latent 2, 10k, no R1                        15 8 14               12.3    6.9
latent 2, 10k, pack=2                       8 12 8                 9.3    0.7
latent 2, 10k, 256-256 MLPs                 9 12                  10.5    1.4
latent 16, 10k                              7 14 17               12.7    1.5
latent 16, 10k, no R1                       14 15                 14.5   15.0
latent 16, 10k, 256-256 MLPs                15 14                 14.5    2.8
latent 16, 10k, batch 256                   18 8                  13.0    4.8
latent 8, 10k, pack=2                       8 4                    6.0    0.6
latent 16, 20k                              23 19                 21.0   12.2
latent 16, 20k, batch 256                   15 22                 18.5   19.9
**latent 16, 40k**                          24 24 22 20 23        22.6   33.1
latent 16, 40k, raw (no average)            25 23 23 21 24        23.2   31.0
==========================================  ====================  =====  ====

(The 40k row's seeds 2-4 ran in a sweep of their own, so with another
shuffling.) At 10,000 steps every variant leaves the grid's generator
diffuse (most samples between the modes); length decides, then the latent.
The grid target (>= 23 of 25 modes on average over 5 seeds) is thus met
only borderline, by the raw generator (23.2), NOT by the averaged one that
``GANTrainer.sample`` uses (22.6); it is not yet measured through
``GANTrainer.fit`` (``tests/test_gan.py::test_grid_target``, slow, marked
xfail until it is). The ring recipe itself (2-D latent, 10,000 steps)
through ``GANTrainer.fit``, seed 0: 9 modes, 1.8 % HQ. Next to try: 60k
steps, or the 16-D latent with 256-256 MLPs at 40k.

Run: ``python examples/gan_ring.py [--seeds 5] [--steps N] [--out .]`` (without
``--steps`` each target trains its own length: 10,000 ring, 40,000 grid steps).
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
    "wasserstein_gp": {"loss": "wasserstein_gp", "d_steps": 5, "r1_weight": 0.0},
    "non_saturating pack=2": {"loss": "non_saturating", "pack": 2},
}
STEPS_PER_EPOCH = 250
STEPS = 10_000
#: The ring recipe's GAN options besides the loss (measured, see the docstring).
RECIPE = {"r1_weight": 0.1, "g_ema_decay": 0.99}
#: Per target, the :func:`train_gan` arguments on top of ``RECIPE``: the grid's
#: generator needs a wider latent and a longer run (measured, see the docstring).
TARGET_RECIPES = {"ring": {"steps": STEPS, "latent_dim": 2},
                  "grid": {"steps": 40_000, "latent_dim": 16}}


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


def decayed_adam(steps, lr=1e-3, drop_at=0.7, final=0.1):
    """Adam whose rate falls to ``final * lr`` after ``drop_at`` of ``steps`` updates."""
    return optim.adam(optim.schedules.piecewise_constant(lr, {int(drop_at * steps): final}))


def train_gan(x, steps=STEPS, seed=0, batch_size=128, callbacks=(), verbose=0, width=128,
              lr=1e-3, latent_dim=2, **gan_kwargs):
    """Train the ring/grid GAN for ``steps`` generator updates on ``x``; the trainer.

    ``x`` should hold ``STEPS_PER_EPOCH * batch_size`` points: one epoch is
    then 250 steps, each a fresh batch of the epoch's shuffled order.
    """
    d_steps = gan_kwargs.get("d_steps", 1)
    gan_kwargs = {**RECIPE, **gan_kwargs}
    gan = generative.GAN(mlp(2, width), mlp(1, width), latent_dim=latent_dim,
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
    """Each seed's coverage for one variant and target, and seed 0's samples; pictures.

    ``steps=None`` trains the target's own number of steps (``TARGET_RECIPES``).
    """
    settings = {**TARGET_RECIPES[target_name], **recipe}
    own_steps = settings.pop("steps")
    steps = own_steps if steps is None else steps
    results, first = [], None
    for seed in range(seeds):
        x, centers = target(target_name, STEPS_PER_EPOCH * 128, seed)
        callbacks = []
        if seed == 0:
            folder = os.path.join(out, f"gan_{target_name}_{name.replace(' ', '_')}")
            every = max(1, steps // STEPS_PER_EPOCH // 4)
            callbacks.append(generative.SampleGrid(folder, every=every, n=1000, seed=0,
                                                   real=x[:1000]))
        trainer = train_gan(x, steps, seed, callbacks=callbacks, **settings, **kwargs)
        results.append(coverage(trainer, centers, seed))
        first = trainer.sample(1000, seed=1) if first is None else first
    return results, first


def table(rows):
    """The coverage table as text: means over seeds per target and variant."""
    lines = [f"{'target':6} {'variant':24} {'modes':>7} {'min':>4} {'HQ %':>6} {'rev KL':>7}"]
    for (target_name, name), results in rows.items():
        modes, hq, kl = (np.array(v, dtype=float) for v in zip(*results, strict=True))
        lines.append(f"{target_name:6} {name:24} {modes.mean():7.2f} {int(modes.min()):4d} "
                     f"{100 * hq.mean():6.1f} {kl.mean():7.3f}")
    return "\n".join(lines)


def main(seeds=5, steps=None, out=".", variants=None, targets=("ring", "grid"), **recipe):
    """Train every variant on every target; ``{"rows", "samples", "table", "pngs"}``.

    ``rows[(target, variant)]``: each seed's coverage; ``samples[...]``: 1,000
    samples of the first seed's generator.

    ``steps``: generator updates per run, ``None`` for each target's own
    (``TARGET_RECIPES``). ``recipe``: ``width``, ``lr`` or ``latent_dim`` of
    :func:`train_gan` (smaller for a smoke run).
    """
    variants = VARIANTS if variants is None else {k: VARIANTS[k] for k in variants}
    rows, samples = {}, {}
    for target_name in targets:
        for name, kwargs in variants.items():
            rows[(target_name, name)], samples[(target_name, name)] = run_variant(
                name, kwargs, target_name, seeds, steps, out, **recipe)
    text = table(rows)
    print(text)
    pngs = sorted(os.path.join(root, f) for root, _, files in os.walk(out)
                  for f in files if f.startswith("samples_epoch_") and "gan_" in root)
    return {"rows": rows, "samples": samples, "table": text, "pngs": pngs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default: the target's own, TARGET_RECIPES)")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    main(seeds=args.seeds, steps=args.steps, out=args.out)
