"""Whole populations at once: K configurations of one network trained in one program.

:func:`population_fit` stacks K training states (one per configuration of the
hyperparameters) and trains them together: the ordinary training step of
:func:`jaxdl.train.make_train_step`, ``jax.vmap``-ed over the members with the
batch shared, runs inside the scan-fused epochs of the shared epoch engine
(:class:`jaxdl.train.EpochTrainer`). One compilation, one program per chunk of
steps, the matrix products of the K members batched into larger ones. Each
member equals its own ``train.Trainer.fit`` run with the same settings, up to
float rounding.

Any hyperparameter that can be an array works:

- optimizer settings: ``make_optimizer(hp)`` builds a member's optimizer from
  its hyperparameters, traced scalars (``lambda hp: optim.adamw(hp["lr"],
  weight_decay=hp["wd"])``);
- model settings: ``model`` may be a function ``hp -> layer`` (``lambda hp:
  nn.Sequential([..., nn.Dropout(hp["rate"]), ...])``); the architecture (the
  shapes of the weights) must be the same for every member;
- the initialization: an integer hyperparameter ``"seed"`` gives each member
  its own init key, ``jax.random.key(hp["seed"])``, as
  ``Trainer.build(input_shape, seed=hp["seed"])`` would.

:func:`population_search` runs rounds of populations: keep the best members,
perturb them, train the new population.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks, optim
from jaxdl.train import executors, inputs
from jaxdl.train import metrics as _metrics
from jaxdl.train.inputs import short_repr
from jaxdl.train.loop import EpochTrainer, History, check_not_donated
from jaxdl.train.state import TrainState, make_eval_step, make_train_step, resolve_loss
from jaxdl.tune import search
from jaxdl.tune import space as _space

__all__ = ["Population", "PopulationState", "PopulationTrainer", "population_fit",
           "population_search", "check_hparams", "split_history"]


def check_hparams(owner: str, hparams: Any) -> dict[str, np.ndarray]:
    """``hparams`` as a dict of equal-length 1-D numpy arrays (float32 or int32).

    >>> check_hparams("population_fit", {"lr": [0.1, 0.01]})["lr"].dtype
    dtype('float32')
    """
    if not isinstance(hparams, dict) or not hparams:
        raise TypeError(f"{owner}: hparams must be a non-empty dict of 1-D arrays, one value per "
                        f"member (e.g. {{'lr': jnp.logspace(-4, -1, 8)}}), got "
                        f"{short_repr(hparams)}.")
    out, sizes = {}, {}
    for name, values in hparams.items():
        if not isinstance(name, str):
            raise TypeError(f"{owner}: hparams keys must be strings, got {name!r}.")
        a = np.asarray(values)
        if a.ndim != 1 or a.size == 0 or not (np.issubdtype(a.dtype, np.number)
                                              or a.dtype == bool):
            raise ValueError(f"{owner}: hparams[{name!r}] must be a non-empty 1-D array of "
                             f"numbers (one per member), got {short_repr(values)} of shape "
                             f"{a.shape}. Stack the values: np.array([...]).")
        out[name] = a.astype(np.int32 if np.issubdtype(a.dtype, np.integer) else np.float32)
        sizes[name] = a.size
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{owner}: every hparams array must have one value per member, the "
                         f"same length, got lengths {sizes}. Give each array K values.")
    return out


def _mode(owner: str, metric: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}.")
    if mode == "auto":  # as EarlyStopping: accuracies are maximized, the rest minimized
        return "max" if "acc" in metric else "min"
    return mode


class PopulationState(NamedTuple):
    """The state a population trains: K stacked ``TrainState``s and their hyperparameters.

    Attributes:
        members: a ``TrainState`` whose every leaf has a leading axis of K.
        hparams: ``{name: (K,) array}``, member ``i``'s values at row ``i``.
    """

    members: TrainState
    hparams: dict


class PopulationTrainer(EpochTrainer):
    """K models trained at once: the epoch engine over a vmapped ``Trainer`` step.

    Args:
        model: a layer, or a function ``hp -> layer`` (every member's weights of
            one shape).
        loss: a per-example loss or its name, as in ``train.Trainer``.
        make_optimizer: ``hp -> optax transformation``; ``hp`` maps each
            hyperparameter name to one member's (traced) scalar. Chained with
            ``optim.lr_multiplier()`` as ``Trainer`` does, so a member's state
            has the layout of a ``Trainer``'s.
        hparams: a dict of equal-length 1-D arrays (see :func:`check_hparams`).
        metrics, regularizer: as in ``train.Trainer``.

    Logs are arrays of shape ``(K,)``; the progress line shows each one's range
    over the population (``loss: 0.0312..0.8120``).
    """

    checkpoint_kind = "jaxdl.tune.PopulationTrainer"
    weight_fields = ("members",)
    optimizer_fields = ()

    def __init__(self, model: Any, loss: Any, make_optimizer: Callable[[dict], Any],
                 hparams: dict, metrics: Optional[Sequence[Any]] = None,
                 regularizer: Optional[Callable] = None, owner: str = "PopulationTrainer"):
        super().__init__()
        if not callable(make_optimizer) or hasattr(make_optimizer, "update"):
            raise TypeError(f"{owner}: make_optimizer must be a function hp -> optimizer, "
                            f"e.g. lambda hp: optim.adam(hp['lr']), got "
                            f"{short_repr(make_optimizer)}.")
        self.owner = owner
        self.reset(hparams)
        self.model_fn = _model_factory(owner, model)
        self.loss, self.make_optimizer, self.regularizer = resolve_loss(loss), make_optimizer, \
            regularizer
        metrics = _metrics.default_metrics(self.loss) if metrics is None else metrics
        self.metrics = (metrics,) if isinstance(metrics, str) or callable(metrics) \
            else tuple(metrics)
        self.log_names = ["loss"] + list(_metrics.resolve(self.metrics, self.loss))
        self.example_model = self.model_fn(self.member_config(0, arrays=True))
        if not (hasattr(self.example_model, "init") and hasattr(self.example_model, "apply")):
            raise TypeError(f"{owner}: the model function must return a layer for a member's "
                            f"hp, e.g. lambda hp: nn.Sequential([...]); it returned "
                            f"{short_repr(self.example_model)}.")
        self.runner = executors.compile_steps(self.step)
        self.evaluator = executors.compile_evaluation(self.eval_step)
        self.input_shape = None
        self._inits: dict = {}  # (input_shape, seed) -> the compiled, vmapped init

    def reset(self, hparams: dict) -> None:
        """Start over with a new population (no state yet); the compiled step is kept, so a
        population of the same size and shapes trains without compiling again."""
        self.hparams = check_hparams(self.owner, hparams)
        self.size = len(next(iter(self.hparams.values())))
        self.state, self.epoch, self.history = None, 0, None

    def member_config(self, i: int, arrays: bool = False) -> dict:
        """Member ``i``'s hyperparameters: Python numbers (or 0-d arrays)."""
        if arrays:
            return {k: jnp.asarray(v[i]) for k, v in self.hparams.items()}
        return {k: v[i].item() for k, v in self.hparams.items()}

    def transformation(self, hp: dict) -> optax.GradientTransformation:
        """A member's optimizer, as its state uses it: ``chain(make_optimizer(hp),
        optim.lr_multiplier())``."""
        return optax.chain(self.make_optimizer(hp), optim.lr_multiplier())

    def member_step(self, hp: dict, state: TrainState, batch: Any):
        """One member's ordinary training step (``make_train_step(..., jit=False)``)."""
        step = make_train_step(self.model_fn(hp), self.loss, self.transformation(hp),
                               self.metrics, self.regularizer, jit=False)
        return step(state, batch)

    def step(self, state: PopulationState, batch: Any):
        """Every member's step on the shared batch: ``(state, logs of shape (K,))``."""
        members, logs = jax.vmap(self.member_step, in_axes=(0, 0, None))(
            state.hparams, state.members, batch)
        return state._replace(members=members), logs

    def eval_step(self, state: PopulationState, batch: Any, weights: jax.Array) -> dict:
        """Every member's evaluation of the shared batch (padding rows weighted 0)."""
        def member(hp, st):
            evaluate = make_eval_step(self.model_fn(hp), self.loss, self.metrics,
                                      self.regularizer, jit=False)
            return evaluate(st, (*batch, weights))

        return jax.vmap(member)(state.hparams, state.members)

    def build(self, input_shape: Any, seed: int = 0) -> PopulationState:
        """Initialize every member; member ``i``'s key is ``key(hp["seed"])`` if there is a
        ``"seed"`` hyperparameter, else ``key(seed)`` (one init for all).

        The vmapped init is compiled (once per input shape and seed: eager, its
        many small operations would cost more than the training of a small model).
        """
        if (input_shape, seed) not in self._inits:
            def create(hp):
                key = jax.random.key(hp["seed"]) if "seed" in hp else jax.random.key(seed)
                return TrainState.create(self.model_fn(hp), self.transformation(hp),
                                         input_shape, key)

            self._inits[(input_shape, seed)] = jax.jit(jax.vmap(create))
        hparams = {k: jnp.asarray(v) for k, v in self.hparams.items()}
        self.state = PopulationState(self._inits[(input_shape, seed)](hparams), hparams)
        self.input_shape = input_shape
        return self.state

    def member_state(self, i: int) -> TrainState:
        """Member ``i``'s ``TrainState`` (the row ``i`` of every stacked leaf)."""
        self.require_state("member_state")
        return jax.tree.map(lambda a: a[i], self.state.members)

    def scan_friendly(self) -> bool:
        return inputs.fuses_well(self.example_model)

    def fit(self, x, y, epochs: int = 1, batch_size: int = 32,
            validation_data: Optional[tuple] = None, seed: int = 0, verbose: int = 1,
            **engine: Any) -> History:
        """Train every member on ``(x, y)``, as ``Trainer.fit`` trains one.

        ``engine`` keyword arguments (``shuffle``, ``steps_per_execution``,
        ``drop_remainder``, ``callbacks``, ``initial_epoch``) go to
        :meth:`~jaxdl.train.EpochTrainer.run_epochs`. The History holds arrays
        of shape ``(K,)``; :class:`Population` splits it per member. Callbacks
        see those arrays too, so only callbacks that accept them fit here (a
        ``LambdaCallback``; not ``EarlyStopping``, which monitors one number).
        """
        owner = "population_fit"
        seed = _checks.non_negative_int(owner, "seed", seed)
        x, y, n = inputs.checked_pair(owner, "", x, y)
        if self.state is None:
            self.build(tuple(np.shape(x)[1:]) if not isinstance(x, tuple)
                       else tuple(tuple(a.shape[1:]) for a in x), seed)
        batch_size = _checks.positive_int(owner, "batch_size", batch_size)
        validate = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"{owner}: validation_data must be a pair (x_val, y_val), got "
                                 f"{short_repr(validation_data)}.")
            xv, yv, n_val = inputs.checked_pair(owner, "validation ", *validation_data)
            val_data, val_batch = jax.device_put((xv, yv)), max(min(batch_size, n), 256)

            def validate():
                return self.evaluate_placed(val_data, n_val, val_batch)

        return self.run_epochs(self.runner, jax.device_put((x, y)), n, epochs=epochs,
                               batch_size=batch_size, seed=seed, verbose=verbose,
                               scan_friendly=self.scan_friendly(), validate=validate,
                               log_names=self.log_names, owner=owner, **engine)

    def evaluate_placed(self, data: Any, n: int, batch_size: int) -> dict[str, np.ndarray]:
        """Each member's loss and metric means over device-resident ``data`` of ``n`` rows:
        ``{name: (K,) float64 array}``."""
        return self.evaluate_means(self.evaluator, data, n, min(batch_size, n), self.log_names,
                                   fused=self.scan_friendly())


def _model_factory(owner: str, model: Any) -> Callable[[dict], Any]:
    if hasattr(model, "init") and hasattr(model, "apply"):
        return lambda hp: model
    if callable(model):
        return model
    raise TypeError(f"{owner}: model must be a layer (e.g. nn.Sequential([...])) or a function "
                    f"hp -> layer, got {short_repr(model)}.")


def split_history(history: History, size: int) -> list[History]:
    """One :class:`History` per member from a History of ``(K,)`` arrays (Python floats)."""
    out = []
    for i in range(size):
        member = History()
        member.epoch = list(history.epoch)
        member.history = {k: [float(np.asarray(v)[i]) if np.ndim(v) else float(v) for v in vs]
                          for k, vs in history.history.items()}
        out.append(member)
    return out


class Population:
    """What :func:`population_fit` returns: every member's history, final metrics and state.

    Attributes:
        hparams: ``{name: (K,) numpy array}``, member ``i`` at row ``i``.
        histories: one ``train.History`` per member, in the order of the arrays.
        metric, mode: what ranks the members (``"val_loss"`` with validation
            data, else ``"loss"``; ``"min"`` unless the metric is an accuracy).
        state: the trained :class:`PopulationState` (every member's ``TrainState``
            stacked); :meth:`member_state` takes one out.
        trainer: the :class:`PopulationTrainer` that trained it.
    """

    def __init__(self, trainer: PopulationTrainer, metric: Optional[str] = None,
                 mode: str = "auto"):
        self.trainer, self.hparams, self.state = trainer, trainer.hparams, trainer.state
        self.histories = split_history(trainer.history, trainer.size)
        names = self.histories[0].history
        metric = metric if metric is not None else ("val_loss" if "val_loss" in names
                                                    else "loss")
        if metric not in names:
            raise ValueError(f"population_fit: metric={metric!r} was not logged; the logged "
                             f"names are {sorted(names)}. Pick one of them (val_ names need "
                             f"validation_data).")
        self.metric, self.mode = metric, _mode("population_fit", metric, mode)

    @property
    def size(self) -> int:
        """The number of members K."""
        return len(self.histories)

    @property
    def final(self) -> list[dict[str, float]]:
        """Each member's metrics after its last epoch, as Python floats."""
        return [{k: v[-1] for k, v in h.history.items() if v} for h in self.histories]

    @property
    def values(self) -> np.ndarray:
        """Each member's final ``metric`` (float64, ``(K,)``)."""
        return np.array([f[self.metric] for f in self.final], np.float64)

    def ranking(self) -> list[int]:
        """Member indices from best to worst by ``metric``; non-finite values last."""
        values = self.values if self.mode == "min" else -self.values
        values = np.where(np.isfinite(values), values, np.inf)
        return [int(i) for i in np.argsort(values, kind="stable")]

    @property
    def best_index(self) -> int:
        """The index of the best member by ``metric`` (ValueError if every one diverged)."""
        best = self.ranking()[0]
        if not math.isfinite(self.values[best]):
            raise ValueError(f"Population: no member has a finite {self.metric} (every one "
                             f"diverged); lower the learning rates.")
        return best

    @property
    def best_config(self) -> dict:
        """The best member's hyperparameters, as Python numbers."""
        return self.config(self.best_index)

    @property
    def best_value(self) -> float:
        """The best member's final ``metric``."""
        return float(self.values[self.best_index])

    def config(self, i: int) -> dict:
        """Member ``i``'s hyperparameters, as Python numbers."""
        return {k: v[i].item() for k, v in self.hparams.items()}

    def member_state(self, i: int) -> TrainState:
        """Member ``i``'s ``TrainState``, as its own ``Trainer.fit`` would have left it."""
        check_not_donated("Population.member_state", self.state)
        return jax.tree.map(lambda a: a[i], self.state.members)

    def params(self, i: int) -> Any:
        """Member ``i``'s trained parameters."""
        return self.member_state(i).params

    def __repr__(self) -> str:
        return (f"Population(size={self.size}, metric={self.metric!r}, "
                f"best_index={self.ranking()[0]}, hparams={sorted(self.hparams)})")


def population_fit(model: Any, loss: Any, make_optimizer: Callable[[dict], Any], hparams: dict,
                   x: Any, y: Any, epochs: int, batch_size: int,
                   validation_data: Optional[tuple] = None, seed: int = 0, *,
                   metrics: Optional[Sequence[Any]] = None, regularizer: Optional[Callable] = None,
                   verbose: int = 1, metric: Optional[str] = None, mode: str = "auto",
                   **engine: Any) -> Population:
    """Train K configurations of one network at once, in one compiled program.

    Member ``i`` has the hyperparameters ``{name: hparams[name][i]}`` and is
    trained exactly as ``train.Trainer(model(hp), loss, make_optimizer(hp),
    metrics).fit(x, y, epochs, batch_size, validation_data=..., seed=seed)``
    would train it (same init, same batches, same dropout masks), up to float
    rounding; all members see the same batches. The members' steps run as one
    ``jax.vmap``-ed step inside the scan-fused epochs of the epoch engine.

    Args:
        model: a layer, or a function ``hp -> layer`` for hyperparameters of the
            model (``nn.Dropout(hp["rate"])``); every member's weights must
            have the same shapes.
        loss: a per-example loss or its name.
        make_optimizer: ``hp -> optimizer``, called with one member's traced
            scalars, e.g. ``lambda hp: optim.adamw(hp["lr"], weight_decay=hp["wd"])``.
        hparams: a dict of equal-length 1-D arrays, one value per member. An
            integer ``"seed"`` entry gives each member its own initialization
            (``Trainer.build(input_shape, seed=hp["seed"])``); without it all
            members start from the init of ``seed``.
        x, y, epochs, batch_size, validation_data, seed, metrics, regularizer,
            verbose: as in ``Trainer`` and ``Trainer.fit`` (``metrics=None``:
            Trainer's default). The progress line shows each log's range over
            the population, ``min..max``.
        metric, mode: what ranks the members (default ``"val_loss"`` with
            validation data, else ``"loss"``; ``"auto"``: ``"max"`` for
            accuracies, else ``"min"``).
        engine: ``shuffle``, ``steps_per_execution``, ``drop_remainder``, as in
            ``Trainer.fit``.

    Returns:
        A :class:`Population`.

    Example:
        >>> import numpy as np
        >>> from jaxdl import nn, optim, tune
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
        >>> pop = tune.population_fit(nn.Sequential([nn.Dense(1)]), "mse",
        ...                           lambda hp: optim.sgd(hp["lr"]), {"lr": [1e-3, 0.1]},
        ...                           x, y, epochs=5, batch_size=16, verbose=0)
        >>> round(pop.best_config["lr"], 6), len(pop.histories)
        (0.1, 2)
    """
    trainer = PopulationTrainer(model, loss, make_optimizer, hparams, metrics, regularizer,
                                owner="population_fit")
    return _train(trainer, x, y, epochs, batch_size, validation_data, seed, verbose, metric,
                  mode, engine)


def _train(trainer: PopulationTrainer, x, y, epochs, batch_size, validation_data, seed,
           verbose, metric, mode, engine) -> Population:
    epochs = _checks.positive_int("population_fit", "epochs", epochs)
    trainer.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                seed=seed, verbose=verbose, **engine)
    return Population(trainer, metric=metric, mode=mode)


def population_search(model: Any, loss: Any, make_optimizer: Callable[[dict], Any],
                      hparams: dict, x: Any, y: Any, epochs: int, batch_size: int,
                      validation_data: Optional[tuple] = None, seed: int = 0, *,
                      rounds: int = 3, population: int = 8, keep: float = 0.5,
                      sigma: float = 0.5, resample: float = 0.25,
                      metric: Optional[str] = None, mode: str = "auto", verbose: int = 0,
                      metrics: Optional[Sequence[Any]] = None,
                      regularizer: Optional[Callable] = None, **engine: Any):
    """Successive populations: train, keep the best, perturb them, train again.

    Round 0 trains the initial population; each later round trains K new
    members, children of the ``keep`` best fraction of every member trained so
    far (each survivor gets about ``K / survivors`` children). A child copies
    its parent's hyperparameters and changes each searched one:

    - a positive float is multiplied by ``exp(sigma * N(0, 1))`` (a step in log space);
    - another value with a one-column dimension in the space (``tune.uniform``
      from 0, ``tune.randint``) moves by ``sigma / 4 * N(0, 1)`` on its unit interval;
    - with probability ``resample`` a value with a dimension in the space is
      drawn afresh from it instead (the only change for ``tune.choice``);
    - values leave the space's range never (they are clipped into it); without
      a space, integers (``"seed"``) and non-positive floats are inherited.

    Every member trains from scratch (its own ``population_fit`` member), so a
    configuration's value does not depend on the round it ran in.

    Args:
        model, loss, make_optimizer, x, y, epochs, batch_size, validation_data,
            seed, metric, mode, verbose, metrics, regularizer, engine: as in
            :func:`population_fit`. Every round reuses the first round's
            compiled step (the hyperparameters are part of the state).
        hparams: the initial population (a dict of equal-length 1-D arrays), or
            a search space (a dict of ``tune`` dimensions and constants), from
            which ``population`` configurations are drawn (seeded by ``seed``).
        rounds: populations to train (``rounds * K`` trials in all).
        population: K when ``hparams`` is a space.
        keep: the fraction of the best trials so far that parent the next round.
        sigma, resample: the size of a perturbation, the chance of a fresh draw.

    Returns:
        A ``tune.SearchResult``: one trial per member of each round, in order,
        its ``config`` the member's hyperparameters (Python numbers), its
        ``value`` the final ``metric`` (``status="failed"`` when it is not
        finite), ``metrics`` all its final logs, ``intermediate`` the metric
        per epoch, and ``round``.
    """
    owner = "population_search"
    rounds = _checks.positive_int(owner, "rounds", rounds)
    if not (_checks.is_real(keep) and 0.0 < keep <= 1.0):
        raise ValueError(f"{owner}: keep must be a fraction in (0, 1] (of the trials so far "
                         f"that parent the next round), got {keep!r}.")
    configs, dims = _initial_configs(owner, hparams, population, seed)
    trials: list[dict] = []
    ranked_by = (metric, mode)
    trainer = PopulationTrainer(model, loss, make_optimizer, _stacked(configs), metrics,
                                regularizer, owner=owner)
    for r in range(rounds):
        if r > 0:
            configs = _children(trials, len(configs), keep, ranked_by[1], dims, sigma,
                                resample, np.random.default_rng([seed, r]))
            trainer.reset(_stacked(configs))
        start = time.perf_counter()
        pop = _train(trainer, x, y, epochs, batch_size, validation_data, seed, verbose, metric,
                     mode, engine)
        ranked_by = (pop.metric, pop.mode)
        seconds = (time.perf_counter() - start) / len(configs)
        trials += _round_trials(pop, configs, r, len(trials), seconds)
    return search.SearchResult(trials, mode=ranked_by[1], metric=ranked_by[0],
                               space=dims or None)


def _stacked(configs: list[dict]) -> dict:
    return {k: np.array([c[k] for c in configs]) for k in configs[0]}


def _initial_configs(owner: str, hparams: Any, size: int, seed: int):
    """Round 0's configurations (dicts of Python numbers) and the space's dimensions."""
    if isinstance(hparams, dict) and any(isinstance(v, _space.Dimension)
                                         for v in hparams.values()):
        space = _space.check_space(owner, hparams)
        size = _checks.positive_int(owner, "population", size)
        configs = [_space.sample_config(space, np.random.default_rng([seed, 0, i]))
                   for i in range(size)]
        return configs, {k: v for k, v in space.items() if isinstance(v, _space.Dimension)}
    arrays = check_hparams(owner, hparams)
    k = len(next(iter(arrays.values())))
    configs = [{name: np.asarray(hparams[name])[i].item() for name in arrays} for i in range(k)]
    return configs, {}


def _children(trials: list[dict], size: int, keep: float, mode: str, dims: dict,
              sigma: float, resample: float, rng: np.random.Generator) -> list[dict]:
    """The next round: ``size`` perturbed copies of the best ``keep`` of the trials so far."""
    ok = [t for t in trials if t["status"] == "ok"]
    if not ok:
        raise ValueError("population_search: every member so far diverged (no finite "
                         "value); lower the learning rates or widen the initial population.")
    ok.sort(key=lambda t: t["value"] if mode == "min" else -t["value"])
    parents = ok[:max(1, round(keep * size))]
    return [_perturbed(parents[j % len(parents)]["config"], dims, sigma, resample, rng)
            for j in range(size)]


def _perturbed(config: dict, dims: dict, sigma: float, resample: float,
               rng: np.random.Generator) -> dict:
    """One child of ``config`` (see :func:`population_search` for the rules)."""
    child = {}
    for name, value in config.items():
        dim = dims.get(name)
        if dim is not None and rng.random() < resample:
            value = dim.sample(rng)
        elif isinstance(value, float) and value > 0:
            value = value * math.exp(sigma * rng.standard_normal())
            value = dim.decode(dim.encode(value)) if dim is not None and dim.width == 1 \
                else value
        elif dim is not None and dim.width == 1:
            u = dim.encode(value) + sigma / 4 * rng.standard_normal()
            value = dim.decode(np.clip(u, 0.0, 1.0))
        child[name] = value
    return child


def _round_trials(pop: Population, configs: list[dict], round_index: int, first: int,
                  seconds: float) -> list[dict]:
    """One ``SearchResult`` trial per member of a trained population."""
    trials = []
    for i, config in enumerate(configs):
        value = float(pop.values[i])
        finite = math.isfinite(value)
        curve = pop.histories[i].history[pop.metric]
        trials.append({
            "index": first + i, "config": dict(config), "value": value if finite else None,
            "status": "ok" if finite else "failed", "seconds": seconds,
            "error": None if finite else f"{pop.metric} is {value} (the member diverged)",
            "metrics": pop.final[i], "round": round_index,
            "intermediate": {str(e): v for e, v in zip(pop.histories[i].epoch, curve,
                                                      strict=True)}})
    return trials
