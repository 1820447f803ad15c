"""The study runner every search strategy uses, its result, and the resumable study log.

A strategy is a ``suggest(index, finished) -> config`` function;
:func:`run_search` asks it for one configuration at a time, calls the objective,
and records each finished trial as a dict::

    {"index": 3, "config": {...}, "value": 0.12, "status": "ok", "seconds": 1.5,
     "error": None, "metrics": None, "intermediate": {"0": 0.9, "1": 0.4}}

``status`` is ``"ok"``, ``"failed"`` (the objective raised, or returned NaN, inf
or no number; ``error`` says what) or ``"pruned"`` (it raised :class:`TrialPruned`).
``value`` is ``None`` unless it is a finite float. A failed trial never stops the
search; ``KeyboardInterrupt`` does.

With ``log="study.jsonl"`` the first line of the file describes the search and
each finished trial is appended as one JSON line, flushed and fsynced. Running
the same search again with the same log resumes it: the finished trials are
read back (a line torn by a kill is dropped) and only the rest are run. A log
serves one process at a time; for several processes or machines on one study,
use :func:`jaxdl.tune.optuna_search` with a shared Optuna storage.

>>> from jaxdl import tune
>>> result = tune.grid_search(lambda c: (c["x"] - 2) ** 2, {"x": [0, 1, 2, 3]})
>>> result.best_config, result.best_value
({'x': 2}, 0.0)
>>> result = tune.random_search(lambda c: (c["x"] - 2) ** 2, {"x": tune.uniform(0, 4)}, 50)
>>> abs(result.best_config["x"] - 2) < 0.1
True
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from jaxdl import _checks
from jaxdl.tune import space as spaces

STATUSES = ("ok", "failed", "pruned")


class TrialPruned(Exception):
    """Raise from an objective to stop a hopeless trial; it is recorded as ``"pruned"``."""


@dataclasses.dataclass
class TrialContext:
    """The trial an objective is running in (see :func:`current_trial`).

    Attributes:
        index: the trial's position in the search (0-based).
        config: its configuration.
        mode: ``"min"`` or ``"max"``.
        intermediate: what :func:`report` recorded so far, ``{str(step): value}``.
        finished: the trial dicts of the search finished before this one.
        on_report: called as ``on_report(step, value)`` by :func:`report` (the Optuna
            bridge forwards to Optuna's ``trial.report``), or ``None``.
        pruner: ``pruner() -> bool`` behind :meth:`should_prune`, or ``None``.
    """

    index: int
    config: dict
    mode: str
    intermediate: dict = dataclasses.field(default_factory=dict)
    finished: list = dataclasses.field(default_factory=list)
    on_report: Optional[Callable[[int, float], None]] = None
    pruner: Optional[Callable[[], bool]] = None

    def earlier(self, step: int, statuses: tuple = ("ok",)) -> list[float]:
        """The values earlier trials reported at ``step`` (by default completed ones only,
        as Optuna's median pruner does)."""
        key = str(step)
        return [t["intermediate"][key] for t in self.finished
                if t["status"] in statuses and key in (t.get("intermediate") or {})]

    def should_prune(self) -> bool:
        """Whether the search's pruner (Optuna's, under :func:`optuna_search`) says stop."""
        return bool(self.pruner()) if self.pruner is not None else False


_CURRENT: contextvars.ContextVar[Optional[TrialContext]] = contextvars.ContextVar(
    "jaxdl_tune_trial", default=None)


def current_trial() -> Optional[TrialContext]:
    """The :class:`TrialContext` of the objective running now, or ``None`` outside a search."""
    return _CURRENT.get()


def report(step: int, value: float) -> None:
    """Record an intermediate value (e.g. the validation loss after epoch ``step``).

    Later trials see it through ``current_trial().earlier(step)``; median stopping
    compares against it. Raises ``RuntimeError`` outside a running objective.
    """
    trial = _CURRENT.get()
    if trial is None:
        raise RuntimeError("tune.report: no trial is running; call it from inside an "
                           "objective that a tune search (grid_search, random_search, ...) "
                           "is running.")
    step = _checks.non_negative_int("tune.report", "step", step)
    number = _as_number(value)
    if number is None:
        raise TypeError(f"tune.report: `value` must be a number, got {value!r} of type "
                        f"{type(value).__name__}.")
    trial.intermediate[str(step)] = number
    if trial.on_report is not None:
        trial.on_report(step, number)


def _as_number(value: Any) -> Optional[float]:
    """``value`` as a float if it is a real scalar (Python, numpy or JAX), else ``None``."""
    if _checks.is_real(value):
        return float(value)
    if hasattr(value, "dtype") and np.ndim(value) == 0:
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
            return float(array)
    return None


# ------------------------------------------------------------------ one trial

def _judge(result: Any, metric: Optional[str]) -> tuple[Optional[float], Optional[dict],
                                                       Optional[str]]:
    """``(value, metrics, problem)`` of what the objective returned.

    ``metrics`` is the returned dict (numbers as floats) or ``None``; ``problem``
    says why the trial failed (no number, NaN, a missing metric), else ``None``.
    """
    metrics = None
    if isinstance(result, dict):
        metrics = {}
        for key, v in result.items():
            number = _as_number(v)
            metrics[str(key)] = spaces.jsonable(v) if number is None else number
        if metric is None:
            return None, metrics, (f"the objective returned a dict of metrics "
                                   f"{sorted(metrics)}; pass metric= naming the one to optimize.")
        if metric not in result:
            return None, metrics, (f"metric {metric!r} is not among the metrics the objective "
                                   f"returned: {sorted(metrics)}.")
        result = result[metric]
    value = _as_number(result)
    if value is None:
        return None, metrics, (f"the objective returned {result!r} of type "
                               f"{type(result).__name__}"
                               f"{' as metric ' + repr(metric) if metrics else ''}; expected a "
                               f"number.")
    if not math.isfinite(value):
        return None, metrics, f"the objective returned {value}" + (
            f" as metric {metric!r}." if metrics else ".")
    return value, metrics, None


def run_trial(objective: Callable, index: int, config: dict, *, mode: str,
              metric: Optional[str], finished: list, on_report=None, pruner=None,
              pruned_types: tuple = (TrialPruned,)) -> dict:
    """Run ``objective(config)`` as trial ``index`` and return its trial dict.

    An exception (other than ``KeyboardInterrupt`` and other non-``Exception``
    signals, which propagate) or a value that is not a finite number makes the
    trial ``"failed"``; :class:`TrialPruned` (or another of ``pruned_types``, such
    as Optuna's) makes it ``"pruned"``. ``on_report`` and ``pruner`` go to the
    :class:`TrialContext` the objective sees.
    """
    context = TrialContext(index, config, mode, {}, list(finished), on_report, pruner)
    token = _CURRENT.set(context)
    value = metrics = error = None
    start = time.perf_counter()
    try:
        result = objective(config)
    except pruned_types as exc:
        name = type(exc).__name__
        status, error = "pruned", f"{name}: {exc}" if str(exc) else name
    except Exception as exc:  # a failed trial is recorded, the search goes on
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        value, metrics, error = _judge(result, metric)
        status = "ok" if error is None else "failed"
    finally:
        _CURRENT.reset(token)
    return {"index": index, "config": config, "value": value, "status": status,
            "seconds": time.perf_counter() - start, "error": error, "metrics": metrics,
            "intermediate": dict(context.intermediate)}


# ------------------------------------------------------------------ the study log

def _read_log(owner: str, path: str, header: dict) -> list[dict]:
    """The finished trials stored in ``path``; writes the header to a new or empty log.

    A last line without its newline or that does not parse (the process was killed
    while writing it) is cut off, so the next trial appends on a fresh line.
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    complete, good = lines[:-1], 0
    records = []
    for number, line in enumerate(complete):
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(complete) - 1:
                raise ValueError(f"{owner}: the study log {path!r} is damaged at line "
                                 f"{number + 1} (not JSON). Repair or delete that line, or "
                                 f"use a new log.") from None
            break
        good += len(line) + 1
    if good < len(data):
        os.truncate(path, good)
    if not records:
        _append(path, header)
        return []
    _same_search(owner, path, records[0], header)
    return _trials_of(owner, path, records[1:])


def _same_search(owner: str, path: str, stored: Any, header: dict) -> None:
    if stored == header:
        return
    if not isinstance(stored, dict):
        stored = {"header": stored}
    differ = sorted(k for k in set(stored) | set(header) if stored.get(k) != header.get(k))
    detail = "; ".join(f"{k}: log has {stored.get(k)!r}, this search has {header.get(k)!r}"
                       for k in differ)
    raise ValueError(f"{owner}: the study log {path!r} belongs to a different search ({detail}"
                     f"). Use a new log file for a new search, or run the same search (same "
                     f"strategy, space, seed, mode and metric) to resume this one.")


def _trials_of(owner: str, path: str, records: list) -> list[dict]:
    for expected, record in enumerate(records):
        if not isinstance(record, dict) or record.get("index") != expected or record.get(
                "status") not in STATUSES:
            raise ValueError(f"{owner}: the study log {path!r} holds an unexpected record at "
                             f"line {expected + 2} (expected trial {expected}): {record!r}. "
                             f"Use a new log file.")
    return records


def _append(path: str, record: dict) -> None:
    """Append one JSON line and make it durable before the next trial starts."""
    line = json.dumps(spaces.jsonable(record)) + "\n"     # NaN reported mid-trial stays NaN
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


# ------------------------------------------------------------------ the runner

def run_search(objective: Callable, suggest: Callable, n_trials: int, *, mode: str = "min",
               metric: Optional[str] = None, log: Any = None, header: dict, owner: str,
               space: Optional[dict] = None, verbose: int = 0) -> SearchResult:
    """Run trials ``0..n_trials-1``, each on ``suggest(index, finished)``'s configuration.

    Args:
        objective: ``objective(config)`` returning a number, or a dict of numbers
            when ``metric`` names the one to optimize.
        suggest: ``suggest(index, finished) -> config``; ``finished`` holds the
            trial dicts so far (failed and pruned ones too). It must be
            deterministic given the search's seed, ``index`` and ``finished``, so a
            resumed search proposes what the uninterrupted one would have.
        n_trials: how many trials the search holds in all (finished ones in the
            log count).
        mode: ``"min"`` or ``"max"``.
        metric: the key of the objective's dict to optimize.
        log: a ``.jsonl`` path, or ``None`` to keep nothing on disk.
        header: what identifies the search in the log (strategy, space, seed...);
            ``mode`` and ``metric`` are added.
        owner: the public name errors start with, e.g. ``"tune.random_search"``.
        space: the space (or grid as choices) configurations come from: restores
            constants and choices read back from the log, and scales the plot.
        verbose: 0 prints nothing, 1 a line per trial.
    """
    for name, fn, form in (("objective", objective, "config -> number or dict of numbers"),
                           ("suggest", suggest, "(index, finished trials) -> config")):
        if not callable(fn):
            raise TypeError(f"{owner}: `{name}` must be a function {form}, got "
                            f"{type(fn).__name__}.")
    n_trials = _checks.positive_int(owner, "n_trials", n_trials)
    mode, metric = check_mode(owner, mode), check_metric(owner, metric)
    verbose = _checks.non_negative_int(owner, "verbose", int(verbose)
                                       if isinstance(verbose, bool) else verbose)
    header = spaces.jsonable({**header, "mode": mode, "metric": metric})
    finished = []
    if log is not None:
        log = _log_path(owner, log)
        finished = [dict(t, config=spaces.config_from_json(space, t["config"]))
                    for t in _read_log(owner, log, header)][:n_trials]
    for index in range(len(finished), n_trials):
        trial = run_trial(objective, index, suggest(index, list(finished)), mode=mode,
                          metric=metric, finished=finished)
        if log is not None:
            _append(log, trial)
        finished.append(trial)
        if verbose:
            _print_trial(trial, n_trials, finished, mode)
    return SearchResult(finished, mode=mode, metric=metric, space=space)


def _log_path(owner: str, log: Any) -> str:
    try:
        path = os.fspath(log)
    except TypeError:
        raise TypeError(f"{owner}: `log` must be a file path such as 'study.jsonl' or None, "
                        f"got {log!r}.") from None
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        open(path, "ab").close()
    return path


def check_mode(owner: str, mode: Any) -> str:
    """``mode`` if it is ``"min"`` or ``"max"``, else a ValueError naming ``owner``."""
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: `mode` must be 'min' (minimize the value) or 'max' "
                         f"(maximize it), got {mode!r}.")
    return mode


def check_metric(owner: str, metric: Any) -> Optional[str]:
    """``metric`` if it is ``None`` or a name, else a TypeError naming ``owner``."""
    if metric is not None and not isinstance(metric, str):
        raise TypeError(f"{owner}: `metric` must be None or the name of the value to optimize "
                        f"in the objective's dict, e.g. 'val_loss', got {metric!r}.")
    return metric


def _print_trial(trial: dict, n_trials: int, finished: list, mode: str) -> None:
    ok = [t["value"] for t in finished if t["status"] == "ok"]
    best = (min(ok) if mode == "min" else max(ok)) if ok else None
    shown = f"{trial['value']:.6g}" if trial["value"] is not None else trial["error"]
    print(f"trial {trial['index'] + 1}/{n_trials} {trial['status']}: {shown} "
          f"({trial['seconds']:.2f} s), best {best if best is None else f'{best:.6g}'}, "
          f"config {trial['config']}", flush=True)


# ------------------------------------------------------------------ strategies

def grid_search(objective: Callable, grid: dict, *, mode: str = "min",
                metric: Optional[str] = None, log: Any = None, verbose: int = 0) -> SearchResult:
    """Try every combination of a grid (a dict of lists), the last key varying fastest.

    >>> r = grid_search(lambda c: c["a"] * c["b"], {"a": [1, 2], "b": [3, -1]}, mode="max")
    >>> r.best_config, r.best_value, len(r.trials)
    ({'a': 2, 'b': 3}, 6.0, 4)
    """
    configs = spaces.grid_configs("tune.grid_search", grid)
    header = {"strategy": "grid", "grid": spaces.jsonable(grid)}
    space = {name: spaces.Choice(values) for name, values in grid.items()}
    return run_search(objective, lambda index, finished: dict(configs[index]), len(configs),
                      mode=mode, metric=metric, log=log, header=header,
                      owner="tune.grid_search", space=space, verbose=verbose)


def random_search(objective: Callable, space: dict, n_trials: int, seed: int = 0, *,
                  mode: str = "min", metric: Optional[str] = None, log: Any = None,
                  verbose: int = 0) -> SearchResult:
    """Draw ``n_trials`` configurations independently from ``space``.

    Configuration ``i`` comes from ``np.random.default_rng([seed, i])``, so it is the
    same however the search was interrupted and resumed, and a longer search with
    the same seed extends a shorter one.
    """
    owner = "tune.random_search"
    space = spaces.check_space(owner, space)
    seed = _checks.non_negative_int(owner, "seed", seed)

    def suggest(index, finished):
        return spaces.sample_config(space, np.random.default_rng([seed, index]))

    header = {"strategy": "random", "space": spaces.describe_space(space), "seed": seed}
    return run_search(objective, suggest, n_trials, mode=mode, metric=metric, log=log,
                      header=header, owner=owner, space=space, verbose=verbose)


# ------------------------------------------------------------------ the result

class SearchResult:
    """The trials of a search and its best configuration.

    Attributes:
        trials: the trial dicts, in the order they ran (see the module docstring).
        mode: ``"min"`` or ``"max"``.
        metric: the optimized key of the objective's dict, or ``None``.
        space: the search space (or its description), used to scale plots.
    """

    def __init__(self, trials: list, mode: str = "min", metric: Optional[str] = None,
                 space: Optional[dict] = None):
        self.trials = list(trials)
        self.mode = check_mode("tune.SearchResult", mode)
        self.metric = metric
        self.space = space

    def __repr__(self):
        counts = ", ".join(f"{sum(t['status'] == s for t in self.trials)} {s}" for s in STATUSES)
        return f"SearchResult({len(self.trials)} trials: {counts}; mode={self.mode!r})"

    @property
    def best_trial(self) -> dict:
        """The ``"ok"`` trial with the lowest (``mode="min"``) or highest value; first on ties."""
        ok = [t for t in self.trials if t["status"] == "ok"]
        if not ok:
            errors = [t.get("error") for t in self.trials if t.get("error")]
            raise ValueError(f"SearchResult: no trial finished with status 'ok' out of "
                             f"{len(self.trials)}" + (f"; the first error: {errors[0]}"
                                                      if errors else "") + ".")
        sign = 1.0 if self.mode == "min" else -1.0
        return min(ok, key=lambda t: sign * t["value"])

    @property
    def best_config(self) -> dict:
        """The configuration of :attr:`best_trial`."""
        return self.best_trial["config"]

    @property
    def best_value(self) -> float:
        """The value of :attr:`best_trial`."""
        return self.best_trial["value"]

    def best_so_far(self) -> list[Optional[float]]:
        """The best ``"ok"`` value among trials ``0..i``, for each ``i`` (``None`` before any)."""
        best, out = None, []
        for t in self.trials:
            if t["status"] == "ok" and (best is None or (
                    t["value"] < best if self.mode == "min" else t["value"] > best)):
                best = t["value"]
            out.append(best)
        return out

    def params(self) -> list[str]:
        """The configuration keys whose values differ between trials (the searched ones)."""
        names = []
        for t in self.trials:
            names += [k for k in t["config"] if k not in names]
        return [k for k in names if len({repr(t["config"].get(k)) for t in self.trials}) > 1
                or (self.space and isinstance(self.space.get(k), spaces.Dimension))]

    def table(self, max_rows: Optional[int] = None, sort: bool = False) -> str:
        """The trials as aligned text: index, status, value, seconds and each searched parameter.

        The best trial is marked ``*``. ``sort=True`` lists ``"ok"`` trials best first;
        ``max_rows`` keeps that many rows and says how many were left out.
        """
        return format_table(self, max_rows, sort)

    def plot(self, path: Any, title: Optional[str] = None) -> str:
        """Draw value and best-so-far per trial, and each parameter against the value.

        Parameters of a log-uniform dimension (or positive numbers spanning two
        decades or more) get a log axis; choices and other non-numbers are placed
        at evenly spaced positions. Returns the path written.
        """
        return plot_result(self, path, title)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 16 else text[:15] + "~"


def format_table(result: SearchResult, max_rows: Optional[int], sort: bool) -> str:
    """The text of :meth:`SearchResult.table`."""
    params = result.params()
    best = None
    try:
        best = result.best_trial["index"]
    except ValueError:
        pass
    trials = result.trials
    if sort:
        sign = 1.0 if result.mode == "min" else -1.0
        trials = sorted(trials, key=lambda t: (t["status"] != "ok",
                                               sign * (t["value"] or 0.0), t["index"]))
    shown = trials if max_rows is None else trials[:max(0, max_rows)]
    rows = [["#", "status", result.metric or "value", "seconds", *params]]
    for t in shown:
        rows.append([f"{t['index']}{'*' if t['index'] == best else ''}", t["status"],
                     "-" if t["value"] is None else _cell(float(t["value"])),
                     "-" if t.get("seconds") is None else f"{t['seconds']:.2f}",
                     *(_cell(t["config"].get(k, "")) for k in params)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i != 1 else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    if len(shown) < len(trials):
        lines.append(f"... {len(trials) - len(shown)} more trials")
    return "\n".join(lines)


def _numeric(values: list) -> bool:
    return all(_checks.is_real(v) for v in values)


def _param_panel(ax, result: SearchResult, name: str) -> None:
    ok = [t for t in result.trials if t["status"] == "ok"]
    xs = [t["config"].get(name) for t in ok]
    ys = [t["value"] for t in ok]
    if _numeric(xs) and xs:
        ax.scatter(xs, ys, s=16)
        positive = min(xs) > 0
        if spaces.is_log(result.space, name) or (positive and max(xs) >= 100 * min(xs)):
            ax.set_xscale("log")
    else:
        labels = []
        for x in [t["config"].get(name) for t in result.trials]:
            if repr(x) not in labels:
                labels.append(repr(x))
        ax.scatter([labels.index(repr(x)) for x in xs], ys, s=16)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(name)
    ax.set_ylabel(result.metric or "value")
    ax.grid(alpha=0.3)


def plot_result(result: SearchResult, path: Any, title: Optional[str] = None) -> str:
    """The drawing of :meth:`SearchResult.plot`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.trials:
        raise ValueError("SearchResult.plot: nothing to plot; the search holds no trial.")
    params = result.params()
    columns = max(1, min(3, len(params)))
    rows = 1 + -(-len(params) // columns)
    fig = plt.figure(figsize=(4.2 * columns + 1, 3.2 * rows))
    grid = fig.add_gridspec(rows, columns)
    top = fig.add_subplot(grid[0, :])
    ok = [t for t in result.trials if t["status"] == "ok"]
    top.plot([t["index"] for t in ok], [t["value"] for t in ok], "o", ms=4, label="trial")
    top.step(range(len(result.trials)), [np.nan if b is None else b
                                         for b in result.best_so_far()],
             where="post", color="C1", label="best so far")
    bad = [t["index"] for t in result.trials if t["status"] != "ok"]
    if bad:
        top.plot(bad, [0.04] * len(bad), "x", color="C3", clip_on=False,
                 transform=top.get_xaxis_transform(), label="failed / pruned")
    top.set_xlabel("trial")
    top.set_ylabel(result.metric or "value")
    top.grid(alpha=0.3)
    top.legend(fontsize=8)
    for i, name in enumerate(params):
        _param_panel(fig.add_subplot(grid[1 + i // columns, i % columns]), result, name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
