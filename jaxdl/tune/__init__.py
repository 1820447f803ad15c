"""Hyperparameter search: grid, random and Bayesian search, and whole populations at once.

- Search spaces: :func:`uniform`, :func:`loguniform`, :func:`randint` (``high``
  excluded, as in numpy), :func:`choice`; a grid is a dict of lists.
- Strategies: :func:`grid_search`, :func:`random_search`, :func:`bayesian_search`
  (a Gaussian process with expected improvement, written in JAX) and
  :func:`optuna_search` (Optuna's samplers and storage; the optional extra ``tune``).
  Each returns a :class:`SearchResult`; ``log="study.jsonl"`` makes a search resumable.
- :func:`fit_objective`: a ``Trainer`` run as an objective, with median stopping.
- :func:`population_fit`: many configurations of one network trained at once
  with ``jax.vmap``, in one compiled program; :func:`population_search` runs rounds of it.

Names are resolved on first use, so ``from jaxdl import tune`` stays cheap.
"""

import importlib

_HOMES = {
    "space": ("Dimension", "Uniform", "LogUniform", "RandInt", "Choice", "uniform",
              "loguniform", "randint", "choice"),
    "search": ("SearchResult", "TrialPruned", "report", "current_trial", "grid_search",
               "random_search"),
    "bayes": ("bayesian_search",),
    "optuna_bridge": ("optuna_search",),
    "objectives": ("fit_objective",),
    "population": ("Population", "population_fit", "population_search"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"jaxdl.tune.{_WHERE[name]}"), name)
    if name in _HOMES or name == "gp":
        return importlib.import_module(f"jaxdl.tune.{name}")
    raise AttributeError(f"module 'jaxdl.tune' has no attribute {name!r}")


def __dir__():
    return sorted((*_WHERE, *_HOMES, "gp"))
