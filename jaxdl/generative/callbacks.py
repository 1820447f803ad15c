"""Pictures of samples: :func:`save_samples` and the :class:`SampleGrid` callback.

``save_samples`` draws a batch of samples to a PNG: images as one grid, 2-D
points as a scatter (over the real data if given). ``SampleGrid`` calls it
every few epochs with the trainer's ``sample(n, seed)`` (``GANTrainer``,
``AAETrainer``, or any engine trainer that has one). Its seed is fixed, so
each picture shows the same latents decoded by a later generator, and the
sequence of files shows training progress.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np

from jaxdl import _checks
from jaxdl.train.callbacks import Callback

__all__ = ["SampleGrid", "save_samples", "image_grid"]


def _as_images(owner: str, samples: np.ndarray) -> np.ndarray:
    """``(n, H, W, C)`` with C in (1, 3) from ``(n, H, W)`` or ``(n, H, W, C)``, else raise."""
    if samples.ndim == 3:
        samples = samples[..., None]
    if samples.ndim != 4 or samples.shape[-1] not in (1, 3):
        raise ValueError(
            f"{owner}: expected images of shape (n, height, width, channels) with 1 or 3 "
            f"channels, or 2-D points of shape (n, 2); got shape {samples.shape}. Reshape flat "
            f"images first, e.g. samples.reshape(-1, 8, 8, 1).")
    return samples


def _display_range(images: np.ndarray) -> tuple[float, float]:
    """``[0, 1]`` or ``[-1, 1]`` when the values fit (sigmoid or tanh outputs), else min..max."""
    low, high = float(np.min(images)), float(np.max(images))
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    if low >= -1.0 and high <= 1.0:
        return -1.0, 1.0
    return low, max(high, low + 1e-12)


def image_grid(images: Any, columns: Optional[int] = None, pad: int = 1,
               fill: float = 1.0) -> np.ndarray:
    """Tile ``(n, H, W, C)`` images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad, C)`` array.

    Values are scaled to ``[0, 1]`` by :func:`save_samples`' display rule; the
    padding and unused cells hold ``fill`` (``save_samples`` passes the value
    its colour map draws light grey for grey images, drawn ink-dark, and 1,
    white, for RGB). ``columns`` defaults to ``ceil(sqrt(n))``.

    Example:
        >>> image_grid(np.zeros((5, 2, 2, 1))).shape   # 3 columns, 2 rows, 1-pixel gaps
        (5, 8, 1)
    """
    images = _as_images("image_grid", np.asarray(images, np.float32))
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    low, high = _display_range(images)
    scaled = np.clip((images - low) / (high - low), 0.0, 1.0)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, c), fill, np.float32)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = scaled[i]
    return grid


def _points(owner: str, name: str, x: Any) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{owner}: `{name}` must be 2-D points of shape (n, 2) to scatter "
                         f"with the samples, got shape {x.shape}.")
    return x


def _scatter(ax: Any, points: np.ndarray, real: Optional[np.ndarray],
             labels: Optional[np.ndarray]) -> None:
    """Real points in grey underneath, then the samples (one colour per label if given)."""
    size = max(1.0, min(12.0, 3000.0 / len(points)))
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=size, c="0.6", alpha=0.5, label="real",
                   linewidths=0)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, c="tab:red", alpha=0.7,
                   label="samples", linewidths=0)
    else:
        for value in np.unique(labels):
            chosen = points[labels == value]
            ax.scatter(chosen[:, 0], chosen[:, 1], s=size, alpha=0.8, label=str(value),
                       color=f"C{int(value) % 10}" if _checks.is_int(value.item()) else None,
                       linewidths=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    if labels is not None:  # beside the plot: one entry per class would hide points
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  markerscale=max(1.0, 8.0 / size))
    elif real is not None:
        ax.legend(loc="best", fontsize=8, markerscale=max(1.0, 8.0 / size))


def save_samples(samples: Any, path: str | os.PathLike, real: Any = None,
                 title: Optional[str] = None, *, labels: Any = None,
                 columns: Optional[int] = None) -> str:
    """Draw ``samples`` to a PNG: a grid of images, or a scatter of 2-D points.

    - Images ``(n, H, W, C)`` (C = 1 grey or 3 RGB) or ``(n, H, W)``: one grid
      of ``ceil(sqrt(n))`` columns. All images share one grey scale: ``[0, 1]``
      when every value lies there (sigmoid outputs, ``load_digits``),
      ``[-1, 1]`` when they lie there (tanh), else the samples' min..max.
    - Points ``(n, 2)``: a scatter, over the ``real`` points ``(m, 2)`` in grey
      if given, coloured by ``labels`` ``(n,)`` if given (a code scatter by
      digit).

    Args:
        samples: numpy or JAX array, as above.
        path: the PNG to write; missing parent directories are created.
        real: real points ``(m, 2)`` drawn under 2-D samples (not for images).
        title: a title over the picture.
        labels: a class per 2-D sample, one colour each.
        columns: the image grid's number of columns.

    Returns:
        ``path`` as a string.
    """
    owner = "save_samples"
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 0 or len(samples) == 0:
        raise ValueError(f"{owner}: `samples` must hold at least one sample, got shape "
                         f"{samples.shape}.")
    scatter = samples.ndim == 2 and samples.shape[1] == 2
    if not scatter:
        samples = _as_images(owner, samples)
        if real is not None or labels is not None:
            raise ValueError(f"{owner}: `real` and `labels` go with 2-D points (n, 2); got "
                             f"images of shape {samples.shape}. Drop them for an image grid.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(samples),):
            raise ValueError(f"{owner}: `labels` must have shape ({len(samples)},), one per "
                             f"sample, got {labels.shape}.")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if scatter:
        fig, ax = plt.subplots(figsize=(5, 5))
        _scatter(ax, samples, None if real is None else _points(owner, "real", real), labels)
    else:
        grey = samples.shape[-1] == 1  # drawn ink-dark: 1 black, 0 white, the gaps light grey
        grid = image_grid(samples, columns, fill=0.2 if grey else 1.0)
        fig, ax = plt.subplots(figsize=(min(12.0, 0.5 + grid.shape[1] / 10),
                                        min(12.0, 0.5 + grid.shape[0] / 10)))
        ax.imshow(grid[..., 0] if grey else grid, cmap="gray_r" if grey else None,
                  vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.axis("off")
    if title:
        ax.set_title(title)
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


class SampleGrid(Callback):
    """Every ``every`` epochs, draw ``trainer.sample(n, seed)`` to a PNG.

    After epoch ``e`` (0-based) with ``(e + 1) % every == 0`` it writes
    ``<directory>/samples_epoch_<e + 1>.png`` (the epoch count, 1-based, as
    the progress line prints it) with :func:`save_samples`. The seed is the
    same each time, so the pictures show the same latents as the generator
    learns. The paths written are kept in :attr:`paths`.

    Args:
        directory: where the PNGs go (created if missing).
        every: epochs between pictures, a positive int.
        n: samples per picture.
        seed: the sampling seed (fixed: the same latents in every picture).
        real: real data drawn under 2-D samples (the ring's points), or None.

    Example:
        >>> cb = SampleGrid("/tmp/samples", every=5, n=64)
        >>> # trainer.fit(x, epochs=50, callbacks=[cb])  -> samples_epoch_5.png ... _50.png
    """

    def __init__(self, directory: str | os.PathLike, every: int = 5, n: int = 64,
                 seed: int = 0, real: Any = None):
        owner = "SampleGrid"
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"{owner}: `directory` must be a path (str or os.PathLike), got "
                            f"{directory!r} of type {type(directory).__name__}.")
        self.directory = os.fspath(directory)
        self.every = _checks.positive_int(owner, "every", every)
        self.n = _checks.positive_int(owner, "n", n)
        self.seed = _checks.non_negative_int(owner, "seed", seed)
        self.real = None if real is None else _points(owner, "real", real)
        self.paths: list[str] = []

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        sample = getattr(self.trainer, "sample", None)
        if not callable(sample):
            raise TypeError(f"SampleGrid: the trainer {type(self.trainer).__name__} has no "
                            f"sample(n, seed) method; use SampleGrid with a trainer that "
                            f"generates (generative.GANTrainer, generative.AAETrainer).")
        os.makedirs(self.directory, exist_ok=True)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if (epoch + 1) % self.every:
            return
        samples = np.asarray(self.trainer.sample(self.n, seed=self.seed))
        path = os.path.join(self.directory, f"samples_epoch_{epoch + 1}.png")
        real = self.real if samples.ndim == 2 and samples.shape[1] == 2 else None
        self.paths.append(save_samples(samples, path, real=real, title=f"epoch {epoch + 1}"))
