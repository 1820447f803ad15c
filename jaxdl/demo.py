"""The demo: a small CNN trained on the bundled 8×8 handwritten digits.

``jaxdl demo`` calls :func:`run`; ``examples/digits_cnn.py`` shows the same
network step by step.
"""

from __future__ import annotations

import os
import time
from typing import Optional

from jaxdl import data, losses, nn, optim, train


def digits_cnn(dropout: float = 0.25) -> nn.Sequential:
    """The default CNN for 8×8×1 digits: two conv/pool blocks and a dense head.

    ``(8, 8, 1) -> Conv 3×3×32 -> pool -> (4, 4, 32) -> Conv 3×3×64 -> pool ->
    (2, 2, 64) -> flatten 256 -> Dense 128 -> dropout -> Dense 10`` (logits).
    """
    return nn.Sequential([
        nn.Conv2D(32, 3, padding="same", activation="relu"),
        nn.MaxPool2D(2),
        nn.Conv2D(64, 3, padding="same", activation="relu"),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(128, activation="relu"),
        nn.Dropout(dropout),
        nn.Dense(10),
    ])


def run(epochs: int = 15, seed: int = 0, out: str = ".", batch_size: int = 32,
        verbose: int = 1, learning_rate: float = 2e-3) -> dict:
    """Train :func:`digits_cnn` on the digits, print the test accuracy, plot the curves.

    Returns ``{"test_accuracy", "test_loss", "history", "curves", "seconds"}``.
    """
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    model = digits_cnn()
    if verbose:
        print(nn.summary(model, x_train.shape[1:]))
        print(f"\n{len(x_train)} training and {len(x_test)} test images of 8×8 digits\n")
    trainer = train.Trainer(model, losses.sparse_categorical_crossentropy,
                            optim.adam(learning_rate), metrics=("accuracy",))
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                          validation_split=0.1, seed=seed, verbose=verbose)
    seconds = time.perf_counter() - start
    result = trainer.evaluate(x_test, y_test)
    os.makedirs(out, exist_ok=True)
    curves = history.plot(os.path.join(out, "digits_cnn_curves.png"),
                          title="jaxdl demo: CNN on 8×8 digits")
    if verbose:
        print(f"\ntest accuracy: {result['accuracy']:.2%}  (test loss {result['loss']:.4f}, "
              f"{len(x_test)} images)")
        print(f"trained in {seconds:.1f}s; training curves written to {curves}")
    return {"test_accuracy": result["accuracy"], "test_loss": result["loss"],
            "history": history.history, "curves": curves, "seconds": seconds}


def main(epochs: int = 15, seed: int = 0, out: Optional[str] = None) -> int:
    """Run the demo (``jaxdl demo``); returns the exit status."""
    run(epochs=epochs, seed=seed, out=out or ".")
    return 0
