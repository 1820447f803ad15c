"""Tests for jaxdl.data: digits, toy sets, the IDX reader and batching.

References are independent of the code under test: scikit-learn's raw digits,
the toy-set formulas recomputed here, IDX files written byte by byte with
``struct``, and a linear program (scipy) for linear separability.
"""

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest

from jaxdl import data

N_DIGITS = 1797


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


# --------------------------------------------------------------------------------------
# load_digits
# --------------------------------------------------------------------------------------

def test_digits_shapes_dtypes_range(digits):
    (x_train, y_train), (x_test, y_test) = digits
    assert x_train.shape[1:] == (8, 8, 1) and x_test.shape[1:] == (8, 8, 1)
    assert x_train.shape[0] == y_train.shape[0] and x_test.shape[0] == y_test.shape[0]
    assert x_train.shape[0] + x_test.shape[0] == N_DIGITS
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int32 and y_test.dtype == np.int32
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0  # 0/16 and 16/16 both occur
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_digits_equal_raw_sklearn_data(raw_digits, digits):
    x_raw, y_raw = raw_digits
    train_idx, test_idx = data.stratified_split(y_raw, 0.2, 0)
    (x_train, y_train), (x_test, y_test) = digits
    np.testing.assert_array_equal(x_train.reshape(-1, 64), (x_raw[train_idx] / 16.0)
                                  .astype(np.float32))
    np.testing.assert_array_equal(x_test.reshape(-1, 64), (x_raw[test_idx] / 16.0)
                                  .astype(np.float32))
    np.testing.assert_array_equal(y_train, y_raw[train_idx])
    np.testing.assert_array_equal(y_test, y_raw[test_idx])


def test_digits_flatten(digits):
    (xf_train, yf_train), (xf_test, _) = data.load_digits(flatten=True)
    (x_train, y_train), (x_test, _) = digits
    assert xf_train.shape == (x_train.shape[0], 64) and xf_train.dtype == np.float32
    np.testing.assert_array_equal(xf_train, x_train.reshape(-1, 64))
    np.testing.assert_array_equal(xf_test, x_test.reshape(-1, 64))
    np.testing.assert_array_equal(yf_train, y_train)


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.33])
def test_digits_split_is_stratified(raw_digits, fraction):
    (_, y_train), (_, y_test) = data.load_digits(test_fraction=fraction)
    per_class = np.bincount(raw_digits[1], minlength=10)
    test_counts = np.bincount(y_test, minlength=10)
    train_counts = np.bincount(y_train, minlength=10)
    np.testing.assert_array_equal(train_counts + test_counts, per_class)
    # each class's test share is the requested fraction, within one example
    assert np.all(np.abs(test_counts - fraction * per_class) <= 1.0), test_counts
    assert np.all(np.abs(train_counts - (1 - fraction) * per_class) <= 1.0), train_counts


def test_digits_split_disjoint_and_complete(raw_digits):
    train_idx, test_idx = data.stratified_split(raw_digits[1], 0.2, 0)
    assert np.intersect1d(train_idx, test_idx).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, test_idx])),
                                  np.arange(N_DIGITS))


def test_digits_deterministic_and_seeded(digits):
    (x_train, y_train), (x_test, y_test) = digits
    (x2_train, y2_train), (x2_test, y2_test) = data.load_digits()
    np.testing.assert_array_equal(x_train, x2_train)
    np.testing.assert_array_equal(y_test, y2_test)
    (x3_train, _), _ = data.load_digits(seed=1)
    assert x3_train.shape == x_train.shape and not np.array_equal(x3_train, x_train)


def test_digits_default_split_is_pinned(raw_digits):
    # Stability pin, recorded once from this implementation: the default split
    # must not change between runs, machines or releases, or reported test
    # accuracies stop being comparable. A change here is a breaking change.
    _, test_idx = data.stratified_split(raw_digits[1])
    assert test_idx.size == 359
    assert test_idx[:10].tolist() == [5, 9, 12, 14, 16, 17, 19, 23, 24, 34]
    digest = hashlib.sha256(test_idx.astype("<i8").tobytes()).hexdigest()
    assert digest == "f71c9ddf317ebe278f01acb013a7eed702a00236a3733c9eefc19ea0e7aefeee"


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(test_fraction=0.0), ValueError, ["test_fraction", "0.0"]),
    (dict(test_fraction=1.0), ValueError, ["test_fraction", "1.0"]),
    (dict(test_fraction=-0.5), ValueError, ["test_fraction", "-0.5"]),
    (dict(test_fraction="0.2"), TypeError, ["test_fraction", "str"]),
    (dict(seed=-1), ValueError, ["seed", "-1"]),
    (dict(seed=1.5), TypeError, ["seed", "float"]),
])
def test_digits_validation(kwargs, error, words):
    with pytest.raises(error) as e:
        data.load_digits(**kwargs)
    for w in words + ["load_digits"]:
        assert w in str(e.value)


def test_stratified_split_small_example():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    train_idx, test_idx = data.stratified_split(labels, 0.5, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[test_idx]), [2, 1, 3])
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(test_idx) > 0)
    with pytest.raises(ValueError, match="labels"):
        data.stratified_split(np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="empty"):
        data.stratified_split(np.zeros(0, np.int32))
    with pytest.raises(TypeError, match="integer"):
        data.stratified_split(np.zeros(3, np.float32))


# --------------------------------------------------------------------------------------
# Toy sets: the common contract
# --------------------------------------------------------------------------------------

TOY_SETS = {
    "xor": (lambda seed: data.make_xor(101, noise=0.1, seed=seed), 2),
    "moons": (lambda seed: data.make_moons(201, noise=0.1, seed=seed), 2),
    "spirals": (lambda seed: data.make_spirals(301, classes=3, noise=0.2, seed=seed), 3),
    "spirals5": (lambda seed: data.make_spirals(103, classes=5, noise=0.2, seed=seed), 5),
    "mixture": (lambda seed: data.make_gaussian_mixture(1001, modes=8, seed=seed), 8),
}


@pytest.mark.parametrize("name", sorted(TOY_SETS))
def test_toy_set_contract(name):
    make, classes = TOY_SETS[name]
    x, y = make(0)
    n = y.shape[0]
    assert x.shape == (n, 2) and x.dtype == np.float32 and y.dtype == np.int32
    assert np.all(np.isfinite(x))
    counts = np.bincount(y, minlength=classes)
    assert counts.size == classes and counts.max() - counts.min() <= 1, counts
    # deterministic per seed, different across seeds
    x_again, y_again = make(0)
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(y, y_again)
    x_other, _ = make(1)
    assert not np.array_equal(x, x_other)
    # returned in a shuffled order: not grouped by class, the first half holds every class
    assert np.any(np.diff(y) < 0) and np.any(np.diff(y) > 0)
    assert set(np.unique(y[: n // 2]).tolist()) == set(range(classes))


# --------------------------------------------------------------------------------------
# make_xor
# --------------------------------------------------------------------------------------

def test_xor_truth_table():
    x, y = data.make_xor()
    np.testing.assert_array_equal(x, np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32))
    np.testing.assert_array_equal(y, np.array([0, 1, 1, 0], np.int32))
    assert x.dtype == np.float32 and y.dtype == np.int32


def test_xor_sampled_points():
    x, y = data.make_xor(40, noise=0.0, seed=2)
    # without noise every point is a corner and the label is the XOR of its coordinates
    assert set(map(tuple, x.tolist())) == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    np.testing.assert_array_equal(y, np.logical_xor(x[:, 0], x[:, 1]).astype(np.int32))
    xn, yn = data.make_xor(400, noise=0.1, seed=2)
    corners = np.round(np.clip(xn, 0, 1))
    agree = np.mean(np.logical_xor(corners[:, 0], corners[:, 1]) == yn)
    assert agree > 0.99  # at 5 std, hardly any point crosses to another quadrant
    assert 0.05 < np.std(xn - corners) < 0.15
    xj, _ = data.make_xor(noise=0.1, seed=0)
    assert not np.array_equal(xj, x[:4]) and np.max(np.abs(xj - data.make_xor()[0])) < 1.0


# --------------------------------------------------------------------------------------
# make_moons
# --------------------------------------------------------------------------------------

def _linearly_separable(x, y):
    """Is there (w, b) with w.x + b >= 1 on class 0 and <= -1 on class 1? (an LP)"""
    from scipy.optimize import linprog

    sign = np.where(y == 0, 1.0, -1.0)
    # -sign * (w.x + b) <= -1
    a_ub = -sign[:, None] * np.concatenate([x.astype(np.float64), np.ones((len(x), 1))], 1)
    res = linprog(np.zeros(3), A_ub=a_ub, b_ub=-np.ones(len(x)), bounds=[(None, None)] * 3,
                  method="highs")
    assert res.status in (0, 2), res.message  # 0: feasible, 2: infeasible
    return res.status == 0


def _one_nn_leave_one_out_accuracy(x, y):
    x = x.astype(np.float64)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float(np.mean(y[np.argmin(d, axis=1)] == y))


def test_moons_formula_without_noise():
    x, y = data.make_moons(100, noise=0.0)
    upper, lower = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert upper[:, 1].min() >= -1e-7 and lower[:, 1].max() <= 0.5 + 1e-7
    assert np.sum(y == 0) == 50 and np.sum(y == 1) == 50


def test_moons_not_linearly_separable_but_nearest_neighbour_separable():
    for noise in (0.0, 0.1):
        x, y = data.make_moons(200, noise=noise, seed=0)
        assert not _linearly_separable(x, y)
    x, y = data.make_moons(200, noise=0.1, seed=0)
    assert _one_nn_leave_one_out_accuracy(x, y) > 0.95
    # the LP can say "separable": pull the moons apart and it does
    apart = x + np.where(y[:, None] == 0, [0.0, 3.0], [0.0, -3.0]).astype(np.float32)
    assert _linearly_separable(apart, y)


# --------------------------------------------------------------------------------------
# make_spirals
# --------------------------------------------------------------------------------------

def test_spirals_geometry():
    x, y = data.make_spirals(300, classes=3, noise=0.0, seed=0)
    r = np.hypot(x[:, 0], x[:, 1]).astype(np.float64)
    assert r.max() <= 1.0 + 1e-6 and r.min() >= 0.0
    # without noise each arm follows theta = 2 pi k / K + 4 r, at (r sin, r cos)
    for k in range(3):
        rk = r[y == k]
        theta = 2 * np.pi * k / 3 + 4 * rk
        expected = np.stack([rk * np.sin(theta), rk * np.cos(theta)], 1)
        np.testing.assert_allclose(x[y == k], expected, atol=1e-6)
    # noise moves points along circles only: radii stay in [0, 1]
    xn, _ = data.make_spirals(300, classes=3, noise=0.5, seed=0)
    assert np.hypot(xn[:, 0], xn[:, 1]).max() <= 1.0 + 1e-6
    assert _one_nn_leave_one_out_accuracy(*data.make_spirals(300, 3, 0.2, 0)) > 0.9


def test_spirals_one_class():
    x, y = data.make_spirals(10, classes=1, noise=0.0)
    assert x.shape == (10, 2) and np.all(y == 0)


# --------------------------------------------------------------------------------------
# make_gaussian_mixture
# --------------------------------------------------------------------------------------

def test_gaussian_mixture_centers():
    c = data.gaussian_mixture_centers(8, 2.0)
    assert c.shape == (8, 2) and c.dtype == np.float32
    np.testing.assert_allclose(np.hypot(c[:, 0], c[:, 1]), 2.0, rtol=1e-6)
    np.testing.assert_allclose(c[0], [2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(c[2], [0.0, 2.0], atol=1e-6)
    angles = np.mod(np.arctan2(c[:, 1], c[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, atol=1e-6)


@pytest.mark.parametrize("modes, radius, std", [(8, 2.0, 0.02), (5, 1.0, 0.1), (25, 3.0, 0.01)])
def test_gaussian_mixture_points_near_centers(modes, radius, std):
    x, mode = data.make_gaussian_mixture(1000, modes=modes, radius=radius, std=std, seed=0)
    assert x.shape == (1000, 2) and x.dtype == np.float32 and mode.dtype == np.int32
    assert set(np.unique(mode)) == set(range(modes))  # every mode appears
    centers = data.gaussian_mixture_centers(modes, radius)
    offset = (x - centers[mode]).astype(np.float64)
    dist = np.hypot(offset[:, 0], offset[:, 1])
    assert dist.max() < 6 * std
    np.testing.assert_allclose(offset.std(axis=0), std, rtol=0.15)
    np.testing.assert_allclose(offset.mean(axis=0), 0.0, atol=4 * std / np.sqrt(1000 / modes))
    # the nearest center is the labelled one
    nearest = np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, mode)


# --------------------------------------------------------------------------------------
# Toy-set validation
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda: data.make_xor(0), ValueError, ["make_xor", "n", "0"]),
    (lambda: data.make_xor(-4), ValueError, ["make_xor", "n", "-4"]),
    (lambda: data.make_xor(4.0), TypeError, ["make_xor", "n", "float"]),
    (lambda: data.make_xor(noise=-0.1), ValueError, ["make_xor", "noise", "-0.1"]),
    (lambda: data.make_moons(0), ValueError, ["make_moons", "n", "0"]),
    (lambda: data.make_moons(10, noise=-1.0), ValueError, ["make_moons", "noise", "-1.0"]),
    (lambda: data.make_moons(10, seed=-3), ValueError, ["make_moons", "seed", "-3"]),
    (lambda: data.make_spirals(0), ValueError, ["make_spirals", "n", "0"]),
    (lambda: data.make_spirals(10, classes=0), ValueError, ["make_spirals", "classes", "0"]),
    (lambda: data.make_spirals(10, classes=2.0), TypeError, ["make_spirals", "classes"]),
    (lambda: data.make_spirals(2, classes=3), ValueError, ["make_spirals", "n=2", "classes=3"]),
    (lambda: data.make_spirals(10, noise=-0.2), ValueError, ["make_spirals", "noise", "-0.2"]),
    (lambda: data.make_gaussian_mixture(0), ValueError, ["make_gaussian_mixture", "n", "0"]),
    (lambda: data.make_gaussian_mixture(10, modes=0), ValueError, ["modes", "0"]),
    (lambda: data.make_gaussian_mixture(10, std=-0.1), ValueError, ["std", "-0.1"]),
    (lambda: data.make_gaussian_mixture(10, radius=-1.0), ValueError, ["radius", "-1.0"]),
    (lambda: data.gaussian_mixture_centers(0, 1.0), ValueError, ["modes", "0"]),
])
def test_toy_set_validation(call, error, words):
    with pytest.raises(error) as e:
        call()
    for w in words:
        assert w in str(e.value), str(e.value)


# --------------------------------------------------------------------------------------
# load_idx, against files written here byte by byte
# --------------------------------------------------------------------------------------

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}


def _idx_bytes(array, code=None):
    array = np.asarray(array)
    code = IDX_CODES[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d)
                                                         for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def test_idx_mnist_like_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    img_path = _write(tmp_path, "train-images-idx3-ubyte", _idx_bytes(images))
    lbl_path = _write(tmp_path, "train-labels-idx1-ubyte", _idx_bytes(labels))
    got_images, got_labels = data.load_idx(img_path), data.load_idx(str(lbl_path))
    assert got_images.shape == (7, 28, 28) and got_images.dtype == np.uint8
    assert got_labels.shape == (7,) and got_labels.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    # the header really is the MNIST one: 0x00000803 then big-endian 7, 28, 28
    assert img_path.read_bytes()[:16] == bytes.fromhex("00000803 00000007 0000001c 0000001c")


@pytest.mark.parametrize("dtype", sorted(IDX_CODES, key=lambda t: IDX_CODES[t]))
def test_idx_round_trips_every_dtype(tmp_path, dtype):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.floating):
        array = rng.standard_normal((3, 4, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, (3, 4, 5), endpoint=True).astype(dtype)
    got = data.load_idx(_write(tmp_path, "a.idx", _idx_bytes(array)))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.shape == array.shape and got.flags.writeable
    np.testing.assert_array_equal(got, array)


def test_idx_gzip_detected_by_magic_bytes_not_name(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    payload = _idx_bytes(array)
    compressed = _write(tmp_path, "no-suffix", gzip.compress(payload))
    assert compressed.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(data.load_idx(compressed), array)
    plain_named_gz = _write(tmp_path, "plain.gz", payload)
    np.testing.assert_array_equal(data.load_idx(plain_named_gz), array)


def test_idx_zero_length_axis(tmp_path):
    got = data.load_idx(_write(tmp_path, "empty.idx", _idx_bytes(np.zeros((0, 5), np.int16))))
    assert got.shape == (0, 5) and got.dtype == np.int16


def _corruptions():
    good = _idx_bytes(np.arange(12, dtype=np.int32).reshape(3, 4))
    return {
        "bad magic": (b"\x01" + good[1:], "magic"),
        "bad magic 2nd byte": (good[:1] + b"\x08" + good[2:], "magic"),
        "unknown dtype": (good[:2] + b"\x0a" + good[3:], "dtype code 0x0A"),
        "truncated data": (good[:-3], "truncated data"),
        "truncated header": (good[:9], "truncated header"),
        "only 3 bytes": (good[:3], "truncated header"),
        "empty file": (b"", "truncated header"),
        "trailing garbage": (good + b"\x00\x01", "trailing"),
        "corrupt gzip": (gzip.compress(good)[:-10], "gzip"),
        "garbage gzip": (b"\x1f\x8b" + b"\xff" * 30, "gzip"),
        "gzip of truncated": (gzip.compress(good[:-4]), "truncated data"),
    }


@pytest.mark.parametrize("case", sorted(_corruptions()))
def test_idx_corrupt_input_raises(tmp_path, case):
    payload, words = _corruptions()[case]
    path = _write(tmp_path, "broken-file.idx", payload)
    with pytest.raises(ValueError) as e:
        data.load_idx(path)
    assert "broken-file.idx" in str(e.value)
    assert words in str(e.value), str(e.value)


def test_idx_never_unpickles(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_idx must not unpickle or np.load")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    array = np.arange(6, dtype=np.uint8)
    np.testing.assert_array_equal(
        data.load_idx(_write(tmp_path, "x.gz", gzip.compress(_idx_bytes(array)))), array)
    with pytest.raises(ValueError):
        data.load_idx(_write(tmp_path, "p.pkl", pickle.dumps(array)))


# --------------------------------------------------------------------------------------
# batches and epoch_permutation
# --------------------------------------------------------------------------------------

def _toy(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int32)
    return x, y


def test_batches_cover_every_example_once_and_keep_last():
    x, y = _toy(10)
    out = list(data.batches(x, y, batch_size=4, seed=5))
    assert [len(yb) for _, yb in out] == [4, 4, 2]
    seen = np.concatenate([yb for _, yb in out])
    np.testing.assert_array_equal(np.sort(seen), np.arange(10))
    for xb, yb in out:  # rows stay with their labels
        np.testing.assert_array_equal(xb, x[yb])
        assert xb.dtype == np.float32 and yb.dtype == np.int32
    np.testing.assert_array_equal(seen, np.random.default_rng(5).permutation(10))
    assert len(out) == data.num_batches(10, 4)


def test_batches_unshuffled_and_drop_last():
    x, y = _toy(10)
    out = list(data.batches(x, y, 4, shuffle=False))
    assert [yb.tolist() for _, yb in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = list(data.batches(x, y, 4, shuffle=True, seed=1, drop_last=True))
    assert [len(yb) for _, yb in dropped] == [4, 4] == [4] * data.num_batches(10, 4, True)
    assert len(np.unique(np.concatenate([yb for _, yb in dropped]))) == 8
    exact = list(data.batches(x, y, 5, drop_last=True))
    assert len(exact) == 2
    assert len(list(data.batches(x, y, 32))) == 1  # one partial batch is kept


def test_batches_same_order_for_same_seed_and_epoch():
    x, y = _toy(50)

    def order(**kw):
        return np.concatenate([yb for _, yb in data.batches(x, y, 8, **kw)])

    np.testing.assert_array_equal(order(seed=3, epoch=2), order(seed=3, epoch=2))
    np.testing.assert_array_equal(order(seed=3, epoch=2), data.epoch_permutation(50, 3, 2))
    np.testing.assert_array_equal(data.epoch_permutation(50, 3, 2),
                                  np.random.default_rng([3, 2]).permutation(50))
    assert not np.array_equal(order(seed=3, epoch=2), order(seed=3, epoch=3))
    assert not np.array_equal(order(seed=3, epoch=2), order(seed=4, epoch=2))
    np.testing.assert_array_equal(order(seed=3), order(seed=3))
    assert not np.array_equal(order(seed=3), order(seed=4))
    # the order of an epoch does not depend on which epochs were drawn before
    first = [data.epoch_permutation(50, 7, e) for e in range(4)]
    np.testing.assert_array_equal(data.epoch_permutation(50, 7, 3), first[3])
    assert len({p.tobytes() for p in first}) == 4


def test_batches_tuple_inputs_are_aligned():
    n = 23
    a = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    b = np.arange(n, dtype=np.int32) * 10
    c = np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2)
    y1 = np.arange(n, dtype=np.int32)
    y2 = -np.arange(n, dtype=np.float32)
    total = 0
    for (xa, xb, xc), (ya, yb) in data.batches((a, b, c), (y1, y2), 5, seed=9):
        idx = ya
        np.testing.assert_array_equal(xa[:, 0], idx.astype(np.float32))
        np.testing.assert_array_equal(xb, idx * 10)
        np.testing.assert_array_equal(xc, c[idx])
        np.testing.assert_array_equal(yb, -idx.astype(np.float32))
        total += len(idx)
    assert total == n
    # tuple x with a plain y, and unlabelled data
    for (_, xb), yb in data.batches((a, b), y1, 5, shuffle=False):
        np.testing.assert_array_equal(xb, yb * 10)
    for xa, yb in data.batches(a, None, 5):
        assert yb is None and xa.shape[1:] == (4,)


def test_batches_accepts_jax_arrays():
    import jax.numpy as jnp

    x, y = _toy(6)
    out = list(data.batches(jnp.asarray(x), jnp.asarray(y), 4, shuffle=False))
    assert isinstance(out[0][0], np.ndarray)
    np.testing.assert_array_equal(out[1][0], x[4:])


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((np.zeros((10, 2)), np.zeros(9), 4), {}, ValueError, ["same number", "10", "9"]),
    (((np.zeros((10, 2)), np.zeros((8, 2))), np.zeros(10), 4), {}, ValueError,
     ["x[1]", "8", "10"]),
    ((np.zeros((10, 2)), (np.zeros(10), np.zeros(7)), 4), {}, ValueError, ["y[1]", "7"]),
    ((np.zeros((0, 2)), np.zeros(0), 4), {}, ValueError, ["empty"]),
    ((np.float32(1.0), np.zeros(1), 4), {}, ValueError, ["`x`", "leading example axis"]),
    (((), np.zeros(3), 4), {}, ValueError, ["`x`", "empty tuple"]),
    ((np.zeros(10), np.zeros(10), 0), {}, ValueError, ["batch_size", "0"]),
    ((np.zeros(10), np.zeros(10), -2), {}, ValueError, ["batch_size", "-2"]),
    ((np.zeros(10), np.zeros(10), 2.5), {}, TypeError, ["batch_size", "float"]),
    ((np.zeros(10), np.zeros(10), "4"), {}, TypeError, ["batch_size", "str"]),
    ((np.zeros(10), np.zeros(10), True), {}, TypeError, ["batch_size", "bool"]),
    ((np.zeros(10), np.zeros(10), 4), dict(seed=-1), ValueError, ["seed", "-1"]),
    ((np.zeros(10), np.zeros(10), 4), dict(seed=0.5), TypeError, ["seed"]),
    ((np.zeros(10), np.zeros(10), 4), dict(epoch=-1), ValueError, ["epoch", "-1"]),
    ((np.zeros(3), np.zeros(3), 4), dict(drop_last=True), ValueError,
     ["drop_last", "batch_size=4", "3 examples"]),
])
def test_batches_validation_is_eager(args, kwargs, error, words):
    # raised by the call itself, before any batch is requested
    with pytest.raises(error) as e:
        data.batches(*args, **kwargs)
    msg = str(e.value)
    assert "batches" in msg
    for w in words:
        assert w in msg, msg


def test_epoch_permutation_and_num_batches_validation():
    with pytest.raises(ValueError, match="`n`"):
        data.epoch_permutation(0, 0, 0)
    with pytest.raises(ValueError, match="`epoch`"):
        data.epoch_permutation(5, 0, -1)
    with pytest.raises(TypeError, match="`seed`"):
        data.epoch_permutation(5, None, 0)
    with pytest.raises(ValueError, match="batch_size"):
        data.num_batches(5, 0)
    assert data.num_batches(5, 5) == 1 and data.num_batches(6, 5) == 2
    assert data.num_batches(6, 5, drop_last=True) == 1


# --------------------------------------------------------------------------------------
# process_shard
# --------------------------------------------------------------------------------------

def test_process_shard_one_process_is_the_identity():
    x, y = np.arange(14.0).reshape(7, 2), np.arange(7)
    xs, ys = data.process_shard(x, y)   # this test process is JAX's only process
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    np.testing.assert_array_equal(data.process_shard(y), y)   # one in, one out (no tuple)


@pytest.mark.parametrize("n, count", [(10, 3), (9, 3), (5, 5), (7, 2), (64, 8)])
def test_process_shard_shares_are_equal_disjoint_and_cover_the_kept_rows(n, count):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n)
    pairs = [data.process_shard(x, y, process_index=p, process_count=count)
             for p in range(count)]
    k = n // count                                     # by hand: n % count rows dropped
    for p, (xs, ys) in enumerate(pairs):
        assert ys.tolist() == list(range(p * k, (p + 1) * k))
        np.testing.assert_array_equal(xs, x[ys])       # rows stay paired with their labels
    np.testing.assert_array_equal(np.concatenate([ys for _, ys in pairs]), np.arange(count * k))


def test_process_shard_keeps_tuples_of_inputs():
    a, b, y = np.arange(6.0), np.arange(12.0).reshape(6, 2), np.arange(6) * 10
    (a1, b1), y1 = data.process_shard((a, b), y, process_index=1, process_count=3)
    assert a1.tolist() == [2.0, 3.0] and b1.tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert y1.tolist() == [20, 30]


def test_process_shard_shares_split_evenly_over_each_process_devices():
    # 23 rows, 2 processes of 4 devices: 11 each would not split over 4 devices; 8 do.
    y = np.arange(23)
    shares = [data.process_shard(y, process_index=p, process_count=2, local_devices=4)
              for p in (0, 1)]
    assert [s.tolist() for s in shares] == [list(range(0, 8)), list(range(8, 16))]
    with pytest.raises(ValueError, match="fewer rows than its 4 devices; pass at least 8"):
        data.process_shard(np.arange(7), process_index=0, process_count=2, local_devices=4)


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((np.zeros(4), np.zeros(5)), {}, ValueError, ["same number of rows", "4 for arrays[0]",
                                                 "5 for arrays[1]"]),
    (((np.zeros(4), np.zeros(3)),), {}, ValueError, ["3 for arrays[0][1]"]),
    ((np.zeros(3),), dict(process_index=0, process_count=4), ValueError,
     ["3 rows", "4 processes", "at least 4 rows"]),
    ((np.zeros(3),), dict(process_index=2, process_count=2), ValueError,
     ["process_index", "below", "got 2"]),
    ((np.float32(1.0),), {}, ValueError, ["leading example axis"]),
    ((), {}, ValueError, ["at least one array"]),
    ((np.zeros(3),), dict(process_index=0, process_count=0), ValueError, ["process_count"]),
])
def test_process_shard_errors(args, kwargs, error, words):
    with pytest.raises(error) as e:
        data.process_shard(*args, **kwargs)
    msg = str(e.value)
    assert msg.startswith("process_shard")
    for w in words:
        assert w in msg, msg
