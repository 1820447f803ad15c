"""A population of digits MLPs trained at once against the same runs one after another.

Issue 14's target: ``tune.population_fit`` of 16 digits MLPs (16 learning
rates) is at least 4x faster than 16 sequential ``train.Trainer.fit`` runs with
the same settings, on 2 CPU cores.

Workload: the MLP of ``examples/digits_mlp.py`` (Flatten, Dense 128 ReLU,
Dense 64 ReLU, Dense 10 logits) on the bundled digits (1438 training and 359
validation images), Adam with learning rates ``logspace(-4, -1, K)``, batch
32, validation every epoch, sparse categorical cross-entropy and accuracy.

Two figures per side, each the median over ``--repeats`` runs:

- **cold**: what a user feels: a fresh ``Trainer`` per learning rate (each
  compiles its step, its partial last batch and its evaluation), against one
  ``population_fit`` call (one compilation for all members);
- **warm**: the same work on already compiled functions (the K trainers fit
  again; the population trainer is reset to fresh members and fits again).

Usage::

    python benchmarks/bench_tune_population.py               # the target run (about 2 min)
    python benchmarks/bench_tune_population.py --quick       # smoke run, asserts nothing
    python benchmarks/bench_tune_population.py --out RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

from jaxdl import data, nn, optim, train, tune

LOSS = "sparse_categorical_crossentropy"


def mlp() -> nn.Sequential:
    """The digits MLP of ``examples/digits_mlp.py``."""
    return nn.Sequential([nn.Flatten(), nn.Dense(128, activation="relu"),
                          nn.Dense(64, activation="relu"), nn.Dense(10)])


def _block(tree) -> None:
    jax.block_until_ready(jax.tree.leaves(tree))


def sequential(lrs, train_data, val_data, epochs, batch_size, trainers=None):
    """K ``Trainer.fit`` runs one after another; the trainers (reused when given)."""
    trainers = trainers or [train.Trainer(mlp(), LOSS, optim.adam(float(lr))) for lr in lrs]
    for t in trainers:
        t.state = None  # a fresh init, as a new run; compiled functions are kept
        t.fit(*train_data, epochs=epochs, batch_size=batch_size, validation_data=val_data,
              seed=0, verbose=0)
        _block(t.state.params)
    return trainers


def population(lrs, train_data, val_data, epochs, batch_size, trainer=None):
    """One ``population_fit`` (or a refit of ``trainer``, compiled already); the trainer."""
    hparams = {"lr": np.asarray(lrs, np.float32)}
    if trainer is None:
        pop = tune.population_fit(mlp(), LOSS, lambda hp: optim.adam(hp["lr"]), hparams,
                                  *train_data, epochs=epochs, batch_size=batch_size,
                                  validation_data=val_data, seed=0, verbose=0)
        trainer = pop.trainer
    else:
        trainer.reset(hparams)
        trainer.fit(*train_data, epochs=epochs, batch_size=batch_size,
                    validation_data=val_data, seed=0, verbose=0)
    _block(trainer.state.members.params)
    return trainer


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def measure(members: int, epochs: int, batch_size: int, repeats: int) -> dict:
    """Median seconds of each side, cold and warm, interleaved over ``repeats`` rounds."""
    train_data, val_data = data.load_digits()
    lrs = np.logspace(-4, -1, members)
    times = {k: [] for k in ("sequential cold", "sequential warm", "population cold",
                             "population warm")}
    for _ in range(repeats):
        t, trainers = _timed(sequential, lrs, train_data, val_data, epochs, batch_size)
        times["sequential cold"].append(t)
        times["sequential warm"].append(_timed(sequential, lrs, train_data, val_data, epochs,
                                               batch_size, trainers)[0])
        t, trainer = _timed(population, lrs, train_data, val_data, epochs, batch_size)
        times["population cold"].append(t)
        times["population warm"].append(_timed(population, lrs, train_data, val_data, epochs,
                                               batch_size, trainer)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def report(results: dict, members: int, epochs: int, batch_size: int, repeats: int) -> str:
    """A markdown table of the medians and the speed-ups."""
    lines = [f"{members} digits MLPs (64-128-64-10, Adam, lr logspace(-4, -1)), {epochs} "
             f"epochs, batch {batch_size}, validation each epoch; median of {repeats}", "",
             "| | sequential Trainer.fit (s) | population_fit (s) | speed-up |",
             "|---|---|---|---|"]
    for kind in ("cold", "warm"):
        seq, pop = results[f"sequential {kind}"], results[f"population {kind}"]
        label = "with compilation" if kind == "cold" else "compiled already"
        lines.append(f"| {label} | {seq:.2f} | {pop:.2f} | {seq / pop:.1f}x |")
    return "\n".join(lines)


def environment() -> str:
    return (f"jax {jax.__version__}, {jax.default_backend()} ({jax.devices()[0].device_kind}), "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run (4 members, 1 epoch)")
    p.add_argument("--members", type=int, default=None, help="K (default 16)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=None, help="rounds (default 3)")
    p.add_argument("--out", default=None, help="append the markdown table to this file")
    a = p.parse_args(argv)
    members = a.members or (4 if a.quick else 16)
    epochs = a.epochs or (1 if a.quick else 10)
    repeats = a.repeats or (1 if a.quick else 3)
    print(environment())
    results = measure(members, epochs, a.batch_size, repeats)
    md = report(results, members, epochs, a.batch_size, repeats)
    speedup = results["sequential cold"] / results["population cold"]
    verdict = (f"target (issue 14): population >= 4x faster than sequential, with "
               f"compilation: {speedup:.1f}x ({'met' if speedup >= 4 else 'NOT met'})")
    print(md)
    print(verdict)
    if a.out:
        command = " ".join(argv if argv is not None else sys.argv[1:])
        with open(a.out, "a") as f:
            f.write(f"\n{environment()}\n\ncommand: `python benchmarks/bench_tune_population.py "
                    f"{command}`\n\n{md}\n\n{verdict}\n")
    return {**results, "speedup": speedup}


if __name__ == "__main__":
    main()
