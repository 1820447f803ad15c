"""Hyperparameter search on the 8×8 digits: grid, random, Bayesian, and one population.

The network is an MLP (Flatten, Dense(width, ReLU), Dropout(dropout),
Dense(10)) trained with Adam(lr). Three searches get the same budget of
trials over the learning rate (log scale), the dropout rate and the width,
each trial a ``Trainer.fit`` scored by its best validation loss, with median
stopping of hopeless trials (``tune.fit_objective``):

- grid search over ``lr × dropout × width``,
- random search (``lr`` drawn log-uniformly),
- Bayesian search (a Gaussian process and expected improvement).

Then ``tune.population_fit`` trains as many learning rates at once, vmapped
in one compiled program, for the width and dropout the Bayesian search chose.

Writes ``hyperparameter_search.png`` to ``out_dir``: the best validation loss
so far against the trial number for each search, and the population's best
member as one point (all its members finished together).

Run: ``python examples/hyperparameter_search.py [--trials 12 --epochs 20]``
(a few minutes on 2 CPU cores; ``--trials 4 --epochs 2`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import time

import jax.numpy as jnp
import numpy as np

from jaxdl import data, nn, optim, tune

SPACE = {"lr": tune.loguniform(1e-4, 1e-1), "dropout": tune.uniform(0.0, 0.5),
         "width": tune.choice([32, 64, 128])}


def mlp(width: int, dropout: float) -> nn.Sequential:
    """The searched network: Flatten, Dense(width, ReLU), Dropout, Dense(10) logits."""
    return nn.Sequential([nn.Flatten(), nn.Dense(width, activation="relu"),
                          nn.Dropout(dropout), nn.Dense(10)])


def build(config: dict):
    """``config -> (model, optimizer)``, what ``tune.fit_objective`` trains."""
    return mlp(int(config["width"]), float(config["dropout"])), optim.adam(config["lr"])


def grid_for(trials: int) -> dict:
    """A grid of about ``trials`` points: learning rates × two dropouts × two widths."""
    n_lr = max(1, trials // 4)
    return {"lr": np.geomspace(1e-3, 1e-1, n_lr).round(5).tolist(),
            "dropout": [0.0, 0.25], "width": [32, 128]}


def run_searches(objective, trials: int, seed: int) -> dict:
    """Each search at the same budget; ``{name: (result, seconds)}``."""
    searches = {
        "grid": lambda: tune.grid_search(objective, grid_for(trials), metric="val_loss"),
        "random": lambda: tune.random_search(objective, SPACE, trials, seed=seed,
                                             metric="val_loss"),
        "bayesian": lambda: tune.bayesian_search(objective, SPACE, trials, seed=seed,
                                                 metric="val_loss"),
    }
    results = {}
    for name, run in searches.items():
        start = time.perf_counter()
        results[name] = (run(), time.perf_counter() - start)
    return results


def best_so_far(result) -> np.ndarray:
    """The best validation loss after each trial (pruned and failed trials count as none)."""
    values = [t["value"] if t["status"] == "ok" else np.inf for t in result.trials]
    return np.minimum.accumulate(np.asarray(values, dtype=np.float64))


def plot(results: dict, population: tuple, path: str) -> str:
    """Best-so-far curves of the searches and the population's best member."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, (result, seconds) in results.items():
        curve = best_so_far(result)
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3,
                label=f"{name} ({seconds:.0f} s)")
    pop, seconds = population
    ax.scatter([len(pop.final)], [pop.final[pop.best_index]["val_loss"]], marker="*", s=160,
               color="k", zorder=3, label=f"population of {len(pop.final)} ({seconds:.0f} s)")
    ax.set(xlabel="trial", ylabel="best validation loss so far", yscale="log",
           title="Hyperparameter search on the digits MLP")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(trials: int = 12, epochs: int = 20, seed: int = 0, out_dir: str = ".",
         verbose: int = 1) -> dict:
    (x, y), _ = data.load_digits()
    x, y = np.asarray(x), np.asarray(y)
    split = int(0.8 * len(x))
    train_xy, val_xy = (x[:split], y[:split]), (x[split:], y[split:])
    objective = tune.fit_objective(build, *train_xy, epochs=epochs, batch_size=64,
                                   validation_data=val_xy, metric="val_loss", seed=seed)
    results = run_searches(objective, trials, seed)
    best = results["bayesian"][0].best_config
    start = time.perf_counter()
    population = tune.population_fit(
        mlp(int(best["width"]), float(best["dropout"])), "sparse_categorical_crossentropy",
        lambda hp: optim.adam(hp["lr"]), {"lr": jnp.geomspace(1e-4, 1e-1, trials)},
        *train_xy, epochs=epochs, batch_size=64, validation_data=val_xy, seed=seed,
        verbose=0)
    population = (population, time.perf_counter() - start)
    os.makedirs(out_dir, exist_ok=True)
    path = plot(results, population, os.path.join(out_dir, "hyperparameter_search.png"))
    summary = {name: {"best_value": r.best_value, "best_config": r.best_config, "seconds": s}
               for name, (r, s) in results.items()}
    pop = population[0]
    summary["population"] = {"best_value": pop.final[pop.best_index]["val_loss"],
                             "best_config": pop.best_config, "seconds": population[1]}
    if verbose:
        for name, s in summary.items():
            config = {k: (round(v, 5) if isinstance(v, float) else v)
                      for k, v in s["best_config"].items()}
            print(f"{name:>10}: best val_loss {s['best_value']:.4f} with {config} "
                  f"in {s['seconds']:.1f} s")
        print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=".")
    a = p.parse_args()
    main(a.trials, a.epochs, a.seed, a.out_dir)
