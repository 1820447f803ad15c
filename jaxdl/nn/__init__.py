"""Layers, activations, initializers and model containers.

Every layer follows one protocol (see :mod:`jaxdl.nn.base`)::

    params, state = layer.init(key, input_shape)          # input_shape: no batch axis
    y, state = layer.apply(params, state, x, key=None, training=False)
"""

from jaxdl.nn import initializers
from jaxdl.nn.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    Activation,
    LeakyReLU,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    elu,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    prelu,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from jaxdl.nn.base import Layer, output_shape, scan_friendly
from jaxdl.nn.conv import Conv1D, Conv2D, Conv2DTranspose
from jaxdl.nn.dense import Dense
from jaxdl.nn.dropout import Dropout
from jaxdl.nn.embedding import Embedding
from jaxdl.nn.frozen import Frozen, trainable_mask
from jaxdl.nn.graph import Input, Model, subtree
from jaxdl.nn.merge import Add, Average, Concatenate, Multiply
from jaxdl.nn.normalization import BatchNorm, LayerNorm
from jaxdl.nn.pooling import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from jaxdl.nn.reshape import Flatten, Reshape
from jaxdl.nn.sequential import Sequential
from jaxdl.nn.summary import summary

__all__ = [
    "Frozen", "trainable_mask",
    "Input", "Model", "subtree", "Concatenate", "Add", "Multiply", "Average",
    "Layer", "output_shape", "scan_friendly", "summary", "Sequential", "Dense", "initializers",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh",
    "Softmax", "ACTIVATIONS", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "sigmoid",
    "tanh", "softplus", "softmax", "log_softmax", "linear",
    "Conv1D", "Conv2D", "Conv2DTranspose", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D",
    "GlobalMaxPool2D", "Flatten", "Reshape", "Dropout", "BatchNorm", "LayerNorm", "Embedding",
]
