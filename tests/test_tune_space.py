"""Search spaces: draws, unit-cube encodings, grids and their errors."""

import json
import math

import numpy as np
import pytest

from jaxdl.tune import space as sp


def test_uniform_draws_cover_the_range_evenly_and_round_trip():
    dim = sp.uniform(-1.0, 3.0)
    rng = np.random.default_rng(0)
    draws = np.array([dim.sample(rng) for _ in range(4000)])
    assert draws.min() >= -1.0 and draws.max() <= 3.0
    assert abs(draws.mean() - 1.0) < 0.06            # mean of U(-1, 3); sd of the mean ~0.018
    for v in (-1.0, 0.3, 2.999, 3.0):
        u = dim.encode(v)
        assert u.shape == (1,) and 0.0 <= u[0] <= 1.0
        assert dim.decode(u) == pytest.approx(v, abs=1e-12)
    assert dim.encode(0.0)[0] == pytest.approx(0.25)
    assert dim.decode([2.0]) == 3.0                  # clipped to the cube


def test_loguniform_is_uniform_in_log_and_encodes_in_log_space():
    dim = sp.loguniform(1e-4, 1e-1)
    rng = np.random.default_rng(1)
    draws = np.array([dim.sample(rng) for _ in range(4000)])
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    # uniform in log: the median is the geometric mean, each decade holds a third
    assert np.median(draws) == pytest.approx(math.sqrt(1e-4 * 1e-1), rel=0.15)
    decades = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0] / len(draws)
    np.testing.assert_allclose(decades, [1 / 3] * 3, atol=0.03)
    assert dim.encode(1e-2)[0] == pytest.approx(2 / 3, abs=1e-12)
    for v in (1e-4, 3.3e-3, 1e-1):
        assert dim.decode(dim.encode(v)) == pytest.approx(v, rel=1e-12)


def test_randint_excludes_high_and_gives_every_integer_an_equal_share():
    dim = sp.randint(2, 7)
    rng = np.random.default_rng(2)
    draws = [dim.sample(rng) for _ in range(5000)]
    assert all(type(d) is int for d in draws)
    counts = np.bincount(draws, minlength=7)[2:]
    assert set(draws) == {2, 3, 4, 5, 6}               # low..high-1, never high
    np.testing.assert_allclose(counts / len(draws), [0.2] * 5, atol=0.025)
    for v in range(2, 7):
        assert dim.decode(dim.encode(v)) == v
        assert dim.encode(v)[0] == pytest.approx((v - 2 + 0.5) / 5)
    # decoding a fine uniform grid of the unit interval: each integer owns 1/5 of it
    us = (np.arange(1000) + 0.5) / 1000
    decoded = np.array([dim.decode([u]) for u in us])
    np.testing.assert_array_equal(np.bincount(decoded, minlength=7)[2:], [200] * 5)
    assert dim.decode([1.0]) == 6 and dim.decode([0.0]) == 2


def test_choice_is_one_hot_and_decodes_by_argmax():
    dim = sp.choice(["relu", "tanh", (3, 3)])
    assert dim.width == 3
    np.testing.assert_array_equal(dim.encode("tanh"), [0.0, 1.0, 0.0])
    assert dim.decode([0.2, 0.1, 0.7]) == (3, 3)
    assert dim.encode([3, 3]).tolist() == [0.0, 0.0, 1.0]     # a value after a JSON round trip
    rng = np.random.default_rng(3)
    draws = [dim.sample(rng) for _ in range(3000)]
    for v in dim.values:
        assert draws.count(v) / 3000 == pytest.approx(1 / 3, abs=0.03)
    with pytest.raises(ValueError, match="one of"):
        dim.encode("gelu")
    assert sp.choice([1, True]).encode(True).tolist() == [0.0, 1.0]


def test_config_round_trip_keeps_constants_and_dict_order():
    space = {"lr": sp.loguniform(1e-4, 1e-1), "units": sp.choice([32, 64, 128]),
             "epochs": 7, "dropout": sp.uniform(0.0, 0.5), "layers": sp.randint(1, 4)}
    assert sp.space_width(space) == 1 + 3 + 1 + 1
    rng = np.random.default_rng(4)
    for _ in range(20):
        config = sp.sample_config(space, rng)
        assert list(config) == list(space) and config["epochs"] == 7
        u = sp.encode_config(space, config)
        assert u.shape == (6,) and u.min() >= 0.0 and u.max() <= 1.0
        back = sp.decode_config(space, u)
        assert back["units"] == config["units"] and back["layers"] == config["layers"]
        assert back["lr"] == pytest.approx(config["lr"], rel=1e-12)
        assert back["dropout"] == pytest.approx(config["dropout"], abs=1e-12)
    with pytest.raises(ValueError, match="6 entries"):
        sp.decode_config(space, np.zeros(5))
    with pytest.raises(ValueError, match="'units'"):
        sp.encode_config(space, {"lr": 1e-3})


def test_sample_config_is_reproducible_from_a_seeded_generator():
    space = {"a": sp.uniform(0, 1), "b": sp.randint(0, 100)}
    first = sp.sample_config(space, np.random.default_rng([5, 3]))
    assert first == sp.sample_config(space, np.random.default_rng([5, 3]))
    assert first != sp.sample_config(space, np.random.default_rng([5, 4]))


def test_grid_configs_is_the_product_in_key_order():
    configs = sp.grid_configs("t", {"a": [1, 2, 3], "b": ["x", "y"]})
    assert configs == [{"a": a, "b": b} for a in (1, 2, 3) for b in ("x", "y")]


@pytest.mark.parametrize("grid, match", [
    ([1, 2], "non-empty dict"), ({}, "non-empty dict"), ({"a": []}, r"grid\['a'\]"),
    ({"a": 0.1}, r"grid\['a'\].*\[0.1\]"), ({"a": sp.uniform(0, 1)}, "random_search"),
])
def test_bad_grids_name_the_entry(grid, match):
    with pytest.raises((TypeError, ValueError), match=match):
        sp.grid_configs("tune.grid_search", grid)


@pytest.mark.parametrize("make, error, match", [
    (lambda: sp.uniform(1.0, 1.0), ValueError, "tune.uniform.*`low` must be < `high`"),
    (lambda: sp.uniform(2.0, 1.0), ValueError, "low=2.0, high=1.0"),
    (lambda: sp.uniform("a", 1.0), TypeError, "tune.uniform.*`low`"),
    (lambda: sp.uniform(0.0, math.inf), ValueError, "`high` must be a finite"),
    (lambda: sp.loguniform(0.0, 1.0), ValueError, "tune.loguniform.*`low` must be > 0"),
    (lambda: sp.loguniform(-1.0, 1.0), ValueError, "tune.uniform for ranges"),
    (lambda: sp.randint(3, 3), ValueError, "tune.randint.*randint\\(v, v \\+ 1\\)"),
    (lambda: sp.randint(0, 2.5), TypeError, "tune.randint: `high` must be an integer"),
    (lambda: sp.choice([]), ValueError, "tune.choice: `values`.*empty"),
    (lambda: sp.choice("abc"), TypeError, "tune.choice: `values` must be a list"),
])
def test_bad_dimensions_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("space, error, match", [
    ([("lr", 0.1)], TypeError, "`space` must be a dict"),
    ({}, ValueError, "`space` is empty"),
    ({1: sp.uniform(0, 1)}, TypeError, "keys must be parameter names"),
    ({"lr": sp.uniform}, TypeError, r"space\['lr'\].*call it"),
])
def test_check_space_errors(space, error, match):
    with pytest.raises(error, match=f"tune.random_search: .*{match}"):
        sp.check_space("tune.random_search", space)


def test_check_space_passes_constants_and_arrays_through():
    space = {"lr": sp.uniform(0, 1), "x": np.arange(3), "act": "relu"}
    assert sp.check_space("t", space) == space


def test_describe_space_is_json_and_stable_for_functions():
    space = {"lr": sp.loguniform(1e-3, 1e-1), "act": math.tanh, "units": sp.choice([8, 16]),
             "n": sp.randint(0, 3), "p": sp.uniform(0.0, 0.5), "tag": "a"}
    description = sp.describe_space(space)
    assert json.loads(json.dumps(description)) == description
    assert description["act"] == {"type": "constant", "value": "<math.tanh>"}
    assert description["units"] == {"type": "choice", "values": [8, 16]}
    assert description["n"] == {"type": "randint", "low": 0, "high": 3}
    assert sp.is_log(space, "lr") and sp.is_log(description, "lr")
    assert not sp.is_log(space, "p") and not sp.is_log(None, "lr")


def test_dimensions_are_hashable_frozen_and_compare_by_value():
    assert sp.uniform(0, 1) == sp.Uniform(0.0, 1.0)
    assert len({sp.choice([1, 2]), sp.choice((1, 2))}) == 1
    with pytest.raises(AttributeError):
        sp.uniform(0, 1).low = 3.0


def test_choice_finds_numpy_values_and_jsonable_converts_them():
    dim = sp.choice(np.array([8, 16]))
    assert dim.encode(16).tolist() == [0.0, 1.0]
    assert sp.jsonable({"a": np.arange(2), "b": (np.float32(0.5),)}) == {"a": [0, 1], "b": [0.5]}
