"""A 2-D-code autoencoder on the 8×8 digits: reconstructions and the code plane.

``generative.Autoencoder(encoder, decoder)`` squeezes each 64-pixel digit
through two numbers and back, trained with ``train.Trainer(ae, "mse",
adam).fit(x, x)``. PCA with two components is the best *linear* 2-D code, so
it is the yardstick: a non-linear encoder should reconstruct better and
separate the digits better in its plane. Figures (test set, 359 digits):

- reconstruction MSE per pixel (pixels in [0, 1]);
- 5-nearest-neighbour accuracy of the 2-D test codes, neighbours taken among
  the training codes: how much of the digit identity two numbers keep;
- the silhouette score of the test codes grouped by digit (-1..1).

Pictures: ``autoencoder_reconstructions.png`` (test digits on top, their
reconstructions below), ``autoencoder_codes.png`` (test codes coloured by
digit), ``autoencoder_manifold.png`` (digits decoded from a grid over the
code plane).

Measured (seed 0, 200 epochs, batch 64, Adam 2e-3; under a minute on 2 CPU cores):

    ======================  ===========  ===========
    2-D code                autoencoder  PCA
    ======================  ===========  ===========
    test MSE                0.0304       0.0531
    5-NN accuracy           0.864        0.607
    silhouette by digit     0.157        0.082
    ======================  ===========  ===========

(The mean training image, a code of zero numbers, scores a test MSE of
0.0735.) Two learned numbers keep 86 % of the digit identity that a 5-NN
classifier can read, against 61 % for the best linear pair; the code plot
shows 0, 1, 2, 3, 4 and 6 in regions of their own while 5, 7, 8 and 9 crowd
the centre.

Run: ``python examples/autoencoder_digits.py [--epochs 200] [--seed 0] [--out .]``
"""

import argparse
import os

import numpy as np

from jaxdl import data, nn, optim, train
from jaxdl.generative import Autoencoder, save_samples


def make_autoencoder(code: int = 2) -> Autoencoder:
    """64 -> 128 -> 64 -> ``code`` and back; sigmoid output for pixels in [0, 1]."""
    encoder = nn.Sequential([nn.Flatten(), nn.Dense(128, activation="relu"),
                             nn.Dense(64, activation="relu"), nn.Dense(code)])
    decoder = nn.Sequential([nn.Dense(64, activation="relu"), nn.Dense(128, activation="relu"),
                             nn.Dense(64, activation="sigmoid"), nn.Reshape((8, 8, 1))])
    return Autoencoder(encoder, decoder)


def pca_codes(x_train, x_test, k=2):
    """Codes and reconstructions of the best rank-``k`` linear map (PCA, by SVD)."""
    flat, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    mean = flat.mean(0)
    basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:k]
    codes, codes_test = (flat - mean) @ basis.T, (flat_test - mean) @ basis.T
    return codes, codes_test, (codes_test @ basis + mean).reshape(x_test.shape)


def code_scores(codes, y, codes_test, y_test):
    """5-NN accuracy of the test codes (neighbours among the training codes), silhouette."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(5).fit(codes, y)
    return float(knn.score(codes_test, y_test)), float(silhouette_score(codes_test, y_test))


def draw(x_test, y_test, codes_test, decode, out):
    """The three PNGs; their paths. ``decode`` maps codes to images (one call, one compile)."""
    first = np.concatenate([np.flatnonzero(y_test == d)[:1] for d in range(10)])
    low, high = np.percentile(codes_test, [2, 98], axis=0)
    u, v = np.meshgrid(np.linspace(low[0], high[0], 15), np.linspace(high[1], low[1], 15))
    images = decode(np.concatenate([codes_test[first], np.stack([u.ravel(), v.ravel()], 1)]))
    return [save_samples(np.concatenate([x_test[first], images[:10]]),
                         os.path.join(out, "autoencoder_reconstructions.png"), columns=10,
                         title="test digits (top) and their reconstructions from 2 numbers"),
            save_samples(codes_test, os.path.join(out, "autoencoder_codes.png"), labels=y_test,
                         title="2-D codes of the test digits"),
            save_samples(images[10:], os.path.join(out, "autoencoder_manifold.png"), columns=15,
                         title="decoded from a grid over the code plane")]


def main(epochs=200, seed=0, out=".", verbose=0, batch_size=64):
    """Train, measure against PCA, draw; returns the figures and the PNG paths."""
    (x, y), (x_test, y_test) = data.load_digits()
    ae = make_autoencoder()
    trainer = train.Trainer(ae, "mse", optim.adam(2e-3))
    trainer.fit(x, x, epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose)
    params, state = trainer.state.params, trainer.state.model_state
    codes = np.asarray(ae.encode(params, state, np.concatenate([x, x_test])))
    codes, codes_test = codes[:len(x)], codes[len(x):]

    def decode(z):
        return np.asarray(ae.decode(params, state, z.astype(np.float32)))

    x_hat = decode(codes_test)
    pca_train, pca_test, pca_hat = pca_codes(x, x_test)
    results = {"test_mse": float(np.mean((x_hat - x_test) ** 2)),
               "pca_test_mse": float(np.mean((pca_hat - x_test) ** 2)),
               "mean_image_mse": float(np.mean((x.mean(0) - x_test) ** 2))}
    results["knn_accuracy"], results["silhouette"] = code_scores(codes, y, codes_test, y_test)
    results["pca_knn_accuracy"], results["pca_silhouette"] = code_scores(pca_train, y, pca_test,
                                                                         y_test)
    os.makedirs(out, exist_ok=True)
    results["paths"] = draw(x_test, y_test, codes_test, decode, out)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    r = main(args.epochs, args.seed, args.out, verbose=1)
    print(f"{'2-D code':<22}{'autoencoder':>12}{'PCA':>9}")
    print(f"{'test MSE':<22}{r['test_mse']:>12.4f}{r['pca_test_mse']:>9.4f}"
          f"   (mean image: {r['mean_image_mse']:.4f})")
    print(f"{'5-NN accuracy':<22}{r['knn_accuracy']:>12.3f}{r['pca_knn_accuracy']:>9.3f}")
    print(f"{'silhouette by digit':<22}{r['silhouette']:>12.3f}{r['pca_silhouette']:>9.3f}")
    print("wrote", ", ".join(r["paths"]))
