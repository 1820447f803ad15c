"""Search spaces: the dimensions a search draws from, and their unit-cube encodings.

A space is a dict from parameter names to :class:`Dimension` objects; any other
value is a constant passed through to every configuration unchanged::

    space = {"lr": loguniform(1e-4, 1e-1), "units": choice([32, 64, 128]),
             "dropout": uniform(0.0, 0.5), "layers": randint(1, 4), "epochs": 10}

Every dimension encodes a value into ``width`` columns of the unit cube, which is
where model-based searches (the Gaussian process of :mod:`jaxdl.tune.bayes`) work:

- :func:`uniform`: ``(v - low) / (high - low)``, one column;
- :func:`loguniform`: the same in ``log v``, so each decade gets an equal share;
- :func:`randint`: ``low..high-1`` (``high`` excluded, as in numpy); integer
  ``low + k`` owns the interval ``[k/n, (k+1)/n)`` and encodes to its middle;
- :func:`choice`: one-hot over the values; decoding takes the argmax.

>>> import numpy as np
>>> space = {"lr": loguniform(1e-3, 1e-1), "units": choice([32, 64]), "epochs": 5}
>>> encode_config(space, {"lr": 1e-2, "units": 64, "epochs": 5}).round(3).tolist()
[0.5, 0.0, 1.0]
>>> config = decode_config(space, np.array([0.5, 0.9, 0.1]))
>>> round(config["lr"], 12), config["units"], config["epochs"]
(0.01, 32, 5)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from jaxdl import _checks


def _finite_number(owner: str, name: str, value: Any) -> float:
    if not _checks.is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a finite number, got {value!r} of type "
                        f"{type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be a finite number, got {value}.")
    return float(value)


def _unit(owner: str, u: Any, width: int) -> np.ndarray:
    """``u`` as a float64 vector of ``width`` entries clipped to [0, 1]."""
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    if u.shape != (width,):
        raise ValueError(f"{owner}.decode: expected a unit-cube vector of {width} entries, got "
                         f"shape {u.shape}.")
    return np.clip(u, 0.0, 1.0)


def _generator(owner: str, rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}: `rng` must be a numpy Generator, e.g. "
                        f"np.random.default_rng(0), got {type(rng).__name__}.")
    return rng


def jsonable(value: Any) -> Any:
    """``value`` in the form JSON stores it; what JSON cannot store becomes a stable text.

    Tuples become lists, numpy and JAX scalars and arrays become numbers and lists,
    functions and classes become ``"<module.qualname>"`` (the same in every process,
    unlike ``repr``), so a study-log header written by one run compares equal to the
    header of the same search run again.

    >>> jsonable((1, "a", None)), jsonable(np.float32(0.5)), jsonable(math.sqrt)
    ([1, 'a', None], 0.5, '<math.sqrt>')
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value            # NaN and inf too: Python's json writes and reads them back
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic | np.ndarray) or (
            hasattr(value, "dtype") and hasattr(value, "tolist")):
        return jsonable(value.tolist())
    if hasattr(value, "__qualname__"):
        module = getattr(value, "__module__", None)
        return f"<{module + '.' if module else ''}{value.__qualname__}>"
    return repr(value)


class Dimension:
    """One searched parameter: how to draw it and how to place it in the unit cube.

    Subclasses are frozen dataclasses with ``width`` (columns of the encoding),
    ``sample(rng)``, ``encode(value) -> (width,) array in [0, 1]``,
    ``decode(u)`` (the inverse of ``encode`` on the cube; clips) and ``describe()``.
    """

    width = 1

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> np.ndarray:
        raise NotImplementedError

    def decode(self, u: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> dict:
        """A JSON description, e.g. ``{"type": "uniform", "low": 0.0, "high": 1.0}``."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Uniform(Dimension):
    """A float drawn uniformly from ``[low, high]``; encoded as ``(v - low) / (high - low)``."""

    low: float
    high: float

    def __post_init__(self):
        _bounds(self, "tune.uniform")

    def sample(self, rng):
        return float(_generator("tune.uniform", rng).uniform(self.low, self.high))

    def encode(self, value):
        v = _finite_number("tune.uniform.encode", "value", value)
        return np.clip(np.array([(v - self.low) / (self.high - self.low)]), 0.0, 1.0)

    def decode(self, u):
        u = _unit("tune.uniform", u, 1)[0]
        return float(min(max(self.low + u * (self.high - self.low), self.low), self.high))

    def describe(self):
        return {"type": "uniform", "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class LogUniform(Dimension):
    """A positive float whose log is uniform on ``[log low, log high]``; encoded in log space."""

    low: float
    high: float

    def __post_init__(self):
        _bounds(self, "tune.loguniform")
        if self.low <= 0:
            raise ValueError(f"tune.loguniform: `low` must be > 0 (the log of the range is "
                             f"searched), got low={self.low}. Use tune.uniform for ranges that "
                             f"include 0 or negative values.")

    def sample(self, rng):
        rng = _generator("tune.loguniform", rng)
        return float(min(max(math.exp(rng.uniform(math.log(self.low), math.log(self.high))),
                             self.low), self.high))

    def encode(self, value):
        v = _finite_number("tune.loguniform.encode", "value", value)
        if v <= 0:
            raise ValueError(f"tune.loguniform.encode: `value` must be > 0, got {v}.")
        lo, hi = math.log(self.low), math.log(self.high)
        return np.clip(np.array([(math.log(v) - lo) / (hi - lo)]), 0.0, 1.0)

    def decode(self, u):
        u = _unit("tune.loguniform", u, 1)[0]
        lo, hi = math.log(self.low), math.log(self.high)
        return float(min(max(math.exp(lo + u * (hi - lo)), self.low), self.high))

    def describe(self):
        return {"type": "loguniform", "low": self.low, "high": self.high}


def _bounds(dim: Dimension, owner: str) -> None:
    """Validate and normalize ``low < high`` of a frozen dimension in place."""
    low = _finite_number(owner, "low", dim.low)
    high = _finite_number(owner, "high", dim.high)
    if not low < high:
        raise ValueError(f"{owner}: `low` must be < `high`, got low={dim.low}, high={dim.high}. "
                         f"Swap them, or pass a constant instead of a dimension.")
    object.__setattr__(dim, "low", low)
    object.__setattr__(dim, "high", high)


@dataclasses.dataclass(frozen=True)
class RandInt(Dimension):
    """An int drawn uniformly from ``low..high-1`` (``high`` excluded, as in numpy).

    Integer ``low + k`` owns ``[k/n, (k+1)/n)`` of the unit interval (``n = high -
    low``), so every integer gets an equal share; it encodes to the middle.
    """

    low: int
    high: int

    def __post_init__(self):
        for name in ("low", "high"):
            value = getattr(self, name)
            if not _checks.is_int(value):
                raise TypeError(f"tune.randint: `{name}` must be an integer, got {value!r} of "
                                f"type {type(value).__name__}.")
            object.__setattr__(self, name, int(value))
        if not self.low < self.high:
            raise ValueError(f"tune.randint: `low` must be < `high` (high is excluded, as in "
                             f"numpy), got low={self.low}, high={self.high}. For the single "
                             f"value v use randint(v, v + 1) or the constant v.")

    def sample(self, rng):
        return int(_generator("tune.randint", rng).integers(self.low, self.high))

    def encode(self, value):
        if not _checks.is_int(value) or not self.low <= value < self.high:
            raise ValueError(f"tune.randint.encode: `value` must be an integer in "
                             f"{self.low}..{self.high - 1}, got {value!r}.")
        return np.array([(value - self.low + 0.5) / (self.high - self.low)])

    def decode(self, u):
        u = _unit("tune.randint", u, 1)[0]
        n = self.high - self.low
        return self.low + min(int(math.floor(u * n)), n - 1)

    def describe(self):
        return {"type": "randint", "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class Choice(Dimension):
    """One of ``values``, each drawn with equal probability; encoded one-hot."""

    values: tuple

    def __post_init__(self):
        values = self.values
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            raise TypeError(f"tune.choice: `values` must be a list of candidates, e.g. "
                            f"[32, 64, 128], got {values!r}.")
        values = tuple(values)
        if not values:
            raise ValueError("tune.choice: `values` must hold at least one candidate, got an "
                             "empty list.")
        object.__setattr__(self, "values", values)

    @property
    def width(self):
        return len(self.values)

    def sample(self, rng):
        return self.values[int(_generator("tune.choice", rng).integers(len(self.values)))]

    def index(self, value: Any) -> int:
        """The position of ``value`` among the candidates (also after a JSON round trip)."""
        for i, v in enumerate(self.values):
            if v is value or _same(v, value):
                return i
        raise ValueError(f"tune.choice.encode: `value` must be one of {list(self.values)!r}, "
                         f"got {value!r}.")

    def encode(self, value):
        one_hot = np.zeros(len(self.values))
        one_hot[self.index(value)] = 1.0
        return one_hot

    def decode(self, u):
        return self.values[int(np.argmax(_unit("tune.choice", u, len(self.values))))]

    def describe(self):
        return {"type": "choice", "values": [jsonable(v) for v in self.values]}


def _same(a: Any, b: Any) -> bool:
    """Equal values (``True`` is not ``1``), or equal in JSON (a tuple read back as a list)."""
    try:
        if bool(a == b):
            return isinstance(a, bool | np.bool_) == isinstance(b, bool | np.bool_)
    except (TypeError, ValueError):
        pass
    return jsonable(a) == jsonable(b)


def uniform(low: float, high: float) -> Uniform:
    """A float uniform on ``[low, high]``.

    >>> uniform(0.0, 0.5).decode([0.5])
    0.25
    """
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """A float in ``[low, high]`` (``0 < low``) uniform in log: each decade is as likely.

    >>> round(loguniform(1e-4, 1e-2).decode([0.5]), 12)
    0.001
    """
    return LogUniform(low, high)


def randint(low: int, high: int) -> RandInt:
    """An int in ``low..high-1`` (``high`` excluded, as in numpy).

    >>> import numpy as np
    >>> sorted({randint(1, 4).sample(np.random.default_rng(i)) for i in range(50)})
    [1, 2, 3]
    """
    return RandInt(low, high)


def choice(values) -> Choice:
    """One of ``values`` (any JSON-able candidates), each equally likely.

    >>> choice(["relu", "tanh"]).encode("tanh").tolist()
    [0.0, 1.0]
    """
    return Choice(values)


# ------------------------------------------------------------------ whole configurations

def check_space(owner: str, space: Any) -> dict:
    """Validate a search space: a non-empty dict with string keys; returns a copy.

    Values that are :class:`Dimension` objects are searched; any other value is a
    constant passed through to every configuration.
    """
    if not isinstance(space, dict):
        raise TypeError(f"{owner}: `space` must be a dict from parameter names to dimensions "
                        f"(tune.uniform, tune.loguniform, tune.randint, tune.choice) or "
                        f"constants, got {type(space).__name__}.")
    if not space:
        raise ValueError(f"{owner}: `space` is empty; give at least one parameter, e.g. "
                         f"{{'lr': tune.loguniform(1e-4, 1e-1)}}.")
    for name, value in space.items():
        if not isinstance(name, str):
            raise TypeError(f"{owner}: `space` keys must be parameter names (str), got "
                            f"{name!r} of type {type(name).__name__}.")
        if (isinstance(value, type) and issubclass(value, Dimension)
                or any(value is f for f in _FACTORIES)):
            raise TypeError(f"{owner}: `space[{name!r}]` is the dimension type itself; call it "
                            f"with its bounds, e.g. tune.uniform(0.0, 1.0).")
    return dict(space)


def _dims(space: dict) -> list[tuple[str, Dimension]]:
    return [(k, v) for k, v in space.items() if isinstance(v, Dimension)]


def space_width(space: dict) -> int:
    """Columns of the unit-cube encoding of ``space`` (constants take none)."""
    return sum(d.width for _, d in _dims(space))


def encode_config(space: dict, config: dict) -> np.ndarray:
    """The unit-cube vector of ``config``: the encodings of the searched entries in dict order."""
    parts = []
    for name, dim in _dims(space):
        if name not in config:
            raise ValueError(f"tune.encode_config: `config` lacks the searched parameter "
                             f"{name!r}; it has {sorted(config)}.")
        parts.append(dim.encode(config[name]))
    return np.concatenate(parts) if parts else np.zeros(0)


def decode_config(space: dict, u: Any) -> dict:
    """The full configuration (constants included) at the unit-cube point ``u``."""
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    width = space_width(space)
    if u.shape != (width,):
        raise ValueError(f"tune.decode_config: `u` must have {width} entries (the encoding "
                         f"width of the space), got shape {u.shape}.")
    config, start = {}, 0
    for name, value in space.items():
        if isinstance(value, Dimension):
            config[name] = value.decode(u[start:start + value.width])
            start += value.width
        else:
            config[name] = value
    return config


def sample_config(space: dict, rng: np.random.Generator) -> dict:
    """A configuration with every dimension drawn from ``rng`` (in dict order)."""
    _generator("tune.sample_config", rng)
    return {name: value.sample(rng) if isinstance(value, Dimension) else value
            for name, value in space.items()}


def grid_configs(owner: str, grid: Any) -> list[dict]:
    """Every combination of a grid (a dict of non-empty lists), the last key varying fastest.

    >>> grid_configs("tune.grid_search", {"lr": [0.1, 0.01], "units": [8, 16]})[:2]
    [{'lr': 0.1, 'units': 8}, {'lr': 0.1, 'units': 16}]
    """
    if not isinstance(grid, dict) or not grid:
        raise TypeError(f"{owner}: `grid` must be a non-empty dict from parameter names to "
                        f"lists of values, e.g. {{'lr': [1e-3, 1e-2]}}, got {grid!r}.")
    for name, values in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"{owner}: `grid` keys must be parameter names (str), got {name!r}.")
        if not isinstance(values, list | tuple) or not values:
            hint = (" Dimensions belong to random_search/bayesian_search."
                    if isinstance(values, Dimension) else "")
            raise ValueError(f"{owner}: `grid[{name!r}]` must be a non-empty list of values, "
                             f"got {values!r}. Wrap a single value in a list: [{values!r}]."
                             + hint)
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def describe_space(space: dict) -> dict:
    """A JSON description of ``space`` (the study-log header stores it).

    >>> describe_space({"lr": loguniform(0.001, 0.1), "epochs": 5})
    {'lr': {'type': 'loguniform', 'low': 0.001, 'high': 0.1}, 'epochs': {'type': 'constant', \
'value': 5}}
    """
    return {name: value.describe() if isinstance(value, Dimension)
            else {"type": "constant", "value": jsonable(value)}
            for name, value in space.items()}


def config_from_json(space: dict | None, config: dict) -> dict:
    """Undo what a JSON round trip did to a configuration of ``space``.

    Constants come back from the space itself (a function stays a function), a
    choice comes back as its candidate (a tuple stays a tuple); numbers are exact
    after JSON already.

    >>> config_from_json({"k": choice([(3, 3), (5, 5)]), "f": math.tanh}, {"k": [5, 5], "f": "?"})
    {'k': (5, 5), 'f': <built-in function tanh>}
    """
    restored = dict(config)
    for name, value in (space or {}).items():
        if name not in restored:
            continue
        if isinstance(value, Choice):
            try:
                restored[name] = value.values[value.index(restored[name])]
            except ValueError:
                pass
        elif not isinstance(value, Dimension):
            restored[name] = value
    return restored


def is_log(space: dict | None, name: str) -> bool:
    """Whether parameter ``name`` of ``space`` (dimensions or their description) is log-scaled."""
    value = (space or {}).get(name)
    return isinstance(value, LogUniform) or (isinstance(value, dict)
                                             and value.get("type") == "loguniform")


_FACTORIES = (uniform, loguniform, randint, choice)
