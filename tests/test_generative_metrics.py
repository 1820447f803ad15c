"""generative.metrics against hand-worked sets, float64 loops and closed forms; the
sample pictures (save_samples, SampleGrid) on a toy engine trainer that has ``sample``."""

import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import data, generative, nn, optim, train
from jaxdl.generative import callbacks, metrics
from jaxdl.train import executors

# ------------------------------------------------------------------ mode_coverage


def _ring_samples(per_mode, centers, std, seed=0):
    """``per_mode[k]`` points at centre k, each at distance < 3 std (uniform in a disc)."""
    rng = np.random.default_rng(seed)
    points = []
    for k, count in enumerate(per_mode):
        angle = rng.uniform(0, 2 * np.pi, count)
        radius = 2.9 * std * np.sqrt(rng.uniform(0, 1, count))
        points.append(centers[k] + radius[:, None] * np.stack([np.cos(angle),
                                                               np.sin(angle)], 1))
    return np.concatenate(points)


def test_mode_coverage_on_a_set_with_known_modes_quality_and_kl():
    centers = data.gaussian_mixture_centers(8, 2.0).astype(np.float64)
    std = 0.02
    per_mode = [30, 10, 0, 0, 5, 5, 0, 50]  # 5 modes covered, 100 high-quality samples
    good = _ring_samples(per_mode, centers, std)
    bad = np.array([[0.0, 0.0], [5.0, 5.0], centers[2] + [0.07, 0.0], centers[3] * 1.5])
    modes, hq, kl = metrics.mode_coverage(np.concatenate([good, bad]), centers, std)
    q = np.array([c for c in per_mode if c]) / 100.0
    assert modes == 5
    assert hq == pytest.approx(100 / 104, abs=1e-12)
    assert kl == pytest.approx(float(np.sum(q * np.log(8 * q))), abs=1e-12)


def test_mode_coverage_extremes_uniform_single_mode_and_none():
    centers = data.gaussian_mixture_centers(8, 2.0)
    uniform = _ring_samples([25] * 8, centers, 0.02, seed=1)
    assert metrics.mode_coverage(uniform, centers, 0.02) == (8, 1.0, pytest.approx(0.0, abs=1e-12))
    one = _ring_samples([40, 0, 0, 0, 0, 0, 0, 0], centers, 0.02, seed=2)
    modes, hq, kl = metrics.mode_coverage(one, centers, 0.02)
    assert (modes, hq) == (1, 1.0) and kl == pytest.approx(math.log(8), abs=1e-12)
    modes, hq, kl = metrics.mode_coverage(np.zeros((10, 2)), centers, 0.02)
    assert (modes, hq, kl) == (0, 0.0, math.inf)


def test_mode_coverage_boundary_is_three_std_inclusive_and_min_count():
    centers = np.array([[0.0, 0.0], [1.0, 0.0]])
    on_edge = np.array([[0.3, 0.0], [1.0, 0.0], [1.0, 0.01]])  # 0.3 = 3 * 0.1 exactly
    assert metrics.mode_coverage(on_edge, centers, 0.1)[:2] == (2, 1.0)
    assert metrics.mode_coverage(on_edge, centers, 0.099)[:2] == (1, 2 / 3)
    assert metrics.mode_coverage(on_edge, centers, 0.1, min_count=2)[0] == 1


def test_mode_coverage_accepts_jax_float32_and_rejects_bad_input():
    centers = data.gaussian_mixture_centers(4, 1.0)
    x = jnp.asarray(centers, jnp.float32)
    assert metrics.mode_coverage(x, centers, 0.1) == (4, 1.0, pytest.approx(0.0, abs=1e-12))
    with pytest.raises(ValueError, match="mode_coverage: `samples` must be a non-empty 2-D"):
        metrics.mode_coverage(np.zeros(5), centers, 0.1)
    with pytest.raises(ValueError, match=r"`centers` must have 3 features.*got shape \(4, 2\)"):
        metrics.mode_coverage(np.zeros((5, 3)), centers, 0.1)
    with pytest.raises(ValueError, match="`std` must be > 0"):
        metrics.mode_coverage(x, centers, 0.0)
    with pytest.raises(ValueError, match="`std` must be a finite number >= 0"):
        metrics.mode_coverage(x, centers, -1.0)


# ------------------------------------------------------------------ mmd


def _mmd_loops(a, b, bw, unbiased):
    """The definition, term by term, in float64 Python loops."""
    def k(x, y):
        return math.exp(-sum((xi - yi) ** 2 for xi, yi in zip(x, y, strict=True)) / (2 * bw * bw))

    def within(s):
        pairs = [(i, j) for i in range(len(s)) for j in range(len(s)) if not (unbiased and i == j)]
        return sum(k(s[i], s[j]) for i, j in pairs) / len(pairs)

    cross = sum(k(x, y) for x in a for y in b) / (len(a) * len(b))
    return within(a) + within(b) - 2 * cross


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_matches_the_definition_term_by_term(unbiased):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(0.5, 1.3, size=(5, 3))
    for bw in (0.5, 1.0, 2.5):
        want = _mmd_loops(a.tolist(), b.tolist(), bw, unbiased)
        assert metrics.mmd(a, b, bw, unbiased=unbiased) == pytest.approx(want, abs=1e-12)


def test_mmd_row_blocks_match_one_block(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 2)), rng.normal(size=(40, 2))
    whole = [metrics.mmd(a, b, 0.7, unbiased=u) for u in (False, True)]
    monkeypatch.setattr(metrics, "_BLOCK", 8)  # diagonal entries fall in several blocks
    assert [metrics.mmd(a, b, 0.7, unbiased=u) for u in (False, True)] == pytest.approx(
        whole, abs=1e-12)


def test_mmd_of_identical_sets_is_zero_and_symmetric():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(100, 2)), rng.normal(1.0, size=(80, 2))
    assert metrics.mmd(a, a.copy()) == pytest.approx(0.0, abs=1e-12)
    assert metrics.mmd(a, b, 1.3) == pytest.approx(metrics.mmd(b, a, 1.3), abs=1e-12)


def _gaussian_mmd(mu, s1, s2, bw, d):
    """Population MMD² of N(0, s1² I) and N(mu, s2² I), RBF kernel of length bw (closed form)."""
    def e(var, shift2):
        return (bw * bw / (bw * bw + var)) ** (d / 2) * math.exp(-shift2 / (2 * (bw * bw + var)))

    return e(2 * s1 * s1, 0.0) + e(2 * s2 * s2, 0.0) - 2 * e(s1 * s1 + s2 * s2, mu * mu)


def test_unbiased_mmd_of_shifted_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(3)
    n, d = 1500, 2
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) * 1.5 + np.array([0.8, 0.0])
    want = _gaussian_mmd(0.8, 1.0, 1.5, 1.0, d)
    got = metrics.mmd(a, b, 1.0, unbiased=True)
    # by hand: 1/3 + 2/11 - 2 (1/4.25) exp(-0.64/8.5) = 0.07870
    assert want == pytest.approx(0.07870, abs=1e-5)
    assert got == pytest.approx(want, abs=0.01)
    # Same distribution: the unbiased estimate is near 0, the biased one near (1 - E k)(2/n).
    c = rng.normal(size=(n, d))
    assert abs(metrics.mmd(a, c, 1.0, unbiased=True)) < 2e-3
    bias = 2 / n * (1 - 1 / 3)  # E k(x, x') = (1 / (1 + 2)) ** (d / 2) = 1/3 for N(0, I)
    assert metrics.mmd(a, c, 1.0) - metrics.mmd(a, c, 1.0, unbiased=True) == pytest.approx(
        bias, rel=0.05)


def test_median_bandwidth_rule(monkeypatch):
    a, b = np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 4.0]])
    # pairwise distances: |a0-a1| = 5, |a0-b0| = 4, |a1-b0| = 3 -> median 4
    assert metrics.median_bandwidth(a, b) == 4.0
    assert metrics.mmd(a, b, "median") == pytest.approx(metrics.mmd(a, b, 4.0), abs=1e-15)
    rng = np.random.default_rng(4)
    big = rng.normal(size=(1500, 2))
    i, j = np.triu_indices(len(big), 1)
    full = np.median(np.sqrt(np.sum((big[i] - big[j]) ** 2, axis=1)))  # direct differences
    assert metrics.median_bandwidth(big[:700], big[700:]) == pytest.approx(full, abs=1e-12)
    monkeypatch.setattr(metrics, "_MEDIAN_POINTS", 500)  # above it: a fixed-seed subsample
    first = metrics.median_bandwidth(big[:700], big[700:])
    assert first == metrics.median_bandwidth(big[:700], big[700:]) != full
    assert first == pytest.approx(full, rel=0.05)


def test_mmd_rejects_bad_input():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="mmd: `b` must have 2 features"):
        metrics.mmd(x, np.zeros((4, 3)))
    with pytest.raises(TypeError, match="`bandwidth` must be a positive number or 'median'"):
        metrics.mmd(x, x, "mean")
    with pytest.raises(ValueError, match="`bandwidth` must be a finite number > 0"):
        metrics.mmd(x, x, 0.0)
    with pytest.raises(ValueError, match="median heuristic is 0"):
        metrics.mmd(x, x, "median")
    with pytest.raises(ValueError, match="unbiased=True needs at least 2 points"):
        metrics.mmd(x[:1], x, unbiased=True)
    with pytest.raises(TypeError, match="`a` must be a real-valued array"):
        metrics.mmd(np.array([["a", "b"]]), x)


# ------------------------------------------------------------ pictures: save_samples, SampleGrid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_bytes=2000):
    with open(path, "rb") as f:
        head = f.read(8)
    return head == PNG_MAGIC and os.path.getsize(path) > min_bytes


def test_image_grid_tiles_and_scales_by_the_display_rule():
    images = np.stack([np.full((2, 3, 1), v, np.float32) for v in (0.0, 0.5, 1.0, 0.25, 0.75)])
    grid = callbacks.image_grid(images, columns=2, pad=1)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1, 1)
    np.testing.assert_array_equal(grid[0:2, 0:3, 0], 0.0)   # sample 0: top left, [0, 1] as is
    np.testing.assert_array_equal(grid[3:5, 4:7, 0], 0.25)  # sample 3: row 1, column 1
    np.testing.assert_array_equal(grid[6:8, 4:7, 0], 1.0)   # the unused cell and gaps: fill
    np.testing.assert_array_equal(grid[2, :, 0], 1.0)
    np.testing.assert_array_equal(callbacks.image_grid(images, 2, fill=0.0)[:, 3, 0], 0.0)
    tanh = callbacks.image_grid(2 * images - 1, columns=2)   # [-1, 1] maps onto [0, 1]
    np.testing.assert_allclose(tanh, grid, atol=1e-7)
    wide = callbacks.image_grid(10 * images, columns=2)      # otherwise min..max
    np.testing.assert_allclose(wide, grid, atol=1e-7)


def test_save_samples_writes_an_image_grid_and_a_scatter(tmp_path):
    rng = np.random.default_rng(0)
    grid = callbacks.save_samples(rng.uniform(size=(16, 8, 8, 1)), tmp_path / "a" / "grid.png",
                                  title="digits")
    assert grid == str(tmp_path / "a" / "grid.png") and _is_png(grid)
    assert _is_png(callbacks.save_samples(rng.uniform(-1, 1, (9, 6, 6, 3)), tmp_path / "rgb.png"))
    ring = data.gaussian_mixture_centers(8, 2.0)
    scatter = callbacks.save_samples(rng.normal(size=(200, 2)), tmp_path / "s.png", real=ring,
                                     labels=np.arange(200) % 10)
    assert _is_png(scatter)


def test_save_samples_rejects_shapes_it_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match=r"save_samples: expected images of shape \(n, height, "
                                         r"width, channels\).*got shape \(4, 64\).*reshape"):
        callbacks.save_samples(np.zeros((4, 64)), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"`real` must be 2-D points of shape \(n, 2\)"):
        callbacks.save_samples(np.zeros((4, 2)), tmp_path / "x.png", real=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="`real` and `labels` go with 2-D points"):
        callbacks.save_samples(np.zeros((4, 8, 8, 1)), tmp_path / "x.png", real=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(4,\)"):
        callbacks.save_samples(np.zeros((4, 2)), tmp_path / "x.png", labels=[0, 1])
    assert not os.path.exists(tmp_path / "x.png")


class _Fixed(NamedTuple):
    step: jax.Array
    center: jax.Array


class ToyGenerator(train.EpochTrainer):
    """A 'generator' on the engine: its points drift to the data mean; sample(n, seed) draws."""

    checkpoint_kind = "tests.ToyGenerator"
    weight_fields = ("center",)
    optimizer_fields = ()

    def __init__(self, images=False):
        super().__init__()
        self.images = images
        self.calls = []
        self.runner = executors.compile_steps(self._step)

    def _step(self, state, x):
        center = state.center + 0.5 * (x.mean(0) - state.center)
        return state._replace(step=state.step + 1, center=center), {"loss": jnp.sum(center)}

    def fit(self, x, epochs, callbacks=()):
        self.state = _Fixed(jnp.int32(0), jnp.zeros(2))
        return self.run_epochs(self.runner, jax.device_put(x), len(x), epochs=epochs,
                               batch_size=8, callbacks=callbacks, verbose=0)

    def sample(self, n, seed=0):
        self.calls.append((n, seed))
        z = jax.random.normal(jax.random.key(seed), (n, 2)) * 0.1 + self.state.center
        return np.asarray(z if not self.images else
                          jax.nn.sigmoid(z[:, :1, None, None] + jnp.zeros((n, 1, 4, 4, 1)))[:, 0])


@pytest.mark.parametrize("images", [False, True])
def test_sample_grid_writes_a_png_every_k_epochs_with_fixed_seed(tmp_path, images):
    x = np.full((32, 2), 3.0, np.float32)
    trainer = ToyGenerator(images)
    cb = generative.SampleGrid(tmp_path / "pics", every=2, n=16, seed=7,
                               real=None if images else x)
    trainer.fit(x, epochs=5, callbacks=[cb])
    names = sorted(os.listdir(tmp_path / "pics"))
    assert names == ["samples_epoch_2.png", "samples_epoch_4.png"]
    assert cb.paths == [str(tmp_path / "pics" / n) for n in names]
    assert all(_is_png(p, 1000) for p in cb.paths)
    assert trainer.calls == [(16, 7), (16, 7)]


def test_sample_grid_validates_its_arguments_and_the_trainer(tmp_path):
    with pytest.raises(ValueError, match="SampleGrid: `every` must be a positive integer, got 0"):
        generative.SampleGrid(tmp_path, every=0)
    with pytest.raises(TypeError, match="SampleGrid: `every` must be a positive integer"):
        generative.SampleGrid(tmp_path, every=2.5)
    with pytest.raises(TypeError, match="`directory` must be a path"):
        generative.SampleGrid(None)
    with pytest.raises(ValueError, match=r"SampleGrid: `real` must be 2-D points"):
        generative.SampleGrid(tmp_path, real=np.zeros(5))
    m = nn.Sequential([nn.Dense(1)])
    trainer = train.Trainer(m, "mse", optim.sgd(0.1))
    with pytest.raises(TypeError, match="the trainer Trainer has no sample"):
        trainer.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=1, verbose=0,
                    callbacks=[generative.SampleGrid(tmp_path)])
