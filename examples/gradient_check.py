"""Gradient checking: compare backprop with finite differences, leaf by leaf.

Backpropagation is easy to get subtly wrong when you write a backward pass by
hand (a custom op, a fused kernel). The classic test is the finite-difference
check: nudge a parameter by ±h, see how the loss moves, and compare the slope
with the gradient that backprop computed.

    dL/dθ · v  ≈  (L(θ + h v) − L(θ − h v)) / 2h

`jaxdl.gradcheck.gradcheck` does this in float64 for every leaf of the params
tree (random directions, the leaf's own gradient direction, and every
coordinate of small leaves) and prints one row per leaf.

This script
1. builds a small network with `jaxdl.nn`, checks its loss gradient and prints
   the per-leaf report (everything passes, errors around 1e-9 or smaller);
2. swaps in a matmul whose hand-written backward pass is 1% wrong for the
   kernel of the second layer only, and shows that gradcheck fails exactly on
   `dense_1/kernel`.

Run: python examples/gradient_check.py
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import losses, nn
from jaxdl.gradcheck import GradcheckError, gradcheck


def make_data(n=16, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = rng.integers(0, classes, size=n).astype(np.int32)
    return x, y


@jax.custom_vjp
def matmul_with_buggy_backward(x, w):
    """x @ w with a hand-written backward pass whose kernel gradient is 1% too large."""
    return x @ w


def _buggy_fwd(x, w):
    return x @ w, (x, w)


def _buggy_bwd(residuals, g):
    x, w = residuals
    dx = g @ w.T  # correct
    dw = 1.01 * (x.T @ g)  # the bug: 1% too large
    return dx, dw


matmul_with_buggy_backward.defvjp(_buggy_fwd, _buggy_bwd)


def main():
    model = nn.Sequential([nn.Dense(8, activation="tanh"), nn.Dense(3)])
    params, state = model.init(jax.random.key(0), (4,))
    x, y = make_data()

    def loss(params, x, y):
        logits, _ = model.apply(params, state, x)
        return jnp.mean(losses.sparse_categorical_crossentropy(logits, y))

    print("1) The network's own gradient (jax.grad of the loss)\n")
    # argnums=0: differentiate the params only; x is cast to float64 but held fixed.
    report = gradcheck(loss, params, x, y, argnums=0)
    print(report)

    # The same network, but the second layer's matmul uses the buggy backward
    # pass. The forward value is identical, so only the gradient is wrong.
    def buggy_loss(params, x, y):
        h, _ = model.layers[0].apply(params["dense_0"], {}, x)
        dense_1 = params["dense_1"]
        logits = matmul_with_buggy_backward(h, dense_1["kernel"]) + dense_1["bias"]
        return jnp.mean(losses.sparse_categorical_crossentropy(logits, y))

    print("\n2) The same loss with a 1% bug in the backward pass of dense_1's kernel\n")
    try:
        gradcheck(buggy_loss, params, x, y, argnums=0)
    except GradcheckError as err:
        print(err)
        failing = [row.path for row in err.report.failures]
        print(f"\nleaves that failed: {failing}")
    else:
        raise SystemExit("gradcheck did not catch the bug")


if __name__ == "__main__":
    main()
