"""Data on the host: the bundled digits, toy data sets, an IDX reader, batching.

Everything here is plain numpy and runs on the host. Arrays come back as
``float32`` inputs and ``int32`` labels so they feed jaxdl models under JAX's
strict dtype promotion without casts. Every function that draws random numbers
takes an integer ``seed`` and gives the same result for the same arguments on
every run and machine.

Toy sets (``make_xor`` with ``n``, ``make_moons``, ``make_spirals``,
``make_gaussian_mixture``, ``make_gaussian_grid``) return their examples in a
seeded random order, so any prefix or suffix (e.g. a validation split) holds
every class; their class counts differ by at most one.

Example:
    >>> from jaxdl import data
    >>> (x_train, y_train), (x_test, y_test) = data.load_digits()
    >>> x_train.shape, x_train.dtype, y_train.dtype
    ((1438, 8, 8, 1), dtype('float32'), dtype('int32'))
    >>> for xb, yb in data.batches(x_train, y_train, batch_size=128, seed=0):
    ...     pass
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np

from jaxdl import _checks

__all__ = [
    "load_digits",
    "stratified_split",
    "make_xor",
    "make_moons",
    "make_spirals",
    "make_gaussian_mixture",
    "gaussian_mixture_centers",
    "make_gaussian_grid",
    "gaussian_grid_centers",
    "load_idx",
    "batches",
    "epoch_permutation",
    "num_batches",
    "process_shard",
]

ArrayOrTuple = Union[np.ndarray, Tuple[np.ndarray, ...]]


# --------------------------------------------------------------------------------------
# Validation helpers local to this module
# --------------------------------------------------------------------------------------

def _fraction(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as a float if it lies strictly between 0 and 1, else raise."""
    if not _checks.is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a number strictly between 0 and 1, "
                        f"got {value!r} of type {type(value).__name__}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{owner}: `{name}` must be strictly between 0 and 1, got {value}.")
    return float(value)


def _balanced_assignment(rng: np.random.Generator, n: int, groups: int) -> np.ndarray:
    """``n`` group indices in ``[0, groups)``, counts differing by at most one, shuffled."""
    return rng.permutation(np.arange(n) % groups).astype(np.int32)


# --------------------------------------------------------------------------------------
# The bundled digits
# --------------------------------------------------------------------------------------

def stratified_split(labels: Any, test_fraction: float = 0.2,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Split example indices into train and test, each class in the same proportion.

    For every class ``c`` (in increasing order) with ``n_c`` examples, the
    class's indices are shuffled with one ``np.random.default_rng(seed)`` and the
    first ``floor(test_fraction * n_c + 0.5)`` go to the test set. Each class's
    test count is thus within half an example of ``test_fraction * n_c``. The
    returned indices are sorted, so the split keeps the original order.

    Args:
        labels: integer class labels, shape ``(n,)``.
        test_fraction: fraction of each class that goes to the test set, in (0, 1).
        seed: non-negative integer seed.

    Returns:
        ``(train_indices, test_indices)``: sorted int64 arrays, disjoint, together
        ``arange(n)``.

    Example:
        >>> train_idx, test_idx = stratified_split(np.array([0, 0, 1, 1, 1, 1]), 0.5)
        >>> len(train_idx), len(test_idx)
        (3, 3)
    """
    owner = "stratified_split"
    test_fraction = _fraction(owner, "test_fraction", test_fraction)
    seed = _checks.non_negative_int(owner, "seed", seed)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{owner}: `labels` must be 1-D (one class label per example), "
                         f"got shape {labels.shape}.")
    if labels.shape[0] == 0:
        raise ValueError(f"{owner}: `labels` is empty; need at least one example.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{owner}: `labels` must be integer class labels, got dtype "
                        f"{labels.dtype}.")
    rng = np.random.default_rng(seed)
    test_parts = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = int(np.floor(test_fraction * members.size + 0.5))
        test_parts.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test_parts)).astype(np.int64)
    is_test = np.zeros(labels.shape[0], dtype=bool)
    is_test[test_idx] = True
    train_idx = np.flatnonzero(~is_test).astype(np.int64)
    return train_idx, test_idx


def load_digits(test_fraction: float = 0.2, seed: int = 0, *, flatten: bool = False):
    """The 8x8 handwritten digits bundled with scikit-learn, split into train and test.

    1797 grey-scale images of the digits 0-9 (about 180 per class), pixel
    values 0..16 scaled to ``[0, 1]`` by dividing by 16. The split is
    :func:`stratified_split` of the labels: every class is split in the same
    proportion, and the default split is the same on every run and machine.
    Both parts keep the original order of the data set (shuffle while batching).

    Args:
        test_fraction: fraction of each class held out for testing, in (0, 1).
        seed: non-negative integer seed of the split.
        flatten: return images as vectors of 64 pixels instead of ``(8, 8, 1)``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` where ``x`` is float32 of shape
        ``(n, 8, 8, 1)`` (channels-last), or ``(n, 64)`` with ``flatten=True``,
        and ``y`` is int32 of shape ``(n,)`` in ``0..9``. With the defaults,
        ``n`` is 1438 for train and 359 for test.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_digits()
        >>> x_train.shape, x_test.shape
        ((1438, 8, 8, 1), (359, 8, 8, 1))
    """
    owner = "load_digits"
    test_fraction = _fraction(owner, "test_fraction", test_fraction)
    seed = _checks.non_negative_int(owner, "seed", seed)
    from sklearn.datasets import load_digits as _sklearn_load_digits

    pixels, labels = _sklearn_load_digits(return_X_y=True)
    x = (np.asarray(pixels, np.float32) / np.float32(16.0))
    x = x.reshape(-1, 64) if flatten else x.reshape(-1, 8, 8, 1)
    y = np.asarray(labels).astype(np.int32)
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


# --------------------------------------------------------------------------------------
# Toy data sets
# --------------------------------------------------------------------------------------

_XOR_CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
_XOR_LABELS = np.array([0, 1, 1, 0], np.int32)


def make_xor(n: Optional[int] = None, noise: float = 0.0, seed: int = 0):
    """The XOR problem: label 1 when exactly one coordinate is 1.

    With ``n=None``, the four points of the truth table in order
    ``(0,0), (0,1), (1,0), (1,1)`` with labels ``[0, 1, 1, 0]``. With an integer
    ``n``, ``n`` points spread evenly over the four corners (counts differ by at
    most one) in a seeded random order. In both cases every coordinate gets
    independent gaussian noise of standard deviation ``noise`` (none by default).

    Args:
        n: number of points, or ``None`` for the four corners.
        noise: standard deviation of the gaussian noise, >= 0.
        seed: non-negative integer seed.

    Returns:
        ``(x, y)``: float32 of shape ``(n, 2)`` (``(4, 2)`` when ``n`` is None)
        and int32 labels of shape ``(n,)``.

    Example:
        >>> x, y = make_xor()
        >>> y.tolist()
        [0, 1, 1, 0]
        >>> x, y = make_xor(100, noise=0.1, seed=1)
        >>> x.shape
        (100, 2)
    """
    owner = "make_xor"
    noise = _checks.non_negative_float(owner, "noise", noise)
    seed = _checks.non_negative_int(owner, "seed", seed)
    rng = np.random.default_rng(seed)
    if n is None:
        corner = np.arange(4)
    else:
        n = _checks.positive_int(owner, "n", n)
        corner = _balanced_assignment(rng, n, 4)
    x = _XOR_CORNERS[corner].astype(np.float64)
    if noise > 0:
        x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), _XOR_LABELS[corner].copy()


def make_moons(n: int = 200, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles, a toy set that no line separates.

    The upper moon (label 0) is ``(cos t, sin t)`` and the lower moon (label 1)
    is ``(1 - cos t, 1/2 - sin t)``, for ``t`` evenly spaced over ``[0, pi]``;
    each coordinate then gets gaussian noise of standard deviation ``noise``.
    The first moon has ``ceil(n/2)`` points, the second ``floor(n/2)``; the
    points come back in a seeded random order.

    Args:
        n: total number of points, > 0.
        noise: standard deviation of the gaussian noise, >= 0.
        seed: non-negative integer seed.

    Returns:
        ``(x, y)``: float32 of shape ``(n, 2)`` and int32 labels in ``{0, 1}``
        of shape ``(n,)``.

    Example:
        >>> x, y = make_moons(200, noise=0.1, seed=0)
        >>> x.shape, int(y.sum())
        ((200, 2), 100)
    """
    owner = "make_moons"
    n = _checks.positive_int(owner, "n", n)
    noise = _checks.non_negative_float(owner, "noise", noise)
    seed = _checks.non_negative_int(owner, "seed", seed)
    rng = np.random.default_rng(seed)
    n_upper = n - n // 2
    n_lower = n // 2
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    x = np.concatenate([upper, lower], axis=0)
    y = np.concatenate([np.zeros(n_upper, np.int32), np.ones(n_lower, np.int32)])
    if noise > 0:
        x = x + noise * rng.standard_normal(x.shape)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def make_spirals(n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0):
    """Interleaved spiral arms, one per class (the CS231n toy set).

    Arm ``k`` holds points at radius ``r`` evenly spaced over ``[0, 1]`` and
    angle ``theta = 2*pi*k/classes + 4*r + noise * N(0, 1)``, placed at
    ``(r sin theta, r cos theta)``. As in CS231n, the noise perturbs the angle
    (in radians), not the coordinates, and each arm winds 4 radians; unlike the
    original, the arms start at equal angles for any number of classes. Arm
    sizes differ by at most one; the points come back in a seeded random order.

    Args:
        n: total number of points, >= ``classes``.
        classes: number of arms (classes), >= 1.
        noise: standard deviation of the angular noise in radians, >= 0.
        seed: non-negative integer seed.

    Returns:
        ``(x, y)``: float32 of shape ``(n, 2)`` inside the unit disk and int32
        labels in ``0..classes-1`` of shape ``(n,)``.

    Example:
        >>> x, y = make_spirals(300, classes=3, noise=0.2, seed=0)
        >>> np.bincount(y).tolist()
        [100, 100, 100]
    """
    owner = "make_spirals"
    n = _checks.positive_int(owner, "n", n)
    if not _checks.is_int(classes):
        raise TypeError(f"{owner}: `classes` must be an integer >= 1, got {classes!r} "
                        f"of type {type(classes).__name__}.")
    if classes < 1:
        raise ValueError(f"{owner}: `classes` must be an integer >= 1, got {classes}.")
    classes = int(classes)
    if n < classes:
        raise ValueError(f"{owner}: `n` must be at least `classes` so every arm has a point, "
                         f"got n={n} and classes={classes}.")
    noise = _checks.non_negative_float(owner, "noise", noise)
    seed = _checks.non_negative_int(owner, "seed", seed)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(classes):
        size = n // classes + (1 if k < n % classes else 0)
        r = np.linspace(0.0, 1.0, size)
        theta = 2.0 * np.pi * k / classes + 4.0 * r + noise * rng.standard_normal(size)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(size, k, np.int32))
    x = np.concatenate(xs, axis=0)
    y = np.concatenate(ys)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def gaussian_mixture_centers(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """Centers of ``modes`` points at equal angles on a circle, the first at angle 0.

    Center ``k`` is ``radius * (cos(2*pi*k/modes), sin(2*pi*k/modes))``.

    Args:
        modes: number of centers, >= 1.
        radius: radius of the circle, >= 0.

    Returns:
        float32 array of shape ``(modes, 2)``.

    Example:
        >>> gaussian_mixture_centers(4, 1.0).round(6).tolist()
        [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
    """
    owner = "gaussian_mixture_centers"
    modes = _checks.positive_int(owner, "modes", modes)
    radius = _checks.non_negative_float(owner, "radius", radius)
    angle = 2.0 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)).astype(np.float32)


def make_gaussian_mixture(n: int = 1000, modes: int = 8, radius: float = 2.0,
                          std: float = 0.02, seed: int = 0):
    """Points from ``modes`` gaussians on a circle: the GAN mode-coverage toy set.

    Points are spread evenly over the modes (counts differ by at most one, so
    every mode appears when ``n >= modes``), in a seeded random order; point
    ``i`` is ``centers[mode[i]] + std * N(0, I)`` with the centers of
    :func:`gaussian_mixture_centers`.

    Args:
        n: number of points, > 0.
        modes: number of gaussians, >= 1.
        radius: radius of the circle the centers lie on, >= 0.
        std: standard deviation of each gaussian (isotropic), >= 0.
        seed: non-negative integer seed.

    Returns:
        ``(x, mode)``: float32 points of shape ``(n, 2)`` and the int32 index
        of the gaussian each came from, shape ``(n,)``.

    Example:
        >>> x, mode = make_gaussian_mixture(1000, modes=8, seed=0)
        >>> x.shape, np.bincount(mode).tolist()[:3]
        ((1000, 2), [125, 125, 125])
    """
    owner = "make_gaussian_mixture"
    n = _checks.positive_int(owner, "n", n)
    modes = _checks.positive_int(owner, "modes", modes)
    radius = _checks.non_negative_float(owner, "radius", radius)
    std = _checks.non_negative_float(owner, "std", std)
    seed = _checks.non_negative_int(owner, "seed", seed)
    rng = np.random.default_rng(seed)
    mode = _balanced_assignment(rng, n, modes)
    centers = gaussian_mixture_centers(modes, radius).astype(np.float64)
    x = centers[mode] + std * rng.standard_normal((n, 2))
    return x.astype(np.float32), mode


def gaussian_grid_centers(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """Centers of a ``side`` x ``side`` square grid centred on the origin.

    Center ``side * i + j`` is ``spacing * (i - (side - 1) / 2, j - (side - 1) / 2)``:
    for ``side=5, spacing=2`` the coordinates run over -4, -2, 0, 2, 4 (the 25-mode
    grid of the VEEGAN and PacGAN papers).

    Args:
        side: points per row and column, >= 1.
        spacing: distance between neighbouring centers, >= 0.

    Returns:
        float32 array of shape ``(side * side, 2)``.

    Example:
        >>> gaussian_grid_centers(2, 2.0).tolist()
        [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
    """
    owner = "gaussian_grid_centers"
    side = _checks.positive_int(owner, "side", side)
    spacing = _checks.non_negative_float(owner, "spacing", spacing)
    coords = spacing * (np.arange(side) - (side - 1) / 2.0)
    grid = np.stack(np.meshgrid(coords, coords, indexing="ij"), axis=-1).reshape(-1, 2)
    return grid.astype(np.float32)


def make_gaussian_grid(n: int = 1000, side: int = 5, spacing: float = 2.0,
                       std: float = 0.02, seed: int = 0):
    """Points from ``side * side`` gaussians on a square grid: the 2-D GAN grid target.

    Points are spread evenly over the modes (counts differ by at most one), in
    a seeded random order; point ``i`` is ``centers[mode[i]] + std * N(0, I)``
    with the centers of :func:`gaussian_grid_centers`.

    Args:
        n: number of points, > 0.
        side: gaussians per row and column, >= 1.
        spacing: distance between neighbouring centers, >= 0.
        std: standard deviation of each gaussian (isotropic), >= 0.
        seed: non-negative integer seed.

    Returns:
        ``(x, mode)``: float32 points of shape ``(n, 2)`` and the int32 index
        of the gaussian each came from, shape ``(n,)``.

    Example:
        >>> x, mode = make_gaussian_grid(1000, side=5, seed=0)
        >>> x.shape, len(np.unique(mode)), float(np.abs(x).max()) < 4.2
        ((1000, 2), 25, True)
    """
    owner = "make_gaussian_grid"
    n = _checks.positive_int(owner, "n", n)
    std = _checks.non_negative_float(owner, "std", std)
    seed = _checks.non_negative_int(owner, "seed", seed)
    centers = gaussian_grid_centers(side, spacing).astype(np.float64)
    rng = np.random.default_rng(seed)
    mode = _balanced_assignment(rng, n, len(centers))
    x = centers[mode] + std * rng.standard_normal((n, 2))
    return x.astype(np.float32), mode


# --------------------------------------------------------------------------------------
# IDX files (the MNIST format)
# --------------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), gzip-compressed or not.

    The file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
    big-endian uint32 sizes, then the values in C order, big-endian. Dtype
    codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D``
    float32, ``0x0E`` float64. A file that starts with the gzip bytes ``1f 8b``
    is decompressed first, whatever its name. Only the numbers are read; no
    code is ever executed from the file.

    Args:
        path: the file to read.

    Returns:
        A writable numpy array in native byte order, of the file's shape and
        dtype: e.g. uint8 ``(60000, 28, 28)`` for MNIST training images and
        uint8 ``(60000,)`` for its labels.

    Raises:
        ValueError: naming the file, when it is not a valid IDX file: bad magic
            number, unknown dtype code, a truncated header or data, bytes after
            the data, or a corrupt gzip stream.

    Example:
        >>> images = load_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape, images.dtype                       # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        raw = f.read()
    where = f"load_idx: {name!r}"
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{where}: corrupt gzip data ({e}).") from None
    if len(raw) < 4:
        raise ValueError(f"{where}: truncated header: need a 4-byte magic number, the file "
                         f"has {len(raw)} bytes.")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{where}: bad magic number {raw[:4].hex(' ')}: an IDX file starts "
                         f"with two zero bytes. Is this an IDX file?")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{where}: unknown dtype code 0x{code:02X} in the magic number; "
                         f"expected one of {known}.")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{where}: truncated header: {ndim} dimensions need {header_size} "
                         f"header bytes, the data has {len(raw)}.")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual < expected:
        raise ValueError(f"{where}: truncated data: shape {shape} of {dtype.newbyteorder('=')} "
                         f"needs {expected} bytes after the header, found {actual}.")
    if actual > expected:
        raise ValueError(f"{where}: {actual - expected} unexpected trailing bytes after the "
                         f"data of shape {shape} ({expected} bytes).")
    values = np.frombuffer(raw, dtype, count=expected // dtype.itemsize, offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


# --------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------

def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffling order of epoch ``epoch``: a permutation of ``arange(n)``.

    It is ``np.random.default_rng([seed, epoch]).permutation(n)``: it depends
    only on ``(seed, epoch)``, not on how many epochs ran before, so a training
    run resumed at epoch ``e`` sees the same batches as an uninterrupted one.

    Args:
        n: number of examples, > 0.
        seed: non-negative integer seed.
        epoch: non-negative epoch index.

    Returns:
        int64 array of shape ``(n,)``.

    Example:
        >>> p = epoch_permutation(10, seed=0, epoch=3)
        >>> sorted(p.tolist()) == list(range(10))
        True
    """
    owner = "epoch_permutation"
    n = _checks.positive_int(owner, "n", n)
    seed = _checks.non_negative_int(owner, "seed", seed)
    epoch = _checks.non_negative_int(owner, "epoch", epoch)
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` examples.

    Args:
        n: number of examples, > 0.
        batch_size: examples per batch, > 0.
        drop_last: whether the last partial batch is dropped.

    Returns:
        ``n // batch_size`` with ``drop_last``, else ``ceil(n / batch_size)``.

    Example:
        >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
        (3, 2)
    """
    n = _checks.positive_int("num_batches", "n", n)
    batch_size = _checks.positive_int("num_batches", "batch_size", batch_size)
    return n // batch_size if drop_last else -(-n // batch_size)


def _as_arrays(owner: str, name: str, value: Any) -> Tuple[Tuple[np.ndarray, ...], bool]:
    """Normalize an array or a tuple of arrays to ``(arrays, was_tuple)``."""
    was_tuple = isinstance(value, tuple)
    parts = value if was_tuple else (value,)
    if was_tuple and not parts:
        raise ValueError(f"{owner}: `{name}` is an empty tuple; pass an array or a tuple of "
                         f"one or more arrays.")
    arrays = []
    for i, part in enumerate(parts):
        label = f"{name}[{i}]" if was_tuple else name
        if part is None:
            raise TypeError(f"{owner}: `{label}` is None; expected an array.")
        arr = np.asarray(part)
        if arr.ndim == 0:
            raise ValueError(f"{owner}: `{label}` must have a leading example axis, got a "
                             f"scalar of shape ().")
        arrays.append(arr)
    return tuple(arrays), was_tuple


def batches(x: Any, y: Any, batch_size: int, shuffle: bool = True, seed: int = 0,
            drop_last: bool = False, *, epoch: Optional[int] = None
            ) -> Iterator[Tuple[ArrayOrTuple, ArrayOrTuple]]:
    """Iterate once over ``(x, y)`` in batches of ``batch_size`` examples.

    ``x`` and ``y`` are each an array or a tuple of arrays (for models with
    several inputs or outputs); every array is indexed with the same example
    indices along its leading axis, and batches come back with the same
    structure. ``y`` may be ``None`` for unlabelled data (then ``y_batch`` is
    ``None``). Arguments are checked when ``batches`` is called, before the
    first batch is drawn.

    Order: with ``shuffle=False``, the data order. With ``shuffle=True``,
    ``np.random.default_rng(seed).permutation(n)``, or, when ``epoch`` is given,
    :func:`epoch_permutation` ``(n, seed, epoch)``, so the order of each epoch
    depends only on ``(seed, epoch)``. ``batches`` is a host-side iterator for
    hand-written loops; ``jaxdl.train`` does not call it (its epoch engine keeps
    the data on the device and draws the same :func:`epoch_permutation`).

    Args:
        x: array of shape ``(n, ...)`` or a tuple of such arrays.
        y: array of shape ``(n, ...)``, a tuple of such arrays, or ``None``.
        batch_size: examples per batch, a positive int.
        shuffle: whether to visit the examples in a seeded random order.
        seed: non-negative integer seed of the order.
        drop_last: drop the last batch when it has fewer than ``batch_size``
            examples; by default it is kept.
        epoch: optional non-negative epoch index; see "Order" above.

    Yields:
        ``(x_batch, y_batch)`` numpy arrays (or tuples of them) of leading size
        ``batch_size``, except possibly the last. Every example appears exactly
        once per call (once at most with ``drop_last``).

    Raises:
        ValueError: empty data, arrays of different lengths, ``batch_size <= 0``,
            or ``drop_last=True`` with fewer than ``batch_size`` examples (no batch).
        TypeError: a non-integer ``batch_size`` or ``seed``.

    Example:
        >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
    """
    owner = "batches"
    xs, x_tuple = _as_arrays(owner, "x", x)
    if y is None:
        ys, y_tuple = (), False
    else:
        ys, y_tuple = _as_arrays(owner, "y", y)
    batch_size = _checks.positive_int(owner, "batch_size", batch_size)
    seed = _checks.non_negative_int(owner, "seed", seed)
    if epoch is not None:
        epoch = _checks.non_negative_int(owner, "epoch", epoch)

    named = [(f"x[{i}]" if x_tuple else "x", a) for i, a in enumerate(xs)]
    named += [(f"y[{i}]" if y_tuple else "y", a) for i, a in enumerate(ys)]
    lengths = {label: a.shape[0] for label, a in named}
    n = lengths[named[0][0]]
    if any(length != n for length in lengths.values()):
        listed = ", ".join(f"{length} for {label}" for label, length in lengths.items())
        raise ValueError(f"{owner}: `x` and `y` must have the same number of examples "
                         f"(leading axis), got {listed}.")
    if n == 0:
        raise ValueError(f"{owner}: the data is empty (0 examples); need at least one.")
    if drop_last and n < batch_size:
        raise ValueError(f"{owner}: drop_last=True with batch_size={batch_size} and only {n} "
                         f"examples would yield no batch; lower batch_size or set "
                         f"drop_last=False.")

    if not shuffle:
        order = None
    elif epoch is None:
        order = np.random.default_rng(seed).permutation(n)
    else:
        order = epoch_permutation(n, seed, epoch)
    stop = n - n % batch_size if drop_last else n

    def take(arrays, as_tuple, start, end):
        if order is None:
            picked = tuple(a[start:end] for a in arrays)
        else:
            idx = order[start:end]
            picked = tuple(a[idx] for a in arrays)
        return picked if as_tuple else picked[0]

    def generate():
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            xb = take(xs, x_tuple, start, end)
            yb = take(ys, y_tuple, start, end) if y is not None else None
            yield xb, yb

    return generate()


# --------------------------------------------------------------------------------------
# Multi-process input
# --------------------------------------------------------------------------------------

def _process_layout(owner: str, process_index: Optional[int],
                    process_count: Optional[int]) -> Tuple[int, int]:
    """``(index, count)`` of this process: the given values, else JAX's."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    count = _checks.positive_int(owner, "process_count", process_count)
    index = _checks.non_negative_int(owner, "process_index", process_index)
    if index >= count:
        raise ValueError(f"{owner}: `process_index` must be below `process_count`={count}, "
                         f"got {index}.")
    return index, count


def process_shard(*arrays: Any, process_index: Optional[int] = None,
                  process_count: Optional[int] = None,
                  local_devices: Optional[int] = None) -> Any:
    """This process's contiguous share of the rows of every array, for multi-host ``fit``.

    With ``P`` processes (``jax.process_count()``) of ``L`` devices each, ``n``
    rows and ``k = n // P`` rounded down to a multiple of ``L``, process ``p``
    (``jax.process_index()``) gets rows ``[p*k, (p+1)*k)``: the last rows are
    dropped so that every share has the same length and splits evenly over its
    process's devices, as the trainer needs to assemble the global dataset from
    equal local parts. Every
    array is cut at the same rows, so ``x`` and ``y`` stay paired; the shares of
    all processes, in process order, are the first ``P*k`` rows of the data.
    With one process this is the identity (no row is dropped).

    Call it after ``jax.distributed.initialize()``, on the same full data in
    every process (or on data of the same length), and pass the result to
    ``Trainer.fit``.

    Args:
        *arrays: one or more arrays of shape ``(n, ...)`` (numpy, JAX or
            anything ``np.asarray`` accepts), or tuples of them (the inputs of a
            multi-input model); all with the same ``n``.
        process_index: this process's index; default ``jax.process_index()``.
        process_count: number of processes; default ``jax.process_count()``.
        local_devices: devices per process (``L``); default
            ``jax.local_device_count()`` when several processes share the work.

    Returns:
        For one argument its share; for several, a tuple of shares. Each share
        is a numpy view of shape ``(k, ...)``; a tuple argument gives a
        tuple of shares.

    Raises:
        ValueError: no array, arrays of different lengths, a scalar, fewer rows
            than processes, or a ``process_index`` not below ``process_count``.

    Example:
        >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        >>> process_shard(y).tolist()      # one process: everything
        [0, 1, 2, 3, 4]
        >>> xs, ys = process_shard(x, y, process_index=1, process_count=2)
        >>> xs.tolist(), ys.tolist()       # rows 2 and 3; row 4 is dropped
        ([[4.0, 5.0], [6.0, 7.0]], [2, 3])
    """
    owner = "process_shard"
    if not arrays:
        raise ValueError(f"{owner}: pass at least one array, e.g. process_shard(x, y).")
    parts = [_as_arrays(owner, f"arrays[{i}]", a) for i, a in enumerate(arrays)]
    index, count = _process_layout(owner, process_index, process_count)
    lengths = [(f"arrays[{i}]" + (f"[{j}]" if was_tuple else ""), a.shape[0])
               for i, (group, was_tuple) in enumerate(parts) for j, a in enumerate(group)]
    n = lengths[0][1]
    if any(length != n for _, length in lengths):
        listed = ", ".join(f"{length} for {label}" for label, length in lengths)
        raise ValueError(f"{owner}: every array must have the same number of rows (leading "
                         f"axis), got {listed}.")
    if n < count:
        raise ValueError(f"{owner}: {n} rows cannot be shared among {count} processes (each "
                         f"needs at least one); pass at least {count} rows.")
    k = n // count
    if count > 1:  # one process pads instead (jaxdl.train.sharding)
        if local_devices is None:
            import jax

            local_devices = jax.local_device_count()
        local_devices = _checks.positive_int(owner, "local_devices", local_devices)
        k -= k % local_devices
        if k == 0:
            raise ValueError(f"{owner}: {n} rows give each of {count} processes fewer rows "
                             f"than its {local_devices} devices; pass at least "
                             f"{count * local_devices} rows.")
    rows = slice(index * k, (index + 1) * k)
    shares = tuple(tuple(a[rows] for a in group) if was_tuple else group[0][rows]
                   for group, was_tuple in parts)
    return shares[0] if len(shares) == 1 else shares
