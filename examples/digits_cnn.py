"""The demo's CNN on the 8×8 digits: summary, training, test accuracy and curves.

The network (``jaxdl.demo.digits_cnn``) is two conv/batch-norm/pool blocks and
a dense head, trained with Adam and a cosine-decayed learning rate. ``nn.summary``
shows how each layer changes the shape, with the conv parameter count
(k·k·C_in + 1)·C_out.

Run: ``python examples/digits_cnn.py [--epochs 20] [--out .]``
"""

import argparse

from jaxdl import demo


def main(epochs=20, seed=0, out=".", verbose=1):
    return demo.run(epochs=epochs, seed=seed, out=out, verbose=verbose)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".")
    a = p.parse_args()
    main(a.epochs, a.seed, a.out)
