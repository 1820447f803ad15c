"""Training: the pure core (TrainState, jitted steps) and the Keras-style Trainer."""

from jaxdl.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from jaxdl.train.metrics import (
    binary_accuracy,
    categorical_accuracy,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_accuracy,
    top_k_accuracy,
)
from jaxdl.train.state import (
    LRMultiplierState,
    TrainState,
    lr_multiplier,
    make_eval_step,
    make_train_step,
    resolve_loss,
)
from jaxdl.train.trainer import History, Trainer

__all__ = [
    "TrainState", "make_train_step", "make_eval_step", "lr_multiplier", "LRMultiplierState",
    "resolve_loss", "Trainer", "History", "Callback", "EarlyStopping", "ReduceLROnPlateau",
    "TerminateOnNaN", "CSVLogger", "LambdaCallback", "ModelCheckpoint", "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_accuracy", "mean_squared_error", "mean_absolute_error",
]
