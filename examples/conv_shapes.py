"""A CNN's shapes and parameter counts, checked against the course's formulas.

For every convolution and pooling layer the output size predicted by

    H' = floor((H + 2P - d (f - 1) - 1) / S) + 1        ("same": ceil(H / S))

(``jaxdl.kernels.conv_output_size``) is compared with the shape jaxdl infers
(``nn.output_shape``, computed abstractly with ``jax.eval_shape``), and the
parameter count with ``(f_h f_w C + 1) · O`` for a conv and ``(in + 1) · out``
for a dense layer. The model includes the course's ``Conv2D(5x5, 500)`` on a
26×26×100 input: 22×22×500 with 1,250,500 parameters.

Usage::

    python examples/conv_shapes.py     # exits with status 1 if any check fails
"""

from __future__ import annotations

import math
import sys

import jax

from jaxdl import kernels, nn


def course_model() -> tuple[nn.Sequential, tuple[int, int, int]]:
    """A CNN whose third conv is the course's Conv2D(500, 5x5) on 26x26x100."""
    model = nn.Sequential([
        nn.Conv2D(100, 3, activation="relu"),                  # 28x28x1 -> 26x26x100
        nn.Conv2D(500, 5, activation="relu"),                  # -> 22x22x500
        nn.MaxPool2D(2),                                       # -> 11x11x500
        nn.Conv2D(64, 3, strides=2, padding="same"),           # -> 6x6x64
        nn.BatchNorm(),
        nn.ReLU(),
        nn.MaxPool2D(2, padding="same"),                       # -> 3x3x64
        nn.Dropout(0.25),
        nn.Flatten(),                                          # -> 576
        nn.Dense(10),
    ])
    return model, (28, 28, 1)


def _axis_pad(padding, axis):
    if isinstance(padding, str):
        return padding
    return padding[axis]  # a (before, after) pair


def formula_shape(layer, shape):
    """The expected output shape from the course's formulas, or None if not a conv/pool."""
    if isinstance(layer, nn.Conv2D):
        hw = [kernels.conv_output_size(shape[i], layer.kernel_size[i], layer.strides[i],
                                       _axis_pad(layer.padding, i), layer.dilation[i])
              for i in range(2)]
        return (*hw, layer.filters)
    if isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
        strides = layer.strides or layer.pool_size
        hw = [kernels.conv_output_size(shape[i], layer.pool_size[i], strides[i],
                                       _axis_pad(layer.padding, i)) for i in range(2)]
        return (*hw, shape[2])
    if isinstance(layer, nn.Flatten):
        return (math.prod(shape),)
    if isinstance(layer, nn.Dense):
        return shape[:-1] + (layer.features,)
    return None


def formula_params(layer, shape):
    if isinstance(layer, nn.Conv2D):
        fh, fw = layer.kernel_size
        return (fh * fw * shape[2] // layer.groups + int(layer.use_bias)) * layer.filters
    if isinstance(layer, nn.Dense):
        return (shape[-1] + int(layer.use_bias)) * layer.features
    if isinstance(layer, nn.BatchNorm):
        return 4 * shape[-1]  # scale, bias (trainable) + moving mean, var (not)
    return 0


def check(model, input_shape) -> bool:
    print(nn.summary(model, input_shape))
    print()
    params, state = jax.eval_shape(lambda k: model.init(k, input_shape), jax.random.key(0))
    ok = True
    shape = tuple(input_shape)
    print(f"{'layer':<20}{'input':<16}{'formula':<16}{'inferred':<16}{'params (formula)':>18}")
    for name, layer in zip(model.names, model.layers, strict=True):
        out = nn.output_shape(layer, shape)
        want = formula_shape(layer, shape)
        n = sum(math.prod(a.shape) for a in jax.tree.leaves((params.get(name, {}),
                                                             state.get(name, {}))))
        n_want = formula_params(layer, shape)
        good = (want is None or tuple(want) == tuple(out)) and n == n_want
        ok &= good
        print(f"{name:<20}{str(shape):<16}{str(want or '-'):<16}{str(out):<16}"
              f"{n:>9,} ({n_want:,}) {'ok' if good else 'MISMATCH'}")
        shape = out
    return ok


def main() -> int:
    model, input_shape = course_model()
    ok = check(model, input_shape)
    # The course's worked example on its own.
    conv = nn.Conv2D(500, 5)
    out = nn.output_shape(conv, (26, 26, 100))
    print(f"\nConv2D(500, 5x5) on 26x26x100: output {out}, "
          f"(26 - 5)/1 + 1 = {kernels.conv_output_size(26, 5)}, "
          f"params (5*5*100 + 1)*500 = {(5 * 5 * 100 + 1) * 500:,}")
    ok &= out == (22, 22, 500)
    print("all shapes and counts match the formulas" if ok else "MISMATCH found")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
