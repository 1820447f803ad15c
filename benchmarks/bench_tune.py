"""Hyperparameter search: jaxdl's Bayesian search against Optuna's samplers (issue 14).

Two standard test functions, minimized with a budget of ``--trials`` (30)
evaluations, over ``--seeds`` (10) seeds:

* **Branin** on ``x1 in [-5, 10], x2 in [0, 15]``, global minimum 0.397887;
* **Hartmann-6** on ``[0, 1]^6``, global minimum -3.32237.

The figure is the median over seeds of the *simple regret*, the best value
found minus the global minimum. Contestants, in the same run and the same
process: ``jaxdl bayes`` (:func:`jaxdl.tune.bayesian_search`, its defaults),
``jaxdl random`` (:func:`jaxdl.tune.random_search`), and Optuna's
``GPSampler``, ``TPESampler`` and ``RandomSampler`` (their defaults, seeded).

Speed: the wall time of one whole 30-trial Branin run, ``jaxdl bayes`` against
``GPSampler``, each in a fresh Python process (so jaxdl's compilation and
Optuna's lazy imports of torch and scipy are counted; the import of the
library itself is reported apart), alternated ``--timing-repeats`` (3) times,
median. Issue 14's targets: Branin median regret <= 0.0125, Hartmann-6 <=
0.12, and the jaxdl run at most a third of GPSampler's time.

``--part population`` runs ``benchmarks/bench_tune_population.py`` (the
population-training target) instead, ``--part all`` both; arguments this
script does not know are passed on to it.

Usage::

    python benchmarks/bench_tune.py                     # the targets (about 10 min on 2 cores)
    python benchmarks/bench_tune.py --quick             # smoke run (2 seeds), asserts nothing
    python benchmarks/bench_tune.py --seeds 3 --contestants "jaxdl bayes,optuna GP"
    python benchmarks/bench_tune.py --json tune.json --out RESULTS.md
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"branin": 0.0125, "hartmann6": 0.12}
SPEED_TARGET = 1 / 3

_HART_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                    [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_HART_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                           [2329, 4135, 8307, 3736, 1004, 9991],
                           [2348, 1451, 3522, 2883, 3047, 6650],
                           [4047, 8828, 8732, 5743, 1091, 381]])
_HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(c: dict) -> float:
    x1, x2 = c["x1"], c["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def hartmann6(c: dict) -> float:
    x = np.array([c[f"x{i}"] for i in range(6)])
    return float(-np.sum(_HART_ALPHA * np.exp(-np.sum(_HART_A * (x - _HART_P) ** 2, axis=1))))


# name -> (function, bounds {param: (low, high)}, global minimum)
PROBLEMS = {
    "branin": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, 0.397887),
    "hartmann6": (hartmann6, {f"x{i}": (0.0, 1.0) for i in range(6)}, -3.32237),
}


def run_jaxdl(strategy: str, problem: str, trials: int, seed: int) -> float:
    """Best value of one jaxdl search."""
    from jaxdl import tune
    fn, bounds, _ = PROBLEMS[problem]
    space = {k: tune.uniform(lo, hi) for k, (lo, hi) in bounds.items()}
    search = tune.bayesian_search if strategy == "bayes" else tune.random_search
    return search(fn, space, trials, seed=seed).best_value


def run_optuna(sampler: str, problem: str, trials: int, seed: int) -> float:
    """Best value of one Optuna study with the named sampler (its defaults, seeded)."""
    import warnings

    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    fn, bounds, _ = PROBLEMS[problem]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samplers = {"GP": optuna.samplers.GPSampler, "TPE": optuna.samplers.TPESampler,
                    "random": optuna.samplers.RandomSampler}
        study = optuna.create_study(sampler=samplers[sampler](seed=seed))
        study.optimize(lambda t: fn({k: t.suggest_float(k, lo, hi)
                                     for k, (lo, hi) in bounds.items()}), n_trials=trials)
    return study.best_value


CONTESTANTS = {
    "jaxdl bayes": lambda *a: run_jaxdl("bayes", *a),
    "jaxdl random": lambda *a: run_jaxdl("random", *a),
    "optuna GP": lambda *a: run_optuna("GP", *a),
    "optuna TPE": lambda *a: run_optuna("TPE", *a),
    "optuna random": lambda *a: run_optuna("random", *a),
}
TIMED = {"jaxdl bayes": "jaxdl", "optuna GP": "optuna"}


def measure_regrets(names, problems, trials: int, seeds: int) -> dict:
    """``{problem: {contestant: {"regrets": [...], "seconds": [...]}}}``."""
    out = {}
    for problem in problems:
        best = PROBLEMS[problem][2]
        out[problem] = {}
        for name in names:
            regrets, seconds = [], []
            for seed in range(seeds):
                t = time.perf_counter()
                regrets.append(CONTESTANTS[name](problem, trials, seed) - best)
                seconds.append(time.perf_counter() - t)
            out[problem][name] = {"regrets": regrets, "seconds": seconds}
            print(f"  {problem:9s} {name:13s} median regret {statistics.median(regrets):.4g} "
                  f"({sum(seconds):.1f} s for {seeds} seeds)", flush=True)
    return out


def time_one(which: str, trials: int, seed: int) -> dict:
    """In this (fresh) process: import time, then the wall time of one Branin run."""
    t0 = time.perf_counter()
    if which == "jaxdl":
        import jaxdl.tune  # noqa: F401
    else:
        import optuna  # noqa: F401
    t1 = time.perf_counter()
    value = (run_jaxdl("bayes", "branin", trials, seed) if which == "jaxdl"
             else run_optuna("GP", "branin", trials, seed))
    t2 = time.perf_counter()
    return {"which": which, "import_s": t1 - t0, "run_s": t2 - t1,
            "regret": value - PROBLEMS["branin"][2]}


def measure_times(trials: int, repeats: int, seed: int = 0) -> dict:
    """Fresh-process Branin runs, jaxdl and GPSampler alternated; the medians."""
    runs = {"jaxdl": [], "optuna": []}
    for _ in range(repeats):
        for which in runs:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--time-one",
                                   which, "--trials", str(trials), "--seed", str(seed)],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"timing run {which} failed:\n{proc.stderr[-2000:]}")
            runs[which].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {which: {"run_s": statistics.median(r["run_s"] for r in rs),
                    "import_s": statistics.median(r["import_s"] for r in rs), "runs": rs}
            for which, rs in runs.items()}


def report(regrets: dict, times, trials: int, seeds: int) -> str:
    """The markdown tables."""
    names = list(next(iter(regrets.values())))
    lines = [f"median simple regret over {seeds} seeds, {trials} evaluations "
             f"(mean seconds per run in brackets)", "",
             "| problem | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for problem, res in regrets.items():
        cells = [f"{statistics.median(r['regrets']):.4g} ({statistics.mean(r['seconds']):.1f})"
                 for r in res.values()]
        lines.append(f"| {problem} | " + " | ".join(cells) + " |")
    if times:
        lines += ["", f"one {trials}-trial Branin run in a fresh process (median of "
                  f"{len(times['jaxdl']['runs'])}; compilation and lazy imports included)", "",
                  "| contestant | run s | library import s |", "|---|---:|---:|"]
        for which, label in (("jaxdl", "jaxdl bayes"), ("optuna", "optuna GP")):
            lines.append(f"| {label} | {times[which]['run_s']:.2f} | "
                         f"{times[which]['import_s']:.2f} |")
    return "\n".join(lines)


def verdict(regrets: dict, times) -> str:
    """Issue 14's Bayesian targets, met or not."""
    parts = []
    for problem, target in TARGETS.items():
        r = regrets.get(problem, {}).get("jaxdl bayes")
        if r:
            m = statistics.median(r["regrets"])
            parts.append(f"{problem} regret {m:.4g} (target <= {target}: "
                         f"{'met' if m <= target else 'NOT met'})")
    if times:
        ratio = times["jaxdl"]["run_s"] / times["optuna"]["run_s"]
        parts.append(f"Branin run time jaxdl / GPSampler = {ratio:.2f} (target <= 0.33: "
                     f"{'met' if ratio <= SPEED_TARGET else 'NOT met'})")
    return "target (issue 14): " + "; ".join(parts) if parts else "target: not measured"


def run_population(rest: list, quick: bool, out) -> None:
    """``benchmarks/bench_tune_population.py``'s main, if that script is there."""
    if not os.path.exists(os.path.join(HERE, "bench_tune_population.py")):
        print("population part skipped: benchmarks/bench_tune_population.py is missing")
        return
    sys.path.insert(0, HERE)
    module = importlib.import_module("bench_tune_population")
    module.main([*rest, *(["--quick"] if quick else []), *(["--out", out] if out else [])])


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("bayes", "population", "all"), default="bayes")
    p.add_argument("--quick", action="store_true", help="smoke run (2 seeds), asserts nothing")
    p.add_argument("--seeds", type=int, default=None, help="seeds per problem (default 10)")
    p.add_argument("--trials", type=int, default=30, help="evaluations per run (default 30)")
    p.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated")
    p.add_argument("--contestants", default=",".join(CONTESTANTS), help="comma-separated")
    p.add_argument("--timing-repeats", type=int, default=None,
                   help="fresh-process Branin runs per side (default 3; 0 skips timing)")
    p.add_argument("--json", default=None, help="write the raw figures to this file")
    p.add_argument("--out", default=None, help="append the markdown tables to this file")
    p.add_argument("--time-one", choices=("jaxdl", "optuna"), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_known_args(argv)


def main(argv=None) -> int:
    a, rest = parse(argv)
    if a.time_one:
        print(json.dumps(time_one(a.time_one, a.trials, a.seed)))
        return 0
    if a.part in ("bayes", "all"):
        run_bayes(a, argv)
    if a.part in ("population", "all"):
        run_population(rest, a.quick, a.out)
    elif rest:
        print(f"unknown arguments: {rest}", file=sys.stderr)
        return 2
    return 0


def run_bayes(a, argv) -> None:
    """The regret and speed measurements, printed, and written where asked."""
    from bench_train import environment  # the same machine/version header as bench_train
    names = [n.strip() for n in a.contestants.split(",") if n.strip()]
    problems = [n.strip() for n in a.problems.split(",") if n.strip()]
    for bad, known, what in ((names, CONTESTANTS, "--contestants"),
                             (problems, PROBLEMS, "--problems")):
        if unknown := [n for n in bad if n not in known]:
            raise SystemExit(f"{what}: unknown {unknown}; choose from {list(known)}")
    seeds = a.seeds or (2 if a.quick else 10)
    repeats = a.timing_repeats if a.timing_repeats is not None else (1 if a.quick else 3)
    print(environment())
    regrets = measure_regrets(names, problems, a.trials, seeds)
    times = (measure_times(a.trials, repeats) if repeats and "branin" in problems
             and all(n in names for n in TIMED) else None)
    md, ok = report(regrets, times, a.trials, seeds), verdict(regrets, times)
    print("\n" + md + "\n" + ok)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"trials": a.trials, "seeds": seeds, "regrets": regrets, "times": times,
                       "verdict": ok}, f, indent=1)
    if a.out:
        command = " ".join(argv if argv is not None else sys.argv[1:])
        with open(a.out, "a") as f:
            f.write(f"\n{environment()}\n\ncommand: `python benchmarks/bench_tune.py "
                    f"{command}`\n\n{md}\n\n{ok}\n")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
