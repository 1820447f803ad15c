"""The course's two-input network, built with the functional API.

The course writes, in Keras::

    inp1, inp2 = Input(shape=(4,)), Input(shape=(4,))
    h2 = Dense(hL2)(Dense(hL1)(inp1))           # hL1 = 30, hL2 = 40
    h4 = Dense(hL4)(Dense(hL3)(inp2))           # hL3 = 20, hL4 = 50
    merged = Concatenate()([h2, h4])            # 40 + 50 = 90 features
    model = Model(inputs=[inp1, inp2], outputs=merged)

Here is the same graph in jaxdl, its summary, and a classifier on top of it
trained on a toy task that needs both inputs: the label is 1 when the sum of
all eight input values is positive. Either input alone decides the label only
about 3 times in 4, so a single-input baseline with the same layers stays near
75 % while the two-input model learns the task.

Run: ``python examples/functional_api.py [--epochs 20]``
"""

import argparse

import numpy as np

from jaxdl import nn, optim, train


def both_inputs_task(n, seed):
    """``((x1, x2), y)``: two (n, 4) inputs, ``y = 1`` where ``sum(x1) + sum(x2) > 0``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(n, 4)).astype(np.float32)
    x2 = rng.normal(size=(n, 4)).astype(np.float32)
    return (x1, x2), (x1.sum(axis=1) + x2.sum(axis=1) > 0).astype(np.int32)


def course_graph():
    """The course's model: two Input((4,)), Dense 30 -> 40 and Dense 20 -> 50, Concatenate."""
    inp1, inp2 = nn.Input((4,), name="input_1"), nn.Input((4,), name="input_2")
    h2 = nn.Dense(40, activation="relu")(nn.Dense(30, activation="relu")(inp1))
    h4 = nn.Dense(50, activation="relu")(nn.Dense(20, activation="relu")(inp2))
    merged = nn.Concatenate()([h2, h4])
    return nn.Model([inp1, inp2], merged), merged


def fit_and_score(model, x, y, x_test, y_test, epochs, seed, verbose):
    trainer = train.Trainer(model, optimizer=optim.adam(1e-3), metrics=("accuracy",))
    trainer.fit(x, y, epochs=epochs, batch_size=64, seed=seed, verbose=verbose)
    return trainer.evaluate(x_test, y_test)["accuracy"]


def main(epochs=20, seed=0, verbose=0):
    course, merged = course_graph()
    print(nn.summary(course))
    classifier = nn.Model(course.inputs, nn.Dense(2)(merged))   # 2 logits on the 90 features

    one = nn.Input((4,), name="input_1")                        # the baseline sees x1 only
    baseline = nn.Model(one, nn.Dense(2)(nn.Dense(40, activation="relu")(
        nn.Dense(30, activation="relu")(one))))

    (x1, x2), y = both_inputs_task(4000, seed)
    (t1, t2), y_test = both_inputs_task(2000, seed + 1)
    both = fit_and_score(classifier, (x1, x2), y, (t1, t2), y_test, epochs, seed, verbose)
    single = fit_and_score(baseline, x1, y, t1, y_test, epochs, seed, verbose)
    print(f"test accuracy, two inputs: {both:.2%}; one input only: {single:.2%}")
    return {"two_inputs": both, "one_input": single}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    a = p.parse_args()
    main(a.epochs, verbose=1)
