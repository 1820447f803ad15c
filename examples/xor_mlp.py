"""An MLP solves XOR, the problem a single perceptron cannot.

Two inputs, a hidden layer of 4 tanh units, one sigmoid output trained on
binary cross-entropy with plain gradient descent, ``w ← w − lr · ∂L/∂w``,
written as a ten-line loop over ``jax.grad``.

Run: ``python examples/xor_mlp.py``
"""

import jax
import jax.numpy as jnp

from jaxdl import data, losses, nn

x, y = data.make_xor()                       # (4, 2) float32, labels [0, 1, 1, 0]
y = y.reshape(-1, 1).astype(jnp.float32)
model = nn.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1)])   # logits out


def loss_fn(params):
    logits, _ = model.apply(params, {}, x)
    return losses.binary_crossentropy(logits, y).mean()


def main(steps=2000, lr=0.5, seed=0):
    params, _ = model.init(jax.random.key(seed), (2,))
    grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    for step in range(steps + 1):                                  # the whole training loop:
        loss, grads = grad_fn(params)                              # forward + backward
        params = jax.tree.map(lambda w, g: w - lr * g, params, grads)  # gradient descent
        if step % 500 == 0:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    probs = nn.sigmoid(model.apply(params, {}, x)[0])
    print("\n x1 x2 | target | p(y=1)")
    for (a, b), t, p in zip(x.tolist(), y[:, 0].tolist(), probs[:, 0].tolist(), strict=True):
        print(f"  {a:.0f}  {b:.0f} |   {t:.0f}    | {p:.3f}")
    accuracy = float(jnp.mean((probs > 0.5) == (y > 0.5)))
    print(f"\naccuracy {accuracy:.0%}, final loss {float(loss_fn(params)):.4f}")
    return accuracy, float(loss_fn(params))


if __name__ == "__main__":
    main()
