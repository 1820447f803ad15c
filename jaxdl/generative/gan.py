"""Generative adversarial networks: the spec, the state, the pure step, the trainer.

A :class:`GAN` names two layers, a latent size, an objective (one of
:mod:`jaxdl.generative.objectives`) and two optimizers. :class:`GANState`
holds both networks' params and states, both optimizer states, a key and a
step counter; :func:`make_gan_step` is the whole training step, one jitted
and donated call:

1. ``d_steps`` discriminator updates. Each draws fresh latents, generates a
   fake batch and calls the discriminator twice, once on the real batch and
   once on the fake one (not on their concatenation), so a discriminator with
   batch norm normalizes each kind with its own statistics, as in DCGAN
   practice. The real batch is reused by every discriminator update of the
   step (common practice: one batch of data per generator update).
2. One generator update through the freshly updated discriminator.
3. The generator's new weights folded into their moving average
   (``GAN.g_ema_decay``, :func:`ema_decay_at`), which only sampling uses.

Modes and layer states: every pass of both updates runs with
``training=True`` (dropout on, batch norm on batch statistics). Each
network's state (batch-norm moving statistics) is updated only by the passes
whose parameters are being trained: the generator's by its own update, the
discriminator's by its real and fake passes. The generator's forward pass
inside a discriminator update and the discriminator's forward pass inside
the generator update are discarded from the state, so the moving statistics
see each batch once and never the other network's gradient pass.

Randomness: the step ``t`` draws everything (latents, dropout, the penalty's
interpolation) from ``fold_in(state.key, t)``, split once per phase, so a
resumed run draws the same numbers as an uninterrupted one.

PacGAN (``pack=k``): the discriminator sees ``k`` samples concatenated along
the last (feature or channel) axis, all real or all fake; a batch's rows
beyond a multiple of ``k`` are dropped inside the step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks, checkpoint, nn, optim
from jaxdl._typing import Array, Params, PRNGKey, Shape, State
from jaxdl.generative import objectives
from jaxdl.train import executors, inputs
from jaxdl.train.loop import EpochTrainer, History
from jaxdl.train.state import mask_frozen, raw_key

__all__ = ["GAN", "GANState", "make_gan_step", "GANTrainer", "default_optimizer"]

LOG_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")
#: The default ``GAN.g_ema_decay``: the generator's weights averaged over
#: about the last 100 updates (measured on the ring in examples/gan_ring.py).
DEFAULT_EMA_DECAY = 0.99


@functools.lru_cache(maxsize=1)  # one object, so GANs built with the defaults compare equal
def default_optimizer() -> optax.GradientTransformation:
    """The default of both of a GAN's optimizers: ``optim.adam(1e-3)``.

    The issue-13 baseline for the 2-D targets (all 8 ring modes on every
    seed). Measured on the ring (seed 0, 4,000 steps, 128-128 MLPs): 54.5 %
    high-quality samples with ``b1=0.9`` against 29.5 % and a lost mode with
    DCGAN's ``b1=0.5``. A drop of the rate at the end of training helps more
    (70.8 %): pass ``optim.adam(optim.schedules.piecewise_constant(1e-3,
    {int(0.7 * steps): 0.1}))`` when the length of the run is known. The
    recipe that meets issue 13's ring target (all 8 modes on 5 seeds, 81.4 %
    high-quality samples) adds ``r1_weight=0.1`` and trains 10,000 steps, with
    the default ``g_ema_decay`` (``examples/gan_ring.py``).
    """
    return optim.adam(1e-3)


def _is_layer(obj: Any) -> bool:
    return hasattr(obj, "init") and hasattr(obj, "apply")


def _is_optimizer(obj: Any) -> bool:
    return hasattr(obj, "init") and hasattr(obj, "update")


@dataclasses.dataclass(frozen=True)
class GAN:
    """A generative adversarial network: two layers, a latent size, a game, two optimizers.

    Args:
        generator: a layer mapping latents ``(batch, latent_dim)`` to samples
            ``(batch, *data_shape)``.
        discriminator: a layer mapping (packed) samples to one logit per
            example, ``(batch, 1)`` or ``(batch,)``; for ``wasserstein_gp`` a
            critic score (do not put batch norm in a WGAN-GP critic: the
            penalty is per example).
        latent_dim: size of the latent code, drawn from ``N(0, I)``.
        loss: an objective name (``"minimax"``, ``"non_saturating"``,
            ``"least_squares"``, ``"hinge"``, ``"wasserstein_gp"``) or an
            :class:`~jaxdl.generative.objectives.Objective`.
        g_optimizer, d_optimizer: optax-compatible transformations; ``None``
            means :func:`default_optimizer`. Each is chained with
            ``optim.lr_multiplier()`` (``ReduceLROnPlateau`` lowers both).
        d_steps: discriminator updates per generator update, >= 1.
        gp_weight: the gradient penalty's weight (``wasserstein_gp`` only), >= 0.
        pack: samples per discriminator input (PacGAN), >= 1.
        g_ema_decay: ``beta`` of the exponential moving average of the
            generator's weights (Yazici et al. 2019; ProGAN, StyleGAN,
            BigGAN) kept in ``GANState.g_ema_params`` and used by
            ``GANTrainer.sample``; in ``[0, 1)``, ``None`` or ``0`` keeps no
            average. Bias-corrected: see :func:`ema_decay_at`. It never feeds
            back into training.
        r1_weight: ``gamma`` of the R1 penalty (Mescheder et al. 2018),
            ``gamma / 2 * mean |grad_x D(x)|^2`` over the real batch added to
            the discriminator's loss (:func:`r1_penalty`), >= 0; 0 (the
            default) adds nothing. It damps the oscillation of the
            discriminator around the data (on the ring it kept a seed from
            collapsing to 6 % high-quality samples; ``examples/gan_ring.py``).

    Raises:
        ValueError: a non-positive ``latent_dim``, ``d_steps`` or ``pack``, a
            negative ``gp_weight``, a ``g_ema_decay`` outside ``[0, 1)``, or an
            unknown loss name (the message lists the names).
        TypeError: a generator or discriminator that is not a layer, an
            optimizer that is not a GradientTransformation.

    Example:
        >>> from jaxdl import nn, generative
        >>> gan = generative.GAN(nn.Dense(2), nn.Dense(1), latent_dim=3, loss="hinge")
        >>> gan.objective.name, gan.d_steps
        ('hinge', 1)
    """

    generator: Any
    discriminator: Any
    latent_dim: int
    loss: Any = "non_saturating"
    g_optimizer: Optional[optax.GradientTransformation] = None
    d_optimizer: Optional[optax.GradientTransformation] = None
    d_steps: int = 1
    gp_weight: float = 10.0
    pack: int = 1
    g_ema_decay: Optional[float] = DEFAULT_EMA_DECAY
    r1_weight: float = 0.0
    objective: objectives.Objective = dataclasses.field(init=False, repr=False,
                                                        compare=False)

    def __post_init__(self):
        for name in ("generator", "discriminator"):
            if not _is_layer(getattr(self, name)):
                raise TypeError(f"GAN: `{name}` must be a layer with init(key, input_shape) and "
                                f"apply(params, state, x), e.g. nn.Sequential([...]); got "
                                f"{getattr(self, name)!r}.")
        _checks.positive_int("GAN", "latent_dim", self.latent_dim)
        _checks.positive_int("GAN", "d_steps", self.d_steps)
        _checks.positive_int("GAN", "pack", self.pack)
        _checks.non_negative_float("GAN", "gp_weight", self.gp_weight)
        _checks.non_negative_float("GAN", "r1_weight", self.r1_weight)
        if self.g_ema_decay is not None and not (
                _checks.is_real(self.g_ema_decay) and 0 <= self.g_ema_decay < 1):
            raise ValueError(f"GAN: `g_ema_decay` must be a number in [0, 1) (0 or None turns "
                             f"the generator's average off), got {self.g_ema_decay!r}; e.g. "
                             f"g_ema_decay={DEFAULT_EMA_DECAY}.")
        object.__setattr__(self, "objective", objectives.get(self.loss, "GAN"))
        for name in ("g_optimizer", "d_optimizer"):
            opt = getattr(self, name)
            if opt is None:
                object.__setattr__(self, name, default_optimizer())
            elif not _is_optimizer(opt):
                raise TypeError(f"GAN: `{name}` must be an optax GradientTransformation "
                                f"(jaxdl.optim or optax), got {opt!r}; e.g. optim.adam(2e-4, "
                                f"b1=0.5).")

    @property
    def averaging(self) -> bool:
        """Whether the state keeps an average of the generator's weights."""
        return bool(self.g_ema_decay)

    @property
    def g_transformation(self) -> optax.GradientTransformation:
        """The generator's optimizer as the state uses it (lr multiplier, frozen masks)."""
        return mask_frozen(self.generator,
                           optax.chain(self.g_optimizer, optim.lr_multiplier()))

    @property
    def d_transformation(self) -> optax.GradientTransformation:
        """The discriminator's optimizer as the state uses it (lr multiplier, frozen masks)."""
        return mask_frozen(self.discriminator,
                           optax.chain(self.d_optimizer, optim.lr_multiplier()))


def packed_shape(shape: Shape, pack: int) -> Shape:
    """The discriminator's input shape for samples of ``shape`` packed by ``pack``.

    >>> packed_shape((8, 8, 1), 2), packed_shape((2,), 1)
    ((8, 8, 2), (2,))
    """
    return tuple(shape[:-1]) + (shape[-1] * pack,)


def pack_samples(x: Array, pack: int) -> Array:
    """Concatenate each run of ``pack`` consecutive samples along the last axis.

    ``x`` has ``n`` rows, a multiple of ``pack``; the result has ``n // pack``.

    >>> pack_samples(jnp.arange(8.0).reshape(4, 2), 2).tolist()
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    """
    if pack == 1:
        return x
    n, shape = x.shape[0], x.shape[1:]
    grouped = jnp.moveaxis(x.reshape((n // pack, pack) + shape), 1, -2)
    return grouped.reshape((n // pack,) + packed_shape(shape, pack))


class GANState(NamedTuple):
    """Everything a GAN's training carries from step to step (a pytree of arrays).

    Attributes:
        step: int32 scalar, generator updates done so far.
        g_params, g_state: the generator's parameters and layer state.
        d_params, d_state: the discriminator's parameters and layer state.
        g_opt_state, d_opt_state: the two optimizer states.
        key: uint32 raw key data; step ``t`` draws from ``fold_in(key, t)``.
        g_ema_params: the running average of ``g_params`` (same tree; see
            :func:`ema_decay_at`), ``{}`` when ``gan.g_ema_decay`` is off.
    """

    step: Array
    g_params: Params
    g_state: State
    d_params: Params
    d_state: State
    g_opt_state: Any
    d_opt_state: Any
    key: Array
    g_ema_params: Params = {}

    @classmethod
    def create(cls, gan: GAN, data_shape: Shape, key: PRNGKey) -> "GANState":
        """Initialize both networks and optimizers for samples of ``data_shape``.

        Checks at build time that the generator maps ``(latent_dim,)`` to
        ``data_shape`` and that the discriminator maps the packed data shape to
        one logit per example.

        Raises:
            ValueError: either shape check fails (the message names both shapes).

        Example:
            >>> import jax
            >>> from jaxdl import nn, generative
            >>> gan = generative.GAN(nn.Dense(2), nn.Dense(1), latent_dim=3)
            >>> st = generative.GANState.create(gan, (2,), jax.random.key(0))
            >>> st.g_params["kernel"].shape, st.d_params["kernel"].shape
            ((3, 2), (2, 1))
        """
        owner = "GANState.create"
        if not isinstance(gan, GAN):
            raise TypeError(f"{owner}: `gan` must be a generative.GAN, got {type(gan).__name__}.")
        data_shape = _checks.shape_tuple(owner, data_shape, min_rank=1)
        key = raw_key(key)
        g_key, d_key, step_key = jax.random.split(key, 3)
        g_params, g_state = gan.generator.init(g_key, (gan.latent_dim,))
        produced = nn.base.abstract_output_shape(gan.generator, g_params, g_state,
                                                 (gan.latent_dim,))
        if produced != data_shape:
            raise ValueError(f"{owner}: the generator maps latents of shape ({gan.latent_dim},) "
                             f"to samples of shape {produced}, but the data have shape "
                             f"{data_shape}. Change the generator's last layers (or a Reshape) "
                             f"so it outputs {data_shape}, or pass data of shape {produced}.")
        d_in = packed_shape(data_shape, gan.pack)
        d_params, d_state = gan.discriminator.init(d_key, d_in)
        logits = nn.base.abstract_output_shape(gan.discriminator, d_params, d_state, d_in)
        if logits not in ((), (1,)):
            raise ValueError(f"{owner}: the discriminator must output one logit per example, "
                             f"shape (batch, 1) or (batch,), but for inputs of shape "
                             f"(batch, {', '.join(map(str, d_in))}) it outputs (batch, "
                             f"{', '.join(map(str, logits))}). End it with nn.Dense(1) (after "
                             f"nn.Flatten() for images).")
        return cls(step=jnp.zeros((), jnp.int32), g_params=g_params, g_state=g_state,
                   d_params=d_params, d_state=d_state,
                   g_opt_state=gan.g_transformation.init(g_params),
                   d_opt_state=gan.d_transformation.init(d_params), key=step_key,
                   g_ema_params=jax.tree.map(jnp.copy, g_params) if gan.averaging else {})


def ema_decay_at(decay: float, t: Array) -> Array:
    """The weight of the old average at the ``t``-th generator update (``t >= 1``).

    The average after update ``t`` is ``a_t = d_t a_{t-1} + (1 - d_t) theta_t``
    with ``d_t = (beta - beta^t) / (1 - beta^t)``: exactly the zero-started
    moving average ``m_t = beta m_{t-1} + (1 - beta) theta_t`` divided by its
    bias ``1 - beta^t`` (as Adam's moments are), i.e. the mean of
    ``theta_1 .. theta_t`` weighted by ``beta^(t - s)``. ``d_1 = 0``, so the
    initial weights never count; early in training the average spans all the
    updates so far, later about the last ``1 / (1 - beta)``.

    >>> [round(float(ema_decay_at(0.5, jnp.asarray(t))), 4) for t in (1, 2, 3)]
    [0.0, 0.3333, 0.4286]
    """
    beta = jnp.float32(decay)
    power = beta ** jnp.asarray(t, jnp.float32)
    return (beta - power) / (1.0 - power)


def _average(gan: GAN, state: GANState) -> GANState:
    """Fold the new ``g_params`` of update ``state.step + 1`` into ``g_ema_params``."""
    if not gan.averaging:
        return state
    d = ema_decay_at(gan.g_ema_decay, state.step + 1)
    ema = jax.tree.map(lambda a, p: (d * a + (1.0 - d) * p).astype(a.dtype),
                       state.g_ema_params, state.g_params)
    return state._replace(g_ema_params=ema)



def _latents(gan: GAN, key: Array, n: int, dtype: Any) -> Array:
    return jax.random.normal(key, (n, gan.latent_dim), dtype)


def _logits(gan: GAN, params, state, x, key, training=True):
    """Discriminator logits, one per (packed) example, and its new state."""
    out, state = gan.discriminator.apply(params, state, pack_samples(x, gan.pack), key=key,
                                         training=training)
    return out.reshape(out.shape[0]), state


def _d_update(gan: GAN, d_tx, state: GANState, x_real: Array, key: Array):
    """One discriminator update on ``x_real`` and fresh fakes; (state, logs)."""
    z_key, g_key, real_key, fake_key, gp_key = jax.random.split(key, 5)
    z = _latents(gan, z_key, x_real.shape[0], x_real.dtype)
    fake, _ = gan.generator.apply(state.g_params, state.g_state, z, key=g_key, training=True)
    fake = jax.lax.stop_gradient(fake).astype(x_real.dtype)

    def loss_fn(d_params):
        real_logits, d_state = _logits(gan, d_params, state.d_state, x_real, real_key)
        fake_logits, d_state = _logits(gan, d_params, d_state, fake, fake_key)
        loss = jnp.mean(gan.objective.discriminator(real_logits, fake_logits))
        if gan.objective.gradient_penalty:
            def critic(x):  # the packed input is packed already: call D directly
                return gan.discriminator.apply(d_params, d_state, x, key=gp_key,
                                               training=True)[0].reshape(x.shape[0])

            gp = objectives.gradient_penalty(critic, pack_samples(x_real, gan.pack),
                                             pack_samples(fake, gan.pack), gp_key)
            loss = loss + gan.gp_weight * jnp.mean(gp)
        if gan.r1_weight:
            loss = loss + 0.5 * gan.r1_weight * jnp.mean(
                r1_penalty(gan, d_params, state.d_state, x_real, real_key))
        return loss, (d_state, real_logits, fake_logits)

    (loss, (d_state, real_logits, fake_logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.d_params)
    updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
    state = state._replace(d_params=optax.apply_updates(state.d_params, updates),
                           d_state=d_state, d_opt_state=d_opt_state)
    return state, {"d_loss": loss.astype(jnp.float32),
                   "d_real": objectives.mean_probability(real_logits),
                   "d_fake": objectives.mean_probability(fake_logits)}


def r1_penalty(gan: GAN, d_params, d_state, x_real: Array, key: Array) -> Array:
    """``|grad_x D(x)|^2`` per (packed) real example: Mescheder et al.'s R1 (2018).

    The gradient of the discriminator's logit (or critic score) with respect
    to its input, at the real samples, in training mode; shape ``(n // pack,)``.
    """
    packed = pack_samples(x_real, gan.pack)

    def total(x):
        out = gan.discriminator.apply(d_params, d_state, x, key=key, training=True)[0]
        return jnp.sum(out)

    grads = jax.grad(total)(packed)
    return jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=1)


def _g_update(gan: GAN, g_tx, state: GANState, n: int, dtype: Any, key: Array):
    """One generator update through the current discriminator; (state, g_loss)."""
    z_key, g_key, d_key = jax.random.split(key, 3)
    z = _latents(gan, z_key, n, dtype)

    def loss_fn(g_params):
        fake, g_state = gan.generator.apply(g_params, state.g_state, z, key=g_key,
                                            training=True)
        # D in training mode, as in its own update; its state update from this pass is dropped.
        logits, _ = _logits(gan, state.d_params, state.d_state, fake.astype(dtype), d_key)
        return jnp.mean(gan.objective.generator(logits)), g_state

    (loss, g_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    state = state._replace(g_params=optax.apply_updates(state.g_params, updates),
                           g_state=g_state, g_opt_state=g_opt_state)
    return state, loss.astype(jnp.float32)


def _gan_step_fn(gan: GAN):
    d_tx, g_tx = gan.d_transformation, gan.g_transformation

    def step(state: GANState, x_real: Array) -> tuple[GANState, dict[str, Array]]:
        n = (x_real.shape[0] // gan.pack) * gan.pack
        if n == 0:
            raise ValueError(f"make_gan_step: a batch of {x_real.shape[0]} examples holds no "
                             f"group of pack={gan.pack}; use batches of at least {gan.pack}.")
        x_real = x_real[:n]
        keys = jax.random.split(jax.random.fold_in(state.key, state.step), gan.d_steps + 1)
        d_logs = []
        for i in range(gan.d_steps):
            state, logs = _d_update(gan, d_tx, state, x_real, keys[i])
            d_logs.append(logs)
        state, g_loss = _g_update(gan, g_tx, state, n, x_real.dtype, keys[-1])
        state = _average(gan, state)
        logs = {k: jnp.mean(jnp.stack([d[k] for d in d_logs])) for k in d_logs[0]}
        logs["g_loss"] = g_loss
        return state._replace(step=state.step + 1), logs

    return step


def make_gan_step(gan: GAN, donate: bool = True, jit: bool = True):
    """Build the training step ``step(state, x_real) -> (state, metrics)``.

    One call runs ``gan.d_steps`` discriminator updates, each on fresh latents
    and the same real batch, then one generator update, then (with
    ``gan.g_ema_decay``) the update of the generator's weight average (see the
    module docstring for modes, states and keys). ``state.step`` counts
    generator updates.

    Metrics (float32 scalars): ``d_loss`` (the discriminator's loss, with the
    gradient penalty for ``wasserstein_gp``), ``d_real`` and ``d_fake`` (the
    mean of ``sigmoid`` of the discriminator's outputs on the real and the
    fake batch: probabilities of "real"; for ``wasserstein_gp`` the sigmoid of
    the critic's score, which is not a probability but still rises with it),
    each averaged over the ``d_steps`` updates, and ``g_loss`` (the
    generator's loss).

    Args:
        gan: the :class:`GAN`.
        donate: donate the state's buffers to the call (do not reuse a state
            after passing it in).
        jit: ``False`` returns the plain function, for
            ``jaxdl.train.executors.compile_steps``, ``lax.scan`` or ``vmap``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn, generative
        >>> gan = generative.GAN(nn.Dense(2), nn.Dense(1), latent_dim=3)
        >>> state = generative.GANState.create(gan, (2,), jax.random.key(0))
        >>> state, logs = generative.make_gan_step(gan)(state, jnp.ones((8, 2)))
        >>> sorted(logs), int(state.step)
        (['d_fake', 'd_loss', 'd_real', 'g_loss'], 1)
    """
    if not isinstance(gan, GAN):
        raise TypeError(f"make_gan_step: `gan` must be a generative.GAN, got "
                        f"{type(gan).__name__}.")
    step = _gan_step_fn(gan)
    return jax.jit(step, donate_argnums=(0,) if donate else ()) if jit else step



def _compile(gan: GAN) -> tuple:
    """The step runner and the jitted sampler ``(g_params, g_state, key, n, batch)``."""
    def sample(g_params, g_state, key, n: int, batch: int):
        steps = -(-n // batch)
        z = _latents(gan, key, steps * batch, jnp.float32)

        def generate(zb):
            return gan.generator.apply(g_params, g_state, zb, training=False)[0]

        out = jax.lax.map(generate, z.reshape(steps, batch, -1))
        return out.reshape((steps * batch,) + out.shape[2:])[:n]

    return (executors.compile_steps(make_gan_step(gan, jit=False)),
            jax.jit(sample, static_argnums=(3, 4)))


#: The compiled functions of a GAN, shared by the trainers of equal specifications.
_compiled = executors.per_specification(_compile)


class GANTrainer(EpochTrainer):
    """Train a :class:`GAN` on the epoch engine: progress, History, callbacks, checkpoints.

    ``fit`` places the data on the device once and runs each epoch as a few
    compiled chunks of :func:`make_gan_step` fused in ``lax.scan``. Epochs
    drop their last ``n % batch_size`` examples (``drop_remainder``): every
    step then has one batch size, which a discriminator's batch statistics and
    PacGAN's packing like, and the shuffled order still reaches every example
    over the epochs. Logged per epoch: ``d_loss``, ``g_loss``, ``d_real``,
    ``d_fake`` (means over the epoch's steps). ``TerminateOnNaN`` watches
    ``d_loss`` and ``g_loss``; ``ReduceLROnPlateau`` lowers both optimizers'
    rates; ``EarlyStopping(restore_best_weights=True)`` restores both networks.

    Example:
        >>> from jaxdl import nn, data, generative
        >>> x, _ = data.make_gaussian_mixture(256, seed=0)
        >>> gen = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(2)])
        >>> disc = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(1)])
        >>> trainer = generative.GANTrainer(generative.GAN(gen, disc, latent_dim=2))
        >>> history = trainer.fit(x, epochs=2, batch_size=64, verbose=0)
        >>> trainer.sample(5, seed=1).shape
        (5, 2)
    """

    checkpoint_kind = "jaxdl.generative.GANTrainer"
    weight_fields = ("g_params", "g_state", "d_params", "d_state", "g_ema_params")
    optimizer_fields = ("g_opt_state", "d_opt_state")

    def __init__(self, gan: GAN):
        super().__init__()
        if not isinstance(gan, GAN):
            raise TypeError(f"GANTrainer: `gan` must be a generative.GAN(generator, "
                            f"discriminator, latent_dim, ...), got {type(gan).__name__}.")
        self.gan = gan
        self.data_shape: Optional[Shape] = None
        self._runner, self._sample = _compiled(gan)

    def build(self, data_shape: Shape, seed: int = 0) -> GANState:
        """Create the state for samples of ``data_shape`` (no batch axis) without training."""
        seed = _checks.non_negative_int("GANTrainer.build", "seed", seed)
        self.state = GANState.create(self.gan, data_shape, jax.random.key(seed))
        self.data_shape = _checks.shape_tuple("GANTrainer.build", data_shape)
        return self.state

    def fit(self, x, epochs: int = 1, batch_size: int = 128, callbacks: Sequence[Any] = (),
            seed: int = 0, verbose: int = 1, initial_epoch: int = 0,
            steps_per_execution: Any = "auto") -> History:
        """Train for epochs ``initial_epoch .. epochs-1`` over the rows of ``x``.

        Args:
            x: training samples ``(n, *data_shape)``.
            epochs, callbacks, seed, verbose, initial_epoch, steps_per_execution:
                as in ``train.Trainer.fit``; ``seed`` initializes both networks
                (on the first fit) and fixes the shuffling and the latents.
            batch_size: real examples per step (at least ``gan.pack``).

        Returns:
            A :class:`~jaxdl.train.History` of ``d_loss``, ``g_loss``,
            ``d_real``, ``d_fake``.

        Raises:
            ValueError: x's sample shape differs from the one the state was
                built for, or from the generator's output (both named); NaN or
                inf in x; a batch smaller than ``pack``.
        """
        owner = "GANTrainer.fit"
        seed = _checks.non_negative_int(owner, "seed", seed)
        x = inputs.host_examples(owner, "x", x)
        if self.state is None:
            self.build(x.shape[1:], seed)
        self.require_state("fit")
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"{owner}: the GAN was built for samples of shape "
                             f"{self.data_shape} but x has samples of shape "
                             f"{tuple(x.shape[1:])} (x.shape = {x.shape}). Reshape x, or "
                             f"create a new GANTrainer for the new shape.")
        batch_size = min(_checks.positive_int(owner, "batch_size", batch_size), len(x))
        if batch_size < self.gan.pack:
            raise ValueError(f"{owner}: batch_size must be at least pack={self.gan.pack} "
                             f"(after capping at the {len(x)} examples), got {batch_size}.")
        return self.run_epochs(
            self._runner, jax.device_put(x), len(x), epochs=epochs, batch_size=batch_size,
            seed=seed, initial_epoch=initial_epoch, verbose=verbose, callbacks=callbacks,
            steps_per_execution=steps_per_execution, drop_remainder=True,
            scan_friendly=inputs.fuses_well(self.gan.generator, self.gan.discriminator),
            log_names=LOG_NAMES, owner=owner)

    def sample(self, n: int, seed: int = 0, batch_size: int = 1024,
               averaged: bool = True) -> np.ndarray:
        """``n`` samples ``(n, *data_shape)`` as numpy, from latents seeded by ``seed``.

        The generator runs in inference mode (batch norm on its moving
        statistics, no dropout), in batches of ``batch_size`` inside one
        compiled call, compiled once per ``(n, batch_size)``. The same ``n``
        and ``seed`` give the same latents, so samples from successive
        checkpoints are comparable.

        With ``averaged=True`` (the default) and a GAN that keeps one
        (``g_ema_decay``), the generator runs on the moving average of its
        weights, ``state.g_ema_params`` (with the trained generator's layer
        state, e.g. batch-norm statistics); ``averaged=False`` samples the
        trained weights ``state.g_params``.
        """
        owner = "GANTrainer.sample"
        n = _checks.positive_int(owner, "n", n)
        seed = _checks.non_negative_int(owner, "seed", seed)
        batch = min(_checks.positive_int(owner, "batch_size", batch_size), n)
        self.require_state("sample")
        params = self.state.g_ema_params if averaged and self.gan.averaging \
            else self.state.g_params
        out = self._sample(params, self.state.g_state, jax.random.key(seed), n,
                           batch)
        return np.asarray(out)

    # ------------------------------------------------------------------ checkpoints

    def describe(self) -> dict:
        """Checkpoint metadata: the sample shape, latent size, loss and packing."""
        return {"data_shape": None if self.data_shape is None else list(self.data_shape),
                "latent_dim": self.gan.latent_dim, "loss": self.gan.objective.name,
                "pack": self.gan.pack, "g_ema_decay": self.gan.g_ema_decay}

    def restore_target(self, path: str, meta: dict) -> Any:
        """The abstract :class:`GANState` of this GAN for the saved sample shape."""
        shape = meta.get("data_shape")
        checkpoint.require(isinstance(shape, list) and 0 < len(shape) <= 8 and all(
            _checks.is_int(d) and d > 0 for d in shape), path, "metadata.data_shape",
            "a list of positive ints (the sample shape)", shape)
        return jax.eval_shape(
            lambda: GANState.create(self.gan, tuple(shape), jax.random.key(0)))

    def restored(self, meta: dict) -> None:
        self.data_shape = tuple(meta["data_shape"])
