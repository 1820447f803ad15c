"""Training: the pure core (TrainState, jitted steps), the epoch engine every trainer
drives (:mod:`jaxdl.train.loop`, :mod:`jaxdl.train.executors`), and the Keras-style
supervised Trainer."""

from jaxdl.optim.inject import LRMultiplierState, lr_multiplier
from jaxdl.train import executors, loop
from jaxdl.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from jaxdl.train.loop import CallbackList, EpochTrainer, History
from jaxdl.train.metrics import (
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    top_k_accuracy,
)
from jaxdl.train.state import TrainState, make_eval_step, make_train_step, resolve_loss
from jaxdl.train.trainer import Trainer

__all__ = [
    "TrainState", "make_train_step", "make_eval_step", "resolve_loss", "Trainer", "History",
    "EpochTrainer", "CallbackList", "executors", "loop", "Callback", "EarlyStopping",
    "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "LambdaCallback", "LearningRateScheduler",
    "ModelCheckpoint",
    "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "top_k_accuracy",
    # kept for code written before the multiplier moved to optim (one mechanism, see optim.inject)
    "lr_multiplier", "LRMultiplierState",
]
