"""The course's image kernels applied to a real photo.

"Convolution: transforming an image by applying a kernel over each pixel and
its local neighbours across the entire image." This script applies the 3×3
kernels of the course notes (box blur, weighted Gaussian blur, sharpen,
intensified sharpen) and classic edge detectors (the course's vertical-edge
kernel ``[[1, 0, -1]] × 3``, its horizontal twin, Sobel and the Laplacian
outline) to the photo of a Chinese temple that scikit-learn ships, with
``jaxdl.kernels.conv2d``, and writes the results as one PNG grid.

* Colour kernels (blurs, sharpens) run on all three RGB channels at once as a
  *depthwise* convolution: ``groups=3``, one copy of the kernel per channel.
* Edge detectors run on the grey-level image and are shown as magnitudes.
* ``padding="same"`` keeps the image size; the border sees zero padding.
* The smoothing kernels are divided by their sum (9 and 8) so that the
  brightness is kept; the notes show them unnormalized.

Usage::

    python examples/image_kernels.py --out /tmp    # writes /tmp/image_kernels.png
"""

from __future__ import annotations

import argparse
import os
import time

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_sample_image  # noqa: E402

from jaxdl import kernels  # noqa: E402

# name -> (3x3 kernel, applied to "rgb" or "gray")
KERNELS = {
    "box blur (1/9)": (np.ones((3, 3)) / 9.0, "rgb"),
    "Gaussian blur (1/8)": (np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 8.0, "rgb"),
    "sharpen": (np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), "rgb"),
    "intensified sharpen": (np.array([[-1, -1, -1], [-1, 9, -1], [-1, -1, -1]]), "rgb"),
    "vertical edges [1 0 -1]": (np.array([[1, 0, -1]] * 3), "gray"),
    "horizontal edges": (np.array([[1, 0, -1]] * 3).T, "gray"),
    "Sobel magnitude": (None, "gray"),  # sqrt(Gx² + Gy²), computed below
    "outline (Laplacian)": (np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]), "gray"),
}

SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])


def load_photo() -> np.ndarray:
    """The scikit-learn sample photo as float32 RGB in [0, 1], shape (H, W, 3)."""
    return load_sample_image("china.jpg").astype(np.float32) / 255.0


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma: 0.299 R + 0.587 G + 0.114 B, shape (H, W, 1)."""
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def apply_rgb(rgb: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Depthwise conv: the same kernel on each channel (HWIO kernel (3, 3, 1, 3), groups=3)."""
    w = np.repeat(np.asarray(k, np.float32)[:, :, None, None], 3, axis=3)
    return np.asarray(kernels.conv2d(rgb[None], w, padding="same", groups=3)[0])


def apply_gray(gray: np.ndarray, k: np.ndarray) -> np.ndarray:
    w = np.asarray(k, np.float32)[:, :, None, None]
    return np.asarray(kernels.conv2d(gray[None], w, padding="same")[0, :, :, 0])


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="directory for image_kernels.png")
    parser.add_argument("--full", action="store_true",
                        help="use the whole photo (default: a 240x320 crop of the temple, "
                             "where a 3x3 kernel's effect is visible)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    rgb = load_photo()
    if not args.full:
        rgb = np.ascontiguousarray(rgb[60:300, 80:400])
    gray = to_gray(rgb)
    print(f"photo: china.jpg from scikit-learn, {rgb.shape[0]}x{rgb.shape[1]} RGB")

    results = {"original": (rgb, "rgb")}
    for name, (k, mode) in KERNELS.items():
        if name.startswith("Sobel"):
            gx, gy = apply_gray(gray, SOBEL_X), apply_gray(gray, SOBEL_X.T)
            out = np.sqrt(gx ** 2 + gy ** 2)
        elif mode == "rgb":
            out = apply_rgb(rgb, k)
        else:
            out = np.abs(apply_gray(gray, k))
        results[name] = (out, mode)
        print(f"  {name:<26} kernel sum {np.sum(k) if k is not None else 0:>5.2f}   "
              f"output range [{out.min():+.2f}, {out.max():+.2f}]")

    # The im2col route gives the same picture: a convolution is one matrix product.
    k = KERNELS["sharpen"][0].astype(np.float32)[:, :, None, None]
    diff = np.abs(np.asarray(kernels.conv2d_im2col(gray[None], k, padding="same"))
                  - np.asarray(kernels.conv2d(gray[None], k, padding="same"))).max()
    print(f"  conv2d_im2col vs conv2d (sharpen): max |difference| = {diff:.1e}")

    fig, axes = plt.subplots(3, 3, figsize=(13, 9.5))
    for ax, (name, (img, mode)) in zip(axes.ravel(), results.items(), strict=False):
        if mode == "rgb":
            ax.imshow(np.clip(img, 0.0, 1.0))
        else:
            # Edge magnitudes: clip at the 99th percentile so that faint edges show.
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=float(np.percentile(img, 99)))
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle("Course image kernels applied with jaxdl.kernels.conv2d (padding='same')")
    fig.tight_layout()
    path = os.path.join(args.out, "image_kernels.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return path


if __name__ == "__main__":
    main()
