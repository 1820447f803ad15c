"""jaxdl: deep learning for JAX, built from pure functions."""

__version__ = "0.1.0"
