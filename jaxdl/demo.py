"""The demo: a small CNN trained on the bundled 8×8 handwritten digits.

``jaxdl demo`` calls :func:`run`; ``examples/digits_cnn.py`` shows the same
network step by step.
"""

from __future__ import annotations

import math
import os
import time
from typing import Optional

from jaxdl import _checks, data, losses, nn, optim, train


def digits_cnn(dropout: float = 0.25, momentum: float = 0.9) -> nn.Sequential:
    """The default CNN for 8×8×1 digits: two conv/batch-norm/pool blocks and a dense head.

    ``(8, 8, 1) -> Conv 3×3×32 -> BN -> ReLU -> pool -> (4, 4, 32) -> Conv 3×3×64 -> BN ->
    ReLU -> pool -> (2, 2, 64) -> flatten 256 -> Dense 128 -> dropout -> Dense 10`` (logits).

    The batch norms' moving statistics use ``momentum=0.9`` rather than Keras's
    0.99: with 41 steps per epoch, 0.99 keeps them near their initial values
    (mean 0, variance 1) for several epochs, so the validation accuracy of the
    first epochs (inference mode) looks broken (about 10 %) while the training
    accuracy is already high.
    """
    return nn.Sequential([
        nn.Conv2D(32, 3, padding="same"), nn.BatchNorm(momentum=momentum), nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Conv2D(64, 3, padding="same"), nn.BatchNorm(momentum=momentum), nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(128, activation="relu"),
        nn.Dropout(dropout),
        nn.Dense(10),
    ])


def run(epochs: int = 20, seed: int = 0, out: str = ".", batch_size: int = 32,
        verbose: int = 1, learning_rate: float = 3e-3) -> dict:
    """Train :func:`digits_cnn` on the digits, print the test accuracy, plot the curves.

    Adam with the learning rate cosine-decayed from ``learning_rate`` to 0 over the
    run; 10 % of the training images are held out for the validation curves. Over
    seeds 0 to 5 the default settings reach 98.1 to 98.9 % test accuracy.

    Returns ``{"test_accuracy", "test_loss", "history", "curves", "seconds"}``.
    """
    epochs = _checks.positive_int("demo.run", "epochs", epochs)
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    model = digits_cnn()
    validation_split = 0.1
    steps = math.ceil(len(x_train) * (1 - validation_split) / batch_size) * epochs
    if verbose:
        print(nn.summary(model, x_train.shape[1:]))
        print(f"\n{len(x_train)} training and {len(x_test)} test images of 8×8 digits\n")
    schedule = optim.schedules.cosine_decay(learning_rate, max(steps, 1))
    trainer = train.Trainer(model, losses.sparse_categorical_crossentropy, optim.adam(schedule),
                            metrics=("accuracy",))
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                          validation_split=validation_split, seed=seed, verbose=verbose)
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


def main(epochs: int = 20, seed: int = 0, out: Optional[str] = None) -> int:
    """Run the demo (``jaxdl demo``); returns the exit status."""
    run(epochs=epochs, seed=seed, out=out or ".")
    return 0
