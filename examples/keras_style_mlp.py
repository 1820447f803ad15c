"""The course's first Keras program, in jaxdl.

The course writes::

    model = Sequential()
    model.add(Dense(32, input_dim=8, activation='relu'))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    model.fit(X, y, epochs=150, batch_size=10)

on random data: ``X`` uniform in [0, 1)^8 and random 0/1 labels. Here is the
same network. The model outputs a probability (sigmoid), so the loss is told
``from_logits=False``; jaxdl's default is logits, which is more stable.

With random labels there is nothing to generalize: the network can only
memorize its 100 examples, so training accuracy climbs well above the 50 % of
chance as it overfits.

Run: ``python examples/keras_style_mlp.py [--epochs 150]``
"""

import argparse
import functools

import numpy as np

from jaxdl import losses, nn, optim, train


def main(epochs=150, seed=0, verbose=2):
    rng = np.random.default_rng(seed)
    X = rng.random((100, 8)).astype(np.float32)
    y = rng.integers(2, size=(100, 1)).astype(np.float32)

    model = nn.Sequential([
        nn.Dense(32, activation="relu"),      # input_dim=8 comes from the data
        nn.Dense(1, activation="sigmoid"),
    ])
    bce = functools.partial(losses.binary_crossentropy, from_logits=False)
    trainer = train.Trainer(model, loss=bce, optimizer=optim.adam(1e-3), metrics=("accuracy",))
    history = trainer.fit(X, y, epochs=epochs, batch_size=10, seed=seed, verbose=verbose)
    first, last = history.history["accuracy"][0], history.history["accuracy"][-1]
    print(f"training accuracy: epoch 1 {first:.2%} -> epoch {epochs} {last:.2%} "
          f"(loss {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f})")
    return history


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=150)
    a = p.parse_args()
    main(a.epochs)
