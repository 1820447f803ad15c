"""Six ways to fight over-fitting, side by side.

One network that over-fits on purpose (two hidden layers of 256 units trained
on only 150 of the 8×8 digits), trained six times: with no regularization,
with an L2 penalty λΣw², an L1 penalty λΣ|w|, the elastic net λ₁Σ|w| + λ₂Σw²,
with dropout, and with batch normalization. For each it plots the training
and validation loss per epoch and prints the final values: the gap between the
two curves is the over-fitting.

Run: ``python examples/regularization.py [--epochs 80] [--out .]``
"""

import argparse
import os

import numpy as np

from jaxdl import data, losses, nn, optim, regularizers, train


def _net(extra=None):
    extra = extra or (lambda: [])
    return nn.Sequential([nn.Flatten(),
                          nn.Dense(256), *extra(), nn.ReLU(),
                          nn.Dense(256), *extra(), nn.ReLU(),
                          nn.Dense(10)])


def configurations():
    """name -> (model, regularizer)."""
    return {
        "none": (_net(), None),
        "L2 (λ=1e-3)": (_net(), regularizers.l2(1e-3)),
        "L1 (λ=1e-4)": (_net(), regularizers.l1(1e-4)),
        "elastic net": (_net(), regularizers.elastic_net(l1=5e-5, l2=5e-4)),
        "dropout 0.5": (_net(lambda: [nn.Dropout(0.5)]), None),
        "batch norm": (_net(lambda: [nn.BatchNorm()]), None),
    }


def main(epochs=80, n_train=150, seed=0, out=".", verbose=1, only=None):
    (x, y), (x_test, y_test) = data.load_digits()
    x, y = x[:n_train], y[:n_train]
    results = {}
    for name, (model, reg) in configurations().items():
        if only is not None and name not in only:
            continue
        trainer = train.Trainer(model, losses.sparse_categorical_crossentropy,
                                optim.adam(1e-3), metrics=("accuracy",), regularizer=reg)
        h = trainer.fit(x, y, epochs=epochs, batch_size=32, seed=seed, verbose=0,
                        validation_data=(x_test, y_test))
        # The data loss alone (no penalty), so that the runs compare on the same scale.
        evaluate = train.make_eval_step(model, losses.sparse_categorical_crossentropy,
                                        metrics=("accuracy",))
        fit_logs = evaluate(trainer.state, (x, y))
        val = evaluate(trainer.state, (x_test, y_test))
        results[name] = {"history": h.history, "train_loss": float(fit_logs["loss"]),
                         "val_loss": float(val["loss"]),
                         "val_accuracy": float(val["accuracy"])}
    if verbose:
        print(f"{n_train} training images, {len(x_test)} validation images, {epochs} epochs\n")
        print(f"{'regularization':<15} {'train loss':>10} {'val loss':>9} {'gap':>7} "
              f"{'val acc':>8}")
        for name, r in results.items():
            print(f"{name:<15} {r['train_loss']:>10.4f} {r['val_loss']:>9.4f} "
                  f"{r['val_loss'] - r['train_loss']:>7.3f} {r['val_accuracy']:>8.2%}")
    path = _plot(results, out)
    if verbose:
        print(f"\ncurves written to {path}")
    return results


def _plot(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharey=True, squeeze=False)
    for ax, (name, r) in zip(axes.ravel(), results.items(), strict=False):
        epochs = np.arange(1, len(r["history"]["loss"]) + 1)
        ax.plot(epochs, r["history"]["loss"], label="train (incl. penalty)")
        ax.plot(epochs, r["history"]["val_loss"], "--", label="validation")
        ax.set_title(f"{name}: val acc {r['val_accuracy']:.1%}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("loss")
    axes[1, 0].set_ylabel("loss")
    axes[0, 0].legend()
    fig.suptitle("Over-fitting and five regularizers (150 training digits)")
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "regularization.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--out", default=".")
    a = p.parse_args()
    main(a.epochs, out=a.out)
