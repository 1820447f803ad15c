"""jaxdl: deep learning for JAX, built from pure functions.

Submodules: ``nn`` (layers), ``losses``, ``regularizers``, ``optim``
(hand-written optax-compatible optimizers), ``kernels`` (compiled matmul, conv,
pooling), ``train`` (TrainState, jitted steps, Trainer, callbacks), ``data``,
``checkpoint`` and ``gradcheck``; ``generative`` (autoencoders, GANs, adversarial
autoencoders) and ``tune`` (hyperparameter search) are imported on first use.
"""

__version__ = "0.1.0"

from jaxdl import _xla  # noqa: E402  (before any JAX backend starts: see jaxdl/_xla.py)

_xla.configure()
tune_malloc, malloc_status = _xla.tune_malloc, _xla.malloc_status  # process-wide, opt-in

from jaxdl import (  # noqa: E402
    checkpoint,
    compilation,
    data,
    gradcheck,
    kernels,
    losses,
    nn,
    optim,
    regularizers,
    train,
)

__all__ = ["__version__", "checkpoint", "compilation", "data", "generative", "gradcheck",
           "kernels", "losses", "malloc_status", "nn", "optim", "regularizers", "train", "tune",
           "tune_malloc"]

_LAZY = ("generative", "tune")  # imported on first use: ``import jaxdl`` stays as quick as it was


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"jaxdl.{name}")
    raise AttributeError(f"module 'jaxdl' has no attribute {name!r}")
