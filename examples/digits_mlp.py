"""A multi-layer perceptron on the bundled 8×8 digits, Keras style.

Flatten the 8×8 image to 64 inputs, two hidden ReLU layers, 10 logits,
sparse categorical cross-entropy from logits, Adam. Prints the summary, the
per-epoch progress, and the test accuracy.

Run: ``python examples/digits_mlp.py [--epochs 30]``
"""

import argparse

from jaxdl import data, losses, nn, optim, train


def main(epochs=30, seed=0, verbose=1):
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    model = nn.Sequential([
        nn.Flatten(),
        nn.Dense(128, activation="relu"),
        nn.Dense(64, activation="relu"),
        nn.Dense(10),
    ])
    if verbose:
        print(nn.summary(model, x_train.shape[1:]))
    trainer = train.Trainer(model, losses.sparse_categorical_crossentropy, optim.adam(1e-3),
                            metrics=("accuracy",))
    trainer.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_split=0.1,
                seed=seed, verbose=verbose)
    result = trainer.evaluate(x_test, y_test)
    print(f"test accuracy {result['accuracy']:.2%}, test loss {result['loss']:.4f}")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    main(a.epochs, a.seed)
