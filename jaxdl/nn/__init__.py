"""Layers, activations, initializers and model containers.

Every layer follows one protocol (see :mod:`jaxdl.nn.base`)::

    params, state = layer.init(key, input_shape)          # input_shape: no batch axis
    y, state = layer.apply(params, state, x, key=None, training=False)
"""

from jaxdl.nn import initializers
from jaxdl.nn.activations import (ACTIVATIONS, ELU, GELU, Activation, LeakyReLU, PReLU, ReLU,
                                  Sigmoid, SiLU, Softmax, Tanh, elu, gelu, leaky_relu, linear,
                                  log_softmax, prelu, relu, sigmoid, silu, softmax, softplus, tanh)
from jaxdl.nn.base import Layer, output_shape
from jaxdl.nn.dense import Dense
from jaxdl.nn.sequential import Sequential
from jaxdl.nn.summary import summary

__all__ = [
    "Layer", "output_shape", "summary", "Sequential", "Dense", "initializers",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh",
    "Softmax", "ACTIVATIONS", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "sigmoid",
    "tanh", "softplus", "softmax", "log_softmax", "linear",
]
